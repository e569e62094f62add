"""Saving and loading results: exact round trips, files without data, and every error path."""

import datetime as dt
import json
import re
import shutil
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import bayesconv as bc
from bayesconv.errors import DataNotSavedError
from bayesconv.posterior.result import ConversionResult, load
from bayesconv.posterior.store import (
    FORMAT_VERSION,
    DataNotSaved,
    _decode,
    _encode,
    _encode_labels,
    save_result,
)

matplotlib.use("Agg")


# ---------------------------------------------------------------------------- fixtures
def _fabricate(model, *, chains=2, draws=100, seed=0):
    """A posterior near plausible values plus nutpie-like sample stats (as tests/test_posterior_quantities)."""
    rng = np.random.default_rng(seed)
    n = model.data.n_cohorts
    shape = (chains, draws, n)
    dims = ("chain", "draw", "cohort")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws),
              "cohort": [str(c) for c in model.data.cohorts]}
    c = np.clip(rng.uniform(0.2, 0.6, n) + rng.normal(0, 0.02, shape), 0.01, 0.99)
    loc = rng.uniform(4.0, 12.0, n) * np.exp(rng.normal(0, 0.05, shape))
    k = rng.uniform(1.0, 2.5, n) * np.exp(rng.normal(0, 0.05, shape))
    post = xr.Dataset({"logit_rate": (dims, np.log(c / (1 - c))), "eventual_rate": (dims, c),
                       "lag_loc": (dims, loc), "lag_shape": (dims, k)}, coords=coords)
    if model.spec.pooling == "partial":
        post["mu_logit_rate"] = (("chain", "draw"), rng.normal(size=shape[:2]))
        post["sigma_logit_rate"] = (("chain", "draw"), rng.gamma(2.0, size=shape[:2]))
    post.attrs.update(created_at="2026-01-01T00:00:00", sample_dims=["chain", "draw"])
    two = ("chain", "draw")
    message = np.full(shape[:2], None, dtype=object)
    message[0, 3] = "divergence at step 7"
    energy = rng.normal(size=shape[:2])
    energy[1, 5] = np.nan
    ss = xr.Dataset({"diverging": (two, np.zeros(shape[:2], bool)),
                     "depth": (two, rng.integers(1, 6, shape[:2]).astype(np.uint64)),
                     "divergence_message": (two, message),
                     "energy_error": (two, energy)},
                    coords={"chain": coords["chain"], "draw": coords["draw"]})
    ss.attrs.update(inference_library="nutpie", sample_dims=["chain", "draw"],
                    inference_library_settings=json.dumps({"num_draws": draws}))
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": ss})
    return ConversionResult.from_fit(model, tree, sampler="fabricated",
                                      timing={"compile_s": 1.25, "sampling_s": 0.5,
                                              "compile_cached": False}, random_seed=7)


@pytest.fixture(scope="module")
def ab_result():
    ev = bc.simulate(n_units=[300, 300], eventual_rate=[0.3, 0.36], lag_loc=[5.0, 8.0],
                     lag_shape=[2.0, 1.2], random_seed=3, enrollment=20, followup=25)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    return _fabricate(bc.ConversionModel(data))


@pytest.fixture(scope="module")
def rossi_result():
    df = bc.datasets.load_rossi()
    data = bc.prepare(df, duration="week", event="arrest", cohort="fin", time_unit="W")
    return _fabricate(bc.ConversionModel(data), seed=1)


@pytest.fixture(scope="module")
def pooled_result():
    ev = bc.simulate(n_units=[100, 150, 200], eventual_rate=[0.3, 0.4, 0.5],
                     lag_loc=[5.0, 6.0, 7.0], lag_shape=2.0, random_seed=1, enrollment=20,
                     followup=25)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    return _fabricate(bc.ConversionModel(data, lag="weibull", pooling="partial"), seed=2)


@pytest.fixture(scope="module")
def ab_store(ab_result, tmp_path_factory):
    """One saved store; tests that damage a store copy it first."""
    return save_result(ab_result, tmp_path_factory.mktemp("store") / "ab.zarr")


@pytest.fixture
def ab_copy(ab_store, tmp_path):
    path = tmp_path / "copy.zarr"
    shutil.copytree(ab_store, path)
    return path


def _assert_same_tree(a: xr.DataTree, b: xr.DataTree):
    xr.testing.assert_identical(a, b)

    def order(tree):  # log_likelihood is recomputed on load, so it comes last there
        nodes = list(tree.subtree)
        return [n for n in nodes if n.path != "/log_likelihood"] + [
            n for n in nodes if n.path == "/log_likelihood"]

    assert [n.path for n in order(a)] == [n.path for n in order(b)]
    for na, nb in zip(order(a), order(b), strict=True):
        da, db = na.to_dataset(inherit=False), nb.to_dataset(inherit=False)
        assert list(da.data_vars) == list(db.data_vars)
        assert da.attrs == db.attrs
        for name in da.variables:
            va, vb = da.variables[name], db.variables[name]
            assert va.dtype == vb.dtype, (na.path, name)
            if va.dtype.kind == "O":
                assert va.values.tolist() == vb.values.tolist()
            else:  # bit for bit, NaNs included
                assert np.array_equal(va.values, vb.values,
                                      equal_nan=va.dtype.kind in "fc"), (na.path, name)


def _assert_same_data(a, b):
    for name in ("cohort", "duration", "lower", "converted", "count"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.cohorts == b.cohorts
    assert [type(c) for c in a.cohorts] == [type(c) for c in b.cohorts]
    assert a.time_unit == b.time_unit and a.cohort_name == b.cohort_name
    assert a.observed_until == b.observed_until
    assert type(a.observed_until) is type(b.observed_until)
    assert a.meta == b.meta
    if a.followup is None:
        assert b.followup is None
    else:
        pd.testing.assert_frame_equal(a.followup, b.followup)


# ---------------------------------------------------------------------------- round trips
def test_round_trip_is_exact(ab_result, ab_store):
    back = load(ab_store)
    _assert_same_tree(ab_result.idata, back.idata)
    assert "bayesconv_format" not in back.idata.attrs and "bayesconv_data" not in back.idata
    assert back.spec == ab_result.spec
    assert back.sampler == "fabricated" and back.timing == ab_result.timing
    _assert_same_data(ab_result.data, back.data)
    assert isinstance(back.data.observed_until, pd.Timestamp)
    assert repr(back) == repr(ab_result)

    pd.testing.assert_frame_equal(back.summary(ci_prob=0.9), ab_result.summary(ci_prob=0.9))
    t = [0.0, 1.5, 7.0, 30.0]
    xr.testing.assert_identical(back.curves(t), ab_result.curves(t))
    xr.testing.assert_identical(back.pointwise_loglik(), ab_result.pointwise_loglik())
    pd.testing.assert_frame_equal(back.nowcast(random_seed=4), ab_result.nowcast(random_seed=4))
    pd.testing.assert_frame_equal(back.posterior_predictive_km(n_draws=5, random_seed=2),
                                  ab_result.posterior_predictive_km(n_draws=5, random_seed=2))
    kw = {"horizon": 14, "rope": 0.005}
    pd.testing.assert_frame_equal(bc.compare(back, "B", "A", **kw).to_frame(),
                                  bc.compare(ab_result, "B", "A", **kw).to_frame())
    assert back.diagnostics()["problems"] == ab_result.diagnostics()["problems"]


def test_round_trip_rossi_keeps_int_cohorts(rossi_result, tmp_path):
    back = load(save_result(rossi_result, tmp_path / "rossi.zarr"))
    assert back.data.cohorts == (0, 1) and all(type(c) is int for c in back.data.cohorts)
    assert back.data.followup is None and back.data.observed_until is None
    _assert_same_data(rossi_result.data, back.data)
    _assert_same_tree(rossi_result.idata, back.idata)
    kw = {"higher_is_better": False, "horizon": 52}
    got = bc.compare(back, 1, 0, **kw).to_frame()
    pd.testing.assert_frame_equal(got, bc.compare(rossi_result, 1, 0, **kw).to_frame())
    assert got["treatment"].tolist() == [1, 1, 1]  # eventual, by 52 weeks, median lag
    pd.testing.assert_frame_equal(back.summary(), rossi_result.summary())


def test_round_trip_partial_pooling_spec(pooled_result, tmp_path):
    spec = pooled_result.spec
    assert spec.pooling == "partial" and spec.parametrization and spec.lag == "weibull"
    back = load(save_result(pooled_result, tmp_path / "pooled.zarr"))
    assert back.spec == spec
    assert all(isinstance(v, tuple) for v in back.spec.parametrization.values())
    assert back.family.name == "weibull"
    _assert_same_tree(pooled_result.idata, back.idata)
    pd.testing.assert_frame_equal(back.summary(), pooled_result.summary())


def test_timestamp_cohorts_round_trip(tmp_path):
    ev = bc.simulate(n_units=[80, 80], eventual_rate=[0.3, 0.5], lag_loc=5.0, random_seed=5,
                     enrollment=10, followup=20)
    ev["week"] = np.where(ev["cohort"] == "A", pd.Timestamp("2024-01-01", tz="UTC"),
                          pd.Timestamp("2024-01-08", tz="UTC"))
    ev["week"] = pd.to_datetime(ev["week"], utc=True)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="week")
    res = _fabricate(bc.ConversionModel(data))
    back = load(save_result(res, tmp_path / "weeks.zarr"))
    assert all(isinstance(c, pd.Timestamp) for c in back.data.cohorts)
    _assert_same_data(res.data, back.data)
    pd.testing.assert_frame_equal(back.summary(), res.summary())


def test_unusual_variables_and_attributes_round_trip(ab_result, tmp_path):
    """Object arrays with None, CF-looking attributes, datetimes, extra groups: unchanged."""
    tree = ab_result.idata.copy()
    extra = xr.Dataset(
        {"elapsed": ("k", np.array([1.0, 2.0]), {"units": "days since 2000-01-01"}),
         "scaled": ("k", np.array([3, 4], dtype=np.int16), {"scale_factor": 0.5,
                                                             "_FillValue": 3}),
         "when": ("k", np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[ns]")),
         "note": ("k", np.array([None, "x"], dtype=object))},
        coords={"k": ["a", "b"]}, attrs={"purpose": "test", "nested": [1, 2]})
    tree["extra"] = xr.DataTree(extra)
    res = ConversionResult(tree, ab_result.data, ab_result.spec, sampler="fabricated")
    back = load(save_result(res, tmp_path / "extra.zarr"))
    _assert_same_tree(tree, back.idata)
    assert back.idata["sample_stats"]["divergence_message"].values[0, 3] == "divergence at step 7"
    assert back.idata["sample_stats"]["divergence_message"].values[0, 0] is None


@pytest.mark.parametrize("value", [
    0, 7, np.int64(3), np.int32(-2), 1.5, np.float64(2.0), True, np.bool_(False), "x",
    np.str_("y"), None, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 05:00:00.123456789"),
    pd.Timestamp("2024-03-31 02:30", tz="UTC"), pd.Timestamp("2024-06-01 08:00", tz="Europe/Berlin"),
    pd.Period("2024-01", "M"), pd.Timedelta(97200, unit="s"), pd.NaT, dt.date(2024, 1, 1),
    dt.datetime(2024, 1, 1, 12, 30), dt.timedelta(days=2, seconds=5),
    np.datetime64("2024-01-01T00:00:00", "s"), np.timedelta64(5, "D"),
    (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")), (np.float64(0.5), np.float64(9.0)),
    {"layout": "dates", "weights": [1, 2.5]}, {1: "a", "__type__": "b"}, float("inf"),
])
def test_tagged_json_keeps_types(value):
    back = _decode(json.loads(json.dumps(_encode(value, "test"))))
    assert type(back) is type(value)
    if isinstance(value, tuple):
        assert all(type(a) is type(b) for a, b in zip(value, back, strict=True))
    assert back == value or (value is pd.NaT and back is pd.NaT)
    if isinstance(value, pd.Timestamp):
        assert str(back.tz) == str(value.tz) and back.unit == value.unit


def test_unstorable_label_is_saved_as_str_with_a_warning():
    class Odd:
        def __str__(self):
            return "odd"

    with pytest.warns(bc.DataWarning, match="saved as the string 'odd'"):
        assert _encode_labels(["a", Odd()]) == ["a", "odd"]
    with pytest.raises(TypeError, match="cannot store meta"):
        _encode(object(), "meta")


# ---------------------------------------------------------------------------- without data
def test_without_data(ab_result, tmp_path):
    path = save_result(ab_result, tmp_path / "nodata.zarr", include_data=False)
    back = load(path)
    assert set(back.idata.children) == {"posterior", "sample_stats"}
    _assert_same_tree(ab_result.idata["posterior"], back.idata["posterior"])
    assert isinstance(back.data, DataNotSaved) and back.data.cohorts == ("A", "B")
    assert back.data.time_unit == "D" and back.data.observed_until == ab_result.data.observed_until
    xr.testing.assert_identical(back.eventual_rate(), ab_result.eventual_rate())
    xr.testing.assert_identical(back.curves([1.0, 10.0]), ab_result.curves([1.0, 10.0]))
    xr.testing.assert_identical(back.conversion_probability(3.0, "B"),
                                ab_result.conversion_probability(3.0, "B"))
    pd.testing.assert_frame_equal(bc.compare(back, "B", "A", horizon=7).to_frame(),
                                  bc.compare(ab_result, "B", "A", horizon=7).to_frame())
    assert back.diagnostics()["problems"] == ab_result.diagnostics()["problems"]

    msg = re.escape(str(path)) + ".*include_data=False"
    calls = [back.summary, back.nowcast, back.plot, back.pointwise_loglik,
             lambda: back.plot_ppc_km(n_draws=2), lambda: bc.kaplan_meier(back.data)]
    if hasattr(back, "identification"):
        calls.append(back.identification)
    for call in calls:
        with pytest.raises(DataNotSavedError, match="unit-level data were not saved"):
            call()
    with pytest.raises(ValueError, match=msg):
        back.summary()
    # a data-less result saves again, but only without data
    with pytest.raises(ValueError, match="save it with include_data=False"):
        save_result(back, tmp_path / "again.zarr")
    again = load(save_result(back, tmp_path / "again.zarr", include_data=False))
    _assert_same_tree(back.idata, again.idata)
    assert again.data.cohorts == ("A", "B")


def test_without_data_keeps_int_labels(rossi_result, tmp_path):
    back = load(save_result(rossi_result, tmp_path / "r.zarr", include_data=False))
    assert back.data.cohorts == (0, 1) and type(back.data.cohorts[0]) is int
    kw = {"higher_is_better": False}
    pd.testing.assert_frame_equal(bc.compare(back, 1, 0, **kw).to_frame(),
                                  bc.compare(rossi_result, 1, 0, **kw).to_frame())


# ---------------------------------------------------------------------------- save errors
def test_save_refuses_to_clobber(ab_result, ab_copy, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_result(ab_result, ab_copy)
    other = _fabricate(bc.ConversionModel(ab_result.data), seed=9)
    save_result(other, ab_copy, overwrite=True)  # replaces a bayesconv result
    xr.testing.assert_identical(load(ab_copy).posterior, other.posterior)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.zarr"]  # no temp leftovers

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a bayesconv result; refusing"):
        save_result(ab_result, mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_result(ab_result, tmp_path / "no" / "such" / "dir.zarr")
    with pytest.raises(TypeError, match="needs a ConversionResult"):
        save_result(ab_result.idata, tmp_path / "x.zarr")


# ---------------------------------------------------------------------------- load errors
def test_missing_path(tmp_path):
    path = tmp_path / "nothing.zarr"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load(path)


def test_not_a_result(tmp_path):
    file = tmp_path / "events.csv"
    file.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=re.escape(str(file)) + ".*is a file"):
        load(file)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path)) + ".*not a Zarr store"):
        load(tmp_path)
    plain = tmp_path / "plain.zarr"
    xr.DataTree(xr.Dataset({"x": ("i", [1.0, 2.0])})).to_zarr(plain, consolidated=False)
    with pytest.raises(ValueError, match=re.escape(str(plain))
                       + ".*not a bayesconv result.*no 'bayesconv_format'"):
        load(plain)


def _set_root_attr(path, key, value):
    zarr.open_group(str(path), mode="r+").attrs[key] = value


def test_newer_format(ab_copy):
    _set_root_attr(ab_copy, "bayesconv_format", FORMAT_VERSION + 1)
    msg = (f"{ab_copy} was written by a newer bayesconv (format {FORMAT_VERSION + 1}); this is "
           f"format {FORMAT_VERSION}: upgrade bayesconv")
    with pytest.raises(ValueError, match=re.escape(msg)):
        load(ab_copy)


@pytest.mark.parametrize("value", [0, "1", 1.0, True])
def test_bad_format_attribute(ab_copy, value):
    _set_root_attr(ab_copy, "bayesconv_format", value)
    with pytest.raises(ValueError, match=re.escape(str(ab_copy)) + ".*damaged.*format"):
        load(ab_copy)


@pytest.mark.parametrize("text", ["{not json", "{}", "[1, 2]"])
def test_unreadable_metadata_json(ab_copy, text):
    _set_root_attr(ab_copy, "bayesconv_result", text)
    with pytest.raises(ValueError, match="damaged.*'bayesconv_result' metadata"):
        load(ab_copy)


def test_unknown_lag_family(ab_copy):
    meta = json.loads(zarr.open_group(str(ab_copy), mode="r").attrs["bayesconv_result"])
    meta["spec"]["lag"] = "loglogistic"
    _set_root_attr(ab_copy, "bayesconv_result", json.dumps(meta))
    with pytest.raises(ValueError, match=re.escape(str(ab_copy))
                       + ".*unknown lag family 'loglogistic'"):
        load(ab_copy)


def _chunks(path, group, var):
    files = sorted(p for p in (path / group / var / "c").rglob("*") if p.is_file())
    assert files, f"no chunk files under {group}/{var}"
    return files


@pytest.mark.parametrize("group, var", [("posterior", "eventual_rate"),
                                        ("bayesconv_data", "count"),
                                        ("sample_stats", "divergence_message")])
def test_missing_chunk_is_detected(ab_copy, group, var):
    _chunks(ab_copy, group, var)[0].unlink()  # Zarr alone would read fill values here
    with pytest.raises(ValueError, match=re.escape(str(ab_copy)) + f".*damaged.*/{group}/{var}"):
        load(ab_copy)


def test_corrupted_chunk_is_detected(ab_copy):
    chunk = _chunks(ab_copy, "posterior", "lag_loc")[0]
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=re.escape(str(ab_copy)) + ".*damaged"):
        load(ab_copy)


@pytest.mark.parametrize("meta_file", ["posterior/lag_shape/zarr.json", "posterior/zarr.json",
                                       "zarr.json"])
def test_truncated_metadata_is_detected(ab_copy, meta_file):
    target = ab_copy / meta_file
    target.write_text(target.read_text()[:40])
    named = "root metadata" if meta_file == "zarr.json" else re.escape(meta_file)
    with pytest.raises(ValueError, match=re.escape(str(ab_copy)) + f".*damaged.*{named}"):
        load(ab_copy)


def test_missing_group_is_detected(ab_copy):
    shutil.rmtree(ab_copy / "sample_stats")
    with pytest.raises(ValueError, match="damaged.*group /sample_stats is missing"):
        load(ab_copy)


# ---------------------------------------------------------------------------- a real fit
@pytest.mark.slow
def test_real_fit_round_trip(tmp_path):
    df = bc.datasets.load_rossi()
    data = bc.prepare(df, duration="week", event="arrest", cohort="fin", time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and identification notes
        res = bc.ConversionModel(data).fit(draws=200, tune=200, chains=2, random_seed=1,
                                           progressbar=False)
    back = load(save_result(res, tmp_path / "fit.zarr"))
    _assert_same_tree(res.idata, back.idata)
    assert back.timing == res.timing and back.sampler == res.sampler
    pd.testing.assert_frame_equal(back.summary(), res.summary())
    pd.testing.assert_frame_equal(bc.compare(back, 1, 0, horizon=52).to_frame(),
                                  bc.compare(res, 1, 0, horizon=52).to_frame())


def test_log_likelihood_is_not_stored_but_recomputed(ab_result, ab_store):
    """The pointwise log-likelihood (draws x rows) is a function of posterior and data: the
    store leaves it out and the loaded result recomputes the same values on access."""
    import zarr

    groups = set(zarr.open_group(str(ab_store), mode="r").group_keys())
    assert "log_likelihood" not in groups and "posterior" in groups
    back = load(ab_store)
    assert "log_likelihood" not in back.tree.children  # not computed until asked for
    xr.testing.assert_identical(back.idata["log_likelihood"].to_dataset(),
                                ab_result.idata["log_likelihood"].to_dataset())
