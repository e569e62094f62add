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

Every family is parameterised by ``loc`` followed by the parameters in its
:attr:`LagFamily.extra_params` (:attr:`LagFamily.param_names` lists them all, in the
order the methods take them): ``loc > 0`` is a location in the data's time unit (see
:attr:`LagFamily.location`), ``shape > 0`` a shape, and the generalized gamma adds a
real ``q``.

=================  ===================  ===========================  ==================
family             parameters           ``loc`` is                   contains
=================  ===================  ===========================  ==================
``exponential``    loc                  median (``ln 2 / rate``)     --
``weibull``        loc, shape ``k``     median                       exponential (k=1)
``gamma``          loc, shape ``k``     mean                         exponential (k=1)
``lognormal``      loc, shape ``1/σ``   median (``e^μ``)             --
``gengamma``       loc, shape, ``q``    ``e^μ``, mode of ``log t``   all of the above
=================  ===================  ===========================  ==================

Everything is computed in log space, and the log CDF and log survival function stay
finite and accurate where ``P`` or ``Q = 1 - P`` underflow double precision.

Adding a family means writing one subclass of :class:`LagFamily` and adding it to
:data:`LAG_FAMILIES`; a parameter the model does not know yet needs a :class:`LagParam`
(and its prior key in :data:`bayesconv.model.DEFAULT_PRIORS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.special as sc

from .namespace import LN2, NP

__all__ = [
    "LAG_FAMILIES",
    "NP",
    "Exponential",
    "Gamma",
    "GammaSuffStats",
    "GenGamma",
    "LagFamily",
    "LagParam",
    "LogNormal",
    "Weibull",
    "get_lag",
    "log_gamma_pq",
]

_LOG_LN2 = math.log(LN2)
# An upper bound below 0 for log-ratios fed to log1mexp, so that equal log-CDFs (far tails,
# where a bin's probability underflows) give a very negative but finite value, never -inf/NaN.
_TINY_NEG = -1e-300
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
    xp : Namespace
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
    xp : Namespace, default NP
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
    double precision in that region for all ``k``. Each formula is evaluated only on
    the elements that use it.

    With ``xp=PT`` the graph is one fused Op (:func:`bayesconv.lags.incgamma.log_gamma_pq_pt`:
    series / continued fraction in log space with the shape derivative from the same pass,
    compiled by numba), about five times cheaper per gradient than PyTensor's generic
    ``gammainc``/``gammaincc``; the numpy formulas here are its tested reference.
    """
    if xp.name == "pytensor":
        from .incgamma import log_gamma_pq_pt

        return log_gamma_pq_pt(k, x)
    # numpy: each formula only on the elements that use it (the uniform expansion is needed
    # in the far tails alone, scipy's P below x = k, its Q above), the rest never computed
    with xp.errstate():
        k, x = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(x, dtype=float))
        shape = k.shape
        k, x = k.ravel(), x.ravel()
        log_p = np.full(k.shape, _NEG_INF)
        log_q = np.zeros(k.shape)
        pos = x > 0.0
        k, x = k[pos], x[pos]
        logx = xp.log(x)
        lower = x < k
        lead = xp.where(lower, k * logx - x - xp.gammaln(k + 1.0),
                        (k - 1.0) * logx - x - xp.gammaln(k))
        use_asym = lead < _UNDERFLOW_SWITCH
        use_gi = lower & ~use_asym
        use_gc = ~lower & ~use_asym
        # the direct value: log P where x < k, log Q elsewhere
        direct = np.empty(k.shape)
        if use_asym.any():
            direct[use_asym] = _log_gamma_uniform(k[use_asym], x[use_asym], logx[use_asym], xp)
        direct[use_gi] = xp.log(xp.gammainc(k[use_gi], x[use_gi]))
        direct[use_gc] = xp.log(xp.gammaincc(k[use_gc], x[use_gc]))
        other = xp.log1mexp(direct)
        log_p[pos] = xp.where(lower, direct, other)
        log_q[pos] = xp.where(lower, other, direct)
    return log_p.reshape(shape), log_q.reshape(shape)


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


class LagParam(NamedTuple):
    """How the model samples one lag parameter besides ``loc``.

    Attributes
    ----------
    name : str
        Argument name in the family's methods (``"shape"``, ``"q"``).
    var : str
        Posterior variable, per cohort (``"lag_shape"``, ``"lag_q"``).
    prior : str
        Key of its ``Normal(mu, sigma)`` prior in :data:`bayesconv.model.DEFAULT_PRIORS`,
        on the log scale when ``positive``.
    positive : bool
        Sampled as ``log`` of the parameter (the model's variable ``log_<var>``).
    shared : bool
        One value for all cohorts (stored per cohort, all equal) instead of one
        independent value per cohort. Neither is pooled hierarchically.
    """

    name: str
    var: str
    prior: str
    positive: bool = True
    shared: bool = False


#: The shape parameter: positive, one per cohort, prior on log shape.
SHAPE_PARAM = LagParam("shape", "lag_shape", "log_lag_shape", positive=True, shared=False)
#: The generalized gamma's ``q``: real, one value shared by all cohorts.
Q_PARAM = LagParam("q", "lag_q", "lag_q", positive=False, shared=True)


@dataclass(frozen=True)
class LagFamily:
    """Base class of lag distributions parameterised by ``loc`` and :attr:`extra_params`.

    Subclasses set the class attributes and implement the ``natural_params``,
    ``logpdf``, ``logcdf``, ``logsf``, ``quantile``, ``mean`` and ``rvs`` methods.
    Every method takes the parameters positionally in the order of
    :attr:`param_names` (``(t, loc, shape, xp)`` for two-parameter families,
    ``(t, loc, xp)`` for the exponential, ``(t, loc, shape, q, xp)`` for the
    generalized gamma); generic code calls ``family.logcdf(t, *params, xp=xp)``.
    All log-density methods take ``xp`` (:data:`NP` or :data:`PT`) and broadcast
    ``t`` and the parameters together; ``t`` is in the data's time unit and must be
    ``>= 0``.

    Attributes
    ----------
    name : str
        Registry key.
    location : str
        Which quantity ``loc`` is: ``"mean"``, ``"median"`` or ``"log-mode"``.
    extra_params : tuple of LagParam
        Parameters after ``loc`` and how the model samples them.
    param_names : tuple of str
        ``("loc",)`` followed by the names of :attr:`extra_params`.
    suff_stats : callable or None
        ``suff_stats(t, n, axis)`` when the exact-time likelihood reduces to a few sums
        (see :meth:`Gamma.suff_stats`), else ``None``.
    suff_stat_names : tuple of str
        Short names of the fields of ``suff_stats`` (the first is always ``"n"``); the
        likelihood stores them as ``"stats_<name>"``.
    loglik_exact_from_stats : callable or None
        Companion of ``suff_stats``: ``loglik_exact_from_stats(*stats, *params, xp)``.
    """

    name: ClassVar[str] = ""
    location: ClassVar[str] = ""
    extra_params: ClassVar[tuple[LagParam, ...]] = (SHAPE_PARAM,)
    suff_stats: ClassVar[Callable[..., Any] | None] = None
    suff_stat_names: ClassVar[tuple[str, ...]] = ()
    loglik_exact_from_stats: ClassVar[Callable[..., Any] | None] = None

    @property
    def param_names(self) -> tuple[str, ...]:
        """``("loc", ...)``: the parameters every method takes after ``t``, in order."""
        return ("loc",) + tuple(p.name for p in self.extra_params)

    def natural_params(self, loc, shape, xp=NP):
        """Return the textbook parameters (``(k, scale)`` for gamma and Weibull)."""
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

    def log_mass(self, lower, upper, *params, xp=NP):
        """``log(F(upper) − F(lower))`` for ``0 <= lower < upper``, the lag's mass in a bin.

        Computed in log space from the log CDF, or from the log survival function where
        ``lower`` is in the upper tail (S(lower) < 1/2), where differences of CDFs near 1 lose
        their digits; a bin whose mass underflows gives a very negative but finite value,
        never -inf or NaN, so that gradients stay defined.
        """
        lcb = self.logcdf(upper, *params, xp=xp)
        lca = self.logcdf(lower, *params, xp=xp)
        lsa = self.logsf(lower, *params, xp=xp)
        lsb = self.logsf(upper, *params, xp=xp)
        via_cdf = lcb + xp.log1mexp(xp.minimum(lca - lcb, _TINY_NEG))
        via_sf = lsa + xp.log1mexp(xp.minimum(lsb - lsa, _TINY_NEG))
        return xp.where(lsa < np.log(0.5), via_sf, via_cdf)

    def quantile(self, q, loc, shape):
        """Quantile function (numpy), in the data's time unit."""
        raise NotImplementedError

    def median(self, *params):
        """Median lag (numpy), in the data's time unit."""
        return self.quantile(0.5, *params)

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
    suff_stat_names: ClassVar[tuple[str, ...]] = ("n", "slogt", "st")

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
        xp : Namespace, default NP

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
        xp : Namespace, default NP

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
        return GammaSuffStats(*_suff_sums(t, n, axis, None, np.log, lambda x: x))

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
        xp : Namespace, default NP

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
        xp : Namespace, default NP

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


def _suff_sums(t, n, axis, *funcs):
    """``sum n * f(t)`` for each ``f`` in ``funcs`` (``f = None``: ``sum n``), validated.

    Rows with ``n = 0`` are ignored whatever their ``t``; others need finite ``t > 0``.
    """
    t = np.asarray(t, dtype=np.float64)
    n = np.ones_like(t) if n is None else np.asarray(n, dtype=np.float64)
    t, n = np.broadcast_arrays(t, n)
    used = n > 0
    if np.any(used & ~(np.isfinite(t) & (t > 0))):
        raise ValueError("suff_stats needs finite exact lags t > 0 where n > 0")
    t_safe = np.where(used, t, 1.0)
    w = np.where(used, n, 0.0)
    return tuple(np.sum(w if f is None else w * f(t_safe), axis=axis) for f in funcs)


class ExponentialSuffStats(NamedTuple):
    """Sufficient statistics of exactly observed exponential lags: ``sum n``, ``sum n t``."""

    N: Any
    S_t: Any


class LogNormalSuffStats(NamedTuple):
    """Sufficient statistics of exactly observed log-normal lags.

    ``sum n``, ``sum n log t`` and ``sum n (log t)^2`` (``t`` in the data's time unit).
    """

    N: Any
    S_logt: Any
    S_logt2: Any


_WEIBULL = Weibull()


@dataclass(frozen=True)
class Exponential(LagFamily):
    """Exponential lag distribution parameterised by its median (one parameter).

    ``loc`` is the median lag ``m > 0`` (data's time unit); the scale (mean) is
    ``theta = m / ln 2`` and the rate ``1 / theta``. ``log f(t) = -log theta - t/theta``,
    ``log S(t) = -t/theta``, ``log F(t) = log(1 - exp(-t/theta))``. It is the Weibull with
    ``k = 1`` (same ``loc``), whose formulas (and their care for tiny and huge ``t``) are
    reused. Methods take ``(t, loc, xp)``: there is no shape, so a model with this family
    has no ``lag_shape`` variable. The memoryless lag: a constant hazard from time 0.
    """

    name: ClassVar[str] = "exponential"
    location: ClassVar[str] = "median"
    extra_params: ClassVar[tuple[LagParam, ...]] = ()
    suff_stat_names: ClassVar[tuple[str, ...]] = ("n", "st")

    def natural_params(self, loc, xp=NP):
        """Return ``(theta,)``, the scale ``loc / ln 2`` (scipy ``expon(scale=theta)``)."""
        return (xp.asarray(loc) / LN2,)

    def logpdf(self, t, loc, xp=NP):
        """``-log theta - t/theta``; ``-log theta`` at ``t = 0``.

        Parameters
        ----------
        t : array_like or TensorVariable
            Lags ``>= 0`` in the data's time unit.
        loc : array_like or TensorVariable
            Median lag (time unit); broadcast with ``t``.
        xp : Namespace, default NP
        """
        return _WEIBULL.logpdf(t, loc, 1.0, xp=xp)

    def logcdf(self, t, loc, xp=NP):
        """``log(1 - exp(-t/theta))`` (:meth:`Weibull.logcdf` with ``k = 1``); ``-inf`` at 0."""
        return _WEIBULL.logcdf(t, loc, 1.0, xp=xp)

    def logsf(self, t, loc, xp=NP):
        """``-t/theta``; ``0`` at ``t = 0``."""
        return _WEIBULL.logsf(t, loc, 1.0, xp=xp)

    def quantile(self, q, loc):
        """``-theta log(1 - q)`` (numpy)."""
        return _WEIBULL.quantile(q, loc, 1.0)

    def median(self, loc):
        """The median is ``loc`` itself."""
        return np.asarray(loc, dtype=np.float64) + 0.0

    def mean(self, loc):
        """``theta = loc / ln 2`` (numpy)."""
        return np.asarray(loc, dtype=np.float64) / LN2

    def rvs(self, rng, loc, size=None):
        """Exponential draws ``rng.exponential(theta, size)`` in the data's time unit."""
        rng = np.random.default_rng(rng)
        return rng.exponential(np.asarray(loc, dtype=np.float64) / LN2, size=size)

    @staticmethod
    def suff_stats(t, n=None, axis=None) -> ExponentialSuffStats:
        """``(sum n, sum n t)`` of exactly observed lags; as :meth:`Gamma.suff_stats`."""
        return ExponentialSuffStats(*_suff_sums(t, n, axis, None, lambda x: x))

    @staticmethod
    def loglik_exact_from_stats(N, S_t, loc, xp=NP):
        """``sum n log f(t) = N log(ln 2 / loc) - S_t ln 2 / loc``."""
        log_theta = xp.log(xp.asarray(loc)) - _LOG_LN2
        return -N * log_theta - S_t * xp.exp(-log_theta)


_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class LogNormal(LagFamily):
    """Log-normal lag distribution parameterised by its median and ``1 / sigma``.

    ``log t ~ Normal(mu, sigma^2)``; ``loc`` is the median lag ``m = e^mu`` (data's time
    unit) and ``shape`` is ``k = 1 / sigma`` (larger is tighter, as for the gamma and
    Weibull shapes; ``mu`` and ``sigma`` are orthogonal in the Fisher information). With
    ``z = k log(t/m)``: ``log f(t) = log k - log t - log(2 pi)/2 - z^2/2``,
    ``log F(t) = log Phi(z)``, ``log S(t) = log Phi(-z)``, through a log Phi that stays
    finite in both tails (scipy ``log_ndtr``; :func:`_pt_log_ndtr` for PyTensor).
    A hazard that rises then falls: for lags spread over orders of magnitude.
    """

    name: ClassVar[str] = "lognormal"
    location: ClassVar[str] = "median"
    suff_stat_names: ClassVar[tuple[str, ...]] = ("n", "slogt", "slogt2")

    def natural_params(self, loc, shape, xp=NP):
        """Return ``(sigma, scale)`` = ``(1 / shape, loc)`` (scipy ``lognorm(s, scale=)``)."""
        return 1.0 / xp.asarray(shape), xp.asarray(loc) + 0.0 * xp.asarray(shape)

    def _z(self, t, loc, shape, xp):
        k = xp.asarray(shape)
        _, pos, logz = _t_parts(t, xp.log(xp.asarray(loc)), xp)
        return k, pos, logz, k * logz

    def logpdf(self, t, loc, shape, xp=NP):
        """``log k - log t - log(2 pi)/2 - z^2/2``; ``-inf`` at ``t = 0``.

        Parameters
        ----------
        t : array_like or TensorVariable
            Lags ``>= 0`` in the data's time unit.
        loc, shape : array_like or TensorVariable
            Median lag (time unit) and ``k = 1 / sigma``; broadcast with ``t``.
        xp : Namespace, default NP
        """
        with xp.errstate():
            k, pos, logz, z = self._z(t, loc, shape, xp)
            t_safe = xp.where(pos, xp.asarray(t), 1.0)
            val = xp.log(k) - xp.log(t_safe) - _LOG_SQRT_2PI - 0.5 * z * z
            return xp.where(pos, val, _NEG_INF)

    def logcdf(self, t, loc, shape, xp=NP):
        """``log Phi(z)``; ``-inf`` at 0. Parameters as :meth:`logpdf`."""
        with xp.errstate():
            k, pos, logz, z = self._z(t, loc, shape, xp)
            return xp.where(pos, xp.log_ndtr(z), _NEG_INF)

    def logsf(self, t, loc, shape, xp=NP):
        """``log Phi(-z)``; ``0`` at 0. Parameters as :meth:`logpdf`."""
        with xp.errstate():
            k, pos, logz, z = self._z(t, loc, shape, xp)
            return xp.where(pos, xp.log_ndtr(-z), 0.0)

    def quantile(self, q, loc, shape):
        """``loc * exp(ndtri(q) / k)`` (numpy)."""
        return np.asarray(loc, dtype=np.float64) * np.exp(
            sc.ndtri(np.asarray(q, dtype=np.float64)) / np.asarray(shape, dtype=np.float64))

    def median(self, loc, shape):
        """The median is ``loc`` itself (broadcast with ``shape``)."""
        return np.asarray(loc, dtype=np.float64) + 0.0 * np.asarray(shape, dtype=np.float64)

    def mean(self, loc, shape):
        """``loc * exp(sigma^2 / 2)`` (numpy)."""
        return np.asarray(loc, dtype=np.float64) * np.exp(
            0.5 / np.asarray(shape, dtype=np.float64) ** 2)

    def rvs(self, rng, loc, shape, size=None):
        """``loc * exp(Z / k)`` with standard normal ``Z``, in the data's time unit."""
        rng = np.random.default_rng(rng)
        return np.asarray(loc, dtype=np.float64) * np.exp(
            rng.standard_normal(size) / np.asarray(shape, dtype=np.float64))

    @staticmethod
    def suff_stats(t, n=None, axis=None) -> LogNormalSuffStats:
        """``(sum n, sum n log t, sum n (log t)^2)``; as :meth:`Gamma.suff_stats`."""
        return LogNormalSuffStats(*_suff_sums(t, n, axis, None, np.log,
                                              lambda x: np.log(x) ** 2))

    @staticmethod
    def loglik_exact_from_stats(N, S_logt, S_logt2, loc, shape, xp=NP):
        """``N (log k - log(2 pi)/2) - S_logt - k^2/2 (S_logt2 - 2 log(m) S_logt + N log(m)^2)``."""
        k = xp.asarray(shape)
        lm = xp.log(xp.asarray(loc))
        quad = S_logt2 - 2.0 * lm * S_logt + N * lm * lm
        return N * (xp.log(k) - _LOG_SQRT_2PI) - S_logt - 0.5 * k * k * quad


# Below |q| = 5e-3 the generalized gamma's CDF uses Temme's uniform expansion with its
# first coefficient (error O(q^3): ~3e-10 in log F at |q| = 3e-3, 2e-8 at 1e-2, measured
# against mpmath); above, the incomplete gamma with k = 1/q^2 <= 4e4.
_GG_BAND = 5e-3
# Below |q| = 0.18 (k = 1/q^2 > 30) the Stirling remainder of gammaln(k) is a series in q^2.
_GG_STIRLING_Q = 0.18
# x = q w at which exp(x) / q^2 would overflow: the density and tail are 0 to double precision.
_GG_LOG_MAX = 700.0
# Outside e^-40 < u < e^16 the incomplete gamma of shape k <= 4e4 is a short series.
_GG_LOG_U_SMALL = 40.0
_GG_LOG_U_BIG = 16.0


def _h_expm1(x, xp):
    """``h(x) = (e^x - 1 - x) / x^2`` (``1/2`` at 0), by its Taylor series for ``|x| < 0.01``."""
    small = xp.abs(x) < 1e-2
    xs = xp.where(small, x, 0.0)
    xb = xp.where(small, 1.0, x)
    series = 0.5 + xs * (1.0 / 6 + xs * (1.0 / 24 + xs * (1.0 / 120 + xs * (
        1.0 / 720 + xs / 5040.0))))
    return xp.where(small, series, (xp.expm1(xb) - xb) / (xb * xb))


def _gg_stirling(q, xp):
    """``gammaln(k) - (k - 1/2) log k + k - log(2 pi)/2`` at ``k = 1/q^2`` (``0`` at q = 0).

    Series ``q^2/12 - q^6/360 + q^10/1260 - q^14/1680`` (DLMF 5.11.1) for ``|q| < 0.18``,
    where the next term is below 1e-16; direct elsewhere.
    """
    small = xp.abs(q) < _GG_STIRLING_Q
    q2 = xp.where(small, q * q, 0.0)
    series = q2 * (1.0 / 12 - q2 * q2 * (1.0 / 360 - q2 * q2 * (1.0 / 1260 - q2 * q2 / 1680.0)))
    qb = xp.where(small, 1.0, q)
    k = 1.0 / (qb * qb)
    direct = xp.gammaln(k) - (k - 0.5) * xp.log(k) + k - _LOG_SQRT_2PI
    return xp.where(small, series, direct)


@dataclass(frozen=True)
class GenGamma(LagFamily):
    """Generalized gamma lag distribution, Prentice (1974) parametrization ``(mu, sigma, q)``.

    With ``w = (log t - mu) / sigma`` and, for ``q != 0``, ``u = q^-2 exp(q w)``, ``u`` is
    standard gamma with shape ``q^-2`` (Prentice 1974, *Biometrika* 61:539; Cox, Chu,
    Schneider & Muñoz 2007, *Stat Med* 26:4352, eq. 1)::

        log f(t) = log(|q| / sigma) - log t + q^-2 log u - u - gammaln(q^-2)
        F(t) = P(q^-2, u) (q > 0),   Q(q^-2, u) (q < 0: the reflection w -> -w),
        q = 0: the log-normal, F(t) = Phi(w).

    It contains the Weibull (``q = 1``, Weibull shape ``1/sigma``), the gamma (``q = sigma``,
    gamma shape ``1/sigma^2``), the log-normal (``q = 0``) and the exponential
    (``q = sigma = 1``). Parameters here: ``loc = e^mu`` (data's time unit), the lag at
    which the density of ``log t`` peaks for every ``q`` (the median of the log-normal
    member, the scale of the Weibull member), ``shape = 1 / sigma`` (as :class:`LogNormal`)
    and ``q`` (real; the model shares one ``q`` across cohorts, see
    :data:`Q_PARAM`). scipy: ``gengamma(a=q^-2, c=q shape, scale=loc q^(2/(q shape)))``.

    Numerics: the density is written as ``log shape - log t - log(2 pi)/2 - S(q) -
    w^2 h(q w)`` with ``h(x) = (e^x - 1 - x)/x^2`` and ``S`` the Stirling remainder of
    ``gammaln(q^-2)`` (:func:`_gg_stirling`), which is exact for every ``q`` and continuous
    through ``q = 0``. The CDF and survival use :func:`log_gamma_pq` (the fused numba Op on
    PyTensor) for ``|q| >= 5e-3`` and, in the band ``|q| < 5e-3`` (incomplete gamma shape
    above 4e4), Temme's uniform expansion (Temme 1979; DLMF 8.12.3-8.12.10) with its first
    coefficient: ``F = Phi(w~) - q phi(w~) c0(eta)``, ``w~ = w sqrt(2 h(q w))``,
    ``eta = q w~``, ``c0(eta) = 1/(e^{q w} - 1) - 1/eta`` (error O(q^3)), which is exactly
    the log-normal at ``q = 0``. Branches get safe inputs ("double where") so gradients
    have no NaN.
    """

    name: ClassVar[str] = "gengamma"
    location: ClassVar[str] = "log-mode"
    extra_params: ClassVar[tuple[LagParam, ...]] = (SHAPE_PARAM, Q_PARAM)

    def natural_params(self, loc, shape, q, xp=NP):
        """Return scipy's ``gengamma`` ``(a, c, scale)`` (valid for ``q != 0``).

        ``a = 1/q^2``, ``c = q * shape``, ``scale = loc * exp(2 log|q| / (q * shape))``.
        """
        q = xp.asarray(q)
        k = xp.asarray(shape)
        c = q * k
        return 1.0 / (q * q), c, xp.asarray(loc) * xp.exp(2.0 * xp.log(xp.abs(q)) / c)

    def _w(self, t, loc, shape, xp):
        k = xp.asarray(shape)
        t_safe, pos, logz = _t_parts(t, xp.log(xp.asarray(loc)), xp)
        return k, t_safe, pos, k * logz

    def logpdf(self, t, loc, shape, q, xp=NP):
        """Log density ``log shape - log t - log(2 pi)/2 - S(q) - w^2 h(q w)``.

        Parameters
        ----------
        t : array_like or TensorVariable
            Lags ``>= 0`` in the data's time unit.
        loc, shape, q : array_like or TensorVariable
            ``e^mu`` (time unit), ``1/sigma`` and ``q``; broadcast with ``t``.
        xp : Namespace, default NP

        Returns
        -------
        ndarray or TensorVariable
            At ``t = 0``: ``-inf`` for ``q <= 0`` or ``shape > q``, ``+inf`` for
            ``shape < q``, finite at ``shape = q``.
        """
        with xp.errstate():
            q = xp.asarray(q)
            k, t_safe, pos, w = self._w(t, loc, shape, xp)
            x = q * w
            aq = xp.abs(q)
            log_aq = xp.log(xp.where(aq > 0.0, aq, 1.0))
            ovf = (x - 2.0 * log_aq) > _GG_LOG_MAX
            xc = xp.where(ovf, 0.0, x)
            wc = xp.where(ovf, 0.0, w)
            val = (xp.log(k) - xp.log(t_safe) - _LOG_SQRT_2PI - _gg_stirling(q, xp)
                   - wc * wc * _h_expm1(xc, xp))
            val = xp.where(ovf, _NEG_INF, val)
            # t = 0: t^(shape/q - 1) for q > 0, 0 otherwise
            qp = xp.where(q > 0.0, q, 1.0)
            gam = 1.0 / (qp * qp)
            edge = (gam - 1.0) * xp.log(gam) - xp.gammaln(gam) - xp.log(xp.asarray(loc))
            at0 = xp.where(q > 0.0, xp.where(k > q, _NEG_INF, xp.where(k < q, math.inf, edge)),
                           _NEG_INF)
            return xp.where(pos, val, at0)

    def _log_cdf_sf(self, t, loc, shape, q, xp):
        with xp.errstate():
            q = xp.asarray(q)
            k, t_safe, pos, w = self._w(t, loc, shape, xp)
            band = xp.abs(q) < _GG_BAND
            # incomplete gamma branch, |q| >= _GG_BAND
            qg = xp.where(band, _GG_BAND, q)
            gam = 1.0 / (qg * qg)
            log_u = xp.log(gam) + qg * w
            # far tails of u by short series (keeps the incomplete gamma's argument sane)
            big = log_u > _GG_LOG_U_BIG
            small = log_u < -_GG_LOG_U_SMALL
            log_u_c = xp.where(big | small, 0.0, log_u)
            lp, lq = log_gamma_pq(gam, xp.exp(log_u_c), xp)
            # u < e^-40: P = u^k / Gamma(k + 1) (1 + O(u)) (A&S 6.5.29)
            lp_small = gam * xp.where(small, log_u, -_GG_LOG_U_SMALL) - xp.gammaln(gam + 1.0)
            lq_small = xp.log1mexp(xp.minimum(lp_small, -1e-300))
            # u > e^16 > 200 k: Q = u^(k-1) e^-u / Gamma(k) sum_j (k-1)...(k-j) / u^j
            # (DLMF 8.11.2, 8 terms: exact to double precision), which also spares the
            # gradient of log Q in u, exp(log f - log Q), a cancellation of two values ~ -u;
            # beyond u = e^700 log Q is -inf and log P is 0 in double precision
            ovf = log_u > _GG_LOG_MAX
            log_u_b = xp.where(big & ~ovf, log_u, _GG_LOG_U_BIG + 1.0)
            inv_u = xp.exp(-log_u_b)
            term = 1.0
            series = 1.0
            for j in range(1, 9):
                term = term * (gam - float(j)) * inv_u
                series = series + term
            lq_big = ((gam - 1.0) * log_u_b - xp.exp(log_u_b) - xp.gammaln(gam)
                      + xp.log(series))
            lp_big = xp.log1mexp(lq_big)
            lp = xp.where(small, lp_small, xp.where(big, xp.where(ovf, 0.0, lp_big), lp))
            lq = xp.where(small, lq_small, xp.where(big, xp.where(ovf, _NEG_INF, lq_big), lq))
            f_gam = xp.where(qg > 0.0, lp, lq)
            s_gam = xp.where(qg > 0.0, lq, lp)
            # uniform expansion branch, |q| < _GG_BAND
            qb = xp.where(band, q, 0.0)
            x = xp.minimum(qb * w, _GG_LOG_MAX)
            r = xp.sqrt(2.0 * _h_expm1(x, xp))
            wt = w * r
            eta = x * r
            small_eta = xp.abs(eta) < 1e-3
            es = xp.where(small_eta, eta, 0.0)
            c0_series = -1.0 / 3 + es * (1.0 / 12 + es * (-2.0 / 135 + es / 864.0))
            xd = xp.where(small_eta, 1.0, x)
            ed = xp.where(small_eta, 1.0, eta)
            c0 = xp.where(small_eta, c0_series, 1.0 / xp.expm1(xd) - 1.0 / ed)
            log_phi = -0.5 * wt * wt - _LOG_SQRT_2PI
            ln_f = xp.log_ndtr(wt)
            ln_s = xp.log_ndtr(-wt)
            floor = -1.0 + 2.0**-52
            f_band = ln_f + xp.log1p(xp.maximum(-qb * c0 * xp.exp(log_phi - ln_f), floor))
            s_band = ln_s + xp.log1p(xp.maximum(qb * c0 * xp.exp(log_phi - ln_s), floor))
            log_f = xp.where(pos, xp.where(band, f_band, f_gam), _NEG_INF)
            log_s = xp.where(pos, xp.where(band, s_band, s_gam), 0.0)
        return log_f, log_s

    def logcdf(self, t, loc, shape, q, xp=NP):
        """``log F(t)``; ``-inf`` at 0. Parameters as :meth:`logpdf` (see the class notes)."""
        return self._log_cdf_sf(t, loc, shape, q, xp)[0]

    def logsf(self, t, loc, shape, q, xp=NP):
        """``log S(t)``; ``0`` at 0. Parameters as :meth:`logpdf` (see the class notes)."""
        return self._log_cdf_sf(t, loc, shape, q, xp)[1]

    def _w_quantile(self, p, shape, q):
        """Quantile of ``w = shape log(t / loc)`` (numpy)."""
        p, k, q = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (p, shape, q)))
        band = np.abs(q) < _GG_BAND
        qg = np.where(band, _GG_BAND, q)
        gam = 1.0 / qg**2
        with np.errstate(all="ignore"):
            u = np.where(qg > 0, sc.gammaincinv(gam, p), sc.gammainccinv(gam, p))
            w_gam = (np.log(u) - np.log(gam)) / qg
            # band: Cornish-Fisher start (F = Phi(w) + q (w^2 + 2) phi(w) / 6 + O(q^2)), then
            # Newton steps on log F (log S above the median) of the uniform expansion
            qb = np.where(band, q, 0.0)
            z = sc.ndtri(p)
            w = z - qb * (z * z + 2.0) / 6.0
            upper = p > 0.5
            target = np.where(upper, np.log1p(-p), np.log(p))
            for _ in range(3):
                ok = np.isfinite(w)
                wf = np.where(ok, w, 0.0)
                lf, ls = self._log_cdf_sf(np.exp(wf), 1.0, 1.0, qb, NP)
                log_dens = -_LOG_SQRT_2PI - _gg_stirling(qb, NP) - wf * wf * _h_expm1(qb * wf, NP)
                lv = np.where(upper, ls, lf)
                step = (lv - target) * np.exp(lv - log_dens)
                w = np.where(ok, w - np.where(upper, -step, step), w)
        return np.where(band, w, w_gam)

    def quantile(self, p, loc, shape, q):
        """``loc * exp(w_p / shape)`` with ``w_p`` from ``gammaincinv`` (numpy).

        ``u_p = gammaincinv(q^-2, p)`` (``gammainccinv`` for ``q < 0``),
        ``w_p = log(q^2 u_p) / q``; in the band ``|q| < 5e-3`` a Cornish-Fisher start refined
        by Newton steps on :meth:`logcdf`.
        """
        k = np.asarray(shape, dtype=np.float64)
        return np.asarray(loc, dtype=np.float64) * np.exp(self._w_quantile(p, k, q) / k)

    def mean(self, loc, shape, q):
        """``loc * q^(-2 s) Gamma(q^-2 + s) / Gamma(q^-2)``, ``s = 1/(q shape)`` (numpy).

        ``inf`` where it does not exist (``q^-2 + s <= 0``); for ``|q| < 5e-3``
        ``loc * exp(sigma^2/2 + q sigma^3/6)`` (cumulant expansion, error O(q^2)).
        """
        loc, k, q = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (loc, shape, q)))
        sigma = 1.0 / k
        band = np.abs(q) < _GG_BAND
        qg = np.where(band, 1.0, q)
        gam = 1.0 / qg**2
        s = sigma / qg
        with np.errstate(all="ignore"):
            direct = np.where(gam + s > 0, -s * np.log(gam) + sc.gammaln(gam + s) - sc.gammaln(gam),
                              np.inf)
        near = 0.5 * sigma**2 + q * sigma**3 / 6.0
        return loc * np.exp(np.where(band, near, direct))

    def rvs(self, rng, loc, shape, q, size=None):
        """``loc * exp(w / shape)``, ``w = log(q^2 u) / q``, ``u ~ Gamma(q^-2)`` (numpy).

        In the band ``|q| < 5e-3`` by inversion (:meth:`quantile` of uniforms).
        """
        rng = np.random.default_rng(rng)
        loc, k, q = (np.asarray(v, dtype=np.float64) for v in (loc, shape, q))
        if size is None:
            size = np.broadcast_shapes(loc.shape, k.shape, q.shape)
        band = np.abs(q) < _GG_BAND
        qg = np.where(band, 1.0, q)
        gam = 1.0 / qg**2
        u = rng.gamma(np.broadcast_to(gam, size))
        w_gam = (np.log(u) - np.log(gam)) / qg
        w_band = self._w_quantile(rng.uniform(size=size), np.broadcast_to(k, size),
                                  np.broadcast_to(np.where(band, q, 0.0), size))
        return loc * np.exp(np.where(band, w_band, w_gam) / k)


LAG_FAMILIES: dict[str, LagFamily] = {
    "exponential": Exponential(),
    "weibull": Weibull(),
    "gamma": Gamma(),
    "lognormal": LogNormal(),
    "gengamma": GenGamma(),
}
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
