"""prepare() on Polars, DuckDB and PySpark inputs, time binning, and the DuckDB-backed CLI.

Every engine must give the ConversionData that pandas gives for the same events (aggregated
rows, follow-up table, cohorts, metadata), and fits on them must be identical draw for draw.
"""

import re
import warnings

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

import bayesconv as bc
from bayesconv.cli import main
from bayesconv.data.readers import read_events
from bayesconv.model.likelihood import rows_from_data

DATES = dict(created="created", converted="converted", observed_until="observed_until",
             cohort="cohort")
DURATIONS = dict(duration="t", event="e", cohort="cohort")


@pytest.fixture(scope="module")
def events():
    ev = bc.simulate(n_units=[400, 300], eventual_rate=[0.3, 0.45], lag_loc=6.0, lag_shape=1.5,
                     enrollment=20, followup=15, random_seed=11, resolution="h")
    ev["cohort"] = ev["cohort"].astype(str)
    return ev


@pytest.fixture(scope="module")
def durations(events):
    """The same units in the duration/event layout (days, 0/1 indicator)."""
    conv = events["converted"].notna()
    end = events["converted"].where(conv, events["observed_until"])
    return pd.DataFrame({"cohort": events["cohort"],
                         "t": (end - events["created"]).dt.total_seconds() / 86400.0,
                         "e": conv.astype(np.int64)})


@pytest.fixture(scope="module")
def counted(events):
    """An already aggregated table with a count column (identical units merged, 0s added)."""
    day = events.assign(created=events["created"].dt.floor("D"),
                        converted=events["converted"].dt.floor("D"))
    agg = (day.groupby(["cohort", "created", "converted", "observed_until"], dropna=False)
           .size().rename("n").reset_index())
    agg = agg[agg["n"] > 0]
    zero = agg.iloc[:2].assign(n=0)          # rows standing for no units
    return pd.concat([agg, zero], ignore_index=True)


def _engines(frame):
    """pandas, Polars eager and lazy, and DuckDB versions of the same table."""
    rel = duckdb.connect().from_df(frame)
    return {"pandas": frame, "polars": pl.from_pandas(frame),
            "polars-lazy": pl.from_pandas(frame).lazy(), "duckdb": rel}


def assert_same_data(a: bc.ConversionData, b: bc.ConversionData):
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), check_exact=True)
    if a.followup is None:
        assert b.followup is None
    else:
        pd.testing.assert_frame_equal(a.followup, b.followup, check_exact=True)
    assert a.cohorts == b.cohorts and a.meta == b.meta and a.time_unit == b.time_unit
    assert a.observed_until == b.observed_until and a.cohort_name == b.cohort_name
    for name in ("cohort", "lower", "duration", "converted", "count"):
        assert getattr(a, name).dtype == getattr(b, name).dtype


# ------------------------------------------------------------------------ same tables


@pytest.mark.parametrize("bin_width", [None, 2.0])
@pytest.mark.parametrize("engine", ["polars", "polars-lazy", "duckdb"])
def test_dates_layout_same_as_pandas(events, engine, bin_width):
    ref = bc.prepare(events, **DATES, bin_width=bin_width)
    got = bc.prepare(_engines(events)[engine], **DATES, bin_width=bin_width)
    assert_same_data(got, ref)
    assert ref.n_units == 700 and ref.followup is not None


@pytest.mark.parametrize("engine", ["polars", "polars-lazy", "duckdb"])
def test_scalar_observation_date_and_hours(events, engine):
    ev = events.drop(columns="observed_until")
    kw = dict(created="created", converted="converted", observed_until="2024-01-30",
              cohort="cohort", time_unit="h")
    with warnings.catch_warnings(record=True) as ref_w:
        warnings.simplefilter("always", bc.DataWarning)
        ref = bc.prepare(ev, **kw)          # late conversions: censored at the date, warned
    with warnings.catch_warnings(record=True) as got_w:
        warnings.simplefilter("always", bc.DataWarning)
        got = bc.prepare(_engines(ev)[engine], **kw)
    assert_same_data(got, ref)
    assert ref.observed_until == pd.Timestamp("2024-01-30")
    late = [str(w.message).split("; first")[0] for w in ref_w]
    assert late and late == [str(w.message).split("; first")[0] for w in got_w]


@pytest.mark.parametrize("bin_width", [None, 3.0])
@pytest.mark.parametrize("engine", ["polars", "polars-lazy", "duckdb"])
def test_durations_layout_same_as_pandas(durations, engine, bin_width):
    ref = bc.prepare(durations, **DURATIONS, bin_width=bin_width)
    got = bc.prepare(_engines(durations)[engine], **DURATIONS, bin_width=bin_width)
    assert_same_data(got, ref)
    assert ref.followup is None and ref.meta["layout"] == "durations"


@pytest.mark.parametrize("bin_width", [None, 7.0])
@pytest.mark.parametrize("engine", ["polars", "polars-lazy", "duckdb"])
def test_counts_same_as_pandas(counted, engine, bin_width):
    kw = dict(DATES, count="n", bin_width=bin_width)
    with pytest.warns(bc.DataWarning, match="2 rows with count 0"):
        ref = bc.prepare(counted, **kw)
    with pytest.warns(bc.DataWarning, match="2 rows with count 0"):
        got = bc.prepare(_engines(counted)[engine], **kw)
    assert_same_data(got, ref)
    assert ref.n_units == 700


def test_numeric_times_and_boolean_events_same_as_pandas():
    df = pd.DataFrame({"born": [1990.0, 1980.0, 2000.0, 1985.5], "married": [2015.0, None, None,
                                                                             2001.0],
                       "g": [1, 2, 1, 2]})
    kw = dict(created="born", converted="married", observed_until=2016, cohort="g",
              time_unit="Y")
    ref = bc.prepare(df, **kw)
    assert ref.cohorts == (1, 2)
    for frame in list(_engines(df).values())[1:]:
        assert_same_data(bc.prepare(frame, **kw), ref)
    surv = pd.DataFrame({"week": [3, 52, 10, 20], "arrest": [True, False, True, False]})
    ref = bc.prepare(surv, duration="week", event="arrest", time_unit="W")
    for frame in list(_engines(surv).values())[1:]:
        assert_same_data(bc.prepare(frame, duration="week", event="arrest", time_unit="W"),
                         ref)


def test_timezone_aware_engines_same_as_pandas(events):
    ev = events.assign(created=events["created"].dt.tz_localize("Europe/Paris"),
                       converted=events["converted"].dt.tz_localize("Europe/Paris"),
                       observed_until=events["observed_until"].dt.tz_localize("Europe/Paris"))
    ref = bc.prepare(ev, **DATES)
    for frame in (pl.from_pandas(ev), duckdb.connect().from_df(ev)):   # TIMESTAMPTZ in DuckDB
        got = bc.prepare(frame, **DATES)
        pd.testing.assert_frame_equal(got.to_frame(), ref.to_frame(), check_exact=True)
        pd.testing.assert_frame_equal(got.followup, ref.followup, check_exact=True)
    # DuckDB's nanosecond TIMESTAMPTZ_NS is a type narwhals 2 does not map: ask for a cast
    rel = duckdb.connect().from_arrow(pl.from_pandas(ev).to_arrow())
    with pytest.raises(ValueError, match=r"'created' has dtype Unknown.*CAST\(created AS "):
        bc.prepare(rel, **DATES)


def test_enum_cohort_keeps_category_order(events):
    ev = pl.from_pandas(events).with_columns(pl.col("cohort").cast(pl.Enum(["B", "A", "C"])))
    with pytest.warns(bc.DataWarning, match=r"no rows are left out: \['C'\]"):
        data = bc.prepare(ev, **DATES)
    assert data.cohorts == ("B", "A")
    ref = bc.prepare(events.assign(cohort=pd.Categorical(events["cohort"], ["B", "A"])),
                     **DATES)
    assert_same_data(data, ref)


def test_identical_fits_for_pandas_polars_duckdb(events):
    """Same data → same model → the same draws, whatever engine aggregated the events."""
    posts = {}
    for name in ("pandas", "polars-lazy", "duckdb"):
        data = bc.prepare(_engines(events)[name], **DATES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # few draws: ESS warnings
            res = bc.ConversionModel(data).fit(draws=200, tune=200, chains=2, random_seed=1,
                                               progressbar=False)
        posts[name] = res.posterior
    ref = posts.pop("pandas")
    for name, post in posts.items():
        assert set(post.data_vars) == set(ref.data_vars)
        for var in ref.data_vars:
            np.testing.assert_array_equal(post[var].values, ref[var].values, err_msg=name)


# ------------------------------------------------------------------------ bad input


def _bad_events():
    return pd.DataFrame({
        "created": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-03"]),
        "converted": pd.to_datetime(["2024-01-04", None, "2024-01-02", "2024-01-01"]),
        "arm": ["A", "B", "A", None],
        "n": [1, 2, -1, 1],
        "uid": ["u1", "u2", "u3", "u1"],
    })


@pytest.mark.parametrize("engine", ["polars", "polars-lazy", "duckdb"])
@pytest.mark.parametrize("kwargs,eager_pattern,lazy_pattern", [
    # timestamps are shown as ISO text, as they are written in files
    ({}, r"conversion before creation.*in 2 rows: row 2 \(created='2024-01-05 00:00:00', "
         r"converted='2024-01-02 00:00:00'\); row 3",
     r"conversion before creation.*in 2 rows: \(created='2024-01-0[53] 00:00:00'.*; \("),
    ({"cohort": "arm"}, r"missing cohort label in column 'arm' in 1 row: row 3 \(arm=None\)",
     r"missing cohort label in column 'arm' in 1 row: \(arm=None\)"),
    ({"count": "n"}, r"negative count in column 'n' in 1 row: row 2 \(n=-1\)",
     r"negative count in column 'n' in 1 row: \(n=-1\)"),
    ({"unit_id": "uid"}, r"duplicated unit id in column 'uid'.*in 2 rows: row 0 \(uid='u1'\); "
                         r"row 3 \(uid='u1'\)",
     r"duplicated unit id in column 'uid'.*in 2 rows: \(uid='u1'\); \(uid='u1'\)"),
    ({"cohort": "variant"}, r"cohort='variant' is not a column.*available columns: \['created'",
     r"cohort='variant' is not a column.*available columns: \['created'"),
])
def test_engine_errors_name_offending_rows(engine, kwargs, eager_pattern, lazy_pattern):
    frame = _engines(_bad_events())[engine]
    pattern = eager_pattern if engine == "polars" else lazy_pattern
    with pytest.raises(ValueError, match=pattern):
        bc.prepare(frame, created="created", converted="converted",
                   observed_until="2024-02-01", **kwargs)


@pytest.mark.parametrize("engine", ["polars-lazy", "duckdb"])
def test_engine_string_dates_ask_for_a_cast(engine):
    df = pd.DataFrame({"created": ["2024-01-01"], "converted": ["2024-01-02"]})
    with pytest.raises(ValueError, match=r"column 'created' holds strings.*cast column "
                                         r"'created' to a date or datetime type"):
        bc.prepare(_engines(df)[engine], created="created", converted="converted",
                   observed_until="2024-02-01")


@pytest.mark.parametrize("engine", ["polars-lazy", "duckdb"])
def test_engine_other_errors(engine):
    empty = _engines(_bad_events().iloc[:0])[engine]
    with pytest.raises(ValueError, match="the events table is empty"):
        bc.prepare(empty, created="created", converted="converted", observed_until="2024-02-01")
    aware = _bad_events().assign(created=_bad_events()["created"].dt.tz_localize("UTC"))
    with pytest.raises(ValueError, match=r"timezone-aware and naive.*'created' is "
                                         r"timezone-aware.*'converted' is naive"):
        bc.prepare(_engines(aware)[engine], created="created", converted="converted",
                   observed_until=pd.Timestamp("2024-02-01", tz="UTC"))
    surv = pd.DataFrame({"t": [1.0, np.inf, -2.0], "e": [1, 2, 0]})
    with pytest.raises(ValueError, match=r"infinite values in column 't' in 1 row: \(t=inf\)"):
        bc.prepare(_engines(surv)[engine], duration="t", event="e")
    with pytest.raises(ValueError, match=r"event indicator in column 'e'.*in 1 row: \(e=2\)"):
        bc.prepare(_engines(pd.DataFrame({"t": [1.0, 2.0], "e": [1, 2]}))[engine],
                   duration="t", event="e")


def test_not_a_frame():
    with pytest.raises(TypeError, match="events must be a pandas DataFrame, got dict; Polars"):
        bc.prepare({"t": [1]}, duration="t", event="e")


# ------------------------------------------------------------------------ one path


def _modulo_row_naming(text: str) -> str:
    """A message without the names of its rows (index labels for pandas, numbers for Polars)
    and with timestamps spelt one way (pandas shows the frame's own values)."""
    text = re.sub(r"row \S+ \(", "row (", text)
    return re.sub(r"Timestamp\('([^']*)'\)", r"'\1'", text)


def _one_path_events():
    """Events with index labels 101... (pandas names rows by them, Polars by position)."""
    ev = _bad_events().assign(n=[1, 2, 1, 0], arm=["A", "B", "A", "B"],
                              converted=pd.to_datetime(["2024-01-04", None, "2024-01-06",
                                                        "2024-03-01"]),
                              o=pd.to_datetime(["2024-02-01"] * 4),
                              t=[1.0, 2.5, 3.0, 0.0], e=[1, 0, 1, 1])
    return ev.set_axis([101, 102, 103, 104])


ONE_DATES = dict(created="created", converted="converted", observed_until="o", cohort="arm")
ONE_DURATIONS = dict(duration="t", event="e", cohort="arm")
ONE_PATH_BAD = [
    ("negative count", {"n": [1, -2, 1, 1]}, dict(ONE_DATES, count="n"),
     r"negative count in column 'n' in 1 row: row 102 \(n=-2\)"),
    ("non-integer count", {"n": [1.0, 2.5, 1.0, 1.0]}, dict(ONE_DATES, count="n"),
     r"non-integer count .* row 102 \(n=2.5\)"),
    ("missing cohort", {"arm": ["A", None, "B", None]}, ONE_DATES,
     r"missing cohort label .* in 2 rows: row 102 \(arm=None\); row 104"),
    ("duplicated ids", {"uid": ["u1", "u2", "u2", "u1"]}, dict(ONE_DATES, unit_id="uid"),
     r"duplicated unit id .* in 4 rows: row 101 \(uid='u1'\); row 102"),
    ("conversion before creation",
     {"converted": pd.to_datetime(["2024-01-04", None, "2024-01-02", "2023-12-01"])},
     ONE_DATES, r"conversion before creation .* in 2 rows: row 103 \(created=Timestamp\("
                r"'2024-01-05 00:00:00'\), converted=Timestamp\('2024-01-02 00:00:00'\), "
                r"o=Timestamp\('2024-02-01 00:00:00'\)\); row 104"),
    ("observation before creation",
     {"o": pd.to_datetime(["2024-02-01", "2024-01-01", "2024-02-01", "2024-02-01"])},
     ONE_DATES, r"observation date before creation .* in 1 row: row 102"),
    ("missing creation time before later checks",
     {"created": pd.to_datetime(["2024-01-01", None, "2024-03-05", "2024-01-03"])},
     ONE_DATES, r"missing creation time in column 'created' in 1 row: row 102 "),
    ("infinite before missing before negative", {"t": [np.nan, -1.0, np.inf, 1.0]},
     ONE_DURATIONS, r"infinite values in column 't' in 1 row: row 103 \(t=inf\)"),
    ("event not 0/1", {"e": [1, 2, 0, 3]}, ONE_DURATIONS,
     r"event indicator in column 'e' that is not 0/1 or True/False in 2 rows: row 102 "
     r"\(e=2\); row 104 \(e=3\)"),
    ("timezones mixed", {"o": pd.to_datetime(["2024-02-01"] * 4).tz_localize("UTC")},
     ONE_DATES, r"timezone-aware and naive timestamps are mixed: 'created' is naive, "
                r"'converted' is naive, 'o' is timezone-aware"),
    ("not a column", {}, dict(ONE_DATES, unit_id="user"),
     r"unit_id='user' is not a column of the events table; available columns: \['created'"),
    ("observation date that is no date", {}, dict(ONE_DATES, observed_until="soon"),
     r"observed_until='soon' is not an ISO 8601 date"),
]


@pytest.mark.parametrize("name,change,kwargs,pattern", ONE_PATH_BAD,
                         ids=[r[0] for r in ONE_PATH_BAD])
def test_pandas_and_polars_give_the_same_errors(name, change, kwargs, pattern):
    """One path: a pandas frame and its Polars copy fail with the same message, up to how
    the rows are named (pandas by index label, Polars by position) and how timestamps are
    spelt (pandas shows the frame's own values)."""
    ev = _one_path_events().assign(**change)
    errors = {}
    for engine, frame in (("pandas", ev), ("polars", pl.from_pandas(ev))):
        with pytest.raises(ValueError) as err:
            bc.prepare(frame, **kwargs)
        errors[engine] = str(err.value)
    assert re.search(pattern, errors["pandas"]), errors["pandas"]
    assert _modulo_row_naming(errors["pandas"]) == _modulo_row_naming(errors["polars"])
    # the same rows: index label 101 + i is position i
    labels = [int(x) - 101 for x in re.findall(r"row (\d+) \(", errors["pandas"])]
    assert labels == [int(x) for x in re.findall(r"row (\d+) \(", errors["polars"])]


def test_pandas_and_polars_give_the_same_data_and_warnings():
    """The same tables and the same warnings (late conversion, zero count, empty category,
    look-alike labels) from a pandas frame and its Polars copy."""
    ev = _one_path_events().assign(arm=pd.Categorical(["A", "a ", "A", "a "],
                                                      categories=["a ", "C", "A"]))
    polars = pl.from_pandas(ev).with_columns(pl.col("arm").cast(pl.Enum(["a ", "C", "A"])))
    for kwargs in (dict(ONE_DATES, count="n"),
                   dict(ONE_DATES, observed_until="2024-02-01", count="n", bin_width=2.0),
                   dict(ONE_DURATIONS, count="n", bin_width=0.5)):
        got = {}
        for engine, frame in (("pandas", ev), ("polars", polars)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", bc.DataWarning)
                data = bc.prepare(frame, **kwargs)
            got[engine] = data, [_modulo_row_naming(str(w.message)) for w in caught]
            assert {w.filename for w in caught} == {__file__}  # pointing at the caller
        assert_same_data(got["polars"][0], got["pandas"][0])
        assert got["polars"][1] == got["pandas"][1]
        texts = " | ".join(got["pandas"][1])
        assert "1 rows with count 0" in texts and "no rows are left out: ['C']" in texts
        assert "differ only in case" in texts
        assert got["pandas"][0].cohorts == ("a ", "A")
        if "created" in kwargs:
            assert "1 conversions are dated after" in texts


# ------------------------------------------------------------------------ binning


def _hand_events():
    day = pd.Timestamp("2024-01-01")
    c = [0, 0, 0, 0, 10, 15, 0]             # creation day
    v = [3, 9, 16, None, 13, 17, 7]         # conversion day
    d = pd.to_timedelta
    return pd.DataFrame({
        "created": [day + d(x, "D") for x in c],
        "converted": [day + d(x, "D") if x is not None else pd.NaT for x in v],
    })


def test_binning_hand_computed():
    """Observed on day 20, weekly grid (w = 7 days).

    unit  age  conversion  a_eff = floor(age/7)*7  becomes
    0     20   3           14                     converted in [0, 7)
    1     20   9           14                     converted in [7, 14)
    2     20   16          14                     16 is in the last, incomplete bin: censored at 14
    3     20   -           14                     censored at 14
    4     10   3           7                      converted in [0, 7)
    5     5    2           0                      censored at 0 (no complete bin yet)
    6     20   7           14                     on a grid point: in [7, 14)
    """
    data = bc.prepare(_hand_events(), created="created", converted="converted",
                      observed_until="2024-01-21", bin_width=7)
    f = data.to_frame()
    got = sorted(zip(f["lower"], f["duration"], f["converted"], f["count"], strict=True))
    assert got == [(0.0, 0.0, False, 1), (0.0, 7.0, True, 2), (7.0, 14.0, True, 2),
                   (14.0, 14.0, False, 2)]
    assert data.followup[["age", "count"]].values.tolist() == [[0.0, 1], [7.0, 1], [14.0, 5]]
    assert data.meta["bin_width"] == 7.0
    # how the likelihood reads them: first bin (0, 7], interval (7, 14], censored at 14, at 0
    rows = rows_from_data(data, time_scale=1.0)
    keys = zip(f["lower"], f["converted"], strict=True)
    kinds = dict(zip(keys, rows.kind.tolist(), strict=True))
    assert kinds == {(0.0, False): 4, (0.0, True): 1, (7.0, True): 2, (14.0, False): 3}
    # unbinned: exact conversion days, censoring at the true ages
    exact = bc.prepare(_hand_events(), created="created", converted="converted",
                       observed_until="2024-01-21")
    assert (exact.lower == exact.duration).all()
    conv = exact.converted
    assert sorted(np.repeat(exact.duration[conv], exact.count[conv]).tolist()) == [
        2.0, 3.0, 3.0, 7.0, 9.0, 16.0]


def test_binning_durations_layout_completes_the_conversion_bin():
    df = pd.DataFrame({"t": [3.0, 16.0, 16.0, 5.0, 0.0], "e": [1, 1, 0, 0, 1]})
    data = bc.prepare(df, duration="t", event="e", bin_width=7)
    f = data.to_frame()
    got = sorted(zip(f["lower"], f["duration"], f["converted"], f["count"], strict=True))
    assert got == [(0.0, 0.0, False, 1), (0.0, 7.0, True, 2), (14.0, 14.0, False, 1),
                   (14.0, 21.0, True, 1)]


def test_binned_rows_are_bounded(events, durations):
    w = 1.5
    data = bc.prepare(events, **DATES, bin_width=w)
    unbinned = bc.prepare(events, **DATES)
    k = np.floor(unbinned.followup["age"].max() / w)
    assert unbinned.n_rows > 300
    assert data.n_rows <= data.n_cohorts * (2 * k + 1)
    assert data.n_units == unbinned.n_units
    k = np.floor(durations["t"].max() / w)
    dur = bc.prepare(durations, **DURATIONS, bin_width=w)
    assert dur.n_rows <= dur.n_cohorts * (2 * k + 2)


def test_bin_width_none_is_the_unbinned_aggregation(events):
    data = bc.prepare(events, **DATES, bin_width=None)
    assert "bin_width" not in data.meta and (data.lower == data.duration).all()
    # independent computation of the same rows
    conv = events["converted"].notna()
    dur = (events["converted"].where(conv, events["observed_until"])
           - events["created"]).dt.total_seconds() / 86400
    ref = (pd.DataFrame({"cohort": events["cohort"], "duration": dur, "converted": conv})
           .value_counts().sort_index())
    f = data.to_frame().set_index(["cohort", "duration", "converted"])["count"]
    assert f.to_dict() == ref.to_dict()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesconv.IdentificationWarning")
def test_binned_fit_agrees_with_exact_fit():
    """A fit on a 1-day grid (interval-censored conversions, follow-up floored to the grid)
    gives the exact-time fit's posterior: eventual-rate means agree within Monte Carlo error
    plus a tenth of a posterior sd (what one day of lost follow-up and in-bin timing may
    cost), and the binned 94% HDI holds the exact posterior mean."""
    import arviz_stats as azs

    ev = bc.simulate(n_units=[3000, 3000], eventual_rate=[0.3, 0.5], lag_loc=5.0,
                     lag_shape=2.0, enrollment=30, followup=20, random_seed=5)
    exact_data = bc.prepare(ev, **DATES)
    binned_data = bc.prepare(ev, **DATES, bin_width=1.0)
    assert binned_data.n_rows < 2 * (2 * 50 + 1) < exact_data.n_rows
    fits = [bc.ConversionModel(d).fit(draws=1000, chains=4, random_seed=3, progressbar=False)
            for d in (exact_data, binned_data)]
    rates = [f.eventual_rate() for f in fits]
    mcse = [azs.mcse(r) for r in rates]
    diff = abs(rates[0].mean(("chain", "draw")) - rates[1].mean(("chain", "draw")))
    tol = 4 * np.sqrt(mcse[0] ** 2 + mcse[1] ** 2) + 0.1 * rates[0].std(("chain", "draw"))
    assert (diff < tol).all(), (diff.values, tol.values)
    s = fits[1].summary(ci_prob=0.94)
    mean_exact = rates[0].mean(("chain", "draw")).values
    assert ((s["rate_lower"] < mean_exact) & (mean_exact < s["rate_upper"])).all()


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "7", True])
def test_bin_width_must_be_positive_finite(events, bad):
    with pytest.raises(ValueError, match=r"bin_width must be a positive finite number .*got"):
        bc.prepare(events, **DATES, bin_width=bad)


# ------------------------------------------------------------------------ PySpark


@pytest.mark.spark
def test_spark_same_as_pandas(spark, events, durations, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # pyspark's NaT conversion
        sdf = spark.createDataFrame(events)
        sdur = spark.createDataFrame(durations)
    for bw in (None, 2.0):
        assert_same_data(bc.prepare(sdf, **DATES, bin_width=bw),
                         bc.prepare(events, **DATES, bin_width=bw))
    assert_same_data(bc.prepare(sdur, **DURATIONS, bin_width=2.0),
                     bc.prepare(durations, **DURATIONS, bin_width=2.0))
    # naive TIMESTAMP_NTZ columns, as Spark reads them from Parquet, and a scalar date
    path = tmp_path / "ev.parquet"
    events.to_parquet(path, coerce_timestamps="us")
    kw = dict(DATES, observed_until="2024-02-05", bin_width=1.0)
    assert_same_data(bc.prepare(spark.read.parquet(str(path)), **kw), bc.prepare(events, **kw))
    # covariates: the cell table aggregated in Spark
    cov = _with_covariates(events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scov = spark.createDataFrame(cov)
    assert_same_cells(bc.prepare(scov, **DATES, covariates=COVARIATES, bin_width=2.0),
                      bc.prepare(cov, **DATES, covariates=COVARIATES, bin_width=2.0))
    bad = spark.createDataFrame(pd.DataFrame({"t": [1.0, -2.0], "e": [1, 0]}))
    with pytest.raises(ValueError, match=r"negative duration in column 't' in 1 row: "
                                         r"\(t=-2.0\)"):
        bc.prepare(bad, duration="t", event="e")


def _with_covariates(events):
    """The events with a text factor, an integer period and a numeric covariate."""
    rng = np.random.default_rng(4)
    return events.assign(platform=rng.choice(["ios", "android", "web"], len(events)),
                         week=(events["created"] - events["created"].min()).dt.days // 7,
                         score=rng.choice([0.5, 1.25, 2.0], len(events)))


COVARIATES = ["platform", "week", "score"]


def assert_same_cells(a: bc.ConversionData, b: bc.ConversionData):
    """The same cell table (levels, order, dtypes) and the same rows' cell codes."""
    assert_same_data(a, b)
    pd.testing.assert_frame_equal(a.cells, b.cells, check_exact=True)
    np.testing.assert_array_equal(a.cell, b.cell)


@pytest.mark.parametrize("bin_width", [None, 2.0])
@pytest.mark.parametrize("engine", ["polars", "polars-lazy", "duckdb"])
def test_covariates_same_cells_as_pandas(events, engine, bin_width):
    """prepare(covariates=...) aggregates by (cell, duration, converted) in the engine and
    gives pandas' cell table."""
    ev = _with_covariates(events)
    ref = bc.prepare(ev, **DATES, covariates=COVARIATES, bin_width=bin_width)
    assert ref.n_cells > ref.n_cohorts
    got = bc.prepare(_engines(ev)[engine], **DATES, covariates=COVARIATES, bin_width=bin_width)
    assert_same_cells(got, ref)


@pytest.mark.parametrize("engine", ["polars-lazy", "duckdb"])
def test_covariate_missing_values_named_by_engines(events, engine):
    ev = _with_covariates(events)
    ev["platform"] = ev["platform"].astype(object)
    ev.loc[[3, 10], "platform"] = None
    with pytest.raises(ValueError, match=r"missing values in covariate column .platform. .* in 2 rows"):
        bc.prepare(_engines(ev)[engine], **DATES, covariates=["platform"])


# ------------------------------------------------------------------------ CLI via DuckDB


@pytest.mark.filterwarnings("ignore::bayesconv.ConvergenceWarning")
def test_cli_reads_parquet_through_duckdb(tmp_path, capsys):
    ev = bc.simulate(n_units=[300, 300], eventual_rate=[0.3, 0.5], lag_loc=5.0, lag_shape=2.0,
                     enrollment=20, followup=20, random_seed=2, resolution="h")
    ev["cohort"] = ev["cohort"].astype(str)
    path = tmp_path / "ev.parquet"
    ev.to_parquet(path)
    rel = read_events(str(path))
    assert isinstance(rel, duckdb.DuckDBPyRelation)
    ref = bc.prepare(ev, **DATES, bin_width=1.0)
    assert_same_data(bc.prepare(rel, **DATES, bin_width=1.0), ref)
    code = main(["report", str(path), "--created", "created", "--converted", "converted",
                 "--observed-until", "observed_until", "--cohort", "cohort", "--control", "A",
                 "--treatment", "B", "--bin-width", "1", "--out", str(tmp_path / "out"),
                 "--draws", "100", "--tune", "150", "--chains", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"fitting ConversionData(600 units in {ref.n_rows} rows" in out
    assert (tmp_path / "out" / "report.html").stat().st_size > 1000


def test_cli_csv_text_dates(tmp_path, capsys):
    """Empty conversion columns read as text are cast; text that is not a date is named."""
    path = tmp_path / "ev.csv"
    pd.DataFrame({"c": ["2024-01-01", "2024-01-02"], "v": [None, None],
                  "g": ["A", "B"]}).to_csv(path, index=False)
    rel = read_events(str(path), ["c", "v"])
    data = bc.prepare(rel, created="c", converted="v", observed_until="2024-01-11", cohort="g")
    assert sorted(data.duration.tolist()) == [9.0, 10.0] and not data.converted.any()
    pd.DataFrame({"c": ["2024-01-01", "2024-01-02"], "v": ["2024-01-03", "soon"],
                  "g": ["A", "B"]}).to_csv(path, index=False)
    code = main(["report", str(path), "--created", "c", "--converted", "v",
                 "--observed-until", "2024-01-11", "--cohort", "g", "--control", "A",
                 "--treatment", "B", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "values in column 'v' that are not ISO 8601 dates" in err[0] and "v='soon'" in err[0]


def test_csv_yes_no_columns_keep_their_text(tmp_path):
    """DuckDB's sniffer reads a yes/no column as BOOLEAN; the reader keeps the file's text (a
    CLI segment readout said True/False for wexp=yes/no), and true/false stays boolean."""
    path = tmp_path / "ev.csv"
    pd.DataFrame({"week": [3, 5, 52, 10], "arrest": [1, 1, 0, 1],
                  "wexp": ["no", "yes", "yes", "no"],
                  "flag": ["true", "false", "true", "true"]}).to_csv(path, index=False)
    df = read_events(path).df()
    assert df["wexp"].tolist() == ["no", "yes", "yes", "no"]
    assert df["flag"].tolist() == [True, False, True, True]
