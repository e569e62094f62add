"""NYC demo fit speed of several revisions of bayesconv, side by side in one run.

Each revision is exported (``git archive``) to a temporary folder and fitted in its own fresh
process with this venv's libraries: the demo's cohorts (``run.demo_data``), gamma lag, partial
pooling, 4 chains x 1000 draws at the revision's default tuning and ``target_accept``, twice in
the process: the first fit compiles, the second reuses the compiled model. ESS is the smallest
bulk ESS over eventual rates, lag locations and shapes; ESS/s divides it by the fit's wall time.
Run the revisions one after another on an otherwise idle machine.

    .venv/bin/python benchmarks/demo_speed.py cc78949 HEAD            # before issue 15, now
    .venv/bin/python benchmarks/demo_speed.py cc78949 . --out benchmarks/demo_speed.md

``.`` is the working tree as it is (uncommitted changes included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, warnings
root = sys.argv[1]
sys.path[:0] = [root, root + "/benchmarks"]
import run as B
import bayesconv as bc
from bayesconv.inference import clear_compile_cache
assert bc.__file__.startswith(root), bc.__file__
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = B.demo_data()
clear_compile_cache()
for name in ("first", "cached"):
    t0 = time.perf_counter()
    res = bc.ConversionModel(data, lag="gamma", pooling="partial").fit(
        draws=int(sys.argv[2]), chains=4, random_seed=int(sys.argv[3]), progressbar=False)
    wall = time.perf_counter() - t0
    d = B._diag(res.idata)
    print(json.dumps(dict(run=name, wall=wall, compile=res.timing.get("compile_s"),
                          sampling=res.timing.get("sampling_s"), ess=d["min_ess_bulk"],
                          steps=d["steps_per_draw"], divergences=d["divergences"],
                          target_accept=res.posterior.attrs.get("target_accept"))), flush=True)
"""


def export(rev: str, into: Path) -> tuple[Path, str]:
    """The revision's files in a folder of ``into`` (``.``: the working tree itself), and its
    short commit id."""
    if rev == ".":
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, check=True, capture_output=True, text=True).stdout
        return ROOT, head + ("+changes" if dirty.strip() else "")
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.strip()
    folder = into / short
    folder.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder, short


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("revisions", nargs="+", help="git revisions, or . for the working tree")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2018)
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rev in args.revisions:
            folder, label = export(rev, Path(tmp))
            print(f"{rev} ({label}) ...", flush=True)
            # compile cache off: every revision's first fit compiles (cold_start.py measures
            # the cache)
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(args.draws),
                                  str(args.seed)], capture_output=True, text=True,
                                 env={**os.environ, "BAYESCONV_COMPILE_CACHE": "off"})
            if out.returncode:
                raise SystemExit(f"{rev}: the fit failed:\n{out.stderr[-3000:]}")
            runs = {r["run"]: r for r in map(json.loads, out.stdout.split("\n")[:-1])
                    if r.get("run")}
            rows.append((rev, label, runs))
    first_base = rows[0][2]["first"]["ess"] / rows[0][2]["first"]["wall"]
    cached_base = rows[0][2]["cached"]["ess"] / rows[0][2]["cached"]["wall"]
    lines = [
        "# NYC demo fit speed by revision", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- command: `python benchmarks/demo_speed.py {' '.join(args.revisions)}`",
        f"- machine: {platform.platform()}; {platform.processor() or platform.machine()}",
        f"- 4 chains x {args.draws} draws, seed {args.seed}; each revision in a fresh process, "
        "one after another", "",
        "| revision | commit | target_accept | first fit wall (s) | compile (s) | cached fit wall "
        "(s) | min bulk ESS | steps/draw | divergences | ESS/s first | ESS/s cached | "
        "vs first row (first / cached) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rev, label, r in rows:
        f, c = r["first"], r["cached"]
        ef, ec = f["ess"] / f["wall"], c["ess"] / c["wall"]
        lines.append(f"| {rev} | {label} | {f['target_accept'] or 'not recorded'} | "
                     f"{f['wall']:.1f} | {f['compile']:.1f} | {c['wall']:.1f} | {f['ess']:.0f} | "
                     f"{f['steps']:.1f} | {f['divergences'] + c['divergences']} | {ef:.1f} | "
                     f"{ec:.1f} | {ef / first_base:.2f}x / {ec / cached_base:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
