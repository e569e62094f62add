"""Numeric namespaces: one set of elementwise functions for numpy and for PyTensor.

The lag formulas (:mod:`bayesconv.lags.families`), the likelihood and the posterior quantities
are written against :class:`Namespace` only, so the same source evaluates to numpy arrays
(:data:`NP`) or to PyTensor graphs (:data:`PT`, built on first access so that numpy-only users
do not import PyTensor).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

__all__ = ["LN2", "NP", "Namespace"]

LN2 = math.log(2.0)
_NEG_INF = -math.inf


# ---------------------------------------------------------------------------
# Numeric namespaces
# ---------------------------------------------------------------------------


class Namespace:
    """A small set of elementwise functions shared by numpy/scipy and PyTensor.

    The lag formulas below are written against this interface only, so that the
    same source evaluates to numpy arrays (``NP``) or to PyTensor graphs (``PT``).

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"pytensor"``.
    asarray : callable
        Converts input to a float array (numpy) or a tensor variable (PyTensor).
    log, exp, log1p, expm1, sqrt, abs : callable
        Elementwise maths.
    where : callable
        ``where(cond, a, b)``: ``np.where`` or ``pt.switch``. Both branches are
        evaluated, so callers feed safe inputs to the branch that is not selected
        (the "double where" trick), which keeps values and gradients free of NaN.
    maximum, minimum : callable
        Elementwise maximum and minimum.
    gammaln : callable
        ``log |Gamma(x)|``.
    gammainc, gammaincc : callable
        Regularized lower ``P(k, x)`` and upper ``Q(k, x)`` incomplete gamma
        functions (DLMF 8.2.4).
    erfc, erfcx : callable
        Complementary error function and its scaled form ``exp(x^2) erfc(x)``.
    log1mexp : callable
        ``log(1 - exp(x))`` for ``x <= 0`` (Maechler 2012: switch at ``-ln 2``).
    logaddexp : callable
        ``log(exp(a) + exp(b))``.
    logsumexp : callable
        ``log(sum(exp(x), axis))``, called with ``axis=-1``.
    logdiffexp : callable
        ``log(exp(a) - exp(b))`` for ``a >= b``, as ``a + log1mexp(b - a)``;
        ``-inf`` when ``a == -inf``.
    log_ndtr : callable
        Log of the standard normal CDF.
    errstate : callable
        Context manager silencing numpy floating-point warnings (the unselected
        branch of a ``where`` may overflow); a no-op for PyTensor.
    """

    def __init__(self, name: str, **funcs: Callable[..., Any]) -> None:
        self.name = name
        for key, func in funcs.items():
            setattr(self, key, func)
        self.logdiffexp = self._logdiffexp

    def _logdiffexp(self, a, b):
        with self.errstate():
            a = self.asarray(a)
            b = self.asarray(b)
            finite = a > _NEG_INF
            d = self.where(finite, b - a, -1.0)
            return self.where(finite, a + self.log1mexp(d), _NEG_INF)

    def __repr__(self) -> str:
        return f"<lags namespace {self.name!r}>"


def _np_asarray(x):
    return np.asarray(x, dtype=np.float64)


def _np_log1mexp(x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.where(x < -LN2, np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def _np_errstate():
    return np.errstate(all="ignore")


NP = Namespace(
    "numpy",
    asarray=_np_asarray,
    log=np.log,
    exp=np.exp,
    log1p=np.log1p,
    expm1=np.expm1,
    sqrt=np.sqrt,
    abs=np.abs,
    where=np.where,
    maximum=np.maximum,
    minimum=np.minimum,
    gammaln=sc.gammaln,
    gammainc=sc.gammainc,
    gammaincc=sc.gammaincc,
    erfc=sc.erfc,
    erfcx=sc.erfcx,
    log1mexp=_np_log1mexp,
    logaddexp=np.logaddexp,
    logsumexp=sc.logsumexp,
    log_ndtr=sc.log_ndtr,
    errstate=_np_errstate,
)
"""numpy / scipy.special implementation of :class:`Namespace`."""


def _pt_log_ndtr(z):
    """``log Phi(z)`` for PyTensor from erfc / erfcx, NaN-free in both tails.

    For ``z < -1``: ``log Phi(z) = log(erfcx(-z/sqrt 2) / 2) - z^2 / 2`` (no underflow);
    otherwise ``log1p(-erfc(z/sqrt 2) / 2)``.
    """
    import pytensor.tensor as pt

    z = pt.as_tensor_variable(z)
    left = z < -1.0
    z_left = pt.switch(left, z, -1.0)
    z_right = pt.switch(left, -1.0, z)
    s2 = math.sqrt(2.0)
    val_left = pt.log(pt.erfcx(-z_left / s2) / 2.0) - z_left**2 / 2.0
    val_right = pt.log1p(-pt.erfc(z_right / s2) / 2.0)
    return pt.switch(left, val_left, val_right)


def _make_pt() -> Namespace:
    import pytensor.tensor as pt

    def asarray(x):
        return pt.as_tensor_variable(x)

    return Namespace(
        "pytensor",
        asarray=asarray,
        log=pt.log,
        exp=pt.exp,
        log1p=pt.log1p,
        expm1=pt.expm1,
        sqrt=pt.sqrt,
        abs=pt.abs,
        where=pt.switch,
        maximum=pt.maximum,
        minimum=pt.minimum,
        gammaln=pt.gammaln,
        gammainc=pt.gammainc,
        gammaincc=pt.gammaincc,
        erfc=pt.erfc,
        erfcx=pt.erfcx,
        log1mexp=pt.log1mexp,
        logaddexp=pt.logaddexp,
        logsumexp=pt.logsumexp,
        log_ndtr=_pt_log_ndtr,
        errstate=contextlib.nullcontext,
    )


_PT: Namespace | None = None


def pytensor_namespace() -> Namespace:
    """The PyTensor namespace :data:`PT` (built once, on first use)."""
    global _PT
    if _PT is None:
        _PT = _make_pt()
    return _PT


def __getattr__(name: str):
    # ``PT`` is built on first access so that numpy-only users do not import PyTensor.
    if name == "PT":
        return pytensor_namespace()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ``PT``: pytensor.tensor implementation of :class:`Namespace`, built on first access
# through the module ``__getattr__`` above.


