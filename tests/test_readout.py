"""Experiment readouts: hand-checked numbers on fabricated posteriors, then seeded simulations."""

import warnings

import matplotlib
import numpy as np
import pytest
import xarray as xr
from conftest import fabricate

import bayesconv as bc
from bayesconv.posterior.result import ConversionResult
from bayesconv.readout import Readout, compare

matplotlib.use("Agg")

LABELS = ["A", "B", "C"]
MEANS = np.array([0.30, 0.33, 0.31])
LOCS = np.array([5.0, 4.0, 6.0])


@pytest.fixture(scope="module")
def model(three_arm_model):
    return three_arm_model


def _fabricate(model, means=MEANS, locs=LOCS, chains=2, draws=400, seed=0, labels=LABELS,
               sd=0.02):
    """A ConversionResult from made-up posterior draws (no sampling)."""
    return fabricate(model, means, locs, 2.0, chains=chains, draws=draws, seed=seed,
                     rate_sd=sd, labels=labels)


@pytest.fixture(scope="module")
def fab(model):
    return _fabricate(model)


def _draws(res, label, horizon=None):
    if horizon is None:
        return res.eventual_rate().sel(cohort=label).values.ravel()
    return res.curves([horizon]).sel(cohort=label).isel(t=0).values.ravel()


# ------------------------------------------------------------------ numbers by hand
@pytest.mark.parametrize("horizon", [None, 7.0])
def test_numbers_match_hand_computation(fab, horizon):
    ro = compare(fab, "B", "A", horizon=horizon, rope=0.01, ci_prob=0.9)
    metric = "eventual" if horizon is None else "by_horizon"
    row = ro.to_frame().set_index("metric").loc[metric]
    t, c = _draws(fab, "B", horizon), _draws(fab, "A", horizon)
    d = t - c
    assert row["treatment"] == "B" and row["control"] == "A"
    np.testing.assert_allclose(row["control_mean"], c.mean())
    np.testing.assert_allclose(row["treatment_mean"], t.mean())
    np.testing.assert_allclose(row["diff_mean"], d.mean())
    # the lift is the median of the per-draw ratio (its mean is not robust)
    np.testing.assert_allclose(row["lift_median"], np.median(t / c - 1))
    assert row["lift_defined"]
    np.testing.assert_allclose(row["prob_better"], (d > 0).mean())
    np.testing.assert_allclose(row["loss_treatment"], np.maximum(0, c - t).mean())
    np.testing.assert_allclose(row["loss_control"], np.maximum(0, t - c).mean())
    np.testing.assert_allclose(row["prob_rope"], ((d >= -0.01) & (d <= 0.01)).mean())
    # a 90% HDI holds 90% of the draws and contains the mean
    for name, x, center in (("diff", d, "diff_mean"), ("lift", t / c - 1, "lift_median"),
                            ("treatment", t, "treatment_mean")):
        lo, hi = row[f"{name}_lower"], row[f"{name}_upper"]
        assert lo < row[center] < hi
        np.testing.assert_allclose(((x >= lo) & (x <= hi)).mean(), 0.9, atol=0.005)
    # the raw draws are kept
    np.testing.assert_allclose(ro.draws["diff"].sel(metric=metric, treatment="B").values.ravel(),
                               d)
    # one treatment: P(best) is P(better), and the control has the rest
    np.testing.assert_allclose(row["prob_best"], row["prob_better"])
    np.testing.assert_allclose(row["control_prob_best"], 1 - row["prob_better"])


def test_several_arms_and_prob_best(fab):
    ro = compare(fab, ["B", "C"], "A", horizon=7)
    f = ro.to_frame()
    assert list(zip(f["metric"], f["treatment"], strict=True)) == [
        ("eventual", "B"), ("eventual", "C"), ("by_horizon", "B"), ("by_horizon", "C"),
        ("median_lag", "B"), ("median_lag", "C")]
    assert f["unit"].tolist() == ["rate"] * 4 + ["D"] * 2
    assert f["prob_rope"].isna().all()  # no ROPE given
    arms = ro.arm_table()
    for metric, h in (("eventual", None), ("by_horizon", 7.0)):
        x = np.stack([_draws(fab, a, h) for a in LABELS])
        best = np.bincount(x.argmax(0), minlength=3) / x.shape[1]
        a = arms[arms["metric"] == metric]
        assert list(a["arm"]) == LABELS and list(a["role"]) == ["control", "treatment",
                                                                 "treatment"]
        np.testing.assert_allclose(a["prob_best"], best)
        np.testing.assert_allclose(a["prob_best"].sum(), 1.0)
        np.testing.assert_allclose(a["loss"], (x.max(0) - x).mean(1))
        g = f[f["metric"] == metric].set_index("treatment")
        np.testing.assert_allclose(g["prob_best"], best[1:])
        np.testing.assert_allclose(g["control_prob_best"], best[0])
        np.testing.assert_allclose(g.loc["C", "prob_better"], (x[2] > x[0]).mean())
    assert "P(best) on the eventual rate: A" in repr(ro)


def test_lower_is_better_flips(fab):
    hi = compare(fab, "B", "A", rope=(-0.02, 0.005)).to_frame().iloc[0]
    lo = compare(fab, "B", "A", rope=(-0.02, 0.005), higher_is_better=False).to_frame().iloc[0]
    d = _draws(fab, "B") - _draws(fab, "A")
    np.testing.assert_allclose(lo["prob_better"], (d < 0).mean())
    np.testing.assert_allclose(lo["prob_better"], 1 - hi["prob_better"])  # no ties
    np.testing.assert_allclose(lo["loss_treatment"], hi["loss_control"])
    np.testing.assert_allclose(lo["loss_control"], hi["loss_treatment"])
    np.testing.assert_allclose(lo["prob_best"], 1 - hi["prob_best"])
    # summaries of the arms and the ROPE do not depend on the direction
    for col in ("diff_mean", "lift_lower", "treatment_upper", "prob_rope"):
        assert lo[col] == hi[col]


def test_display_and_plot(fab):
    ro = compare(fab, "B", "A", horizon=7, rope=0.01)
    row = ro.to_frame().iloc[0]
    head = ro.headline()
    assert head == (f"P(B better than A) on the eventual rate = {row['prob_better']:.2f}; "
                    f"lift {row['lift_median'] * 100:+.1f}% (94% HDI "
                    f"{row['lift_lower'] * 100:+.1f}% to {row['lift_upper'] * 100:+.1f}%)")
    html = ro._repr_html_()
    assert head in html and "<table" in html and "P(ROPE)" in html
    assert "rate by 7 days" in html
    text = repr(ro)
    assert head in text and "percentage points" in text
    assert (ro.ci_prob, ro.horizon, ro.rope, ro.time_unit, ro.higher_is_better) == (
        0.94, 7.0, (-0.01, 0.01), "D", True)
    low = compare(fab, "B", "A", higher_is_better=False)
    assert "P(B better (lower) than A)" in low.headline()
    ax = ro.plot()
    assert "absolute difference" in ax.get_xlabel()
    assert len(ax.get_lines()) == 2  # the density and the line at 0
    ax2 = compare(fab, ["B", "C"], "A", horizon=7).plot(metric="by_horizon")
    assert len(ax2.get_lines()) == 3 and "rate by 7 days" in ax2.get_xlabel()
    with pytest.raises(ValueError, match="by_horizon"):
        compare(fab, "B", "A").plot(metric="by_horizon")


def test_int_labels_match_str_coords():
    df = bc.datasets.load_rossi()
    data = bc.prepare(df, duration="week", event="arrest", cohort="fin", time_unit="W")
    res = _fabricate(bc.ConversionModel(data), means=[0.28, 0.22], locs=[20.0, 25.0],
                     labels=[0, 1])
    a = compare(res, 1, 0, higher_is_better=False, horizon=52).to_frame()
    b = compare(res, "1", "0", higher_is_better=False, horizon=52).to_frame()
    assert a["treatment"].tolist() == [1, 1, 1] and a["control"].tolist() == [0, 0, 0]
    assert a.drop(columns=["treatment", "control"]).equals(
        b.drop(columns=["treatment", "control"]))
    assert a["prob_better"].iloc[0] > 0.9  # fabricated: aid lowers re-arrest
    assert compare(res, np.int64(1), 0).time_unit == "W"


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("kwargs, match", [
    ({"treatment": "Z"}, r"treatment 'Z' is not a cohort.*available cohorts: 'A', 'B', 'C'"),
    ({"control": "Z"}, r"control 'Z' is not a cohort.*available cohorts"),
    ({"treatment": ["B", "Z"]}, "treatment 'Z' is not a cohort"),
    ({"treatment": "A"}, r"treatment 'A' is the control arm.*available cohorts"),
    ({"treatment": ["B", "A"]}, "is the control arm"),
    ({"treatment": ["B", "B"]}, "more than once"),
    ({"treatment": []}, "no treatment arm"),
    ({"horizon": 0}, "horizon must be finite and > 0"),
    ({"horizon": -3.0}, "horizon must be finite and > 0"),
    ({"horizon": np.inf}, "horizon must be finite and > 0"),
    ({"horizon": np.nan}, "horizon must be finite and > 0"),
    ({"horizon": "soon"}, "horizon must be a number"),
    ({"ci_prob": 1.0}, r"ci_prob must be a number in \(0, 1\)"),
    ({"ci_prob": 0}, "ci_prob"),
    ({"ci_prob": 94}, "ci_prob"),
    ({"rope": (0.01, -0.01)}, "rope needs low < high"),
    ({"rope": (0.01, 0.01)}, "rope needs low < high"),
    ({"rope": -0.01}, "rope needs low < high"),
    ({"rope": 0}, "rope needs low < high"),
    ({"rope": "wide"}, "rope must be a number"),
])
def test_errors(fab, kwargs, match):
    args = {"treatment": "B", "control": "A", **kwargs}
    with pytest.raises(ValueError, match=match):
        compare(fab, args.pop("treatment"), args.pop("control"), **args)


def test_not_a_result(fab):
    with pytest.raises(TypeError, match="ConversionResult"):
        compare(fab.posterior, "B", "A")


def test_map_result_is_rejected(model):
    one = _fabricate(model, chains=1, draws=1)
    with pytest.raises(ValueError, match="compare needs posterior draws"):
        compare(one, "B", "A")
    fake_map = _fabricate(model)
    fake_map.kind = "point"  # a result knows it holds a point, not draws
    with pytest.raises(ValueError, match="MAP"):
        compare(fake_map, "B", "A")


# ------------------------------------------------------------------ seeded simulations
def _fit(seed, rates, locs, *, enrollment, followup, n=4000):
    ev = bc.simulate(n_units=[n, n], eventual_rate=rates, lag_loc=locs, lag_shape=2.0,
                     enrollment=enrollment, followup=followup, resolution="D",
                     random_seed=seed)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    with warnings.catch_warnings():
        warnings.simplefilter("error", bc.ConvergenceWarning)
        # two arms -> pooling "none", where the parametrization plays no part; fixing it lets
        # fits of data with the same row layout reuse one compiled model (the compile cache
        # keys on it)
        model = bc.ConversionModel(data, parametrization="centered")
        return model.fit(draws=500, tune=500, chains=4, random_seed=seed, progressbar=False)


def test_real_lift_is_detected():
    # eventual rate 0.30 vs 0.36 (a 20% relative lift), same lags, observed to ~3 mean lags
    res = _fit(1, [0.30, 0.36], [10.0, 10.0], enrollment=30, followup=30)
    ro = compare(res, "B", "A")
    assert isinstance(ro, Readout)
    row = ro.to_frame().iloc[0]
    assert row["prob_better"] > 0.95, ro
    assert row["lift_lower"] < 0.2 < row["lift_upper"], ro
    assert row["loss_treatment"] < row["loss_control"]


def test_no_difference_stays_uncertain():
    res = _fit(2, [0.30, 0.30], [10.0, 10.0], enrollment=30, followup=30)
    row = compare(res, "B", "A", rope=0.02).to_frame().iloc[0]
    assert 0.05 < row["prob_better"] < 0.95, row
    assert row["diff_lower"] < 0 < row["diff_upper"]
    assert row["prob_rope"] > 0.9, row


def test_faster_is_not_more():
    # same eventual rate, B converts 3x faster; observed early (ages 10 to 30 days). Across
    # seeds P(B better) on the eventual rate is close to uniform, not pinned at 0.5, and with
    # day-resolution timestamps slightly tilted towards B (validation/null_uniformity.py
    # --scenario faster); this seed gives 0.48
    res = _fit(3, [0.30, 0.30], [15.0, 5.0], enrollment=20, followup=10)
    naive = res.data.cohort_table()["naive_rate"]
    assert naive["B"] > naive["A"] + 0.05  # the naive rate says B converts more
    ro = compare(res, "B", "A", horizon=7)
    f = ro.to_frame().set_index("metric")
    assert 0.1 < f.loc["eventual", "prob_better"] < 0.9, ro   # eventually: no clear winner
    assert f.loc["by_horizon", "prob_better"] > 0.95, ro      # within a week: B


# ------------------------------------------------------------------ the lift near a zero control
def _fabricate_rates(model, c_draws, labels=("A", "B", "C")):
    """A fabricated result with the given eventual-rate draws (chain, draw, cohort)."""
    c = np.asarray(c_draws, dtype=float)
    shape = c.shape
    dims = ("chain", "draw", "cohort")
    post = xr.Dataset({"eventual_rate": (dims, c), "lag_loc": (dims, np.full(shape, 5.0)),
                       "lag_shape": (dims, np.full(shape, 2.0))},
                      coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1]),
                              "cohort": list(labels)})
    return ConversionResult.from_fit(model, xr.DataTree.from_dict({"posterior": post}),
                                      sampler="fabricated", timing={}, random_seed=None)


def test_lift_is_not_defined_when_the_control_interval_reaches_zero(model):
    # control A: no conversions among 200 units, a posterior piled up at 0 (draws down to
    # 1e-20); B: 3 of 200. The mean of B/A - 1 was +7.6e80 % on such draws.
    rng = np.random.default_rng(1)
    a = np.exp(rng.uniform(np.log(1e-20), np.log(0.02), (2, 500)))
    b = rng.beta(4, 198, (2, 500))
    res = _fabricate_rates(model, np.stack([a, b, b], axis=-1))
    ro = compare(res, "B", "A", horizon=60)
    f = ro.to_frame()
    f = f[f["unit"] == "rate"]  # the median lags are bounded away from 0
    assert not f["lift_defined"].any()
    assert f[["lift_median", "lift_lower", "lift_upper"]].isna().all().all()
    assert "lift not defined (the A rate's 94% HDI reaches 0)" in ro.headline()
    text = repr(ro) + ro._repr_html_()
    assert "e+" not in text and "not defined" in text
    # the difference in percentage points stays reported
    assert np.isfinite(f["diff_mean"]).all()
    # swapping the arms, the control (B) is bounded away from 0: a lift, robustly summarised
    g = compare(res, "A", "B").to_frame().iloc[0]
    assert g["lift_defined"] and -1 <= g["lift_lower"] <= g["lift_median"] <= g["lift_upper"]


def test_lift_median_is_robust_to_a_heavy_tail(model):
    # a control whose draws are mostly near 0.3 but a few near 1e-6: the median and HDI of
    # the lift stay put where the mean of the ratio explodes
    rng = np.random.default_rng(2)
    a = np.clip(rng.normal(0.3, 0.01, (2, 500)), 0.01, 0.99)
    a[0, :3] = 1e-6
    b = np.clip(rng.normal(0.33, 0.01, (2, 500)), 0.01, 0.99)
    row = compare(_fabricate_rates(model, np.stack([a, b, b], axis=-1)),
                  "B", "A").to_frame().iloc[0]
    lift = b / a - 1
    assert lift.mean() > 100  # what the old lift_mean reported
    np.testing.assert_allclose(row["lift_median"], np.median(lift))
    assert 0.05 < row["lift_median"] < 0.15 and row["lift_upper"] < 0.3


# ------------------------------------------------------------------ what readers see first
@pytest.fixture(scope="module")
def weak_but_clear():
    """An ACTG-like experiment: 30 days of follow-up into a lag of mean 90 days, so the eventual
    rates are weakly identified, while conversion within 20 days differs clearly."""
    ev = bc.simulate(n_units=[1500, 1500], eventual_rate=[0.3, 0.6], lag_loc=90.0,
                     lag_shape=1.2, enrollment=30, followup=30, random_seed=5, resolution="D")
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bc.ConversionModel(data).fit(draws=400, tune=400, chains=2, random_seed=1,
                                            progressbar=False)


def test_readout_leads_with_the_horizon_when_the_eventual_rate_is_weak(weak_but_clear):
    res = weak_but_clear
    assert res.summary()["weakly_identified"].all()
    ro = compare(res, "B", "A", horizon=20)
    assert ro.lead == "by_horizon" and set(ro.weakly_identified) == {"A", "B"}
    lines = repr(ro).splitlines()
    assert lines[1].startswith("P(B better than A) on the rate by 20 days")
    assert ro.headline() == ro.headline("by_horizon")
    assert ro.to_frame().set_index("metric").loc["by_horizon", "prob_better"] > 0.99
    assert "weakly identified" in repr(ro)
    html = ro._repr_html_()
    assert html.index("rate by 20 days") < html.index("eventual rate")
    ax = ro.plot()
    assert "rate by 20 days" in ax.get_xlabel()
    # without a horizon there is nothing better to lead with; the text says to add one
    plain = compare(res, "B", "A")
    assert plain.lead == "eventual" and "add a horizon inside the follow-up" in repr(plain)


def test_report_first_line_is_the_horizon_readout(weak_but_clear, tmp_path):
    import re

    ro = compare(weak_but_clear, "B", "A", horizon=20)
    paths = bc.write_report(weak_but_clear, ro, tmp_path, title="t")
    text = paths["report"].read_text()
    first = re.search(r"<p class=\"headline\">(.*?)</p>", text).group(1)
    assert first.startswith("P(B better than A) on the rate by 20 days")
    assert text.index("rate by 20 days") < text.index("on the eventual rate")


def test_numeric_arms_are_named_with_their_column(model):
    data = bc.prepare(bc.datasets.load_rossi(), duration="week", event="arrest", cohort="fin",
                      time_unit="W")
    m = bc.ConversionModel(data)
    rng = np.random.default_rng(0)
    res = _fabricate_rates(m, rng.uniform(0.2, 0.4, (2, 100, 2)), labels=("0", "1"))
    ro = compare(res, 1, 0, higher_is_better=False)
    assert ro.headline().startswith("P(fin=1 better (lower) than fin=0)")
    assert "fin=1 vs fin=0" in repr(ro)
    assert ro.to_frame()["treatment"].iloc[0] == 1  # the tables keep the labels
