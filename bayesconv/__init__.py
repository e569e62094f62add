"""bayesconv: Bayesian models of time-lagged conversions.

Each cohort's eventual conversion rate ``c`` times a time-to-convert distribution ``F(t)``,
with right-censoring for units that have not converted yet, hierarchical priors across cohorts,
sampled by MCMC with PyMC and checked with ArviZ.

The package is layered (README, "Architecture"); this module gathers the public names.
"""

from . import datasets
from .data import TIME_UNITS, ConversionData, kaplan_meier, prepare
from .errors import (
    ConvergenceWarning,
    DataNotSavedError,
    DataWarning,
    IdentificationWarning,
    ParetoKWarning,
)
from .inference import ConversionModel, clear_compile_cache, plot_prior_curves
from .lags import LAG_FAMILIES, get_lag
from .model import DEFAULT_PRIORS
from .plotting import plot_kaplan_meier
from .posterior import ConversionResult, compare_models, load, save_result
from .readout import METRICS, Decision, Projection, Readout, compare, default_horizon, plan, project
from .replay import as_of, decision_dates, plot_replay, replay
from .report import write_report
from .simulate import simulate

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRIORS",
    "LAG_FAMILIES",
    "METRICS",
    "TIME_UNITS",
    "ConversionData",
    "ConversionModel",
    "ConversionResult",
    "ConvergenceWarning",
    "DataNotSavedError",
    "DataWarning",
    "Decision",
    "IdentificationWarning",
    "ParetoKWarning",
    "Projection",
    "Readout",
    "as_of",
    "clear_compile_cache",
    "compare",
    "compare_models",
    "datasets",
    "decision_dates",
    "default_horizon",
    "get_lag",
    "kaplan_meier",
    "load",
    "plot_kaplan_meier",
    "plot_prior_curves",
    "plan",
    "plot_replay",
    "prepare",
    "project",
    "replay",
    "save_result",
    "simulate",
    "write_report",
]
