"""Fused log incomplete gamma functions with their shape derivative, for the gamma lag.

The gamma lag's log-CDF and log-survival are ``log P(k, x)`` and ``log Q(k, x)``, the
regularized incomplete gamma functions (DLMF 8.2.4) at ``x = t / theta``. Sampling needs them
and their derivative in the shape ``k`` for every distinct right-censored age, which dominates
the cost of a fit. PyTensor's generic ``gammainc``/``gammaincc`` and their gradients evaluate
the value and the shape derivative in separate loops, for both functions, plus the
underflow-safe expansion that :func:`bayesconv.lags.log_gamma_pq` adds; this module does it in
one pass per element, in log space (so nothing underflows), compiled with numba:

* ``x <= 1`` or ``x <= k``: the power series of ``P`` (DLMF 8.7.1; Abramowitz & Stegun 6.5.29),
  ``P = x^k e^-x / Gamma(k + 1) * sum_n x^n / ((k + 1) ... (k + n))``, differentiated term by term;
* otherwise: the continued fraction of ``Q`` (DLMF 8.9.2) through the convergent recurrence of
  Cephes ``igamc`` (Moshier 1989, *Methods and Programs for Mathematical Functions*),
  differentiated through the recurrence;

and the other function as ``log(1 - exp(.))`` (Maechler 2012). The kernels say
``fastmath=False`` explicitly: numba compiles a callee with the caller's fast-math setting when
the callee leaves it unset, and then serves that compile (in memory and from its on-disk cache)
to every later caller, so one fast-math caller (PyTensor's default flags in a user's own code)
changed the draws of every later fit. This is the same split Cephes
(hence scipy) uses. The numpy/scipy formulas in :mod:`bayesconv.lags` remain the reference the
tests hold this kernel to.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_EPS = np.finfo(np.float64).eps
_BIG = 4503599627370496.0  # 2**52, Cephes' rescaling threshold
_BIGINV = 2.22044604925031308085e-16
_MAX_ITER = 100_000
_LN2 = math.log(2.0)


@numba.njit(cache=True, fastmath=False)
def _digamma(x):
    """Digamma for ``x > 0``: recurrence up to ``x >= 10``, then the asymptotic series
    (DLMF 5.11.2) with Bernoulli terms up to ``B_12``; relative error ~1e-16."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (
        1.0 / 240 - inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 - inv2 / 12.0))))))
    return result + math.log(x) - 0.5 * inv - series


@numba.njit(cache=True, fastmath=False)
def _log1mexp(a):
    """``log(1 - exp(a))`` for ``a <= 0`` (Maechler 2012)."""
    if a > -_LN2:
        return math.log(-math.expm1(a))
    return math.log1p(-math.exp(a))


@numba.njit(cache=True, fastmath=False)
def _lgpq_scalar(k, x):
    """``(log P, log Q, d log P / dk, d log Q / dk)`` at one point, ``k > 0``, ``x >= 0``."""
    if x <= 0.0:
        return -math.inf, 0.0, 0.0, 0.0
    if math.isinf(x):
        return 0.0, -math.inf, 0.0, 0.0
    logx = math.log(x)
    if x <= 1.0 or x <= k:
        s = 1.0
        ds = 0.0
        t = 1.0
        dt = 0.0
        kn = k
        for _ in range(_MAX_ITER):
            kn += 1.0
            r = x / kn
            dt = r * (dt - t / kn)
            t *= r
            s += t
            ds += dt
            if t <= _EPS * s and abs(dt) <= _EPS * abs(ds):
                break
        log_p = k * logx - x - math.lgamma(k + 1.0) + math.log(s)
        dlog_p = logx - _digamma(k + 1.0) + ds / s
        if log_p >= 0.0:  # rounding at P ~ 1 for tiny k
            log_p = -1e-300
        log_q = _log1mexp(log_p)
        dlog_q = -math.exp(log_p - log_q) * dlog_p
        return log_p, log_q, dlog_p, dlog_q
    # continued fraction for Q and its k-derivative (z, y*c depend on k: dz/dk = -1,
    # d(yc)/dk = -c)
    y = 1.0 - k
    z = x + y + 1.0
    c = 0.0
    pkm2 = 1.0
    qkm2 = x
    pkm1 = x + 1.0
    qkm1 = z * x
    dpkm2 = 0.0
    dqkm2 = 0.0
    dpkm1 = 0.0
    dqkm1 = -x
    f = pkm1 / qkm1
    df = -f * dqkm1 / qkm1
    for _ in range(_MAX_ITER):
        c += 1.0
        y += 1.0
        z += 2.0
        yc = y * c
        pk = pkm1 * z - pkm2 * yc
        qk = qkm1 * z - qkm2 * yc
        dpk = dpkm1 * z - pkm1 - dpkm2 * yc + pkm2 * c
        dqk = dqkm1 * z - qkm1 - dqkm2 * yc + qkm2 * c
        done = False
        if qk != 0.0:
            f_new = pk / qk
            df_new = (dpk - f_new * dqk) / qk
            done = abs(f_new - f) <= _EPS * abs(f_new) and abs(df_new - df) <= _EPS * abs(df_new)
            f = f_new
            df = df_new
        pkm2 = pkm1
        pkm1 = pk
        qkm2 = qkm1
        qkm1 = qk
        dpkm2 = dpkm1
        dpkm1 = dpk
        dqkm2 = dqkm1
        dqkm1 = dqk
        if abs(pk) > _BIG:
            pkm2 *= _BIGINV
            pkm1 *= _BIGINV
            qkm2 *= _BIGINV
            qkm1 *= _BIGINV
            dpkm2 *= _BIGINV
            dpkm1 *= _BIGINV
            dqkm2 *= _BIGINV
            dqkm1 *= _BIGINV
        if done:
            break
    log_q = k * logx - x - math.lgamma(k) + math.log(f)
    dlog_q = logx - _digamma(k) + df / f
    if log_q >= 0.0:
        log_q = -1e-300
    log_p = _log1mexp(log_q)
    dlog_p = -math.exp(log_q - log_p) * dlog_q
    return log_p, log_q, dlog_p, dlog_q


@numba.njit(cache=True, fastmath=False)
def log_gamma_pq_kernel(k, x):
    """Vectorized kernel: arrays ``k`` and ``x`` of one shape → four arrays of that shape.

    Returns ``log P``, ``log Q``, ``d log P / dk`` and ``d log Q / dk``.
    """
    kf = k.ravel()
    xf = x.ravel()
    n = xf.size
    lp = np.empty(n)
    lq = np.empty(n)
    dlp = np.empty(n)
    dlq = np.empty(n)
    for i in range(n):
        lp[i], lq[i], dlp[i], dlq[i] = _lgpq_scalar(kf[i], xf[i])
    shape = x.shape
    return lp.reshape(shape), lq.reshape(shape), dlp.reshape(shape), dlq.reshape(shape)


# ---------------------------------------------------------------------------
# PyTensor graph (the Op itself, numba dispatch for nutpie and ``perform`` for the C/Python
# back ends, is in incgamma_op.py)
# ---------------------------------------------------------------------------


def log_gamma_pq_pt(k, x):
    """PyTensor graph of ``(log P(k, x), log Q(k, x))`` through the fused kernel.

    Parameters
    ----------
    k, x : TensorVariable or array_like
        Shape ``k > 0`` and argument ``x >= 0``; broadcast against each other.

    Returns
    -------
    log_p, log_q : TensorVariable
        Broadcast shape, float64. Gradients in ``k`` and ``x`` come from the same pass.
    """
    import pytensor.tensor as pt

    from .incgamma_op import LOG_GAMMA_PQ

    k = pt.as_tensor_variable(k).astype("float64")
    x = pt.as_tensor_variable(x).astype("float64")
    k, x = pt.broadcast_arrays(k, x)
    log_p, log_q, _, _ = LOG_GAMMA_PQ(k, x)
    return log_p, log_q
