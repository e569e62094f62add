"""The report command end to end, and one-line errors for bad arguments or data."""

import pandas as pd
import pytest

import bayesconv as bc
from bayesconv.cli import main


@pytest.fixture(scope="module")
def events_csv(tmp_path_factory):
    ev = bc.simulate(n_units=[600, 600], eventual_rate=[0.3, 0.4], lag_loc=6.0, lag_shape=2.0,
                     cohorts=["control", "variant"], enrollment=20, followup=15, random_seed=8,
                     resolution="D")
    path = tmp_path_factory.mktemp("ev") / "events.csv"
    ev.drop(columns="observed_until").to_csv(path, index=False)
    return path


def test_report_writes_html_and_csv(events_csv, tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["report", str(events_csv), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-05", "--cohort", "cohort", "--control", "control",
                 "--treatment", "variant", "--horizon", "7", "--out", str(out),
                 "--draws", "200", "--tune", "300", "--chains", "2", "--no-progress"])
    assert code == 0
    html = (out / "report.html").read_text()
    # curves, posterior predictive KM, one difference per metric (eventual, by 7 days, median lag)
    assert html.count("<img alt='figure' src='data:image/png;base64,") == 5
    for section in ("Readout", "Conversion curves", "Nowcast", "Diagnostics"):
        assert f"<h2>{section}</h2>" in html
    # dates without a time of day: the report says how they were read (the default:
    # interval-censored within their day)
    assert "times recorded to 1 day, read as interval-censored" in html
    readout = pd.read_csv(out / "readout.csv")
    assert set(readout["metric"]) == {"eventual", "by_horizon", "median_lag"}
    assert readout["prob_better"].between(0, 1).all()
    assert "P(variant better than control)" in capsys.readouterr().out


def test_report_states_the_decision_and_the_days_left(tmp_path, capsys):
    """``--threshold``: the decision in the printed readout and the HTML; while the rule waits,
    a days-left projection (a section, a CSV); --no-projection skips it."""
    ev = bc.simulate(n_units=[600, 600], eventual_rate=[0.3, 0.31], lag_loc=6.0,
                     lag_shape=2.0, cohorts=["control", "variant"], enrollment=20, followup=5,
                     random_seed=8, resolution="D")
    path = tmp_path / "events.csv"
    ev.to_csv(path, index=False)
    base = ["report", str(path), "--created", "created", "--converted", "converted",
            "--observed-until", "observed_until", "--cohort", "cohort", "--control", "control",
            "--treatment", "variant", "--draws", "200", "--tune", "300", "--chains", "2",
            "--no-progress", "--project-sims", "10", "--project-days", "3,10"]
    out = tmp_path / "wait"
    assert main([*base, "--threshold", "1e-6", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Decision (expected-loss rule): keep waiting" in captured.out
    assert "Projection (10 simulated futures" in captured.out
    html = (out / "report.html").read_text()
    assert "<h2>When will we know?</h2>" in html and "keep waiting" in html
    table = pd.read_csv(out / "projection.csv")
    assert list(table["day"]) == [3.0, 10.0] and (table["n_sims"] == 10).all()
    # a lenient threshold decides today (both losses below it: the control is kept), so
    # there are no days left to project
    out2 = tmp_path / "keep"
    assert main([*base, "--threshold", "0.5", "--out", str(out2)]) == 0
    assert "Decision (expected-loss rule): keep control" in capsys.readouterr().out
    assert not (out2 / "projection.csv").exists()
    out3 = tmp_path / "noproj"
    assert main([*base, "--threshold", "1e-6", "--no-projection", "--out", str(out3)]) == 0
    assert not (out3 / "projection.csv").exists()
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--threshold", "1e-6", "--project-days", "0,3", "--out", str(out3)])
    assert exit_info.value.code == 2 and "days must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["--project-days", "3,7"], "--project-days only apply with --threshold"),
    (["--new-units-per-day", "100", "--project-sims", "5"],
     "--new-units-per-day, --project-sims only apply with --threshold"),
    (["--threshold", "2"], "--threshold: threshold=2.0 is 200 percentage points"),
    (["--threshold", "-0.01"], "--threshold: threshold must be a finite number > 0"),
    (["--threshold", "0.002", "--new-units-per-day", "-5"],
     "--new-units-per-day must be a number >= 0"),
    (["--threshold", "0.002", "--project-sims", "0"], "--project-sims must be at least 1"),
])
def test_report_checks_the_decision_options_before_reading_any_data(tmp_path, capsys,
                                                                     options, message):
    # the events file does not exist: the options are rejected before it would be read
    missing = tmp_path / "no-such-file.csv"
    code = main(["report", str(missing), "--created", "created", "--converted", "converted",
                 "--cohort", "cohort", "--control", "A", "--treatment", "B",
                 "--out", str(tmp_path / "out"), *options])
    assert code == 2 and message in capsys.readouterr().err


def test_report_reads_parquet(events_csv, tmp_path):
    pq = tmp_path / "events.parquet"
    pd.read_csv(events_csv).to_parquet(pq)
    code = main(["report", str(pq), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-05", "--cohort", "cohort", "--control", "control",
                 "--treatment", "variant", "--out", str(tmp_path / "o"), "--draws", "100",
                 "--tune", "200", "--chains", "2", "--no-progress", "--resolution", "detect"])
    assert code == 0 and (tmp_path / "o" / "report.html").exists()
    # --resolution detect: the day-floored dates read as exact, and said so
    assert "times recorded to 1 day, read as exact (resolution=&#x27;detect&#x27;" in (
        tmp_path / "o" / "report.html").read_text()


@pytest.mark.parametrize("args,message", [
    (["--cohort", "arm"], "cohort='arm' is not a column"),
    (["--control", "nope"], "arm 'nope' is not in column 'cohort'"),
    (["--observed-until", "2023-01-01"], "observation date before creation"),
    (["--horizon", "-3"], "horizon"),
])
def test_report_errors_are_one_line(events_csv, tmp_path, capsys, args, message):
    base = {"--created": "created", "--converted": "converted",
            "--observed-until": "2024-02-05", "--cohort": "cohort", "--control": "control",
            "--treatment": "variant", "--out": str(tmp_path), "--draws": "50", "--tune": "50",
            "--chains": "1"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = ["report", str(events_csv), "--no-progress"] + [x for kv in base.items() for x in kv]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("bayesconv: error:") and message in err[0], err


def test_missing_file_and_bad_argument(capsys, tmp_path):
    assert main(["report", str(tmp_path / "none.csv"), "--created", "a", "--converted", "b",
                 "--observed-until", "c", "--cohort", "d", "--control", "x", "--treatment",
                 "y", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", "x.csv", "--time-unit", "months"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'months'" in err[0]
    for bad in ("daily", "-1", "0"):
        with pytest.raises(SystemExit) as exc:
            main(["report", "x.csv", "--resolution", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--resolution" in err[0] and repr(bad) in err[0], err


# ------------------------------------------------------------------ what a new user hit (issue 12)
def _run(path, tmp_path, *extra, out="o"):
    argv = ["report", str(path), "--out", str(tmp_path / out), "--draws", "100", "--tune",
            "150", "--chains", "2", *extra]
    return main(argv)


DATES = ["--created", "created", "--converted", "converted", "--cohort", "arm",
         "--control", "A", "--treatment", "B"]


def _offset_file(tmp_path, all_aware: bool):
    """~300 rows of plain dates plus one row with a UTC offset (the issue's reproduction)."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 300
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 30 * 24, n), "h")
    conv = (created + pd.to_timedelta(rng.exponential(120, n), "h").round("s"))
    conv = pd.Series(conv).where((rng.random(n) < 0.4) & (conv < pd.Timestamp("2024-02-15")))
    zone = "Z" if all_aware else ""
    df = pd.DataFrame({"id": range(n), "arm": np.where(rng.random(n) < 0.5, "A", "B"),
                       "created": created.strftime("%Y-%m-%dT%H:%M:%S") + zone,
                       "converted": conv.dt.strftime("%Y-%m-%dT%H:%M:%S") + zone})
    df.loc[len(df)] = [999, "A", "2024-01-01T20:00:00-05:00", "2024-01-02T00:30:00Z"]
    path = tmp_path / ("aware.csv" if all_aware else "mixed.csv")
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("all_aware", [False, True])
def test_cli_and_api_give_the_same_verdict_on_utc_offsets(tmp_path, capsys, all_aware):
    # the offset row converted 30 minutes *before* it was created (01:00Z vs 00:30Z); the CLI
    # read it as a 4.5-hour conversion and went on with exit code 0
    path = _offset_file(tmp_path, all_aware)
    obs = "2024-02-15T00:00:00Z" if all_aware else "2024-02-15"
    with pytest.raises(ValueError) as api:
        bc.prepare(pd.read_csv(path), created="created", converted="converted",
                   observed_until=obs, cohort="arm")
    code = _run(path, tmp_path, *DATES, "--observed-until", obs)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    if all_aware:
        assert "conversion before creation" in err[0] and "in 1 row: row 300 (" in err[0]
        assert "conversion before creation" in str(api.value) and "row 300 (" in str(api.value)
    else:  # the same message, naming the one aware row (not the 300 naive ones)
        assert err[0] == f"bayesconv: error: {api.value}"
        assert "timezone-aware timestamps in column 'created' mixed with 300 timezone-naive" \
            in err[0] and "in 1 row: row 300 (created='2024-01-01T20:00:00-05:00')" in err[0]


def test_cli_date_errors_name_rows(tmp_path, capsys):
    path = tmp_path / "ev.csv"
    pd.DataFrame({"created": ["2024-01-01", "2024-01-02", "2024-01-03"],
                  "converted": ["2024-01-03", "soon", None],
                  "arm": ["A", "B", "A"]}).to_csv(path, index=False)
    assert _run(path, tmp_path, *DATES, "--observed-until", "2024-01-11") == 2
    err = capsys.readouterr().err
    assert "not ISO 8601 dates" in err and "in 1 row: row 1 (converted='soon')" in err


@pytest.fixture(scope="module")
def stray_label_csv(tmp_path_factory):
    """400 units of arms A and B, 5 of them labelled "B " (a trailing space), and an arm C."""
    ev = bc.simulate(n_units=[200, 200, 100], eventual_rate=[0.3, 0.4, 0.3], lag_loc=6.0,
                     lag_shape=2.0, cohorts=["A", "B", "C"], enrollment=20, followup=15,
                     random_seed=8, resolution="D")
    ev["arm"] = ev["cohort"].astype(str)
    ev.loc[ev.index[ev["arm"] == "B"][:5], "arm"] = "B "
    path = tmp_path_factory.mktemp("stray") / "events.csv"
    ev.drop(columns=["cohort", "observed_until"]).to_csv(path, index=False)
    return path


def test_cli_says_which_units_it_leaves_out(stray_label_csv, tmp_path, capsys):
    code = _run(stray_label_csv, tmp_path, *DATES, "--observed-until", "2024-02-05",
                "--horizon", "7", "--no-progress")
    assert code == 0
    err = capsys.readouterr().err
    assert ("left out 105 of 500 units: labels of column 'arm' that are not compared: "
            "'B ' (5 units, which differs from the compared arm 'B' only in case or "
            "whitespace") in err
    assert "'C' (100 units)" in err
    html = (tmp_path / "o" / "report.html").read_text()
    assert "left out 105 of 500 units" in html and "&#x27;B &#x27; (5 units" in html
    summary = pd.read_csv(tmp_path / "o" / "summary.csv", index_col=0)
    assert list(summary.index) == ["A", "B"] and summary["units"].tolist() == [200, 195]


def test_cli_warnings_are_one_line_and_speak_in_options(events_csv, tmp_path, capsys,
                                                        monkeypatch):
    # 20 draws: the convergence checks fail; no Python source lines, no API advice
    import matplotlib.legend

    from bayesconv.inference import clear_compile_cache

    def no_best_search(*args, **kwargs):
        # legend loc="best" searches for a place and, when that is slow (a busy machine),
        # warns: the report's warnings then depended on the machine's speed
        raise AssertionError("a report figure placed its legend with loc='best'")

    monkeypatch.setattr(matplotlib.legend.Legend, "_find_best_position", no_best_search)
    clear_compile_cache(disk=False)
    code = main(["report", str(events_csv), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-05", "--cohort", "cohort", "--control",
                 "control", "--treatment", "variant", "--out", str(tmp_path), "--draws", "20",
                 "--tune", "30", "--chains", "2"])
    assert code == 0
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if line.startswith("bayesconv: warning:")]
    # the convergence warnings name options; a weakly identified rate (20 draws leave wide
    # HDIs) says which horizon the report leads with instead
    convergence = [w for w in warn if "weakly identified" not in w]
    assert convergence and all("--draws" in w or "--target-accept" in w
                               for w in convergence), err
    assert all("conversion within" in w for w in warn if "weakly identified" in w), err
    assert "cli.py" not in err and "compare(" not in err and "result =" not in err
    # the silent start is announced, and sampling progress goes to the log as lines
    assert "bayesconv: compiling the model (gamma lag, no pooling" in err


def test_cli_picks_a_horizon_inside_the_follow_up(events_csv, tmp_path, capsys):
    code = main(["report", str(events_csv), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-05", "--cohort", "cohort", "--control",
                 "control", "--treatment", "variant", "--out", str(tmp_path), "--draws", "100",
                 "--tune", "150", "--chains", "2", "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    data = bc.prepare(pd.read_csv(events_csv), created="created", converted="converted",
                      observed_until="2024-02-05", cohort="cohort")
    h = bc.default_horizon(data)
    assert 0 < h <= data.duration.max()
    assert f"no --horizon given: reading out conversion within {h:g} days" in err
    readout = pd.read_csv(tmp_path / "readout.csv")
    assert set(readout["metric"]) == {"eventual", "by_horizon", "median_lag"}


def test_cli_duration_layout_and_report_layout(tmp_path, capsys):
    # the Rossi experiment as a survival-style file: --duration/--event, numeric arms
    path = tmp_path / "rossi.csv"
    bc.datasets.load_rossi().to_csv(path, index=False)
    code = _run(path, tmp_path, "--duration", "week", "--event", "arrest", "--cohort", "fin",
                "--control", "0", "--treatment", "1", "--time-unit", "W", "--lower-is-better",
                "--no-progress")
    assert code == 0
    out = capsys.readouterr()
    assert "P(fin=1 better (lower) than fin=0) on the rate by 52 weeks" in out.out
    html = (tmp_path / "o" / "report.html").read_text()
    # the first line is the horizon readout: the eventual re-arrest rate is weakly identified
    first = html.split('<p class="headline">')[1].split("</p>")[0]
    assert first.startswith("P(fin=1 better (lower) than fin=0) on the rate by 52 weeks")
    assert "Kaplan–Meier at end (at risk)" in html and "km_end" not in html
    assert "still to come within the next 52 weeks" in " ".join(html.split())
    assert "rate_mean" not in html and "naive_rate" not in html


def test_cli_unit_id_finds_duplicates(tmp_path, capsys):
    path = tmp_path / "ev.csv"
    pd.DataFrame({"uid": [1, 2, 2], "created": ["2024-01-01", "2024-01-02", "2024-01-03"],
                  "converted": ["2024-01-03", None, None],
                  "arm": ["A", "B", "A"]}).to_csv(path, index=False)
    assert _run(path, tmp_path, *DATES, "--observed-until", "2024-01-11", "--unit-id",
                "uid") == 2
    err = capsys.readouterr().err
    assert "duplicated unit id in column 'uid'" in err and "row 1" in err and "row 2" in err


def test_report_help_documents_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    for option in ("--duration", "--event", "--unit-id", "--count", "--time-unit",
                   "--target-accept", "--horizon", "--resolution"):
        assert option in text
