"""The censored cure-mixture log-likelihood, written once for numpy and PyTensor.

For a unit of cohort g with eventual conversion probability c_g and lag distribution F
(density f, survival S = 1 − F), each aggregated row contributes ``count`` times one of:

========================  ========================================  ==============================
row                       log-likelihood of one unit                computed as
========================  ========================================  ==============================
converted at exact t > 0  log c_g + log f(t)                        sufficient statistics if any
converted in (0, b]       log c_g + log F(b)                        logcdf
converted in (a, b], a>0  log c_g + log(F(b) − F(a))                logdiffexp of log F, or of
                                                                    log S in the upper tail
not converted by t        log(1 − c_g F(t)) = log(1 − c_g + c_g S)  logaddexp(log(1−c), log c+log S)
not converted by t = 0    0                                         (left out)
========================  ========================================  ==============================

A conversion at duration 0 (same timestamp as creation) has density log f(0) = −∞ for lags
that rise from zero (gamma or Weibull with shape > 1), so it enters as a conversion in the
first bin (0, δ], where δ is ``zero_width`` (by default the smallest positive duration in the
data, i.e. the data's time resolution). This is the interval-censoring reading of a timestamp
that is only known to its resolution (Klein & Moeschberger 2003, §3.3).

The right-censored term uses 1 − c F(t) = (1 − c) + c S(t), so it stays accurate both when
c F(t) is tiny and when c → 1, F(t) → 1 (Maller & Zhou 1996, *Survival Analysis with Long-Term
Survivors*, eq. 4.1, written in log space).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import ConversionData

__all__ = ["LikelihoodRows", "rows_from_data", "row_loglik", "total_loglik"]

# An upper bound below 0 for log-ratios fed to log1mexp, so that equal log-CDFs (far tails,
# where the bin probability underflows) give a very negative but finite value, never -inf/NaN.
_TINY_NEG = -1e-300


@dataclass(frozen=True)
class LikelihoodRows:
    """Aggregated rows split by how they enter the likelihood.

    All times are in the model's internal unit: the data's time unit divided by ``time_scale``.

    Attributes
    ----------
    kind : ndarray of shape (n_rows,), int
        Per data row: 0 exact conversion, 1 conversion in a first bin (0, b], 2 conversion in
        an interval (a, b] with a > 0, 3 right-censored at t > 0, 4 not converted at t = 0
        (contributes 0). Rows are in the order of the ``ConversionData``.
    cohort, lower, upper, count : ndarray of shape (n_rows,)
        Cohort code, lower and upper time (equal for exact and censored rows), unit count.
    time_scale : float
        Internal time unit in the data's time unit.
    """

    kind: np.ndarray
    cohort: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    time_scale: float
    n_cohorts: int

    def subset(self, kind: int):
        """Cohort, lower, upper, count arrays of the rows of one kind."""
        m = self.kind == kind
        return self.cohort[m], self.lower[m], self.upper[m], self.count[m].astype(float)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Lower weighted median of ``values`` (ndarray of shape (n,)) with ``weights`` (n,)."""
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, cw[-1] / 2.0)])


def default_time_scale(data: ConversionData) -> float:
    """A time scale that follows the data, so that priors do not depend on the time unit.

    The count-weighted median duration of converted units (or of all units if none converted).
    Fitting the same events in hours or in days gives the same scale in calendar time.
    """
    m = data.converted if data.converted.any() else np.ones(data.n_rows, bool)
    med = weighted_median(data.duration[m], data.count[m])
    if med <= 0:
        pos = data.duration[data.duration > 0]
        med = pos.max() if pos.size else 1.0
    return float(med)


def default_zero_width(data: ConversionData) -> float:
    """Smallest positive duration in the data (its time resolution), 1.0 if there is none."""
    pos = data.duration[data.duration > 0]
    return float(pos.min()) if pos.size else 1.0


def rows_from_data(data: ConversionData, *, time_scale: float | None = None,
                   zero_width: float | None = None) -> LikelihoodRows:
    """Classify the rows of ``data`` for the likelihood (see the module docstring).

    Parameters
    ----------
    data : ConversionData
    time_scale : float, optional
        Internal time unit, in the data's time unit (default :func:`default_time_scale`).
    zero_width : float, optional
        Width δ of the first bin that conversions at duration 0 are placed in, in the data's
        time unit (default :func:`default_zero_width`).

    Returns
    -------
    LikelihoodRows
    """
    s = default_time_scale(data) if time_scale is None else float(time_scale)
    z = default_zero_width(data) if zero_width is None else float(zero_width)
    if not (s > 0 and z > 0):
        raise ValueError(f"time_scale and zero_width must be positive, got {s} and {z}")
    lower = data.lower.astype(float).copy()
    upper = data.duration.astype(float).copy()
    conv = data.converted
    zero_conv = conv & (upper == 0)
    upper[zero_conv] = z
    lower[zero_conv] = 0.0
    kind = np.full(data.n_rows, 3, dtype=np.int8)
    kind[conv & (lower == upper)] = 0
    kind[conv & (lower == 0) & (upper > 0) & (lower < upper)] = 1
    kind[conv & (lower > 0) & (lower < upper)] = 2
    kind[~conv & (upper == 0)] = 4
    return LikelihoodRows(kind=kind, cohort=data.cohort.astype(np.int64), lower=lower / s,
                          upper=upper / s, count=data.count.astype(np.int64), time_scale=s,
                          n_cohorts=data.n_cohorts)


def _split_xp(params, xp):
    """``(params, xp)`` from ``*params`` whose last item may be the namespace (old call form)."""
    from .lags import _Namespace

    if xp is None and params and isinstance(params[-1], _Namespace):
        return params[:-1], params[-1]
    if xp is None:
        raise TypeError("the numeric namespace xp (bayesconv.lags.NP or PT) is required")
    return params, xp


def _terms(family, kind, g, lo, up, log_c, log1m_c, params, xp):
    """Per-unit log-likelihood of rows of a single kind (vectorised).

    ``params``: the family's lag parameters (``family.param_names`` order), per cohort.
    """
    lc = log_c[..., g]
    pk = tuple(p[..., g] for p in params)
    if kind == 0:
        return lc + family.logpdf(up, *pk, xp=xp)
    if kind == 1:
        return lc + family.logcdf(up, *pk, xp=xp)
    if kind == 2:
        lcb = family.logcdf(up, *pk, xp=xp)
        lca = family.logcdf(lo, *pk, xp=xp)
        lsa = family.logsf(lo, *pk, xp=xp)
        lsb = family.logsf(up, *pk, xp=xp)
        via_cdf = lcb + xp.log1mexp(xp.minimum(lca - lcb, _TINY_NEG))
        via_sf = lsa + xp.log1mexp(xp.minimum(lsb - lsa, _TINY_NEG))
        return lc + xp.where(lsa < np.log(0.5), via_sf, via_cdf)
    if kind == 3:
        return xp.logaddexp(log1m_c[..., g], lc + family.logsf(up, *pk, xp=xp))
    raise ValueError(f"unknown row kind {kind}")


def row_loglik(family, rows: LikelihoodRows, log_c, log1m_c, *params, xp=None):
    """Per-unit log-likelihood of every row, in data order (numpy only).

    Parameters
    ----------
    family : LagFamily
    rows : LikelihoodRows
    log_c, log1m_c : ndarray of shape (..., n_cohorts)
        log c_g and log(1 − c_g); leading dims (e.g. chain, draw) broadcast.
    *params : ndarray of shape (..., n_cohorts)
        The lag parameters per cohort in ``family.param_names`` order (``loc, shape`` for
        most families; lag location in the internal time unit).
    xp : namespace
        ``bayesconv.lags.NP`` (keyword, or positionally after the parameters).

    Returns
    -------
    ndarray of shape (..., n_rows)
        Log-likelihood of one unit of each row, in the data's time unit (exact rows include
        the Jacobian −log(time_scale)). Multiply by ``rows.count`` for the row's total.
    """
    params, xp = _split_xp(params, xp)
    log_c, log1m_c, *params = np.broadcast_arrays(log_c, log1m_c, *params)
    out = np.zeros(log_c.shape[:-1] + (len(rows.kind),))
    for kind in (0, 1, 2, 3):
        m = rows.kind == kind
        if not m.any():
            continue
        val = _terms(family, kind, rows.cohort[m], rows.lower[m], rows.upper[m], log_c,
                     log1m_c, params, xp)
        if kind == 0:
            val = val - np.log(rows.time_scale)
        out[..., m] = val
    return out


def total_loglik(family, rows: LikelihoodRows, log_c, log1m_c, *params, xp=None,
                 data_vars: dict | None = None):
    """Sum of count × log-likelihood over all rows: the model's likelihood term.

    Parameters
    ----------
    family : LagFamily
    rows : LikelihoodRows
    log_c, log1m_c, *params : vectors of shape (n_cohorts,)
        Parameters (numpy arrays or PyTensor tensors): log c, log(1 − c) and the lag
        parameters in ``family.param_names`` order, lag location in the internal time unit.
    xp : namespace
        ``bayesconv.lags.NP`` or ``bayesconv.lags.PT`` (keyword, or positionally after the
        parameters).
    data_vars : dict, optional
        Replacement arrays (e.g. ``pm.Data`` tensors) keyed ``"{kind}_{name}"`` for
        name in (cohort, lower, upper, count), and ``"stats_<name>"`` for the sufficient
        statistics (``family.suff_stat_names``, e.g. ``n, slogt, st`` for the gamma).

    Returns
    -------
    scalar
        Log-likelihood up to the constant Jacobian of the time scale. Exact conversions of a
        family with sufficient statistics (gamma: Σ n, Σ n log t, Σ n t; exponential,
        log-normal) are summed per cohort from them instead of row by row.
    """
    params, xp = _split_xp(params, xp)
    arrays = data_vars if data_vars is not None else rows_as_arrays(family, rows)
    total = 0.0
    for kind in (0, 1, 2, 3):
        if kind == 0 and "stats_n" in arrays:
            stats = [arrays[f"stats_{name}"] for name in family.suff_stat_names]
            total = total + (stats[0] * log_c).sum() + family.loglik_exact_from_stats(
                *stats, *params, xp=xp).sum()
            continue
        key = f"{kind}_count"
        if key not in arrays:
            continue
        g, up, cnt = (arrays[f"{kind}_{name}"] for name in ("cohort", "upper", "count"))
        lo = arrays.get(f"{kind}_lower")
        total = total + (cnt * _terms(family, kind, g, lo, up, log_c, log1m_c, params,
                                      xp)).sum()
    return total


def _bucket(n: int) -> int:
    """Smallest ``j * 2**e >= n`` with ``8 <= j < 16`` (at least 16).

    Eight buckets per doubling: padding wastes at most 1/8 of the rows (a power of two
    wasted up to half, and padded rows cost as much as real ones), while data sets of
    similar size still share a compiled model.
    """
    n = max(int(n), 16)
    e = max(n.bit_length() - 4, 0)
    return -(-n // (1 << e)) * (1 << e)


def padded_arrays(family, rows: LikelihoodRows) -> dict:
    """:func:`rows_as_arrays` with each kind's rows padded to a bucketed length (:func:`_bucket`).

    Padding rows have count 0, cohort 0 and harmless times (lower 0.5, upper 1), so they add
    exactly 0 to the log-likelihood. Data sets whose row counts fall in the same buckets then
    share one compiled model (see :mod:`bayesconv.fit`), so refits on new data (a readout
    refreshed daily, a replay over dates, a calibration study) do not recompile.
    """
    arrays = rows_as_arrays(family, rows)
    out = {}
    for key, value in arrays.items():
        if key.startswith("stats_"):
            out[key] = value
            continue
        kind, name = key.split("_", 1)
        size = _bucket(len(arrays[f"{kind}_count"]))
        fill = {"cohort": 0, "lower": 0.5, "upper": 1.0, "count": 0.0}[name]
        pad = np.full(size - len(value), fill, dtype=np.asarray(value).dtype)
        out[key] = np.concatenate([value, pad])
    return out


def rows_as_arrays(family, rows: LikelihoodRows) -> dict:
    """The numpy arrays :func:`total_loglik` reads, per kind (and sufficient statistics).

    Rows of a kind that has no rows are left out, so the model graph has no empty terms.
    """
    out: dict = {}
    for kind in (0, 1, 2, 3):
        g, lo, up, cnt = rows.subset(kind)
        if kind == 0 and getattr(family, "suff_stats", None) is not None:
            if cnt.size:
                # weights of shape (n_cohorts, n_rows): row r counts only for its own cohort
                w = np.where(g[None, :] == np.arange(rows.n_cohorts)[:, None], cnt, 0.0)
                stats = family.suff_stats(up, w, axis=1)
                out.update({f"stats_{name}": v
                            for name, v in zip(family.suff_stat_names, stats, strict=True)})
            continue
        if cnt.size:
            out.update({f"{kind}_cohort": g, f"{kind}_upper": up, f"{kind}_count": cnt})
            if kind == 2:  # only interval rows use their lower edge
                out[f"{kind}_lower"] = lo
    return out
