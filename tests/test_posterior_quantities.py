"""Post-processing on fabricated posteriors: curves, summary, diagnostics, plots, PPC."""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from conftest import fabricate
from scipy import stats

import bayesconv as bc
from bayesconv.posterior.diagnostics import check_convergence
from bayesconv.posterior.result import ConversionResult

matplotlib.use("Agg")

TRUE_C = np.array([0.3, 0.6])
TRUE_LOC = np.array([5.0, 10.0])   # gamma mean lag, days
TRUE_K = np.array([2.0, 1.2])


@pytest.fixture(scope="module")
def model():
    ev = bc.simulate(n_units=[300, 300], eventual_rate=TRUE_C, lag_loc=TRUE_LOC,
                     lag_shape=TRUE_K, random_seed=3, enrollment=20, followup=25)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    return bc.ConversionModel(data)


def _fabricate(model, chains=2, draws=200, seed=0, shift=None, diverging=0):
    def disagree(c, loc, k):  # chains that disagree
        if shift is not None:
            c[0] = np.clip(c[0] + shift, 0.01, 0.99)

    div = np.zeros((chains, draws), bool)
    div.flat[:diverging] = True
    ss = xr.Dataset({"diverging": (("chain", "draw"), div)},
                    coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    return fabricate(model, TRUE_C, TRUE_LOC, TRUE_K, chains=chains, draws=draws, seed=seed,
                     sample_stats=ss, edit=disagree)


def test_curves_match_scipy(model):
    res = _fabricate(model)
    t = np.array([0.0, 1.0, 5.0, 30.0, 1000.0])
    cur = res.curves(t)
    assert cur.dims == ("chain", "draw", "cohort", "t")
    p = res.posterior
    i = (1, 17, 1)
    c, loc, k = (float(p[v].values[i]) for v in ("eventual_rate", "lag_loc", "lag_shape"))
    expected = c * stats.gamma(k, scale=loc / k).cdf(t)
    np.testing.assert_allclose(cur.values[i[0], i[1], i[2]], expected, rtol=1e-10, atol=1e-15)
    # a conversion curve never decreases and never exceeds the eventual rate
    assert np.all(np.diff(cur.values, axis=-1) >= 0)
    assert np.all(cur.values[..., -1] <= p["eventual_rate"].values + 1e-12)


def test_median_lag_is_the_gamma_median(model):
    res = _fabricate(model)
    p = res.posterior
    k, loc = p["lag_shape"].values, p["lag_loc"].values
    np.testing.assert_allclose(p["median_lag"].values, stats.gamma(k, scale=loc / k).median())


def test_summary(model):
    res = _fabricate(model)
    s = res.summary(ci_prob=0.9)
    assert list(s.index) == ["A", "B"]
    er = res.eventual_rate()
    np.testing.assert_allclose(s["rate_mean"], er.mean(("chain", "draw")))
    assert np.all((s["rate_lower"] < s["rate_mean"]) & (s["rate_mean"] < s["rate_upper"]))
    # a 90% HDI of draws holds about 90% of them
    inside = ((er >= s["rate_lower"].to_xarray().rename(cohort="cohort").values)
              & (er <= s["rate_upper"].values)).mean(("chain", "draw"))
    np.testing.assert_allclose(inside, 0.9, atol=0.01)
    km = bc.kaplan_meier(model.data)
    assert s.loc["A", "km_end"] == km[km["cohort"] == "A"]["conversion"].iloc[-1]
    assert (s["r_hat"] < 1.05).all() and (s["ess_bulk"] > 100).all()


def test_pointwise_loglik_layout(model):
    res = _fabricate(model)
    ll = res.idata["log_likelihood"]["conversion"]
    assert ll.dims == ("chain", "draw", "row") and ll.sizes["row"] == model.data.n_rows
    assert np.all(np.isfinite(ll.values))
    for grp in ("observed_data", "constant_data", "sample_stats"):
        assert grp in res.idata.children


def test_convergence_warnings(model):
    good = _fabricate(model, chains=4, draws=1000)  # independent draws: ESS ~ 4000
    assert check_convergence(good.idata, warn=False)["problems"] == []
    bad = _fabricate(model, shift=0.2, diverging=3)
    with pytest.warns(bc.ConvergenceWarning) as rec:
        out = check_convergence(bad.idata)
    text = " ".join(str(w.message) for w in rec)
    assert out["max_r_hat"] > 1.01 and "R-hat" in text
    assert "3 of 400 draws ended in a divergence" in text


def test_plots_return_axes(model):
    res = _fabricate(model)
    ax = res.plot()
    assert ax.get_xlabel() == "time since creation (days)"
    # per cohort: the mean within follow-up, its extrapolation, and a Kaplan–Meier step
    assert len(ax.get_lines()) == 6
    ax2 = res.plot_ppc_km(n_draws=10, random_seed=1)
    assert len(ax2.get_lines()) == 2 * 10 + 2


def test_posterior_predictive_km_is_calibrated_at_the_truth(model):
    res = _fabricate(model)
    sims = res.posterior_predictive_km(n_draws=40, random_seed=2)
    assert sims["draw"].nunique() == 40
    for _, g in sims.groupby(["draw", "cohort"], observed=True):
        assert np.all(np.diff(g["conversion"].to_numpy()) >= -1e-12)
    # the observed end-of-follow-up KM lies inside the simulated spread (data are from truth)
    km = bc.kaplan_meier(model.data)
    for label in ("A", "B"):
        end = sims[sims["cohort"] == label].groupby("draw")["conversion"].last()
        obs = km[km["cohort"] == label]["conversion"].iloc[-1]
        assert end.quantile(0.01) <= obs <= end.quantile(0.99)


def test_posterior_predictive_km_gridded_matches_unit_by_unit(model):
    """Large cohorts are simulated on the data's grid of times; with a cell per distinct
    observed time the simulated KM curves agree with unit-by-unit simulation (means within
    Monte Carlo error); on a coarse grid they lag behind by at most a cell, never lead."""

    def at(sims, label, t):
        vals = []
        for _, g in sims[sims["cohort"] == label].groupby("draw"):
            i = np.searchsorted(g["time"].to_numpy(), t, side="right") - 1
            vals.append(g["conversion"].to_numpy()[i] if i >= 0 else 0.0)
        return np.array(vals)

    res = _fabricate(model)
    exact = res.posterior_predictive_km(n_draws=200, random_seed=5)
    res.PPC_UNIT_LIMIT = 0  # every cohort gridded
    grid = res.posterior_predictive_km(n_draws=200, random_seed=5)
    res.PPC_MAX_CELLS = 12  # fewer cells than follow-up ages: ages snap down to the grid
    coarse = res.posterior_predictive_km(n_draws=200, random_seed=5)
    for label in ("A", "B"):
        for t in (3.0, 8.0, 15.0, 30.0):
            a, b, c = at(exact, label, t), at(grid, label, t), at(coarse, label, t)
            se = np.sqrt(a.var() / len(a) + b.var() / len(b))
            assert abs(a.mean() - b.mean()) < 4 * se + 0.005, (label, t, a.mean(), b.mean())
            assert c.mean() < a.mean() + 4 * se, (label, t, a.mean(), c.mean())
    from bayesconv.posterior.predictive import _grid
    from bayesconv.posterior.quantities import followup_ages

    fu = followup_ages(res.data)
    assert set(coarse["time"]) <= set(_grid(res.data, 0, fu[0][0], 12)) | set(
        _grid(res.data, 1, fu[1][0], 12))


def test_conversion_probability_closed_form(model):
    res = _fabricate(model)
    p = res.conversion_probability([0.0, 3.0, 40.0], "B")
    assert p.dims == ("chain", "draw", "age")
    post = res.posterior
    c, loc, k = (post[v].sel(cohort="B").values[..., None] for v in
                 ("eventual_rate", "lag_loc", "lag_shape"))
    cdf = stats.gamma(k, scale=loc / k).cdf(np.array([0.0, 3.0, 40.0]))
    np.testing.assert_allclose(p.values, c * (1 - cdf) / (1 - c * cdf), rtol=1e-9)
    np.testing.assert_allclose(p.values[..., 0], c[..., 0])  # age 0: the eventual rate
    assert np.all(np.diff(p.values, axis=-1) <= 0)  # the older the unit, the less likely
    with pytest.raises(ValueError, match="cohort 'Z' is not in the data"):
        res.conversion_probability(1.0, "Z")
    with pytest.raises(ValueError, match="age must be finite"):
        res.conversion_probability(-1.0, "A")


def test_nowcast(model):
    res = _fabricate(model)
    now = res.nowcast(random_seed=1)
    table = model.data.cohort_table()
    np.testing.assert_array_equal(now["converted"], table["converted"])
    assert (now["remaining_lower"] <= now["remaining_mean"]).all()
    # a count's HDI has integer ends, so it may stop just below a fractional mean
    assert (np.floor(now["remaining_mean"]) <= now["remaining_upper"]).all()
    # expected remaining = sum over pending rows of P(eventual | age), averaged over draws
    data = model.data
    m = ~data.converted & (data.cohort == 0)
    p = res.conversion_probability(data.duration[m], "A").mean(("chain", "draw")).values
    np.testing.assert_allclose(now.loc["A", "remaining_mean"], np.sum(data.count[m] * p),
                               rtol=1e-6)
    # the expectation under the true parameters lies in the interval (posterior around truth)
    for i, label in enumerate(["A", "B"]):
        m = ~data.converted & (data.cohort == i)
        cdf = stats.gamma(TRUE_K[i], scale=TRUE_LOC[i] / TRUE_K[i]).cdf(data.duration[m])
        p_true = TRUE_C[i] * (1 - cdf) / (1 - TRUE_C[i] * cdf)
        expected = now.loc[label, "converted"] + np.sum(data.count[m] * p_true)
        # (±1: the interval of a count has integer ends)
        assert now.loc[label, "eventual_lower"] - 1 <= expected <= now.loc[label, "eventual_upper"] + 1
    soon = res.nowcast(within=1.0, random_seed=1)
    assert (soon["remaining_mean"] < now["remaining_mean"]).all()
    with pytest.raises(ValueError, match="within must be a positive"):
        res.nowcast(within=0)


def test_identification_flags_short_followup(model):
    res = _fabricate(model)
    ident = res.identification()
    # cohort A: mean lag 5 days, follow-up up to 45 days: nearly all of the lag is observed
    assert ident.loc["A", "followup_share"] > 0.95
    assert not ident["weakly_identified"].any()
    s = res.summary()
    assert {"followup_share", "weakly_identified"} <= set(s.columns)


def test_identification_is_computed_once_and_follows_a_new_posterior(model, monkeypatch):
    from bayesconv.posterior import identification

    res = _fabricate(model)
    calls = []
    real = identification.identification
    monkeypatch.setattr(identification, "identification",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    first = res.identification()
    first.loc["A", "weakly_identified"] = True   # a caller's edit does not reach the cache
    assert not res.identification()["weakly_identified"].any()
    assert len(calls) == 1
    res.idata = _fabricate(model, seed=1).idata    # a new posterior: computed again
    res.identification()
    assert len(calls) == 2


def test_identification_flags_lag_beyond_followup():
    ev = bc.simulate(n_units=[400, 400], eventual_rate=[0.3, 0.3], lag_loc=[5.0, 200.0],
                     lag_shape=2.0, random_seed=5, enrollment=10, followup=10)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    model = bc.ConversionModel(data)
    rng = np.random.default_rng(0)
    dims = ("chain", "draw", "cohort")
    post = xr.Dataset({
        "eventual_rate": (dims, np.clip(rng.normal([0.3, 0.5], [0.01, 0.2], (2, 100, 2)),
                                        0.01, 0.99)),
        "lag_loc": (dims, np.broadcast_to([5.0, 200.0], (2, 100, 2)).copy()),
        "lag_shape": (dims, np.full((2, 100, 2), 2.0))},
        coords={"chain": [0, 1], "draw": np.arange(100), "cohort": ["A", "B"]})
    res = ConversionResult.from_fit(model, xr.DataTree.from_dict({"posterior": post}),
                                     sampler="fabricated", timing={}, random_seed=None)
    ident = res.identification()
    assert ident["weakly_identified"].tolist() == [False, True]
    assert ident.loc["B", "followup_share"] < 0.05


def _tree(diverging_at=None, n_div=20, seed=0, rhat_shift=0.0, draws=500):
    """A fabricated posterior (2 cohorts, 4 chains x ``draws``) with divergences placed at the
    ``n_div`` smallest (``("small", var)``) or largest draws of one element."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    shape = (4, draws)
    coords = {"chain": np.arange(4), "draw": np.arange(draws), "cohort": ["A", "B"]}
    rate = rng.beta(30, 70, size=shape + (2,))
    rate[0, :, 1] += rhat_shift
    post = xr.Dataset({
        "eventual_rate": (("chain", "draw", "cohort"), rate),
        "lag_loc": (("chain", "draw", "cohort"), rng.lognormal(1.5, 0.1, size=shape + (2,))),
        "lag_shape": (("chain", "draw", "cohort"), rng.lognormal(0.0, 0.2, size=shape + (2,))),
        "sigma_logit_rate": (("chain", "draw"), np.abs(rng.normal(0, 0.5, size=shape))),
        "logit_rate_raw": (("chain", "draw", "cohort"), rng.normal(size=shape + (2,))),
    }, coords=coords, attrs={"noncentered": "logit_rate"})
    post["log_lag_shape"] = np.log(post["lag_shape"])   # the same draws, transformed
    div = np.zeros(shape, bool)
    if diverging_at is not None:
        side, name, idx = diverging_at
        v = post[name].values if idx is None else post[name].values[..., idx]
        order = np.argsort(v.ravel())
        pick = order[:n_div] if side == "small" else order[-n_div:]
        div.ravel()[pick] = True
    else:
        div.ravel()[rng.choice(div.size, n_div, replace=False)] = True
    stats = xr.Dataset({"diverging": (("chain", "draw"), div)},
                       coords={"chain": coords["chain"], "draw": coords["draw"]})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def _divergence_message(tree):
    with pytest.warns(bc.ConvergenceWarning) as rec:
        check_convergence(tree)
    [w] = [w.message for w in rec if w.message.kind == "divergences"]
    return w


def test_divergences_at_small_between_group_sd_are_called_a_funnel():
    w = _divergence_message(_tree(("small", "sigma_logit_rate", None)))
    assert "mostly at small sigma_logit_rate" in w.problem and w.pattern == "funnel"
    assert "funnel" in w.remedy and "priors={'logit_rate_sd': ...}" in w.remedy
    # the fabricated posterior's attrs say the term is non-centred
    assert "parametrization='centered' (this term is non-centred)" in w.remedy
    tree = _tree(("small", "sigma_logit_rate", None))
    tree["posterior"].attrs["noncentered"] = "log_lag_loc"   # another term is; this one not
    w = _divergence_message(tree)
    assert "parametrization='noncentered' (this term is centred)" in w.remedy


def test_divergences_at_one_cohorts_lag_shape_name_it():
    w = _divergence_message(_tree(("large", "lag_shape", 1)))
    assert "mostly at large lag_shape[B]" in w.problem and w.pattern == "lag_shape"
    assert w.remedy.startswith("lag_shape[B]") and "lag='exponential'" in w.remedy
    assert "log_lag_shape" not in w.problem   # one name for a parameter and its transform


def test_scattered_divergences_get_the_generic_remedy():
    w = _divergence_message(_tree(None))
    assert "mostly at" not in w.problem and w.remedy.startswith("raise target_accept")
    assert w.pattern == ""


@pytest.mark.parametrize("used, advice", [(0.9, "e.g. 0.95; this fit used 0.9"),
                                          (0.95, "e.g. 0.99; this fit used 0.95"),
                                          (0.99, "target_accept is 0.99 already")])
def test_divergence_remedy_suggests_a_target_accept_above_the_fits_own(used, advice):
    tree = _tree(None)
    tree["posterior"].attrs["target_accept"] = used   # as fit records it
    w = _divergence_message(tree)
    assert advice in w.remedy
    assert w.next_accept == {0.9: 0.95, 0.95: 0.99, 0.99: None}[used]


def test_r_hat_and_ess_warnings_name_the_elements():
    with pytest.warns(bc.ConvergenceWarning) as rec:
        out = check_convergence(_tree(None, n_div=0, rhat_shift=0.05))
    [w] = [w.message for w in rec if w.message.kind == "r_hat"]
    assert out["max_r_hat"] > 1.01 and "for eventual_rate[B] (R-hat" in w.problem
    assert "eventual_rate[A]" not in w.problem


def test_a_cohorts_rate_and_lag_flagged_together_get_the_ridge_remedy():
    """One chain far out along cohort B's ridge (higher eventual rate and longer lag
    together): R-hat names both, and the remedy is the ridge's (tie the lags, read by a
    horizon), in the key of the model's lag prior; a run shorter than the default length is
    first told to run that long."""
    from bayesconv.posterior.diagnostics import ridge_remedy

    short = _tree(None, n_div=0, rhat_shift=0.05)   # 500 draws: first the default length
    tree = _tree(None, n_div=0, rhat_shift=0.05, draws=1000)
    post = tree["posterior"].to_dataset()
    post["lag_loc"][dict(chain=0, cohort=1)] *= 1.6
    post["mu_log_lag_loc"] = post["lag_loc"].isel(cohort=0) * 0   # tied lags, no pooling
    tree["posterior"] = xr.DataTree(post)
    with pytest.warns(bc.ConvergenceWarning) as rec:
        check_convergence(tree)
    [w] = [w.message for w in rec if w.message.kind == "r_hat"]
    assert "eventual_rate[B]" in w.problem and "lag_loc[B]" in w.problem
    assert w.pattern == "ridge" and "'log_lag_loc_spread': 0.5" in w.remedy
    assert w.remedy.startswith("eventual_rate[B] and lag_loc[B] move together")
    post = short["posterior"].to_dataset()
    post["lag_loc"][dict(chain=0, cohort=1)] *= 1.6
    short["posterior"] = xr.DataTree(post)
    with pytest.warns(bc.ConvergenceWarning) as rec:
        check_convergence(short)
    [w] = [w.message for w in rec if w.message.kind == "r_hat"]
    assert w.pattern == "" and "run at least the default length" in w.remedy
    post = tree["posterior"].to_dataset()
    # partial pooling: the between-cohort sd's prior; another cohort's lag: no ridge
    partial = post.assign(sigma_log_lag_loc=post["mu_log_lag_loc"] + 1)
    worst = [("eventual_rate[B]", 1.02), ("lag_loc[B]", 1.02)]
    assert "'log_lag_loc_sd': 0.5" in ridge_remedy(worst, partial)
    assert ridge_remedy([("eventual_rate[B]", 1.02), ("lag_loc[A]", 1.02)], post) == ""


def test_divergences_along_a_cohorts_ridge_get_the_ridge_remedy():
    tree = _tree(("large", "eventual_rate", 1))
    post = tree["posterior"].to_dataset()
    noise = np.random.default_rng(3).lognormal(0, 0.05, size=post["lag_loc"].shape[:2])
    post["lag_loc"][dict(cohort=1)] = post["eventual_rate"].isel(cohort=1) * 40 * noise
    tree["posterior"] = xr.DataTree(post)
    w = _divergence_message(tree)
    assert w.pattern == "ridge" and "large eventual_rate[B]" in w.problem
    assert "move together" in w.remedy and "raise target_accept (e.g. 0.95)" in w.remedy
