"""Calibration by follow-up age band: observed vs posterior predictive share converted.

Units are grouped by their age at the observation date (follow-up); in each band the observed
share converted so far is set against its posterior predictive distribution, the share a data
set drawn from the fitted model would show for the same units (Gelman, Meng & Stern 1996;
Gabry et al. 2019, "Visualization in Bayesian workflow", *JRSS A* 182:389).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from .cells import Draws, level_label
from .diagnostics import hdi
from .quantities import cell_curves

__all__ = ["calibration_table"]


def _unit_followup(data) -> pd.DataFrame:
    """:meth:`ConversionData.unit_followup` with the cohort code of each cell."""
    out = data.unit_followup()
    out.insert(1, "cohort", data.cell_cohort[out["cell"].to_numpy()])
    return out


def _band_edges(ages: np.ndarray, units: np.ndarray, bands) -> np.ndarray:
    """Band edges: ``bands`` itself if a sequence, else count-weighted quantiles of the age."""
    if np.ndim(bands) == 0:
        n = int(bands)
        if n < 1:
            raise ValueError(f"bands must be a positive number of bands or a sequence of "
                             f"edges, got {bands!r}")
        order = np.argsort(ages, kind="stable")
        cum = np.cumsum(units[order]) / units.sum()
        qs = np.linspace(0, 1, n + 1)[1:-1]
        inner = ages[order][np.minimum(np.searchsorted(cum, qs, side="left"), len(ages) - 1)]
        edges = np.unique(np.concatenate([[ages.min()], inner, [ages.max()]]))
        if len(edges) == 1:
            edges = np.array([edges[0], edges[0]])
        return edges
    edges = np.asarray(bands, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) \
            or not np.all(np.isfinite(edges)):
        raise ValueError(f"band edges must be an increasing sequence of at least 2 finite "
                         f"numbers, got {bands!r}")
    return edges


def _assign(ages: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band index of each age: bands [e0, e1), [e1, e2), ..., the last one closed; -1 outside."""
    idx = np.searchsorted(edges, ages, side="right") - 1
    idx[ages == edges[-1]] = len(edges) - 2
    idx[(ages < edges[0]) | (ages > edges[-1])] = -1
    return idx


def calibration_table(draws: Draws, data: ConversionData, bands=10, *, by_cohort: bool = False,
                      ci_prob: float = 0.94, n_draws: int | None = 1000,
                      random_seed=None, by=None) -> pd.DataFrame:
    """Observed vs posterior predictive share converted, by follow-up age band.

    Every unit has an age at the observation date a (its follow-up) and has converted by then
    or not. Under the model it has converted with probability c_g F_g(a). Units are grouped
    into bands of a; per band the table sets the observed share converted against

    * the expected share Σ n c F(a) / Σ n, averaged over posterior draws, and
    * the posterior predictive share: per draw, converted counts drawn Binomial(n, c F(a))
      for every (cohort, age) group, summed over the band and divided by its units. Its HDI
      includes chance as well as parameter uncertainty, so an observed share outside it
      (in more than about 1 − ``ci_prob`` of the bands) points at misfit.

    Young bands test the lag distribution (how fast units convert), old bands the eventual rate.

    Parameters
    ----------
    draws : Draws
        Posterior draws (:meth:`ConversionResult.draws`).
    data : ConversionData
        The data the model was fitted to.
    bands : int or sequence of float, default 10
        Number of bands with about equal numbers of units (quantiles of the follow-up age;
        tied ages are never split, so there may be fewer), or band edges in the data's time
        unit (bands ``[e0, e1), [e1, e2), …, [e_{k-1}, e_k]``; units outside are left out).
    by_cohort : bool, default False
        Bands within each cohort (edges from the cohort's own ages when ``bands`` is an
        int) instead of bands over all units.
    by : str or list of str, optional
        Bands within each level of any column(s) of the cell table (a covariate such as a
        platform or a birth decade), like ``by_cohort`` for the cohort.
    ci_prob : float, default 0.94
        Probability of the posterior predictive HDI.
    n_draws : int or None, default 1000
        Posterior draws to use (a random subset; None for all).
    random_seed : int, optional

    Returns
    -------
    DataFrame with one row per band (and cohort with ``by_cohort``, level with ``by``),
    columns ``cohort`` (only with ``by_cohort``) or the ``by`` column (its levels as text),
    ``band`` (label), ``age_lower``, ``age_upper`` (band edges, in
    the data's time unit), ``age_mean`` (count-weighted), ``units``, ``converted``,
    ``observed_share``, ``predicted_mean`` (posterior mean of the expected share),
    ``predicted_lower``, ``predicted_upper`` (posterior predictive HDI of the share) and
    ``inside`` (observed share within it). Shares are in [0, 1].
    ``attrs`` hold ``ci_prob`` and ``time_unit``.

    Raises
    ------
    ValueError
        Bad ``bands`` or ``ci_prob``; a result without data; ``by`` not a column of the
        data, or given with ``by_cohort``.
    """
    if not isinstance(data, ConversionData):
        raise ValueError("calibration needs the data the model was fitted to; this result was "
                         "saved without it (include_data=False)")
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    rng = np.random.default_rng(random_seed)
    units = _unit_followup(data)
    thin = draws.thin(n_draws, rng)
    if by is not None and by_cohort:
        raise ValueError("give by_cohort=True or by=..., not both")
    if by is None and not by_cohort:
        label_col, labels, level = None, [None], np.zeros(data.n_cells, np.int64)
    else:
        label_col, labels, level = draws.groups(None if by_cohort else by)
        labels = data.cohorts if by_cohort else labels
    unit_level = level[units["cell"].to_numpy()]
    frames = []
    for i, label in enumerate(labels):
        sel = units[unit_level == i]
        if sel.empty:
            continue
        ages, n = sel["age"].to_numpy(float), sel["units"].to_numpy()
        edges = _band_edges(ages, n, bands)
        band = _assign(ages, edges)
        n_bands = len(edges) - 1
        expected = None
        simulated = None
        for g in np.unique(sel["cell"]):
            m = (sel["cell"].to_numpy() == g) & (band >= 0)
            if not m.any():
                continue
            # (draws, ages): this cell's curve only (every cell's would cost cells² overall)
            curve = cell_curves(thin, ages[m], cells=[g]).isel(cell=0, chain=0).values
            p = np.clip(curve, 0.0, 1.0)
            onehot = np.zeros((m.sum(), n_bands))
            onehot[np.arange(m.sum()), band[m]] = 1.0
            e = (p * n[m]) @ onehot
            s = rng.binomial(n[m], p).astype(float) @ onehot
            expected = e if expected is None else expected + e
            simulated = s if simulated is None else simulated + s
        tot = np.bincount(band[band >= 0], weights=n[band >= 0], minlength=n_bands)
        conv = np.bincount(band[band >= 0], weights=sel["converted"].to_numpy()[band >= 0],
                           minlength=n_bands)
        age_sum = np.bincount(band[band >= 0], weights=(ages * n)[band >= 0],
                              minlength=n_bands)
        keep = tot > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            share_sim = simulated / tot
            share_exp = expected / tot
        sim_da = xr.DataArray(share_sim[None][..., keep], dims=("chain", "draw", "band"))
        h = hdi(sim_da, ci_prob).values if sim_da.sizes["draw"] >= 3 else np.repeat(
            share_sim[0, keep][:, None], 2, axis=1)
        lo, hi = edges[:-1][keep], edges[1:][keep]
        last = np.arange(n_bands)[keep] == n_bands - 1
        frame = pd.DataFrame({
            "band": [f"[{a:g}, {b:g}{']' if is_last else ')'}"
                     for a, b, is_last in zip(lo, hi, last, strict=True)],
            "age_lower": lo, "age_upper": hi, "age_mean": age_sum[keep] / tot[keep],
            "units": tot[keep].astype(np.int64), "converted": conv[keep].astype(np.int64),
            "observed_share": conv[keep] / tot[keep],
            "predicted_mean": share_exp[:, keep].mean(axis=0),
            "predicted_lower": h[:, 0], "predicted_upper": h[:, 1],
        })
        frame["inside"] = ((frame["observed_share"] >= frame["predicted_lower"] - 1e-12)
                           & (frame["observed_share"] <= frame["predicted_upper"] + 1e-12))
        if label_col is not None:
            frame.insert(0, label_col, label if by_cohort else level_label(label))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.attrs.update(ci_prob=ci_prob, time_unit=data.time_unit)
    return table
