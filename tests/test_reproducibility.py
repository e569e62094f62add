"""Same seed, same draws; results independent of row order and of the time unit."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesconv as bc

KW = dict(draws=400, tune=500, chains=2, random_seed=11, progressbar=False)


@pytest.fixture(scope="module")
def events():
    return bc.simulate(n_units=[500, 500, 200], eventual_rate=[0.25, 0.4, 0.3], lag_loc=5.0,
                       lag_shape=1.5, enrollment=20, followup=20, random_seed=6,
                       resolution="D")


def _fit(events, unit="D", sampler="nutpie"):
    data = bc.prepare(events, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort", time_unit=unit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        return bc.ConversionModel(data).fit(sampler=sampler, **KW)


def test_row_order_does_not_matter(events):
    shuffled = events.sample(frac=1.0, random_state=3)
    a = bc.prepare(events, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort")
    b = bc.prepare(shuffled, created="created", converted="converted",
                   observed_until="observed_until", cohort="cohort")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    np.testing.assert_array_equal(_fit(events).eventual_rate().values,
                                  _fit(shuffled).eventual_rate().values)


def test_hours_and_days_give_the_same_posterior(events):
    days, hours = _fit(events, "D"), _fit(events, "h")
    rd, rh = days.eventual_rate(), hours.eventual_rate()
    # Monte Carlo standard error of the mean, from the bulk ESS of each fit
    import arviz_stats as azs

    mcse = np.hypot(azs.mcse(rd).values, azs.mcse(rh).values)
    diff = np.abs(rd.mean(("chain", "draw")).values - rh.mean(("chain", "draw")).values)
    assert np.all(diff < 4 * mcse + 1e-9), (diff, mcse)
    # the median lag is the same calendar time: 24 hours per day
    np.testing.assert_allclose(hours.posterior["median_lag"].mean().values / 24,
                               days.posterior["median_lag"].mean().values, rtol=0.02)
