"""Tests of bayesconv.lags: accuracy against scipy and independent references,
numpy/PyTensor agreement (C and numba back ends), gradients, sufficient statistics
and sampling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.special as sc
import scipy.stats as st
from scipy import integrate, optimize

from bayesconv import lags
from bayesconv.lags import LAG_FAMILIES, NP, Gamma, LagFamily, Weibull, get_lag

SHAPES = (0.05, 0.3, 1.0, 5.0, 50.0, 300.0)
LOCS = (7.0, 0.25)
FUNCS = ("logpdf", "logcdf", "logsf")


def _t_values(family: LagFamily, loc: float, shape: float) -> list[float]:
    """0, tiny, small, median, upper 0.999 quantile, 50x and 1e4x the mean."""
    mean = float(family.mean(loc, shape))
    return [
        0.0,
        1e-12,
        1e-6,
        float(family.median(loc, shape)),
        float(family.quantile(0.999, loc, shape)),
        50.0 * mean,
        1e4 * mean,
    ]


TABLE = [
    (name, loc, shape, t)
    for name, fam in LAG_FAMILIES.items()
    for loc in LOCS
    for shape in SHAPES
    for t in _t_values(fam, loc, shape)
]


def _table_arrays(name: str):
    rows = [(loc, shape, t) for n, loc, shape, t in TABLE if n == name]
    loc, shape, t = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    return t, loc, shape


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------


def _scipy_dist(name: str, loc: float, shape: float):
    k, scale = get_lag(name).natural_params(loc, shape)
    if name == "gamma":
        return st.gamma(a=float(k), scale=float(scale))
    return st.weibull_min(c=float(k), scale=float(scale))


def _quad_log_pq(k: float, x: float) -> tuple[float, float]:
    """(log P, log Q) by quadrature of integral forms scaled to O(1) (no series).

    lower: gamma(k, x) = x^k e^-x / k * int_0^1 exp(x (1 - v^(1/k))) dv  (s = x v^(1/k));
    upper: Gamma(k, x) = x^(k-1) e^-x * int_0^inf exp((k-1) log1p(w/x) - w) dw.
    """
    opts = {"epsabs": 0.0, "epsrel": 1e-13, "limit": 200}
    if x < k:
        val, _ = integrate.quad(lambda v: math.exp(x * (1.0 - v ** (1.0 / k))), 0.0, 1.0, **opts)
        lp = k * math.log(x) - x - sc.gammaln(k + 1.0) + math.log(val)
        return lp, math.log1p(-math.exp(lp))
    val, _ = integrate.quad(
        lambda w: math.exp((k - 1.0) * math.log1p(w / x) - w), 0.0, math.inf, **opts
    )
    lq = (k - 1.0) * math.log(x) - x - sc.gammaln(k) + math.log(val)
    return math.log1p(-math.exp(lq)), lq


def _high_precision_ref(name: str, func: str, t: float, loc: float, shape: float) -> float:
    """Reference where scipy under/overflows: quadrature (gamma), exact algebra (Weibull)."""
    k, scale = (float(v) for v in get_lag(name).natural_params(loc, shape))
    if name == "gamma":
        lp, lq = _quad_log_pq(k, t / scale)
        return lp if func == "logcdf" else lq
    logu = k * (math.log(t) - math.log(scale))
    if func == "logsf":
        return -math.exp(logu) if logu < 709.0 else -math.inf
    return logu if logu < -30.0 else math.log(-math.expm1(-math.exp(logu)))


def _reference(name: str, func: str, t: float, loc: float, shape: float) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's own overflow warnings
        ref = float(getattr(_scipy_dist(name, loc, shape), func)(t))
    if t > 0 and func in ("logcdf", "logsf") and ref == -math.inf:
        ref = _high_precision_ref(name, func, t, loc, shape)  # scipy underflowed
    return ref


def _assert_close(ours, ref, rtol=1e-8, atol=1e-10, what=""):
    ours = float(ours)
    if math.isinf(ref):
        assert ours == ref, what
    else:
        assert math.isfinite(ours), what
        assert abs(ours - ref) <= rtol * abs(ref) + atol, f"{what}: {ours!r} vs {ref!r}"


# ---------------------------------------------------------------------------
# numpy accuracy
# ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize(("name", "loc", "shape", "t"), TABLE)
def test_numpy_matches_reference(name, loc, shape, t, func):
    fam = get_lag(name)
    ours = getattr(fam, func)(t, loc, shape)
    ref = _reference(name, func, t, loc, shape)
    _assert_close(ours, ref, what=f"{name} {func} t={t} loc={loc} k={shape}")


def test_values_at_zero():
    for fam in LAG_FAMILIES.values():
        for k in SHAPES:
            assert fam.logcdf(0.0, 3.0, k) == -np.inf
            assert fam.logsf(0.0, 3.0, k) == 0.0
        assert fam.logpdf(0.0, 3.0, 0.5) == np.inf
        assert fam.logpdf(0.0, 3.0, 2.0) == -np.inf
        _, scale = fam.natural_params(3.0, 1.0)
        assert fam.logpdf(0.0, 3.0, 1.0) == pytest.approx(-np.log(scale), rel=1e-14)


def test_underflow_cases_are_finite():
    """Where scipy returns -inf the lags module returns the finite true value."""
    gamma, weibull = Gamma(), Weibull()
    assert np.isneginf(st.gamma(a=300, scale=7 / 300).logcdf(1e-6))
    val = gamma.logcdf(1e-6, 7.0, 300.0)
    assert np.isfinite(val)
    _assert_close(val, _quad_log_pq(300.0, 1e-6 * 300 / 7)[0], rtol=1e-10)
    assert np.isfinite(gamma.logsf(7e4, 7.0, 300.0))
    assert np.isfinite(weibull.logcdf(1e-12, 7.0, 50.0))


def test_broadcasting_numpy():
    t = np.array([[0.0], [1.0], [10.0]])
    loc = np.array([2.0, 3.0])
    for fam in LAG_FAMILIES.values():
        for func in FUNCS:
            out = getattr(fam, func)(t, loc, 2.5)
            assert out.shape == (3, 2)
            expected = [[getattr(fam, func)(ti, li, 2.5) for li in loc] for ti in t[:, 0]]
            np.testing.assert_array_equal(out, np.array(expected))


@pytest.mark.parametrize("k", [0.7, 3.0, 50.0, 300.0, 1e4])
def test_uniform_expansion_agrees_with_scipy_in_overlap(k):
    """The far-tail expansion (DLMF 8.11.6) and log(gammainc/gammaincc) agree where both
    are representable (leading term between -600 and -250), on both sides of x = k."""
    for lower in (True, False):
        xs = np.logspace(-300, 0, 4000) * k if lower else k * np.logspace(0, 6, 4000)
        logx = np.log(xs)
        if lower:
            lead = k * logx - xs - sc.gammaln(k + 1)
        else:
            lead = (k - 1) * logx - xs - sc.gammaln(k)
        sel = (lead > -600) & (lead < -250) & (np.abs(xs - k) > 0)
        if not sel.any():
            continue  # no overlap region for this k (e.g. small k below x = k)
        x = xs[sel]
        ours = lags._log_gamma_uniform(k, x, np.log(x), NP)
        ref = np.log(sc.gammainc(k, x) if lower else sc.gammaincc(k, x))
        np.testing.assert_allclose(ours, ref, rtol=1e-11)


def test_log_gamma_pq_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for k in (0.05, 1.0, 2.5, 50.0, 300.0, 1e4):
        for x in k * np.array([1e-250, 1e-8, 1e-3, 0.3, 0.9, 1.1, 3.0, 50.0, 1e4]):
            if x <= 0:
                continue
            km, xm = mpmath.mpf(float(k)), mpmath.mpf(float(x))
            q = mpmath.gammainc(km, xm, mpmath.inf, regularized=True)
            if x < k:
                p = mpmath.exp(km * mpmath.log(xm) - xm - mpmath.loggamma(km + 1))
                p *= mpmath.hyp1f1(1, km + 1, xm, maxterms=10**6)
                ref_p, ref_q = mpmath.log(p), mpmath.log1p(-p)
            else:
                ref_p, ref_q = mpmath.log1p(-q), mpmath.log(q)
            lp, lq = lags.log_gamma_pq(k, x)
            _assert_close(lp, float(ref_p), rtol=1e-10, atol=0, what=f"P {k} {x}")
            _assert_close(lq, float(ref_q), rtol=1e-10, atol=0, what=f"Q {k} {x}")


# ---------------------------------------------------------------------------
# PyTensor: values and gradients, C and numba back ends
# ---------------------------------------------------------------------------


def _compile(name: str, mode: str):
    fam = get_lag(name)
    t, loc, shape = pt.dvector("t"), pt.dvector("loc"), pt.dvector("shape")
    outs = []
    grads = []
    for func in FUNCS:
        val = getattr(fam, func)(t, loc, shape, xp=lags.PT)
        outs.append(val)
        grads.extend(pytensor.grad(val.sum(), [loc, shape]))
    return pytensor.function([t, loc, shape], outs + grads, mode=mode)


# "CVM": C thunks in the C virtual machine; "NUMBA": the numba linker, which nutpie and
# (in PyTensor 3) the default FAST_RUN mode use.
# A cold C compile of these graphs takes ~20 s (cached in the PyTensor compiledir
# afterwards), so the C back end runs with the slow checks.
BACKENDS = [pytest.param("CVM", marks=pytest.mark.slow), "NUMBA"]


@pytest.fixture(scope="module", params=BACKENDS)
def compiled(request):
    """One compiled function per family: (logpdf, logcdf, logsf, their d/dloc, d/dshape)."""
    return request.param, {name: _compile(name, request.param) for name in LAG_FAMILIES}


def _fd_grads(fam, func, t, loc, shape):
    """Per-row derivatives by central differences in log(loc) and log(shape).

    The step shrinks with the shape (the log-densities vary on a scale ~ 1/k in the
    log parameters) and one Richardson step removes the O(h^2) error.
    """
    f = getattr(fam, func)
    h = 1e-3 / np.maximum(1.0, shape)

    def central(step, which):
        up, dn = np.exp(step), np.exp(-step)
        if which == "loc":
            diff = f(t, loc * up, shape) - f(t, loc * dn, shape)
            return diff / (loc * (up - dn))
        diff = f(t, loc, shape * up) - f(t, loc, shape * dn)
        return diff / (shape * (up - dn))

    with np.errstate(all="ignore"):
        return tuple((4.0 * central(h / 2, w) - central(h, w)) / 3.0 for w in ("loc", "shape"))


def _switch_point(k: float, lower: bool) -> float:
    """x at which the gamma functions switch to the uniform expansion (lead term -600)."""

    def lead(lx):
        if lower:
            return k * lx - math.exp(lx) - sc.gammaln(k + 1.0) + 600.0
        return (k - 1.0) * lx - math.exp(lx) - sc.gammaln(k) + 600.0

    bracket = (-700.0, math.log(k)) if lower else (max(math.log(k), 0.0), 20.0)
    return math.exp(optimize.brentq(lead, *bracket, xtol=1e-14))


@pytest.mark.parametrize("name", list(LAG_FAMILIES))
def test_pytensor_matches_numpy(compiled, name):
    mode, fns = compiled
    fam = get_lag(name)
    t, loc, shape = _table_arrays(name)
    out = fns[name](t, loc, shape)
    for i, func in enumerate(FUNCS):
        expected = getattr(fam, func)(t, loc, shape)
        np.testing.assert_allclose(out[i], expected, rtol=1e-11, atol=1e-11, err_msg=func)


@pytest.mark.parametrize("name", list(LAG_FAMILIES))
def test_pytensor_gradients(compiled, name):
    mode, fns = compiled
    fam = get_lag(name)
    # the value table plus points on both sides of the branch switches of the gamma
    # functions: x = k, and x where the leading term of log P or log Q is -600
    t, loc, shape = _table_arrays(name)
    extra_k, extra_x = [], []
    for k in (0.05, 1.0, 3.0, 50.0, 300.0):
        switches = [k, _switch_point(k, lower=False)]
        if k >= 1.0:
            switches.append(_switch_point(k, lower=True))
        for x in switches:
            extra_k += [k, k]
            extra_x += [x * (1 - 1e-3), x * (1 + 1e-3)]
    extra_k = np.array(extra_k)
    extra_t = np.array(extra_x) * 7.0 / extra_k  # x = t / theta with loc = 7
    t = np.concatenate([t, extra_t])
    loc = np.concatenate([loc, np.full(extra_k.shape, 7.0)])
    shape = np.concatenate([shape, extra_k])

    out = fns[name](t, loc, shape)
    grads = out[len(FUNCS) :]
    for i, func in enumerate(FUNCS):
        val = out[i]
        g_loc, g_shape = grads[2 * i], grads[2 * i + 1]
        assert not np.isnan(g_loc).any(), f"{mode} {name} {func} d/dloc has NaN"
        assert not np.isnan(g_shape).any(), f"{mode} {name} {func} d/dshape has NaN"
        if func != "logpdf":  # constant (-inf or 0) at t = 0
            assert np.all(g_loc[t == 0] == 0) and np.all(g_shape[t == 0] == 0)
        fd_loc, fd_shape = _fd_grads(fam, func, t, loc, shape)
        check = np.isfinite(val) & (t > 0)
        for g, fd, param in ((g_loc, fd_loc, loc), (g_shape, fd_shape, shape)):
            what = "loc" if param is loc else "shape"
            assert np.all(np.isfinite(g[check])), f"{mode} {name} {func} d/d{what}"
            err = np.abs(g - fd)[check]
            # relative 1e-7, or the rounding of the differenced values: ~eps / h times
            # the size of their largest terms (|f|, or k log k from gammaln(k))
            terms = 1.0 + np.abs(val) + shape * (1.0 + np.abs(np.log(shape)))
            tol = (1e-7 * np.abs(fd) + 1e-9 * terms / param)[check]
            bad = err > tol
            assert not bad.any(), (
                f"{mode} {name} {func} d/d{what}: rows t={t[check][bad]}, "
                f"k={shape[check][bad]}, grad={g[check][bad]}, fd={fd[check][bad]}"
            )


def test_pytensor_scalar_params():
    """Scalar parameters broadcast against a vector of times, as in a model."""
    loc, shape = pt.dscalar("loc"), pt.dscalar("shape")
    t = np.array([0.0, 1e-300, 0.5, 3.0, 1e9])
    for fam in LAG_FAMILIES.values():
        vals = [getattr(fam, f)(t, loc, shape, xp=lags.PT) for f in FUNCS]
        fn = pytensor.function([loc, shape], vals, mode="NUMBA")
        for k in (0.3, 1.0, 4.0):
            for func, val in zip(FUNCS, fn(2.0, k), strict=True):
                np.testing.assert_allclose(val, getattr(fam, func)(t, 2.0, k), rtol=1e-12)


# ---------------------------------------------------------------------------
# Namespace helpers
# ---------------------------------------------------------------------------


def test_namespace_helpers_numpy_and_pytensor():
    x = np.array([-1e-20, -1e-5, -0.5, -np.log(2.0), -1.0, -30.0, -800.0, -np.inf])
    expected = np.array(
        [
            np.log(1e-20),
            np.log(-np.expm1(-1e-5)),
            np.log(-np.expm1(-0.5)),
            np.log(0.5),
            np.log1p(-np.exp(-1.0)),
            np.log1p(-np.exp(-30.0)),
            0.0,
            0.0,
        ]
    )
    np.testing.assert_allclose(NP.log1mexp(x), expected, rtol=1e-14)
    a = np.array([0.0, -1.0, -700.0, -np.inf])
    b = np.array([-1.0, -1.0 - 2.0**-30, -800.0, -np.inf])
    z = np.array([-40.0, -5.0, -1.0, 0.0, 3.0])

    xv, av, bv, zv = pt.dvector("x"), pt.dvector("a"), pt.dvector("b"), pt.dvector("z")
    PT = lags.PT
    fn = pytensor.function(
        [xv, av, bv, zv],
        [PT.log1mexp(xv), PT.logdiffexp(av, bv), PT.log_ndtr(zv)],
        mode="FAST_COMPILE",
    )
    l1, ld, ln = fn(x, a, b, z)
    np.testing.assert_allclose(l1, expected, rtol=1e-14)
    np.testing.assert_allclose(NP.logdiffexp(a, b), ld, rtol=1e-14)
    exact = np.array(
        [
            np.log(1 - np.exp(-1.0)),
            -1.0 + np.log(-np.expm1(-(2.0**-30))),
            -700.0 + np.log1p(-np.exp(-100.0)),
            -np.inf,
        ]
    )
    np.testing.assert_allclose(ld, exact, rtol=1e-9)
    np.testing.assert_allclose(ln, sc.log_ndtr(z), rtol=1e-13)


# ---------------------------------------------------------------------------
# Registry, parameters, summaries
# ---------------------------------------------------------------------------


def test_registry():
    assert set(LAG_FAMILIES) == {"gamma", "weibull"}
    assert get_lag("gamma") is LAG_FAMILIES["gamma"]
    assert get_lag("Weibull") is LAG_FAMILIES["weibull"]
    assert get_lag(Gamma()) == Gamma()
    with pytest.raises(ValueError, match="gamma, weibull"):
        get_lag("lognormal")
    g, w = get_lag("gamma"), get_lag("weibull")
    assert (g.name, g.location, g.param_names) == ("gamma", "mean", ("loc", "shape"))
    assert (w.name, w.location, w.param_names) == ("weibull", "median", ("loc", "shape"))
    assert w.suff_stats is None and w.loglik_exact_from_stats is None
    assert callable(g.suff_stats) and callable(g.loglik_exact_from_stats)


@pytest.mark.parametrize("name", list(LAG_FAMILIES))
@pytest.mark.parametrize(("loc", "shape"), [(7.0, 0.3), (7.0, 1.0), (2.0, 5.0), (30.0, 50.0)])
def test_summaries_and_natural_params(name, loc, shape):
    fam = get_lag(name)
    dist = _scipy_dist(name, loc, shape)
    k, scale = fam.natural_params(loc, shape)
    assert k == shape
    if name == "gamma":
        assert scale == pytest.approx(loc / shape, rel=1e-15)
        assert dist.mean() == pytest.approx(loc, rel=1e-12)
    else:
        assert scale == pytest.approx(loc / np.log(2.0) ** (1.0 / shape), rel=1e-14)
        assert dist.median() == pytest.approx(loc, rel=1e-12)
    assert fam.median(loc, shape) == pytest.approx(dist.median(), rel=1e-10)
    assert fam.mean(loc, shape) == pytest.approx(dist.mean(), rel=1e-10)
    q = np.array([1e-6, 0.1, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(fam.quantile(q, loc, shape), dist.ppf(q), rtol=1e-9)


@pytest.mark.parametrize("name", list(LAG_FAMILIES))
@pytest.mark.parametrize(("loc", "shape"), [(7.0, 0.3), (7.0, 1.0), (2.0, 5.0), (30.0, 50.0)])
def test_rvs_ks(name, loc, shape):
    fam = get_lag(name)
    draws = fam.rvs(np.random.default_rng(12345), loc, shape, size=4000)
    assert draws.shape == (4000,)
    assert np.all(draws >= 0)
    res = st.kstest(draws, _scipy_dist(name, loc, shape).cdf)
    assert res.pvalue > 0.01
    # an integer seed is accepted and reproducible
    np.testing.assert_array_equal(fam.rvs(7, loc, shape, size=5), fam.rvs(7, loc, shape, size=5))


# ---------------------------------------------------------------------------
# Gamma sufficient statistics
# ---------------------------------------------------------------------------


def test_gamma_suff_stats():
    fam = Gamma()
    rng = np.random.default_rng(3)
    t = fam.rvs(rng, 6.0, 2.0, size=200)
    n = rng.integers(0, 5, size=200).astype(float)
    stats = fam.suff_stats(t, n)
    for loc, shape in [(6.0, 2.0), (3.0, 0.4), (20.0, 80.0)]:
        direct = np.sum(n * fam.logpdf(t, loc, shape))
        via = fam.loglik_exact_from_stats(*stats, loc, shape)
        assert via == pytest.approx(direct, rel=1e-12)
    # sums over disjoint rows aggregate; per-group statistics with axis
    a, b = fam.suff_stats(t[:80], n[:80]), fam.suff_stats(t[80:], n[80:])
    np.testing.assert_allclose([x + y for x, y in zip(a, b, strict=True)], stats, rtol=1e-13)
    grouped = fam.suff_stats(t.reshape(4, 50), n.reshape(4, 50), axis=1)
    assert grouped.N.shape == (4,)
    np.testing.assert_allclose([g.sum() for g in grouped], stats, rtol=1e-13)
    # default weights and rows with n = 0 (any t) are ignored
    assert fam.suff_stats([1.0, 2.0]).N == 2.0
    assert fam.suff_stats([1.0, 0.0], [1.0, 0.0]) == fam.suff_stats([1.0])
    with pytest.raises(ValueError, match="t > 0"):
        fam.suff_stats([1.0, 0.0])
    # PyTensor version of the statistics likelihood
    loc, shape = pt.dscalar("loc"), pt.dscalar("shape")
    ll = fam.loglik_exact_from_stats(*stats, loc, shape, xp=lags.PT)
    fn = pytensor.function([loc, shape], ll, mode="FAST_COMPILE")
    assert fn(6.0, 2.0) == pytest.approx(np.sum(n * fam.logpdf(t, 6.0, 2.0)), rel=1e-12)
