"""Parameter recovery for every lag family: simulate from the family, fit it, find the truth.

Two cohorts of 2,000 units (pooling "auto" = independent cohorts), 4 chains x 500 draws with
nutpie. Exact conversion times for some families and daily bins (interval-censored rows,
``bin_width=1``) for others, so both likelihood paths run through the sampler.

Five fits of 4 x 500 draws (the generalized gamma alone ~70 s with a cold compile cache): marked
slow, run by ``validation/recovery.py`` (``make test-slow``), not by ``make test``.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesconv as bc
from bayesconv.lags import get_lag

RATES = [0.3, 0.45]
LOCS = [5.0, 8.0]
# family -> (extra simulate arguments, binned?)
CASES = {
    "exponential": ({}, False),
    "weibull": ({"lag_shape": 1.5}, True),
    "gamma": ({"lag_shape": 2.0}, False),
    "lognormal": ({"lag_shape": 1.2}, False),
    "gengamma": ({"lag_shape": 1.5, "lag_q": 0.5}, True),
}

_FITS: dict = {}

pytestmark = pytest.mark.slow


def _fit(lag):
    if lag not in _FITS:
        extra, binned = CASES[lag]
        ev = bc.simulate(n_units=[2000, 2000], eventual_rate=RATES, lag_loc=LOCS, lag=lag,
                         enrollment=30, followup=40, random_seed=12, **extra)
        data = bc.prepare(ev, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort",
                          bin_width=1.0 if binned else None)
        model = bc.ConversionModel(data, lag=lag)
        result = model.fit(draws=500, chains=4, random_seed=3, progressbar=False)
        _FITS[lag] = (ev, data, result)
    return _FITS[lag]


@pytest.mark.filterwarnings("ignore::bayesconv.IdentificationWarning")
@pytest.mark.parametrize("lag", list(CASES))
def test_recovery(lag):
    ev, data, result = _fit(lag)
    extra, binned = CASES[lag]
    assert result.spec.lag == lag and result.spec.pooling == "none"
    assert bool((data.lower < data.duration).any()) == binned  # interval-censored rows
    diag = result.diagnostics()
    assert diag["divergences"] == 0
    assert diag["max_r_hat"] < 1.02
    table = result.summary()
    truth = ev.attrs["truth"]
    for label, row in table.iterrows():
        rate = truth[label]["eventual_rate"]
        assert row.rate_lower <= rate <= row.rate_upper, (lag, label, rate, row)
        # the median lag too (the true median from the true parameters), in its 99% interval
        fam = get_lag(lag)
        params = [truth[label][p] for p in ("lag_loc", *(q.var for q in fam.extra_params))]
        true_median = float(fam.median(*params))
        draws = result.posterior["median_lag"].sel(cohort=str(label)).values
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo <= true_median <= hi, (lag, label, true_median, lo, hi)
    # every lag parameter is in the posterior, per cohort; curves and nowcasts work
    post = result.posterior
    for p in result.family.extra_params:
        assert post[p.var].dims == ("chain", "draw", "cohort")
    assert ("lag_shape" in post) == (lag != "exponential")
    curves = result.curves([0.0, 5.0, 50.0])
    assert curves.shape == (4, 500, 2, 3)
    assert np.all(curves.isel(t=0) == 0) and np.all(np.diff(curves.values, axis=-1) >= 0)
    assert np.isfinite(result.pointwise_loglik().values).all()
    now = result.nowcast(within=7.0, random_seed=1)
    assert np.all(now["remaining_mean"] >= 0)


def test_gengamma_shared_q_recovered():
    ev, _, result = _fit("gengamma")
    q = result.posterior["lag_q"]
    # one q for all cohorts
    np.testing.assert_array_equal(q.isel(cohort=0).values, q.isel(cohort=1).values)
    lo, hi = np.quantile(q.values[..., 0], [0.005, 0.995])
    assert lo <= ev.attrs["truth"]["A"]["lag_q"] <= hi


def test_gengamma_result_saves_and_loads(tmp_path):
    _, _, result = _fit("gengamma")
    path = result.save(tmp_path / "gg.zarr")
    loaded = bc.load(path)
    assert loaded.spec == result.spec
    assert loaded.family.name == "gengamma"
    np.testing.assert_allclose(loaded.curves([3.0, 10.0]).values,
                               result.curves([3.0, 10.0]).values)
    assert loaded.summary()["rate_mean"].tolist() == result.summary()["rate_mean"].tolist()
