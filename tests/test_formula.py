"""Formulas on the model's parameters (issue 14): cell tables, designs, the model's structure and
likelihood, bad input, and the readouts, curves and predictions computed from per-cell draws.

No sampling here: structure and likelihood are evaluated with the Python linker (``py_mode``),
post-processing runs on posteriors drawn from the model's own prior (every coefficient,
deterministic and per-cell parameter consistent with the formula, so identities such as "the
overall readout is the unit-weighted average of the segment readouts" can be checked exactly).
Seeded fits are in ``test_recovery.py`` (slow) and ``validation/``.
"""

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

import bayesconv as bc
from bayesconv.model.formula import build_design, parse_formula
from bayesconv.model.spec import ModelSpec
from bayesconv.posterior.result import ConversionResult

PLATFORMS = ["ios", "android", "web"]


def _cells(n=300, weeks=4, lift_on="ios", platforms=PLATFORMS):
    rows = []
    for arm in ["A", "B"]:
        for i, plat in enumerate(platforms):
            for week in range(weeks):
                rate = (0.3 - 0.05 * i) * (1.4 if arm == "B" and plat == lift_on else 1.0)
                rows.append({"cohort": arm, "platform": plat, "period": week,
                             "n_units": n + 37 * i, "eventual_rate": rate, "lag_loc": 6.0,
                             "lag_shape": 1.5})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def events():
    ev = bc.simulate(cells=_cells(), enrollment=28, followup=30, period_length=7,
                     random_seed=5, resolution="D")
    ev["week"] = ev.pop("period")
    return ev


@pytest.fixture(scope="module")
def data(events):
    return bc.prepare(events, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort",
                      covariates=["platform", "week"])


FORMULA = {"eventual_rate": "cohort + (cohort | platform) + rw(week)",
           "lag_loc": "cohort + (1 | platform)"}


def _prior_result(model, py_mode, draws=120, seed=0) -> ConversionResult:
    """A result whose 'posterior' is a draw from the model's prior (no sampling, no compile)."""
    with warnings.catch_warnings():  # "the effect of Potentials is ignored": that is the point
        warnings.simplefilter("ignore", UserWarning)
        idata = pm.sample_prior_predictive(draws, model=model.pymc_model, random_seed=seed,
                                           compile_kwargs={"mode": py_mode})
    post = idata["prior"].to_dataset()
    post = post.assign_coords(chain=[0, 1][: post.sizes["chain"]])
    return ConversionResult.from_fit(model, xr.DataTree.from_dict({"posterior": post}),
                                     sampler="prior", timing={}, random_seed=None)


# ---------------------------------------------------------------- cell table and designs
def test_cell_table_has_one_row_per_combination_with_its_units(events, data):
    assert list(data.cells.columns) == ["cohort", "platform", "week"]
    assert data.n_cells == 2 * 3 * 4
    # categorical order of the events is kept, periods stay numbers (for rw)
    assert list(data.cells["platform"].cat.categories) == sorted(PLATFORMS)
    assert pd.api.types.is_integer_dtype(data.cells["week"])
    units = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    expected = events.groupby(["cohort", "platform", "week"], observed=True).size()
    got = pd.Series(units, index=pd.MultiIndex.from_frame(data.cells.astype(str).assign(
        week=data.cells["week"])))
    for key, n in expected.items():
        assert got[(str(key[0]), str(key[1]), key[2])] == n
    assert data.n_units == len(events)  # nothing dropped


def test_design_matrices_of_fixed_group_and_walk_terms(data):
    w = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    d = build_design("eventual_rate", FORMULA["eventual_rate"], data.cells, w)
    is_b = (data.cells["cohort"] == "B").to_numpy(float)
    assert d.intercept and d.X.shape == (data.n_cells, 1)
    np.testing.assert_array_equal(d.X[:, 0], is_b)
    assert [g.name for g in d.groups] == ["1|platform", "cohort|platform"]
    levels = list(d.groups[0].levels)
    onehot = (data.cells["platform"].astype(str).to_numpy()[:, None]
              == np.array(levels)[None, :]).astype(float)
    np.testing.assert_array_equal(d.groups[0].Z, onehot)
    np.testing.assert_array_equal(d.groups[1].Z, onehot * is_b[:, None])
    assert d.walks[0].levels == (0, 1, 2, 3)
    np.testing.assert_array_equal(d.walks[0].index, data.cells["week"].to_numpy())


def test_interactions_and_standardised_numeric_covariates(data):
    w = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    d = build_design("eventual_rate", "cohort * platform", data.cells, w)
    assert d.X.shape[1] == 1 + 2 + 2
    d = build_design("lag_loc", "week", data.cells, w)
    x = d.X[:, 0]
    # centred and scaled by the unit-weighted sd: a coefficient per sd, in any unit
    assert np.average(x, weights=w) == pytest.approx(0.0, abs=1e-12)
    assert np.sqrt(np.average(x**2, weights=w)) == pytest.approx(1.0)
    assert parse_formula("0 + cohort + rw(week)") == ("0 + cohort", ["week"])
    assert parse_formula("rw(week)") == ("1", ["week"])


# ---------------------------------------------------------------- model structure
def test_no_formula_is_todays_model(data):
    """No covariates in a formula means no formula code path: the same variables as before."""
    one = bc.prepare(bc.simulate(n_units=[200, 250], eventual_rate=[0.3, 0.35], lag_loc=5.0,
                                 lag_shape=1.5, random_seed=1),
                     created="created", converted="converted",
                     observed_until="observed_until", cohort="cohort")
    m = bc.ConversionModel(one)
    names = sorted(v.name for v in m.pymc_model.free_RVs)
    # two cohorts without pooling: independent eventual rates (sampled sheared along the
    # lags, logit_rate_raw), lags tied by a learned mean
    assert names == ["log_lag_loc", "log_lag_shape", "logit_rate_raw", "mu_log_lag_loc",
                     "mu_log_lag_shape"]
    assert m.shears
    assert not any(v.name.endswith("_cell") for v in m.pymc_model.deterministics)


def _potential(model, point, py_mode):
    pm_model = model.pymc_model
    [pot] = pm_model.replace_rvs_by_values([pm_model.potentials[0]])
    fn = pm_model.compile_fn(pot, inputs=pm_model.value_vars, mode=py_mode,
                             on_unused_input="ignore")
    names = {v.name for v in pm_model.value_vars}
    return float(fn({k: v for k, v in point.items() if k in names}))


def _random_point(model, seed=0):
    rng = np.random.default_rng(seed)
    return {v.name: rng.normal(0, 0.3, size=model.pymc_model.initial_point()[v.name].shape)
            for v in model.pymc_model.value_vars}


def test_cells_that_share_parameters_are_merged(data, events, py_mode):
    """Covariates that no formula uses cost nothing: cells with equal parameters by
    construction become one class and their rows one row; the log-likelihood is unchanged
    (the same as the coarse data's, and as the sum over the data's own rows)."""
    coarse = bc.prepare(events, created="created", converted="converted",
                        observed_until="observed_until", cohort="cohort")
    plain, fine = bc.ConversionModel(coarse), bc.ConversionModel(data)
    assert fine.cell_class is not None and len(np.unique(fine.cell_class)) == 2
    assert fine.rows.n_cells == 2 and len(fine.rows.count) == coarse.n_rows
    assert fine.rows.count.sum() == data.n_units
    point = _random_point(plain)
    assert _potential(fine, point, py_mode) == pytest.approx(_potential(plain, point, py_mode),
                                                             rel=1e-12)
    # a formula on the platform only: weeks merged, platforms kept
    m = bc.ConversionModel(data, formula={"eventual_rate": "cohort + (1 | platform)"})
    assert len(np.unique(m.cell_class)) == 6 and m.rows.n_cells == 6
    assert len(m.rows.count) < data.n_rows
    unmerged = bc.ConversionModel(data, formula={"eventual_rate": "cohort + (1 | platform)",
                                                 "lag_loc": "cohort + rw(week)"})
    assert unmerged.cell_class is None and len(unmerged.rows.count) == data.n_rows
    point = _random_point(unmerged, seed=3)
    point["log_lag_loc_rw_sd_week_log__"] = np.float64(-30.0)   # walk ≈ 0: the lag per arm
    for k in [k for k in point if k.startswith("log_lag_loc_rw_week_step")]:
        point[k] = np.zeros_like(point[k])
    point["log_lag_loc"] = np.r_[point["log_lag_loc_intercept"],
                                 point["log_lag_loc_intercept"] + point["log_lag_loc_beta"]]
    point["mu_log_lag_loc"] = np.float64(0.0)   # the tied lags' mean: not in the potential
    assert _potential(m, point, py_mode) == pytest.approx(_potential(unmerged, point, py_mode),
                                                          rel=1e-9)


def test_formula_model_variables(data):
    m = bc.ConversionModel(data, formula=FORMULA)
    free = {v.name for v in m.pymc_model.free_RVs}
    for name in ("logit_rate_intercept", "logit_rate_beta", "logit_rate_sd_1_by_platform",
                 "logit_rate_sd_cohort_by_platform", "logit_rate_rw_sd_week",
                 "log_lag_loc_intercept", "log_lag_loc_beta", "log_lag_loc_sd_1_by_platform",
                 "log_lag_shape"):
        assert name in free, name
    det = {v.name: v for v in m.pymc_model.deterministics}
    assert {"eventual_rate_cell", "lag_loc_cell", "logit_rate_rw_week"} <= set(det)
    assert m.pymc_model.coords["cell"] is not None
    assert len(m.pymc_model.coords["week"]) == 4
    # the formula is part of the spec (saved and reloaded with it)
    assert ModelSpec.from_dict(m.spec.to_dict()).formula == FORMULA


def test_likelihood_with_formula_matches_scipy(events, py_mode):
    """The potential is Σ count·[converted: log c f(t); censored: log(1 − c F(t))] with c and
    the gamma's mean from the linear predictors (scipy's gamma as the reference). Times read as
    exact: the reading of day-floored times is checked against quadrature in
    tests/test_likelihood.py, and it is the same code whatever the design."""
    data = bc.prepare(events, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort",
                      covariates=["platform", "week"], resolution=None)
    m = bc.ConversionModel(data, formula={"eventual_rate": "cohort + (1 | platform) + rw(week)",
                                          "lag_loc": "cohort"})
    model = m.pymc_model
    rng = np.random.default_rng(0)
    point = {v.name: rng.normal(0, 0.3, size=model.initial_point()[v.name].shape)
             for v in model.value_vars}
    point["log_lag_loc_intercept"] = np.float64(np.log(5.0 / m.spec.time_scale))
    [pot] = model.replace_rvs_by_values([model.potentials[0]])
    fn = model.compile_fn(pot, inputs=model.value_vars, mode=py_mode, on_unused_input="ignore")
    got = float(fn(point))
    # the same by hand
    w = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    dr = build_design("eventual_rate", "cohort + (1 | platform) + rw(week)", data.cells, w)
    dl = build_design("lag_loc", "cohort", data.cells, w)
    sd = np.exp(point["logit_rate_sd_1_by_platform_log__"])
    # each level's sampled value is the effect where centred, effect / sd where not
    centring = m.centring()
    # a group term of 3 levels sums to zero (the intercept carries its mean): its raw value
    # is the n − 1 unconstrained coordinates of PyMC's zero-sum transform, extended here as
    # pymc.distributions.transforms.ZeroSumTransform.extend_axis does
    assert m.zero_sum_terms == ("logit_rate:1|platform",)
    y = point["logit_rate_1_by_platform_raw_zerosum__"]
    n = y.size + 1
    norm = y.sum() / (np.sqrt(n) + n)
    raw = np.r_[y, norm - y.sum() / np.sqrt(n)] - norm
    np.testing.assert_allclose(raw.sum(), 0.0, atol=1e-12)
    w = centring["logit_rate_1_by_platform"]
    b = np.where(w == 1, raw, sd * raw)
    walk_sd = np.exp(point["logit_rate_rw_sd_week_log__"])
    raw, w = point["logit_rate_rw_week_step_raw"], centring["logit_rate_rw_week_step"]
    steps = np.where(w == 1, raw, walk_sd * raw)
    walk = np.r_[0.0, np.cumsum(steps)]
    eta = (point["logit_rate_intercept"] + dr.X @ point["logit_rate_beta"]
           + dr.groups[0].Z @ b + walk[dr.walks[0].index])
    c = expit(eta)[data.cell]
    mean = (np.exp(point["log_lag_loc_intercept"] + dl.X @ point["log_lag_loc_beta"])
            * m.spec.time_scale)[data.cell]
    k = np.exp(point["log_lag_shape"])[data.cell_cohort[data.cell]]  # per arm (no formula)
    f = stats.gamma(k, scale=mean / k)
    # a conversion recorded at duration 0 is interval-censored in (0, zero_width]
    # (bayesconv.model.likelihood)
    t = np.where(data.converted & (data.duration == 0), m.spec.zero_width, data.duration)
    exact = data.converted & (data.lower == data.duration) & (data.duration > 0)
    interval = data.converted & ~exact
    # densities are on the model's time scale (durations / time_scale): log f differs from
    # the data's unit by the constant −log(time_scale) per exact conversion
    ll = np.where(exact, np.log(c) + f.logpdf(t) + np.log(m.spec.time_scale), 0.0)
    with np.errstate(divide="ignore"):
        ll = np.where(interval, np.log(c * (f.cdf(t) - f.cdf(data.lower))), ll)
    ll = np.where(~data.converted, np.log1p(-c * f.cdf(t)), ll)
    assert got == pytest.approx(float(np.sum(data.count * ll)), rel=1e-9)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("formula, match", [
    ({"eventual_rate": "cohort + (1 | country)"}, r"\['country'\].*not columns of the data"),
    ({"eventual_rate": "cohort + channel"}, r"\['channel'\].*not columns of the data"),
    ({"eventual_rate": "cohort + rw(month)"}, r"rw\(month\).*'month'.*not columns"),
    # every missing column at once, not only the first formulae stumbles on
    ({"eventual_rate": "cohort + channel + (1 | country) + rw(month)"},
     r"\['channel', 'country', 'month'\], which are not columns of the data"),
    ({"eventual_rate": "cohort +"}, r"ends where a term is expected.*Wilkinson formulas"),
    ({"eventual_rate": "cohort + week)"}, r"unbalanced parentheses"),
    ({"eventual_rate": "cohort + rw(platform)"}, r"rw\(platform\).*unordered"),
    ({"lag_q": "cohort"}, r"'lag_q' is not a parameter of the gamma lag"),
    ({"eventual_rate": "cohort + (1 |"}, r"cannot parse the formula"),
])
def test_bad_formulas_name_the_term_and_column(data, formula, match):
    with pytest.raises(ValueError, match=match):
        bc.ConversionModel(data, formula=formula)


def test_lag_shape_formula_refused_for_the_exponential(data):
    with pytest.raises(ValueError, match=r"'lag_shape' is not a parameter of the exponential"):
        bc.ConversionModel(data, lag="exponential", formula={"lag_shape": "cohort"})


def test_group_term_with_one_level_is_refused(events):
    one = events[events["platform"] == "ios"]
    d = bc.prepare(one, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort", covariates=["platform"])
    with pytest.raises(ValueError, match=r"\(1\|platform\) has one level \('ios' of column "
                                         r"'platform'\)"):
        bc.ConversionModel(d, formula={"eventual_rate": "cohort + (1 | platform)"})


def test_walk_over_text_column_is_refused(events):
    ev = events.assign(month=events["week"].map({0: "jan", 1: "feb", 2: "mar", 3: "apr"}))
    d = bc.prepare(ev, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort", covariates=["month"])
    with pytest.raises(ValueError, match=r"rw\(month\).*unordered categorical"):
        bc.ConversionModel(d, formula={"eventual_rate": "cohort + rw(month)"})
    # an ordered categorical is a period order
    ev["month"] = pd.Categorical(ev["month"], ["jan", "feb", "mar", "apr"], ordered=True)
    d = bc.prepare(ev, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort", covariates=["month"])
    m = bc.ConversionModel(d, formula={"eventual_rate": "cohort + rw(month)"})
    assert list(m.pymc_model.coords["month"]) == ["jan", "feb", "mar", "apr"]


def test_missing_covariate_values_are_refused_naming_rows(events):
    ev = events.copy()
    ev.loc[[3, 17], "platform"] = None
    with pytest.raises(ValueError, match=r"missing values in covariate column 'platform'.*2 rows: row 3 "
                                         r"\(platform=None\); row 17"):
        bc.prepare(ev, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort", covariates=["platform"])


def test_unknown_covariate_column_is_refused(events):
    with pytest.raises(ValueError, match=r"'channel'"):
        bc.prepare(events, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort", covariates=["channel"])


def test_many_cells_warns_with_the_count(events):
    ev = events.assign(score=np.random.default_rng(0).normal(size=len(events)))
    with pytest.warns(bc.DataWarning, match=r"cells") as rec:
        bc.prepare(ev, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort", covariates=["score"])
    assert any(str(len(ev)) in str(w.message) or "bin" in str(w.message) for w in rec)


# ---------------------------------------------------------------- post-processing
@pytest.fixture(scope="module")
def prior_res(data, py_mode):
    return _prior_result(bc.ConversionModel(data, formula=FORMULA), py_mode)


def test_per_level_quantities_are_unit_weighted_cell_averages(prior_res, data):
    units = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    cell_rate = prior_res.posterior["eventual_rate_cell"].values
    by_platform = prior_res.eventual_rate(by="platform")
    for level in by_platform["platform"].values:
        m = (data.cells["platform"].astype(str) == level).to_numpy()
        expected = (cell_rate[..., m] * units[m]).sum(-1) / units[m].sum()
        np.testing.assert_allclose(by_platform.sel(platform=level).values, expected)
    # per arm: the arm's own observed mix
    arm = prior_res.eventual_rate()
    m = (data.cells["cohort"] == "B").to_numpy()
    np.testing.assert_allclose(arm.sel(cohort="B").values,
                               (cell_rate[..., m] * units[m]).sum(-1) / units[m].sum())
    curves = prior_res.curves([7.0, 30.0], by=["cohort", "platform"])
    assert curves.sizes["cohort×platform"] == 6


def test_overall_readout_is_weighted_average_of_segment_readouts(prior_res, data):
    """Linear metrics (differences of rates) average exactly, draw by draw: overall effect =
    Σ_p W_p · effect_p with W_p the platform's share of the compared arms' units."""
    ro = bc.compare(prior_res, "B", "A", horizon=14, by="platform")
    assert ro.by == "platform" and set(ro.segments) == set(PLATFORMS)
    units = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    share = pd.Series(units).groupby(data.cells["platform"].astype(str).to_numpy()).sum()
    share = share / share.sum()
    for metric in ("eventual", "by_horizon"):
        overall = ro.draws["diff"].sel(metric=metric, treatment="B").values
        avg = sum(share[p] * ro.segments[p].draws["diff"].sel(metric=metric, treatment="B")
                  .values for p in PLATFORMS)
        np.testing.assert_allclose(overall, avg, rtol=1e-10, atol=1e-12)
    frame = ro.to_frame()
    assert "platform" in frame.columns
    assert frame["platform"].isna().any() and set(frame["platform"].dropna()) == set(PLATFORMS)
    assert "median_lag" in set(frame["metric"])
    text = str(ro)
    assert "platform" in text and "3 segments" in text


def test_segment_readout_uses_counterfactual_cells(prior_res, data):
    """A segment's B-vs-A readout compares both arms on the segment's pooled week mix, from the
    formula's coefficients: on draws it equals the predict() of the same rows."""
    ro = bc.compare(prior_res, "B", "A", by="platform")
    cells = data.cells
    units = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    ios = cells["platform"] == "ios"
    weeks = pd.Series(units[ios.to_numpy()]).groupby(cells.loc[ios, "week"].to_numpy()).sum()
    rows = pd.DataFrame({"platform": "ios", "week": weeks.index})
    p_b = prior_res.predict(rows.assign(cohort="B"), [1e9]).isel(t=0).values
    p_a = prior_res.predict(rows.assign(cohort="A"), [1e9]).isel(t=0).values
    wts = weeks.to_numpy() / weeks.sum()
    np.testing.assert_allclose(ro.segments["ios"].draws["diff"].sel(metric="eventual",
                                                                    treatment="B").values,
                               (p_b - p_a) @ wts, rtol=1e-8)


def test_predict_matches_the_cell_parameters(prior_res, data):
    """predict() on an observed cell gives that cell's c·F(t), F the gamma with the cell's
    draws (scipy reference)."""
    i = 5
    row = data.cells.iloc[[i]].astype({"cohort": str, "platform": str})
    got = prior_res.predict(row, [7.0, 30.0]).isel(row=0).values
    c = prior_res.posterior["eventual_rate_cell"].values[..., i]
    mean = prior_res.posterior["lag_loc_cell"].values[..., i]
    k = prior_res.posterior["lag_shape"].values[..., 0]
    for j, t in enumerate([7.0, 30.0]):
        np.testing.assert_allclose(got[..., j], c * stats.gamma.cdf(t, k, scale=mean / k),
                                   rtol=1e-8)


def test_predict_refuses_unknown_levels(prior_res):
    with pytest.raises(ValueError, match=r"periods \['9'\]"):
        prior_res.predict(pd.DataFrame({"cohort": ["A"], "platform": ["ios"], "week": [9]}),
                          [7.0])
    with pytest.raises(ValueError, match=r"cohort column 'cohort'"):
        prior_res.predict(pd.DataFrame({"platform": ["ios"], "week": [1]}), [7.0])


def test_predict_refuses_missing_covariates_naming_the_rows(prior_res):
    rows = pd.DataFrame({"cohort": ["A", "B", "A"], "platform": ["ios", None, "web"],
                         "week": [1, 2, 3]}, index=[10, 11, 12])
    with pytest.raises(ValueError, match=r"'platform' has missing values in 1 rows \(index "
                                         r"\[11\]\)"):
        prior_res.predict(rows, [7.0])
    with pytest.raises(ValueError, match=r"cohort column 'cohort' has missing values in 1 rows "
                                         r"\(index \[12\]\)"):
        prior_res.predict(rows.assign(platform="ios", cohort=["A", "B", None]), [7.0])
    with pytest.raises(ValueError, match=r"uses the columns \['platform', 'week'\], which the "
                                         r"rows do not have"):
        prior_res.predict(pd.DataFrame({"cohort": ["A"]}), [7.0])


def test_predict_takes_numbers_given_as_text_and_refuses_non_numbers(prior_res):
    """"1" for a numeric period column is the period 1 (it used to be an unknown period)."""
    as_int = prior_res.predict(pd.DataFrame({"cohort": ["A"], "platform": ["ios"],
                                             "week": [1]}), [7.0])
    as_text = prior_res.predict(pd.DataFrame({"cohort": ["A"], "platform": ["ios"],
                                              "week": ["1"]}), [7.0])
    xr.testing.assert_identical(as_int, as_text)
    with pytest.raises(ValueError, match=r"'week' is int64 in the data, but rows \(index, "
                                         r"value\) \[\(0, 'one'\)\] are not"):
        prior_res.predict(pd.DataFrame({"cohort": ["A"], "platform": ["ios"],
                                        "week": ["one"]}), [7.0])


@pytest.mark.parametrize("call", [
    lambda r: bc.compare(r, "B", "A", by="country"),
    lambda r: r.curves([7.0], by="country"),
    lambda r: r.summary(by="country"),
    lambda r: r.nowcast(by="country"),
    lambda r: bc.kaplan_meier(r.data, by="country"),
    lambda r: r.calibration_table(by="country"),
])
def test_by_unknown_column_is_refused(prior_res, call):
    with pytest.raises(ValueError, match=r"country.*(not a column|not among)"):
        call(prior_res)


def test_summary_nowcast_calibration_and_km_by_factor(prior_res, data):
    s = prior_res.summary(by="platform")
    assert set(s.index.astype(str)) == set(PLATFORMS) or set(s.iloc[:, 0].astype(str)) == \
        set(PLATFORMS)
    assert s["units"].sum() == data.n_units
    now = prior_res.nowcast(by="platform")
    assert len(now) == 3
    cal = prior_res.calibration_table(bands=3, by="platform", random_seed=0)
    assert set(cal["platform"]) == set(PLATFORMS)
    assert cal.groupby("platform")["units"].sum().sum() == data.n_units
    km = bc.kaplan_meier(data, by=["cohort", "platform"])
    assert set(map(tuple, km[["cohort", "platform"]].astype(str).drop_duplicates().values)) \
        == {(a, p) for a in "AB" for p in PLATFORMS}


def test_prior_curves_work_for_a_formula(data):
    ax = bc.plot_prior_curves(bc.ConversionModel(data, formula=FORMULA), t_max=60,
                              random_seed=0)
    assert len(ax.lines) > 0


def test_save_and_load_keep_the_formula(prior_res, tmp_path):
    prior_res.save(tmp_path / "r.zarr")
    back = bc.load(tmp_path / "r.zarr")
    assert back.spec.formula == FORMULA
    new = pd.DataFrame({"cohort": ["B"], "platform": ["web"], "week": [2]})
    xr.testing.assert_allclose(back.predict(new, [14.0]), prior_res.predict(new, [14.0]))
    a = bc.compare(back, "B", "A", by="platform").to_frame()
    b = bc.compare(prior_res, "B", "A", by="platform").to_frame()
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.filterwarnings("ignore::bayesconv.ParetoKWarning", "ignore::RuntimeWarning")
def test_compare_models_across_formulas(prior_res, data, events, py_mode):
    """LOO across formulas fitted to the same prepared data (a formula model against the
    one-factor model on the cell rows): both rows of the table count every unit. Data prepared
    otherwise are refused, naming the difference: without the covariates (other rows), or with
    them in another order (other cells)."""
    plain = _prior_result(bc.ConversionModel(data), py_mode)
    table = bc.compare_models({"formula": prior_res, "plain": plain})
    assert set(table.index) == {"formula", "plain"}
    assert (table["n_units"] == data.n_units).all()
    kw = dict(created="created", converted="converted", observed_until="observed_until",
              cohort="cohort")
    coarse = _prior_result(bc.ConversionModel(bc.prepare(events, **kw)), py_mode)
    with pytest.raises(ValueError, match="aggregated rows"):
        bc.compare_models({"formula": prior_res, "one factor": coarse})
    swapped = bc.prepare(events, **kw, covariates=["week", "platform"])
    assert swapped.n_rows == data.n_rows
    other = _prior_result(bc.ConversionModel(swapped), py_mode)
    with pytest.raises(ValueError, match="cell differs"):
        bc.compare_models({"formula": prior_res, "swapped": other})


def test_formula_models_describe_their_formulas_not_a_pooling(data):
    """Warnings, reprs and the report name the formulas; "none pooling" said nothing true."""
    m = bc.ConversionModel(data, formula=FORMULA)
    text = m.spec.describe()
    assert text == ("gamma lag; eventual_rate ~ cohort + (cohort | platform) + rw(week); "
                    "lag_loc ~ cohort + (1 | platform); lag_shape: one per cohort")
    assert text in repr(m)
    g = bc.ConversionModel(data, lag="gengamma", formula={"lag_loc": "cohort"}, pooling="none")
    assert g.spec.describe() == ("gengamma lag; lag_loc ~ cohort; eventual_rate: no pooling "
                                 "over cohorts; lag_shape: one per cohort; lag_q: one for all "
                                 "cohorts")
    assert bc.ConversionModel(data, pooling="none").spec.describe() == "gamma lag, no pooling"


def test_mass_matrix_is_low_rank_only_for_well_pinned_group_levels(data):
    """The ridge between the intercept and the group effects (between-platform sd over the
    platforms' standard errors) grows with the data: over 6 platforms, 2·10^4 units per cell
    make it long enough for a low-rank mass matrix; 300 do not. Over 3 platforms the effects
    sum to zero (the intercept carries their mean) where the mass matrix is diagonal; where the
    data make the ridge long the low-rank matrix follows it and the effects stay independent."""
    from bayesconv.model.design import LOW_RANK_RIDGE, choose_mass_matrix, ridge_ratio

    def model(n, platforms):
        ev = bc.simulate(cells=_cells(n=n, platforms=platforms), enrollment=28, followup=30,
                         period_length=7, random_seed=5, resolution="D")
        ev["week"] = ev.pop("period")
        return bc.ConversionModel(bc.prepare(ev, created="created", converted="converted",
                                             observed_until="observed_until", cohort="cohort",
                                             covariates=["platform", "week"]), formula=FORMULA)

    six = [*PLATFORMS, "desktop", "tv", "watch"]
    small, big = model(300, six), model(20_000, six)
    assert small.zero_sum_terms == big.zero_sum_terms == ()
    assert ridge_ratio(small.data, small.designs) < LOW_RANK_RIDGE
    assert choose_mass_matrix(small.data, small.designs) == "diag"
    assert ridge_ratio(big.data, big.designs) > LOW_RANK_RIDGE
    assert choose_mass_matrix(big.data, big.designs) == "low_rank"
    three = model(300, PLATFORMS)
    assert choose_mass_matrix(three.data, three.designs) == "diag"
    assert set(three.zero_sum_terms) == {"logit_rate:1|platform", "logit_rate:cohort|platform",
                                         "log_lag_loc:1|platform"}
    big_three = model(20_000, PLATFORMS)
    assert choose_mass_matrix(big_three.data, big_three.designs) == "low_rank"
    assert big_three.zero_sum_terms == ()
    # no group term, no ridge: the one-factor model keeps the diagonal mass matrix
    plain = bc.ConversionModel(big.data)
    assert ridge_ratio(plain.data, plain.designs) == 0.0


def test_numeric_grouping_factors_keep_their_levels_and_unknown_ones_are_listed(events):
    """A numeric column as a grouping factor (or in C()) is not standardised: its levels are
    its values (a new level used to be reported as 2.886..., the standardised 2)."""
    ev = events.assign(tier=events["platform"].map({"ios": 0, "android": 1, "web": 2}))
    d = bc.prepare(ev, created="created", converted="converted", observed_until="observed_until",
                   cohort="cohort", covariates=["tier"])
    m = bc.ConversionModel(d, formula={"eventual_rate": "cohort + (1 | tier)",
                                       "lag_loc": "cohort + C(tier)"})
    term = m.designs["eventual_rate"].groups[0]
    assert term.levels == ("0", "1", "2")
    assert "tier" not in m.designs["eventual_rate"].scaling
    assert "tier" not in m.designs["lag_loc"].scaling
    as_float = m.designs["eventual_rate"].evaluate(pd.DataFrame({"cohort": ["A"], "tier": [1.0]}))
    as_int = m.designs["eventual_rate"].evaluate(pd.DataFrame({"cohort": ["A"], "tier": [1]}))
    np.testing.assert_array_equal(as_float[1][0], as_int[1][0])
    with pytest.raises(ValueError, match=r"\(1\|tier\) has no level for rows \(index, value\) "
                                         r"\[\(0, '5'\)\]; its levels: \['0', '1', '2'\]"):
        m.designs["eventual_rate"].evaluate(pd.DataFrame({"cohort": ["A"], "tier": [5]}))


@pytest.mark.parametrize("formula, match", [
    ("cohort + log(week)", r"calls log\(\).*add the transformed column"),
    ("cohort + I(week ** 2)", r"calls I\(\)"),
    ("y ~ cohort", r"has a '~'.*no left-hand side"),
    ("", r"the formula is empty"),
])
def test_formulas_that_would_mean_something_else_are_refused(data, formula, match):
    with pytest.raises(ValueError, match=match):
        bc.ConversionModel(data, formula={"eventual_rate": formula})


def test_several_by_columns_in_nowcast_and_ppc_and_a_clear_error_in_compare(prior_res):
    """curves and summary took by=[a, b]; nowcast and the PPC plot failed with pandas errors,
    and compare with 'unhashable type: list'."""
    now = prior_res.nowcast(by=["cohort", "platform"])
    assert "A × ios" in set(now.index) and now.index.name == "cohort×platform"
    ax = prior_res.plot_ppc_km(by=["cohort", "platform"], n_draws=3, random_seed=0)
    assert any("A × ios" in t.get_text() for t in ax.get_legend().get_texts())
    with pytest.raises(ValueError, match=r"compare\(by=...\) takes one column"):
        bc.compare(prior_res, "B", "A", by=["platform", "week"])


def test_predict_keeps_the_rows_index_labels(prior_res):
    rows = pd.DataFrame({"cohort": ["A", "B"], "platform": ["ios", "web"], "week": [1, 2]},
                        index=["alice", "bob"])
    got = prior_res.predict(rows, [7.0])
    assert list(got["row"].values) == ["alice", "bob"]
    xr.testing.assert_equal(got.sel(row="bob").drop_vars("row"),
                            prior_res.predict(rows.iloc[[1]], [7.0]).isel(row=0).drop_vars("row"))


def test_summary_by_level_flags_weakly_identified_levels(prior_res):
    """A level whose eventual rate the follow-up barely reaches is flagged in summary(by=),
    as cohorts are in summary(): the same measure, per level."""
    s = prior_res.summary(by="platform")
    ident = prior_res.identification(by="platform")
    assert list(ident.index) == [str(x) for x in s.index]
    np.testing.assert_array_equal(s["followup_share"].to_numpy(),
                                  ident["followup_share"].to_numpy())
    assert s["weakly_identified"].dtype == bool
    # per cohort, the by-version is the cohort version
    pd.testing.assert_frame_equal(prior_res.identification(by="cohort").reset_index(drop=True),
                                  prior_res.identification().reset_index(drop=True))


def test_few_level_group_terms_sum_to_zero_only_where_the_fixed_part_carries_their_mean(data):
    """A group term of fewer than 6 levels sums to zero when the fixed part spans its mean
    (the intercept for (1 | g), the slope's covariate for (x | g)); a slope without its fixed
    covariate keeps independent effects, whose mean is part of the model."""
    import pymc as pm

    from bayesconv.inference.model import default_target_accept

    m = bc.ConversionModel(data, formula={"eventual_rate": "1 + (cohort | platform)"})
    assert m.zero_sum_terms == ("logit_rate:1|platform",)
    free = {v.name: v for v in m.pymc_model.free_RVs}
    assert isinstance(free["logit_rate_1_by_platform_raw"].owner.op,
                      pm.distributions.multivariate.ZeroSumNormalRV)
    assert not isinstance(free["logit_rate_cohort_by_platform_raw"].owner.op,
                          pm.distributions.multivariate.ZeroSumNormalRV)
    draws = pm.draw(m.pymc_model["logit_rate_1_by_platform"], draws=5, random_seed=1)
    np.testing.assert_allclose(draws.sum(axis=1), 0.0, atol=1e-10)
    assert np.all(np.abs(draws) > 0)
    assert default_target_accept(m.hierarchy_sizes, m.tied_sizes, m.zero_sum_terms) == 0.99
