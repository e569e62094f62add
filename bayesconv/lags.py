"""Lag distributions: time to convert, given that a unit converts.

A cure-mixture survival model writes the probability that a unit has converted by
time ``t`` as ``p * F(t)``, where ``p`` is the eventual conversion rate and ``F`` is
the lag distribution, the law of the time to convert among units that do convert.
This module holds the lag families. Each formula is written once and evaluated by
either of two numeric back ends, passed as ``xp``:

* :data:`NP` -- numpy and :mod:`scipy.special` (for data preparation, checks and
  posterior summaries);
* :data:`PT` -- :mod:`pytensor.tensor` (for PyMC model graphs, gradients, and the
  C and numba back ends; nutpie compiles through numba).

Every family is parameterised by ``(loc, shape)``: ``loc > 0`` is a location in the
data's time unit (the mean for the gamma family, the median for the Weibull family,
see :attr:`LagFamily.location`) and ``shape > 0`` is the shape ``k``. Everything is
computed in log space, and the log CDF and log survival function stay finite and
accurate where ``P`` or ``Q = 1 - P`` underflow double precision.

Adding a family means writing one subclass of :class:`LagFamily` and adding it to
:data:`LAG_FAMILIES`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.special as sc

# ``PT`` is public too, but resolved lazily by the module ``__getattr__`` (not in __all__).
__all__ = [
    "LAG_FAMILIES",
    "NP",
    "Gamma",
    "GammaSuffStats",
    "LagFamily",
    "Weibull",
    "get_lag",
    "log_gamma_pq",
]

LN2 = math.log(2.0)
_LOG_LN2 = math.log(LN2)
_NEG_INF = -math.inf

# Below this value of the leading term of log P (or log Q) the value computed by
# gammainc (gammaincc) may be denormal or zero, so the uniform asymptotic expansion
# takes over.  exp(-600) ~ 2.7e-261 leaves a wide margin above the denormal range
# (2.2e-308); in that region (x - k)^2 / k > ~1000, where the expansion is exact to
# double precision.
_UNDERFLOW_SWITCH = -600.0
# Terms of the uniform expansion (4 already give 3e-15 relative in that region).
_N_UNIFORM = 5


def _temme_b_coefficients(n_terms: int) -> tuple[tuple[int, ...], ...]:
    """Integer coefficients of the polynomials ``b_j(lam)``, ``j = 0..n_terms``.

    ``b_0 = 1``, ``b_j(lam) = lam (1 - lam) b_{j-1}'(lam) + (2j - 1) lam b_{j-1}(lam)``
    (DLMF §8.11(iii)); ``b_1 = lam``, ``b_2 = lam + 2 lam^2``, ``b_3 = lam + 8 lam^2 +
    6 lam^3``. Coefficient ``i`` multiplies ``lam^i``.
    """
    polys = [(1,)]
    for j in range(1, n_terms + 1):
        prev = polys[-1]
        new = [0] * (len(prev) + 1)
        for i, c in enumerate(prev):
            # lam (1 - lam) d/dlam (c lam^i) = i c lam^i - i c lam^(i+1)
            new[i] += i * c
            new[i + 1] -= i * c
            # (2j - 1) lam (c lam^i)
            new[i + 1] += (2 * j - 1) * c
        polys.append(tuple(new))
    return tuple(polys)


_TEMME_B = _temme_b_coefficients(_N_UNIFORM)
# Below log u = -7 (u < 9.1e-4) log(1 - exp(-u)) = log u - u/2 + u^2/24 to 4e-16.
_WEIBULL_SMALL_LOGU = -7.0
# Above log u = 6.6 (u > 735) log(1 - exp(-u)) rounds to 0 (|value| < 1e-319).
_WEIBULL_LARGE_LOGU = 6.6


# ---------------------------------------------------------------------------
# Numeric namespaces
# ---------------------------------------------------------------------------


class _Namespace:
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


NP = _Namespace(
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
    log_ndtr=sc.log_ndtr,
    errstate=_np_errstate,
)
"""numpy / scipy.special implementation of :class:`_Namespace`."""


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


def _make_pt() -> _Namespace:
    import pytensor.tensor as pt

    def asarray(x):
        return pt.as_tensor_variable(x)

    return _Namespace(
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
        log_ndtr=_pt_log_ndtr,
        errstate=contextlib.nullcontext,
    )


_PT: _Namespace | None = None


def __getattr__(name: str):
    # ``PT`` is built on first access so that numpy-only users do not import PyTensor.
    global _PT
    if name == "PT":
        if _PT is None:
            _PT = _make_pt()
        return _PT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ``PT``: pytensor.tensor implementation of :class:`_Namespace`, built on first access
# through the module ``__getattr__`` above.


# ---------------------------------------------------------------------------
# Incomplete gamma in log space
# ---------------------------------------------------------------------------


def _log_gamma_uniform(k, x, logx, xp, n_terms: int = _N_UNIFORM):
    """``log P(k, x)`` for ``x < k`` or ``log Q(k, x)`` for ``x > k``, far from ``x = k``.

    Uniform asymptotic expansion for large ``k`` at fixed ``lam = x / k``
    (DLMF §8.11(iii); Temme 1996, *Special Functions*):

    ``Gamma(k, x) ~ x^k e^(-x) sum_j (-k)^j b_j(lam) / (x - k)^(2j+1)``  (``lam > 1``),
    ``gamma(k, x) ~ -x^k e^(-x) sum_j (-k)^j b_j(lam) / (x - k)^(2j+1)``  (``lam < 1``),

    so with ``w = -k / (x - k)^2``,
    ``log(P or Q) = k log x - x - log|x - k| - gammaln(k) + log(sum_j w^j b_j(lam))``.
    The successive terms shrink like ``(2j+1) lam k / (x - k)^2`` (about
    ``(2j+1) / x`` when ``x >> k``), so where it is used (the value below ``e^-600``,
    ``(x - k)^2 / k > ~1000`` or ``lam`` tiny) five terms are exact to double
    precision for every ``k``: it then reduces to the power series of P
    (A&S 6.5.29) for ``x << k`` and to the asymptotic series of Q (DLMF 8.11.2)
    for ``x >> k``. The sum is written as a flat sum of monomials
    ``c w^j lam^i`` (no nested Horner form), which keeps PyTensor's graph rewrites
    and gradients cheap.

    Parameters
    ----------
    k, x, logx : array_like or TensorVariable
        Shape, argument (``x != k``) and ``log x``; broadcast together.
    xp : _Namespace
        Numeric back end.
    """
    # w and lam are formed through exp(log(.)) so that PyTensor's algebraic
    # canonicalizer sees them as atoms: expanding -k / (x - k)^2 and x / k inside
    # the sum and its gradient makes graph rewriting take minutes.
    log_k = xp.log(k)
    d = x - k
    log_abs_d = xp.log(xp.abs(d))
    w = -xp.exp(log_k - 2.0 * log_abs_d)
    lam = xp.exp(logx - log_k)
    w_pow = [1.0]
    lam_pow = [1.0]
    for _ in range(n_terms):
        w_pow.append(w_pow[-1] * w)
        lam_pow.append(lam_pow[-1] * lam)
    total = 1.0
    for j in range(1, n_terms + 1):
        for i, c in enumerate(_TEMME_B[j]):
            if c:
                total = total + float(c) * (w_pow[j] * lam_pow[i])
    return k * logx - x - log_abs_d - xp.gammaln(k) + xp.log(total)


def log_gamma_pq(k, x, xp=NP):
    """Log of the regularized incomplete gamma functions, ``(log P(k, x), log Q(k, x))``.

    Parameters
    ----------
    k : array_like or TensorVariable
        Shape, ``k > 0``. Broadcasts against ``x``.
    x : array_like or TensorVariable
        Argument, ``x >= 0`` (for the gamma lag: ``t / theta``, dimensionless).
    xp : _Namespace, default NP
        Numeric back end, :data:`NP` or :data:`PT`.

    Returns
    -------
    log_p, log_q : ndarray or TensorVariable
        Broadcast shape of ``k`` and ``x``. ``log_p(0) = -inf``, ``log_q(0) = 0``.

    Notes
    -----
    Below ``x = k`` (near the median, ``P`` between ~0.5 and ~0.9) ``log P`` is
    computed directly and ``log Q = log1mexp(log P)``; above, ``log Q`` directly and
    ``log P = log1mexp(log Q)``. The direct value is ``log(gammainc)`` /
    ``log(gammaincc)`` unless its leading term (``k log x - x - gammaln(k+1)``, the
    first term of A&S 6.5.29, resp. ``(k-1) log x - x - gammaln(k)``, DLMF 8.11.2)
    is below -600, where the value could underflow; there the uniform asymptotic
    expansion :func:`_log_gamma_uniform` (DLMF §8.11(iii)) is used, which is exact to
    double precision in that region for all ``k``. Unselected branches get safe
    inputs, so neither values nor PyTensor gradients contain NaN.

    With ``xp=PT`` the graph is one fused Op (:func:`bayesconv._incgamma.log_gamma_pq_pt`:
    series / continued fraction in log space with the shape derivative from the same pass,
    compiled by numba), about five times cheaper per gradient than PyTensor's generic
    ``gammainc``/``gammaincc``; the numpy formulas here are its tested reference.
    """
    if xp.name == "pytensor":
        from bayesconv._incgamma import log_gamma_pq_pt

        return log_gamma_pq_pt(k, x)
    with xp.errstate():
        k = xp.asarray(k)
        x = xp.asarray(x)
        pos = x > 0.0
        x1 = xp.where(pos, x, 1.0)
        logx = xp.log(x1)
        lower = x1 < k

        lp0 = k * logx - x1 - xp.gammaln(k + 1.0)
        lq0 = (k - 1.0) * logx - x1 - xp.gammaln(k)
        use_asym = xp.where(lower, lp0, lq0) < _UNDERFLOW_SWITCH

        # far tails: uniform expansion (safe point x = 2k + 30 where unused)
        x_safe = 2.0 * k + 30.0
        x_as = xp.where(use_asym, x1, x_safe)
        logx_as = xp.where(use_asym, logx, xp.log(x_safe))
        l_asym = _log_gamma_uniform(k, x_as, logx_as, xp)
        # elsewhere: scipy / cephes P or Q. Where unused they get x = k / 1000, where
        # PyTensor's dP/dk series loop stops after a few terms, and their log gets 1.
        use_gi = lower & ~use_asym
        use_gc = ~lower & ~use_asym
        x_unused = 1e-3 * k
        p_gi = xp.gammainc(k, xp.where(use_gi, x1, x_unused))
        q_gc = xp.gammaincc(k, xp.where(use_gc, x1, x_unused))
        lp = xp.where(use_asym, l_asym, xp.log(xp.where(use_gi, p_gi, 1.0)))
        lq = xp.where(use_asym, l_asym, xp.log(xp.where(use_gc, q_gc, 1.0)))

        lp_lower = xp.where(lower, lp, -1.0)
        lq_upper = xp.where(lower, -1.0, lq)
        log_p = xp.where(lower, lp, xp.log1mexp(lq_upper))
        log_q = xp.where(lower, xp.log1mexp(lp_lower), lq)
        log_p = xp.where(pos, log_p, _NEG_INF)
        log_q = xp.where(pos, log_q, 0.0)
    return log_p, log_q


# ---------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------


class GammaSuffStats(NamedTuple):
    """Sufficient statistics of exactly observed gamma lags (sums over units).

    Attributes
    ----------
    N : float or ndarray
        ``sum n``: number of converted units.
    S_logt : float or ndarray
        ``sum n * log t``, ``t`` in the data's time unit.
    S_t : float or ndarray
        ``sum n * t``.
    """

    N: Any
    S_logt: Any
    S_t: Any


@dataclass(frozen=True)
class LagFamily:
    """Base class of lag distributions parameterised by ``(loc, shape)``.

    Subclasses set the class attributes and implement the ``natural_params``,
    ``logpdf``, ``logcdf``, ``logsf``, ``quantile``, ``mean`` and ``rvs`` methods.
    All log-density methods take ``xp`` (:data:`NP` or :data:`PT`) and broadcast
    ``t``, ``loc`` and ``shape`` together; ``t`` is in the data's time unit and must
    be ``>= 0``.

    Attributes
    ----------
    name : str
        Registry key.
    location : str
        Which quantity ``loc`` is: ``"mean"`` or ``"median"``.
    param_names : tuple of str
        ``("loc", "shape")``.
    suff_stats : callable or None
        ``suff_stats(t, n)`` when the exact-time likelihood reduces to a few sums
        (see :meth:`Gamma.suff_stats`), else ``None``.
    loglik_exact_from_stats : callable or None
        Companion of ``suff_stats``, else ``None``.
    """

    name: ClassVar[str] = ""
    location: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ("loc", "shape")
    suff_stats: ClassVar[Callable[..., Any] | None] = None
    loglik_exact_from_stats: ClassVar[Callable[..., Any] | None] = None

    def natural_params(self, loc, shape, xp=NP):
        """Return the textbook parameters ``(k, scale)`` for ``(loc, shape)``."""
        raise NotImplementedError

    def logpdf(self, t, loc, shape, xp=NP):
        """Log density at ``t`` (per time unit). ``t = 0`` gives the right limit."""
        raise NotImplementedError

    def logcdf(self, t, loc, shape, xp=NP):
        """``log F(t)``; ``-inf`` at ``t = 0``."""
        raise NotImplementedError

    def logsf(self, t, loc, shape, xp=NP):
        """``log(1 - F(t))``; ``0`` at ``t = 0``."""
        raise NotImplementedError

    def quantile(self, q, loc, shape):
        """Quantile function (numpy), in the data's time unit."""
        raise NotImplementedError

    def median(self, loc, shape):
        """Median lag (numpy), in the data's time unit."""
        return self.quantile(0.5, loc, shape)

    def mean(self, loc, shape):
        """Mean lag (numpy), in the data's time unit."""
        raise NotImplementedError

    def rvs(self, rng, loc, shape, size=None):
        """Draw lags (numpy) with ``rng`` (a ``numpy.random.Generator`` or seed)."""
        raise NotImplementedError


def _t_parts(t, scale_log, xp):
    """Shared handling of ``t = 0``: ``(t_safe, pos, log(t / scale))``, safe at 0.

    ``t_safe`` is ``t`` where ``t > 0`` and 1 elsewhere (the "double where" trick).
    """
    t = xp.asarray(t)
    pos = t > 0.0
    t_safe = xp.where(pos, t, 1.0)
    return t_safe, pos, xp.log(t_safe) - scale_log


@dataclass(frozen=True)
class Gamma(LagFamily):
    """Gamma lag distribution parameterised by its mean.

    ``loc`` is the mean lag ``mu > 0`` (data's time unit) and ``shape`` is
    ``k > 0``; the scale is ``theta = mu / k``. Density
    ``f(t) = t^(k-1) exp(-t/theta) / (Gamma(k) theta^k)``; ``F(t) = P(k, t/theta)``.
    """

    name: ClassVar[str] = "gamma"
    location: ClassVar[str] = "mean"

    def natural_params(self, loc, shape, xp=NP):
        """Return ``(k, theta)`` with ``theta = loc / k`` (shapes broadcast)."""
        k = xp.asarray(shape)
        return k, xp.asarray(loc) / k

    def logpdf(self, t, loc, shape, xp=NP):
        """Log density ``(k-1) log(t/theta) - t/theta - log theta - gammaln(k)``.

        Parameters
        ----------
        t : array_like or TensorVariable
            Lags ``>= 0`` in the data's time unit.
        loc, shape : array_like or TensorVariable
            Mean lag (time unit) and shape ``k``; broadcast with ``t``.
        xp : _Namespace, default NP

        Returns
        -------
        ndarray or TensorVariable
            Broadcast shape. At ``t = 0``: ``-inf`` (``k > 1``),
            ``-log theta`` (``k = 1``), ``+inf`` (``k < 1``).
        """
        with xp.errstate():
            k, theta = self.natural_params(loc, shape, xp)
            log_theta = xp.log(theta)
            t_safe, pos, logx = _t_parts(t, log_theta, xp)
            x = t_safe / theta
            val = (k - 1.0) * logx - x - log_theta - xp.gammaln(k)
            at0 = xp.where(
                k > 1.0, _NEG_INF, xp.where(k < 1.0, math.inf, -log_theta - xp.gammaln(k))
            )
            return xp.where(pos, val, at0)

    def logcdf(self, t, loc, shape, xp=NP):
        """``log P(k, t/theta)``, finite wherever the true value is representable.

        Parameters
        ----------
        t : array_like or TensorVariable
            Lags ``>= 0`` in the data's time unit.
        loc, shape : array_like or TensorVariable
            Mean lag and shape ``k``; broadcast with ``t``.
        xp : _Namespace, default NP

        Returns
        -------
        ndarray or TensorVariable
            Broadcast shape; ``-inf`` at ``t = 0``. See :func:`log_gamma_pq` for the
            series (A&S 6.5.29) / uniform expansion (DLMF §8.11(iii)) used in the tails.
        """
        k, theta = self.natural_params(loc, shape, xp)
        return log_gamma_pq(k, xp.asarray(t) / theta, xp)[0]

    def logsf(self, t, loc, shape, xp=NP):
        """``log Q(k, t/theta)``; ``0`` at ``t = 0``, finite far in the upper tail.

        Parameters and returns as :meth:`logcdf`.
        """
        k, theta = self.natural_params(loc, shape, xp)
        return log_gamma_pq(k, xp.asarray(t) / theta, xp)[1]

    def quantile(self, q, loc, shape):
        """``theta * gammaincinv(k, q)`` (numpy)."""
        k, theta = self.natural_params(loc, shape)
        return theta * sc.gammaincinv(k, np.asarray(q, dtype=np.float64))

    def mean(self, loc, shape):
        """The mean is ``loc`` itself (broadcast with ``shape``)."""
        return np.asarray(loc, dtype=np.float64) + 0.0 * np.asarray(shape, dtype=np.float64)

    def rvs(self, rng, loc, shape, size=None):
        """Gamma draws ``rng.gamma(k, theta, size)`` in the data's time unit."""
        rng = np.random.default_rng(rng)
        k, theta = self.natural_params(loc, shape)
        return rng.gamma(k, theta, size=size)

    @staticmethod
    def suff_stats(t, n=None, axis=None) -> GammaSuffStats:
        """Sufficient statistics of exactly observed lags, summed over units.

        Parameters
        ----------
        t : array_like
            Exact conversion lags ``> 0`` in the data's time unit, one per row.
        n : array_like, optional
            Row weights (units per row, >= 0); default 1. Rows with ``n = 0`` are
            ignored whatever their ``t``.
        axis : int or tuple of int, optional
            Axes to sum over (default: all). Sums over disjoint rows add up, so
            statistics of groups can be aggregated later.

        Returns
        -------
        GammaSuffStats
            ``(N, S_logt, S_t) = (sum n, sum n log t, sum n t)``.

        Raises
        ------
        ValueError
            If a row with ``n > 0`` has ``t <= 0`` or a non-finite ``t``
            (``log t`` is needed).
        """
        t = np.asarray(t, dtype=np.float64)
        n = np.ones_like(t) if n is None else np.asarray(n, dtype=np.float64)
        t, n = np.broadcast_arrays(t, n)
        used = n > 0
        if np.any(used & ~(np.isfinite(t) & (t > 0))):
            raise ValueError("suff_stats needs finite exact lags t > 0 where n > 0")
        t_safe = np.where(used, t, 1.0)
        w = np.where(used, n, 0.0)
        return GammaSuffStats(
            np.sum(w, axis=axis),
            np.sum(w * np.log(t_safe), axis=axis),
            np.sum(w * t_safe, axis=axis),
        )

    @staticmethod
    def loglik_exact_from_stats(N, S_logt, S_t, loc, shape, xp=NP):
        """Sum of ``n * logpdf(t)`` over converted units, from :meth:`suff_stats`.

        ``(k-1) S_logt - S_t / theta - N (k log theta + gammaln(k))`` with
        ``theta = loc / k``.

        Parameters
        ----------
        N, S_logt, S_t : array_like or TensorVariable
            Output of :meth:`suff_stats` (any broadcastable shape, e.g. per group).
        loc, shape : array_like or TensorVariable
            Mean lag (time unit) and shape ``k``.
        xp : _Namespace, default NP

        Returns
        -------
        ndarray or TensorVariable
            Broadcast shape of the inputs.
        """
        k = xp.asarray(shape)
        log_theta = xp.log(xp.asarray(loc)) - xp.log(k)
        return (k - 1.0) * S_logt - S_t * xp.exp(-log_theta) - N * (k * log_theta + xp.gammaln(k))


@dataclass(frozen=True)
class Weibull(LagFamily):
    """Weibull lag distribution parameterised by its median.

    ``loc`` is the median lag ``m > 0`` (data's time unit) and ``shape`` is
    ``k > 0``; the scale is ``lambda = m / ln(2)^(1/k)``. With
    ``u = (t/lambda)^k``: ``log S(t) = -u``, ``log F(t) = log(1 - exp(-u))``,
    ``log f(t) = log k - log lambda + (k-1) log(t/lambda) - u``.
    """

    name: ClassVar[str] = "weibull"
    location: ClassVar[str] = "median"

    def natural_params(self, loc, shape, xp=NP):
        """Return ``(k, lambda)`` with ``lambda = loc / ln(2)^(1/k)``."""
        k = xp.asarray(shape)
        return k, xp.asarray(loc) * xp.exp(-_LOG_LN2 / k)

    def _parts(self, t, loc, shape, xp):
        k = xp.asarray(shape)
        log_lam = xp.log(xp.asarray(loc)) - _LOG_LN2 / k
        _, pos, logz = _t_parts(t, log_lam, xp)
        logu = k * logz
        return k, log_lam, pos, logz, logu

    def logpdf(self, t, loc, shape, xp=NP):
        """Log density; at ``t = 0``: ``-inf`` (k > 1), ``-log lambda`` (k = 1), ``+inf``.

        Parameters
        ----------
        t : array_like or TensorVariable
            Lags ``>= 0`` in the data's time unit.
        loc, shape : array_like or TensorVariable
            Median lag (time unit) and shape ``k``; broadcast with ``t``.
        xp : _Namespace, default NP

        Returns
        -------
        ndarray or TensorVariable
            Broadcast shape.
        """
        with xp.errstate():
            k, log_lam, pos, logz, logu = self._parts(t, loc, shape, xp)
            val = xp.log(k) - log_lam + (k - 1.0) * logz - xp.exp(logu)
            at0 = xp.where(k > 1.0, _NEG_INF, xp.where(k < 1.0, math.inf, -log_lam))
            return xp.where(pos, val, at0)

    def logcdf(self, t, loc, shape, xp=NP):
        """``log(1 - exp(-u))`` with ``u = (t/lambda)^k``, finite for tiny ``t``.

        For ``u < 9e-4`` the expansion ``log u - u/2 + u^2/24`` is used (exact to
        double precision, and finite when ``u`` itself underflows); otherwise
        ``log1mexp(-u)`` with ``u`` capped at ``e^6.6`` (beyond it the value is 0 to
        double precision and the cap keeps the gradient 0 rather than NaN).
        Parameters and returns as :meth:`logpdf`; ``-inf`` at 0.
        """
        with xp.errstate():
            k, log_lam, pos, logz, logu = self._parts(t, loc, shape, xp)
            small = logu < _WEIBULL_SMALL_LOGU
            logu_s = xp.where(small, logu, _WEIBULL_SMALL_LOGU - 1.0)
            u_s = xp.exp(logu_s)
            val_small = logu_s - 0.5 * u_s + u_s * u_s / 24.0
            # clip at u = e^6.6 ~ 735, where log F = -exp(-u) > -1e-319 is already 0 in
            # double precision: keeps the gradient 0 instead of 0 * inf = NaN
            u_b = xp.exp(xp.minimum(xp.where(small, 0.0, logu), _WEIBULL_LARGE_LOGU))
            val_big = xp.log1mexp(-u_b)
            val = xp.where(small, val_small, val_big)
            return xp.where(pos, val, _NEG_INF)

    def logsf(self, t, loc, shape, xp=NP):
        """``-(t/lambda)^k``; ``0`` at ``t = 0``. Parameters as :meth:`logpdf`."""
        with xp.errstate():
            k, log_lam, pos, logz, logu = self._parts(t, loc, shape, xp)
            return xp.where(pos, -xp.exp(logu), 0.0)

    def quantile(self, q, loc, shape):
        """``lambda * (-log(1 - q))^(1/k)`` (numpy)."""
        k, lam = self.natural_params(loc, shape)
        q = np.asarray(q, dtype=np.float64)
        return lam * (-np.log1p(-q)) ** (1.0 / k)

    def median(self, loc, shape):
        """The median is ``loc`` itself (broadcast with ``shape``)."""
        return np.asarray(loc, dtype=np.float64) + 0.0 * np.asarray(shape, dtype=np.float64)

    def mean(self, loc, shape):
        """``lambda * Gamma(1 + 1/k)`` (numpy)."""
        k, lam = self.natural_params(loc, shape)
        return lam * np.exp(sc.gammaln(1.0 + 1.0 / k))

    def rvs(self, rng, loc, shape, size=None):
        """Weibull draws ``lambda * rng.weibull(k, size)`` in the data's time unit."""
        rng = np.random.default_rng(rng)
        k, lam = self.natural_params(loc, shape)
        return lam * rng.weibull(k, size=size)


LAG_FAMILIES: dict[str, LagFamily] = {"gamma": Gamma(), "weibull": Weibull()}
"""Registry of lag families by name."""


def get_lag(name: str | LagFamily) -> LagFamily:
    """Return the lag family called ``name`` (a family instance is returned as is).

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`LAG_FAMILIES`; the message lists the known names.
    """
    if isinstance(name, LagFamily):
        return name
    try:
        return LAG_FAMILIES[str(name).lower()]
    except KeyError:
        known = ", ".join(sorted(LAG_FAMILIES))
        raise ValueError(f"unknown lag family {name!r}; known families: {known}") from None
