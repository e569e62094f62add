"""Model comparison by PSIS-LOO on aggregated (counted) rows.

A :class:`~bayesconv.data.ConversionData` row stands for ``count`` identical units. For
leave-one-out cross-validation every *unit* is an observation: leaving one unit of a row out
removes one copy of that row's log-likelihood, so the PSIS-LOO quantities of the row (its
expected log predictive density ``elpd_r``, effective number of parameters ``p_r`` and Pareto
shape ``k_r``) are computed once from the log-likelihood of one unit
(:meth:`ConversionResult.pointwise_loglik`) and then count ``n_r`` times. With
``N = Σ n_r`` units,

* ``elpd_loo = Σ_r n_r elpd_r`` and ``p_loo = Σ_r n_r p_r``;
* ``se = sqrt(N · Var_w(elpd))``, where ``Var_w`` is the frequency-weighted sample variance
  ``Σ_r n_r (elpd_r − ē)² / (N − 1)``, ``ē = elpd_loo / N``;
* for two models fitted to the same rows, with per-unit differences ``d_r = elpd_r^A −
  elpd_r^B``: ``elpd_diff = Σ_r n_r d_r`` and ``dse = sqrt(N · Var_w(d))``.

Rows whose log-likelihood is flat over the draws (to 1e-10; e.g. units censored at an age
the lag distribution has not reached in any draw) get the plain importance-sampling value,
which is exact there, and no Pareto k (−inf); if PSIS fails on a row anyway, that row keeps
the plain IS value and k = +inf, so it is reported as unreliable.

These are exactly the numbers one gets from the data expanded to one row per unit (Vehtari,
Gelman & Gabry 2017, "Practical Bayesian model evaluation using leave-one-out cross-validation
and WAIC", *Statistics and Computing* 27:1413–1432, eqs. 4, 23 and 24), at the cost of the
distinct rows only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from ..errors import ParetoKWarning

__all__ = ["ParetoKWarning", "compare_models", "loo", "row_loo"]


def _good_k(n_samples: int) -> float:
    """Sample-size-dependent Pareto k threshold, min(1 − 1/log10(S), 0.7) (as ArviZ)."""
    return min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7


#: Rows whose log-likelihood varies by less than this over the draws are treated as flat.
_FLAT_LOGLIK = 1e-10


def _psis_loo(result, da: xr.DataArray, idx) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ PSIS-LOO (elpd_i, pareto_k) of rows ``idx`` (relative ESS from the posterior)."""
    import arviz_stats as azs

    sub = xr.DataTree.from_dict({
        "posterior": result.idata["posterior"].to_dataset(),
        "log_likelihood": xr.Dataset({"conversion": da.isel(row=np.asarray(idx))})})
    with warnings.catch_warnings():
        # ArviZ warns about Pareto k itself, without naming the model; we warn instead
        warnings.simplefilter("ignore", UserWarning)
        elpd = azs.loo(sub, pointwise=True, var_name="conversion")
    return (np.asarray(elpd.elpd_i.transpose("row").values, dtype=float),
            np.asarray(elpd.pareto_k.transpose("row").values, dtype=float))


def row_loo(result) -> pd.DataFrame:
    """PSIS-LOO quantities of one unit of every aggregated row.

    Parameters
    ----------
    result : ConversionResult
        A fitted result with its data (not one loaded with ``include_data=False``) and at least
        two posterior draws.

    Returns
    -------
    DataFrame with one row per aggregated data row (``row`` = 0..n_rows-1) and columns
    ``cohort`` (label), ``duration`` (in the data's time unit), ``converted``, ``count``
    (units the row stands for), ``elpd_loo`` (LOO expected log predictive density of one unit
    of the row), ``p_loo`` (its effective number of parameters, lppd − elpd), ``pareto_k``
    (PSIS Pareto shape, shared by the row's units). Log densities of exact conversion times
    are per unit of the model's time scale. ``attrs["good_k"]`` holds the Pareto k threshold
    for the posterior sample size.

    Raises
    ------
    ValueError
        The result has no data, or a single draw (MAP).
    """
    from scipy.special import logsumexp

    if not isinstance(result.data, ConversionData):
        raise ValueError("LOO needs the data the model was fitted to; this result was saved "
                         "without it (include_data=False)")
    post = result.posterior
    n_samples = post.sizes["chain"] * post.sizes["draw"]
    if not result.has_draws or n_samples < 2:
        raise ValueError(f"LOO needs posterior draws; this result has {n_samples} "
                         f"({result.sampler!r})")
    da = result.idata["log_likelihood"]["conversion"].transpose("chain", "draw", "row")
    ll = da.values.reshape(n_samples, -1)
    lppd = logsumexp(ll, axis=0) - np.log(n_samples)
    # Rows whose log-likelihood is (numerically) the same in every draw, such as units
    # censored at an age where F is still ~0, carry no information: the importance ratios are
    # uniform, so plain IS-LOO is exact there; PSIS cannot fit a tail to them (k = -inf).
    elpd_i = -logsumexp(-ll, axis=0) + np.log(n_samples)
    pareto_k = np.full(ll.shape[1], -np.inf)
    varies = np.ptp(ll, axis=0) > _FLAT_LOGLIK
    if varies.any():
        idx = np.flatnonzero(varies)
        try:
            e, k = _psis_loo(result, da, idx)
        except ValueError:  # a degenerate tail somewhere: row by row, flag the failures
            e, k = elpd_i[idx].copy(), np.full(len(idx), np.inf)
            for j, i in enumerate(idx):
                try:
                    e[j], k[j] = (v[0] for v in _psis_loo(result, da, [i]))
                except ValueError:
                    pass
        elpd_i[idx], pareto_k[idx] = e, k
    data = result.data
    out = pd.DataFrame({
        "cohort": pd.Categorical.from_codes(data.cohort, categories=list(data.cohorts)),
        "duration": data.duration,
        "converted": data.converted,
        "count": data.count,
        "elpd_loo": elpd_i,
        "p_loo": lppd - elpd_i,
        "pareto_k": pareto_k,
    }, index=pd.RangeIndex(data.n_rows, name="row"))
    out.attrs.update(good_k=_good_k(n_samples), n_samples=n_samples,
                     time_unit=data.time_unit)
    return out


def _weighted_total(values: np.ndarray, count: np.ndarray) -> tuple[float, float]:
    """(Σ n v, sqrt(N · Σ n (v − v̄)² / (N − 1))): the total and its LOO standard error."""
    n = count.astype(float)
    total_n = n.sum()
    total = float(np.sum(n * values))
    if total_n <= 1:
        return total, 0.0
    mean = total / total_n
    var = float(np.sum(n * (values - mean) ** 2) / (total_n - 1))
    return total, float(np.sqrt(total_n * var))


def loo(result) -> pd.Series:
    """PSIS-LOO of a fitted model, counting every unit of an aggregated row.

    See the module docstring for the formulas (Vehtari, Gelman & Gabry 2017).

    Parameters
    ----------
    result : ConversionResult

    Returns
    -------
    Series with ``elpd_loo``, ``se``, ``p_loo``, ``n_units`` (observations N), ``n_rows``,
    ``n_pareto_k_bad`` (units whose row has k above ``good_k``), ``max_pareto_k`` and
    ``good_k`` (the threshold, min(1 − 1/log10(S), 0.7) for S posterior draws).
    """
    rows = row_loo(result)
    return _summarise(rows)


def _summarise(rows: pd.DataFrame) -> pd.Series:
    count = rows["count"].to_numpy()
    elpd, se = _weighted_total(rows["elpd_loo"].to_numpy(), count)
    good_k = rows.attrs["good_k"]
    bad = rows["pareto_k"].to_numpy() > good_k
    return pd.Series({
        "elpd_loo": elpd, "se": se, "p_loo": float(np.sum(count * rows["p_loo"].to_numpy())),
        "n_units": int(count.sum()), "n_rows": len(rows),
        "n_pareto_k_bad": int(count[bad].sum()),
        "max_pareto_k": float(rows["pareto_k"].max()), "good_k": float(good_k)})


def _same_data(name_a, a, name_b, b) -> None:
    """Raise ValueError unless results ``a`` and ``b`` were fitted to the same rows."""
    for name, r in ((name_a, a), (name_b, b)):
        if not isinstance(r.data, ConversionData):
            raise ValueError(f"model {name!r} has no data (saved with include_data=False); "
                             "comparison needs the data each model was fitted to")
    da, db = a.data, b.data
    problems = []
    if da.n_rows != db.n_rows:
        problems.append(f"{da.n_rows} vs {db.n_rows} aggregated rows")
    elif da.n_units != db.n_units:
        problems.append(f"{da.n_units} vs {db.n_units} units")
    else:
        for field in ("cell", "duration", "lower", "converted", "count"):
            x, y = getattr(da, field), getattr(db, field)
            if not np.array_equal(x, y):
                bad = np.flatnonzero(x != y)
                problems.append(f"{field} differs in {len(bad)} rows (first: row {bad[0]})")
    if [str(c) for c in da.cohorts] != [str(c) for c in db.cohorts]:
        problems.append(f"cohorts {list(da.cohorts)} vs {list(db.cohorts)}")
    if da.time_unit != db.time_unit:
        problems.append(f"time unit {da.time_unit!r} vs {db.time_unit!r}")
    else:
        for field in ("time_scale", "zero_width"):
            x, y = getattr(a.spec, field), getattr(b.spec, field)
            if not np.isclose(x, y, rtol=1e-12, atol=0):
                problems.append(f"{field} {x!r} vs {y!r} (log densities on different scales)")
    if problems:
        raise ValueError(f"models {name_a!r} and {name_b!r} were not fitted to the same data, "
                         f"so their LOO values cannot be compared: " + "; ".join(problems))


def _stacking_weights(elpd_rows: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Stacking weights (Yao et al. 2018) with every unit of a row counted.

    Maximises Σ_r n_r log Σ_k w_k exp(elpd_rk) over the simplex (softmax parametrisation).
    ``elpd_rows`` has shape (n_rows, n_models).
    """
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    n_models = elpd_rows.shape[1]
    if n_models == 1:
        return np.ones(1)
    w_n = count.astype(float) / count.sum()

    def objective(z):
        logw = z - logsumexp(z)
        lse = logsumexp(elpd_rows + logw[None, :], axis=1)  # (rows,)
        # gradient wrt z through the softmax
        resp = np.exp(elpd_rows + logw[None, :] - lse[:, None])  # (rows, models)
        g_logw = -(w_n[:, None] * resp).sum(axis=0)
        w = np.exp(logw)
        grad = g_logw - w * g_logw.sum()
        return -float(np.sum(w_n * lse)), grad

    res = minimize(objective, np.zeros(n_models), jac=True, method="BFGS")
    return softmax(res.x)


def compare_models(results: dict, *, warn: bool = True) -> pd.DataFrame:
    """Rank models fitted to the same data by PSIS-LOO expected log predictive density.

    Every unit is one observation, also when the data were aggregated into rows of identical
    units: a row's PSIS-LOO values are computed once from one unit's log-likelihood and count
    ``count`` times. With N units, per-unit values e_r of row r and counts n_r
    (Vehtari, Gelman & Gabry 2017, *Statistics and Computing* 27:1413, eqs. 4, 23, 24):

    * ``elpd_loo = Σ_r n_r e_r``, ``p_loo = Σ_r n_r p_r``;
    * ``se = sqrt(N · Σ_r n_r (e_r − ē)² / (N − 1))``;
    * ``elpd_diff`` and ``dse``: the same sums over the per-unit differences to the best
      model (rows aligned; both models must have been fitted to the same rows).

    These equal the values of the same data expanded to one row per unit.

    Parameters
    ----------
    results : dict of str to ConversionResult
        Fitted models (at least 2 posterior draws each) keyed by a name, e.g.
        ``{"gamma": r1, "weibull": r2}``.
    warn : bool, default True
        Warn (:class:`ParetoKWarning`) naming the models with Pareto k above the threshold.

    Returns
    -------
    DataFrame indexed by model name, best (highest ``elpd_loo``) first, with columns

    * ``rank`` (0 = best), ``elpd_loo``, ``se``, ``p_loo``;
    * ``elpd_diff`` (best minus this model, ≥ 0) and ``dse`` (its standard error);
    * ``weight``: stacking weights (Yao, Vehtari, Simpson & Gelman 2018, *Bayesian
      Analysis* 13:917), with every unit counted;
    * ``n_pareto_k_bad``: units (not rows) whose Pareto k exceeds ``good_k``, and
      ``max_pareto_k``;
    * ``n_units``, ``good_k`` (the threshold min(1 − 1/log10(S), 0.7) for S draws, as ArviZ).

    A difference is usually taken as clear when ``elpd_diff`` is several times ``dse``
    (and above about 4).

    Raises
    ------
    ValueError
        Fewer than two models, results without data or draws, or results not fitted to the
        same data (rows, counts, cohorts, time unit or time scale differ).

    Warns
    -----
    ParetoKWarning
        Some units have Pareto k above ``good_k``: their LOO values, and the comparison, are
        unreliable (refit those or use K-fold CV).
    """
    if not isinstance(results, dict) or len(results) < 2:
        raise ValueError("compare_models needs a dict of at least two fitted results, "
                         "e.g. {'gamma': r1, 'weibull': r2}")
    names = list(results)
    first = names[0]
    for name in names[1:]:
        _same_data(first, results[first], name, results[name])
    rows = {name: row_loo(r) for name, r in results.items()}
    count = rows[first]["count"].to_numpy()
    table = pd.DataFrame({name: _summarise(rows[name]) for name in names}).T
    table = table.sort_values("elpd_loo", ascending=False, kind="stable")
    best = table.index[0]
    e_best = rows[best]["elpd_loo"].to_numpy()
    diff, dse = [], []
    for name in table.index:
        d, s = _weighted_total(e_best - rows[name]["elpd_loo"].to_numpy(), count)
        diff.append(d)
        dse.append(s if name != best else 0.0)
    table["elpd_diff"] = diff
    table["dse"] = dse
    elpd_mat = np.column_stack([rows[name]["elpd_loo"].to_numpy() for name in table.index])
    table["weight"] = _stacking_weights(elpd_mat, count)
    table["rank"] = np.arange(len(table))
    out = table[["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight",
                 "n_pareto_k_bad", "max_pareto_k", "n_units", "good_k"]].copy()
    for col in ("rank", "n_pareto_k_bad", "n_units"):
        out[col] = out[col].astype(np.int64)
    for col in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "max_pareto_k",
                "good_k"):
        out[col] = out[col].astype(float)
    out.index.name = "model"
    out.attrs["time_unit"] = results[first].data.time_unit
    bad = out[out["n_pareto_k_bad"] > 0]
    if warn and len(bad):
        what = ", ".join(f"{name!r} ({n} of {out.loc[name, 'n_units']} units, max k = "
                         f"{out.loc[name, 'max_pareto_k']:.2f})"
                         for name, n in bad["n_pareto_k_bad"].items())
        warnings.warn(f"PSIS-LOO is unreliable for some units (Pareto k > "
                      f"{out['good_k'].iloc[0]:.2f}) in {what}; treat these elpd values and "
                      "differences with caution (more draws, or K-fold cross-validation)",
                      ParetoKWarning, stacklevel=2)
    return out

