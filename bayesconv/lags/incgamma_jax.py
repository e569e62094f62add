"""The fused incomplete-gamma kernel of :mod:`bayesconv.lags.incgamma` in JAX.

The same algorithm as the numba kernel, element for element: the power series of ``P``
(DLMF 8.7.1) where ``x <= 1`` or ``x <= k``, the continued fraction of ``Q`` (DLMF 8.9.2,
Cephes ``igamc``'s recurrence, Moshier 1989) elsewhere, each differentiated in ``k`` along the
way, in log space, and the other function as ``log(1 - exp(.))`` (Maechler 2012). Vectorised:
both iterations run on every element (each on benign inputs where the other branch applies)
in a ``lax.while_loop`` until every element has converged, then each element takes its
branch. PyTensor's JAX back end calls it for the ``LogGammaPQ`` Op
(:mod:`bayesconv.lags.incgamma_op`), so that ``fit(sampler="numpyro")``, ``"blackjax"`` and
``"nutpie-jax"`` run gamma and generalized-gamma models; the tests hold it to the numba kernel.

Needs ``jax`` with 64-bit floats (PyTensor's JAX back end turns them on).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import digamma, gammaln

__all__ = ["log_gamma_pq_jax"]

_EPS = 2.220446049250313e-16
_BIG = 4503599627370496.0  # 2**52
_BIGINV = 2.22044604925031308085e-16
_MAX_ITER = 100_000
_LN2 = 0.6931471805599453


def _log1mexp(a):
    """``log(1 - exp(a))`` for ``a <= 0`` (Maechler 2012)."""
    return jnp.where(a > -_LN2, jnp.log(-jnp.expm1(a)), jnp.log1p(-jnp.exp(a)))


def _series(k, x):
    """``log P`` and ``d log P / dk`` from the power series (converges for every x, fast for
    ``x <= max(1, k)``)."""
    logx = jnp.log(x)

    def cond(state):
        i, _, _, _, _, _, done = state
        return (i < _MAX_ITER) & ~jnp.all(done)

    def body(state):
        i, kn, s, ds, t, dt, done = state
        kn1 = kn + 1.0
        r = x / kn1
        dt1 = r * (dt - t / kn1)
        t1 = t * r
        s1 = s + t1
        ds1 = ds + dt1
        keep = ~done
        kn = jnp.where(keep, kn1, kn)
        s = jnp.where(keep, s1, s)
        ds = jnp.where(keep, ds1, ds)
        t = jnp.where(keep, t1, t)
        dt = jnp.where(keep, dt1, dt)
        done = done | ((t1 <= _EPS * s1) & (jnp.abs(dt1) <= _EPS * jnp.abs(ds1)))
        return i + 1, kn, s, ds, t, dt, done

    one = jnp.ones_like(x)
    zero = jnp.zeros_like(x)
    state = (0, k, one, zero, one, zero, jnp.zeros(x.shape, bool))
    _, _, s, ds, _, _, _ = lax.while_loop(cond, body, state)
    log_p = k * logx - x - gammaln(k + 1.0) + jnp.log(s)
    dlog_p = logx - digamma(k + 1.0) + ds / s
    return jnp.where(log_p >= 0.0, -1e-300, log_p), dlog_p


def _continued_fraction(k, x):
    """``log Q`` and ``d log Q / dk`` from the continued fraction (``x > max(1, k)``)."""
    logx = jnp.log(x)
    y0 = 1.0 - k
    z0 = x + y0 + 1.0
    f0 = (x + 1.0) / (z0 * x)
    df0 = -f0 * (-x) / (z0 * x)

    def cond(state):
        return (state[0] < _MAX_ITER) & ~jnp.all(state[-1])

    def body(state):
        (i, c, y, z, pkm2, qkm2, pkm1, qkm1, dpkm2, dqkm2, dpkm1, dqkm1, f, df, done) = state
        keep = ~done
        c1, y1, z1 = c + 1.0, y + 1.0, z + 2.0
        yc = y1 * c1
        pk = pkm1 * z1 - pkm2 * yc
        qk = qkm1 * z1 - qkm2 * yc
        dpk = dpkm1 * z1 - pkm1 - dpkm2 * yc + pkm2 * c1
        dqk = dqkm1 * z1 - qkm1 - dqkm2 * yc + qkm2 * c1
        nz = qk != 0.0
        qs = jnp.where(nz, qk, 1.0)
        f_new = pk / qs
        df_new = (dpk - f_new * dqk) / qs
        conv = nz & (jnp.abs(f_new - f) <= _EPS * jnp.abs(f_new)) & (
            jnp.abs(df_new - df) <= _EPS * jnp.abs(df_new))
        f1 = jnp.where(nz, f_new, f)
        df1 = jnp.where(nz, df_new, df)
        scale = jnp.where(jnp.abs(pk) > _BIG, _BIGINV, 1.0)
        new = (c1, y1, z1, pkm1 * scale, qkm1 * scale, pk * scale, qk * scale,
               dpkm1 * scale, dqkm1 * scale, dpk * scale, dqk * scale, f1, df1)
        old = (c, y, z, pkm2, qkm2, pkm1, qkm1, dpkm2, dqkm2, dpkm1, dqkm1, f, df)
        out = tuple(jnp.where(keep, a, b) for a, b in zip(new, old, strict=True))
        return (i + 1, *out, done | conv)

    state = (0, jnp.zeros_like(x), y0, z0, jnp.ones_like(x), x, x + 1.0, z0 * x,
             jnp.zeros_like(x), jnp.zeros_like(x), jnp.zeros_like(x), -x, f0, df0,
             jnp.zeros(x.shape, bool))
    out = lax.while_loop(cond, body, state)
    f, df = out[-3], out[-2]
    log_q = k * logx - x - gammaln(k) + jnp.log(f)
    dlog_q = logx - digamma(k) + df / f
    return jnp.where(log_q >= 0.0, -1e-300, log_q), dlog_q


@jax.jit
def _kernel(k, x):
    """:func:`log_gamma_pq_jax` without its derivative rule (JAX cannot differentiate it)."""
    k = jnp.asarray(k, jnp.float64)
    x = jnp.asarray(x, jnp.float64)
    zero = x <= 0.0
    inf = jnp.isinf(x)
    series = (x <= 1.0) | (x <= k)
    # each iteration on benign inputs where the other branch (or an edge) applies
    xs = jnp.where(series & ~zero, x, 0.5)
    ks = jnp.where(series & ~zero, k, 1.0)
    xc = jnp.where(series | zero | inf, 2.0 + k, x)
    lp_s, dlp_s = _series(ks, xs)
    lq_s = _log1mexp(lp_s)
    dlq_s = -jnp.exp(lp_s - lq_s) * dlp_s
    lq_c, dlq_c = _continued_fraction(k, xc)
    lp_c = _log1mexp(lq_c)
    dlp_c = -jnp.exp(lq_c - lp_c) * dlq_c
    log_p = jnp.where(series, lp_s, lp_c)
    log_q = jnp.where(series, lq_s, lq_c)
    dlog_p = jnp.where(series, dlp_s, dlp_c)
    dlog_q = jnp.where(series, dlq_s, dlq_c)
    log_p = jnp.where(zero, -jnp.inf, jnp.where(inf, 0.0, log_p))
    log_q = jnp.where(zero, 0.0, jnp.where(inf, -jnp.inf, log_q))
    dlog_p = jnp.where(zero | inf, 0.0, dlog_p)
    dlog_q = jnp.where(zero | inf, 0.0, dlog_q)
    return log_p, log_q, dlog_p, dlog_q


@jax.custom_jvp
def log_gamma_pq_jax(k, x):
    """``(log P, log Q, d log P / dk, d log Q / dk)`` of same-shaped float64 arrays, with
    derivatives for JAX's autodiff.

    Parameters
    ----------
    k, x : jax or numpy arrays
        Shape ``k > 0`` and argument ``x >= 0`` (``x = t / theta``, a time over the gamma
        scale); one shape.

    Returns
    -------
    tuple of four arrays of that shape
        As :func:`bayesconv.lags.incgamma.log_gamma_pq_kernel`: ``x = 0`` gives
        ``(-inf, 0, 0, 0)``, ``x = inf`` gives ``(0, -inf, 0, 0)``.

    Notes
    -----
    JAX cannot differentiate through the iterations' ``while_loop`` in reverse mode, and
    NumPyro and BlackJAX take the gradient of the log density with ``jax.grad``; the rule
    below gives it from the same pass, as the PyTensor Op's gradient does: the ``k``
    derivatives are the kernel's third and fourth outputs, and ``d log P / dx = f / P``,
    ``d log Q / dx = -f / Q`` with ``f`` the standard gamma density (DLMF 8.8.13). Those two
    derivative outputs get zero tangents: second derivatives in ``k`` are not provided (NUTS
    needs first derivatives only; the numba path raises for them).
    """
    return _kernel(k, x)


@log_gamma_pq_jax.defjvp
def _log_gamma_pq_jvp(primals, tangents):
    k, x = primals
    dk, dx = tangents
    log_p, log_q, dlog_p, dlog_q = _kernel(k, x)
    inside = (x > 0.0) & jnp.isfinite(x)
    x1 = jnp.where(inside, x, 1.0)
    log_f = (k - 1.0) * jnp.log(x1) - x1 - gammaln(k)
    fp = jnp.where(inside, jnp.exp(log_f - log_p), 0.0)
    fq = jnp.where(inside, jnp.exp(log_f - log_q), 0.0)
    zero = jnp.zeros_like(log_p)
    return ((log_p, log_q, dlog_p, dlog_q),
            (dlog_p * dk + fp * dx, dlog_q * dk - fq * dx, zero, zero))
