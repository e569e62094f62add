"""Simulated conversion events from known eventual rates and lags (tests, docs, benchmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data.units import TIME_UNITS
from .lags.families import get_lag

__all__ = ["simulate"]


def simulate(*, n_units=None, eventual_rate=None, lag_loc=None, lag_shape=None, lag="gamma",
             lag_q=None, cohorts=None,
             start="2024-01-01", enrollment: float = 30.0, followup: float = 60.0,
             time_unit: str = "D", resolution: str | None = None,
             random_seed=None, cells: pd.DataFrame | None = None,
             period_length: float | None = None) -> pd.DataFrame:
    """Draw unit-level events with staggered creation dates and one observation date.

    Units of each cohort are created uniformly over ``enrollment`` time units from ``start``;
    each converts eventually with probability ``eventual_rate`` after a lag drawn from the lag
    family; everything is observed at ``start + enrollment + followup``. Conversions after
    that date are not in the output (their ``converted`` is NaT), as in real data.

    Parameters
    ----------
    n_units : int or sequence of int
        Units per cohort.
    eventual_rate : float or sequence of float
        True eventual conversion probability per cohort, in [0, 1].
    lag_loc, lag_shape : float or sequence of float
        True lag location (the mean for gamma, the median for Weibull, exponential and
        log-normal, ``e^mu`` for the generalized gamma; in ``time_unit``) and shape per
        cohort. ``lag_shape`` defaults to 1 and must be left out for the exponential.
    lag : str, default "gamma"
        Lag family (see :mod:`bayesconv.lags`).
    lag_q : float or sequence of float, optional
        The generalized gamma's ``q`` (required for it, not allowed for other families).
    cohorts : sequence of str, optional
        Cohort labels (default "A", "B", ...).
    start : str or Timestamp, default "2024-01-01"
    enrollment, followup : float
        Length of the creation window and of the follow-up after it, in ``time_unit``.
    time_unit : str, default "D"
    resolution : str, optional
        Record timestamps only to this resolution (a pandas frequency such as ``"D"``,
        ``"h"`` or ``"W"``: weeks from Monday), as event logs that store dates do: creation and
        conversion times are floored.
        Floored data aggregate into far fewer distinct rows.
    random_seed : int or numpy Generator, optional
    cells : DataFrame, optional
        Instead of the per-cohort arguments: one row per cell, with columns ``cohort``,
        ``n_units``, ``eventual_rate``, ``lag_loc`` (and ``lag_shape``, ``lag_q`` as the family
        needs), any factor columns (a platform, a segment: copied to every unit of the cell),
        and optionally ``period``: an integer p, whose units are created uniformly in
        ``[p, p + 1) × period_length`` time units after ``start`` (signup-period drift;
        ``enrollment`` must cover the last period). The output keeps every column but the
        parameters; ``attrs["truth"]`` is then the cells table as records (a list of dicts).
    period_length : float, optional
        Length of a period, in ``time_unit`` (required with a ``period`` column).

    Returns
    -------
    DataFrame with columns ``cohort`` (categorical), ``created``, ``converted`` (NaT if not
    converted by the observation date) and ``observed_until`` (datetime64), one row per unit.
    ``.attrs["truth"]`` holds the true parameters per cohort.

    Raises
    ------
    ValueError
        If the per-cohort arguments do not broadcast, or rates are outside [0, 1].
    """
    family = get_lag(lag)
    rng = np.random.default_rng(random_seed)
    if cells is not None:
        return _simulate_cells(cells, family, rng, start=start, enrollment=enrollment,
                               followup=followup, time_unit=time_unit, resolution=resolution,
                               period_length=period_length)
    if n_units is None or eventual_rate is None or lag_loc is None:
        raise ValueError("give n_units, eventual_rate and lag_loc, or a cells table")
    names = family.param_names
    if lag_shape is not None and "shape" not in names:
        raise ValueError(f"the {family.name} lag has no shape; leave lag_shape out")
    if (lag_q is None) == ("q" in names):
        raise ValueError(f"lag_q is {'required' if 'q' in names else 'not allowed'} for the "
                         f"{family.name} lag")
    extra = {"shape": 1.0 if lag_shape is None else lag_shape, "q": lag_q}
    n, c, loc, *rest = np.broadcast_arrays(
        np.atleast_1d(n_units), np.atleast_1d(eventual_rate), np.atleast_1d(lag_loc),
        *(np.atleast_1d(extra[name]).astype(float) for name in names[1:]))
    n = n.astype(np.int64)
    if np.any((c < 0) | (c > 1)):
        raise ValueError(f"eventual_rate must be in [0, 1], got {c.tolist()}")
    if cohorts is None:
        cohorts = [chr(ord("A") + i) if len(n) <= 26 else f"c{i}" for i in range(len(n))]
    if len(cohorts) != len(n):
        raise ValueError(f"{len(cohorts)} cohort labels for {len(n)} cohorts")
    secs = TIME_UNITS[time_unit]
    t0 = pd.Timestamp(start)
    observed = t0 + pd.to_timedelta(float(enrollment + followup) * secs, unit="s")
    frames = []
    for g, label in enumerate(cohorts):
        age0 = rng.uniform(0.0, enrollment, size=n[g])
        converts = rng.uniform(size=n[g]) < c[g]
        lags = family.rvs(rng, loc[g], *(x[g] for x in rest), size=n[g])
        at = age0 + lags
        seen = converts & (at <= enrollment + followup)
        frames.append(pd.DataFrame({
            "cohort": label,
            "created": t0 + pd.to_timedelta(age0 * secs, unit="s"),
            "converted": t0 + pd.to_timedelta(np.where(seen, at, np.nan) * secs, unit="s"),
        }))
    out = pd.concat(frames, ignore_index=True)
    out["cohort"] = pd.Categorical(out["cohort"], categories=list(cohorts))
    _record_to(out, resolution)
    out["observed_until"] = observed
    truth = {"eventual_rate": c, "lag_loc": loc}
    truth.update({p.var: x for p, x in zip(family.extra_params, rest, strict=True)})
    out.attrs["truth"] = pd.DataFrame(truth, index=pd.Index(cohorts, name="cohort")
                                      ).to_dict("index")
    out.attrs["lag"] = family.name
    out.attrs["time_unit"] = time_unit
    return out


def _simulate_cells(cells: pd.DataFrame, family, rng, *, start, enrollment, followup, time_unit,
                    resolution, period_length) -> pd.DataFrame:
    """:func:`simulate` from a table of cells (see its ``cells`` argument)."""
    params = ["eventual_rate", "lag_loc"] + [p.var for p in family.extra_params]
    need = ["cohort", "n_units", *params]
    missing = [c for c in need if c not in cells.columns]
    if missing:
        raise ValueError(f"the cells table lacks the columns {missing} (the {family.name} lag "
                         f"needs {need})")
    if "period" in cells.columns and period_length is None:
        raise ValueError("a 'period' column needs period_length (the length of one period)")
    factors = [c for c in cells.columns if c not in need]
    secs = TIME_UNITS[time_unit]
    t0 = pd.Timestamp(start)
    end = float(enrollment + followup)
    observed = t0 + pd.to_timedelta(end * secs, unit="s")
    frames = []
    for row in cells.itertuples(index=False):
        r = row._asdict()
        n = int(r["n_units"])
        if "period" in r:
            lo = float(r["period"]) * period_length
            age0 = rng.uniform(lo, lo + period_length, size=n)
        else:
            age0 = rng.uniform(0.0, enrollment, size=n)
        converts = rng.uniform(size=n) < r["eventual_rate"]
        lags = family.rvs(rng, r["lag_loc"], *(r[p] for p in params[2:]), size=n)
        at = age0 + lags
        seen = converts & (at <= end)
        frames.append(pd.DataFrame({
            "cohort": r["cohort"], **{f: r[f] for f in factors},
            "created": t0 + pd.to_timedelta(age0 * secs, unit="s"),
            "converted": t0 + pd.to_timedelta(np.where(seen, at, np.nan) * secs, unit="s"),
        }))
    out = pd.concat(frames, ignore_index=True)
    out["cohort"] = pd.Categorical(out["cohort"], categories=list(pd.unique(cells["cohort"])))
    _record_to(out, resolution)
    out["observed_until"] = observed
    out.attrs["truth"] = cells.to_dict("records")
    out.attrs["lag"] = family.name
    out.attrs["time_unit"] = time_unit
    return out


def _record_to(events: pd.DataFrame, resolution: str | None) -> None:
    """Floor ``created`` and ``converted`` (in place) to a pandas frequency, as event logs that
    store dates do; calendar frequencies without a fixed length ("W": weeks starting on
    Monday, "MS") via their period's start. NaT stays NaT; None leaves the times exact."""
    if resolution is None:
        return
    for col in ("created", "converted"):
        try:
            events[col] = events[col].dt.floor(resolution)
        except ValueError:  # "<Week: weekday=6> is a non-fixed frequency"
            events[col] = events[col].dt.to_period(resolution).dt.start_time
