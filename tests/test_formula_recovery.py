"""Seeded recovery fits of formula models (issue 14): the truth inside its intervals.

* A fixed effect on logit(c) and on log lag, a group term with 8 levels and a random walk over
  12 periods (2 arms × 8 segments × 12 periods, 150 units per cell, 28,800 units,
  day-resolution timestamps).
* A 2-arm × 3-platform experiment whose treatment lifts one platform only: the per-platform
  readout finds it there and is not decisive elsewhere; the overall readout is the unit-weighted
  average of the per-platform effects.

Each fit takes about a minute with its compile: marked slow, run by ``validation/recovery.py``
(``make test-slow``), which records the outcome in ``validation/recovery.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

import bayesconv as bc

pytestmark = pytest.mark.slow

SEGMENTS = [f"s{i}" for i in range(8)]
PERIODS = 12
TRUE = {"rate_intercept": logit(0.25), "rate_arm": 0.4, "loc_intercept": np.log(6.0),
        "loc_arm": -0.3, "segment_sd": 0.4, "walk_sd": 0.15, "lag_shape": 1.5}
FORMULA = {"eventual_rate": "cohort + (1 | segment) + rw(period)", "lag_loc": "cohort"}


def _recovery_data(seed):
    """2 arms × 8 segments × 12 weekly signup periods, 150 units per cell; returns the events
    and the true segment effects and walk (both on logit(c))."""
    rng = np.random.default_rng(seed)
    seg = rng.normal(0.0, TRUE["segment_sd"], len(SEGMENTS))
    walk = np.r_[0.0, np.cumsum(rng.normal(0.0, TRUE["walk_sd"], PERIODS - 1))]
    grid = pd.MultiIndex.from_product([["A", "B"], range(len(SEGMENTS)), range(PERIODS)],
                                      names=["cohort", "s", "period"]).to_frame(index=False)
    b = (grid["cohort"] == "B").to_numpy()
    eta = TRUE["rate_intercept"] + TRUE["rate_arm"] * b + seg[grid["s"]] + walk[grid["period"]]
    cells = pd.DataFrame({
        "cohort": grid["cohort"], "segment": [SEGMENTS[i] for i in grid["s"]],
        "period": grid["period"], "n_units": 150, "eventual_rate": expit(eta),
        "lag_loc": np.exp(TRUE["loc_intercept"] + TRUE["loc_arm"] * b),
        "lag_shape": TRUE["lag_shape"]})
    ev = bc.simulate(cells=cells, lag="gamma", period_length=7.0, enrollment=7.0 * PERIODS,
                     followup=30.0, resolution="D", random_seed=seed)
    return ev, seg, walk


_FITS: dict = {}


def _recovery_fit(seed):
    if seed not in _FITS:
        ev, seg, walk = _recovery_data(seed)
        data = bc.prepare(ev, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort",
                          covariates=["segment", "period"])
        res = bc.ConversionModel(data, lag="gamma", formula=FORMULA).fit(
            draws=500, chains=4, random_seed=seed, progressbar=False)
        _FITS[seed] = (res, seg, walk)
    return _FITS[seed]


def _interval(draws, prob=0.94):
    flat = np.asarray(draws).reshape(-1, *np.shape(draws)[2:])
    lo, hi = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return lo, hi


@pytest.mark.parametrize("seed", [0, 1])
def test_formula_recovery(seed):
    """Fixed effects, segment levels and the walk recovered; R-hat ≤ 1.01, no divergences.

    The fixed effects (arm on logit(c) and on log lag) must lie inside their 94% intervals.
    The 8 segment levels (intercept + effect: the segment's logit(c) in arm A, period 1) and
    the 11 walk steps from period 1 are 19 truths: 94% intervals miss about 1 of them by
    chance, so at most 3 misses are allowed (P(more than 3) ≈ 3% at nominal coverage), and
    every one of them must lie inside its 99.9% interval.
    """
    res, seg, walk = _recovery_fit(seed)
    diag = res.diagnostics()
    assert diag["divergences"] == 0, diag
    assert diag["max_r_hat"] <= 1.01, diag
    post = res.posterior
    s = res.spec.time_scale
    for name, truth in (("logit_rate_beta", TRUE["rate_arm"]),
                        ("log_lag_loc_beta", TRUE["loc_arm"])):
        assert post[name].shape[-1] == 1  # the arm's column only (cohort[B])
        draws = post[name].values[..., 0]
        lo, hi = _interval(draws)
        assert lo <= truth <= hi, (name, truth, lo, hi)
    # the lag's intercept on log(location / time scale)
    lo, hi = _interval(post["log_lag_loc_intercept"].values)
    assert lo <= TRUE["loc_intercept"] - np.log(s) <= hi
    level = (post["logit_rate_intercept"] + post["logit_rate_1_by_segment"]
             .sel(segment=SEGMENTS)).values
    truth_level = TRUE["rate_intercept"] + seg
    steps = post["logit_rate_rw_period"].values[..., 1:]
    truths = np.r_[truth_level, walk[1:]]
    values = np.concatenate([level, steps], axis=-1)
    lo, hi = _interval(values)
    misses = int(np.sum((truths < lo) | (truths > hi)))
    assert misses <= 3, (misses, truths, lo, hi)
    lo, hi = _interval(values, 0.999)
    assert np.all((lo <= truths) & (truths <= hi)), (truths, lo, hi)


PLATFORMS = ["ios", "android", "web"]
BASE = {"ios": 0.20, "android": 0.15, "web": 0.25}
LIFTED = "ios"


def _platform_data(seed, n=4000):
    rows = []
    for p in PLATFORMS:
        for arm in ("A", "B"):
            c = BASE[p] + (0.06 if (p == LIFTED and arm == "B") else 0.0)
            rows.append({"cohort": arm, "platform": p, "n_units": n, "eventual_rate": c,
                         "lag_loc": 5.0, "lag_shape": 1.5})
    return bc.simulate(cells=pd.DataFrame(rows), lag="gamma", enrollment=28.0, followup=21.0,
                       resolution="D", random_seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_platform_segment_readout_finds_the_lifted_platform(seed):
    """Treatment lifts iOS only (20% → 26%): P(better) > 0.95 on iOS, between 0.05 and 0.95
    on Android and web; the overall readout is the unit-weighted average of the per-platform
    effects draw by draw; no divergences."""
    ev = _platform_data(seed)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort", covariates=["platform"])
    res = bc.ConversionModel(data, lag="gamma", formula={
        "eventual_rate": "cohort + (cohort | platform)", "lag_loc": "cohort"}).fit(
        draws=500, chains=4, random_seed=seed, progressbar=False)
    diag = res.diagnostics()
    assert diag["divergences"] == 0 and diag["max_r_hat"] <= 1.01, diag
    ro = bc.compare(res, treatment="B", control="A", by="platform")
    frame = ro.to_frame()
    eventual = frame[(frame["metric"] == "eventual") & frame["platform"].notna()]
    p_better = eventual.set_index("platform")["prob_better"]
    assert p_better[LIFTED] > 0.95, p_better
    for p in set(PLATFORMS) - {LIFTED}:
        assert 0.05 < p_better[p] < 0.95, p_better
    # the true per-platform differences inside their intervals
    diff = eventual.set_index("platform")
    for p in PLATFORMS:
        truth = 0.06 if p == LIFTED else 0.0
        assert diff.loc[p, "diff_lower"] <= truth <= diff.loc[p, "diff_upper"], diff.loc[p]
    units = ev.groupby("platform", observed=True).size()
    share = units / units.sum()
    overall = ro.draws["diff"].sel(metric="eventual", treatment="B").values
    avg = sum(share[p] * ro.segments[p].draws["diff"].sel(metric="eventual", treatment="B")
              .values for p in PLATFORMS)
    mcse = overall.std() / np.sqrt(float(diag["min_ess_bulk"]))
    assert abs(overall.mean() - avg.mean()) < mcse
