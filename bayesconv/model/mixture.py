"""The cure mixture, written once: every probability the model, its likelihood and every
posterior quantity take from an eventual rate c and a lag distribution F.

A unit converts eventually with probability c, and then after a lag with distribution F
(density f, survival S = 1 − F). Boag (1949) and Berkson & Gage (1952) introduced this mixture;
Maller & Zhou (1996), *Survival Analysis with Long-Term Survivors*, treat it at length. Every
function works in log space, with ``log_c`` = log c and ``log1m_c`` = log(1 − c) passed
separately (computed from logit c without cancellation), and takes a numeric namespace ``xp``
(:data:`bayesconv.lags.NP` or ``PT``), so the same lines serve the PyTensor likelihood and the
numpy posterior quantities.

=========================================  ==========================================
quantity                                   log of
=========================================  ==========================================
converted by t (the curve)                 c F(t)
converted at t (density)                   c f(t)
converted in (a, b]                        c (F(b) − F(a))
not converted by t (right-censored)        1 − c F(t) = (1 − c) + c S(t)   (eq. 4.1)
converts eventually, pending at age a      c S(a) / (1 − c F(a))           (§4.2)
converts within (a, a + w], pending at a   c (F(a + w) − F(a)) / (1 − c F(a))
=========================================  ==========================================
"""

from __future__ import annotations

import numpy as np

__all__ = ["converter_median", "log_c_pair", "log_converted_by", "log_converts_eventually",
           "log_converts_within", "log_not_converted"]


def log_c_pair(logit_c, xp):
    """(log c, log(1 − c)) from logit c, as −softplus(−logit) and −softplus(logit)."""
    if xp.name == "pytensor":
        import pytensor.tensor as pt

        return -pt.softplus(-logit_c), -pt.softplus(logit_c)
    return -np.logaddexp(0, -logit_c), -np.logaddexp(0, logit_c)


def log_converted_by(log_c, log_F):
    """log c F(t): the share converted by t (the conversion curve)."""
    return log_c + log_F


def log_not_converted(log_c, log1m_c, log_S, xp):
    """log(1 − c F(t)) = log((1 − c) + c S(t)): stays accurate when c F is tiny and when
    c → 1, F → 1 (Maller & Zhou 1996, eq. 4.1)."""
    return xp.logaddexp(log1m_c, log_c + log_S)


def log_converts_eventually(log_c, log1m_c, log_S, xp):
    """log P(converts eventually | not converted by age a) = log c S(a) − log(1 − c F(a))
    (Bayes' rule on the mixture; Maller & Zhou 1996, §4.2)."""
    return log_c + log_S - log_not_converted(log_c, log1m_c, log_S, xp)


def log_converts_within(log_c, log1m_c, log_S, log_mass, xp):
    """log P(converts in (a, a + w] | not converted by a), with ``log_mass`` = log(F(a + w) −
    F(a)) and ``log_S`` = log S(a)."""
    return log_c + log_mass - log_not_converted(log_c, log1m_c, log_S, xp)


def converter_median(family, rate, lag, weights) -> np.ndarray:
    """Median lag of the converters of a mix of groups (numpy).

    Group k holds a share ``weights[k]`` of the units, converts with probability
    ``rate[..., k]`` after lags of ``family`` with parameters ``lag[j][..., k]``; its
    converters are a share w_k c_k / Σ w c of all converters, so their lag is the mixture
    Σ_k a_k F_k with a_k ∝ w_k c_k. Groups with the same lag parameters in every draw (cells
    that differ only in what moves the eventual rate, e.g. signup weeks under a lag formula
    without them) are one component with their shares summed. The median lies between the
    components' medians and is found by bisection on log t, until the bracket is narrower than
    1e-12 (relative) in every draw, at most 60 halvings: below double precision's resolution
    of a median in any time unit. One component: its median in closed form.

    Parameters
    ----------
    family : LagFamily
    rate : ndarray of shape (..., k)
    lag : sequence of ndarray of shape (..., k)
    weights : ndarray of shape (k,)

    Returns
    -------
    ndarray of shape (...)
    """
    lag = np.broadcast_arrays(*lag, rate)[:-1]
    a = np.asarray(weights) * rate
    k = a.shape[-1]
    if k > 1:  # one component per distinct lag (columns equal in every draw)
        stacked = np.stack([np.reshape(np.moveaxis(p, -1, 0), (k, -1)) for p in lag], axis=1)
        _, first, inverse = np.unique(stacked.reshape(k, -1), axis=0, return_index=True,
                                      return_inverse=True)
        if len(first) < k:
            onehot = np.zeros((k, len(first)))
            onehot[np.arange(k), np.ravel(inverse)] = 1.0
            a = a @ onehot
            lag = [p[..., first] for p in lag]
    med = family.median(*lag)
    if med.shape[-1] == 1:
        return med[..., 0]
    a = a / a.sum(axis=-1, keepdims=True)
    lo, hi = np.log(med.min(axis=-1)), np.log(med.max(axis=-1))
    for _ in range(60):
        if np.all(hi - lo < 1e-12):
            break
        mid = 0.5 * (lo + hi)
        below = (a * np.exp(family.logcdf(np.exp(mid)[..., None], *lag))).sum(axis=-1) < 0.5
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.exp(0.5 * (lo + hi))
