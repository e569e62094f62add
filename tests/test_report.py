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
    assert html.count("<img alt='figure' src='data:image/png;base64,") == 4
    for section in ("Readout", "Conversion curves", "Nowcast", "Diagnostics"):
        assert f"<h2>{section}</h2>" in html
    readout = pd.read_csv(out / "readout.csv")
    assert set(readout["metric"]) == {"eventual", "by_horizon"}
    assert readout["prob_better"].between(0, 1).all()
    assert "P(variant better than control)" in capsys.readouterr().out


def test_report_reads_parquet(events_csv, tmp_path):
    pq = tmp_path / "events.parquet"
    pd.read_csv(events_csv).to_parquet(pq)
    code = main(["report", str(pq), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-05", "--cohort", "cohort", "--control", "control",
                 "--treatment", "variant", "--out", str(tmp_path / "o"), "--draws", "100",
                 "--tune", "200", "--chains", "2", "--no-progress"])
    assert code == 0 and (tmp_path / "o" / "report.html").exists()


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
