"""Posterior predictive Kaplan–Meier curves: data sets simulated as the real ones were
observed, summarised as the real ones are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.container import ConversionData
from ..data.kaplan_meier import km_arrays
from .cells import Draws, level_label
from .quantities import followup_ages

__all__ = ["PPC_MAX_CELLS", "PPC_UNIT_LIMIT", "posterior_predictive_km"]

#: Above this many units in a cohort, posterior predictive data sets are simulated on a grid
#: of times instead of unit by unit (see :func:`posterior_predictive_km`).
PPC_UNIT_LIMIT = 100_000
#: Most grid cells per cohort for the gridded simulation.
PPC_MAX_CELLS = 1_000


def posterior_predictive_km(draws: Draws, data: ConversionData, n_draws: int = 100,
                            random_seed=None, *, unit_limit: int = PPC_UNIT_LIMIT,
                            max_cells: int = PPC_MAX_CELLS, by=None) -> pd.DataFrame:
    """Kaplan–Meier curves of data sets simulated from the posterior (a PPC).

    Each simulated data set keeps every unit's follow-up (its age at the observation
    date) and draws conversion and lag from one posterior draw, then censors at the
    follow-up, exactly as the real data were observed. For the duration/event input layout
    the follow-up of converted units is unknown and every unit is assumed followed to its
    cohort's longest duration (true of fixed-follow-up studies such as Rossi's).

    Cells of more than ``unit_limit`` units are simulated on a grid (the cohort's distinct
    observed times, thinned to at most ``max_cells`` by quantiles): the converting units of
    each follow-up group are spread over the grid cells below their age with one multinomial
    draw, each conversion recorded at its cell's upper edge, as data recorded at that
    resolution would be (and if there are more distinct follow-up ages than cells, each is
    moved down to the grid point below it). The cost then grows with distinct times, not with
    units.

    Parameters
    ----------
    draws : Draws
    data : ConversionData
    n_draws : int, default 100
        Number of posterior draws (data sets) to simulate.
    random_seed : int, optional
    by : str or list of str, optional
        Simulated Kaplan–Meier curves per level of these cell-table columns (default: per
        cohort). Each cell is simulated from its own parameters.

    Returns
    -------
    DataFrame with columns ``draw`` (0..n_draws-1), ``cohort`` (or the ``by`` level),
    ``time``, ``conversion``.
    """
    rng = np.random.default_rng(random_seed)
    family = draws.family
    c, *lag = (x.stack(s=("chain", "draw")).values for x in (draws.rate, *draws.lag))
    picks = rng.choice(c.shape[-1], size=min(n_draws, c.shape[-1]), replace=False)
    fu = followup_ages(data)
    grids = [_grid(data, g, fu[g][0], max_cells) if fu[g][1].sum() > unit_limit else None
             for g in range(data.n_cells)]
    for g, edges in enumerate(grids):
        ages, n = fu[g]
        if edges is not None and len(ages) > max_cells:
            # too many distinct follow-ups: each unit is followed to the grid point below
            idx = np.searchsorted(edges, ages, side="right") - 1
            snapped = np.where(idx >= 0, edges[np.maximum(idx, 0)], 0.0)
            ages, inverse = np.unique(snapped, return_inverse=True)
            fu[g] = (ages, np.bincount(inverse, weights=n).astype(np.int64))
    name, labels, level = draws.groups(by)
    column = "cohort" if by is None else name
    frames = []
    for j, s in enumerate(picks):
        for i, label in enumerate(labels):
            parts = []
            for g in np.flatnonzero(level == i):
                ages, n = fu[g]
                lag_gs = [x[g, s] for x in lag]
                cdf_age = np.exp(family.logcdf(ages, *lag_gs))
                k = rng.binomial(n, c[g, s] * cdf_age)
                if grids[g] is None:
                    # conversion times of the k units converting before their age: F truncated
                    rep_age = np.repeat(ages, k)
                    u = rng.uniform(0.0, np.repeat(cdf_age, k))
                    times = np.minimum(family.quantile(u, *lag_gs), rep_age)
                    t_conv, n_conv = times, np.ones(k.sum())
                else:
                    t_conv, n_conv = _gridded(family, grids[g], ages, k, cdf_age, lag_gs, rng)
                parts.append((t_conv, n_conv, ages, n - k))
            dur = np.concatenate([x for p in parts for x in (p[0], p[2])])
            conv = np.concatenate([x for p in parts for x in (np.ones(len(p[0]), bool),
                                                              np.zeros(len(p[2]), bool))])
            cnt = np.concatenate([x for p in parts for x in (p[1], p[3])])
            keep = cnt > 0
            tt, _, _, _, surv, _ = km_arrays(dur[keep], conv[keep], cnt[keep])
            frames.append(pd.DataFrame({"draw": j, column: level_label(label)
                                        if isinstance(label, tuple) else label, "time": tt,
                                        "conversion": 1 - surv}))
    return pd.concat(frames, ignore_index=True)


def _grid(data: ConversionData, g: int, ages: np.ndarray, max_cells: int) -> np.ndarray:
    """Upper edges of the time grid for the gridded PPC of cell ``g``: its distinct times."""
    times = np.unique(np.concatenate([data.duration[data.cell == g], ages]))
    times = times[times > 0]
    if len(times) > max_cells:
        times = np.unique(np.quantile(times, np.linspace(0, 1, max_cells)))
    return times


def _gridded(family, edges, ages, k, cdf_age, lag, rng):
    """Spread ``k[i]`` conversions of follow-up group ``i`` over grid cells below its age.

    Cell ``j`` is ``(edges[j-1], edges[j]]`` (``edges[-1] = 0``); a group's last cell ends at
    its age. ``lag``: the lag parameters of one draw. Returns (times, counts) of the
    simulated conversions, aggregated.
    """
    cdf_edges = np.exp(family.logcdf(edges, *lag))
    # cumulative probability at each cell's upper edge, capped at each group's age
    upper = np.minimum(cdf_edges[None, :], cdf_age[:, None])
    lower = np.concatenate([np.zeros((len(ages), 1)), upper[:, :-1]], axis=1)
    probs = np.where(edges[None, :] <= ages[:, None], upper - lower, 0.0)
    # the part of (last edge below the age, age] goes to the age itself
    below = edges[None, :] <= ages[:, None]
    rest = np.clip(cdf_age - (upper * below).max(axis=1, initial=0.0), 0.0, None)
    probs = np.concatenate([probs, rest[:, None]], axis=1)
    total = probs.sum(axis=1, keepdims=True)
    probs = np.divide(probs, total, out=np.zeros_like(probs), where=total > 0)
    probs[total[:, 0] <= 0, -1] = 1.0
    counts = rng.multinomial(k, probs)  # (n_groups, n_cells + 1)
    times = np.concatenate([np.broadcast_to(edges, (len(ages), len(edges))),
                            ages[:, None]], axis=1)
    hit = counts > 0
    return times[hit], counts[hit].astype(float)
