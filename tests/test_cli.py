"""The command line: the demo job end to end (small sampling sizes), and argument errors."""

import pandas as pd
import pytest

from bayesconv.cli import main


def test_demo_writes_table_and_figure(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--draws", "150", "--tune", "300",
                 "--chains", "2", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Eventual resolution rate by cohort" in out and "2015-2019" in out
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=0)
    assert len(summary) == 7 and summary["rate_mean"].between(0, 1).all()
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
