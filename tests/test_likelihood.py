"""The cure-mixture likelihood against scipy, computed by hand row by row."""

import numpy as np
import pytensor
import pytest
from scipy import stats

from bayesconv.data import ConversionData
from bayesconv.lags import LAG_FAMILIES, NP, PT, get_lag
from bayesconv.model.likelihood import (
    LikelihoodArrays,
    RowKind,
    row_loglik,
    rows_from_data,
    total_loglik,
)

C = np.array([0.3, 0.8])
LOC = np.array([5.0, 40.0])    # gamma: mean; weibull, exponential, lognormal: median (days)
SHAPE = np.array([2.5, 0.7])
Q = np.array([0.6, 0.6])       # generalized gamma (one q shared by the cohorts)
LAGS = list(LAG_FAMILIES)


def _params(lag, scale=1.0):
    """The lag parameters per cohort in the family's order (location in units of scale)."""
    values = {"loc": LOC / scale, "shape": SHAPE, "q": Q}
    return [values[name] for name in get_lag(lag).param_names]


def _data():
    # cohort, lower, duration, converted, count: exact, zero-duration, interval, censored,
    # censored at 0, far right tail, tiny exact time
    rows = [
        (0, 3.0, 3.0, True, 4), (0, 0.0, 0.0, True, 2), (0, 2.0, 6.0, True, 3),
        (0, 10.0, 10.0, False, 5), (0, 0.0, 0.0, False, 1), (0, 400.0, 400.0, False, 2),
        (1, 1e-6, 1e-6, True, 1), (1, 50.0, 50.0, True, 2), (1, 30.0, 31.0, True, 1),
        (1, 7.0, 7.0, False, 6), (1, 5000.0, 5000.0, False, 1), (1, 0.5, 0.5, True, 1),
    ]
    g, lo, d, cv, n = map(np.array, zip(*rows, strict=True))
    return ConversionData(cohort=g.astype(np.int64), duration=d.astype(float),
                          lower=lo.astype(float), converted=cv.astype(bool),
                          count=n.astype(np.int64), cohorts=("a", "b"), time_unit="D")


def _scipy_dist(lag, loc, shape, q):
    if lag == "gamma":
        return stats.gamma(shape, scale=loc / shape)
    if lag == "exponential":
        return stats.expon(scale=loc / np.log(2))
    if lag == "lognormal":
        return stats.lognorm(1 / shape, scale=loc)
    if lag == "gengamma":
        return stats.gengamma(1 / q**2, q * shape, scale=loc * q ** (2 / (q * shape)))
    return stats.weibull_min(shape, scale=loc / np.log(2) ** (1 / shape))


def _by_hand(lag, data, zero_width):
    out = []
    for g, lo, t, cv in zip(data.cohort, data.lower, data.duration, data.converted,
                            strict=True):
        dist, c = _scipy_dist(lag, LOC[g], SHAPE[g], Q[g]), C[g]
        if cv and t == 0:
            out.append(np.log(c) + dist.logcdf(zero_width))
        elif cv and lo < t:
            out.append(np.log(c) + np.log(dist.cdf(t) - dist.cdf(lo)))
        elif cv:
            out.append(np.log(c) + dist.logpdf(t))
        else:
            out.append(np.log(1 - c * dist.cdf(t)))
    return np.array(out)


@pytest.mark.parametrize("lag", LAGS)
def test_row_loglik_matches_scipy(lag):
    data = _data()
    rows = rows_from_data(data, time_scale=1.0, zero_width=0.5)
    got = row_loglik(get_lag(lag), rows, np.log(C), np.log1p(-C), *_params(lag), xp=NP)
    np.testing.assert_allclose(got, _by_hand(lag, data, 0.5), rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("lag", LAGS)
@pytest.mark.parametrize("scale", [1.0, 7.3])
def test_total_loglik_pytensor_equals_sum_of_rows(lag, scale, py_mode):
    data, family = _data(), get_lag(lag)
    rows = rows_from_data(data, time_scale=scale, zero_width=0.5)
    per_row = row_loglik(family, rows, np.log(C), np.log1p(-C), *_params(lag, scale), xp=NP)
    expected = float(np.sum(data.count * per_row))
    # the model works in units of `scale`: exact conversions differ by the Jacobian log(scale)
    n_exact = data.count[rows.kind == 0].sum()
    lc, l1c, *lag_params = (pytensor.shared(v) for v in (np.log(C), np.log1p(-C),
                                                          *_params(lag, scale)))
    arrays = LikelihoodArrays({k: pytensor.shared(v)
                               for k, v in LikelihoodArrays.from_rows(family, rows).items()})
    f = pytensor.function([], total_loglik(family, rows, lc, l1c, *lag_params, xp=PT,
                                           data_vars=arrays), mode=py_mode)
    np.testing.assert_allclose(f() - n_exact * np.log(scale), expected, rtol=1e-10)
    # and the numpy path of the same function agrees (also with xp passed positionally)
    np_total = total_loglik(family, rows, np.log(C), np.log1p(-C), *_params(lag, scale), NP)
    np.testing.assert_allclose(np_total - n_exact * np.log(scale), expected, rtol=1e-10)


def test_gamma_uses_sufficient_statistics():
    rows = rows_from_data(_data(), time_scale=1.0)
    arrays = LikelihoodArrays.from_rows(get_lag("gamma"), rows)
    assert ("stats", "n") in arrays and (RowKind.EXACT, "count") not in arrays
    np.testing.assert_allclose(arrays[("stats", "n")], [4, 4])  # exact: 4 in a; 1+2+1 in b
    assert (RowKind.EXACT, "count") in LikelihoodArrays.from_rows(get_lag("weibull"), rows)
    assert (RowKind.EXACT, "count") in LikelihoodArrays.from_rows(get_lag("gengamma"), rows)
    for lag, names in (("exponential", {"n", "st"}), ("lognormal", {"n", "slogt", "slogt2"})):
        arrays = LikelihoodArrays.from_rows(get_lag(lag), rows)
        assert {("stats", n) for n in names} <= set(arrays)
        assert (RowKind.EXACT, "count") not in arrays
        np.testing.assert_allclose(arrays[("stats", "n")], [4, 4])
        # the pm.Data names of the model graph
        assert {"lik_stats_n", "lik_3_upper"} <= set(arrays.named())


def test_extreme_parameters_stay_finite():
    data, family = _data(), get_lag("gamma")
    rows = rows_from_data(data, time_scale=1.0)
    for c in (1e-9, 1 - 1e-12):
        for shape in (0.05, 300.0):
            cc = np.array([c, c])
            got = row_loglik(family, rows, np.log(cc), np.log1p(-cc), LOC, np.array([shape] * 2),
                             NP)
            assert not np.any(np.isnan(got)), (c, shape)
            # every row except exact/interval conversions with zero density stays finite
            assert np.all(np.isfinite(got[data.converted == 0]))


def test_rows_classification():
    rows = rows_from_data(_data(), time_scale=1.0, zero_width=0.5)
    assert rows.kind.tolist() == [0, 1, 2, 3, 4, 3, 0, 0, 2, 3, 3, 0]
    assert rows.upper[1] == 0.5  # zero-duration conversion placed in (0, zero_width]


def test_arrays_give_the_rows_loglik():
    data, family = _data(), get_lag("weibull")
    rows = rows_from_data(data, time_scale=2.0, zero_width=0.5)
    plain = total_loglik(family, rows, np.log(C), np.log1p(-C), LOC / 2, SHAPE, NP)
    arrays = LikelihoodArrays.from_rows(family, rows)
    assert set(arrays.ranks().values()) == {1}
    got = total_loglik(family, rows, np.log(C), np.log1p(-C), LOC / 2, SHAPE, NP,
                       data_vars=arrays)
    assert got == pytest.approx(plain, rel=1e-12)


def test_converter_median_of_a_mix_against_a_root_finder():
    """Median lag of the converters of a 4-group mix: the root of Σ a_k F_k(t) = 1/2 found by
    scipy's brentq (a_k ∝ w_k c_k), with two groups that share their lag (merged into one
    component) and one that does not; a mix of identical lags is that lag's median."""
    from scipy import optimize, stats

    from bayesconv.lags import get_lag
    from bayesconv.model.mixture import converter_median

    gamma = get_lag("gamma")
    rate = np.array([[0.2, 0.3, 0.25, 0.1], [0.5, 0.1, 0.1, 0.3]])  # (draw, group)
    mean = np.array([[5.0, 5.0, 12.0, 5.0], [3.0, 3.0, 8.0, 3.0]])
    shape = np.array([[1.5, 1.5, 0.8, 1.5], [2.0, 2.0, 1.2, 2.0]])
    w = np.array([100.0, 50.0, 80.0, 20.0])
    got = converter_median(gamma, rate, [mean, shape], w)
    for d in range(2):
        a = w * rate[d] / (w * rate[d]).sum()

        def f(t, d=d, a=a):
            return (a * stats.gamma.cdf(t, shape[d], scale=mean[d] / shape[d])).sum() - 0.5

        assert got[d] == pytest.approx(optimize.brentq(f, 1e-6, 1e3, xtol=1e-13), rel=1e-10)
    same = converter_median(gamma, rate[:, [0, 1, 3]], [mean[:, [0, 1, 3]], shape[:, [0, 1, 3]]],
                            w[[0, 1, 3]])
    np.testing.assert_allclose(same, stats.gamma.median(shape[:, 0], scale=mean[:, 0] /
                                                        shape[:, 0]), rtol=1e-12)


# ----------------------------------------------------------------------------- time resolution

def _recorded_data(width=1.0, read="interval"):
    """Integer-day rows read as recorded to ``width`` (both timestamps floored)."""
    rows = [(0, 0.0, True, 3), (0, 1.0, True, 4), (0, 2.0, True, 2), (0, 9.0, True, 1),
            (0, 1.0, False, 2), (0, 12.0, False, 5), (0, 0.0, False, 1), (0, 0.5, False, 1),
            (1, 0.0, True, 1), (1, 1.0, True, 2), (1, 44.0, True, 3), (1, 3.0, False, 4),
            (1, 400.0, False, 2)]
    g, d, cv, n = map(np.array, zip(*rows, strict=True))
    return ConversionData(cohort=g.astype(np.int64), duration=d.astype(float),
                          lower=d.astype(float), converted=cv.astype(bool),
                          count=n.astype(np.int64), cohorts=("a", "b"), time_unit="D",
                          meta={"resolution": width, "resolution_read": read})


def _recorded_by_hand(lag, data, width):
    """The coarsened-data likelihood by adaptive quadrature (scipy.integrate.quad).

    Both times floored to ``width``: a conversion recorded k bins after creation has
    probability c ∫ f(t) Λ(t/width − k) dt with the triangle Λ(s) = max(0, 1 − |s|); a unit
    not converted at recorded age a was followed for a − u·min(width, a), u uniform on (0, 1).
    """
    from scipy import integrate

    out = []
    for g, t, cv in zip(data.cohort, data.duration, data.converted, strict=True):
        dist, c = _scipy_dist(lag, LOC[g], SHAPE[g], Q[g]), C[g]
        if cv:
            k = t / width
            p = sum(integrate.quad(lambda s, d=dist, k=k: d.pdf(s * width) * width
                                   * (1 - abs(s - k)),
                                   lo, hi, limit=200, epsabs=0, epsrel=1e-11)[0]
                    for lo, hi in ((max(k - 1, 0), k), (k, k + 1)))
            out.append(np.log(c * p))
        elif t == 0:
            out.append(0.0)
        else:
            span = min(width, t)
            f = integrate.quad(lambda u, d=dist, t=t, span=span: d.cdf(t - u * span), 0, 1,
                               limit=200, epsabs=0, epsrel=1e-11)[0]
            out.append(np.log1p(-c * f))
    return np.array(out)


def test_recorded_rows_are_classified_as_smeared():
    rows = rows_from_data(_recorded_data(), time_scale=1.0)
    K = RowKind
    # within 1.5 bins of 0 the NEAR kinds (rules for a density singular at 0), beyond the
    # cheaper Gaussian rules of the weights
    assert rows.kind.tolist() == [K.SMEARED_FIRST, K.SMEARED_NEAR, K.SMEARED, K.SMEARED,
                                  K.SMEARED_CENSORED_NEAR, K.SMEARED_CENSORED, K.AT_ZERO,
                                  K.SMEARED_CENSORED_NEAR, K.SMEARED_FIRST, K.SMEARED_NEAR,
                                  K.SMEARED, K.SMEARED_CENSORED, K.SMEARED_CENSORED]
    np.testing.assert_array_equal(rows.width[rows.kind != K.AT_ZERO], 1.0)
    # read as exact, the same rows are exact, zero-width and censored rows
    exact = rows_from_data(_recorded_data(read="exact"), time_scale=1.0)
    assert set(exact.kind.tolist()) == {0, 1, 3, 4}


@pytest.mark.parametrize("lag", LAGS)
def test_recorded_rows_match_quadrature(lag):
    # Gauss-Legendre with 6 nodes after u = 1 - (1 - v)^2 against adaptive quadrature; the
    # shapes 0.7 and 2.5 of the two cohorts cover a density spiked at 0 and one rising from 0
    data = _recorded_data(width=1.0)
    rows = rows_from_data(data, time_scale=1.0)
    got = row_loglik(get_lag(lag), rows, np.log(C), np.log1p(-C), *_params(lag), xp=NP)
    expected = _recorded_by_hand(lag, data, 1.0)
    np.testing.assert_allclose(np.exp(got), np.exp(expected), rtol=2e-3, atol=1e-12)
    # 3e-4 wherever the row's probability is not in a far tail (the log-normal's first bin
    # at median 5 days and sdlog 0.4 has probability 7e-7, with a relative error of 1.5e-3)
    big = np.exp(expected) > 1e-4
    np.testing.assert_allclose(np.exp(got[big]), np.exp(expected[big]), rtol=3e-4)


@pytest.mark.parametrize("shape", [0.3, 0.5, 1.0, 2.0, 4.0])
def test_recorded_rows_accurate_for_spiked_lags(shape):
    # the hard corner: most of the lag within the first bins and a density ~ t^(shape - 1)
    from scipy import integrate

    family = get_lag("gamma")
    for mean in (0.5, 3.0, 10.0):
        dist = stats.gamma(shape, scale=mean / shape)
        for k in (0, 1, 2, 5):
            kind = (RowKind.SMEARED_FIRST, RowKind.SMEARED_NEAR)[k] if k < 2 \
                else RowKind.SMEARED
            exact = sum(integrate.quad(lambda t, d=dist, k=k: d.pdf(t) * (1 - abs(t - k)),
                                       lo, hi, limit=200)[0]
                        for lo, hi in ((max(k - 1, 0), k), (k, k + 1)))
            rows = ConversionData(cohort=np.array([0]), duration=np.array([float(k)]),
                                  lower=np.array([float(k)]),
                                  converted=np.array([True]), count=np.array([1]),
                                  cohorts=("a",), time_unit="D",
                                  meta={"resolution": 1.0, "resolution_read": "interval"})
            r = rows_from_data(rows, time_scale=1.0)
            assert r.kind[0] == kind
            got = row_loglik(family, r, np.zeros(1), np.array([-np.inf]), np.array([mean]),
                             np.array([shape]), xp=NP)
            assert np.exp(got[0]) == pytest.approx(exact, rel=2e-4), (mean, k)


@pytest.mark.parametrize("lag", ["gamma", "weibull", "gengamma"])
def test_recorded_rows_pytensor_value_and_gradient(lag, py_mode):
    data, family = _recorded_data(width=1.0), get_lag(lag)
    rows = rows_from_data(data, time_scale=2.0)
    params = _params(lag, 2.0)
    expected = float(np.sum(data.count * row_loglik(family, rows, np.log(C), np.log1p(-C),
                                                    *params, xp=NP)))
    lc, l1c, *lag_params = (pytensor.shared(v) for v in (np.log(C), np.log1p(-C), *params))
    arrays = LikelihoodArrays({k: pytensor.shared(v)
                               for k, v in LikelihoodArrays.from_rows(family, rows).items()})
    total = total_loglik(family, rows, lc, l1c, *lag_params, xp=PT, data_vars=arrays)
    grads = pytensor.grad(total, lag_params)
    f = pytensor.function([], [total, *grads], mode=py_mode)
    value, *grad = f()
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    # gradient against central differences of the numpy log-likelihood
    for j, p in enumerate(params):
        for i in range(len(p)):
            h = 1e-6 * p[i]
            up, dn = [q.copy() for q in params], [q.copy() for q in params]
            up[j][i] += h
            dn[j][i] -= h
            fd = (total_loglik(family, rows, np.log(C), np.log1p(-C), *up, NP)
                  - total_loglik(family, rows, np.log(C), np.log1p(-C), *dn, NP)) / (2 * h)
            assert grad[j][i] == pytest.approx(fd, rel=1e-5, abs=1e-7), (j, i)


def test_recorded_durations_are_read_as_rounded():
    # duration/event layout: only the duration was rounded (floor or ceiling unknown): a
    # conversion at recorded d lies in (d - δ/2, d + δ/2], a censoring time too
    d = np.array([0.0, 1.0, 4.0, 0.0, 3.0])
    data = ConversionData(cohort=np.zeros(5, np.int64), duration=d, lower=d,
                          converted=np.array([True, True, True, False, False]),
                          count=np.ones(5, np.int64), cohorts=("a",), time_unit="W",
                          meta={"layout": "durations", "resolution": 1.0,
                                "resolution_read": "interval"})
    rows = rows_from_data(data, time_scale=1.0)
    K = RowKind
    assert rows.kind.tolist() == [K.FIRST_BIN, K.INTERVAL, K.INTERVAL,
                                  K.SMEARED_CENSORED_NEAR, K.SMEARED_CENSORED]
    np.testing.assert_allclose(rows.lower[:3], [0.0, 0.5, 3.5])
    np.testing.assert_allclose(rows.upper, [0.5, 1.5, 4.5, 0.5, 3.5])
    family, c = get_lag("gamma"), 0.6
    dist = stats.gamma(SHAPE[0], scale=LOC[0] / SHAPE[0])
    got = row_loglik(family, rows, np.log([c]), np.log1p([-c]), LOC[:1], SHAPE[:1], xp=NP)
    from scipy import integrate

    avg_cdf = [integrate.quad(dist.cdf, max(t - 0.5, 0), t + 0.5)[0] / (min(t + 0.5, 1.0)
               if t == 0 else 1.0) for t in (0.0, 3.0)]
    expected = [np.log(c * dist.cdf(0.5)), np.log(c * (dist.cdf(1.5) - dist.cdf(0.5))),
                np.log(c * (dist.cdf(4.5) - dist.cdf(3.5))), np.log1p(-c * avg_cdf[0]),
                np.log1p(-c * avg_cdf[1])]
    np.testing.assert_allclose(got, expected, rtol=3e-4)
