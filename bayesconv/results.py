"""ConversionResult: the fitted posterior with summaries, curves, plots and checks."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pandas as pd
import xarray as xr

from .data import ConversionData
from .errors import IdentificationWarning
from .kaplan_meier import _km_arrays, kaplan_meier, unit_name
from .lags import NP, get_lag
from .likelihood import row_loglik

__all__ = ["ConversionResult", "IdentificationWarning"]

#: A cohort's eventual rate is flagged as weakly identified below this follow-up share ...
WEAK_FOLLOWUP_SHARE = 0.75
#: ... or above this 94% HDI width.
WEAK_HDI_WIDTH = 0.3


def _hdi(da: xr.DataArray, prob: float) -> xr.DataArray:
    """Highest density interval over (chain, draw); dim ``ci_bound`` = (lower, upper)."""
    import arviz_stats as azs

    if da.sizes["chain"] * da.sizes["draw"] < 3:  # MAP: a single point
        return xr.concat([da.isel(chain=0, draw=0)] * 2, dim="ci_bound").assign_coords(
            ci_bound=["lower", "upper"]).transpose(..., "ci_bound")
    return azs.hdi(da, prob=prob)


class ConversionResult:
    """A fitted conversion model: posterior draws and everything computed from them.

    Attributes
    ----------
    idata : xarray.DataTree
        Groups ``posterior`` (``eventual_rate``, ``lag_loc``, ``lag_shape`` (not for the
        exponential lag), ``lag_q`` (generalized gamma), ``median_lag`` per
        cohort, plus hyperparameters; lags in the data's time unit), ``sample_stats``,
        ``log_likelihood`` (``conversion``: log-likelihood of one unit of each aggregated row,
        dims (chain, draw, row)), ``observed_data`` (``duration``, ``converted`` per row) and
        ``constant_data`` (``count``, ``cohort``, ``lower`` per row). Root attributes hold the
        model spec as JSON.
    data : ConversionData
    sampler : str
        "nutpie", "pymc" or "map".
    timing : dict
        Seconds spent compiling (``compile_s``) and sampling (``sampling_s``).
    """

    def __init__(self, idata: xr.DataTree, data: ConversionData, spec, *, sampler: str,
                 timing: dict | None = None):
        self._idata = idata
        self.data = data
        self.spec = spec
        self.family = get_lag(spec.lag)
        self.sampler = sampler
        self.timing = timing or {}
        self._diagnostics: dict | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def _from_fit(cls, model, dt: xr.DataTree, *, sampler: str, timing: dict, random_seed):
        data, spec, family = model.data, model.spec, model.family
        post = dt["posterior"].to_dataset()
        keep = [v for v in post.data_vars if not v.endswith("__") and not v.startswith("lik_")]
        post = post[keep]
        if "cohort" in post.coords:
            post = post.assign_coords(cohort=list(model.coords["cohort"]))
        post["median_lag"] = xr.apply_ufunc(
            family.median, post["lag_loc"], *(post[p.var] for p in family.extra_params))
        post["median_lag"].attrs["units"] = data.time_unit
        post["lag_loc"].attrs.update(units=data.time_unit, meaning=f"{family.location} lag")
        groups = {"posterior": post}
        if "sample_stats" in dt.children:
            groups["sample_stats"] = dt["sample_stats"].to_dataset()
        row = np.arange(data.n_rows)
        groups["observed_data"] = xr.Dataset(
            {"duration": ("row", data.duration), "converted": ("row", data.converted)},
            coords={"row": row})
        groups["constant_data"] = xr.Dataset(
            {"count": ("row", data.count), "cohort": ("row", data.cohort),
             "lower": ("row", data.lower)}, coords={"row": row})
        attrs = {
            "bayesconv_version": version("bayesconv"), "pymc_version": version("pymc"),
            "sampler": sampler, "random_seed": "" if random_seed is None else str(random_seed),
            "spec": json.dumps({"lag": spec.lag, "pooling": spec.pooling, "priors": spec.priors,
                                "parametrization": {k: list(v) for k, v in spec.parametrization.items()},
                                "time_scale": spec.time_scale, "zero_width": spec.zero_width}),
            "time_unit": data.time_unit, "cohorts": json.dumps([str(c) for c in data.cohorts]),
            "observed_until": str(data.observed_until),
        }
        idata = xr.DataTree.from_dict(groups)
        idata.attrs.update(attrs)
        return cls(idata, data, spec, sampler=sampler, timing=timing)

    @property
    def idata(self) -> xr.DataTree:
        """The posterior and data as an ArviZ ``DataTree`` (see the class docstring).

        The ``log_likelihood`` group (draws × aggregated rows; 4,000 × 6,000 values on the NYC
        demo, seconds of computation) is filled in on first access to this attribute, not
        at fitting time: it is needed by LOO and model comparison only, and it is a function
        of the posterior and the data, so it is not saved either (:meth:`save`).
        """
        if ("log_likelihood" not in self._idata.children and isinstance(self.data, ConversionData)
                and "posterior" in self._idata.children):
            ll = self.pointwise_loglik()
            self._idata["log_likelihood"] = xr.DataTree(xr.Dataset({"conversion": ll}))
        return self._idata

    @idata.setter
    def idata(self, value: xr.DataTree) -> None:
        self._idata = value

    # ------------------------------------------------------------------ saving
    def save(self, path, *, include_data: bool = True, overwrite: bool = False):
        """Write this result to a Zarr directory store; read it back with :func:`bayesconv.load`.

        Parameters
        ----------
        path : str or os.PathLike
            Directory to create (conventionally ending in ``.zarr``).
        include_data : bool, default True
            Also store the unit-level data. False keeps only the posterior, ``sample_stats``
            and cohort labels (see :func:`bayesconv.persistence.save_result`).
        overwrite : bool, default False
            Replace an existing bayesconv result at ``path``.

        Returns
        -------
        pathlib.Path
        """
        from .persistence import save_result

        return save_result(self, path, include_data=include_data, overwrite=overwrite)

    # ------------------------------------------------------------------ posterior access
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as an xarray Dataset."""
        return self._idata["posterior"].to_dataset()

    def eventual_rate(self) -> xr.DataArray:
        """Posterior draws of each cohort's eventual conversion rate.

        Returns
        -------
        DataArray of shape (chain, draw, cohort)
        """
        return self.posterior["eventual_rate"]

    def _lag_params(self) -> tuple:
        """The lag parameters per draw and cohort, in ``family.param_names`` order.

        ``(lag_loc, lag_shape)`` for most families, ``(lag_loc,)`` for the exponential,
        ``(lag_loc, lag_shape, lag_q)`` for the generalized gamma; call family functions as
        ``family.logcdf(t, *result._lag_params(), xp=NP)``.
        """
        p = self.posterior
        return (p["lag_loc"],) + tuple(p[q.var] for q in self.family.extra_params)

    def _params(self):
        """``(eventual_rate, *lag parameters)`` (see :meth:`_lag_params`)."""
        return (self.posterior["eventual_rate"],) + self._lag_params()

    def curves(self, t) -> xr.DataArray:
        """Posterior draws of the cumulative conversion curve c·F(t) of every cohort.

        Parameters
        ----------
        t : array_like of shape (n_t,)
            Times since creation, in the data's time unit (>= 0).

        Returns
        -------
        DataArray of shape (chain, draw, cohort, t)
            Probability that a unit has converted by each time.
        """
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if np.any(t < 0) or not np.all(np.isfinite(t)):
            raise ValueError("t must be finite and >= 0")
        c, *lag = self._params()
        tt = xr.DataArray(t, dims="t", coords={"t": t})
        logf = xr.apply_ufunc(lambda x, *a: self.family.logcdf(x, *a, xp=NP), tt, *lag)
        out = c * np.exp(logf)
        out.name = "conversion"
        out.attrs["units_t"] = self.data.time_unit
        return out.transpose("chain", "draw", "cohort", "t")

    def pointwise_loglik(self) -> xr.DataArray:
        """Log-likelihood of one unit of each aggregated row, per posterior draw.

        Returns
        -------
        DataArray of shape (chain, draw, row)
            In the data's time unit. A row standing for ``count`` identical units contributes
            ``count`` times this value (``constant_data.count``).
        """
        from .likelihood import rows_from_data

        c, loc, *rest = self._params()
        rows = rows_from_data(self.data, time_scale=self.spec.time_scale,
                              zero_width=self.spec.zero_width)
        logit = np.log(c.values) - np.log1p(-c.values)
        log_c = -np.logaddexp(0, -logit)
        log1m_c = -np.logaddexp(0, logit)
        vals = row_loglik(self.family, rows, log_c, log1m_c, loc.values / rows.time_scale,
                          *(x.values for x in rest), xp=NP)
        return xr.DataArray(vals, dims=("chain", "draw", "row"),
                            coords={"chain": c["chain"], "draw": c["draw"],
                                    "row": np.arange(self.data.n_rows)})

    # ------------------------------------------------------------------ tables
    def diagnostics(self) -> dict:
        """Convergence checks: R-hat, ESS, divergences (computed once)."""
        if self._diagnostics is None:
            from .fit import check_convergence

            self._diagnostics = check_convergence(self._idata, warn=False)
        return self._diagnostics

    def summary(self, ci_prob: float = 0.94) -> pd.DataFrame:
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
        ``ess_tail`` (minimum over the same).
        """
        if not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        post = self.posterior
        table = self.data.cohort_table()
        km = kaplan_meier(self.data)
        last = km.groupby("cohort", observed=True).last()
        table["km_end"] = last["conversion"].to_numpy()
        table["km_at_risk"] = last["at_risk"].to_numpy().astype(np.int64)
        table = table.rename(columns={"max_duration": "followup"})
        for name, col in (("eventual_rate", "rate"), ("median_lag", "median_lag")):
            da = post[name]
            h = _hdi(da, ci_prob)
            table[f"{col}_mean"] = da.mean(("chain", "draw")).values
            table[f"{col}_lower"] = h.sel(ci_bound="lower").values
            table[f"{col}_upper"] = h.sel(ci_bound="upper").values
        diag = self.diagnostics()
        checked = ["eventual_rate", "lag_loc", "lag_shape", "lag_q"]
        for key, how in (("r_hat", "max"), ("ess_bulk", "min"), ("ess_tail", "min")):
            ds = diag.get(key)
            if ds is None:
                table[key] = np.nan
                continue
            arr = np.stack([ds[v].values for v in checked if v in ds])
            table[key] = arr.max(axis=0) if how == "max" else arr.min(axis=0)
        ident = self.identification()
        table["followup_share"] = ident["followup_share"].to_numpy()
        table["weakly_identified"] = ident["weakly_identified"].to_numpy()
        table.attrs.update(ci_prob=ci_prob, time_unit=self.data.time_unit)
        return table

    def identification(self) -> pd.DataFrame:
        """How well the data pin each cohort's eventual rate.

        The eventual rate is identified by the data only as far as follow-up reaches into the
        lag distribution; beyond that it is an extrapolation of the lag family and the prior.
        Two measures per cohort:

        * ``followup_share``: posterior mean of F(longest follow-up), the share of eventual
          converters who would have converted by the cohort's longest follow-up;
        * ``rate_hdi_width``: width of the 94% HDI of the eventual rate.

        A cohort is flagged ``weakly_identified`` when ``followup_share`` < 0.75 (most of the
        eventual rate is extrapolated) or the HDI is wider than 0.3.

        Returns
        -------
        DataFrame indexed by cohort with columns ``followup_share``, ``rate_hdi_width`` and
        ``weakly_identified``.
        """
        c, *lag = self._params()
        fmax = np.array([self.data.duration[self.data.cohort == g].max()
                         for g in range(self.data.n_cohorts)])
        tt = xr.DataArray(fmax, dims="cohort", coords={"cohort": c["cohort"]})
        share = np.exp(xr.apply_ufunc(lambda x, *a: self.family.logcdf(x, *a, xp=NP),
                                      tt, *lag)).mean(("chain", "draw"))
        width = _hdi(c, 0.94).diff("ci_bound").squeeze("ci_bound", drop=True)
        out = pd.DataFrame({"followup_share": share.values, "rate_hdi_width": width.values},
                           index=pd.Index(self.data.cohorts, name=self.data.cohort_name or
                                          "cohort"))
        out["weakly_identified"] = ((out["followup_share"] < WEAK_FOLLOWUP_SHARE)
                                    | (out["rate_hdi_width"] > WEAK_HDI_WIDTH))
        return out

    # ------------------------------------------------------------------ nowcasts
    def _cohort_code(self, cohort) -> int:
        labels = list(self.data.cohorts)
        for i, label in enumerate(labels):
            if cohort == label or str(cohort) == str(label):
                return i
        raise ValueError(f"cohort {cohort!r} is not in the data; cohorts: {labels}")

    def _log_p_eventual(self, age, g=None):
        """log P(converts eventually | not converted by age), draws × ages."""
        c, *lag = self._params()
        if g is not None:
            c, *lag = (x.isel(cohort=g) for x in (c, *lag))
        cv, *lv = (np.asarray(x.values)[..., None] for x in (c, *lag))
        log_c = np.log(cv)
        log_sf = self.family.logsf(age, *lv)
        return log_c + log_sf - np.logaddexp(np.log1p(-cv), log_c + log_sf)

    def conversion_probability(self, age, cohort) -> xr.DataArray:
        """Posterior probability that a unit not converted by ``age`` converts eventually.

        P(converts | not converted by a) = c (1 − F(a)) / (1 − c F(a)) (Bayes' rule on the
        cure mixture; Maller & Zhou 1996, §4.2).

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
        g = self._cohort_code(cohort)
        p = np.exp(self._log_p_eventual(a, g))
        c = self.posterior["eventual_rate"]
        return xr.DataArray(p, dims=("chain", "draw", "age"),
                            coords={"chain": c["chain"], "draw": c["draw"], "age": a},
                            name="conversion_probability")

    def nowcast(self, *, ci_prob: float = 0.94, within: float | None = None,
                random_seed=None) -> pd.DataFrame:
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

        Returns
        -------
        DataFrame indexed by cohort with columns ``units``, ``converted`` (so far),
        ``pending`` (units not converted yet), ``remaining_mean``, ``remaining_lower``,
        ``remaining_upper`` (conversions still to come), ``eventual_mean``,
        ``eventual_lower``, ``eventual_upper`` (converted + remaining) and
        ``eventual_rate_mean`` (eventual / units).
        """
        import arviz_stats as azs

        if within is not None and not (np.isfinite(within) and within > 0):
            raise ValueError(f"within must be a positive number of {self.data.time_unit}, "
                             f"got {within!r}")
        rng = np.random.default_rng(random_seed)
        table = self.data.cohort_table()[["units", "converted"]].copy()
        table["pending"] = table["units"] - table["converted"]
        pending = ~self.data.converted
        out = {k: [] for k in ("remaining_mean", "remaining_lower", "remaining_upper")}
        c, *lag = self._params()
        for g in range(self.data.n_cohorts):
            m = pending & (self.data.cohort == g)
            ages, n = self.data.duration[m], self.data.count[m]
            lp = self._log_p_eventual(ages, g)  # (chain, draw, rows)
            if within is not None:
                cv, *lv = (np.asarray(x.isel(cohort=g).values)[..., None]
                           for x in (c, *lag))
                fam = self.family
                # F(a + w) = F(a) in floating point (far tail): log1p(-1) = -inf, p = 0, exactly
                with np.errstate(divide="ignore"):
                    log_num = np.log(cv) + fam.logcdf(ages + within, *lv) + np.log1p(
                        -np.exp(np.minimum(fam.logcdf(ages, *lv)
                                           - fam.logcdf(ages + within, *lv), -1e-300)))
                log_sf = fam.logsf(ages, *lv)
                lp = log_num - np.logaddexp(np.log1p(-cv), np.log(cv) + log_sf)
            p = np.clip(np.exp(lp), 0.0, 1.0)
            draws = rng.binomial(n, p).sum(axis=-1).astype(float)  # (chain, draw)
            da = xr.DataArray(draws, dims=("chain", "draw"))
            if da.size >= 3:
                h = azs.hdi(da, prob=ci_prob).values
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
        table.attrs.update(ci_prob=ci_prob, within=within, time_unit=self.data.time_unit)
        return table

    # ------------------------------------------------------------------ plots
    def plot(self, ax=None, *, km: bool = True, t_max: float | None = None,
             ci_prob: float = 0.94, cohorts=None, n_t: int = 200):
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

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 5))
        t_max = float(t_max or 1.25 * self.data.duration.max())
        t = np.linspace(0.0, t_max, n_t)
        curves = self.curves(t)
        mean = curves.mean(("chain", "draw"))
        band = _hdi(curves, ci_prob)
        labels = list(self.data.cohorts) if cohorts is None else list(cohorts)
        km_table = kaplan_meier(self.data) if km else None
        for i, label in enumerate(self.data.cohorts):
            if label not in labels:
                continue
            color = f"C{i % 10}"
            key = str(label)
            # solid within the cohort's follow-up, dotted where the curve is extrapolation
            fmax = self.data.duration[self.data.cohort == i].max()
            inside = t <= fmax
            m = mean.sel(cohort=key).values
            ax.plot(t[inside], m[inside], color=color, lw=2, label=f"{label}")
            ax.plot(t[~inside | (np.arange(len(t)) == inside.sum() - 1)],
                    m[~inside | (np.arange(len(t)) == inside.sum() - 1)], color=color, lw=1.5,
                    ls=":")
            ax.fill_between(t, band.sel(cohort=key, ci_bound="lower"),
                            band.sel(cohort=key, ci_bound="upper"), color=color, alpha=0.2,
                            lw=0)
            if km_table is not None:
                g = km_table[km_table["cohort"] == label]
                ax.step(np.r_[0.0, g["time"]], np.r_[0.0, g["conversion"]], where="post",
                        color=color, lw=0.9, ls="--", alpha=0.9)
        ax.set_xlim(0, t_max)
        ax.set_ylim(0, None)
        ax.set_xlabel(f"time since creation ({unit_name(self.data.time_unit)})")
        ax.set_ylabel("cumulative conversion")
        ax.set_title(f"posterior mean and {ci_prob:.0%} HDI (solid; dotted beyond the "
                     "cohort's follow-up), Kaplan–Meier (dashed)", fontsize="medium")
        ax.legend(title=self.data.cohort_name or "cohort", fontsize="small")
        return ax

    #: Above this many units in a cohort, posterior predictive data sets are simulated on a
    #: grid of times instead of unit by unit (see :meth:`posterior_predictive_km`).
    PPC_UNIT_LIMIT = 100_000
    #: Most grid cells per cohort for the gridded simulation.
    PPC_MAX_CELLS = 1_000

    def posterior_predictive_km(self, n_draws: int = 100, random_seed=None) -> pd.DataFrame:
        """Kaplan–Meier curves of data sets simulated from the posterior (a PPC).

        Each simulated data set keeps every unit's follow-up (its age at the observation
        date) and draws conversion and lag from one posterior draw, then censors at the
        follow-up, exactly as the real data were observed. For the duration/event input layout
        the follow-up of converted units is unknown and every unit is assumed followed to its
        cohort's longest duration (true of fixed-follow-up studies such as Rossi's).

        Cohorts of more than :attr:`PPC_UNIT_LIMIT` units are simulated on a grid (the
        cohort's distinct observed times, thinned to at most :attr:`PPC_MAX_CELLS` by
        quantiles): the converting units of each follow-up group are spread over the grid
        cells below their age with one multinomial draw, each conversion recorded at its
        cell's upper edge, as data recorded at that resolution would be (and if there are
        more distinct follow-up ages than cells, each is moved down to the grid point below
        it). The cost then grows with distinct times, not with units.

        Parameters
        ----------
        n_draws : int, default 100
            Number of posterior draws (data sets) to simulate.
        random_seed : int, optional

        Returns
        -------
        DataFrame with columns ``draw`` (0..n_draws-1), ``cohort``, ``time``, ``conversion``.
        """
        rng = np.random.default_rng(random_seed)
        c, *lag = (x.stack(s=("chain", "draw")).values for x in self._params())
        picks = rng.choice(c.shape[-1], size=min(n_draws, c.shape[-1]), replace=False)
        fu = self._followup()
        grids = [self._ppc_grid(g, fu[g][0]) if fu[g][1].sum() > self.PPC_UNIT_LIMIT else None
                 for g in range(self.data.n_cohorts)]
        for g, edges in enumerate(grids):
            ages, n = fu[g]
            if edges is not None and len(ages) > self.PPC_MAX_CELLS:
                # too many distinct follow-ups: each unit is followed to the grid point below
                idx = np.searchsorted(edges, ages, side="right") - 1
                snapped = np.where(idx >= 0, edges[np.maximum(idx, 0)], 0.0)
                ages, inverse = np.unique(snapped, return_inverse=True)
                fu[g] = (ages, np.bincount(inverse, weights=n).astype(np.int64))
        frames = []
        for j, s in enumerate(picks):
            for g, label in enumerate(self.data.cohorts):
                ages, n = fu[g]
                lag_gs = [x[g, s] for x in lag]
                cdf_age = np.exp(self.family.logcdf(ages, *lag_gs))
                k = rng.binomial(n, c[g, s] * cdf_age)
                if grids[g] is None:
                    # conversion times of the k units converting before their age: F truncated
                    rep_age = np.repeat(ages, k)
                    u = rng.uniform(0.0, np.repeat(cdf_age, k))
                    times = self.family.quantile(u, *lag_gs)
                    times = np.minimum(times, rep_age)
                    t_conv, n_conv = times, np.ones(k.sum())
                else:
                    t_conv, n_conv = self._ppc_gridded(grids[g], ages, k, cdf_age, lag_gs, rng)
                dur = np.concatenate([t_conv, ages])
                conv = np.concatenate([np.ones(len(t_conv), bool), np.zeros(len(ages), bool)])
                cnt = np.concatenate([n_conv, n - k])
                keep = cnt > 0
                tt, _, _, _, surv, _ = _km_arrays(dur[keep], conv[keep], cnt[keep])
                frames.append(pd.DataFrame({"draw": j, "cohort": label, "time": tt,
                                            "conversion": 1 - surv}))
        return pd.concat(frames, ignore_index=True)

    def _ppc_grid(self, g: int, ages: np.ndarray) -> np.ndarray:
        """Cell upper edges for the gridded PPC of cohort ``g``: distinct observed times."""
        times = np.unique(np.concatenate([self.data.duration[self.data.cohort == g], ages]))
        times = times[times > 0]
        if len(times) > self.PPC_MAX_CELLS:
            times = np.unique(np.quantile(times, np.linspace(0, 1, self.PPC_MAX_CELLS)))
        return times

    def _ppc_gridded(self, edges, ages, k, cdf_age, lag, rng):
        """Spread ``k[i]`` conversions of follow-up group ``i`` over grid cells below its age.

        Cell ``j`` is ``(edges[j-1], edges[j]]`` (``edges[-1] = 0``); a group's last cell ends at
        its age. ``lag``: the lag parameters of one draw. Returns (times, counts) of the
        simulated conversions, aggregated.
        """
        cdf_edges = np.exp(self.family.logcdf(edges, *lag))
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

    def _followup(self):
        """Per cohort: (ages, counts) of every unit's follow-up."""
        out = []
        fu = self.data.followup
        for g in range(self.data.n_cohorts):
            if fu is not None:
                sel = fu[fu["cohort"] == g]
                out.append((sel["age"].to_numpy(float), sel["count"].to_numpy(np.int64)))
            else:
                m = self.data.cohort == g
                out.append((np.array([self.data.duration[m].max()]),
                            np.array([self.data.count[m].sum()])))
        return out

    def plot_ppc_km(self, ax=None, *, n_draws: int = 50, random_seed=None, cohorts=None):
        """Posterior predictive check: simulated Kaplan–Meier curves against the observed one.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        n_draws : int, default 50
        random_seed : int, optional
        cohorts : list of labels, optional

        Returns
        -------
        matplotlib.axes.Axes
            Thin lines: Kaplan–Meier of data simulated from posterior draws; thick steps: the
            observed Kaplan–Meier. Observed steps outside the simulated spread point at misfit.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 5))
        sims = self.posterior_predictive_km(n_draws=n_draws, random_seed=random_seed)
        km = kaplan_meier(self.data)
        labels = list(self.data.cohorts) if cohorts is None else list(cohorts)
        for i, label in enumerate(self.data.cohorts):
            if label not in labels:
                continue
            color = f"C{i % 10}"
            for _, g in sims[sims["cohort"] == label].groupby("draw"):
                ax.step(np.r_[0.0, g["time"]], np.r_[0.0, g["conversion"]], where="post",
                        color=color, lw=0.5, alpha=0.15)
            g = km[km["cohort"] == label]
            ax.step(np.r_[0.0, g["time"]], np.r_[0.0, g["conversion"]], where="post",
                    color=color, lw=2, label=f"{label} observed")
        ax.set_xlabel(f"time since creation ({unit_name(self.data.time_unit)})")
        ax.set_ylabel("cumulative conversion (Kaplan–Meier)")
        ax.set_title("posterior predictive Kaplan–Meier: simulated (thin) vs observed (thick)",
                     fontsize="medium")
        ax.legend(fontsize="small")
        return ax

    def calibration_table(self, bands=10, *, by_cohort: bool = False, ci_prob: float = 0.94,
                          n_draws: int | None = 1000, random_seed=None) -> pd.DataFrame:
        """Observed vs posterior predictive share converted by follow-up age band.

        See :func:`bayesconv.checks.calibration_table` (same parameters and table).
        """
        from .checks import calibration_table

        return calibration_table(self, bands, by_cohort=by_cohort, ci_prob=ci_prob,
                                 n_draws=n_draws, random_seed=random_seed)

    def plot_calibration(self, ax=None, *, bands=10, by_cohort: bool = False,
                         ci_prob: float = 0.94, n_draws: int | None = 1000, random_seed=None):
        """Calibration plot: observed vs predicted share converted, by follow-up age band.

        See :func:`bayesconv.checks.plot_calibration`. Returns the matplotlib Axes.
        """
        from .checks import plot_calibration

        return plot_calibration(self, ax, bands=bands, by_cohort=by_cohort, ci_prob=ci_prob,
                                n_draws=n_draws, random_seed=random_seed)

    def __repr__(self) -> str:
        p = self.posterior
        return (f"ConversionResult({self.spec.lag} lag, {self.spec.pooling} pooling, "
                f"{self.data.n_cohorts} cohorts, {p.sizes['chain']} chains × "
                f"{p.sizes['draw']} draws, sampler={self.sampler!r})")
