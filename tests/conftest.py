"""Shared test fixtures.

``py_mode`` evaluates PyTensor graphs with the Python linker and no graph rewrites: no numba or
C compilation, so tests about a model's structure and about how its likelihood terms are
composed run in a fraction of a second instead of the 5-35 s a cold numba compile of each
family's graph costs. The numba code that sampling runs is held to the numpy reference in
``test_lags.py`` (every family, values and gradients) and exercised by the seeded fits.
"""

import pytest
from pytensor.compile.mode import Mode


@pytest.fixture(scope="session")
def py_mode():
    """A PyTensor mode that compiles nothing: Python linker, no rewrites."""
    return Mode(linker="py", optimizer=None)


def fabricate(model, rate, loc, shape=2.0, *, chains=2, draws=200, seed=0, rate_sd=0.02,
              loc_sd=0.05, shape_sd=0.05, labels=None, sample_stats=None, edit=None):
    """A ConversionResult from made-up posterior draws around given values (no sampling).

    Draws per (chain, draw, cohort): eventual rate ``rate + Normal(0, rate_sd)`` clipped to
    [0.01, 0.99], lag location ``loc · exp(Normal(0, loc_sd))``, shape ``shape · exp(Normal(0,
    shape_sd))``, in that order from ``numpy.random.default_rng(seed)``. ``edit(rate, loc,
    shape)`` may change the arrays in place before they are stored (e.g. chains that disagree);
    ``sample_stats`` is an optional ``xarray.Dataset``.
    """
    import numpy as np
    import xarray as xr

    from bayesconv.posterior.result import ConversionResult

    labels = [str(c) for c in (model.data.cohorts if labels is None else labels)]
    rng = np.random.default_rng(seed)
    dims3 = (chains, draws, len(labels))
    c = np.clip(np.asarray(rate) + rng.normal(0, rate_sd, dims3), 0.01, 0.99)
    lc = np.asarray(loc) * np.exp(rng.normal(0, loc_sd, dims3))
    k = np.asarray(shape) * np.exp(rng.normal(0, shape_sd, dims3))
    if edit is not None:
        edit(c, lc, k)
    dims = ("chain", "draw", "cohort")
    post = xr.Dataset({"eventual_rate": (dims, c), "lag_loc": (dims, lc), "lag_shape": (dims, k)},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws),
                              "cohort": labels})
    groups = {"posterior": post}
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    return ConversionResult.from_fit(model, xr.DataTree.from_dict(groups), sampler="fabricated",
                                     timing={}, random_seed=None)


@pytest.fixture(scope="module")
def three_arm_model():
    """A model of three simulated arms (A, B, C; 200 units each, day-floored), for readouts
    on fabricated posteriors."""
    import bayesconv as bc

    ev = bc.simulate(n_units=[200, 200, 200], eventual_rate=0.3, lag_loc=5.0, lag_shape=2.0,
                     enrollment=10, followup=10, resolution="D", random_seed=1)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    return bc.ConversionModel(data)


@pytest.fixture(scope="module")
def spark():
    """A PySpark session in local mode (2 cores, UTC), for the tests marked ``spark``; skipped
    without pyspark or Java. Its Python workers run this interpreter (they import bayesconv)."""
    import os
    import shutil
    import sys

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH (PySpark needs Java 17)")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("bayesconv-tests")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
