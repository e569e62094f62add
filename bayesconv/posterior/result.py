"""ConversionResult: a fitted posterior and the data it was fitted to, with everything one
reads off it. The computations live in the modules beside this one (quantities, diagnostics,
identification, predictive checks, calibration, storage); this class holds the draws and
puts a name on each."""

from __future__ import annotations

import json
import os
from importlib.metadata import version

import numpy as np
import pandas as pd
import xarray as xr

from .. import plotting
from ..data.container import ConversionData
from ..data.kaplan_meier import kaplan_meier
from ..errors import DataNotSavedError
from ..lags.families import get_lag
from ..model.likelihood import rows_from_data
from ..model.spec import ModelSpec
from . import calibration, diagnostics, identification, predictive, quantities, store
from .cells import Draws, cell_units, level_label, row_parameters

__all__ = ["KINDS", "ConversionResult", "load"]

#: What a result holds: posterior draws (NUTS), one point (MAP), or draws from the prior.
KINDS = ("draws", "point", "prior")


class ConversionResult:
    """A fitted conversion model: posterior draws and everything computed from them.

    Parameters
    ----------
    tree : xarray.DataTree
        At least a ``posterior`` group (see :attr:`idata`).
    data : ConversionData (or :class:`~bayesconv.posterior.store.DataNotSaved`)
    spec : ModelSpec
    sampler : str
        "nutpie", "pymc", "map", "prior", ...
    kind : {"draws", "point", "prior"}, optional
        Default: "point" for the sampler "map", "prior" for "prior", else "draws".
    timing : dict, optional

    Attributes
    ----------
    idata : xarray.DataTree
        Groups ``posterior`` (``eventual_rate``, ``lag_loc``, ``lag_shape`` (not for the
        exponential lag), ``lag_q`` (generalized gamma), ``median_lag`` per
        cohort, plus hyperparameters; lags in the data's time unit), ``sample_stats``,
        ``log_likelihood`` (``conversion``: log-likelihood of one unit of each aggregated row,
        dims (chain, draw, row)), ``observed_data`` (``duration``, ``converted`` per row) and
        ``constant_data`` (``count``, ``cohort``, ``cell``, ``lower`` per row). Root attributes hold the
        model spec as JSON.
    data : ConversionData
    sampler : str
        "nutpie", "pymc" or "map".
    kind : str
        "draws" (posterior draws), "point" (a MAP point) or "prior".
    has_draws : bool
        Whether the result holds posterior draws (what intervals and readouts need).
    timing : dict
        Seconds spent compiling (``compile_s``) and sampling (``sampling_s``); with nutpie
        also where the compiled model came from (``compile_source``: ``"memory"``, reused in
        this process, ``"disk"``, the persistent compile cache, or ``"compiled"``) and
        ``compile_cached`` (reused in this process).
    """

    #: Above this many units in a cohort, posterior predictive data sets are simulated on a
    #: grid of times instead of unit by unit (see :meth:`posterior_predictive_km`).
    PPC_UNIT_LIMIT = predictive.PPC_UNIT_LIMIT
    #: Most grid cells per cohort for the gridded simulation.
    PPC_MAX_CELLS = predictive.PPC_MAX_CELLS

    def __init__(self, tree: xr.DataTree, data, spec: ModelSpec, *, sampler: str,
                 kind: str | None = None, timing: dict | None = None):
        kind = kind or {"map": "point", "prior": "prior"}.get(sampler, "draws")
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not one of {KINDS}")
        self._tree = tree
        self.data = data
        self.spec = spec
        self.family = get_lag(spec.lag)
        self.sampler = sampler
        self.kind = kind
        self.timing = dict(timing or {})
        self._diagnostics: dict | None = None
        self._loglik: xr.DataArray | None = None
        self._identification: pd.DataFrame | None = None  # by cohort, computed once

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_fit(cls, model, dt: xr.DataTree, *, sampler: str, timing: dict, random_seed,
                 kind: str | None = None) -> ConversionResult:
        """A result from a sampler's output: the model's variables, labels and data.

        Parameters
        ----------
        model : ConversionModel
            The model fitted (its data, spec, family and coords are read).
        dt : xarray.DataTree
            With a ``posterior`` group (and ``sample_stats``, if any).
        sampler, timing, random_seed, kind
            Recorded in the result.
        """
        data, spec, family = model.data, model.spec, model.family
        post = dt["posterior"].to_dataset()
        keep = [v for v in post.data_vars if not v.endswith("__") and not v.startswith("lik_")]
        post = post[keep]
        if "cohort" in post.coords:
            post = post.assign_coords(cohort=list(model.coords["cohort"]))
        lag_vars = ["lag_loc"] + [p.var for p in family.extra_params]
        if all(v in post for v in lag_vars):  # lag parameters per cohort
            post["median_lag"] = quantities.median_lag(family, tuple(post[v] for v in lag_vars))
            post["median_lag"].attrs["units"] = data.time_unit
        else:  # a formula on the lag: per cell
            draws = Draws.from_posterior(family, post, data.cells, cell_units(data),
                                         data.cohort_column)
            post["median_lag_cell"] = quantities.median_lag(family, draws.lag)
            post["median_lag_cell"].attrs["units"] = data.time_unit
        for v in ("lag_loc", "lag_loc_cell"):
            if v in post:
                post[v].attrs.update(units=data.time_unit, meaning=f"{family.location} lag")
        groups = {"posterior": post}
        if "sample_stats" in dt.children:
            groups["sample_stats"] = dt["sample_stats"].to_dataset()
        row = np.arange(data.n_rows)
        groups["observed_data"] = xr.Dataset(
            {"duration": ("row", data.duration), "converted": ("row", data.converted)},
            coords={"row": row})
        groups["constant_data"] = xr.Dataset(
            {"count": ("row", data.count), "cohort": ("row", data.cohort),
             "cell": ("row", data.cell), "lower": ("row", data.lower)}, coords={"row": row})
        attrs = {
            "bayesconv_version": version("bayesconv"), "pymc_version": version("pymc"),
            "sampler": sampler, "random_seed": "" if random_seed is None else str(random_seed),
            "spec": json.dumps(spec.to_dict()), "time_unit": data.time_unit,
            "cohorts": json.dumps([str(c) for c in data.cohorts]),
            "observed_until": str(data.observed_until),
        }
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update(attrs)
        return cls(tree, data, spec, sampler=sampler, kind=kind, timing=timing)

    # ------------------------------------------------------------------ the trees
    @property
    def tree(self) -> xr.DataTree:
        """The stored groups, without the (derived) ``log_likelihood`` group."""
        return self._tree

    @property
    def idata(self) -> xr.DataTree:
        """The posterior and data as an ArviZ ``DataTree`` (see the class docstring).

        The ``log_likelihood`` group (draws × aggregated rows; 4,000 × 6,000 values on the NYC
        demo, seconds of computation) is computed on first access and kept, not at fitting
        time: it is needed by LOO and model comparison only, and it is a function of the
        posterior and the data, so it is not saved either (:meth:`save`). The stored tree is
        not changed: each access returns the stored groups plus this one.
        """
        tree = self._tree
        if ("log_likelihood" in tree.children or not isinstance(self.data, ConversionData)
                or "posterior" not in tree.children):
            return tree
        if self._loglik is None:
            self._loglik = self.pointwise_loglik()
        groups = {node.path: node.to_dataset(inherit=False) for node in tree.subtree}
        groups["/log_likelihood"] = xr.Dataset({"conversion": self._loglik})
        out = xr.DataTree.from_dict(groups)
        out.attrs.update(tree.attrs)
        return out

    @idata.setter
    def idata(self, value: xr.DataTree) -> None:
        self._tree = value
        self._loglik = None
        self._diagnostics = None
        self._identification = None

    @property
    def has_draws(self) -> bool:
        """Whether the result holds more than one posterior draw (intervals, readouts)."""
        post = self.posterior
        return self.kind != "point" and post.sizes["chain"] * post.sizes["draw"] > 1

    # ------------------------------------------------------------------ saving
    def save(self, path, *, include_data: bool = True, overwrite: bool = False):
        """Write this result to a Zarr directory store; read it back with :func:`load`.

        Parameters
        ----------
        path : str or os.PathLike
            Directory to create (conventionally ending in ``.zarr``).
        include_data : bool, default True
            Also store the unit-level data. False keeps only the posterior, ``sample_stats``
            and cohort labels (see :func:`bayesconv.posterior.store.save_result`).
        overwrite : bool, default False
            Replace an existing bayesconv result at ``path``.

        Returns
        -------
        pathlib.Path
        """
        return store.save_result(self, path, include_data=include_data, overwrite=overwrite)

    # ------------------------------------------------------------------ posterior access
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as an xarray Dataset."""
        return self._tree["posterior"].to_dataset()

    def draws(self) -> Draws:
        """The per-cell draws every posterior quantity is computed from (:class:`Draws`).

        For a result saved without its data, the cells are the cohorts (the posterior of a
        model without formulas is per cohort); a model with formulas needs the data.
        """
        if isinstance(self.data, ConversionData):
            return Draws.from_posterior(self.family, self.posterior, self.data.cells,
                                        cell_units(self.data), self.data.cohort_column)
        if self.spec.formula:
            raise DataNotSavedError("a model with formulas needs its data (cell table and "
                                    "units) for any posterior quantity; save with "
                                    "include_data=True")
        column = self.data.cohort_name or "cohort"
        labels = list(self.data.cohorts)
        cells = pd.DataFrame({column: pd.Categorical(labels, categories=labels)})
        return Draws.from_posterior(self.family, self.posterior, cells, np.ones(len(labels)),
                                    column)

    def eventual_rate(self, by=None) -> xr.DataArray:
        """Posterior draws of the eventual conversion rate per cohort (or level of ``by``).

        Parameters
        ----------
        by : str or list of str, optional
            Column(s) of the data's cell table; default the cohort. A level's rate is its
            cells' rates averaged over their units (the level's observed mix).

        Returns
        -------
        DataArray of shape (chain, draw, cohort) (or (chain, draw, level))
        """
        if by is None and "eventual_rate" in self.posterior:
            return self.posterior["eventual_rate"]
        draws = self.draws()
        return draws.average(draws.rate, by).rename("eventual_rate")

    def median_lag(self, by=None) -> xr.DataArray:
        """Posterior draws of the median lag of converters per cohort (or level of ``by``), in
        the data's time unit (see :func:`bayesconv.posterior.quantities.median_lags`)."""
        if by is None and "median_lag" in self.posterior:
            return self.posterior["median_lag"]
        return quantities.median_lags(self.draws(), by).rename("median_lag")

    def curves(self, t, by=None) -> xr.DataArray:
        """Posterior draws of the cumulative conversion curve c·F(t) per cohort.

        Parameters
        ----------
        t : array_like of shape (n_t,)
            Times since creation, in the data's time unit (>= 0).
        by : str or list of str, optional
            Column(s) of the data's cell table (e.g. "platform"); default the cohort. A
            level's curve is its cells' curves averaged over their units (marginal over the
            level's observed mix of the other factors).

        Returns
        -------
        DataArray of shape (chain, draw, cohort, t) (or (chain, draw, level, t))
            Probability that a unit has converted by each time.

        Raises
        ------
        ValueError
            A negative or non-finite time; ``by`` naming a column the data do not have.
        """
        t = _times(t)
        out = quantities.curves(self.draws(), t, by)
        out.attrs["units_t"] = self.data.time_unit
        return out

    def predict(self, rows: pd.DataFrame, t) -> xr.DataArray:
        """Posterior draws of c·F(t) for new rows of covariate values.

        Parameters
        ----------
        rows : DataFrame
            One row per unit (or cell) to predict, with the cohort column and the columns the
            formulas use; levels and periods must be ones the model was fitted on.
        t : array_like of shape (n_t,)
            Times since creation, in the data's time unit.

        Returns
        -------
        DataArray of shape (chain, draw, row, t)
            Coordinate ``row``: the index labels of ``rows``.

        Raises
        ------
        ValueError
            A row whose cohort, group level or period the model has no parameter for; a
            missing value in a column the formulas use.
        """
        t = _times(t)
        rate, lag = row_parameters(self.posterior, self.spec, self.family, self.data, rows)
        tt = xr.DataArray(t, dims="t", coords={"t": t})
        logf = xr.apply_ufunc(lambda x, *a: self.family.logcdf(x, *a), tt, *lag)
        out = (rate * np.exp(logf)).transpose("chain", "draw", "row", "t")
        out = out.assign_coords(row=np.asarray(rows.index))  # the rows' own index labels
        out.name = "conversion"
        out.attrs["units_t"] = self.data.time_unit
        return out

    def pointwise_loglik(self) -> xr.DataArray:
        """Log-likelihood of one unit of each aggregated row, per posterior draw.

        Returns
        -------
        DataArray of shape (chain, draw, row)
            In the data's time unit. A row standing for ``count`` identical units contributes
            ``count`` times this value (``constant_data.count``).
        """
        rows = rows_from_data(self.data, time_scale=self.spec.time_scale,
                              zero_width=self.spec.zero_width)
        c = self.eventual_rate()
        vals = quantities.pointwise_loglik(self.draws(), rows)
        return xr.DataArray(vals, dims=("chain", "draw", "row"),
                            coords={"chain": c["chain"], "draw": c["draw"],
                                    "row": np.arange(self.data.n_rows)})

    # ------------------------------------------------------------------ tables
    def diagnostics(self) -> dict:
        """Convergence checks: R-hat, ESS, divergences (computed once)."""
        if self._diagnostics is None:
            self._diagnostics = diagnostics.check_convergence(self._tree, warn=False)
        return self._diagnostics

    def check(self, *, stacklevel: int = 2, label: str | None = None) -> dict:
        """Run the convergence checks with warnings (as ``fit`` does) and keep the result."""
        self._diagnostics = diagnostics.check_convergence(self._tree, stacklevel=stacklevel + 1,
                                                          label=label)
        return self._diagnostics

    def summary(self, ci_prob: float = 0.94, *, by=None) -> pd.DataFrame:
        """Per-cohort table of the posterior.

        Parameters
        ----------
        ci_prob : float, default 0.94
            Probability of the highest density intervals (HDI).

        Returns
        -------
        DataFrame indexed by cohort with columns ``units``, ``converted``, ``naive_rate``,
        ``km_end`` (Kaplan–Meier conversion at the cohort's longest follow-up),
        ``km_at_risk`` (units still at risk at that last step: a ``km_end`` resting on a
        handful of units is noisy),
        ``followup`` (that follow-up, in the time unit), ``rate_mean``, ``rate_lower``,
        ``rate_upper`` (eventual conversion rate and its HDI), ``median_lag_mean``,
        ``median_lag_lower``, ``median_lag_upper`` (in the data's time unit), ``r_hat``
        (max over the cohort's eventual rate, lag location and shape), ``ess_bulk`` and
        ``ess_tail`` (minimum over the same), ``followup_share`` and ``weakly_identified``
        (:meth:`identification`).

        With ``by`` (columns of the cell table): one row per level, with ``units``,
        ``converted``, ``naive_rate``, ``followup`` and the level's eventual rate and median
        lag (averaged over its cells' units; HDIs), ``followup_share`` and
        ``weakly_identified`` (:meth:`identification` with the same ``by``).

        Raises
        ------
        ValueError
            ``ci_prob`` outside (0, 1); ``by`` naming a column the data do not have.
        """
        if not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        if by is not None:
            return self._summary_by(by, ci_prob)
        table = self.data.cohort_table()
        last = kaplan_meier(self.data).groupby("cohort", observed=True).last()
        table["km_end"] = last["conversion"].to_numpy()
        table["km_at_risk"] = last["at_risk"].to_numpy().astype(np.int64)
        table = table.rename(columns={"max_duration": "followup"})
        for name, col in (("eventual_rate", "rate"), ("median_lag", "median_lag")):
            da = self.eventual_rate() if name == "eventual_rate" else self.median_lag()
            h = diagnostics.hdi(da, ci_prob)
            table[f"{col}_mean"] = da.mean(("chain", "draw")).values
            table[f"{col}_lower"] = h.sel(ci_bound="lower").values
            table[f"{col}_upper"] = h.sel(ci_bound="upper").values
        diag = self.diagnostics()
        for key, how in (("r_hat", "max"), ("ess_bulk", "min"), ("ess_tail", "min")):
            ds = diag.get(key)
            if ds is None:
                table[key] = np.nan
                continue
            arr = np.stack([ds[v].values for v in diagnostics.CHECKED_VARS if v in ds])
            table[key] = arr.max(axis=0) if how == "max" else arr.min(axis=0)
        ident = self.identification()
        table["followup_share"] = ident["followup_share"].to_numpy()
        table["weakly_identified"] = ident["weakly_identified"].to_numpy()
        table.attrs.update(ci_prob=ci_prob, time_unit=self.data.time_unit)
        return table

    def _summary_by(self, by, ci_prob: float) -> pd.DataFrame:
        draws = self.draws()
        name, labels, cell_level = draws.groups(by)
        data = self.data
        level = cell_level[data.cell]
        k = len(labels)
        units = np.bincount(level, weights=data.count, minlength=k)
        conv = np.bincount(level, weights=data.count * data.converted, minlength=k)
        fmax = np.full(k, -np.inf)
        np.maximum.at(fmax, cell_level, data.longest_followup())
        index = pd.Index([" × ".join(map(str, x)) if isinstance(x, tuple) else x
                          for x in labels], name=name)
        table = pd.DataFrame({"units": units.astype(np.int64), "converted": conv.astype(np.int64),
                              "naive_rate": conv / units, "followup": fmax}, index=index)
        for da, col in ((self.eventual_rate(by), "rate"), (self.median_lag(by), "median_lag")):
            h = diagnostics.hdi(da, ci_prob)
            table[f"{col}_mean"] = da.mean(("chain", "draw")).values
            table[f"{col}_lower"] = h.sel(ci_bound="lower").values
            table[f"{col}_upper"] = h.sel(ci_bound="upper").values
        ident = self.identification(by=by)  # levels in the same order
        table["followup_share"] = ident["followup_share"].to_numpy()
        table["weakly_identified"] = ident["weakly_identified"].to_numpy()
        table.attrs.update(ci_prob=ci_prob, time_unit=data.time_unit, by=by)
        return table

    def identification(self, by=None) -> pd.DataFrame:
        """How well the data pin each cohort's (or each level of ``by``'s) eventual rate.

        See :func:`bayesconv.posterior.identification.identification`: ``followup_share``
        (posterior mean of F at the longest follow-up), ``rate_hdi_width`` (of the 94% HDI)
        and ``weakly_identified`` (share < 0.75 or width > 0.3), indexed by cohort or level.
        The table by cohort is computed once per result (the fit, the readout and a batch
        row all read it); a copy is returned.
        """
        if by is not None:
            return identification.identification(self.draws(), self.data, by=by)
        if self._identification is None:
            self._identification = identification.identification(self.draws(), self.data)
        return self._identification.copy()

    # ------------------------------------------------------------------ nowcasts
    def cohort_code(self, cohort) -> int:
        """The code of a cohort label (or of its ``str``); ValueError naming the cohorts."""
        labels = list(self.data.cohorts)
        for i, label in enumerate(labels):
            if cohort == label or str(cohort) == str(label):
                return i
        raise ValueError(f"cohort {cohort!r} is not in the data; cohorts: {labels}")

    def conversion_probability(self, age, cohort) -> xr.DataArray:
        """Posterior probability that a unit not converted by ``age`` converts eventually.

        P(converts | not converted by a) = c (1 − F(a)) / (1 − c F(a)) (Bayes' rule on the
        cure mixture; Maller & Zhou 1996, §4.2); for a cohort of several cells, averaged over
        its cells' units.

        Parameters
        ----------
        age : float or array_like of shape (n_ages,)
            Time since the unit's creation, in the data's time unit (>= 0).
        cohort : label
            The unit's cohort.

        Returns
        -------
        DataArray of shape (chain, draw, age)

        Raises
        ------
        ValueError
            Unknown cohort, or a negative or non-finite age.
        """
        a = np.atleast_1d(np.asarray(age, dtype=float))
        if np.any(a < 0) or not np.all(np.isfinite(a)):
            raise ValueError(f"age must be finite and >= 0, got {age!r}")
        g = self.cohort_code(cohort)
        draws = self.draws()
        _, _, W = draws.weights()
        cells = np.flatnonzero(W[g])
        p = quantities.conversion_probability(draws, cells, W[g, cells], a)
        c = self.posterior["eventual_rate"]
        return xr.DataArray(p, dims=("chain", "draw", "age"),
                            coords={"chain": c["chain"], "draw": c["draw"], "age": a},
                            name="conversion_probability")

    def nowcast(self, *, ci_prob: float = 0.94, within: float | None = None,
                random_seed=None, by=None) -> pd.DataFrame:
        """Conversions so far and still to come, per cohort, from each unconverted unit's age.

        A unit not converted at age a converts eventually with probability
        c (1 − F(a)) / (1 − c F(a)), or within the next ``within`` time units with probability
        c (F(a + w) − F(a)) / (1 − c F(a)). Remaining conversions are drawn from the posterior
        predictive distribution (a binomial per row and posterior draw), so their interval
        includes both parameter uncertainty and chance.

        Parameters
        ----------
        ci_prob : float, default 0.94
            Probability of the highest density intervals.
        within : float, optional
            Count only conversions in the next ``within`` time units (data's time unit).
        random_seed : int, optional
        by : str or list of str, optional
            Rows per level of these cell-table columns instead of per cohort.

        Returns
        -------
        DataFrame indexed by cohort (or level) with columns ``units``, ``converted`` (so far),
        ``pending`` (units not converted yet), ``remaining_mean``, ``remaining_lower``,
        ``remaining_upper`` (conversions still to come), ``eventual_mean``,
        ``eventual_lower``, ``eventual_upper`` (converted + remaining) and
        ``eventual_rate_mean`` (eventual / units).

        Raises
        ------
        ValueError
            ``within`` not a positive number.
        """
        if within is not None and not (np.isfinite(within) and within > 0):
            raise ValueError(f"within must be a positive number of {self.data.time_unit}, "
                             f"got {within!r}")
        return quantities.nowcast(self.draws(), self.data, ci_prob=ci_prob, within=within,
                                  rng=np.random.default_rng(random_seed), by=by)

    # ------------------------------------------------------------------ checks and plots
    def posterior_predictive_km(self, n_draws: int = 100, random_seed=None, *,
                                by=None) -> pd.DataFrame:
        """Kaplan–Meier curves of data sets simulated from the posterior (a PPC).

        See :func:`bayesconv.posterior.predictive.posterior_predictive_km`; cohorts of more
        than :attr:`PPC_UNIT_LIMIT` units are simulated on a grid of at most
        :attr:`PPC_MAX_CELLS` times.

        Returns
        -------
        DataFrame with columns ``draw`` (0..n_draws-1), ``cohort``, ``time``, ``conversion``.
        """
        return predictive.posterior_predictive_km(
            self.draws(), self.data, n_draws, random_seed, unit_limit=self.PPC_UNIT_LIMIT,
            max_cells=self.PPC_MAX_CELLS, by=by)

    def _levels(self, by):
        """(key column, labels, longest follow-up per level) of ``by`` (default: cohorts)."""
        draws = self.draws()
        name, labels, cell_level = draws.groups(by)
        fmax = np.full(len(labels), -np.inf)
        np.maximum.at(fmax, cell_level, self.data.longest_followup())
        return ("cohort" if by is None else name), labels, fmax

    def plot(self, ax=None, *, km: bool = True, t_max: float | None = None,
             ci_prob: float = 0.94, cohorts=None, n_t: int = 200, by: str | None = None):
        """Posterior mean and HDI band of each cohort's conversion curve over Kaplan–Meier.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        km : bool, default True
            Draw the Kaplan–Meier steps (without their bands) underneath.
        t_max : float, optional
            Right end of the time axis in the data's time unit (default: 1.25 × the longest
            follow-up, so the extrapolation beyond the data shows).
        ci_prob : float, default 0.94
        cohorts : list of labels, optional
        n_t : int, default 200
            Number of grid points.
        by : str, optional
            A column of the cell table: one curve per level (marginal over its cells).

        Returns
        -------
        matplotlib.axes.Axes
        """
        t_max = float(t_max or 1.25 * self.data.duration.max())
        t = np.linspace(0.0, t_max, n_t)
        curves = self.curves(t, by)
        band = diagnostics.hdi(curves, ci_prob)
        key, labels, fmax = self._levels(by)
        return plotting.plot_curves(
            t, curves.mean(("chain", "draw")).values, band.sel(ci_bound="lower").values,
            band.sel(ci_bound="upper").values, fmax, labels=labels, show=cohorts,
            km=kaplan_meier(self.data, by=by) if km else None, key=key, ci_prob=ci_prob,
            unit=self.data.time_unit, legend_title=by or self.data.cohort_name, ax=ax)

    def plot_ppc_km(self, ax=None, *, n_draws: int = 50, random_seed=None, cohorts=None,
                    by: str | None = None):
        """Posterior predictive check: simulated Kaplan–Meier curves against the observed one.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        n_draws : int, default 50
        random_seed : int, optional
        cohorts : list of labels, optional
        by : str, optional
            A column of the cell table: one set of curves per level.

        Returns
        -------
        matplotlib.axes.Axes
            Thin lines: Kaplan–Meier of data simulated from posterior draws; thick steps: the
            observed Kaplan–Meier. Observed steps outside the simulated spread point at misfit.
        """
        sims = self.posterior_predictive_km(n_draws=n_draws, random_seed=random_seed, by=by)
        key, labels, _ = self._levels(by)
        km = kaplan_meier(self.data, by=by)
        if by is not None and not isinstance(by, str):  # several columns: one "a × b" key
            km[key] = [level_label(x) for x in km[list(by)].itertuples(index=False, name=None)]
            labels = [level_label(x) for x in labels]
        return plotting.plot_ppc_km(sims, km, labels=labels, show=cohorts, key=key,
                                    unit=self.data.time_unit, ax=ax)

    def calibration_table(self, bands=10, *, by_cohort: bool = False, ci_prob: float = 0.94,
                          n_draws: int | None = 1000, random_seed=None, by=None
                          ) -> pd.DataFrame:
        """Observed vs posterior predictive share converted by follow-up age band.

        See :func:`bayesconv.posterior.calibration.calibration_table` (same parameters and
        table); ``by`` bands within each level of any column of the cell table.
        """
        return calibration.calibration_table(self.draws(), self.data, bands,
                                             by_cohort=by_cohort, ci_prob=ci_prob,
                                             n_draws=n_draws, random_seed=random_seed, by=by)

    def plot_calibration(self, ax=None, *, bands=10, by_cohort: bool = False,
                         ci_prob: float = 0.94, n_draws: int | None = 1000, random_seed=None,
                         by=None):
        """Calibration plot: observed vs predicted share converted, by follow-up age band.

        One point per band of :meth:`calibration_table`: x = posterior mean of the expected
        share converted by the observation date, y = the observed share, with a horizontal bar
        for the posterior predictive HDI; the dashed identity line is perfect calibration. A
        well calibrated model has about ``ci_prob`` of its bars crossing the line.

        Returns
        -------
        matplotlib.axes.Axes
            ``ax.calibration_table`` holds the table drawn.
        """
        table = self.calibration_table(bands, by_cohort=by_cohort, ci_prob=ci_prob,
                                       n_draws=n_draws, random_seed=random_seed, by=by)
        group = "cohort" if by_cohort else (None if by is None else table.columns[0])
        return plotting.plot_calibration(table, group=group, ci_prob=ci_prob,
                                         unit=self.data.time_unit,
                                         legend_title=self.data.cohort_name if by_cohort
                                         else group, ax=ax)

    def __repr__(self) -> str:
        p = self.posterior
        return (f"ConversionResult({self.spec.describe()}, "
                f"{self.data.n_cohorts} cohorts, {p.sizes['chain']} chains × "
                f"{p.sizes['draw']} draws, sampler={self.sampler!r})")


def load(path) -> ConversionResult:
    """Load a result written by :meth:`ConversionResult.save` (or :func:`save_result`).

    Parameters
    ----------
    path : str or os.PathLike
        The Zarr directory store.

    Returns
    -------
    ConversionResult
        With the same ``idata`` (every group and attribute as saved), spec, sampler and
        timing, and the same ``data`` when the store was saved with ``include_data=True``.
        Otherwise ``data`` is a :class:`~bayesconv.posterior.store.DataNotSaved`:
        posterior-only methods work, methods that need the data raise
        :class:`~bayesconv.DataNotSavedError`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a bayesconv result (a file, a directory that is not a Zarr store, a
        Zarr store without the bayesconv attributes); it was written by a newer bayesconv
        (a higher format version); it is damaged (unreadable metadata, a missing group or
        variable, a missing or corrupted chunk file: every variable's SHA-256 digest is
        checked); or its lag family is not known to this bayesconv.
    """
    parts = store.read_result(path)
    try:
        return ConversionResult(parts["tree"], parts["data"], parts["spec"],
                                sampler=parts["sampler"], kind=parts["kind"],
                                timing=parts["timing"])
    except ValueError as err:  # e.g. a lag family this bayesconv does not know
        raise ValueError(f"{os.fspath(path)} cannot be loaded: {err}") from err


def _times(t) -> np.ndarray:
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and >= 0")
    return t
