"""Model checks: calibration by follow-up age band and prior predictive conversion curves.

* :func:`calibration_table` / :func:`plot_calibration`: units are grouped by their age at the
  observation date (follow-up); in each band the observed share converted so far is set
  against its posterior predictive distribution, the share a data set drawn from the fitted
  model would show for the same units (Gelman, Meng & Stern 1996; Gabry et al. 2019,
  "Visualization in Bayesian workflow", *JRSS A* 182:389).
* :func:`sample_prior` / :func:`plot_prior_curves`: draws of c·F(t) implied by the priors alone,
  in the data's time unit, so that one can see what the priors say before any data
  (prior predictive check, Gabry et al. 2019, §3).

The posterior predictive Kaplan–Meier check is :meth:`ConversionResult.plot_ppc_km`.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["calibration_table", "plot_calibration", "plot_prior_curves", "prior_result",
           "sample_prior"]


# ---------------------------------------------------------------------------- calibration
def _unit_followup(data) -> pd.DataFrame:
    """Every unit's follow-up age and whether it has converted, aggregated.

    Returns a DataFrame with columns ``cohort`` (code), ``age`` (time unit), ``units`` and
    ``converted`` (units of that age that converted by the observation date).

    With the date layout, ``data.followup`` holds the ages of all units and the censored rows
    the ages of the unconverted ones, so converted units per age are the difference. With the
    duration/event layout a converted unit's follow-up is unknown and is taken to be its
    cohort's longest duration (as in :meth:`ConversionResult.posterior_predictive_km`).
    """
    cens = pd.DataFrame({"cohort": data.cohort[~data.converted],
                         "age": data.duration[~data.converted],
                         "censored": data.count[~data.converted]})
    cens = cens.groupby(["cohort", "age"], as_index=False)["censored"].sum()
    if data.followup is not None:
        fu = data.followup.groupby(["cohort", "age"], as_index=False)["count"].sum()
        out = fu.merge(cens, on=["cohort", "age"], how="outer")
        out["count"] = out["count"].fillna(0)
        out["censored"] = out["censored"].fillna(0)
        conv = out["count"] - out["censored"]
        if (conv < 0).any() or conv.sum() != (data.count * data.converted).sum():
            raise ValueError("the follow-up table does not match the censored rows; "
                             "cannot tell converted units' follow-up ages apart")
        out = pd.DataFrame({"cohort": out["cohort"], "age": out["age"],
                            "units": out["count"], "converted": conv})
    else:
        fmax = np.array([data.duration[data.cohort == g].max() for g in range(data.n_cohorts)])
        conv_n = np.bincount(data.cohort, weights=data.count * data.converted,
                             minlength=data.n_cohorts)
        conv = pd.DataFrame({"cohort": np.arange(data.n_cohorts), "age": fmax,
                             "converted": conv_n})
        out = cens.merge(conv, on=["cohort", "age"], how="outer").fillna(0)
        out["units"] = out["censored"] + out["converted"]
        out = out[["cohort", "age", "units", "converted"]]
    out = out[out["units"] > 0].sort_values(["cohort", "age"]).reset_index(drop=True)
    out["units"] = out["units"].astype(np.int64)
    out["converted"] = out["converted"].astype(np.int64)
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


def _thin(result, n_draws: int | None, rng):
    """A copy of ``result`` with at most ``n_draws`` posterior draws (one chain)."""
    from .results import ConversionResult

    post = result.posterior
    stacked = post.stack(sample=("chain", "draw"))
    total = stacked.sizes["sample"]
    if n_draws is not None and n_draws < total:
        stacked = stacked.isel(sample=np.sort(rng.choice(total, size=n_draws, replace=False)))
    n = stacked.sizes["sample"]
    thin = (stacked.drop_vars(["sample", "chain", "draw"]).rename(sample="draw")
            .assign_coords(draw=np.arange(n)).expand_dims(chain=[0])
            .transpose("chain", "draw", ...))
    dt = xr.DataTree.from_dict({"posterior": thin})
    return ConversionResult(dt, result.data, result.spec, sampler=result.sampler)


def calibration_table(result, bands=10, *, by_cohort: bool = False, ci_prob: float = 0.94,
                      n_draws: int | None = 1000, random_seed=None) -> pd.DataFrame:
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
    result : ConversionResult
    bands : int or sequence of float, default 10
        Number of bands with about equal numbers of units (quantiles of the follow-up age;
        tied ages are never split, so there may be fewer), or band edges in the data's time
        unit (bands ``[e0, e1), [e1, e2), …, [e_{k-1}, e_k]``; units outside are left out).
    by_cohort : bool, default False
        Bands within each cohort (edges from the cohort's own ages when ``bands`` is an
        int) instead of bands over all units.
    ci_prob : float, default 0.94
        Probability of the posterior predictive HDI.
    n_draws : int or None, default 1000
        Posterior draws to use (a random subset; None for all).
    random_seed : int, optional

    Returns
    -------
    DataFrame with one row per band (and cohort with ``by_cohort``), columns ``cohort``
    (only with ``by_cohort``), ``band`` (label), ``age_lower``, ``age_upper`` (band edges, in
    the data's time unit), ``age_mean`` (count-weighted), ``units``, ``converted``,
    ``observed_share``, ``predicted_mean`` (posterior mean of the expected share),
    ``predicted_lower``, ``predicted_upper`` (posterior predictive HDI of the share) and
    ``inside`` (observed share within it). Shares are in [0, 1].
    ``attrs`` hold ``ci_prob`` and ``time_unit``.

    Raises
    ------
    ValueError
        Bad ``bands`` or ``ci_prob``; a result without data.
    """
    from .data import ConversionData
    from .results import _hdi

    if not isinstance(result.data, ConversionData):
        raise ValueError("calibration needs the data the model was fitted to; this result was "
                         "saved without it (include_data=False)")
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    rng = np.random.default_rng(random_seed)
    data = result.data
    units = _unit_followup(data)
    thin = _thin(result, n_draws, rng)
    groups = [np.arange(data.n_cohorts)] if not by_cohort else [[g] for g in
                                                                range(data.n_cohorts)]
    frames = []
    for gs in groups:
        sel = units[units["cohort"].isin(gs)]
        if sel.empty:
            continue
        ages, n = sel["age"].to_numpy(float), sel["units"].to_numpy()
        edges = _band_edges(ages, n, bands)
        band = _assign(ages, edges)
        n_bands = len(edges) - 1
        expected = None
        simulated = None
        for g in gs:
            m = (sel["cohort"].to_numpy() == g) & (band >= 0)
            if not m.any():
                continue
            curve = thin.curves(ages[m]).isel(cohort=g, chain=0).values  # (draws, ages)
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
        h = _hdi(sim_da, ci_prob).values if sim_da.sizes["draw"] >= 3 else np.repeat(
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
        if by_cohort:
            frame.insert(0, "cohort", data.cohorts[gs[0]])
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.attrs.update(ci_prob=ci_prob, time_unit=data.time_unit)
    return table


def plot_calibration(result, ax=None, *, bands=10, by_cohort: bool = False,
                     ci_prob: float = 0.94, n_draws: int | None = 1000, random_seed=None):
    """Calibration plot: observed vs predicted share converted, by follow-up age band.

    One point per band of :func:`calibration_table`: x = posterior mean of the expected share
    converted by the observation date, y = the observed share, with a horizontal bar for the
    posterior predictive HDI; the dashed identity line is perfect calibration. A well
    calibrated model has about ``ci_prob`` of its bars crossing the line.

    Parameters
    ----------
    result : ConversionResult
    ax : matplotlib Axes, optional
    bands, by_cohort, ci_prob, n_draws, random_seed
        See :func:`calibration_table`.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.calibration_table`` holds the table drawn.
    """
    import matplotlib.pyplot as plt

    from .kaplan_meier import unit_name

    table = calibration_table(result, bands, by_cohort=by_cohort, ci_prob=ci_prob,
                              n_draws=n_draws, random_seed=random_seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    parts = [(None, table)] if not by_cohort else list(table.groupby("cohort", sort=False,
                                                                     observed=True))
    for i, (label, t) in enumerate(parts):
        color = f"C{i % 10}"
        x = t["predicted_mean"].to_numpy()
        err = np.vstack([x - t["predicted_lower"].to_numpy(), t["predicted_upper"].to_numpy() - x])
        ax.errorbar(x, t["observed_share"], xerr=np.clip(err, 0, None), fmt="o", color=color,
                    ms=4, lw=1, capsize=2,
                    label=f"{label}" if label is not None else "follow-up age bands")
    hi = float(max(table[["observed_share", "predicted_upper"]].max().max(), 0.01)) * 1.05
    hi = min(hi, 1.0)
    ax.plot([0, hi], [0, hi], color="0.4", ls="--", lw=1, label="perfect calibration")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_aspect("equal")
    unit = unit_name(result.data.time_unit)
    ax.set_xlabel(f"predicted share converted (mean, {ci_prob:.0%} predictive HDI)")
    ax.set_ylabel("observed share converted")
    n_in = int(table["inside"].sum())
    ax.set_title(f"calibration by follow-up age band ({unit}): {n_in} of {len(table)} "
                 "observed inside", fontsize="medium")
    ax.legend(fontsize="small", title=(result.data.cohort_name or "cohort") if by_cohort
              else None)
    ax.calibration_table = table
    return ax


# ---------------------------------------------------------------------------- priors
def _raw_prior(model, draws: int, random_seed) -> xr.Dataset:
    """``pm.sample_prior_predictive`` on the model's PyMC model: the ``prior`` group."""
    import pymc as pm

    if int(draws) < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    log = logging.getLogger("pymc")
    level = log.level
    log.setLevel(logging.WARNING)  # not the "Sampling: [...]" message
    try:
        from .backend import reproducible_compilation

        with warnings.catch_warnings(), reproducible_compilation():
            # the likelihood is a Potential, which prior sampling ignores: as intended here
            warnings.filterwarnings("ignore", message=".*Potentials.*")
            dt = pm.sample_prior_predictive(draws=int(draws), model=model.pymc_model,
                                            random_seed=random_seed)
    finally:
        log.setLevel(level)
    return dt["prior"].to_dataset() if isinstance(dt, xr.DataTree) else dt.prior


def prior_result(model, draws: int = 500, random_seed=None):
    """A :class:`ConversionResult` whose "posterior" is the prior: curves, summaries of priors.

    Parameters
    ----------
    model : ConversionModel
    draws : int, default 500
    random_seed : int, optional

    Returns
    -------
    ConversionResult with ``sampler == "prior"``; e.g. ``.curves(t)`` gives prior draws of
    c·F(t) of shape (1, draws, cohort, t), t in the data's time unit.
    """
    from .results import ConversionResult

    dt = xr.DataTree.from_dict({"posterior": _raw_prior(model, draws, random_seed)})
    return ConversionResult._from_fit(model, dt, sampler="prior", timing={},
                                      random_seed=random_seed)


def sample_prior(model, draws: int = 500, random_seed=None) -> xr.Dataset:
    """Draws of every cohort's parameters from the priors alone (no data).

    Parameters
    ----------
    model : ConversionModel
    draws : int, default 500
    random_seed : int, optional

    Returns
    -------
    xarray.Dataset with dims (chain = 1, draw, cohort): ``eventual_rate`` (share of units
    that ever convert), ``lag_loc`` (lag location in the data's time unit: the priors are set
    relative to the model's ``time_scale``, the data's median observed conversion time),
    ``lag_shape``, ``median_lag`` (data's time unit) and the unconstrained parameters
    (``logit_rate``, ``log_lag_loc``, ...) and hyperparameters.
    """
    prior = prior_result(model, draws=draws, random_seed=random_seed).posterior
    prior.attrs = {"time_unit": model.data.time_unit, "lag": model.spec.lag,
                   "random_seed": "" if random_seed is None else str(random_seed)}
    return prior


def plot_prior_curves(model, ax=None, *, draws: int = 500, n_lines: int = 50,
                      t_max: float | None = None, ci_prob: float = 0.9, cohort=None,
                      km: bool = True, random_seed=None, n_t: int = 200):
    """What the priors say: prior draws of the share converted by time t, c·F(t).

    Thin lines are single prior draws ("spaghetti"), the band holds the central ``ci_prob``
    of the draws at each t and the thick line is their median. Before the data, every cohort
    has the same prior curve, so one cohort is drawn. The observed Kaplan–Meier curves are
    drawn on top (dashed) to show where the data will pull.

    Parameters
    ----------
    model : ConversionModel
    ax : matplotlib Axes, optional
    draws : int, default 500
        Prior draws for the band and median.
    n_lines : int, default 50
        Prior draws drawn as lines.
    t_max : float, optional
        Right end of the time axis, in the data's time unit (default 1.25 × the longest
        follow-up).
    ci_prob : float, default 0.9
        Probability of the central (equal-tailed) band.
    cohort : label, optional
        Cohort whose prior is drawn (default: the first; all cohorts share the prior).
    km : bool, default True
        Overlay the observed Kaplan–Meier curves.
    random_seed : int, optional
    n_t : int, default 200

    Returns
    -------
    matplotlib.axes.Axes
        x: time since creation in the data's time unit; y: share of units converted.
    """
    import matplotlib.pyplot as plt

    from .kaplan_meier import kaplan_meier, unit_name

    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    res = prior_result(model, draws=draws, random_seed=random_seed)
    data = model.data
    g = 0 if cohort is None else res._cohort_code(cohort)
    label = data.cohorts[g]
    t_max = float(t_max or 1.25 * data.duration.max())
    t = np.linspace(0.0, t_max, n_t)
    cur = res.curves(t).isel(cohort=g).stack(sample=("chain", "draw")).transpose("sample", "t")
    vals = cur.values
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    rng = np.random.default_rng(random_seed)
    for i in rng.choice(len(vals), size=min(n_lines, len(vals)), replace=False):
        ax.plot(t, vals[i], color="C0", lw=0.6, alpha=0.3)
    lo, med, hi = np.quantile(vals, [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2], axis=0)
    ax.fill_between(t, lo, hi, color="C0", alpha=0.15, lw=0,
                    label=f"prior: central {ci_prob:.0%} of c·F(t)")
    ax.plot(t, med, color="C0", lw=2.5, label="prior median")
    if km:
        table = kaplan_meier(data)
        for i, lab in enumerate(data.cohorts):
            gk = table[table["cohort"] == lab]
            ax.step(np.r_[0.0, gk["time"]], np.r_[0.0, gk["conversion"]], where="post",
                    color=f"C{(i + 1) % 10}", lw=1.2, ls="--", label=f"{lab} observed (KM)")
    ax.set_xlim(0, t_max)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"time since creation ({unit_name(data.time_unit)})")
    ax.set_ylabel("share of units converted")
    ax.set_title(f"prior predictive conversion curves ({model.spec.lag} lag, cohort {label}; "
                 f"{min(n_lines, len(vals))} draws)", fontsize="medium")
    ax.legend(fontsize="small")
    return ax
