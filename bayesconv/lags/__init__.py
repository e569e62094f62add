"""Lag math: the time-to-convert distributions, written once for numpy and PyTensor.

* :mod:`~bayesconv.lags.namespace`: the numeric namespaces :data:`NP` (numpy/scipy) and ``PT``
  (PyTensor) the formulas are written against;
* :mod:`~bayesconv.lags.families`: :class:`LagFamily` and the families (exponential, Weibull,
  gamma, log-normal, generalized gamma), :data:`LAG_FAMILIES`, :func:`get_lag`;
* :mod:`~bayesconv.lags.incgamma`: the fused numba kernel of the log incomplete gamma
  functions and their shape derivative, as a PyTensor Op.

To add a lag family, write a :class:`LagFamily` subclass in ``families.py`` and add it to
:data:`LAG_FAMILIES`.
"""

from .families import (
    LAG_FAMILIES,
    Exponential,
    Gamma,
    GammaSuffStats,
    GenGamma,
    LagFamily,
    LagParam,
    LogNormal,
    Weibull,
    get_lag,
    log_gamma_pq,
)
from .namespace import NP, Namespace, pytensor_namespace

__all__ = ["LAG_FAMILIES", "NP", "Exponential", "Gamma", "GammaSuffStats", "GenGamma",
           "LagFamily", "LagParam", "LogNormal", "Namespace", "Weibull", "get_lag",
           "log_gamma_pq", "pytensor_namespace"]


def __getattr__(name: str):
    # ``PT`` is public too, built on first access so that numpy-only users skip PyTensor
    if name == "PT":
        return pytensor_namespace()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
