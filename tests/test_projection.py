"""Projections of the decision: the simulated futures against closed forms, the Laplace refit
against NUTS, and (the cheap version of validation/projection.py) calibration of P(decision)."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import fabricate
from scipy import stats

import bayesconv as bc
from bayesconv.readout.projection import SimulatedFuture, TimeRecorder

matplotlib.use("Agg")


def _data(n=(3000, 3000), rates=(0.10, 0.10), seed=1, resolution="D", enrollment=14,
          followup=0.5):
    ev = bc.simulate(n_units=list(n), eventual_rate=list(rates), lag_loc=7.0, lag_shape=1.5,
                     enrollment=enrollment, followup=followup, resolution=resolution,
                     random_seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bc.prepare(ev, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort",
                          resolution="auto" if resolution else None)


@pytest.fixture(scope="module")
def data():
    return _data()


def _future(data, rate, loc, shape, enroll, horizon, seed=0):
    family = bc.get_lag("gamma")
    n = data.n_cells
    return SimulatedFuture(data, np.full(n, rate), [np.full(n, loc), np.full(n, shape)], family,
                   np.full(n, float(enroll)), horizon, 1.0, np.random.default_rng(seed),
                   TimeRecorder(data))


def _totals(d):
    return (pd.DataFrame({"cell": d.cell, "converted": d.converted, "count": d.count})
            .groupby(["cell", "converted"])["count"].sum())


def test_the_future_at_time_zero_is_today(data):
    now = _future(data, 0.1, 7.0, 1.5, enroll=500, horizon=10).at(0.0)
    pd.testing.assert_series_equal(_totals(now), _totals(data))
    cens = ~data.converted
    a = pd.Series(data.count[cens], index=data.duration[cens]).groupby(level=0).sum()
    b = pd.Series(now.count[~now.converted], index=now.duration[~now.converted])
    pd.testing.assert_series_equal(a, b.groupby(level=0).sum())
    assert now.meta == data.meta


def test_enrolled_units_mature_as_the_cure_model_says(data):
    # a unit not converted at age a converts by a + t with c (F(a + t) − F(a)) / (1 − c F(a))
    c, loc, shape, t = 0.3, 7.0, 1.5, 5.0
    fut = _future(data, c, loc, shape, enroll=0, horizon=t)
    later = fut.at(t)
    gamma = stats.gamma(shape, scale=loc / shape)
    cens = ~data.converted
    # the recorded age a of a day-floored unit is its true age plus U(0, 1) days of flooring
    u = np.linspace(0.005, 0.995, 100)[:, None]
    age = np.repeat(data.duration[cens], data.count[cens])[None, :] - u
    age = np.maximum(age, 0)
    p = c * (gamma.cdf(age + t) - gamma.cdf(age)) / (1 - c * gamma.cdf(age))
    expected = p.mean()
    n = cens.sum() and data.count[cens].sum()
    new = _totals(later).xs(True, level="converted").sum() - \
        _totals(data).xs(True, level="converted").sum()
    sd = np.sqrt(n * expected * (1 - expected))
    assert abs(new - n * expected) < 4 * sd, (new, n * expected, sd)
    # recorded to the day, like the data
    conv = later.converted
    assert np.allclose(later.duration[conv], np.round(later.duration[conv]))


def test_new_units_arrive_and_convert_at_the_drawn_rate(data):
    c, loc, shape, t, per_day = 0.2, 3.0, 1.0, 10.0, 400
    later = _future(data, c, loc, shape, enroll=per_day, horizon=t).at(t)
    added = _totals(later).sum() - _totals(data).sum()
    assert added == per_day * t * data.n_cells
    # a unit created uniformly in [0, t) converts by t with c · E[F(t − e)]
    e = np.linspace(0, t, 10_001)
    p = c * stats.gamma(shape, scale=loc / shape).cdf(t - e).mean()
    new_conv = (_totals(later).xs(True, level="converted").sum()
                - _totals(data).xs(True, level="converted").sum())
    # conversions of the enrolled units come on top: bound from below by the new units alone
    assert new_conv > added * p - 4 * np.sqrt(added * p)


def test_exactly_timed_data_stay_exact():
    exact = _data(n=(500, 500), resolution=None)
    assert exact.meta.get("resolution_read") != "interval"
    later = _future(exact, 0.3, 7.0, 1.5, enroll=50, horizon=5).at(5.0)
    conv = later.converted
    assert not np.allclose(later.duration[conv], np.round(later.duration[conv]))


def test_laplace_agrees_with_nuts_on_a_large_two_arm_test():
    data = _data(n=(20000, 20000), rates=(0.10, 0.11), seed=3)
    model = bc.ConversionModel(data)
    lap = model.fit(method="laplace", random_seed=1, progressbar=False)
    nuts = model.fit(random_seed=1, progressbar=False)
    assert lap.sampler == "laplace"
    # the Gaussian sits at the mode: a skewed marginal puts NUTS's mean a little off it
    # (0.16 sd here); the difference between arms, which a decision reads, is much closer
    for var in ("eventual_rate", "lag_loc"):
        a, b = lap.posterior[var], nuts.posterior[var]
        sd = b.std(("chain", "draw"))
        assert float((abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw"))) / sd).max()
                     ) < 0.3
        np.testing.assert_allclose(a.std(("chain", "draw")), sd, rtol=0.12)
        da = a.sel(cohort="B") - a.sel(cohort="A")
        db = b.sel(cohort="B") - b.sel(cohort="A")
        assert float(abs(da.mean() - db.mean()) / db.std()) < 0.1
        np.testing.assert_allclose(float(da.std()), float(db.std()), rtol=0.1)


@pytest.fixture(scope="module")
def fit(data):
    return bc.ConversionModel(data).fit(method="laplace", random_seed=2, progressbar=False)


def test_project_reports_a_table_days_left_and_a_plot(fit):
    proj = bc.project(fit, "B", "A", days=[3, 14], threshold=0.002, n_sims=20,
                      random_seed=1)
    f = proj.to_frame()
    assert list(f["day"]) == [3.0, 14.0] and (f["n_sims"] == 20).all()
    assert (np.diff(f["prob_decided_by"]) >= 0).all()
    assert (f["prob_decision"] == f["prob_ship"] + f["prob_keep"]).all()
    assert f["lift_hdi_width_q50"].iloc[1] < f["lift_hdi_width_q50"].iloc[0]
    assert proj.days_left in (0.0, 3.0, 14.0, np.inf)
    assert proj.decision.days_left == proj.days_left
    assert "Today:" in repr(proj) and "<table" in proj._repr_html_()
    assert proj.plot() is not None
    # recent enrollment: 3,000 units per arm over 14 days, observed half a day after the
    # last one, so the last 7 days saw 6.5 days of enrollment (day-floored: ± one day)
    assert proj.settings["enrollment_per_day"]["A"] == pytest.approx(3000 / 14 * 6.5 / 7,
                                                                     rel=0.15)


def test_project_rejects_bad_input(fit):
    kw = {"threshold": 0.002, "n_sims": 2}
    with pytest.raises(ValueError, match="days must be"):
        bc.project(fit, "B", "A", days=[0, 3], **kw)
    with pytest.raises(ValueError, match="method"):
        bc.project(fit, "B", "A", method="mcmc", **kw)
    with pytest.raises(ValueError, match="new_units_per_day"):
        bc.project(fit, "B", "A", new_units_per_day=-1, **kw)
    with pytest.raises(ValueError, match="no rate for the arms"):
        bc.project(fit, "B", "A", new_units_per_day={"A": 10}, **kw)
    with pytest.raises(ValueError, match=r"not compared \['C'\]"):
        bc.project(fit, "B", "A", new_units_per_day={"A": 10, "B": 10, "C": 5}, **kw)
    with pytest.raises(ValueError, match="threshold"):
        bc.project(fit, "B", "A", threshold=0)
    with pytest.raises(ValueError, match="not a cohort"):
        bc.project(fit, "Z", "A", **kw)
    # percentage points given as a number: a rate's threshold is a fraction
    with pytest.raises(ValueError, match="200 percentage points"):
        bc.project(fit, "B", "A", threshold=2, n_sims=2)
    with pytest.raises(ValueError, match="200 percentage points"):
        bc.compare(fit, "B", "A").decision(threshold=2)
    # the errors name the function the user called
    with pytest.raises(ValueError, match=r"needs project\(\.\.\., horizon=\.\.\.\)"):
        bc.project(fit, "B", "A", metric="by_horizon", **kw)
    with pytest.raises(ValueError, match=r"has no rate for the arms \['B'\]; give one"):
        bc.project(fit, "B", "A", new_units_per_day={"A": 10}, **kw)
    point = bc.ConversionModel(fit.data).fit(method="map", progressbar=False)
    for call in (lambda: bc.project(point, "B", "A", **kw),
                 lambda: bc.plan(point, lift=0.1, new_units_per_day=10, threshold=0.002)):
        with pytest.raises(ValueError, match="simulates from posterior draws"):
            call()


def test_project_decides_on_what_the_readout_decides_on(fit):
    # metric=None: the readout's lead metric, as Readout.decision; a horizon on weakly
    # identified data makes it the rate by the horizon
    kw = {"threshold": 0.002, "n_sims": 2, "days": [3], "random_seed": 0}
    lead = bc.compare(fit, "B", "A", horizon=3).lead
    assert bc.project(fit, "B", "A", horizon=3, **kw).settings["metric"] == lead
    assert bc.project(fit, "B", "A", **kw).settings["metric"] == "eventual"
    f = bc.project(fit, "B", "A", new_units_per_day=1234.4, **kw)
    assert f.to_frame()["new_units_per_arm"].iloc[0] == round(1234.4 * 3)
    assert "at 1,234 new units per day and arm" in f.decision.text or \
        f.decision.action != "wait"


def test_durations_layout_needs_an_enrollment_rate():
    rossi = bc.datasets.load_rossi()
    data = bc.prepare(rossi, duration="week", event="arrest", cohort="fin", time_unit="W")
    res = fabricate(bc.ConversionModel(data), [0.3, 0.25], [30.0, 30.0], 1.5, draws=200)
    with pytest.raises(ValueError, match="duration/event layout"):
        bc.project(res, 1, 0, threshold=0.01, n_sims=2)
    proj = bc.project(res, 1, 0, days=[28], new_units_per_day=0, threshold=0.01, n_sims=5,
                      random_seed=0, metric="by_horizon", horizon=26)
    assert proj.to_frame()["n_sims"].iloc[0] == 5
    # the horizon is in the data's time unit (weeks here), and the plot says so
    assert "rate by 26 weeks" in proj.plot().get_title()


def test_plan_decides_more_often_with_a_real_lift(fit):
    aa = bc.plan(fit, lift=0.0, new_units_per_day=300, days=[7, 21], threshold=0.002,
                 n_sims=30, random_seed=0)
    ab = bc.plan(fit, lift=0.5, new_units_per_day=300, days=[7, 21], threshold=0.002,
                 n_sims=30, random_seed=0)
    assert aa.decision is None and "Plan" in repr(aa)
    assert ab.to_frame()["prob_ship"].iloc[-1] > 0.9
    assert aa.to_frame()["prob_ship"].iloc[-1] < 0.5
    with pytest.raises(ValueError, match="lift"):
        bc.plan(fit, lift=-1, new_units_per_day=10, threshold=0.002)
    with pytest.warns(UserWarning) as caught:
        bc.plan(fit, lift=10, new_units_per_day=10, days=[3], threshold=0.002, n_sims=1)
    text = " | ".join(str(w.message) for w in caught)
    assert "relative lift of +1000%" in text and "capped at 1" in text


def test_project_is_calibrated_cheaply():
    """Predicted P(decision by day 7) against whether continuing the experiment decided.

    Each experiment is simulated once over 14 days of enrollment (``bc.simulate``, not the
    projection's simulator); its first 7 days are read as of day 7 (``as_of``), fitted
    (Laplace, for speed) and projected 7 days ahead at the true enrollment; the data as of
    day 14 are fitted and read with the same rule. The arms' rates are drawn as far apart as
    the model's flat prior on each rate allows (relative lift sd 30%; with truths far closer
    than the prior says, the day-7 posterior under-shrinks a noisy difference and the
    projection over-predicts; with lags much shorter than the lag prior allows, and little
    follow-up, it under-predicts: validation/projection.md), so P is spread out; the lag mean
    (2 days) is short against the 7 days of data, so the lag is pinned by then. With 40
    experiments the mean predicted P and the observed share must agree within 3 binomial
    standard errors; a projection that ignored the maturation of enrolled units or the new
    units would predict far too few decisions.
    """
    from bayesconv.replays import as_of

    rng = np.random.default_rng(11)
    predicted, decided, n = [], [], 5000
    start = pd.Timestamp("2024-01-01")
    for e in range(40):
        c_a = rng.uniform(0.05, 0.2)
        c_b = c_a * (1 + rng.normal(0, 0.3))
        ev = bc.simulate(n_units=[n, n], eventual_rate=[c_a, c_b], lag_loc=2.0, lag_shape=1.5,
                         enrollment=14, followup=0, start=start, resolution="D",
                         random_seed=100 + e).drop(columns="observed_until")
        fits = []
        for day in (7, 14):
            known = as_of(ev, start + pd.Timedelta(day, unit="D"), created="created",
                          converted="converted")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = bc.prepare(known, created="created", converted="converted",
                                  observed_until="observed_until", cohort="cohort",
                                  resolution="auto")
                fits.append(bc.ConversionModel(data).fit(method="laplace", random_seed=e,
                                                         progressbar=False))
        proj = bc.project(fits[0], "B", "A", days=[7], threshold=0.002, n_sims=40,
                          new_units_per_day=n / 14, random_seed=e)
        predicted.append(proj.to_frame()["prob_decision"].iloc[0])
        decided.append(bc.compare(fits[1], "B", "A").decision(0.002).action != "wait")
    p, d = np.mean(predicted), np.mean(decided)
    se = np.sqrt(max(p * (1 - p), 0.05) / len(decided))
    assert 0.15 < p < 0.85, p           # the experiments were not all trivially (un)decided
    print(f"predicted {p:.3f}, decided {d:.3f}, se {se:.3f}")
    assert abs(p - d) < 3 * se, (p, d, se)
