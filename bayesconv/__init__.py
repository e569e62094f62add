"""bayesconv: Bayesian models of time-lagged conversions.

Each cohort's eventual conversion rate ``c`` times a time-to-convert distribution ``F(t)``,
with right-censoring for units that have not converted yet, hierarchical priors across cohorts,
sampled by MCMC with PyMC and checked with ArviZ.

The package is layered (README, "Architecture"); this module gathers the public names. They
are imported on first use (PEP 562 module ``__getattr__``), so that ``import bayesconv`` and
``bayesconv --help`` do not pay for PyMC, PyTensor, SciPy, xarray or matplotlib;
``tests/test_imports.py`` checks that in a fresh process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Public name -> the module that defines it (relative to this package).
_PUBLIC = {
    "datasets": ".datasets",
    "TIME_UNITS": ".data", "ConversionData": ".data", "kaplan_meier": ".data",
    "prepare": ".data",
    "ConvergenceWarning": ".errors", "DataNotSavedError": ".errors", "DataWarning": ".errors",
    "IdentificationWarning": ".errors", "ParetoKWarning": ".errors",
    "ConversionModel": ".inference", "clear_compile_cache": ".inference",
    "plot_prior_curves": ".inference",
    "LAG_FAMILIES": ".lags", "get_lag": ".lags",
    "DEFAULT_PRIORS": ".model",
    "plot_kaplan_meier": ".plotting",
    "ConversionResult": ".posterior", "compare_models": ".posterior", "load": ".posterior",
    "save_result": ".posterior",
    "METRICS": ".readout", "Decision": ".readout", "Projection": ".readout",
    "Readout": ".readout", "compare": ".readout", "default_horizon": ".readout",
    "plan": ".readout", "project": ".readout",
    "as_of": ".replays", "decision_dates": ".replays", "plot_replay": ".replays",
    "replay": ".replays",
    "write_report": ".report",
    "readouts": ".batch",
    "simulate": ".simulation",
}

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
    "readouts",
    "replay",
    "save_result",
    "simulate",
    "write_report",
]


def __getattr__(name: str):
    """Import a public name's module on first access and keep the name here."""
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'bayesconv' has no attribute {name!r}") from None
    mod = importlib.import_module(module, __name__)
    value = mod if name == "datasets" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:     # static analysers and IDEs see the names as plain imports
    from . import datasets
    from .batch import readouts
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
    from .readout import (
        METRICS,
        Decision,
        Projection,
        Readout,
        compare,
        default_horizon,
        plan,
        project,
    )
    from .replays import as_of, decision_dates, plot_replay, replay
    from .report import write_report
    from .simulation import simulate
