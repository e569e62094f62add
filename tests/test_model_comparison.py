"""PSIS-LOO model comparison on counted rows (bayesconv.comparison)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fabricate

import bayesconv as bc
from bayesconv.data import ConversionData
from bayesconv.posterior.comparison import loo, row_loo

TRUE_C = np.array([0.3, 0.6])
TRUE_LOC = np.array([5.0, 10.0])   # gamma mean lag, days
TRUE_K = np.array([2.0, 1.2])


@pytest.fixture(scope="module")
def events():
    # timestamps floored to days: many identical units per row
    return bc.simulate(n_units=[400, 400], eventual_rate=TRUE_C, lag_loc=TRUE_LOC,
                       lag_shape=TRUE_K, random_seed=3, enrollment=20, followup=25,
                       resolution="D")


@pytest.fixture(scope="module")
def data(events):
    return bc.prepare(events, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")


def _fabricate(model, chains=2, draws=200, seed=0, noise=0.05):
    return fabricate(model, TRUE_C, TRUE_LOC, TRUE_K, chains=chains, draws=draws, seed=seed,
                     rate_sd=noise / 2.5, loc_sd=noise, shape_sd=noise)


def _expanded(data: ConversionData) -> ConversionData:
    """The same data with one row per unit (count 1 everywhere)."""
    rep = data.count
    return ConversionData(
        cohort=np.repeat(data.cohort, rep), duration=np.repeat(data.duration, rep),
        lower=np.repeat(data.lower, rep), converted=np.repeat(data.converted, rep),
        count=np.ones(rep.sum(), dtype=np.int64), cohorts=data.cohorts,
        time_unit=data.time_unit, observed_until=data.observed_until,
        cohort_name=data.cohort_name, followup=data.followup, meta=data.meta)


def test_prepare_with_a_count_column_gives_the_same_rows(events, data):
    table = (events.assign(n=1).groupby(["cohort", "created", "converted", "observed_until"],
                                        observed=True, dropna=False)["n"].sum().reset_index())
    assert len(table) < len(events)
    counted = bc.prepare(table, created="created", converted="converted",
                         observed_until="observed_until", cohort="cohort", count="n")
    for field in ("cohort", "duration", "lower", "converted", "count"):
        np.testing.assert_array_equal(getattr(counted, field), getattr(data, field))
    assert data.count.max() > 1 and data.n_rows < data.n_units


@pytest.mark.filterwarnings("ignore::bayesconv.ParetoKWarning")
def test_count_weighted_loo_equals_the_expanded_data(data):
    import arviz_stats as azs

    expanded = _expanded(data)
    assert expanded.n_rows == data.n_units
    m_agg, m_exp = bc.ConversionModel(data), bc.ConversionModel(expanded)
    assert m_agg.spec.time_scale == m_exp.spec.time_scale
    res = {}
    for lag, seed in (("gamma", 0), ("weibull", 1)):
        res[lag] = (_fabricate(bc.ConversionModel(data, lag=lag), seed=seed),
                    _fabricate(bc.ConversionModel(expanded, lag=lag), seed=seed))
    for agg, exp in res.values():
        ours = loo(agg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ref = azs.loo(exp.idata, pointwise=True)
        np.testing.assert_allclose(ours["elpd_loo"], ref.elpd, rtol=1e-8)
        np.testing.assert_allclose(ours["se"], ref.se, rtol=1e-8)
        np.testing.assert_allclose(ours["p_loo"], ref.p, rtol=1e-8)
        assert ours["n_units"] == ref.n_data_points == data.n_units
        assert ours["n_pareto_k_bad"] == int((ref.pareto_k.values > ref.good_k).sum())
    # pairwise: the difference and its standard error over units
    table = bc.compare_models({k: v[0] for k, v in res.items()})
    best, other = table.index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        e = {k: azs.loo(v[1].idata, pointwise=True).elpd_i.values for k, v in res.items()}
    d = e[best] - e[other]
    n = len(d)
    np.testing.assert_allclose(table.loc[other, "elpd_diff"], d.sum(), rtol=1e-8)
    np.testing.assert_allclose(table.loc[other, "dse"], np.sqrt(n * np.var(d, ddof=1)),
                               rtol=1e-8)
    # ArviZ's compare on the expanded data: same difference, dse with ddof=0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = azs.compare({k: azs.loo(v[1].idata, pointwise=True) for k, v in res.items()},
                          round_to="none")
    np.testing.assert_allclose(abs(ref.loc[other, "elpd_diff"]), d.sum(), rtol=1e-8)
    np.testing.assert_allclose(ref.loc[other, "dse"] * np.sqrt(n / (n - 1)),
                               table.loc[other, "dse"], rtol=1e-8)


@pytest.mark.filterwarnings("ignore::bayesconv.ParetoKWarning")
def test_table_layout(data):
    r1 = _fabricate(bc.ConversionModel(data), seed=0)
    r2 = _fabricate(bc.ConversionModel(data, lag="weibull"), seed=1)
    table = bc.compare_models({"gamma": r1, "weibull": r2})
    assert list(table.columns) == ["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse",
                                   "weight", "n_pareto_k_bad", "max_pareto_k", "n_units",
                                   "good_k"]
    assert table.index.name == "model" and list(table["rank"]) == [0, 1]
    assert table["elpd_loo"].is_monotonic_decreasing
    assert table["elpd_diff"].iloc[0] == 0 and table["dse"].iloc[0] == 0
    assert (table["elpd_diff"] >= 0).all()
    np.testing.assert_allclose(table["weight"].sum(), 1.0, atol=1e-6)
    assert table["good_k"].iloc[0] == pytest.approx(min(1 - 1 / np.log10(400), 0.7))
    rows = row_loo(r1)
    assert len(rows) == data.n_rows and rows["count"].sum() == data.n_units


def test_bad_pareto_k_warns_naming_the_model(data):
    # a posterior far wider than the data allow: leaving a unit out moves it a lot
    wild = _fabricate(bc.ConversionModel(data, lag="weibull"), seed=1, noise=1.5, draws=50)
    good = _fabricate(bc.ConversionModel(data), seed=0, draws=50)
    with pytest.warns(bc.ParetoKWarning, match="'wild'"):
        table = bc.compare_models({"good": good, "wild": wild})
    assert table.loc["wild", "n_pareto_k_bad"] > 0
    assert issubclass(bc.ParetoKWarning, UserWarning)


def test_results_fitted_to_different_data_are_refused(events, data):
    r1 = _fabricate(bc.ConversionModel(data))
    other = bc.prepare(events.iloc[:-5], created="created", converted="converted",
                       observed_until="observed_until", cohort="cohort")
    r2 = _fabricate(bc.ConversionModel(other))
    with pytest.raises(ValueError, match="not fitted to the same data"):
        bc.compare_models({"a": r1, "b": r2})
    # same rows, different counts
    bumped = ConversionData(cohort=data.cohort.copy(), duration=data.duration.copy(),
                            lower=data.lower.copy(), converted=data.converted.copy(),
                            count=data.count + 1, cohorts=data.cohorts,
                            time_unit=data.time_unit)
    r3 = _fabricate(bc.ConversionModel(bumped))
    with pytest.raises(ValueError, match="units"):
        bc.compare_models({"a": r1, "b": r3})
    with pytest.raises(ValueError, match="at least two"):
        bc.compare_models({"a": r1})


def _quiet_fit(model, **kw):
    with warnings.catch_warnings():
        # short chains (ESS, R-hat slightly off) do not change a decisive ranking
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        return model.fit(progressbar=False, **kw)


@pytest.mark.slow
def test_gamma_truth_beats_weibull():
    ev = bc.simulate(n_units=4000, eventual_rate=0.5, lag_loc=10.0, lag_shape=4.0,
                     enrollment=60, followup=40, random_seed=4)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until")
    fits = {lag: _quiet_fit(bc.ConversionModel(data, lag=lag), draws=300, chains=2,
                            random_seed=1) for lag in ("weibull", "gamma")}
    table = bc.compare_models(fits)
    assert table.index[0] == "gamma", table
    assert table.loc["weibull", "elpd_diff"] > 2 * table.loc["weibull", "dse"], table
    assert (table["n_pareto_k_bad"] == 0).all()


@pytest.mark.slow
def test_marriage_gamma_beats_weibull_decisively():
    from bayesconv.examples import marriage_data, marriage_lag_comparison

    data = marriage_data()
    assert data.time_unit == "Y" and list(data.cohorts) == ["Female", "Male"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        run = marriage_lag_comparison(["weibull", "gamma"], draws=300, chains=2, data=data)
    table = run["table"]
    assert isinstance(table, pd.DataFrame)
    assert table.index[0] == "gamma", table
    assert table.loc["weibull", "elpd_diff"] > 4 * table.loc["weibull", "dse"], table
    assert table.loc["weibull", "elpd_diff"] > 100, table


@pytest.mark.slow
@pytest.mark.skipif("gengamma" not in bc.LAG_FAMILIES, reason="no generalized gamma lag")
def test_marriage_generalized_gamma_beats_gamma():
    from bayesconv.examples import marriage_lag_comparison

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        # with 600 draws a few dozen units have k above 0.64 (none at 4 x 1000 draws)
        warnings.simplefilter("ignore", bc.ParetoKWarning)
        table = marriage_lag_comparison(["gamma", "gengamma"], draws=300, chains=2)["table"]
    assert table.index[0] == "gengamma", table
    assert table.loc["gamma", "elpd_diff"] > 4 * table.loc["gamma", "dse"], table
