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


# A seeded fit whose posterior draws are hashed: gamma lag (the fused incomplete-gamma Op on the
# censored rows), partial pooling of 8 cohorts of 1,200 down to 1 unit (non-centred: mu + sigma z,
# where fast-math contracted multiply-adds differently in fresh and cached code), nutpie. A
# 2-arm fit with independent priors happened to give the same draws either way, so it would not
# catch the defect.
_FIT_SCRIPT = """
import hashlib, os, warnings
import numpy as np
import bayesconv as bc

if os.environ.get("BAYESCONV_TEST_FASTMATH_FIRST"):
    # the user's own PyTensor code (default flags: fast-math) compiles bayesconv's gamma lag
    # before the fit, in this process and into the shared caches
    import pytensor
    import pytensor.tensor as pt
    from bayesconv.lags import PT
    t, loc, k = pt.dvector("t"), pt.dvector("loc"), pt.dvector("k")
    val = bc.get_lag("gamma").logsf(t, loc, k, xp=PT).sum()
    with pytensor.config.change_flags(numba__fastmath=True):
        f = pytensor.function([t, loc, k], [val, *pytensor.grad(val, [loc, k])], mode="NUMBA")
    f(np.array([1.0, 5.0]), np.array([3.0, 3.0]), np.array([1.5, 1.5]))

ev = bc.simulate(n_units=[1200, 600, 300, 150, 60, 20, 5, 1], eventual_rate=0.35, lag_loc=8.0,
                 lag_shape=1.5, enrollment=30, followup=40, random_seed=21, resolution="D")
data = bc.prepare(ev, created="created", converted="converted",
                  observed_until="observed_until", cohort="cohort")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    res = bc.ConversionModel(data).fit(draws=150, tune=200, chains=2, random_seed=3,
                                       progressbar=False)
post = res.posterior
h = hashlib.sha256()
for name in sorted(post.data_vars):
    h.update(name.encode() + np.ascontiguousarray(post[name].values).tobytes())
print("DRAWS", h.hexdigest())
print("SOURCE", res.timing["compile_source"])
"""


def _fresh_process(cache_dir, hash_seed, fastmath_first=False):
    """Start the fit in a new interpreter whose PyTensor and numba caches live in cache_dir."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed), NUMBA_CACHE_DIR=str(cache_dir / "nb"),
               PYTENSOR_FLAGS=f"base_compiledir={cache_dir / 'pt'}",
               BAYESCONV_COMPILE_CACHE=str(cache_dir / "bc"))
    if fastmath_first:
        env["BAYESCONV_TEST_FASTMATH_FIRST"] = "1"
    return subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _draws_hash(proc, source=None):
    """The hash of the process's draws; checks where its compiled model came from (unless
    ``source`` is None)."""
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    found = dict(line.split()[:2] for line in out.splitlines()
                 if line.startswith(("DRAWS", "SOURCE")))
    assert source is None or found["SOURCE"] == source
    return found["DRAWS"]


def test_same_seed_same_draws_in_fresh_and_cached_processes(tmp_path):
    """Bit-identical draws whether the compiled code is built from scratch or read from cache.

    Two interpreters start with empty compile caches (PyTensor's base_compiledir, numba's
    cache dir, bayesconv's persistent compile cache) and different hash seeds; a third reuses
    the first one's now-warm caches (the compiled model loaded from disk), as
    every process after the first does on a user's machine. In the second, the user's own
    PyTensor code first compiles bayesconv's gamma lag with PyTensor's default flags
    (fast-math), and a fourth process fits on the caches that left. Before the fixes (PyTensor's
    fast-math flags, and numba's own on-disk cache of the incomplete-gamma kernels, which kept a
    version compiled under a fast-math caller; see bayesconv.inference.compile) the warm and the
    polluted processes drew different values.
    """
    first, other = tmp_path / "a", tmp_path / "b"
    procs = [_fresh_process(first, 1), _fresh_process(other, 2, fastmath_first=True)]
    fresh_a, polluted = _draws_hash(procs[0], "compiled"), _draws_hash(procs[1], "compiled")
    assert any((first / "pt" / "numba").iterdir())  # the cache was written ...
    procs = [_fresh_process(first, 3), _fresh_process(other, 4)]
    # ... and is read here. Not after the pollution: the user's compile named bayesconv's
    # kernels by random ids before bayesconv could, so that process's entry in the persistent
    # cache is keyed by them and the next process compiles once more (a miss, not a wrong
    # result: the draws are the point here)
    warm, after_pollution = _draws_hash(procs[0], "disk"), _draws_hash(procs[1])
    assert fresh_a == polluted == warm == after_pollution
