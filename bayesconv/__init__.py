"""bayesconv: Bayesian models of time-lagged conversions.

Each cohort's eventual conversion rate ``c`` times a time-to-convert distribution ``F(t)``,
with right-censoring for units that have not converted yet, hierarchical priors across cohorts,
sampled by MCMC with PyMC and checked with ArviZ.
"""

from . import datasets
from .checks import plot_prior_curves
from .comparison import ParetoKWarning, compare_models
from .data import TIME_UNITS, ConversionData, DataWarning, prepare
from .fit import ConvergenceWarning
from .kaplan_meier import kaplan_meier, plot_kaplan_meier
from .lags import LAG_FAMILIES, get_lag
from .model import DEFAULT_PRIORS, ConversionModel
from .persistence import DataNotSavedError, load, save_result
from .readout import Readout, compare, default_horizon
from .replay import decision_dates, plot_replay, replay
from .report import write_report
from .results import ConversionResult, IdentificationWarning
from .simulate import simulate

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRIORS",
    "LAG_FAMILIES",
    "TIME_UNITS",
    "ConversionModel",
    "ConversionResult",
    "ConvergenceWarning",
    "DataNotSavedError",
    "IdentificationWarning",
    "Readout",
    "compare",
    "decision_dates",
    "default_horizon",
    "compare_models",
    "ParetoKWarning",
    "plot_prior_curves",
    "plot_replay",
    "replay",
    "save_result",
    "write_report",
    "get_lag",
    "simulate",
    "ConversionData",
    "DataWarning",
    "datasets",
    "kaplan_meier",
    "load",
    "plot_kaplan_meier",
    "prepare",
]
