"""The command line: the demo job end to end (small sampling sizes), and argument errors."""

import subprocess
import sys
from pathlib import Path

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


@pytest.mark.filterwarnings("ignore::bayesconv.ConvergenceWarning")
def test_report_by_segment(tmp_path, capsys):
    """``--covariates`` keeps a column in the cell table, ``--by`` reads out per level: the
    printed readout and the HTML report hold the segment table and the forest plot."""
    import bayesconv as bc

    cells = pd.DataFrame([{"cohort": arm, "platform": p, "n_units": 300,
                           "eventual_rate": 0.3 + (0.1 if (arm == "B" and p == "ios") else 0),
                           "lag_loc": 4.0, "lag_shape": 1.5}
                          for arm in ("A", "B") for p in ("ios", "web")])
    ev = bc.simulate(cells=cells, enrollment=20, followup=20, random_seed=3, resolution="h")
    path = tmp_path / "ev.csv"
    ev.to_csv(path, index=False)
    argv = ["report", str(path), "--created", "created", "--converted", "converted",
            "--observed-until", "observed_until", "--cohort", "cohort", "--control", "A",
            "--treatment", "B", "--by", "platform", "--out", str(tmp_path / "out"),
            "--draws", "100", "--tune", "200", "--chains", "2", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "--by without --formula" in captured.err
    # two platforms are too few for a between-platform sd: fixed effects per platform
    assert "eventual_rate = cohort * platform; lag_loc = cohort + platform" in captured.err
    assert "fewer than 3 levels" in captured.err
    assert "2 segments" in captured.out and "ios" in captured.out and "web" in captured.out
    html = (tmp_path / "out" / "report.html").read_text()
    assert "platform" in html and html.count("data:image/png") >= 2
    table = pd.read_csv(tmp_path / "out" / "readout.csv")
    assert set(table["platform"].dropna()) == {"ios", "web"} and table["platform"].isna().any()
    # a formula naming a column that is not kept: a one-line error, exit code 2
    bad = [*argv[:argv.index("--by")], "--covariates", "platform", "--formula",
           "eventual_rate=cohort + (1 | country)", "--out", str(tmp_path / "o2"), "--no-progress"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "country" in errors[0], err
    # in the command line's words, and before "fitting" is announced
    assert "--covariates COLUMN" in errors[0] and "prepare(" not in errors[0], err
    assert "fitting" not in capsys.readouterr().out


def test_default_segment_formula_has_group_terms_from_three_levels():
    import argparse

    import bayesconv as bc
    from bayesconv.cli import _formula

    args = argparse.Namespace(formula=None, by="platform", cohort="cohort")
    cells = pd.DataFrame([{"cohort": arm, "platform": p, "n_units": 50, "eventual_rate": 0.3,
                           "lag_loc": 4.0, "lag_shape": 1.5}
                          for arm in ("A", "B") for p in ("ios", "web", "android")])
    ev = bc.simulate(cells=cells, enrollment=10, followup=10, random_seed=1, resolution="D")
    kw = dict(created="created", converted="converted", observed_until="observed_until",
              cohort="cohort", covariates=["platform"])
    three = bc.prepare(ev, **kw)
    two = bc.prepare(ev[ev["platform"] != "android"], **kw)
    assert _formula(args, three) == {"eventual_rate": "cohort + (cohort | platform)",
                                     "lag_loc": "cohort + (1 | platform)"}
    assert _formula(args, two) == {"eventual_rate": "cohort * platform",
                                   "lag_loc": "cohort + platform"}


def test_divergence_remedy_speaks_in_options_for_each_pattern():
    import argparse

    import bayesconv as bc
    from bayesconv.cli import _cli_remedy

    args = argparse.Namespace(target_accept=None, tune=None, draws=1000)
    text = {p: _cli_remedy(bc.ConvergenceWarning("5 of 4000 draws ...", "API remedy",
                                                 "divergences", p), args, None)
            for p in ("funnel", "lag_shape", "ridge", "")}
    assert "funnel" in text["funnel"] and "--formula" in text["funnel"]
    assert "--lag exponential" in text["lag_shape"]
    assert "--horizon" in text["ridge"]
    # an R-hat on a cohort's ridge: not "sample longer", which follows the same ridge
    rhat = _cli_remedy(bc.ConvergenceWarning("R-hat ...", "API remedy", "r_hat", "ridge"),
                       args, None)
    assert "--horizon" in rhat and "--draws" not in rhat
    assert text[""] == "raise --target-accept (e.g. 0.95)"
    assert all("API remedy" not in t and "--target-accept" in t for t in text.values())
    # the next step after the fit's own target_accept, and none past 0.99
    at = {nxt: _cli_remedy(bc.ConvergenceWarning("5 of 4000 draws ...", "API remedy",
                                                 "divergences", "", next_accept=nxt), args, None)
          for nxt in (0.99, None)}
    assert at[0.99] == "raise --target-accept (e.g. 0.99)"
    assert "0.99 already" in at[None] and "raise" not in at[None]


def _console(body: str) -> subprocess.CompletedProcess:
    """Run ``bayesconv.cli.run`` (the console script) in a fresh interpreter, ``main``
    replaced by the function defined in ``body``."""
    code = "\n".join(["import atexit, sys", "import bayesconv.cli as cli", body,
                      "cli.main = main", "cli.run()"])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_console_script_skips_finalization_but_runs_exit_handlers():
    # objects are not freed one by one at exit (about 1 s after a report), while the exit
    # handlers libraries register (Spark's, logging's) still run, and piped output is flushed
    out = _console("\n".join([
        "class Noisy:", "    def __del__(self):", "        print('finalized')",
        "KEEP = Noisy()",
        "def main():",
        "    atexit.register(lambda: print('handler ran'))",
        "    print('output', end='')",
        "    return 0"]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("output")
    assert "handler ran" in out.stdout
    assert "finalized" not in out.stdout


@pytest.mark.parametrize("body,status", [
    ("def main():\n    return 3", 3),
    ("def main():\n    return None", 0),
    ("def main():\n    raise RuntimeError('boom')", 1),
    ("def main():\n    sys.exit(2)", 2),
    ("def main():\n    sys.exit()", 0),
    ("def main():\n    sys.exit('bad')", 1),
    ("def main():\n    raise KeyboardInterrupt", 130),
])
def test_console_script_exit_status(body, status):
    out = _console(body)
    assert out.returncode == status, out.stderr
    assert "Exception ignored" not in out.stderr   # the exit handler itself did not fail
    if status == 1 and "boom" in body:
        assert "RuntimeError: boom" in out.stderr


def test_console_script_entry_point_is_run():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "bayesconv"]
    assert ep.value == "bayesconv.cli:run"
    help_ = subprocess.run([str(Path(sys.executable).with_name("bayesconv")), "--help"],
                           capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and help_.stdout.startswith("usage: bayesconv")
