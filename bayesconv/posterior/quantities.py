"""Posterior quantities as functions of posterior draws: curves, conversion probabilities,
nowcasts and the pointwise log-likelihood.

Every function takes :class:`Draws` (the lag family and the per-cohort draws of the eventual
rate and the lag parameters) and plain arrays, and uses the cure-mixture formulas of
:mod:`bayesconv.model.mixture`, the same ones the likelihood is made of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from ..lags.families import LagFamily
from ..lags.namespace import NP
from ..model import mixture
from ..model.likelihood import LikelihoodRows, row_loglik
from .diagnostics import hdi

__all__ = ["Draws", "conversion_probability", "curves", "followup_ages", "log_conversion_probability",
           "median_lag", "nowcast", "pointwise_loglik"]

_SAMPLE = ("chain", "draw")


@dataclass(frozen=True)
class Draws:
    """The posterior draws every quantity is computed from.

    Attributes
    ----------
    family : LagFamily
    rate : DataArray of shape (chain, draw, cohort)
        Eventual conversion rate c.
    lag : tuple of DataArray of shape (chain, draw, cohort)
        The lag parameters in ``family.param_names`` order; the location in the data's time
        unit.
    """

    family: LagFamily
    rate: xr.DataArray
    lag: tuple

    @classmethod
    def from_posterior(cls, family: LagFamily, posterior: xr.Dataset) -> Draws:
        lag = (posterior["lag_loc"],) + tuple(posterior[p.var] for p in family.extra_params)
        return cls(family, posterior["eventual_rate"], lag)

    @property
    def n_samples(self) -> int:
        return self.rate.sizes["chain"] * self.rate.sizes["draw"]

    def cohort(self, g: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(c, lag params) of cohort ``g`` as arrays of shape (chain, draw, 1)."""
        c, *lag = (np.asarray(x.isel(cohort=g).values)[..., None] for x in (self.rate, *self.lag))
        return c, lag

    def thin(self, n_draws: int | None, rng) -> Draws:
        """At most ``n_draws`` draws (a random subset, in their order), as one chain."""
        stacked = [x.stack(sample=_SAMPLE) for x in (self.rate, *self.lag)]
        total = stacked[0].sizes["sample"]
        if n_draws is not None and n_draws < total:
            pick = np.sort(rng.choice(total, size=n_draws, replace=False))
            stacked = [x.isel(sample=pick) for x in stacked]
        n = stacked[0].sizes["sample"]
        out = [x.drop_vars(["sample", "chain", "draw"]).rename(sample="draw")
               .assign_coords(draw=np.arange(n)).expand_dims(chain=[0])
               .transpose("chain", "draw", ...) for x in stacked]
        return Draws(self.family, out[0], tuple(out[1:]))


def _log_rate(c):
    """(log c, log(1 − c)) of eventual-rate draws."""
    return np.log(c), np.log1p(-c)


def curves(draws: Draws, t) -> xr.DataArray:
    """Posterior draws of the cumulative conversion curve c·F(t) of every cohort.

    Parameters
    ----------
    draws : Draws
    t : ndarray of shape (n_t,)
        Times since creation, in the data's time unit (>= 0, finite).

    Returns
    -------
    DataArray of shape (chain, draw, cohort, t)
    """
    tt = xr.DataArray(t, dims="t", coords={"t": t})
    logf = xr.apply_ufunc(lambda x, *a: draws.family.logcdf(x, *a, xp=NP), tt, *draws.lag)
    out = draws.rate * np.exp(logf)
    out.name = "conversion"
    return out.transpose("chain", "draw", "cohort", "t")


def median_lag(draws: Draws) -> xr.DataArray:
    """Posterior draws of each cohort's median lag (data's time unit), (chain, draw, cohort)."""
    return xr.apply_ufunc(draws.family.median, *draws.lag)


def log_conversion_probability(draws: Draws, g: int, age, within=None) -> np.ndarray:
    """log P(converts | not converted by ``age``), per draw and age, for cohort ``g``.

    Eventually: c S(a) / (1 − c F(a)); with ``within`` = w, in the next w time units:
    c (F(a + w) − F(a)) / (1 − c F(a)) (:mod:`bayesconv.model.mixture`).

    Returns
    -------
    ndarray of shape (chain, draw, n_ages)
    """
    c, lag = draws.cohort(g)
    fam = draws.family
    log_c, log1m_c = _log_rate(c)
    log_sf = fam.logsf(age, *lag)
    if within is None:
        return mixture.log_converts_eventually(log_c, log1m_c, log_sf, NP)
    log_mass = fam.log_mass(age, age + within, *lag)
    return mixture.log_converts_within(log_c, log1m_c, log_sf, log_mass, NP)


def conversion_probability(draws: Draws, g: int, age) -> np.ndarray:
    """P(converts eventually | not converted by ``age``), shape (chain, draw, n_ages)."""
    return np.exp(log_conversion_probability(draws, g, age))


def pointwise_loglik(draws: Draws, rows: LikelihoodRows) -> np.ndarray:
    """Log-likelihood of one unit of each aggregated row, per draw: (chain, draw, n_rows).

    In the data's time unit (``rows`` from :func:`~bayesconv.model.likelihood.rows_from_data`
    with the model's time scale and zero width).
    """
    c, loc, *rest = (x.values for x in (draws.rate, *draws.lag))
    log_c, log1m_c = _log_rate(c)
    return row_loglik(draws.family, rows, log_c, log1m_c, loc / rows.time_scale, *rest, xp=NP)


def nowcast(draws: Draws, data: ConversionData, *, ci_prob: float, within, rng) -> pd.DataFrame:
    """Conversions so far and still to come per cohort (see ``ConversionResult.nowcast``)."""
    table = data.cohort_table()[["units", "converted"]].copy()
    table["pending"] = table["units"] - table["converted"]
    pending = ~data.converted
    out = {k: [] for k in ("remaining_mean", "remaining_lower", "remaining_upper")}
    for g in range(data.n_cohorts):
        m = pending & (data.cohort == g)
        ages, n = data.duration[m], data.count[m]
        # F(a + w) = F(a) in floating point (far tail): probability exactly 0, no warning
        with np.errstate(divide="ignore"):
            lp = log_conversion_probability(draws, g, ages, within)  # (chain, draw, rows)
        p = np.clip(np.exp(lp), 0.0, 1.0)
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
    table.attrs.update(ci_prob=ci_prob, within=within, time_unit=data.time_unit)
    return table


def followup_ages(data: ConversionData) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per cohort: (ages, counts) of every unit's follow-up (age at the observation date).

    For the duration/event layout, where the follow-up of converted units is unknown, every
    unit of a cohort is taken to be followed to the cohort's longest duration.
    """
    out = []
    fu = data.followup
    for g in range(data.n_cohorts):
        if fu is not None:
            sel = fu[data.cell_cohort[fu["cell"].to_numpy()] == g]
            ages, inv = np.unique(sel["age"].to_numpy(float), return_inverse=True)
            counts = np.bincount(inv, weights=sel["count"].to_numpy()).astype(np.int64)
            out.append((ages, counts))
        else:
            m = data.cohort == g
            out.append((np.array([data.duration[m].max()]), np.array([data.count[m].sum()])))
    return out
