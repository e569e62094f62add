"""prepare(): durations, aggregation, metadata, and a clear error for every kind of bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesconv as bc


def _events(**over):
    base = {
        "created": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-03", "2024-01-05"]),
        "converted": pd.to_datetime(["2024-01-02", None, "2024-01-03", "2024-01-08"]),
        "arm": ["A", "A", "B", "B"],
    }
    base.update(over)
    return pd.DataFrame(base, index=[10, 11, 12, 13])


def _prep(df, **kw):
    args = {"created": "created", "converted": "converted", "observed_until": "2024-01-10",
            "cohort": "arm"}
    args.update(kw)
    return bc.prepare(df, **args)


# ------------------------------------------------------------------------- what it computes


def test_durations_in_days_and_censoring():
    data = _prep(_events())
    f = data.to_frame().sort_values(["cohort", "duration"]).reset_index(drop=True)
    # A: converted after 1 day; censored at 9 days. B: converted same day (0) and after 3 days.
    assert f["cohort"].tolist() == ["A", "A", "B", "B"]
    assert f["duration"].tolist() == [1.0, 9.0, 0.0, 3.0]
    assert f["converted"].tolist() == [True, False, True, True]
    assert data.cohorts == ("A", "B")
    assert data.observed_until == pd.Timestamp("2024-01-10")
    assert data.time_unit == "D"


@pytest.mark.parametrize("unit,factor", [("s", 86400.0), ("min", 1440.0), ("h", 24.0),
                                          ("D", 1.0), ("W", 1 / 7), ("Y", 1 / 365.25)])
def test_time_units(unit, factor):
    data = _prep(_events(), time_unit=unit)
    np.testing.assert_allclose(np.sort(data.duration), np.array([0.0, 1.0, 3.0, 9.0]) * factor)


def test_lengths_of_time_in_words_are_singular_for_one():
    from bayesconv.data.units import amount
    from bayesconv.readout.metrics import METRICS

    assert [amount(x, u) for x, u in [(1, "Y"), (1.0, "D"), (7, "D"), (1.5, "W"), (2, "x")]] \
        == ["1 year", "1 day", "7 days", "1.5 weeks", "2 x"]
    assert METRICS["by_horizon"].title(1, "Y") == "rate by 1 year"


def test_unknown_time_unit():
    with pytest.raises(ValueError, match="time_unit='M' is not one of"):
        _prep(_events(), time_unit="M")


def test_identical_rows_merge_with_counts():
    df = pd.concat([_events()] * 3, ignore_index=True)
    data = _prep(df)
    assert data.n_rows == 4 and data.n_units == 12
    assert sorted(data.count.tolist()) == [3, 3, 3, 3]


def test_count_column_equals_repeated_rows():
    df = _events(n=[2, 1, 5, 1])
    a = _prep(df, count="n")
    b = _prep(df.loc[df.index.repeat(df["n"])])
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


def test_zero_count_rows_left_out_with_warning():
    with pytest.warns(bc.DataWarning, match="1 rows with count 0"):
        data = _prep(_events(n=[1, 0, 1, 1]), count="n")
    assert data.n_units == 3


def test_timezone_aware_consistent():
    df = _events(created=_events()["created"].dt.tz_localize("Europe/Paris"),
                 converted=_events()["converted"].dt.tz_localize("Europe/Paris"))
    data = _prep(df, observed_until=pd.Timestamp("2024-01-10", tz="Europe/Paris"))
    assert sorted(data.duration.tolist()) == [0.0, 1.0, 3.0, 9.0]


def test_observed_until_column_and_iso_strings():
    df = pd.DataFrame({"c": ["2024-01-01", "2024-01-02"], "v": ["2024-01-03", None],
                       "o": ["2024-01-05", "2024-01-06"]})
    data = bc.prepare(df, created="c", converted="v", observed_until="o")
    assert sorted(data.duration.tolist()) == [2.0, 4.0]
    assert data.cohorts == ("all",)


def test_numeric_years_like_marriage():
    df = pd.DataFrame({"born": [1990, 1980, 2000], "married": [2015, np.nan, np.nan]})
    data = bc.prepare(df, created="born", converted="married", observed_until=2016,
                      time_unit="Y")
    f = data.to_frame().sort_values("duration")
    assert f["duration"].tolist() == [16.0, 25.0, 36.0]
    assert f["converted"].tolist() == [False, True, False]


def test_duration_zero_conversions_kept():
    data = _prep(_events())
    assert ((data.duration == 0) & data.converted).sum() == 1


def test_conversion_after_observation_is_censored_with_warning():
    df = _events(converted=pd.to_datetime(["2024-01-02", None, "2024-01-03", "2024-02-01"]))
    with pytest.warns(bc.DataWarning, match=r"1 conversions are dated after.*row 13"):
        data = _prep(df)
    f = data.to_frame()
    row = f[(f["cohort"] == "B") & ~f["converted"]]
    assert row["duration"].tolist() == [5.0]  # censored at the observation date


def test_empty_categorical_cohort_left_out_with_warning():
    df = _events(arm=pd.Categorical(["A", "A", "B", "B"], categories=["A", "B", "C"]))
    with pytest.warns(bc.DataWarning, match=r"no rows are left out: \['C'\]"):
        data = _prep(df)
    assert data.cohorts == ("A", "B")


def test_survival_layout():
    df = pd.DataFrame({"week": [3, 52, 10], "arrest": [True, False, True], "fin": [0, 1, 1]})
    data = bc.prepare(df, duration="week", event="arrest", cohort="fin", time_unit="W")
    assert data.cohorts == (0, 1) and data.n_units == 3 and data.converted.sum() == 2


def test_data_is_immutable():
    data = _prep(_events())
    with pytest.raises(ValueError):
        data.duration[0] = 5.0


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make,kwargs,pattern",
    [
        # conversion before creation: names row 12 and its values
        (lambda: _events(converted=pd.to_datetime(["2024-01-02", None, "2024-01-01",
                                                   "2024-01-08"])),
         {}, r"conversion before creation.*in 1 row: row 12 \(created=Timestamp"),
        # observation date before creation
        (lambda: _events(created=pd.to_datetime(["2024-01-01", "2024-01-20", "2024-01-03",
                                                 "2024-01-05"]),
                         converted=pd.to_datetime(["2024-01-02", None, "2024-01-03",
                                                   "2024-01-08"])),
         {}, r"observation date before creation.*in 1 row: row 11"),
        # missing creation time
        (lambda: _events(created=pd.to_datetime(["2024-01-01", None, "2024-01-03",
                                                 "2024-01-05"])),
         {}, r"missing creation time in column 'created' in 1 row: row 11"),
        # missing cohort label
        (lambda: _events(arm=["A", None, "B", np.nan]), {},
         r"missing cohort label in column 'arm' in 2 rows: row 11.*row 13"),
        # negative and non-integer counts
        (lambda: _events(n=[1, -2, 1, 1]), {"count": "n"},
         r"negative count in column 'n' in 1 row: row 11 \(n=-2\)"),
        (lambda: _events(n=[1, 1.5, 1, 1]), {"count": "n"},
         r"non-integer count in column 'n' in 1 row: row 11 \(n=1\.5\)"),
        # empty table
        (lambda: _events().iloc[:0], {}, r"the events table is empty"),
        # a column that does not exist: lists what is there
        (lambda: _events(), {"cohort": "variant"},
         r"cohort='variant' is not a column.*available columns: \['created', 'converted', "
         r"'arm'\]"),
        # unparseable date string
        (lambda: _events(converted=["2024-01-02", None, "yesterday", "2024-01-08"]), {},
         r"not ISO 8601 dates.*in 1 row: row 12 \(converted='yesterday'\)"),
        # duplicated unit ids
        (lambda: _events(uid=["u1", "u2", "u2", "u3"]), {"unit_id": "uid"},
         r"duplicated unit id in column 'uid'.*in 2 rows: row 11.*row 12"),
    ],
)
def test_errors_name_offending_rows(make, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _prep(make(), **kwargs)


def test_timezone_mixed_across_columns():
    df = _events(created=_events()["created"].dt.tz_localize("UTC"))
    with pytest.raises(ValueError, match=r"timezone-aware and naive.*'created' is timezone-aware"
                                         r".*'converted' is naive"):
        _prep(df, observed_until=pd.Timestamp("2024-01-10", tz="UTC"))


def test_timezone_mixed_within_column():
    df = _events(created=[pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-01"),
                          pd.Timestamp("2024-01-03", tz="UTC"), pd.Timestamp("2024-01-05",
                                                                              tz="UTC")])
    with pytest.raises(ValueError, match=r"timezone-naive timestamps in column 'created' mixed with 3.*in 1 row: row 11"):
        _prep(df)


def test_timezone_mixed_with_scalar_observation():
    df = _events(created=_events()["created"].dt.tz_localize("UTC"),
                 converted=_events()["converted"].dt.tz_localize("UTC"))
    with pytest.raises(ValueError, match="observed_until='2024-01-10' is timezone-naive"):
        _prep(df)


def test_nan_and_infinite_numeric_times():
    df = pd.DataFrame({"born": [1990, np.inf, 2000], "married": [2015, np.nan, np.nan]})
    with pytest.raises(ValueError, match=r"infinite values in column 'born' in 1 row: row 1 "):
        bc.prepare(df, created="born", converted="married", observed_until=2016)
    df = pd.DataFrame({"born": [1990, np.nan, 2000], "married": [2015, np.nan, np.nan]})
    with pytest.raises(ValueError, match=r"missing creation time.*in 1 row: row 1 "):
        bc.prepare(df, created="born", converted="married", observed_until=2016)


def test_event_indicator_must_be_binary():
    df = pd.DataFrame({"t": [1, 2], "e": [1, 2]})
    with pytest.raises(ValueError, match=r"event indicator.*in 1 row: row 1 \(e=2\)"):
        bc.prepare(df, duration="t", event="e")


def test_layouts_are_exclusive_and_complete():
    with pytest.raises(ValueError, match="not both"):
        bc.prepare(_events(), created="created", converted="converted",
                   observed_until="2024-01-10", duration="d", event="e")
    with pytest.raises(ValueError, match="are all required"):
        bc.prepare(_events(), created="created", converted="converted")


def test_many_bad_rows_are_counted_and_truncated():
    n = 12
    df = pd.DataFrame({"c": pd.to_datetime(["2024-01-05"] * n),
                       "v": pd.to_datetime(["2024-01-01"] * n)})
    with pytest.raises(ValueError, match=r"conversion before creation.*in 12 rows: .*and 7 more"):
        bc.prepare(df, created="c", converted="v", observed_until="2024-02-01")


# ------------------------------------------------------------------ labels and units that look wrong


@pytest.mark.parametrize("engine", ["pandas", "polars"])
def test_labels_differing_only_in_case_or_whitespace_are_flagged(engine):
    # "IDV " (trailing space) became a silent third cohort beside "IDV"
    df = _events(arm=["IDV", "IDV ", "ctrl", "IDV"])
    if engine == "polars":
        import polars as pl

        df = pl.from_pandas(df)
    with pytest.warns(bc.DataWarning, match=r"differ only in case or surrounding whitespace "
                                            r"are separate cohorts: 'IDV' \(2 units\) and "
                                            r"'IDV ' \(1 units\)"):
        data = _prep(df)
    assert len(data.cohorts) == 3  # kept as they are, but never silently
    assert bc.data.similar_labels(["B", "b", "B ", "C"]) == [("B", "b", "B ")]


def test_implausible_durations_for_the_time_unit_warn():
    # day counts declared as years: 5,215 "years" of follow-up
    df = pd.DataFrame({"t": [30.0, 400.0, 5215.0, 12.0], "e": [1, 0, 0, 1]})
    with pytest.warns(bc.DataWarning, match=r"durations from column 't' run from 12 to 5,215 Y, "
                                            r"more than 150 years: implausible for "
                                            r"time_unit='Y'"):
        bc.prepare(df, duration="t", event="e", time_unit="Y")
    # numeric dates in years given as seconds: everything within one second
    num = pd.DataFrame({"c": [2000.1, 2000.2], "v": [2000.4, None]})
    with pytest.warns(bc.DataWarning, match=r"columns 'c', 'v' .* all of them under one second"):
        bc.prepare(num, created="c", converted="v", observed_until=2000.9, time_unit="s")
    # plausible durations say nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", bc.DataWarning)
        bc.prepare(df, duration="t", event="e", time_unit="D")


def test_text_with_mixed_utc_offsets_is_read_in_utc():
    # -05:00 and Z in one column: all aware, converted to UTC (pandas alone would keep an
    # object column, which passed as naive); a conversion 30 minutes before creation is caught
    df = pd.DataFrame({"c": ["2024-01-01T20:00:00-05:00", "2024-01-01T00:00:00Z"],
                       "v": ["2024-01-02T00:30:00Z", None]}, index=[5, 6])
    with pytest.raises(ValueError, match=r"conversion before creation.*in 1 row: row 5"):
        bc.prepare(df, created="c", converted="v", observed_until="2024-01-05T00:00:00Z")
    ok = df.assign(v=["2024-01-02T03:00:00Z", None])
    data = bc.prepare(ok, created="c", converted="v", observed_until="2024-01-05T00:00:00Z",
                      time_unit="h")
    assert sorted(data.duration.tolist()) == [2.0, 96.0]


def test_unit_followup_of_converted_units_is_the_cohorts_not_the_cells():
    # Duration/event data with a covariate: cell (A, x=1) holds one unit, converted at 3.
    # Its follow-up is unknown; taking the cell's longest duration (3) would condition on
    # the outcome. The cohort A was followed to 10 (its censored unit), so 10 it is.
    df = pd.DataFrame({"t": [3.0, 10.0, 4.0, 8.0, 2.0], "e": [1, 0, 1, 0, 1],
                       "arm": ["A", "A", "B", "B", "B"], "x": [1, 2, 1, 1, 2]})
    data = bc.prepare(df, duration="t", event="e", cohort="arm", covariates=["x"])
    fu = data.unit_followup().merge(data.cells.reset_index(drop=True).rename_axis("cell")
                                    .reset_index(), on="cell")
    got = {(r.arm, int(r.x), float(r.age)): (int(r.units), int(r.converted))
           for r in fu.itertuples()}
    assert got == {("A", 1, 10.0): (1, 1), ("A", 2, 10.0): (1, 0),
                   ("B", 1, 8.0): (2, 1), ("B", 2, 8.0): (1, 1)}
    np.testing.assert_array_equal(np.sort(data.longest_followup()), [8.0, 8.0, 10.0, 10.0])


def test_unit_followup_of_the_date_layout_counts_every_unit_at_its_age():
    df = pd.DataFrame({"c": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-05"]),
                       "v": pd.to_datetime(["2024-01-03", None, "2024-01-06"])})
    data = bc.prepare(df, created="c", converted="v", observed_until="2024-01-11")
    fu = data.unit_followup()
    assert fu[["age", "units", "converted"]].to_numpy().tolist() == [[6.0, 1, 1], [10.0, 2, 1]]


def test_every_missing_covariate_is_named():
    df = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 0], "age": [30, 40]})
    with pytest.raises(ValueError, match=r"covariates= names \['agee', 'priox'\], which are not "
                                         r"columns of the events table"):
        bc.prepare(df, duration="t", event="e", covariates=["agee", "priox", "age"])


# ------------------------------------------------------------------------- time resolution

def _sim(resolution, **kw):
    return bc.simulate(n_units=400, eventual_rate=0.5, lag_loc=6.0, lag_shape=0.8,
                       enrollment=20, followup=30, resolution=resolution, random_seed=3, **kw)


def _prep_sim(df, **kw):
    return bc.prepare(df, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort", **kw)


@pytest.mark.parametrize("time_unit, width", [("D", 1.0), ("h", 24.0), ("W", 1 / 7)])
def test_day_floored_timestamps_are_detected_in_any_time_unit(time_unit, width):
    # the default ("auto") detects the resolution, states it and reads the times as
    # interval-censored within it
    data = _prep_sim(_sim("D"), time_unit=time_unit)
    assert data.meta["resolution"] == pytest.approx(width)
    assert data.meta["resolution_read"] == "interval"
    assert "times recorded to 1 day, read as interval-censored" in repr(data)
    # "detect" detects and states it, and reads the times as exact
    detected = _prep_sim(_sim("D"), time_unit=time_unit, resolution="detect")
    assert detected.meta["resolution"] == pytest.approx(width)
    assert detected.meta["resolution_read"] == "exact"
    assert ("times recorded to 1 day, read as exact (resolution='detect'; the default 'auto' "
            "reads them as interval-censored)") in repr(detected)
    # the rows keep the recorded durations: whole days
    k = data.duration / width
    np.testing.assert_allclose(k, np.rint(k))


def test_hour_floored_and_exact_timestamps():
    data = _prep_sim(_sim("h"))
    assert data.meta["resolution"] == pytest.approx(1 / 24)
    assert "times recorded to 1 hour" in repr(data)
    exact = _prep_sim(_sim(None))
    assert "resolution" not in exact.meta and "exact times" in repr(exact)


def test_a_negligible_resolution_is_read_as_exact():
    # seconds on lags of days: recorded, but smearing by a second cannot move an estimate
    for resolution in ("auto", "detect"):     # the default does not offer 'auto' then
        data = _prep_sim(_sim("s"), resolution=resolution)
        assert data.meta["resolution"] == pytest.approx(1 / 86400)
        assert data.meta["resolution_read"] == "negligible"
        assert "times recorded to 1 second, read as exact (negligible))" in repr(data)


def test_integer_durations_and_numeric_times_have_a_resolution_of_one_unit():
    df = pd.DataFrame({"week": [1, 2, 3, 5, 8, 13, 20, 4], "arrest": [1, 1, 1, 1, 1, 1, 0, 0]})
    data = bc.prepare(df, duration="week", event="arrest", time_unit="W")
    assert data.meta["resolution"] == 1.0 and "times recorded to 1 week" in repr(data)
    years = pd.DataFrame({"born": [1950, 1960, 1961, 1970, 1980, 1990, 1985],
                          "married": [1975, 1990, 1984, 1992, 2003, np.nan, 2004]})
    data = bc.prepare(years, created="born", converted="married", observed_until=2016,
                      time_unit="Y")
    assert data.meta["resolution"] == 1.0 and "times recorded to 1 year" in repr(data)


def test_resolution_can_be_set_or_turned_off():
    df = _sim("D")
    assert "resolution" not in _prep_sim(df, resolution=None).meta
    assert "resolution" not in _prep_sim(df, resolution="exact").meta
    assert "exact times" in repr(_prep_sim(df, resolution=None))
    data = _prep_sim(df, resolution=0.5)
    assert data.meta == {**data.meta, "resolution": 0.5, "resolution_read": "interval"}
    binned = _prep_sim(df, bin_width=7)
    assert "resolution" not in binned.meta and "times binned to 7 days" in repr(binned)
    for bad in (0, -1.0, float("nan"), "day", True):
        with pytest.raises(ValueError, match=r"resolution must be 'auto', 'detect', 'exact'"):
            _prep_sim(df, resolution=bad)


def test_few_conversions_show_no_grid():
    # four distinct durations could be on a grid of a week by chance: not read as one
    df = pd.DataFrame({"d": [7.0, 14.0, 21.0, 28.0, 3.5], "e": [1, 1, 1, 1, 0]})
    assert "resolution" not in bc.prepare(df, duration="d", event="e").meta


def test_week_floored_timestamps():
    # weeks have no fixed anchor in pandas' floor ("W" is non-fixed): simulate floors to Monday
    ev = _sim("W")
    assert set(ev["created"].dt.dayofweek) == {0} and (ev["created"].dt.hour == 0).all()
    data = _prep_sim(ev)
    assert data.meta["resolution"] == 7.0 and "times recorded to 1 week" in repr(data)
