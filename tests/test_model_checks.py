"""Model checks: calibration by follow-up age band, prior predictive curves (bayesconv.checks)."""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from conftest import fabricate

import bayesconv as bc
from bayesconv.inference.prior import prior_result
from bayesconv.posterior.calibration import _unit_followup
from bayesconv.posterior.result import ConversionResult

matplotlib.use("Agg")

TRUE_C = np.array([0.3, 0.6])
TRUE_LOC = np.array([5.0, 10.0])   # gamma mean lag, days
TRUE_K = np.array([2.0, 1.2])


@pytest.fixture(scope="module")
def model():
    ev = bc.simulate(n_units=[1500, 1500], eventual_rate=TRUE_C, lag_loc=TRUE_LOC,
                     lag_shape=TRUE_K, random_seed=3, enrollment=40, followup=10)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    return bc.ConversionModel(data)


def _fabricate(model, chains=2, draws=300, seed=0, scale=1.0):
    """A posterior centred on the truth (``scale`` multiplies the true lag locations)."""
    return fabricate(model, TRUE_C, scale * TRUE_LOC, TRUE_K, chains=chains, draws=draws,
                     seed=seed)


def test_unit_followup_accounts_for_every_unit(model):
    data = model.data
    fu = _unit_followup(data)
    assert fu["units"].sum() == data.n_units
    assert fu["converted"].sum() == (data.count * data.converted).sum()
    assert (fu["converted"] <= fu["units"]).all()


def test_calibration_table_layout(model):
    res = _fabricate(model)
    table = res.calibration_table(bands=8, random_seed=1)
    assert list(table.columns) == ["band", "age_lower", "age_upper", "age_mean", "units",
                                   "converted", "observed_share", "predicted_mean",
                                   "predicted_lower", "predicted_upper", "inside"]
    assert 1 <= len(table) <= 8 and table["units"].sum() == model.data.n_units
    assert table["converted"].sum() == (model.data.count * model.data.converted).sum()
    for col in ("observed_share", "predicted_mean", "predicted_lower", "predicted_upper"):
        assert table[col].between(0, 1).all()
    assert (table["predicted_lower"] <= table["predicted_upper"]).all()
    assert table["age_lower"].is_monotonic_increasing
    assert table.attrs["time_unit"] == "D" and table.attrs["ci_prob"] == 0.94
    by = res.calibration_table(bands=[0, 15, 30, 50.0], by_cohort=True, random_seed=1)
    assert set(by["cohort"]) == {"A", "B"} and by["units"].sum() == model.data.n_units
    assert list(by["band"][:3]) == ["[0, 15)", "[15, 30)", "[30, 50]"]


def test_calibration_at_the_truth_and_off_it(model):
    truth = _fabricate(model).calibration_table(bands=10, by_cohort=True, random_seed=2)
    assert truth["inside"].mean() >= 0.8, truth
    # the older the band, the more has converted
    for _, t in truth.groupby("cohort"):
        assert t["predicted_mean"].is_monotonic_increasing
    # lags three times too long: the model under-predicts conversion in young bands
    slow = _fabricate(model, scale=3.0).calibration_table(bands=10, by_cohort=True,
                             random_seed=2)
    assert slow["inside"].mean() < 0.6, slow
    assert (slow["observed_share"] > slow["predicted_upper"]).sum() >= 5


def test_calibration_bad_arguments(model):
    res = _fabricate(model)
    with pytest.raises(ValueError, match="band edges"):
        res.calibration_table(bands=[5, 1])
    with pytest.raises(ValueError, match="positive number of bands"):
        res.calibration_table(bands=0)
    with pytest.raises(ValueError, match="ci_prob"):
        res.calibration_table(ci_prob=1.5)


def test_calibration_duration_layout():
    data = bc.prepare(bc.datasets.load_rossi(), duration="week", event="arrest", cohort="fin",
                      time_unit="W")
    assert data.followup is None
    fu = _unit_followup(data)
    assert fu["units"].sum() == data.n_units
    m = bc.ConversionModel(data)
    res = _fabricate_like(m, c=0.3, loc=40.0, k=1.2)
    table = res.calibration_table(bands=4, random_seed=0)
    assert table["units"].sum() == data.n_units and table["observed_share"].between(0, 1).all()


def _fabricate_like(model, c, loc, k, draws=100):
    rng = np.random.default_rng(0)
    g = model.data.n_cohorts
    shape = (2, draws, g)
    dims = ("chain", "draw", "cohort")
    coords = {"chain": [0, 1], "draw": np.arange(draws), "cohort": model.coords["cohort"]}
    post = xr.Dataset({"eventual_rate": (dims, np.full(shape, c) + rng.normal(0, .01, shape)),
                       "lag_loc": (dims, np.full(shape, loc)),
                       "lag_shape": (dims, np.full(shape, k))}, coords=coords)
    return ConversionResult.from_fit(model, xr.DataTree.from_dict({"posterior": post}),
                                      sampler="fabricated", timing={}, random_seed=None)


def test_plot_calibration(model):
    res = _fabricate(model)
    ax = res.plot_calibration(bands=6, random_seed=1)
    assert len(ax.calibration_table) == 6
    assert ax.get_xlabel().startswith("predicted share converted")
    assert ax.get_ylabel() == "observed share converted"
    identity = [ln for ln in ax.get_lines() if ln.get_label() == "perfect calibration"]
    assert len(identity) == 1
    ax2 = res.plot_calibration(by_cohort=True, bands=5, random_seed=1)
    assert len(ax2.calibration_table) == 10


def test_prior_predictive_draws(model):
    prior = model.sample_prior_predictive(draws=2000, random_seed=1)
    assert prior.sizes == {"chain": 1, "draw": 2000, "cohort": 2}
    for v in ("eventual_rate", "lag_loc", "lag_shape", "median_lag"):
        assert v in prior and np.all(np.isfinite(prior[v].values))
    # DEFAULT_PRIORS logit_rate mu = -1.5: the prior median eventual rate is expit(-1.5) = 0.18
    assert float(prior["eventual_rate"].median()) == pytest.approx(1 / (1 + np.exp(1.5)), abs=0.03)
    assert bool(((prior["eventual_rate"] > 0) & (prior["eventual_rate"] < 1)).all())
    # lag locations are set relative to the data's median conversion time (time_scale)
    ratio = float(np.median(prior["lag_loc"].values / model.spec.time_scale))
    assert ratio == pytest.approx(1.0, rel=0.15)
    assert prior.attrs["time_unit"] == "D"
    # other priors move the draws
    low = bc.ConversionModel(model.data, priors={"logit_rate": {"mu": -2.0, "sigma": 0.5}})
    p2 = low.sample_prior_predictive(draws=1000, random_seed=1)
    assert float(p2["eventual_rate"].median()) == pytest.approx(1 / (1 + np.exp(2)), abs=0.02)


def test_prior_curves(model):
    res = prior_result(model, draws=300, random_seed=2)
    cur = res.curves([0.0, 5.0, 50.0, 1e4])
    assert cur.dims == ("chain", "draw", "cohort", "t") and cur.sizes["draw"] == 300
    assert np.all((cur.values >= 0) & (cur.values <= 1))
    assert np.all(np.diff(cur.values, axis=-1) >= -1e-12)
    ax = bc.plot_prior_curves(model, draws=300, n_lines=20, random_seed=2)
    assert ax.get_xlabel() == "time since creation (days)"
    assert ax.get_ylabel() == "share of units converted"
    # 20 spaghetti lines, the median and one Kaplan–Meier step per cohort
    assert len(ax.get_lines()) == 20 + 1 + 2
    ax2 = model.plot_prior_curves(draws=100, n_lines=5, km=False, cohort="B")
    assert len(ax2.get_lines()) == 6
