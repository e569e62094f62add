"""Seeded fits on simulated data: recovery, partial pooling, samplers, MAP."""

import warnings

import numpy as np
import pytest

import bayesconv as bc

RATES = [0.2, 0.3, 0.45]


@pytest.fixture(scope="module")
def recovery():
    # 3 cohorts, gamma lags with different means (days), observed before all converted
    ev = bc.simulate(n_units=[2500, 2500, 2500], eventual_rate=RATES, lag_loc=[6.0, 12.0, 20.0],
                     lag_shape=[2.0, 1.5, 3.0], enrollment=40, followup=30, random_seed=11, resolution="D")
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    with warnings.catch_warnings():
        warnings.simplefilter("error", bc.ConvergenceWarning)
        result = bc.ConversionModel(data).fit(draws=500, tune=500, chains=4, random_seed=5,
                                              progressbar=False)
    return data, result


def test_recovery_true_rates_in_hdi(recovery):
    data, result = recovery
    s = result.summary(ci_prob=0.94)
    for label, true in zip(data.cohorts, RATES, strict=True):
        assert s.loc[label, "rate_lower"] < true < s.loc[label, "rate_upper"], s
    # the model extrapolates past the naive rate, which is biased low where the follow-up
    # (30 days for the youngest units) does not cover the lag: cohorts B and C (mean lags 12
    # and 20 days; F(30) = 0.94 and 0.83); cohort A's (mean 6 days, F(30) > 0.999) has
    # matured, and there the two agree
    young = s.loc[["B", "C"]]
    assert (young["rate_mean"] > young["naive_rate"] + 0.002).all(), s
    assert abs(s.loc["A", "rate_mean"] - s.loc["A", "naive_rate"]) < 0.002, s
    d = result.diagnostics()
    assert d["max_r_hat"] <= 1.01 and d["divergences"] == 0


def test_result_interface(recovery):
    data, result = recovery
    assert result.sampler == "nutpie"
    post = result.posterior
    assert post.sizes == {"chain": 4, "draw": 500, "cohort": 3}
    assert set(result.idata.children) >= {"posterior", "sample_stats", "log_likelihood",
                                          "observed_data", "constant_data"}
    cur = result.curves(np.arange(0, 200, 10.0))
    assert cur.dims == ("chain", "draw", "cohort", "t")
    # far beyond follow-up the curve approaches the eventual rate
    np.testing.assert_allclose(cur.isel(t=-1), result.eventual_rate(), atol=1e-3)


def test_loo_runs_on_the_pointwise_loglik(recovery):
    import arviz_stats as azs

    _, result = recovery
    elpd = azs.loo(result.idata)
    assert np.isfinite(elpd.elpd)


@pytest.mark.filterwarnings("ignore::bayesconv.ConvergenceWarning")
def test_partial_pooling_tiny_cohort_shrinks_to_the_pool():
    """The 1-unit cohort H borrows its eventual rate from the pool.

    No assertion on divergences: this fit sits near the funnel of a between-cohort sd close to
    0 and had 1-138 divergences on each of 9 (data seed, fit seed) pairs tried (21-23 x 3-5),
    while H's posterior mean stayed within 0.007 of the pooled mean on all of them. Clean
    sampling of such data is the sampling work's target, measured in validation/.
    """
    sizes = [1200, 600, 300, 150, 60, 20, 5, 1]
    ev = bc.simulate(n_units=sizes, eventual_rate=0.35, lag_loc=8.0, lag_shape=1.5,
                     enrollment=30, followup=40, random_seed=21,
                     resolution="D")
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    result = bc.ConversionModel(data, pooling="partial").fit(draws=500, tune=700, chains=4,
                                                              random_seed=3, progressbar=False)
    post = result.posterior
    pooled = float((1 / (1 + np.exp(-post["mu_logit_rate"]))).mean())
    tiny = float(post["eventual_rate"].sel(cohort="H").mean())
    assert abs(tiny - pooled) < 0.05, (tiny, pooled)
    assert 0.15 < tiny < 0.6


def test_pymc_sampler_and_same_seed_same_draws():
    ev = bc.simulate(n_units=[300, 300], eventual_rate=[0.4, 0.5], lag_loc=5.0, lag_shape=2.0,
                     enrollment=20, followup=20, random_seed=2,
                     resolution="D")
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    model = bc.ConversionModel(data)
    kw = dict(draws=200, tune=300, chains=2, random_seed=9, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        a = model.fit(sampler="pymc", **kw)
        b = model.fit(sampler="pymc", **kw)
        n1 = model.fit(sampler="nutpie", **kw)
        n2 = model.fit(sampler="nutpie", **kw)
    assert a.sampler == "pymc"
    np.testing.assert_array_equal(a.eventual_rate().values, b.eventual_rate().values)
    np.testing.assert_array_equal(n1.eventual_rate().values, n2.eventual_rate().values)
    assert n2.timing["compile_cached"] is True
    # both samplers agree on the posterior mean within Monte Carlo error
    np.testing.assert_allclose(a.eventual_rate().mean(("chain", "draw")),
                               n1.eventual_rate().mean(("chain", "draw")), atol=0.03)


def test_map_gives_the_same_interface():
    ev = bc.simulate(n_units=[2000, 2000], eventual_rate=[0.3, 0.5], lag_loc=5.0,
                     lag_shape=2.0, enrollment=20, followup=40, random_seed=4,
                     resolution="D")
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    res = bc.ConversionModel(data).fit(method="map", progressbar=False)
    assert res.sampler == "map"
    s = res.summary()
    np.testing.assert_allclose(s["rate_mean"], [0.3, 0.5], atol=0.05)
    assert res.curves([1.0, 10.0]).sizes == {"chain": 1, "draw": 1, "cohort": 2, "t": 2}


def test_compiled_model_is_reused_with_new_data():
    from bayesconv.inference import clear_compile_cache

    def data(seed, n=500):
        ev = bc.simulate(n_units=[n, n], eventual_rate=[0.3, 0.4], lag_loc=6.0,
                         lag_shape=2.0, enrollment=20, followup=20, random_seed=seed,
                         resolution="D")
        return bc.prepare(ev, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort")

    kw = dict(draws=100, tune=200, chains=2, random_seed=1, progressbar=False)
    clear_compile_cache(disk=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        bc.ConversionModel(data(1)).fit(**kw)
        # other data of the same structure, with other row counts: 10x the units
        other = bc.ConversionModel(data(2, n=5000))
        reused = other.fit(**kw)
        clear_compile_cache(disk=False)
        fresh = bc.ConversionModel(data(2, n=5000)).fit(**kw)
    first = bc.ConversionModel(data(1))
    assert any(len(first.arrays[k]) != len(other.arrays[k]) for k in first.arrays)
    assert reused.timing["compile_cached"] and not fresh.timing["compile_cached"]
    np.testing.assert_array_equal(reused.eventual_rate().values, fresh.eventual_rate().values)
    assert reused.timing["compile_s"] < fresh.timing["compile_s"]


def test_reused_compiled_model_starts_where_a_fresh_compile_does():
    """A reused compile draws its starting points from the model being fitted.

    The centring of partially pooled cohorts is data (``centring_*``), chosen from each
    cohort's size: two data sets of one structure centre different cohorts. nutpie's
    ``with_data`` swaps the data of the log density but its starting-point function kept the
    first model's centring, so the reused fit started elsewhere and gave other draws than a
    fresh compile for the same seed (off by up to 0.29 in an eventual rate before the fix;
    found when the fingerprint fit changed after an earlier test compiled the same structure).
    """
    from bayesconv.inference import clear_compile_cache

    def data(sizes, lag, labels, seed):
        ev = bc.simulate(n_units=sizes, eventual_rate=0.3, lag_loc=lag, lag_shape=2.0,
                         enrollment=20, followup=20, cohorts=labels, random_seed=seed,
                         resolution="D")
        return bc.prepare(ev, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort")

    first = data([50, 2000, 60, 3000, 40, 1000], 3.0, list("ABCDEF"), 1)
    second = data([3000, 40, 2000, 50, 1500, 60], 12.0, list("UVWXYZ"), 2)
    m1, m2 = bc.ConversionModel(first), bc.ConversionModel(second)
    # the premise: same structure, other centring data
    assert any(np.any(m1.centring()[k] != m2.centring()[k]) for k in m1.centring())
    kw = dict(draws=100, tune=200, chains=2, random_seed=1, progressbar=False)
    clear_compile_cache(disk=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        m1.fit(**kw)
        reused = m2.fit(**kw)
        clear_compile_cache(disk=False)
        fresh = bc.ConversionModel(second).fit(**kw)
    assert reused.timing["compile_cached"] and not fresh.timing["compile_cached"]
    np.testing.assert_array_equal(reused.eventual_rate().values, fresh.eventual_rate().values)
    assert list(reused.eventual_rate().coords["cohort"].values) == list("UVWXYZ")


def test_rossi_eventual_rate_is_flagged_weakly_identified():
    # 52 weeks of follow-up barely reach into the re-arrest lag: the eventual rate is mostly
    # extrapolation, and the fit says so
    data = bc.prepare(bc.datasets.load_rossi(), duration="week", event="arrest", cohort="fin",
                      time_unit="W")
    with pytest.warns(bc.IdentificationWarning, match="weakly identified for 2 cohort"):
        result = bc.ConversionModel(data).fit(draws=300, tune=500, chains=2, random_seed=1,
                                              progressbar=False)
    assert result.summary()["weakly_identified"].all()


def test_convergence_warnings_name_the_fit():
    """Warnings from several fits (e.g. a lag-family comparison) say which fit they are about."""
    ev = bc.simulate(n_units=[200, 200], eventual_rate=[0.4, 0.5], lag_loc=5.0, lag_shape=2.0,
                     enrollment=20, followup=20, random_seed=2, resolution="D")
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    with pytest.warns(bc.ConvergenceWarning) as caught:
        bc.ConversionModel(data, lag="weibull").fit(draws=10, tune=10, chains=2, random_seed=1,
                                                    progressbar=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, bc.ConvergenceWarning)]
    assert messages and all(m.startswith("weibull lag, no pooling: ") for m in messages)


def test_identification_message_never_rounds_onto_its_bound():
    """0.746 against the 75% bound reads "74.6%", not "75% ... (< 75%)"."""
    import pandas as pd

    from bayesconv.posterior.diagnostics import beyond
    from bayesconv.posterior.identification import warn_weak_identification

    table = pd.DataFrame({"followup_share": [0.746], "rate_hdi_width": [0.3004],
                          "weakly_identified": [True]}, index=["A"])
    with pytest.warns(bc.IdentificationWarning) as caught:
        warn_weak_identification(table)
    text = str(caught[0].message)
    assert "reaches only 74.6% of the lag distribution (< 75%)" in text
    assert "its 94% HDI is 0.3004 wide (> 0.3)" in text
    assert beyond(1.0101, 1.01) == "1.0101" and beyond(0.5, 0.75, percent=True) == "50%"
