"""The JAX path: the incomplete-gamma kernel in JAX, the log density and its gradient through
PyTensor's JAX back end against the numba path, and fits with the JAX samplers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("jax")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import bayesconv as bc  # noqa: E402
from bayesconv.lags.incgamma import log_gamma_pq_kernel  # noqa: E402
from bayesconv.lags.incgamma_jax import log_gamma_pq_jax  # noqa: E402
from bayesconv.lags.incgamma_op import register_jax  # noqa: E402

#: A grid over both branches (series, continued fraction) and the edges x = 0, x = inf.
K = np.logspace(-2, 3, 41)
X = np.concatenate([[0.0, 1e-300, 1e-10], np.logspace(-6, 3.5, 60), [np.inf]])


def test_kernel_matches_the_numba_kernel():
    k, x = np.meshgrid(K, X)
    for ref, got in zip(log_gamma_pq_kernel(k, x), log_gamma_pq_jax(k, x), strict=True):
        got = np.asarray(got)
        finite = np.isfinite(ref)
        assert np.array_equal(finite, np.isfinite(got))
        assert np.array_equal(ref[~finite], got[~finite])
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-11, atol=1e-12)


def test_autodiff_of_the_kernel_gives_the_shape_and_argument_derivatives():
    k, x = np.meshgrid(np.logspace(-1, 2, 13), np.logspace(-3, 2.5, 17))
    lp, lq, dlp, dlq = log_gamma_pq_kernel(k, x)
    gk_p, gx_p = jax.grad(lambda a, b: log_gamma_pq_jax(a, b)[0].sum(), (0, 1))(k, x)
    gk_q, gx_q = jax.grad(lambda a, b: log_gamma_pq_jax(a, b)[1].sum(), (0, 1))(k, x)
    # (XLA flushes subnormal products to zero: atol)
    np.testing.assert_allclose(gk_p, dlp, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(gk_q, dlq, rtol=1e-12, atol=1e-300)
    # d log P / dx = f / P and d log Q / dx = -f / Q (DLMF 8.8.13), with scipy's gamma
    # density (scipy's logcdf underflows where the kernel's log P does not: k = 100, x = 1e-3)
    f = stats.gamma.logpdf(x, k)
    np.testing.assert_allclose(gx_p, np.exp(f - lp), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(gx_q, -np.exp(f - lq), rtol=1e-9, atol=1e-300)


@pytest.fixture(scope="module")
def data():
    ev = bc.simulate(n_units=[400, 400], eventual_rate=[0.3, 0.35], lag_loc=4.0, lag_shape=1.5,
                     enrollment=14, followup=7, resolution="D", random_seed=3)
    return bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")


@pytest.mark.parametrize("lag", ["gamma", pytest.param("gengamma", marks=pytest.mark.slow)])
def test_log_density_and_gradient_match_the_numba_path(data, lag, py_mode):
    """The model's log density and gradient compiled by PyTensor's JAX back end against the
    numba path (NUMBA mode for the gamma model; for the generalized gamma, whose numba compile
    takes about 40 s, the Op's perform, which runs the same numba kernel), to 1e-9."""
    register_jax()
    model = bc.ConversionModel(data, lag=lag).pymc_model
    ref_mode = "NUMBA" if lag == "gamma" else py_mode
    ref = model.compile_logp(mode=ref_mode), model.compile_dlogp(mode=ref_mode)
    got = model.compile_logp(mode="JAX"), model.compile_dlogp(mode="JAX")
    start = model.initial_point()
    rng = np.random.default_rng(0)
    for _ in range(4):
        point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in start.items()}
        np.testing.assert_allclose(float(got[0](point)), float(ref[0](point)), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(got[1](point)), np.asarray(ref[1](point)),
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sampler", [pytest.param("nutpie-jax", marks=pytest.mark.slow),
                                     "numpyro"])
def test_jax_samplers_fit_the_gamma_model(data, sampler):
    model = bc.ConversionModel(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        ref = model.fit(draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
        res = model.fit(draws=300, tune=300, chains=2, random_seed=1, progressbar=False,
                        sampler=sampler)
    assert res.sampler == sampler
    assert res.posterior.sizes["chain"] == 2 and res.posterior.sizes["draw"] == 300
    # the same posterior: the eventual rates' means agree within Monte Carlo error
    a = ref.eventual_rate().mean(("chain", "draw")).values
    b = res.eventual_rate().mean(("chain", "draw")).values
    sd = ref.eventual_rate().std(("chain", "draw")).values
    assert np.all(np.abs(a - b) < 0.3 * sd + 0.005), (a, b, sd)
    assert res.diagnostics()["max_r_hat"] < 1.05


def test_an_uninstalled_jax_sampler_says_what_to_install(monkeypatch):
    import importlib.util

    from bayesconv.inference import methods

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numpyro" else real(name, *a))
    with pytest.raises(ImportError, match=r"sampler='numpyro' needs numpyro: pip install "
                                          r"'bayesconv\[jax\]'"):
        methods.resolve_sampler("numpyro")
