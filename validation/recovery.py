"""Run the slow statistical tests (seeded recovery fits, model rankings) and record the outcome.

``make test`` leaves out the tests marked ``slow`` (pyproject.toml: ``-m 'not slow'``) to stay
within its time budget: seeded recovery fits of every lag family, the LOO rankings of lag
families on simulated and real (marriage) data, the binned-versus-exact fit agreement and the
C back end of the lag functions. Each of them asserts a statistical property (the truth inside
its interval, a ranking by more than k standard errors), so they must keep passing; this
script runs them and writes the outcome, with each test's time, to ``validation/recovery.md``.

Re-run: ``.venv/bin/python validation/recovery.py`` (or ``make test-slow``, which runs the same
tests without writing the file).
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "validation" / "recovery.md"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "slow", "-q", "-rA", "-n", "2",
                           "--durations=0", "--durations-min=0", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    out = proc.stdout
    outcomes = re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+)", out, flags=re.M)
    times: dict[str, float] = {}
    for secs, _phase, test in re.findall(r"^([0-9.]+)s (call|setup|teardown)\s+(\S+)", out,
                                        flags=re.M):
        times[test] = times.get(test, 0.0) + float(secs)
    summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    lines = [
        "# Slow statistical tests",
        "",
        f"Run on {date.today()} ({platform.machine()}, {platform.python_version()}), "
        f"{wall:.0f} s wall: `{summary[-1].strip('= ') if summary else 'no summary'}`.",
        "Re-run: `.venv/bin/python validation/recovery.py` (this file is its output).",
        "",
        "| test | outcome | seconds |",
        "|---|---|---|",
    ]
    for outcome, test in outcomes:
        lines.append(f"| `{test}` | {outcome.lower()} | {times.get(test, float('nan')):.1f} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    if proc.returncode not in (0, 5):
        print(out[-5000:], proc.stderr[-2000:], sep="\n")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
