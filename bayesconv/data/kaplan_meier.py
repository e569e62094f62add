"""Kaplan–Meier conversion curves per cohort, with exponential Greenwood intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .container import ConversionData, group_index

__all__ = ["kaplan_meier", "km_arrays", "km_at"]


def km_arrays(duration, converted, count):
    """Kaplan–Meier table of one cohort from aggregated rows.

    Parameters
    ----------
    duration : ndarray of shape (n_rows,)
    converted : ndarray of shape (n_rows,), bool
    count : ndarray of shape (n_rows,), weights

    Returns
    -------
    times, at_risk, events, censored, survival, greenwood_sum : ndarrays of shape (n_times,)
    """
    times, inv = np.unique(duration, return_inverse=True)
    w = np.asarray(count, dtype=float)
    events = np.bincount(inv, weights=w * converted, minlength=len(times))
    removed = np.bincount(inv, weights=w, minlength=len(times))
    censored = removed - events
    # Units still at risk just before t: everyone whose duration >= t. Conversions at t are
    # counted before censorings at t, so the units censored at t are in the risk set at t.
    at_risk = removed[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - events / at_risk)
        gw = np.cumsum(np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0))
    return times, at_risk, events, censored, survival, gw


def kaplan_meier(data: ConversionData, *, ci_prob: float = 0.95, by=None) -> pd.DataFrame:
    """Kaplan–Meier estimate of the cumulative conversion curve of each cohort.

    Parameters
    ----------
    data : ConversionData
        Prepared events; counts act as case weights. Interval-censored conversions are placed
        at the upper edge of their bin.
    ci_prob : float, default 0.95
        Probability mass of the pointwise confidence interval.
    by : str or list of str, optional
        One curve per level of these columns of the cell table (the cohort column and the
        covariates, e.g. ``["variant", "platform"]``) instead of per cohort.

    Returns
    -------
    pandas.DataFrame
        One row per cohort (or ``by`` level) and distinct duration (event or censoring time),
        with columns ``cohort`` (or the ``by`` columns), ``time`` (in ``data.time_unit``),
        ``at_risk`` (units with duration >= time),
        ``converted`` and ``censored`` (units converting / censored at time), ``conversion``
        (cumulative conversion 1 − S(t) just after time), ``lower`` and ``upper`` (its interval).

    Notes
    -----
    S(t) = Π_{t_i <= t} (1 − d_i / n_i) (Kaplan & Meier 1958). At tied times conversions are
    counted before censorings, so units censored at t are at risk at t. The interval is the
    exponential Greenwood ("log(−log)") interval of Kalbfleisch & Prentice (2002, §4.3):
    with V = Σ d_i / (n_i (n_i − d_i)) and z the normal quantile,
    S^{exp(± z √V / log S)}; it is converted to 1 − S. It matches lifelines'
    ``KaplanMeierFitter`` (which uses the same interval).

    Raises
    ------
    ValueError
        If ``ci_prob`` is not in (0, 1), or ``by`` names a column the data do not have.
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    z = stats.norm.ppf(0.5 + ci_prob / 2)
    if by is None:
        labels, level = list(data.cohorts), data.cohort
    else:
        cols = [by] if isinstance(by, str) else list(by)
        _, labels, cell_level = group_index(data.cells, cols)
        level = cell_level[data.cell]
    frames = []
    for g, label in enumerate(labels):
        m = level == g
        t, n, d, c, s, gw = km_arrays(data.duration[m], data.converted[m], data.count[m])
        with np.errstate(divide="ignore", invalid="ignore"):
            log_s = np.log(s)
            half = z * np.sqrt(gw) / log_s
            # half < 0, so s_low <= S <= s_high.
            s_low = np.exp(-np.exp(np.log(-log_s) - half))
            s_high = np.exp(-np.exp(np.log(-log_s) + half))
        # Before the first conversion S = 1 exactly and the interval is degenerate at 1.
        none_yet = gw == 0
        s_low = np.where(none_yet & (s == 1), 1.0, s_low)
        s_high = np.where(none_yet & (s == 1), 1.0, s_high)
        keys = ({"cohort": label} if by is None else
                dict(zip(cols, label if len(cols) > 1 else (label,), strict=True)))
        frames.append(pd.DataFrame({
            **keys, "time": t, "at_risk": n, "converted": d, "censored": c,
            "conversion": 1.0 - s, "lower": 1.0 - s_high, "upper": 1.0 - s_low,
        }))
    out = pd.concat(frames, ignore_index=True)
    if by is None:
        out["cohort"] = pd.Categorical(out["cohort"], categories=list(data.cohorts))
    out.attrs["time_unit"] = data.time_unit
    out.attrs["ci_prob"] = ci_prob
    return out


def km_at(km: pd.DataFrame, t: float | dict) -> pd.Series:
    """Kaplan–Meier cumulative conversion of each cohort at time ``t`` (last step at or before t).

    Parameters
    ----------
    km : DataFrame from :func:`kaplan_meier`.
    t : float or dict mapping cohort label to time (in the data's time unit).

    Returns
    -------
    Series indexed by cohort label.
    """
    out = {}
    for label, grp in km.groupby("cohort", observed=True, sort=False):
        tt = t[label] if isinstance(t, dict) else t
        before = grp[grp["time"] <= tt]
        out[label] = float(before["conversion"].iloc[-1]) if len(before) else 0.0
    return pd.Series(out, name="km_conversion")
