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
from bayesconv.lags import (
    LAG_FAMILIES,
    NP,
    Exponential,
    Gamma,
    GenGamma,
    LagFamily,
    LogNormal,
    Weibull,
    families,
    get_lag,
)

SHAPES = (0.05, 0.3, 1.0, 5.0, 50.0, 300.0)
LOCS = (7.0, 0.25)
# generalized gamma: q on both sides of 0 (q = 0 is the log-normal, tested with it and in
# the band tests below)
GG_SHAPES = (0.05, 1.0, 5.0, 300.0)
GG_QS = (-2.0, -0.5, 0.3, 1.0, 2.5)
FUNCS = ("logpdf", "logcdf", "logsf")


def _param_sets(name: str) -> list[tuple[float, ...]]:
    """Parameter tuples (in ``param_names`` order) tested for each family."""
    if name == "exponential":
        return [(loc,) for loc in LOCS]
    if name == "gengamma":
        return [(loc, k, q) for loc in LOCS for k in GG_SHAPES for q in GG_QS]
    return [(loc, k) for loc in LOCS for k in SHAPES]


def _t_values(family: LagFamily, params) -> list[float]:
    """0, tiny, small, median, upper 0.999 quantile, 50x and 1e4x the mean (or median)."""
    mean = float(family.mean(*params))
    med = float(family.median(*params))
    big = mean if np.isfinite(mean) and mean < 1e6 * med else med
    return [
        0.0,
        1e-12,
        1e-6,
        med,
        float(family.quantile(0.999, *params)),
        50.0 * big,
        1e4 * big,
    ]


TABLE = [
    (name, params, t)
    for name, fam in LAG_FAMILIES.items()
    for params in _param_sets(name)
    for t in _t_values(fam, params)
]


def _table_arrays(name: str):
    """``t`` and one array per parameter, for the rows of ``name`` in the table."""
    rows = [(t, *params) for n, params, t in TABLE if n == name]
    return tuple(np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------


def _scipy_dist(name: str, *params):
    fam = get_lag(name)
    if name == "exponential":
        return st.expon(scale=float(fam.natural_params(*params)[0]))
    if name == "lognormal":
        sigma, scale = fam.natural_params(*params)
        return st.lognorm(s=float(sigma), scale=float(scale))
    if name == "gengamma":
        a, c, scale = fam.natural_params(*params)
        return st.gengamma(a=float(a), c=float(c), scale=float(scale))
    k, scale = fam.natural_params(*params)
    if name == "gamma":
        return st.gamma(a=float(k), scale=float(scale))
    return st.weibull_min(c=float(k), scale=float(scale))


def _mp_gengamma(func: str, t: float, loc: float, shape: float, q: float) -> float:
    """Generalized gamma at 40 digits with mpmath (incomplete gamma of u = q^-2 e^(q w))."""
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp
    with mpmath.workdps(40):
        qm, km = mp.mpf(q), mp.mpf(shape)
        w = km * (mp.log(mp.mpf(t)) - mp.log(mp.mpf(loc)))
        a = 1 / qm**2
        log_u = mp.log(a) + qm * w
        if func == "logpdf":
            val = mp.log(abs(qm) * km) - mp.log(mp.mpf(t)) + a * log_u - mp.exp(log_u) - mp.loggamma(a)
            return float(val)
        u = mp.exp(log_u)
        # F = P(a, u) for q > 0 and Q(a, u) for q < 0; S the other one. Only the one needed
        # is computed (mpmath is slow on the complement of a far tail).
        if (func == "logcdf") == (q > 0):
            return float(mp.log(mp.gammainc(a, 0, u, regularized=True)))
        return float(mp.log(mp.gammainc(a, u, mp.inf, regularized=True)))


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


def _high_precision_ref(name: str, func: str, t: float, *params) -> float:
    """Reference where scipy under/overflows: quadrature (gamma), exact algebra (Weibull,
    exponential), mpmath (generalized gamma). scipy's log-normal does not underflow."""
    if name == "gengamma":
        return _mp_gengamma(func, t, *params)
    if name == "exponential":
        name, params = "weibull", (params[0], 1.0)
    loc, shape = params
    k, scale = (float(v) for v in get_lag(name).natural_params(loc, shape))
    if name == "gamma":
        lp, lq = _quad_log_pq(k, t / scale)
        return lp if func == "logcdf" else lq
    logu = k * (math.log(t) - math.log(scale))
    if func == "logsf":
        return -math.exp(logu) if logu < 709.0 else -math.inf
    return logu if logu < -30.0 else math.log(-math.expm1(-math.exp(logu)))


def _reference(name: str, func: str, t: float, *params) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's own overflow warnings
        ref = float(getattr(_scipy_dist(name, *params), func)(t))
    bad = ref == -math.inf if func != "logpdf" else not math.isfinite(ref)
    if t > 0 and bad and (func != "logpdf" or name == "gengamma"):
        ref = _high_precision_ref(name, func, t, *params)  # scipy under- or overflowed
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
@pytest.mark.parametrize(("name", "params", "t"), TABLE)
def test_numpy_matches_reference(name, params, t, func):
    fam = get_lag(name)
    ours = getattr(fam, func)(t, *params)
    ref = _reference(name, func, t, *params)
    _assert_close(ours, ref, what=f"{name} {func} t={t} params={params}")


def test_values_at_zero():
    for fam in LAG_FAMILIES.values():
        for params in _param_sets(fam.name):
            assert fam.logcdf(0.0, *params) == -np.inf
            assert fam.logsf(0.0, *params) == 0.0
    for fam in (Gamma(), Weibull()):
        assert fam.logpdf(0.0, 3.0, 0.5) == np.inf
        assert fam.logpdf(0.0, 3.0, 2.0) == -np.inf
        _, scale = fam.natural_params(3.0, 1.0)
        assert fam.logpdf(0.0, 3.0, 1.0) == pytest.approx(-np.log(scale), rel=1e-14)
    assert Exponential().logpdf(0.0, 3.0) == pytest.approx(np.log(np.log(2.0) / 3.0), rel=1e-14)
    assert LogNormal().logpdf(0.0, 3.0, 0.5) == -np.inf
    gg = GenGamma()
    # density ~ t^(shape/q - 1) at 0 for q > 0, -> 0 for q <= 0
    assert gg.logpdf(0.0, 3.0, 0.5, 1.0) == np.inf
    assert gg.logpdf(0.0, 3.0, 2.0, 1.0) == -np.inf
    assert gg.logpdf(0.0, 3.0, 0.5, -1.0) == -np.inf
    assert gg.logpdf(0.0, 3.0, 0.5, 0.0) == -np.inf
    # shape = q = 1 is the exponential with scale loc
    assert gg.logpdf(0.0, 3.0, 1.0, 1.0) == pytest.approx(-np.log(3.0), rel=1e-14)


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
        rest = (2.5, 0.7)[: len(fam.param_names) - 1]
        for func in FUNCS:
            out = getattr(fam, func)(t, loc, *rest)
            assert out.shape == (3, 2)
            expected = [[getattr(fam, func)(ti, li, *rest) for li in loc] for ti in t[:, 0]]
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
        ours = families._log_gamma_uniform(k, x, np.log(x), NP)
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
    """(logpdf, logcdf, logsf, then their gradients in each parameter, function by function)."""
    fam = get_lag(name)
    t = pt.dvector("t")
    params = [pt.dvector(p) for p in fam.param_names]
    outs = []
    grads = []
    for func in FUNCS:
        val = getattr(fam, func)(t, *params, xp=lags.PT)
        outs.append(val)
        grads.extend(pytensor.grad(val.sum(), params))
    return pytensor.function([t, *params], outs + grads, mode=mode)


# "CVM": C thunks in the C virtual machine; "NUMBA": the numba linker, which nutpie and
# (in PyTensor 3) the default FAST_RUN mode use.
# A cold C compile of these graphs takes ~20 s (cached in the PyTensor compiledir
# afterwards), so the C back end runs with the slow checks.
BACKENDS = [pytest.param("CVM", marks=pytest.mark.slow), "NUMBA"]


@pytest.fixture(scope="module", params=BACKENDS)
def compiled(request):
    """One compiled function per family: (logpdf, logcdf, logsf, their parameter gradients)."""
    return request.param, {name: _compile(name, request.param) for name in LAG_FAMILIES}


def _fd_grads(fam, func, t, *params):
    """Per-row derivatives by central differences, one per parameter.

    Positive parameters (loc, shape) are stepped in their log, ``q`` linearly by a tenth of
    that step.
    The step shrinks with the shape (the log-densities vary on a scale ~ 1/k in the
    log parameters) and one Richardson step removes the O(h^2) error.
    """
    f = getattr(fam, func)
    shape = params[1] if len(params) > 1 else np.ones_like(params[0])
    h = 1e-3 / np.maximum(1.0, shape)

    def central(step, i):
        if fam.param_names[i] == "q":
            step = 0.1 * step
            up = [p + step if j == i else p for j, p in enumerate(params)]
            dn = [p - step if j == i else p for j, p in enumerate(params)]
            return (f(t, *up) - f(t, *dn)) / (2.0 * step)
        e_up, e_dn = np.exp(step), np.exp(-step)
        up = [p * e_up if j == i else p for j, p in enumerate(params)]
        dn = [p * e_dn if j == i else p for j, p in enumerate(params)]
        return (f(t, *up) - f(t, *dn)) / (params[i] * (e_up - e_dn))

    with np.errstate(all="ignore"):
        return tuple((4.0 * central(h / 2, i) - central(h, i)) / 3.0 for i in range(len(params)))


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
    t, *params = _table_arrays(name)
    out = fns[name](t, *params)
    for i, func in enumerate(FUNCS):
        expected = getattr(fam, func)(t, *params)
        np.testing.assert_allclose(out[i], expected, rtol=1e-11, atol=1e-11, err_msg=func)


def _check_gradients(mode, name, fam, out, t, params):
    """Gradients from a compiled :func:`_compile` output against finite differences."""
    n = len(params)
    grads = out[len(FUNCS) :]
    shape = params[1] if n > 1 and fam.param_names[1] == "shape" else np.ones_like(t)
    for i, func in enumerate(FUNCS):
        val = out[i]
        fds = _fd_grads(fam, func, t, *params)
        check = np.isfinite(val) & (t > 0)
        for j, (pname, param, fd) in enumerate(zip(fam.param_names, params, fds, strict=True)):
            g = grads[n * i + j]
            assert not np.isnan(g).any(), f"{mode} {name} {func} d/d{pname} has NaN"
            if func != "logpdf":  # constant (-inf or 0) at t = 0
                assert np.all(g[t == 0] == 0), f"{mode} {name} {func} d/d{pname} at t = 0"
            assert np.all(np.isfinite(g[check])), f"{mode} {name} {func} d/d{pname}"
            err = np.abs(g - fd)[check]
            # relative 1e-7, or the rounding of the differenced values: ~eps / h times
            # the size of their largest terms (|f|, or k log k from gammaln(k))
            terms = 1.0 + np.abs(val) + shape * (1.0 + np.abs(np.log(shape)))
            scale = np.ones_like(param) if pname == "q" else param
            tol = (1e-7 * np.abs(fd) + 1e-9 * terms / scale)[check]
            bad = err > tol
            assert not bad.any(), (
                f"{mode} {name} {func} d/d{pname}: rows t={t[check][bad]}, "
                f"params={[p[check][bad] for p in params]}, grad={g[check][bad]}, "
                f"fd={fd[check][bad]}"
            )


@pytest.mark.parametrize("name", list(LAG_FAMILIES))
def test_pytensor_gradients(compiled, name):
    mode, fns = compiled
    fam = get_lag(name)
    t, *params = _table_arrays(name)
    if name == "gamma":
        # points on both sides of the branch switches of the gamma functions: x = k, and x
        # where the leading term of log P or log Q is -600
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
        params = [np.concatenate([params[0], np.full(extra_k.shape, 7.0)]),
                  np.concatenate([params[1], extra_k])]
    out = fns[name](t, *params)
    _check_gradients(mode, name, fam, out, t, params)


def test_pytensor_scalar_params(py_mode):
    """Scalar parameters broadcast against a vector of times, as in a model."""
    t = np.array([0.0, 1e-300, 0.5, 3.0, 1e9])
    for fam in LAG_FAMILIES.values():
        params = [pt.dscalar(p) for p in fam.param_names]
        vals = [getattr(fam, f)(t, *params, xp=lags.PT) for f in FUNCS]
        fn = pytensor.function(params, vals, mode=py_mode)
        for k in (0.3, 1.0, 4.0):
            for q in (-0.7, 0.0, 1e-3, 1.5):
                values = (2.0, k, q)[: len(params)]
                for func, val in zip(FUNCS, fn(*values), strict=True):
                    np.testing.assert_allclose(val, getattr(fam, func)(t, *values), rtol=1e-12)


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
    assert set(LAG_FAMILIES) == {"exponential", "gamma", "weibull", "lognormal", "gengamma"}
    assert get_lag("gamma") is LAG_FAMILIES["gamma"]
    assert get_lag("Weibull") is LAG_FAMILIES["weibull"]
    assert get_lag(Gamma()) == Gamma()
    with pytest.raises(ValueError, match="exponential, gamma, gengamma, lognormal, weibull"):
        get_lag("loglogistic")
    g, w = get_lag("gamma"), get_lag("weibull")
    assert (g.name, g.location, g.param_names) == ("gamma", "mean", ("loc", "shape"))
    assert (w.name, w.location, w.param_names) == ("weibull", "median", ("loc", "shape"))
    assert w.suff_stats is None and w.loglik_exact_from_stats is None
    assert callable(g.suff_stats) and callable(g.loglik_exact_from_stats)
    e, ln, gg = get_lag("exponential"), get_lag("lognormal"), get_lag("gengamma")
    assert (e.location, e.param_names, e.extra_params) == ("median", ("loc",), ())
    assert (ln.location, ln.param_names) == ("median", ("loc", "shape"))
    assert (gg.location, gg.param_names) == ("log-mode", ("loc", "shape", "q"))
    assert [p.var for p in gg.extra_params] == ["lag_shape", "lag_q"]
    assert gg.extra_params[1].shared and not gg.extra_params[1].positive
    assert gg.suff_stats is None
    for fam in (g, e, ln):
        assert fam.suff_stat_names[0] == "n"
        assert len(fam.suff_stat_names) == len(fam.suff_stats([1.0, 2.0]))


SUMMARY_PARAMS = {
    "exponential": [(7.0,), (0.25,)],
    "gengamma": [(7.0, 0.3, 0.5), (7.0, 1.0, 1.0), (2.0, 5.0, -0.4), (30.0, 50.0, 2.0),
                 (7.0, 2.0, -1.5), (7.0, 3.0, 0.05)],
}
_TWO_PARAM = [(7.0, 0.3), (7.0, 1.0), (2.0, 5.0), (30.0, 50.0)]
SUMMARY_CASES = [(name, params) for name in LAG_FAMILIES
                 for params in SUMMARY_PARAMS.get(name, _TWO_PARAM)]


@pytest.mark.parametrize(("name", "params"), SUMMARY_CASES)
def test_summaries_and_natural_params(name, params):
    fam = get_lag(name)
    dist = _scipy_dist(name, *params)
    loc = params[0]
    if name in ("gamma", "weibull"):
        shape = params[1]
        k, scale = fam.natural_params(loc, shape)
        assert k == shape
    if name == "gamma":
        assert scale == pytest.approx(loc / shape, rel=1e-15)
        assert dist.mean() == pytest.approx(loc, rel=1e-12)
    elif name == "weibull":
        assert scale == pytest.approx(loc / np.log(2.0) ** (1.0 / shape), rel=1e-14)
        assert dist.median() == pytest.approx(loc, rel=1e-12)
    elif name in ("exponential", "lognormal"):
        assert dist.median() == pytest.approx(loc, rel=1e-12)
    else:  # generalized gamma: loc = e^mu is the mode of log t
        mode = optimize.minimize_scalar(lambda x: -dist.logpdf(np.exp(x)) - x,
                                        bracket=(np.log(loc) - 0.1, np.log(loc) + 0.1))
        assert mode.x == pytest.approx(np.log(loc), abs=1e-6)
    assert fam.median(*params) == pytest.approx(dist.median(), rel=1e-10)
    assert fam.mean(*params) == pytest.approx(dist.mean(), rel=1e-10)
    q = np.array([1e-6, 0.1, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(fam.quantile(q, *params), dist.ppf(q), rtol=1e-9)


@pytest.mark.parametrize(("name", "params"), SUMMARY_CASES)
def test_rvs_ks(name, params):
    fam = get_lag(name)
    draws = fam.rvs(np.random.default_rng(12345), *params, size=4000)
    assert draws.shape == (4000,)
    assert np.all(draws >= 0)
    res = st.kstest(draws, _scipy_dist(name, *params).cdf)
    assert res.pvalue > 0.01
    # an integer seed is accepted and reproducible
    np.testing.assert_array_equal(fam.rvs(7, *params, size=5), fam.rvs(7, *params, size=5))


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


# ---------------------------------------------------------------------------
# Generalized gamma: reflection, the band around q = 0, the nested families
# ---------------------------------------------------------------------------

GG_T = np.array([1e-12, 1e-6, 0.05, 0.7, 3.0, 7.0, 20.0, 300.0, 7e4])


@pytest.mark.parametrize("q", [0.3, 1.0, 2.5, 0.01])
@pytest.mark.parametrize("shape", [0.05, 1.0, 5.0, 300.0])
def test_gengamma_reflection(q, shape):
    """q < 0 is the reflection w -> -w of q > 0: F(t; -q) = S(loc^2 / t; q)."""
    gg, loc = GenGamma(), 7.0
    t = GG_T
    np.testing.assert_allclose(gg.logcdf(t, loc, shape, -q), gg.logsf(loc**2 / t, loc, shape, q),
                               rtol=1e-12)
    np.testing.assert_allclose(gg.logsf(t, loc, shape, -q), gg.logcdf(loc**2 / t, loc, shape, q),
                               rtol=1e-12)
    # the density of w is reflected too: f(t; -q) t = f(loc^2/t; q) loc^2/t
    np.testing.assert_allclose(gg.logpdf(t, loc, shape, -q) + np.log(t),
                               gg.logpdf(loc**2 / t, loc, shape, q) + np.log(loc**2 / t),
                               rtol=1e-12)


def test_gengamma_contains_weibull_gamma_lognormal():
    gg, t = GenGamma(), GG_T
    for k in (0.3, 2.0, 40.0):
        # Weibull: q = 1, Weibull shape = shape, scale = loc
        w_median = 7.0 * np.log(2.0) ** (1.0 / k)
        # gamma: q = 1/shape, gamma shape = shape^2, mean = loc * q^(2/(q shape)) shape^2
        g_mean = 7.0 * (1.0 / k) ** (2.0 * k / k) * k**2
        for func in FUNCS:
            np.testing.assert_allclose(getattr(gg, func)(t, 7.0, k, 1.0),
                                       getattr(Weibull(), func)(t, w_median, k), rtol=1e-11,
                                       atol=1e-300)
            np.testing.assert_allclose(getattr(gg, func)(t, 7.0, k, 1.0 / k),
                                       getattr(Gamma(), func)(t, g_mean, k**2), rtol=1e-10,
                                       atol=1e-300)
            np.testing.assert_array_equal(getattr(gg, func)(t, 7.0, k, 0.0),
                                          getattr(LogNormal(), func)(t, 7.0, k))


@pytest.mark.parametrize("q", [1e-4, -1e-4, 1e-8, -1e-8, 1e-3, -4e-3])
@pytest.mark.parametrize("shape", [0.3, 2.0])
def test_gengamma_band_against_quadrature(q, shape):
    """Inside |q| < 5e-3 (uniform expansion) log F and log S match the integral of the
    (exact) density to 1e-9."""
    gg, loc = GenGamma(), 7.0

    def dens_w(s):  # density of w = shape log(t / loc), 0 where t under- or overflows
        log_t = math.log(loc) + s / shape
        if abs(log_t) > 700.0:
            return 0.0
        t = math.exp(log_t)
        return math.exp(float(gg.logpdf(t, loc, shape, q)) + log_t - math.log(shape))

    opts = {"epsabs": 0.0, "epsrel": 1e-13, "limit": 200}
    for w in (-6.0, -2.0, -0.3, 0.0, 1.0, 4.0, 7.0):
        t = loc * math.exp(w / shape)
        lower = integrate.quad(dens_w, -math.inf, w, **opts)[0]
        upper = integrate.quad(dens_w, w, math.inf, **opts)[0]
        _assert_close(gg.logcdf(t, loc, shape, q), math.log(lower), rtol=1e-9, atol=1e-12,
                      what=f"logcdf q={q} w={w}")
        _assert_close(gg.logsf(t, loc, shape, q), math.log(upper), rtol=1e-9, atol=1e-12,
                      what=f"logsf q={q} w={w}")


def test_gengamma_continuous_through_zero_and_band_edge():
    gg, t = GenGamma(), GG_T
    for k in (0.05, 2.0, 300.0):
        ln = [getattr(LogNormal(), f)(t, 7.0, k) for f in FUNCS]
        for q in (1e-4, -1e-4, 1e-8, -1e-8):
            for func, ref in zip(FUNCS, ln, strict=True):
                val = getattr(gg, func)(t, 7.0, k, q)
                assert np.all(np.isfinite(val[np.isfinite(ref)]))
                # O(q w^3) apart: the first-order term of the expansion in q
                w = k * np.log(t / 7.0)
                bound = 2.0 * abs(q) * (1.0 + np.abs(w)) ** 3 + 1e-12 * np.abs(ref)
                assert np.all(np.abs(val - ref)[np.isfinite(ref)] <= bound[np.isfinite(ref)]), func
        # the switch at |q| = 5e-3 between the expansion and the incomplete gamma
        for edge in (5e-3, -5e-3):
            for func in ("logcdf", "logsf"):
                inside = getattr(gg, func)(t, 7.0, k, edge * (1 - 1e-12))
                outside = getattr(gg, func)(t, 7.0, k, edge)
                fin = np.isfinite(outside)
                np.testing.assert_allclose(inside[fin], outside[fin], rtol=3e-8, atol=1e-12,
                                           err_msg=f"{func} k={k} q={edge}")


def test_gengamma_band_gradients():
    """No NaN gradients at q = 0 and around it; they match finite differences."""
    fam = GenGamma()
    fn = _compile("gengamma", "NUMBA")
    t0 = np.array([0.0, 1e-12, 1e-6, 0.05, 0.7, 3.0, 7.0, 20.0, 300.0, 7e4])
    rows = [(t, 7.0, k, q) for t in t0 for k in (0.3, 2.0, 40.0)
            for q in (0.0, 1e-8, -1e-8, 1e-4, -1e-4, 2e-3)]
    t, *params = (np.array(c) for c in zip(*rows, strict=True))
    out = fn(t, *params)
    for i, func in enumerate(FUNCS):
        np.testing.assert_allclose(out[i], getattr(fam, func)(t, *params), rtol=1e-12,
                                   atol=1e-300, err_msg=func)
    _check_gradients("NUMBA", "gengamma", fam, out, t, params)


# ---------------------------------------------------------------------------
# Exponential and log-normal sufficient statistics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exponential", "lognormal"])
def test_other_suff_stats(name):
    fam = get_lag(name)
    rng = np.random.default_rng(4)
    rest = () if name == "exponential" else (1.5,)
    t = fam.rvs(rng, 6.0, *rest, size=300)
    n = rng.integers(0, 4, size=300).astype(float)
    stats = fam.suff_stats(t, n)
    assert len(stats) == len(fam.suff_stat_names)
    for params in ([(6.0,), (0.3,), (80.0,)] if name == "exponential"
                   else [(6.0, 1.5), (0.3, 0.2), (80.0, 40.0)]):
        direct = np.sum(n * fam.logpdf(t, *params))
        assert fam.loglik_exact_from_stats(*stats, *params) == pytest.approx(direct, rel=1e-11)
    grouped = fam.suff_stats(t.reshape(3, 100), n.reshape(3, 100), axis=1)
    np.testing.assert_allclose([g.sum() for g in grouped], stats, rtol=1e-13)
    with pytest.raises(ValueError, match="t > 0"):
        fam.suff_stats([1.0, 0.0])
    params = [pt.dscalar(p) for p in fam.param_names]
    ll = fam.loglik_exact_from_stats(*stats, *params, xp=lags.PT)
    f = pytensor.function(params, ll, mode="FAST_COMPILE")
    values = (6.0, *rest)
    assert f(*values) == pytest.approx(np.sum(n * fam.logpdf(t, *values)), rel=1e-11)
