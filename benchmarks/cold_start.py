"""Cold start: readouts in fresh processes, with the persistent compile cache cold and warm.

Every measurement runs in a new Python process, as a scheduled report, a notebook kernel or
a pool worker does, against one compile cache directory (``BAYESCONV_COMPILE_CACHE``) that
starts empty: the first process compiles (cold), the later ones load the compiled model from
the cache (warm). Parts, in one run so that the ratios compare like with like:

1. ``import bayesconv`` and ``bayesconv --help`` (median of 5 fresh processes);
2. ``bayesconv report`` of a simulated 2-arm experiment of 10^6 units from Parquet (no
   projection), cold and twice warm: wall time of the process against the sampling time it
   reports;
3. the NYC demo fit (``bayesconv demo``'s cohorts, partial pooling, gamma lag, 4 × 1000
   draws): the first fit in a fresh process, cold and warm, and a second fit in the same
   process (the compiled model reused in memory);
4. the plain per-row PyMC model of the same data (``benchmarks/run.py``'s), with PyMC's NUTS
   (``--no-plain`` skips it: about 7 minutes).

    .venv/bin/python benchmarks/cold_start.py --out benchmarks/cold_start.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as B  # noqa: E402  (benchmarks/run.py: data, the plain model, machine description)

BAYESCONV = Path(sys.executable).with_name("bayesconv")

DEMO_CHILD = r"""
import json, sys, time, warnings
t_start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import run as B
import bayesconv as bc
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = B.demo_data()
for name in ("first", "in-process"):
    t0 = time.perf_counter()
    res = bc.ConversionModel(data, lag="gamma", pooling="partial").fit(
        draws=int(sys.argv[2]), chains=4, random_seed=int(sys.argv[3]), progressbar=False)
    fit, process = time.perf_counter() - t0, time.perf_counter() - t_start
    d = B._diag(res.idata)   # (res.idata adds the pointwise log-likelihood: not in the fit)
    print(json.dumps(dict(run=name, fit=fit, process=process,
                          compile=res.timing["compile_s"], source=res.timing["compile_source"],
                          sampling=res.timing["sampling_s"], ess=d["min_ess_bulk"],
                          divergences=d["divergences"])), flush=True)
"""

PLAIN_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import run as B
data = B.demo_data()
_, row = B.fit_plain_pymc(data, draws=int(sys.argv[2]), tune=1000, chains=4,
                          seed=int(sys.argv[3]), pooling="partial")
print(json.dumps(dict(wall=row["wall_s"], sampling=row["sampling_s"], ess=row["min_ess_bulk"],
                      divergences=row["divergences"])))
"""

TIMES = re.compile(r"times: compile (?P<compile>[\d.]+) s \((?P<source>[^)]*)\), sampling "
                   r"(?P<sampling>[\d.]+) s, (?P<command>[\d.]+) s since")


def _run(argv, env, timeout=3600):
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                         check=False)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"{' '.join(map(str, argv[:3]))} failed:\n{out.stderr[-3000:]}")
    return wall, out.stdout


def imports(env) -> dict:
    code = ("import time; t = time.perf_counter(); import bayesconv; "
            "print(time.perf_counter() - t)")
    inside = [float(_run([sys.executable, "-c", code], env)[1]) for _ in range(5)]
    helps = [_run([str(BAYESCONV), "--help"], env)[0] for _ in range(5)]
    return {"import": statistics.median(inside), "help": statistics.median(helps)}


def reports(path: Path, out: Path, env, seed: int) -> list[dict]:
    rows = []
    for run in ("cold cache", "warm cache", "warm cache again"):
        wall, text = _run([str(BAYESCONV), "report", str(path), "--cohort", "cohort",
                           "--control", "A", "--treatment", "B", "--created", "created",
                           "--converted", "converted", "--observed-until", "observed_until",
                           "--seed", str(seed), "--no-progress", "--out", str(out)], env)
        m = TIMES.search(text)
        if m is None:
            raise SystemExit(f"no timing line in the report's output:\n{text[-2000:]}")
        rows.append({"run": run, "wall": wall, "compile": float(m["compile"]),
                     "source": m["source"], "sampling": float(m["sampling"])})
        print(f"  report, {run}: {wall:.1f} s (sampling {m['sampling']} s)", flush=True)
    return rows


def demo(env, draws: int, seed: int) -> list[dict]:
    rows = []
    for run in ("cold cache", "warm cache"):
        wall, text = _run([sys.executable, "-c", DEMO_CHILD, str(HERE), str(draws), str(seed)],
                          env)
        fits = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        for f in fits:
            f.update(run=f"{run}, {'first fit' if f['run'] == 'first' else 'second fit'}",
                     wall=wall)
        rows.extend(fits)
        print(f"  demo, {run}: first fit {fits[0]['fit']:.1f} s, second "
              f"{fits[1]['fit']:.1f} s", flush=True)
    return rows


def table(imp, reps, dem, plain, args) -> str:
    # B.machine() states the date and the command line with the machine and versions
    lines = ["# Cold start: fresh processes with the compile cache cold and warm", "",
             B.machine(), "",
             "## Start-up (median of 5 fresh processes)", "",
             "| what | seconds |", "|---|---|",
             f"| `import bayesconv` | {imp['import']:.3f} |",
             f"| `bayesconv --help` (process wall) | {imp['help']:.2f} |", "",
             f"## `bayesconv report`, 2-arm experiment of {args.units:,} units from Parquet", "",
             "Process wall time (interpreter start to exit) against the sampling time the "
             "report prints; 4 chains × 1000 draws.", "",
             "| run | process wall (s) | compile (s) | compiled model | sampling (s) "
             "| wall / sampling |", "|---|---|---|---|---|---|"]
    for r in reps:
        lines.append(f"| {r['run']} | {r['wall']:.1f} | {r['compile']:.1f} | {r['source']} | "
                     f"{r['sampling']:.1f} | {r['wall'] / r['sampling']:.1f}× |")
    lines += ["", "## NYC demo fit (partial pooling, gamma lag, 4 × "
              f"{args.draws} draws)", "",
              "| run | fit wall (s) | compile (s) | compiled model | sampling (s) | min bulk ESS "
              "| divergences | fit / in-process fit |", "|---|---|---|---|---|---|---|---|"]
    base = next(r["fit"] for r in dem if r["run"] == "warm cache, second fit")
    for r in dem:
        lines.append(f"| {r['run']} | {r['fit']:.1f} | {r['compile']:.2f} | {r['source']} | "
                     f"{r['sampling']:.1f} | {r['ess']:.0f} | {r['divergences']} | "
                     f"{r['fit'] / base:.2f}× |")
    warm = next(r for r in dem if r["run"] == "warm cache, first fit")
    lines += ["", f"Whole process with a warm cache (interpreter start, imports, data, first "
              f"fit, second fit, each followed by `result.idata` with its pointwise "
              f"log-likelihood): {warm['wall']:.1f} s."]
    if plain is not None:
        lines += ["", "## The plain per-row PyMC model of the demo data, PyMC's NUTS", "",
                  "| model | wall (s) | min bulk ESS | divergences | wall / bayesconv |",
                  "|---|---|---|---|---|",
                  f"| plain per-row PyMC model | {plain['wall']:.1f} | {plain['ess']:.0f} | "
                  f"{plain['divergences']} | 1 |"]
        for r in dem:
            if r["run"].endswith("first fit"):
                lines.append(f"| bayesconv, fresh process, {r['run'].split(',')[0]} | "
                             f"{r['fit']:.1f} | {r['ess']:.0f} | {r['divergences']} | "
                             f"{plain['wall'] / r['fit']:.1f}× faster |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2018)
    ap.add_argument("--no-plain", action="store_true", help="skip the plain PyMC model")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "BAYESCONV_COMPILE_CACHE": str(tmp / "cache")}
        print("start-up ...", flush=True)
        imp = imports(env)
        path = tmp / "ab.parquet"
        B.gen_ab(args.units, str(path), args.seed)
        print("reports ...", flush=True)
        reps = reports(path, tmp / "report", env, args.seed)
        print("demo ...", flush=True)
        dem = demo(env, args.draws, args.seed)
        plain = None
        if not args.no_plain:
            print("plain PyMC model ...", flush=True)
            _, text = _run([sys.executable, "-c", PLAIN_CHILD, str(HERE), str(args.draws),
                            str(args.seed)], env)
            plain = json.loads(text.strip().splitlines()[-1])
    text = table(imp, reps, dem, plain, args)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
