"""Posterior quantities as functions of posterior draws: curves, conversion probabilities,
nowcasts and the pointwise log-likelihood.

Every function takes :class:`~bayesconv.posterior.cells.Draws` (per-cell draws of the eventual
rate and the lag parameters) and plain arrays, and uses the cure-mixture formulas of
:mod:`bayesconv.model.mixture`, the same ones the likelihood is made of. Per-cohort (or
per-factor) quantities are the cells' quantities averaged by :meth:`Draws.average`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from ..lags.namespace import NP
from ..model import mixture
from ..model.likelihood import LikelihoodRows, row_loglik
from .cells import Draws, level_label
from .diagnostics import hdi

__all__ = ["cell_curves", "conversion_probability", "curves", "followup_ages",
           "log_conversion_probability", "median_lag", "nowcast", "pointwise_loglik"]

_SAMPLE = ("chain", "draw")


def _log_rate(c):
    """(log c, log(1 − c)) of eventual-rate draws."""
    return np.log(c), np.log1p(-c)


def cell_curves(draws: Draws, t, cells=None) -> xr.DataArray:
    """c·F(t) of every cell (or of the cell codes ``cells`` only): DataArray of shape
    (chain, draw, cell, t)."""
    tt = xr.DataArray(t, dims="t", coords={"t": t})
    rate, lag = draws.rate, draws.lag
    if cells is not None:
        rate, lag = rate.isel(cell=cells), tuple(x.isel(cell=cells) for x in lag)
    logf = xr.apply_ufunc(lambda x, *a: draws.family.logcdf(x, *a, xp=NP), tt, *lag)
    out = rate * np.exp(logf)
    out.name = "conversion"
    return out.transpose("chain", "draw", "cell", "t")


def curves(draws: Draws, t, by=None) -> xr.DataArray:
    """Posterior draws of the cumulative conversion curve c·F(t), per level of ``by``.

    Parameters
    ----------
    draws : Draws
    t : ndarray of shape (n_t,)
        Times since creation, in the data's time unit (>= 0, finite).
    by : str or list of str, optional
        Cell-table column(s); default the cohort. Each level's curve is its cells' curves
        averaged over their units (the level's observed mix of the other factors).

    Returns
    -------
    DataArray of shape (chain, draw, level, t)
    """
    out = draws.average(cell_curves(draws, t), by)
    out.name = "conversion"
    return out


def median_lag(family, lag: tuple) -> xr.DataArray:
    """Draws of the median lag (data's time unit) from lag-parameter draws of any shape."""
    return xr.apply_ufunc(family.median, *lag)


def log_conversion_probability(draws: Draws, cells, age, within=None) -> np.ndarray:
    """log P(converts | not converted by ``age``), per draw and row, of units in ``cells``.

    Eventually: c S(a) / (1 − c F(a)); with ``within`` = w, in the next w time units:
    c (F(a + w) − F(a)) / (1 − c F(a)) (:mod:`bayesconv.model.mixture`).

    Parameters
    ----------
    draws : Draws
    cells : int or ndarray of shape (n,)
        The units' cells.
    age : ndarray of shape (n,)
        Their ages, in the data's time unit.
    within : float, optional

    Returns
    -------
    ndarray of shape (chain, draw, n)
    """
    c, lag = draws.arrays(np.broadcast_to(cells, np.shape(age)) if np.ndim(age) else cells)
    fam = draws.family
    log_c, log1m_c = _log_rate(c)
    log_sf = fam.logsf(age, *lag)
    if within is None:
        return mixture.log_converts_eventually(log_c, log1m_c, log_sf, NP)
    log_mass = fam.log_mass(age, age + within, *lag)
    return mixture.log_converts_within(log_c, log1m_c, log_sf, log_mass, NP)


def conversion_probability(draws: Draws, cells: np.ndarray, weights: np.ndarray,
                           age) -> np.ndarray:
    """P(converts eventually | not converted by ``age``), shape (chain, draw, n_ages), for a
    unit of the given cells (a mix with ``weights`` summing to 1)."""
    p = 0.0
    for cell, w in zip(cells, weights, strict=True):
        term = np.exp(log_conversion_probability(draws, np.full(len(age), cell), age))
        p = term if (w == 1.0 and np.isscalar(p)) else p + w * term
    return p


def pointwise_loglik(draws: Draws, rows: LikelihoodRows) -> np.ndarray:
    """Log-likelihood of one unit of each aggregated row, per draw: (chain, draw, n_rows).

    In the data's time unit (``rows`` from :func:`~bayesconv.model.likelihood.rows_from_data`
    with the model's time scale and zero width).
    """
    c, loc, *rest = (x.values for x in (draws.rate, *draws.lag))
    log_c, log1m_c = _log_rate(c)
    return row_loglik(draws.family, rows, log_c, log1m_c, loc / rows.time_scale, *rest, xp=NP)


def nowcast(draws: Draws, data: ConversionData, *, ci_prob: float, within, rng,
            by=None) -> pd.DataFrame:
    """Conversions so far and still to come per level of ``by`` (see
    ``ConversionResult.nowcast``)."""
    name, labels, level_of_cell = draws.groups(by)
    level = level_of_cell[data.cell]
    units = np.bincount(level, weights=data.count, minlength=len(labels)).astype(np.int64)
    conv = np.bincount(level, weights=data.count * data.converted,
                       minlength=len(labels)).astype(np.int64)
    index = (pd.Index(data.cohorts, name=data.cohort_name or "cohort") if by is None
             else pd.Index([level_label(x) if isinstance(x, tuple) else x for x in labels],
                           name=name))
    table = pd.DataFrame({"units": units, "converted": conv}, index=index)
    table["pending"] = table["units"] - table["converted"]
    pending = ~data.converted
    out = {k: [] for k in ("remaining_mean", "remaining_lower", "remaining_upper")}
    for g in range(len(labels)):
        m = pending & (level == g)
        ages, n = data.duration[m], data.count[m]
        # F(a + w) = F(a) in floating point (far tail): probability exactly 0, no warning
        with np.errstate(divide="ignore"):
            lp = log_conversion_probability(draws, data.cell[m], ages, within)
        p = np.clip(np.exp(lp), 0.0, 1.0)  # (chain, draw, rows)
        sims = rng.binomial(n, p).sum(axis=-1).astype(float)  # (chain, draw)
        da = xr.DataArray(sims, dims=_SAMPLE)
        if da.size >= 3:
            h = hdi(da, ci_prob).values
        else:
            h = np.repeat(float((n * p).sum()), 2)
        out["remaining_mean"].append(float((n * p).sum(axis=-1).mean()))
        out["remaining_lower"].append(float(h[0]))
        out["remaining_upper"].append(float(h[1]))
    for k, v in out.items():
        table[k] = v
    for k in ("mean", "lower", "upper"):
        table[f"eventual_{k}"] = table["converted"] + table[f"remaining_{k}"]
    table["eventual_rate_mean"] = table["eventual_mean"] / table["units"]
    table.attrs.update(ci_prob=ci_prob, within=within, time_unit=data.time_unit, by=by)
    return table


def followup_ages(data: ConversionData) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per cell: (ages, counts) of every unit's follow-up (age at the observation date).

    From :meth:`ConversionData.unit_followup`: for the duration/event layout, where the
    follow-up of converted units is unknown, they are taken to be followed to their cohort's
    longest duration, and censored units to their own.
    """
    fu = data.unit_followup()
    cell = fu["cell"].to_numpy()
    ages, units = fu["age"].to_numpy(float), fu["units"].to_numpy(np.int64)
    bounds = np.searchsorted(cell, np.arange(data.n_cells + 1))
    return [(ages[a:b], units[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def median_lags(draws: Draws, by=None) -> xr.DataArray:
    """Median lag of the converters of each level of ``by``, per draw (data's time unit).

    A level's converters come from its cells in proportion to units × eventual rate; their lag
    is the mixture of the cells' lags (:func:`bayesconv.model.mixture.converter_median`). A
    level of one cell has its cell's median, in closed form.

    Returns
    -------
    DataArray of shape (chain, draw, level)
    """
    name, labels, W = draws.weights(by)
    c = draws.rate.values
    lag = [x.values for x in draws.lag]
    parts = []
    for i in range(len(labels)):
        cells = np.flatnonzero(W[i])
        parts.append(mixture.converter_median(draws.family, c[..., cells],
                                              [x[..., cells] for x in lag], W[i, cells]))
    return xr.DataArray(np.stack(parts, axis=-1), dims=("chain", "draw", name),
                        coords={"chain": draws.rate["chain"], "draw": draws.rate["draw"],
                                name: [level_label(x) for x in labels]})
