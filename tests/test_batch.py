"""bc.readouts and bayesconv.spark.readouts: many experiments in one call.

Pure parts (seeds, settings, splitting, the table's dtypes) without sampling; then seeded
batches of small simulated experiments: pandas, DuckDB and Spark give identical tables, an
experiment's rows are the same alone and in a batch, bad experiments get error rows while the
others are complete, and the command line writes the table, the index and the reports.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesconv as bc
from bayesconv import batch
from bayesconv.cli import main

#: Columns that differ between two runs of the same experiment and seed (wall times).
VARYING = list(batch.TIMING_COLUMNS)
KW = dict(experiment="experiment_id", cohort="variant", control="control",
          created="created", converted="converted", observed_until="observed_until",
          horizon=7.0, draws=150, tune=150, chains=2, random_seed=11, threshold=0.01)


def _experiments(n: int = 20, seed: int = 0) -> pd.DataFrame:
    """``n`` small two-arm experiments (300-900 units per arm, second-resolution times)."""
    rng = np.random.default_rng(seed)
    frames = []
    for e in range(n):
        size = int(rng.integers(300, 900))
        rate = rng.uniform(0.15, 0.35)
        ev = bc.simulate(n_units=[size, size], eventual_rate=[rate, rate * rng.uniform(.9, 1.2)],
                         lag_loc=rng.uniform(2, 5), lag_shape=1.5, cohorts=["control", "B"],
                         enrollment=14, followup=7, resolution="s",
                         random_seed=int(rng.integers(2**31)))
        ev.attrs = {}
        frames.append(ev.assign(experiment_id=f"exp{e:02d}"))
    out = pd.concat(frames, ignore_index=True).rename(columns={"cohort": "variant"})
    out["variant"] = out["variant"].astype(str)
    return out


@pytest.fixture(scope="module")
def events():
    return _experiments()


@pytest.fixture(scope="module")
def table(events):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        return bc.readouts(events, **KW, progressbar=False)


def _stable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=VARYING).reset_index(drop=True)


# ----------------------------------------------------------------------------- no sampling


def test_experiment_seed_depends_on_the_batch_seed_and_the_id_only():
    assert batch.experiment_seed(1, "exp01") == batch.experiment_seed(1, "exp01")
    assert batch.experiment_seed(1, "exp01") != batch.experiment_seed(1, "exp02")
    assert batch.experiment_seed(1, "exp01") != batch.experiment_seed(2, "exp01")
    # the same id from pandas (numpy int), DuckDB and Spark (Python int)
    assert batch.experiment_seed(5, np.int64(7)) == batch.experiment_seed(5, 7)
    assert batch.experiment_seed(None, 7) is None
    assert 0 <= batch.experiment_seed(5, 7) < 2**63


@pytest.mark.parametrize("kw, match", [
    (dict(time_unit="days"), "time_unit='days'"),
    (dict(lag="gama"), "gama"),
    (dict(horizon=-1.0), "horizon must be a positive number"),
    (dict(treatment="control"), "also listed as a treatment"),
    (dict(treatment=[]), "names no arm"),
    (dict(draws=0), "draws must be a whole number"),
    (dict(cohort="experiment_id"), "also the experiment column"),
    (dict(threshold=-0.1), "threshold"),
    (dict(experiment="nope"), r"experiment='nope' is not a column.*available columns"),
    (dict(converted="convertd", covariates=["x"]),
     r"converted='convertd', covariates='x' are not columns of the events table"),
])
def test_arguments_that_fail_every_experiment_raise_at_once(events, kw, match):
    with pytest.raises(ValueError, match=match):
        bc.readouts(events, **{**KW, **kw}, progressbar=False)


def test_spark_readouts_takes_the_options_of_readouts():
    import inspect

    pytest.importorskip("pyspark")
    from bayesconv import spark

    ours = inspect.signature(bc.readouts).parameters
    theirs = inspect.signature(spark.readouts).parameters
    assert list(theirs) == ["sdf", *[k for k in ours if k not in ("events", "progressbar",
                                                                  "callback")]]
    assert all(theirs[k].default == ours[k].default for k in list(theirs)[1:])
    with pytest.raises(TypeError, match="unexpected keyword argument 'draw'; the options"):
        batch.settings(experiment="e", cohort="v", control="a", draw=3)


def test_split_names_rows_without_an_experiment_id(events):
    ev = events.head(50).copy()
    ev.loc[[3, 7], "experiment_id"] = None
    groups, missing = batch.split_experiments(ev, "experiment_id")
    assert [k for k, _ in groups] == ["exp00"]
    assert len(groups[0][1]()) == 48
    assert missing.startswith("no experiment id in column 'experiment_id' in 2 rows: row 3 (")
    assert "row 7 (" in missing


def test_split_in_duckdb_matches_pandas(events):
    duckdb = pytest.importorskip("duckdb")
    ev = events.head(3000).copy()
    ev.loc[[5], "experiment_id"] = None
    rel = duckdb.from_df(ev)
    p_groups, p_missing = batch.split_experiments(ev, "experiment_id")
    d_groups, d_missing = batch.split_experiments(rel, "experiment_id")
    assert [k for k, _ in p_groups] == [k for k, _ in d_groups]
    assert [len(f()) for _, f in p_groups] == [len(f().df()) for _, f in d_groups]
    assert p_missing.startswith("no experiment id") and d_missing.startswith(
        "no experiment id in column 'experiment_id' in 1 row: (")


def _all_bad(events: pd.DataFrame) -> pd.DataFrame:
    """Three experiments that fail without sampling: conversions before exposure in rows 130
    and 170 of the table (the second experiment's own rows 30 and 70), no control arm, and two
    rows without an id (rows 205 and 207)."""
    first = events[events["experiment_id"] == "exp00"].head(100)
    bad = events[events["experiment_id"] == "exp01"].head(100).assign(experiment_id="exp_bad")
    nocontrol = events[(events["experiment_id"] == "exp02") & (events["variant"] == "B")]
    out = pd.concat([first.assign(variant="B"), bad, nocontrol.head(10)], ignore_index=True)
    for row in (130, 170):
        out.loc[row, "converted"] = out.loc[row, "created"] - pd.Timedelta(5, "h")
    out.loc[[205, 207], "experiment_id"] = None
    return out


def test_eager_polars_errors_name_rows_by_their_number_in_the_whole_table(events):
    pl = pytest.importorskip("polars")
    ev = _all_bad(events)
    with pytest.warns(bc.DataWarning, match="3 of 3 experiments could not be read out"):
        out = bc.readouts(pl.from_pandas(ev), **KW, progressbar=False)
    errors = out.set_index("experiment_id")["error"]
    assert "in 2 rows: row 130 (" in errors.loc["exp_bad"] and "row 170 (" in errors.loc[
        "exp_bad"]
    assert "in 2 rows: row 205 (" in errors.iloc[0] and "row 207 (" in errors.iloc[0]
    with pytest.warns(bc.DataWarning):
        ref = bc.readouts(ev, **KW, progressbar=False)
    assert "in 2 rows: row 130 (" in ref.set_index("experiment_id").loc["exp_bad", "error"]


@pytest.mark.spark
def test_spark_numeric_ids_with_nulls_from_parquet(spark, events, tmp_path):
    """Spark hands a null id of a numeric column to the worker as NaN, not None: those rows
    get the missing-id error row, not a fit of their own."""
    from bayesconv.spark import collect, readouts

    ev = _all_bad(events)
    ids = {"exp00": 1, "exp_bad": 2, "exp02": 3}
    ev["experiment_id"] = pd.array([ids.get(v) for v in ev["experiment_id"]], dtype="Int64")
    ev.to_parquet(tmp_path / "events.parquet", coerce_timestamps="us")
    sdf = spark.read.parquet(str(tmp_path / "events.parquet"))
    with pytest.warns(bc.DataWarning, match="3 of 3 experiments could not be read out"):
        out = collect(readouts(sdf, **KW), "experiment_id")
    assert len(out) == 4 and out["error"].notna().all()
    missing = out[out["experiment_id"].isna()]
    assert len(missing) == 1
    assert missing["error"].iloc[0].startswith(
        "no experiment id in column 'experiment_id' in 2 rows")
    assert out.set_index("experiment_id")["error"].loc[2].startswith(
        "conversion before creation")
    # the ids stay integers (toPandas made them floats next to the null id), as in pandas
    assert out["experiment_id"].tolist() == [None, 1, 2, 3]
    with pytest.warns(bc.DataWarning, match=r"3 of 3 experiments could not be read out "
                                            r"\(1, 2, 3\)"):
        ref = bc.readouts(ev, **KW, progressbar=False)
    assert ref["experiment_id"].tolist() == [None, 1, 2, 3]
    # without row numbers, DuckDB lists the rows without an id as Spark does: by value
    duckdb = pytest.importorskip("duckdb")
    with pytest.warns(bc.DataWarning):
        lazy = bc.readouts(duckdb.from_df(ev), **KW, progressbar=False)
    assert lazy["error"].iloc[0] == missing["error"].iloc[0]


def test_categorical_arms_are_plain_labels_per_experiment(events):
    """A categorical arm column whose categories span all experiments gives each experiment
    its own arms (no warning about other experiments' arms) in label order."""
    ev = events[events["experiment_id"] == "exp00"].assign(variant=lambda d: pd.Categorical(
        d["variant"], categories=["control", "B", "C"]))
    groups, missing = batch.split_experiments(ev, "experiment_id", "variant")
    assert missing is None
    (_, rows), = groups
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = bc.prepare(rows(), created="created", converted="converted",
                          observed_until="observed_until", cohort="variant")
    assert data.cohorts == ("B", "control")


def test_index_leads_with_one_metric_per_experiment(tmp_path):
    """Arm C's eventual rate is weakly identified: every line of that experiment leads with
    the rate by the horizon (as Readout.lead), with its unit; its warnings appear once."""
    from bayesconv.report import write_index

    rows = []
    for t, weak in [("B", False), ("C", True)]:
        for m in ("eventual", "by_horizon", "median_lag"):
            rows.append(dict(e="x1", treatment=t, metric=m, diff_mean=0.01, diff_lower=-0.002,
                             diff_upper=0.02, prob_better=0.9, horizon=1.0, time_unit="Y",
                             weakly_identified=weak, n_units=5000, n_control=2500,
                             n_treatment=2500, max_r_hat=1.0,
                             divergences=0, warnings="arm C's eventual rate is weak"))
    page = write_index(batch.conform(pd.DataFrame(rows), "e"), tmp_path, experiment="e")
    text = page.read_text()
    assert text.count("+1.00 [-0.20, +2.00] pp (rate by 1 year)") == 2
    assert "(eventual rate)" not in text
    assert text.count("arm C&#x27;s eventual rate is weak") == 1
    # an arm label with surrounding whitespace is quoted, told apart from its look-alike
    rows = [dict(r, treatment="B " if r["treatment"] == "C" else "B") for r in rows]
    text = write_index(batch.conform(pd.DataFrame(rows), "e"), tmp_path, experiment="e"
                       ).read_text()
    assert "<td>&#x27;B &#x27;</td>" in text and "<td>B</td>" in text


def test_cli_readouts_refuses_a_misspelt_column(events, tmp_path, capsys):
    path = tmp_path / "events.parquet"
    events.head(2000).to_parquet(path, index=False)
    code = main(["readouts", str(path), "--experiment", "experiment_id", "--cohort", "variant",
                 "--control", "control", "--created", "created", "--converted", "convertd",
                 "--observed-until", "observed_until", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "converted='convertd' is not a column of the events table" in capsys.readouterr().err


def test_conform_gives_the_documented_dtypes():
    rows = pd.DataFrame({"e": [1, 2], "treatment": pd.Series([1, None], dtype=object),
                         "divergences": [3, None],
                         "lift_defined": [True, None], "prob_better": [0.5, None]})
    out = batch.conform(rows, "e")
    assert list(out.columns) == ["e", *batch.COLUMNS]
    assert out["treatment"].tolist() == ["1", None]
    assert str(out["divergences"].dtype) == "Int64" and out["divergences"].isna().tolist() == [
        False, True]
    assert str(out["lift_defined"].dtype) == "boolean"
    assert out["prob_better"].dtype == np.float64 and np.isnan(out["prob_better"].iloc[1])


# ----------------------------------------------------------------------------- seeded batches


def test_table_has_a_row_per_experiment_treatment_and_metric(table, events):
    assert list(table.columns[:3]) == ["experiment_id", "treatment", "metric"]
    assert table["experiment_id"].tolist() == sorted(events["experiment_id"].unique()
                                                    .tolist() * 3)
    assert table["error"].isna().all()
    assert set(table["metric"]) == {"eventual", "by_horizon", "median_lag"}
    assert (table["treatment"] == "B").all() and (table["control"] == "control").all()
    units = events.groupby("experiment_id").size()
    assert (table["n_units"].to_numpy() == units.loc[table["experiment_id"]].to_numpy()).all()
    assert (table["n_control"] + table["n_treatment"] == table["n_units"]).all()
    rates = table[table["metric"] != "median_lag"]
    assert rates["decision"].isin(["ship B", "keep control", "keep waiting"]).all()
    assert table.loc[table["metric"] == "median_lag", "decision"].isna().all()
    assert (table["horizon"] == 7.0).all()
    assert (table["max_r_hat"] > 0.99).all() and (table["min_ess"] > 0).all()
    assert table["prob_better"].between(0, 1).all()


def test_an_experiment_alone_gives_the_same_rows_as_in_the_batch(table, events):
    one = events[events["experiment_id"] == "exp07"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        alone = bc.readouts(one, **KW, progressbar=False)
    pd.testing.assert_frame_equal(_stable(alone),
                                  _stable(table[table["experiment_id"] == "exp07"]))


def test_duckdb_gives_the_same_table_as_pandas(table, events):
    duckdb = pytest.importorskip("duckdb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        out = bc.readouts(duckdb.from_df(events), **KW, progressbar=False)
    pd.testing.assert_frame_equal(_stable(out), _stable(table))


def test_polars_gives_the_same_rows_as_pandas(table, events):
    """Five of the experiments, lazily: their rows are those of the pandas batch of 20 (the
    seeds depend on the id alone)."""
    pl = pytest.importorskip("polars")
    some = ["exp01", "exp05", "exp09", "exp13", "exp17"]
    lazy = pl.from_pandas(events[events["experiment_id"].isin(some)]).lazy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        out = bc.readouts(lazy, **KW, progressbar=False)
    pd.testing.assert_frame_equal(_stable(out),
                                  _stable(table[table["experiment_id"].isin(some)]))


@pytest.mark.spark
def test_spark_gives_the_same_table_as_pandas(spark, table, events):
    from bayesconv.spark import collect, output_schema, readouts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # pyspark's NaT conversion
        sdf = spark.createDataFrame(events)
    result = readouts(sdf, **KW)
    assert result.schema == output_schema(sdf.schema["experiment_id"].dataType,
                                          "experiment_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        out = collect(result, "experiment_id")
    pd.testing.assert_frame_equal(_stable(out), _stable(table))


@pytest.mark.spark
def test_spark_with_one_observation_date_for_all_rows(spark, table, events):
    """observed_until as a date, not a column (Spark timestamps are timezone-aware: the date
    has an offset, and the pandas events are in UTC too)."""
    from bayesconv.spark import collect, readouts

    some = events[events["experiment_id"].isin(["exp02", "exp03"])]
    end = some["observed_until"].max()
    aware = some.drop(columns="observed_until").assign(
        created=lambda d: d["created"].dt.tz_localize("UTC"),
        converted=lambda d: d["converted"].dt.tz_localize("UTC"))
    kw = {**KW, "observed_until": end.isoformat() + "Z"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sdf = spark.createDataFrame(aware)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        out = collect(readouts(sdf, **kw), "experiment_id")
        ref = bc.readouts(aware, **kw, progressbar=False)
    pd.testing.assert_frame_equal(_stable(out), _stable(ref))
    # every unit of these experiments has the same observation date: the rows of the batch
    pd.testing.assert_frame_equal(
        _stable(out), _stable(table[table["experiment_id"].isin(["exp02", "exp03"])]))


@pytest.mark.spark
def test_spark_reports_bad_experiments_in_their_rows(spark, events):
    from bayesconv.spark import collect, readouts

    ev = _with_bad_experiments(events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sdf = spark.createDataFrame(ev)
    with pytest.warns(bc.DataWarning, match="2 of 4 experiments could not be read out"):
        out = collect(readouts(sdf, **KW), "experiment_id")
    errors = out.set_index("experiment_id", drop=False)["error"]
    assert errors.loc["exp_bad"].startswith("conversion before creation")
    assert "control arm 'control' is not in column 'variant'" in errors.loc["exp_nocontrol"]
    assert out["experiment_id"].isna().sum() == 1
    assert "no experiment id in column 'experiment_id' in 1 row" in \
        out.loc[out["experiment_id"].isna(), "error"].iloc[0]
    assert out.loc[out["experiment_id"].isin(["exp00", "exp01"]), "error"].isna().all()


def _with_bad_experiments(events: pd.DataFrame) -> pd.DataFrame:
    """Two good experiments, one with conversions before exposure, one without its control
    arm, and one row without an experiment id."""
    good = events[events["experiment_id"].isin(["exp00", "exp01"])]
    bad = events[events["experiment_id"] == "exp02"].assign(experiment_id="exp_bad")
    early = bad.index.isin(bad.index[bad["converted"].notna()][:2])
    bad["converted"] = bad["converted"].where(~early, bad["created"] - pd.Timedelta(5, "h"))
    nocontrol = events[(events["experiment_id"] == "exp03") & (events["variant"] == "B")]
    nocontrol = nocontrol.assign(experiment_id="exp_nocontrol")
    out = pd.concat([good, bad, nocontrol], ignore_index=True)
    out.loc[10, "experiment_id"] = None
    return out


def test_bad_experiments_get_error_rows_and_the_others_are_complete(table, events):
    ev = _with_bad_experiments(events)
    with pytest.warns(bc.DataWarning, match=r"2 of 4 experiments could not be read out "
                                            r"\('exp_bad', 'exp_nocontrol'\); rows without an "
                                            r"id in column 'experiment_id' were not read out"):
        out = bc.readouts(ev, **KW, progressbar=False)
    errors = out.drop_duplicates("experiment_id").set_index("experiment_id")["error"]
    assert errors.index.tolist()[0] is None
    assert errors.iloc[0].startswith("no experiment id in column 'experiment_id' in 1 row: "
                                     "row 10 (variant='control', created=Timestamp(")
    assert errors.loc["exp_bad"].startswith(
        "conversion before creation ('converted' earlier than 'created') in 2 rows: row ")
    assert errors.loc["exp_nocontrol"] == ("the control arm 'control' is not in column "
                                           "'variant' of this experiment; its arms: ['B']")
    good = out[out["experiment_id"].isin(["exp00", "exp01"])]
    # the good experiments' rows are those of the batch without the bad ones (row 10 was an
    # exp00 unit: exp00 lost it, so only exp01 is compared row for row)
    assert good["error"].isna().all() and good["prob_better"].notna().all()
    pd.testing.assert_frame_equal(
        _stable(good[good["experiment_id"] == "exp01"]),
        _stable(table[table["experiment_id"] == "exp01"]))
    bad = out[out["error"].notna()]
    assert bad["metric"].isna().all() and bad["prob_better"].isna().all()


def test_every_other_arm_against_the_control_and_arms_left_out(events):
    ev = events[events["experiment_id"].isin(["exp00", "exp01"])].copy()
    third = ev[ev["variant"] == "B"].assign(variant="C")
    ev = pd.concat([ev, third], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        every = bc.readouts(ev, **KW, progressbar=False)
        only_c = bc.readouts(ev, **{**KW, "treatment": "C"}, progressbar=False)
    assert sorted(set(every["treatment"])) == ["B", "C"]
    assert len(every) == 2 * 2 * 3
    assert (only_c["treatment"] == "C").all()
    assert only_c["warnings"].str.contains(r"left out \d[\d,]* of [\d,]+ units: arms \['B'\] "
                                           "are not compared").all()


def test_callback_sees_each_fit(events):
    seen = []
    ev = events[events["experiment_id"].isin(["exp04", "exp05"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        bc.readouts(ev, **KW, progressbar=False,
                    callback=lambda eid, result, ro: seen.append((eid, ro.control)))
    assert seen == [("exp04", "control"), ("exp05", "control")]


def test_cli_readouts_writes_the_table_the_index_and_a_report_each(events, tmp_path):
    ev = _with_bad_experiments(events)
    ev = ev[ev["experiment_id"] != "exp01"]
    path = tmp_path / "events.parquet"
    ev.to_parquet(path, index=False)
    out = tmp_path / "out"
    code = main(["readouts", str(path), "--experiment", "experiment_id", "--cohort", "variant",
                 "--control", "control", "--created", "created", "--converted", "converted",
                 "--observed-until", "observed_until", "--horizon", "7", "--draws", "150",
                 "--tune", "150", "--chains", "2", "--seed", "11", "--threshold", "0.01",
                 "--no-progress", "--out", str(out), "--format", "parquet"])
    assert code == 1        # some experiments could not be read out; all was written
    tab = pd.read_parquet(out / "readouts.parquet")
    assert set(tab["experiment_id"].dropna()) == {"exp00", "exp_bad", "exp_nocontrol"}
    assert (tab["experiment_id"] == "exp00").sum() == 3
    assert "row " in tab.loc[tab["experiment_id"] == "exp_bad", "error"].iloc[0]
    page = (out / "index.html").read_text()
    assert "<a href='experiments/exp00/report.html'>exp00</a>" in page
    assert "conversion before creation" in page and "is not in column" in page
    assert "3 experiments, 2 of them could not be read out" in page
    assert "Settings: control control, lag gamma, horizon 7.0, threshold 0.01, seed 11" in page
    assert "rows without an experiment id were not read out" in page
    assert (out / "experiments" / "exp00" / "report.html").exists()
    assert not (out / "experiments" / "exp_bad").exists()
