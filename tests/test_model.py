"""Model structure without sampling: variables, coords, pooling, parametrization, priors."""

import numpy as np
import pandas as pd
import pytest

import bayesconv as bc
from bayesconv.model import choose_parametrization


@pytest.fixture(scope="module")
def sim():
    return bc.simulate(n_units=[400, 300, 30], eventual_rate=[0.3, 0.5, 0.4],
                       lag_loc=[5.0, 8.0, 6.0], lag_shape=[2.0, 1.5, 2.0], random_seed=1,
                       enrollment=30, followup=30)


def _data(events, unit="D"):
    return bc.prepare(events, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort", time_unit=unit)


@pytest.mark.parametrize("n,expect", [(1, "none"), (2, "none"), (5, "none"), (6, "partial"),
                                      (8, "partial")])
def test_auto_pools_partially_from_six_cohorts(n, expect):
    from bayesconv.model import resolve_pooling

    assert resolve_pooling("auto", n) == expect
    assert resolve_pooling("partial", n) == "partial"


@pytest.fixture(scope="module")
def sim6():
    return bc.simulate(n_units=[400, 300, 30, 400, 300, 30],
                       eventual_rate=[0.3, 0.5, 0.4, 0.2, 0.6, 0.4],
                       lag_loc=[5.0, 8.0, 6.0, 4.0, 10.0, 6.0], lag_shape=2.0, random_seed=1,
                       enrollment=30, followup=30)


def test_partial_pooling_structure(sim6, sim, py_mode):
    model = bc.ConversionModel(_data(sim6))
    m = model.pymc_model
    assert model.spec.pooling == "partial"    # "auto" with 6 cohorts
    assert list(m.coords["cohort"]) == list("ABCDEF")
    names = {v.name for v in m.free_RVs}
    # rates differ between cohorts far more than any cohort's noise: all centred; the lag
    # locations of the 30-unit cohorts C and F are too noisy to stand on their own data
    assert model.spec.parametrization["logit_rate"] == ("centered",) * 6
    assert model.spec.parametrization["log_lag_loc"] == ("centered", "centered", "noncentered") * 2
    assert {"mu_logit_rate", "sigma_logit_rate", "logit_rate_raw", "log_lag_loc_raw",
            "log_lag_shape"} <= names
    assert model.centring()["log_lag_loc"].tolist() == [1.0, 1.0, 0.0] * 2
    # with fewer than 6 cohorts (partial pooling forced) a parameter's cohorts are centred
    # whole or not at all: per cohort the rule would give (c, c, n) and (n, c, n) here
    three = bc.ConversionModel(_data(sim), pooling="partial")
    assert all(v == "noncentered" for g in three.spec.parametrization.values() for v in g)
    # the shapes share a learned mean, their spread is the fixed prior value (no sd variable)
    assert "mu_log_lag_shape" in names and "sigma_log_lag_shape" not in names
    for det in ("eventual_rate", "lag_loc", "lag_shape"):
        assert m.named_vars_to_dims[det] == ("cohort",)
    point = m.initial_point()
    assert np.isfinite(m.compile_logp(mode=py_mode)(point))


@pytest.mark.parametrize("par,expect", [("centered", 1.0), ("noncentered", 0.0)])
def test_forced_parametrization(sim, par, expect):
    model = bc.ConversionModel(_data(sim), pooling="partial", parametrization=par)
    assert model.spec.parametrization["logit_rate"] == (par,) * 3
    assert model.centring()["logit_rate"].tolist() == [expect] * 3


def test_each_level_has_the_density_of_its_parametrization(sim6, py_mode):
    """A centred level's sampled value is Normal(mu, sigma), a non-centred one's Normal(0, 1)
    (the effect then mu + sigma * value); checked against scipy at a random point."""
    from scipy import stats

    model = bc.ConversionModel(_data(sim6))
    m = model.pymc_model
    w = model.centring()["log_lag_loc"]
    assert 0 < w.sum() < len(w)          # the sim's cohorts are mixed
    rng = np.random.default_rng(3)
    point = {v.name: rng.normal(0, 0.5, size=np.shape(m.initial_point()[v.name]))
             for v in m.value_vars}
    raw = m["log_lag_loc_raw"]
    got = m.compile_fn(m.logp(vars=[raw], sum=False)[0], inputs=m.value_vars, mode=py_mode,
                       on_unused_input="ignore")(point)
    mu, sigma = point["mu_log_lag_loc"], np.exp(point["sigma_log_lag_loc_log__"])
    x = point["log_lag_loc_raw"]
    want = np.where(w == 1, stats.norm.logpdf(x, mu, sigma), stats.norm.logpdf(x))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    [effect] = m.replace_rvs_by_values([m["log_lag_loc"]])
    effect = m.compile_fn(effect, inputs=m.value_vars, mode=py_mode,
                          on_unused_input="ignore")(point)
    np.testing.assert_allclose(effect, np.where(w == 1, x, mu + sigma * x), rtol=1e-12)


def test_partial_pooling_shares_the_lag_shapes_mean_with_a_fixed_spread(sim, py_mode):
    """log k_g ~ Normal(mu_k, log_lag_shape_spread), mu_k ~ Normal(0, 1): checked against
    scipy at a random point, and the spread follows the prior override."""
    from scipy import stats

    for spread in (0.6, 0.3):
        model = bc.ConversionModel(_data(sim), pooling="partial",
                                   priors={"log_lag_shape_spread": spread})
        m = model.pymc_model
        rng = np.random.default_rng(4)
        point = {v.name: rng.normal(0, 0.5, size=np.shape(m.initial_point()[v.name]))
                 for v in m.value_vars}
        got = m.compile_fn(m.logp(vars=[m["log_lag_shape"], m["mu_log_lag_shape"]], sum=False),
                           inputs=m.value_vars, mode=py_mode, on_unused_input="ignore")(point)
        mu, x = point["mu_log_lag_shape"], point["log_lag_shape"]
        np.testing.assert_allclose(got[0], stats.norm.logpdf(x, mu, spread), rtol=1e-12)
        np.testing.assert_allclose(got[1], stats.norm.logpdf(mu, 0.0, 1.0), rtol=1e-12)


def test_few_level_sds_get_a_boundary_avoiding_gamma_prior(sim, sim6, py_mode):
    """Between-level sds of terms with fewer than 6 levels: Gamma(2, 2 / (scale·√(2/π))),
    the mean of HalfNormal(scale) with density 0 at 0 (Chung et al. 2013); 6+ levels keep
    the HalfNormal. Log densities against scipy at the log-scale value points."""
    from scipy import stats

    def logp_at(model, name, value):
        m = model.pymc_model
        rv = m[name]
        return float(m.compile_fn(m.logp(vars=[rv], jacobian=False), inputs=[m.rvs_to_values[rv]],
                                  mode=py_mode, on_unused_input="ignore")(
            {m.rvs_to_values[rv].name: np.log(value)}))

    scale = 0.7
    few = bc.ConversionModel(_data(sim), pooling="partial", priors={"logit_rate_sd": scale})
    mean = scale * np.sqrt(2 / np.pi)   # HalfNormal(scale)'s mean
    for value in (0.05, 0.4, 2.0):
        np.testing.assert_allclose(logp_at(few, "sigma_logit_rate", value),
                                   stats.gamma.logpdf(value, 2.0, scale=mean / 2), rtol=1e-10)
    many = bc.ConversionModel(_data(sim6), priors={"logit_rate_sd": scale})
    np.testing.assert_allclose(logp_at(many, "sigma_logit_rate", 0.4),
                               stats.halfnorm.logpdf(0.4, scale=scale), rtol=1e-10)
    # a formula's group term over 3 levels: the same rule
    ev = sim6.assign(segment=np.where(sim6["cohort"].isin(["A", "B"]), "s0",
                                      np.where(sim6["cohort"].isin(["C", "D"]), "s1", "s2")))
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort", covariates=["segment"])
    reg = bc.ConversionModel(data, formula={"eventual_rate": "cohort + (1 | segment)"})
    mean = np.sqrt(2 / np.pi)   # the default logit_rate_sd of 1
    np.testing.assert_allclose(logp_at(reg, "logit_rate_sd_1_by_segment", 0.4),
                               stats.gamma.logpdf(0.4, 2.0, scale=mean / 2), rtol=1e-10)


def test_no_pooling_ties_the_lags_and_leaves_the_eventual_rates_independent(sim, py_mode):
    """pooling="none": logit c_g ~ Normal(-1.5, 1.5) independently, sampled sheared as
    u_g = logit c_g + log F(T_g) (u_g ~ Normal(-1.5 + log F(T_g), 1.5), F the gamma CDF at the
    cohort's median waiting age, scipy's); log(m_g / s) ~ Normal(mu_m, log_lag_loc_spread),
    mu_m ~ Normal(0, 2); log k_g ~ Normal(mu_k, 0.6), mu_k ~ Normal(0, 1); checked against
    scipy at a random point. One cohort has nothing to tie and nothing to shear."""
    from scipy import stats

    from bayesconv.model.design import shear_times

    model = bc.ConversionModel(_data(sim), pooling="none", priors={"log_lag_loc_spread": 0.7})
    m = model.pymc_model
    assert {v.name for v in m.free_RVs} == {"logit_rate_raw", "mu_log_lag_loc", "log_lag_loc",
                                            "mu_log_lag_shape", "log_lag_shape"}
    rng = np.random.default_rng(5)
    point = {v.name: rng.normal(0, 0.5, size=np.shape(m.initial_point()[v.name]))
             for v in m.value_vars}
    names = ["logit_rate_raw", "log_lag_loc", "mu_log_lag_loc", "log_lag_shape",
             "mu_log_lag_shape"]
    got = m.compile_fn(m.logp(vars=[m[n] for n in names], sum=False), inputs=m.value_vars,
                       mode=py_mode, on_unused_input="ignore")(point)
    s = model.spec.time_scale
    k = np.exp(point["log_lag_shape"])
    mean = np.exp(point["log_lag_loc"])             # in units of the time scale
    log_f = stats.gamma.logcdf(shear_times(model.data) / s, a=k, scale=mean / k)
    want = [stats.norm.logpdf(point["logit_rate_raw"], -1.5 + log_f, 1.5),
            stats.norm.logpdf(point["log_lag_loc"], point["mu_log_lag_loc"], 0.7),
            stats.norm.logpdf(point["mu_log_lag_loc"], 0.0, 2.0),
            stats.norm.logpdf(point["log_lag_shape"], point["mu_log_lag_shape"], 0.6),
            stats.norm.logpdf(point["mu_log_lag_shape"], 0.0, 1.0)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10)
    # the eventual rate is the sheared variable less log F(T_g)
    [logit_c] = m.replace_rvs_by_values([m["logit_rate"]])
    value = m.compile_fn(logit_c, inputs=m.value_vars, mode=py_mode,
                         on_unused_input="ignore")(point)
    np.testing.assert_allclose(value, point["logit_rate_raw"] - log_f, rtol=1e-10)
    one = sim[sim["cohort"] == sim["cohort"].iloc[0]].copy()
    one["cohort"] = one["cohort"].cat.remove_unused_categories()
    single = bc.ConversionModel(_data(one), pooling="none")
    assert not single.shears
    assert {v.name for v in single.pymc_model.free_RVs} == {"logit_rate", "log_lag_loc",
                                                            "log_lag_shape"}


@pytest.mark.parametrize(("pooling", "parametrization"),
                         [("none", "auto"), ("partial", "centered"),
                          ("partial", "noncentered")])
def test_the_shear_leaves_the_posterior_unchanged(sim, py_mode, pooling, parametrization,
                                                 monkeypatch):
    """The sheared model's joint log density at the image of a point equals the unsheared
    model's at the point (unit Jacobian), and the eventual rates agree: a reparametrization,
    not a new prior. The image: logit_rate_raw moved so that the eventual rates match (they
    are affine in it given the other coordinates)."""
    import bayesconv.model.builder as builder

    data = _data(sim)
    monkeypatch.setattr(builder, "SHEAR", False)
    off = bc.ConversionModel(data, pooling=pooling, parametrization=parametrization)
    monkeypatch.setattr(builder, "SHEAR", True)
    on = bc.ConversionModel(data, pooling=pooling, parametrization=parametrization)
    assert on.shears and not off.shears
    mo, mn = off.pymc_model, on.pymc_model
    assert "shear_time" in on.data_values() and "shear_time" not in off.data_values()

    def rates(model, point):
        [c] = model.replace_rvs_by_values([model["logit_rate"]])
        return model.compile_fn(c, inputs=model.value_vars, mode=py_mode,
                                on_unused_input="ignore")(point)

    rng = np.random.default_rng(3)
    p_off = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in mo.initial_point().items()}
    target = rates(mo, p_off)
    raw = "logit_rate_raw"
    base = {k: p_off.get(k, p_off.get("logit_rate")) for k in mn.initial_point()}
    zero, one_ = ({**base, raw: np.full_like(target, v)} for v in (0.0, 1.0))
    r0, r1 = rates(mn, zero), rates(mn, one_)
    p_on = {**base, raw: (target - r0) / (r1 - r0)}
    np.testing.assert_allclose(rates(mn, p_on), target, rtol=1e-10)
    np.testing.assert_allclose(mn.compile_logp(mode=py_mode)(p_on),
                               mo.compile_logp(mode=py_mode)(p_off), rtol=1e-12)


def test_shear_times_are_the_median_waiting_age():
    """T_g: the count-weighted median duration of the units still waiting (the cohort's
    ages); a cohort with none waiting takes its longest duration."""
    import pandas as pd

    from bayesconv.model.design import shear_times

    frame = pd.DataFrame({"cohort": ["A"] * 4 + ["B"] * 2, "duration": [1.0, 3.0, 5.0, 9.0, 2.0, 4.0],
                          "event": [1, 0, 0, 0, 1, 1], "count": [1, 1, 1, 5, 1, 1]})
    data = bc.prepare(frame, duration="duration", event="event", cohort="cohort",
                      count="count", resolution=None)
    np.testing.assert_allclose(shear_times(data), [9.0, 4.0])

def test_parametrization_is_data_not_structure(sim):
    """Models that differ only in which levels are centred share one compiled model."""
    from bayesconv.inference.compile import structure_key

    keys = {structure_key(bc.ConversionModel(_data(sim), pooling="partial", parametrization=p))
            for p in ("auto", "centered", "noncentered")}
    assert len(keys) == 1


def test_parametrization_rule_on_both_regimes():
    # homogeneous cohorts (no between-cohort spread): non-centred everywhere
    ev = bc.simulate(n_units=[1200, 600, 300, 150, 60, 20, 5, 1], eventual_rate=0.35,
                     lag_loc=8.0, lag_shape=1.5, enrollment=30, followup=40, random_seed=21,
                     resolution="D")
    par = choose_parametrization(_data(ev))
    assert all(p == "noncentered" for group in par.values() for p in group)
    # large, distinct cohorts (the NYC complaints buckets): centred everywhere
    events = bc.datasets.load_dob_violations()
    events = events[events["issue_date"] >= "1985-01-01"]
    with pytest.warns(bc.DataWarning):
        data = bc.prepare(events, created="issue_date", converted="disposition_date",
                          observed_until="now", cohort="bucket", time_unit="Y")
    par = choose_parametrization(data)
    assert par["log_lag_loc"] == ("centered",) * 7
    # 1985-1989: every complaint resolved (KM end = 1), so its logit estimate is unbounded
    assert par["logit_rate"] == ("noncentered",) + ("centered",) * 6
    # mixed: a tiny cohort among large distinct ones is non-centred
    ev = bc.simulate(n_units=[3000] * 5 + [1], eventual_rate=[0.2, 0.5, 0.8, 0.35, 0.65, 0.5],
                     lag_loc=[3.0, 10.0, 30.0, 5.0, 20.0, 10.0], random_seed=2, resolution="D",
                     enrollment=60, followup=60)
    par = choose_parametrization(_data(ev))
    assert par["logit_rate"] == ("centered",) * 5 + ("noncentered",)
    assert par["log_lag_loc"] == ("centered",) * 5 + ("noncentered",)
    # the same without two of the large cohorts: too few cohorts to centre some and not others
    four = _data(ev[ev["cohort"].isin(["A", "B", "C", "F"])].assign(
        cohort=lambda e: e["cohort"].cat.remove_unused_categories()))
    assert set(sum(choose_parametrization(four).values(), ())) == {"noncentered"}


def test_few_level_group_terms_are_centred_whole_or_not_at_all():
    from bayesconv.model.design import _whole_if_few

    c, n = "centered", "noncentered"
    assert _whole_if_few((c, c, c)) == (c, c, c)
    assert _whole_if_few((c, n, n)) == (n, n, n)   # a centred level beside non-centred ones
    assert _whole_if_few((n,) * 3) == (n,) * 3
    assert _whole_if_few((c, n) * 3) == (c, n) * 3   # 6 levels: per level


def test_tau_lower_bound_matches_metafor_q_profile():
    from bayesconv.model.design import _dersimonian_laird, _tau_lower
    # BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg), log risk ratios.
    # metafor: rma(yi, vi) gives tau^2 = 0.3088 (DL) and confint(...) the Q-profile 95% interval
    # [0.1197, 1.1115] (Viechtbauer 2007), so the one-sided 97.5% lower bound is 0.1197.
    t = np.array([[4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209],
                  [62, 13536, 248, 12619], [33, 5036, 47, 5761], [180, 1361, 372, 1079],
                  [8, 2537, 10, 619], [505, 87886, 499, 87892], [29, 7470, 45, 7232],
                  [17, 1699, 65, 1600], [186, 50448, 141, 27197], [5, 2493, 3, 2338],
                  [27, 16886, 29, 17825]], float)
    tp, tn, cp, cn = t.T
    yi = np.log(tp / (tp + tn)) - np.log(cp / (cp + cn))
    se = np.sqrt(1 / tp - 1 / (tp + tn) + 1 / cp - 1 / (cp + cn))
    assert _dersimonian_laird(yi, se) == pytest.approx(0.3088, abs=5e-5)
    assert _tau_lower(yi, se, 0.975) ** 2 == pytest.approx(0.1197, abs=5e-5)
    # groups that do not differ beyond their noise at this confidence: bound 0
    assert _tau_lower(np.array([0.0, 0.1, -0.1]), np.array([0.2, 0.2, 0.2])) == 0.0


def test_centring_needs_confident_heterogeneity():
    # calibration.py data set 8 (seed 2024): 3 cohorts whose eventual rates differ by about
    # their noise. The point estimate of the between-cohort sd (DerSimonian-Laird 0.31) put
    # every cohort centred and 10 of 4000 draws diverged at a small sigma_logit_rate; the
    # one-sided 90% lower bound (0.15) leaves the noisiest cohort non-centred.
    from bayesconv.model.design import _dersimonian_laird, _tau_lower
    # its rough estimates (design._rough_estimates of the logit rate), rounded
    est = np.array([-2.189, -2.733, -2.568])
    se = np.array([0.1237, 0.0769, 0.2212])
    tau = _tau_lower(est, se)
    assert 0 < tau < np.sqrt(_dersimonian_laird(est, se))
    assert [s < tau for s in se] == [True, True, False]


def test_auto_pooling_by_number_of_cohorts(sim):
    two = sim[sim["cohort"] != "C"].copy()
    two["cohort"] = two["cohort"].cat.remove_unused_categories()
    model = bc.ConversionModel(_data(two))
    assert model.spec.pooling == "none"
    assert "mu_logit_rate" not in {v.name for v in model.pymc_model.free_RVs}
    complete = bc.ConversionModel(_data(sim), pooling="complete")
    assert {v.name for v in complete.pymc_model.free_RVs} == {
        "logit_rate_all", "log_lag_loc_all", "log_lag_shape_all"}


def test_priors_override_and_errors(sim):
    data = _data(sim)
    model = bc.ConversionModel(data, priors={"logit_rate": {"mu": -2.0}, "logit_rate_sd": 0.3})
    assert model.spec.priors["logit_rate"] == {"mu": -2.0, "sigma": 1.5}
    assert model.spec.priors["logit_rate_sd"] == 0.3
    with pytest.raises(ValueError, match="unknown prior 'rate'; known priors"):
        bc.ConversionModel(data, priors={"rate": 1.0})
    with pytest.raises(ValueError, match="must be > 0"):
        bc.ConversionModel(data, priors={"log_lag_loc_sd": -1})
    with pytest.raises(ValueError, match="needs sigma > 0"):
        bc.ConversionModel(data, priors={"log_lag_shape": {"sigma": 0}})
    with pytest.raises(ValueError, match="pooling='some' is not one of"):
        bc.ConversionModel(data, pooling="some")
    with pytest.raises(ValueError, match="unknown lag family 'beta'"):
        bc.ConversionModel(data, lag="beta")


@pytest.mark.parametrize("lag", list(bc.LAG_FAMILIES))
def test_logp_is_invariant_to_the_time_unit(sim, lag, py_mode):
    """Same events in hours and in days: the posterior density differs by a constant only.

    The priors live in units of the data's own time scale, so the log-density difference
    between any two parameter points (given on the calendar-time scale) must be identical.
    """
    out = []
    for unit in ("D", "h"):
        model = bc.ConversionModel(_data(sim, unit), lag=lag)
        m = model.pymc_model
        logp = m.compile_logp(mode=py_mode)
        p0 = m.initial_point()
        p1 = {k: v + 0.1 for k, v in p0.items()}
        out.append(logp(p1) - logp(p0))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-9)


def test_time_scale_follows_the_data(sim):
    d_days, d_hours = _data(sim, "D"), _data(sim, "h")
    s_d = bc.ConversionModel(d_days).spec.time_scale
    s_h = bc.ConversionModel(d_hours).spec.time_scale
    np.testing.assert_allclose(s_h, 24 * s_d)


def test_model_rejects_non_data():
    with pytest.raises(TypeError, match="ConversionData"):
        bc.ConversionModel(pd.DataFrame())


FAMILY_VARS = {
    # free variables besides the eventual rate and the lag location, by pooling
    "exponential": {"none": set(), "partial": set(), "complete": set()},
    "weibull": {"none": {"log_lag_shape", "mu_log_lag_shape"},
                "partial": {"log_lag_shape", "mu_log_lag_shape"},
                "complete": {"log_lag_shape_all"}},
    "lognormal": {"none": {"log_lag_shape", "mu_log_lag_shape"},
                  "partial": {"log_lag_shape", "mu_log_lag_shape"},
                  "complete": {"log_lag_shape_all"}},
    "gengamma": {"none": {"log_lag_shape", "mu_log_lag_shape", "lag_q_all"},
                 "partial": {"log_lag_shape", "mu_log_lag_shape", "lag_q_all"},
                 "complete": {"log_lag_shape_all", "lag_q_all"}},
}


@pytest.mark.parametrize("pooling", ["none", "partial", "complete"])
@pytest.mark.parametrize("lag", list(FAMILY_VARS))
def test_every_family_and_pooling_builds(sim, lag, pooling, py_mode):
    """Each family's extra parameters become variables; logp and its gradient are finite."""
    model = bc.ConversionModel(_data(sim), lag=lag, pooling=pooling, parametrization="noncentered")
    m = model.pymc_model
    free = {v.name for v in m.free_RVs}
    base = {"none": {"logit_rate_raw", "log_lag_loc", "mu_log_lag_loc"},
            "partial": {"mu_logit_rate", "sigma_logit_rate", "logit_rate_raw",
                        "mu_log_lag_loc", "sigma_log_lag_loc", "log_lag_loc_raw"},
            "complete": {"logit_rate_all", "log_lag_loc_all"}}[pooling]
    assert free == base | FAMILY_VARS[lag][pooling]
    family = bc.lags.get_lag(lag)
    for p in family.extra_params:
        assert m.named_vars_to_dims[p.var] == ("cohort",)
    assert ("lag_shape" in m.named_vars) == (lag != "exponential")
    assert ("lag_q" in m.named_vars) == (lag == "gengamma")
    point = m.initial_point()
    point = {k: v + 0.05 for k, v in point.items()}
    assert np.isfinite(m.compile_logp(mode=py_mode)(point))
    grad = m.compile_dlogp(mode=py_mode)(point)
    assert np.all(np.isfinite(grad))


def test_default_target_accept_follows_the_hierarchy(sim):
    # few levels: the between-level sd is weakly identified (funnel), so a smaller step
    from bayesconv.inference.model import default_target_accept

    three = bc.ConversionModel(_data(sim), pooling="partial")
    assert three.hierarchy_sizes == {"logit_rate": 3, "log_lag_loc": 3}
    assert default_target_accept(three.hierarchy_sizes) == 0.95
    two = sim[sim["cohort"] != "C"].copy()
    two["cohort"] = two["cohort"].cat.remove_unused_categories()
    ab = bc.ConversionModel(_data(two))
    assert ab.hierarchy_sizes == {}
    # without pooling the lags are tied (learned mean, fixed spread): 0.9; nothing tied: 0.8
    assert ab.tied_sizes == {"log_lag_loc": 2, "log_lag_shape": 2}
    assert default_target_accept(ab.hierarchy_sizes, ab.tied_sizes) == 0.9
    assert bc.ConversionModel(_data(two), lag="exponential").tied_sizes == {"log_lag_loc": 2}
    assert bc.ConversionModel(_data(two), pooling="complete").tied_sizes == {}
    assert default_target_accept({}, {}) == default_target_accept({}) == 0.8
    many = bc.simulate(n_units=[200] * 7, eventual_rate=0.3, lag_loc=5.0, lag_shape=2.0,
                       enrollment=20, followup=20, random_seed=2)
    seven = bc.ConversionModel(_data(many))
    assert seven.hierarchy_sizes == {"logit_rate": 7, "log_lag_loc": 7}
    assert default_target_accept(seven.hierarchy_sizes) == 0.9
    # six levels still count as few (calibration study: 3 of 23 six-cohort fits diverged at 0.9)
    assert default_target_accept({"logit_rate": 6, "log_lag_loc": 6}) == 0.95
    # a formula's group term and random walk count their levels; a formula on the eventual
    # rate replaces its between-cohort term, the lag keeps its own
    events = many.assign(seg=np.where(many.index % 2, "a", "b"),
                         week=many["created"].dt.isocalendar().week.astype(int))
    data = bc.prepare(events, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort",
                      covariates=["seg", "week"])
    model = bc.ConversionModel(data, formula={"eventual_rate": "cohort + (1 | seg)",
                                              "lag_loc": "1 + rw(week)"})
    sizes = model.hierarchy_sizes
    assert sizes["logit_rate:1|seg"] == 2
    assert sizes[next(k for k in sizes if "rw(week)" in k)] == data.cells["week"].nunique()
    assert "logit_rate" not in sizes and default_target_accept(sizes) == 0.95


@pytest.mark.parametrize("pooling", ["none", "partial", "complete"])
def test_data_values_cover_every_data_container(sim, pooling):
    """A compiled model reused on other data (``with_data``) reads every ``pm.Data`` from
    ``data_values()``; one left out (such as the shear times) would silently keep the first
    data set's values."""
    model = bc.ConversionModel(_data(sim), pooling=pooling)
    names = {v.name for v in model.pymc_model.data_vars}
    assert set(model.data_values()) == names
    assert ("shear_time" in names) == (pooling != "complete")
