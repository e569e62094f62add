"""bayesconv: Bayesian models of time-lagged conversions.

Each cohort's eventual conversion rate ``c`` times a time-to-convert distribution ``F(t)``,
with right-censoring for units that have not converted yet, hierarchical priors across cohorts,
sampled by MCMC with PyMC and checked with ArviZ.
"""

from . import datasets
from .data import TIME_UNITS, ConversionData, DataWarning, prepare
from .kaplan_meier import kaplan_meier, plot_kaplan_meier

__version__ = "0.1.0"

__all__ = [
    "TIME_UNITS",
    "ConversionData",
    "DataWarning",
    "datasets",
    "kaplan_meier",
    "plot_kaplan_meier",
    "prepare",
]
