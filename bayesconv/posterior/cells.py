"""Posterior draws per cell, and the one place where they are averaged over any factor.

Parameters live per cell (one distinct combination of the cohort and the covariates). A
quantity "per arm" or "per platform" is the average of the cells' quantities over the units of
that level (their observed mix of the other factors): curves, nowcasts and summaries use these
averages (:meth:`Draws.average`). Readouts average counterfactual cells over the experiment's
pooled mix instead (:func:`row_parameters`, used by :mod:`bayesconv.readout`), so that arms are
compared on the same population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData, group_index
from ..model.formula import build_design

__all__ = ["Draws", "cell_units", "level_label", "pooled_mix", "row_parameters"]

_SAMPLE = ("chain", "draw")


def cell_units(data) -> np.ndarray:
    """Units per cell, ndarray of shape (n_cells,)."""
    return np.bincount(data.cell, weights=data.count, minlength=data.n_cells)


@dataclass(frozen=True)
class Draws:
    """The posterior draws every quantity is computed from, per cell.

    Attributes
    ----------
    family : LagFamily
    rate : DataArray of shape (chain, draw, cell)
        Eventual conversion rate c of each cell.
    lag : tuple of DataArray of shape (chain, draw, cell)
        The lag parameters in ``family.param_names`` order; the location in the data's time
        unit.
    cells : DataFrame of shape (n_cells, n_columns)
        The cell table.
    units : ndarray of shape (n_cells,)
        Units per cell (the weights of averages).
    cohort_column : str
    """

    family: object
    rate: xr.DataArray
    lag: tuple
    cells: pd.DataFrame
    units: np.ndarray
    cohort_column: str

    @classmethod
    def from_posterior(cls, family, posterior: xr.Dataset, cells: pd.DataFrame,
                       units: np.ndarray, cohort_column: str) -> Draws:
        """Per-cell draws from a posterior: a parameter's ``<name>_cell`` variable when its
        formula made one, else its per-cohort variable, read for each cell's cohort."""
        cohort_codes = cells[cohort_column].cat.codes.to_numpy().astype(np.int64)
        cell = xr.DataArray(np.arange(len(cells)), dims="cell")

        def per_cell(name):
            if f"{name}_cell" in posterior:
                return posterior[f"{name}_cell"].assign_coords(cell=np.arange(len(cells)))
            per_cohort = posterior[name]
            if len(cells) == per_cohort.sizes["cohort"] and np.array_equal(
                    cohort_codes, np.arange(len(cells))):
                return per_cohort.rename(cohort="cell").assign_coords(cell=cell.values)
            return per_cohort.isel(cohort=xr.DataArray(cohort_codes, dims="cell")).drop_vars(
                "cohort").assign_coords(cell=cell.values)

        names = ["lag_loc"] + [p.var for p in family.extra_params]
        return cls(family, per_cell("eventual_rate"), tuple(per_cell(n) for n in names),
                   cells, np.asarray(units, dtype=float), cohort_column)

    @property
    def n_samples(self) -> int:
        return self.rate.sizes["chain"] * self.rate.sizes["draw"]

    def arrays(self, cells) -> tuple[np.ndarray, list[np.ndarray]]:
        """(c, lag params) of the given cells (index array), shape (chain, draw, len(cells))."""
        cells = np.atleast_1d(cells)
        c, *lag = (np.asarray(x.values)[..., cells] for x in (self.rate, *self.lag))
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
        return Draws(self.family, out[0], tuple(out[1:]), self.cells, self.units,
                     self.cohort_column)

    def groups(self, by=None) -> tuple[str, list, np.ndarray]:
        """Levels of ``by`` over the cells (default: the cohorts, dimension "cohort")."""
        if by is None:
            codes = self.cells[self.cohort_column].cat.codes.to_numpy().astype(np.int64)
            return "cohort", list(self.cells[self.cohort_column].cat.categories), codes
        return group_index(self.cells, by)

    def weights(self, by=None) -> tuple[str, list, np.ndarray]:
        """(dimension, labels, W): W of shape (n_levels, n_cells), each level's cells weighted
        by their units and normalised to sum to 1 (a cell that is a level alone has weight
        1.0 exactly, so one-cell levels keep their draws bit for bit)."""
        name, labels, index = self.groups(by)
        W = np.zeros((len(labels), len(self.cells)))
        W[index, np.arange(len(self.cells))] = self.units
        totals = W.sum(axis=1, keepdims=True)
        W = np.divide(W, totals, out=np.zeros_like(W), where=totals > 0)
        return name, labels, W

    def average(self, values: xr.DataArray, by=None) -> xr.DataArray:
        """Unit-weighted average of a per-cell quantity over the levels of ``by``.

        Parameters
        ----------
        values : DataArray with a ``cell`` dimension
        by : str or list of str, optional
            Column(s) of the cell table (default: the cohort).

        Returns
        -------
        DataArray with the ``cell`` dimension replaced by the level dimension (named after
        ``by``, "cohort" by default), coordinates ``str(level)``.
        """
        name, labels, W = self.weights(by)
        parts = []
        for i in range(len(labels)):
            cells = np.flatnonzero(W[i])
            if len(cells) == 1 and W[i, cells[0]] == 1.0:
                parts.append(values.isel(cell=int(cells[0])).drop_vars("cell", errors="ignore"))
            else:
                w = xr.DataArray(W[i, cells], dims="cell")
                parts.append((values.isel(cell=cells).drop_vars("cell", errors="ignore") * w)
                             .sum("cell"))
        out = xr.concat(parts, dim=name).assign_coords({name: [level_label(x) for x in labels]})
        return out.transpose(*[d for d in values.dims if d != "cell"][:2], name, ...)


def level_label(x) -> str:
    """A level of one or several factors as text ("ios", or "B × ios" for a tuple)."""
    return " × ".join(map(str, x)) if isinstance(x, tuple) else str(x)


def row_parameters(posterior: xr.Dataset, spec, family, data, rows: pd.DataFrame
                   ) -> tuple[xr.DataArray, tuple]:
    """Posterior draws of the parameters of arbitrary rows (cells not necessarily observed).

    A parameter with a formula is evaluated from its coefficient draws on the rows' design
    (:meth:`bayesconv.model.formula.Design.evaluate`); one without takes the draws of the
    row's cohort.

    Parameters
    ----------
    posterior : Dataset
    spec : ModelSpec
    family : LagFamily
    data : ConversionData
        The data fitted (for the cell table the designs were built on).
    rows : DataFrame
        With the cohort column and every column the formulas use.

    Returns
    -------
    rate : DataArray of shape (chain, draw, row)
    lag : tuple of DataArray of shape (chain, draw, row), location in the data's time unit

    Raises
    ------
    ValueError
        A row whose cohort, factor level or period the model has no parameter for.
    """
    n = len(rows)
    cohorts = [str(c) for c in data.cohorts]
    column = data.cohort_name or "cohort"
    if column not in rows:
        raise ValueError(f"the rows need the cohort column {column!r}")
    na = rows[column].isna().to_numpy()
    if na.any():
        raise ValueError(f"the cohort column {column!r} has missing values in {int(na.sum())} "
                         f"rows (index {list(rows.index[na][:10])})")
    labels = rows[column].astype(str).tolist()
    unknown = sorted(set(labels) - set(cohorts))
    design_params = set(spec.formula)

    def cohort_draws(name):
        if unknown:
            raise ValueError(f"cohorts {unknown} are not in the data; cohorts: {cohorts}")
        idx = xr.DataArray([cohorts.index(v) for v in labels], dims="row")
        return posterior[name].isel(cohort=idx).drop_vars("cohort")

    def formula_draws(name, raw, inverse):
        design = build_design(name, spec.formula[name], data.cells, cell_units(data))
        X, Zs, walks = design.evaluate(rows)
        eta = xr.DataArray(np.zeros((posterior.sizes["chain"], posterior.sizes["draw"], n)),
                           dims=(*_SAMPLE, "row"),
                           coords={d: posterior[d].values for d in _SAMPLE})
        if design.intercept:
            eta = eta + posterior[f"{raw}_intercept"]
        if design.fixed:
            beta = posterior[f"{raw}_beta"].values  # (chain, draw, n_fixed)
            eta = eta + xr.DataArray(beta @ X.T, dims=(*_SAMPLE, "row"))
        for term, Z in zip(design.groups, Zs, strict=True):
            b = posterior[f"{raw}_{term.name.replace('|', '_by_')}"].values
            eta = eta + xr.DataArray(b @ Z.T, dims=(*_SAMPLE, "row"))
        for walk, index in zip(design.walks, walks, strict=True):
            w = posterior[f"{raw}_rw_{walk.period}"].values
            eta = eta + xr.DataArray(w[..., index], dims=(*_SAMPLE, "row"))
        return inverse(eta)

    s = spec.time_scale
    rate = (formula_draws("eventual_rate", "logit_rate", lambda x: 1 / (1 + np.exp(-x)))
            if "eventual_rate" in design_params else cohort_draws("eventual_rate"))
    lag = [formula_draws("lag_loc", "log_lag_loc", lambda x: np.exp(x) * s)
           if "lag_loc" in design_params else cohort_draws("lag_loc")]
    for p in family.extra_params:
        if p.var in design_params:
            raw = f"log_{p.var}" if p.positive else p.var
            lag.append(formula_draws(p.var, raw, np.exp if p.positive else (lambda x: x)))
        else:
            lag.append(cohort_draws(p.var))
    return rate, tuple(lag)


def pooled_mix(data, arms, by=None) -> list[tuple]:
    """The experiment's own mix of the factors other than the arm, to average arms over.

    Every arm is read out on the same population: the combinations of the other cell-table
    columns found in the compared arms' cells, weighted by their units pooled over those arms
    (standardisation; for a randomised experiment each arm's own mix estimates the same).

    Parameters
    ----------
    data : ConversionData (or a stand-in without cells, for which there is nothing to mix)
    arms : sequence of labels
        The compared arms (cohort labels).
    by : str, optional
        A column of the cell table: besides the overall mix, one mix per level of it.

    Returns
    -------
    list of (segment, combos, weights)
        ``segment`` None for the overall mix, else the level; ``combos`` a DataFrame of the
        other columns' values (no columns at all without covariates); ``weights`` an ndarray
        summing to 1.

    Raises
    ------
    ValueError
        ``by`` is the arm column or not a column of the cell table.
    """
    if not isinstance(data, ConversionData):
        if by is not None:
            raise ValueError(f"by={by!r} needs the data's cell table (saved with "
                             "include_data=True)")
        return [(None, pd.DataFrame(index=[0]), np.ones(1))]
    column = data.cohort_column
    if by is not None:
        if by == column:
            raise ValueError(f"by={by!r} is the arm column; by= splits a readout by another "
                             "factor (e.g. a platform or segment column)")
        if by not in data.cells.columns:
            raise ValueError(f"by={by!r} is not a column of the data; columns: "
                             f"{list(data.cells.columns)} (covariates are added with "
                             "prepare(..., covariates=[...]))")
    cells = data.cells.assign(_units=cell_units(data))
    cells = cells[cells[column].isin(list(arms))]
    others = [c for c in data.cells.columns if c != column]
    if not others:
        return [(None, pd.DataFrame(index=[0]), np.ones(1))]
    combos = cells.groupby(others, observed=True, sort=True)["_units"].sum().reset_index()
    combos = combos[combos["_units"] > 0]
    out = []
    for segment, sub in [(None, combos)] + ([] if by is None else [
            (level, combos[combos[by] == level]) for level in pd.unique(combos[by])
            if (combos[by] == level).any()]):
        w = sub["_units"].to_numpy(dtype=float)
        out.append((segment, sub[others].reset_index(drop=True), w / w.sum()))
    return out
