"""Readouts per minute: bc.readouts, Spark local[2] and a shell loop of `bayesconv report`.

Simulates N two-arm experiments (default 200) of 10^4-10^6 units each (log-uniform sizes,
day-floored timestamps as event logs store them, 21 days of enrollment and 7 of follow-up,
eventual rates 5-30% and lifts of -10% to +20%, gamma lags with mean 3-8 days), writes them to
one Parquet file, and reads them all out three ways, each with the defaults (4 chains x 1000
draws, horizon 7 days, the same seed):

* ``bc.readouts`` on the file through DuckDB (what ``bayesconv readouts --no-reports`` runs),
  in one process;
* ``bayesconv.spark.readouts`` on the file read by Spark in ``local[2]`` mode;
* a shell loop of ``bayesconv report`` processes, one per experiment (each on its own Parquet
  file), on the first ``--loop`` experiments in size order spread over the range (a fresh
  process per readout is what the batch replaces; 200 of them would take most of an hour).

The compile cache is a fresh folder, warmed by one small fit before the timings, so every
process starts warm as in daily use. Also checks that the DuckDB and Spark tables agree
(every column but fit_seconds).

Run: ``.venv/bin/python benchmarks/readouts.py --out benchmarks/readouts.md`` (about 15 min on
2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BAYESCONV = Path(sys.executable).with_name("bayesconv")
HORIZON = 7.0
KW = dict(experiment="experiment_id", cohort="cohort", control="A", created="created",
          converted="converted", observed_until="observed_until", horizon=HORIZON)


def simulate(n_experiments: int, low: float, high: float, seed: int) -> pd.DataFrame:
    import bayesconv as bc

    rng = np.random.default_rng(seed)
    frames = []
    for e in range(n_experiments):
        n = int(round(10 ** rng.uniform(np.log10(low), np.log10(high))))
        rate = rng.uniform(0.05, 0.30)
        lift = rng.uniform(-0.10, 0.20)
        ev = bc.simulate(n_units=[n // 2, n - n // 2], eventual_rate=[rate, rate * (1 + lift)],
                         lag_loc=rng.uniform(3, 8), lag_shape=rng.uniform(0.8, 2.0),
                         enrollment=21, followup=7, resolution="D",
                         random_seed=int(rng.integers(2**31)))
        ev.attrs = {}
        ev.insert(0, "experiment_id", e)
        frames.append(ev)
    out = pd.concat(frames, ignore_index=True)
    out["cohort"] = out["cohort"].astype(str)
    return out


def _run(argv, env) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


BATCH_CHILD = """
import json, sys, time, warnings
import duckdb
import bayesconv as bc
from bayesconv.data.readers import read_events
path, out, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t0 = time.perf_counter()
events = read_events(path, ["created", "converted", "observed_until"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    table = bc.readouts(events, **kw, random_seed=1, progressbar=False)
wall = time.perf_counter() - t0
table.to_parquet(out)
print(json.dumps({"wall": wall}))
"""

SPARK_CHILD = """
import json, os, sys, time, warnings
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession
from bayesconv.spark import collect, readouts
path, out, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.memory", "4g").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
t0 = time.perf_counter()
sdf = spark.read.parquet(path)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    table = collect(readouts(sdf, **kw, random_seed=1), kw["experiment"])
wall = time.perf_counter() - t0
table.to_parquet(out)
spark.stop()
print(json.dumps({"wall": wall}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=200)
    ap.add_argument("--min-units", type=float, default=1e4)
    ap.add_argument("--max-units", type=float, default=1e6)
    ap.add_argument("--loop", type=int, default=20,
                    help="experiments of the report loop (spread over the sizes)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--skip", action="append", default=[], choices=["spark", "loop"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "BAYESCONV_COMPILE_CACHE": str(tmp / "cache")}
        print("simulating ...", flush=True)
        t0 = time.perf_counter()
        events = simulate(args.experiments, args.min_units, args.max_units, args.seed)
        sizes = events.groupby("experiment_id").size()
        path = tmp / "events.parquet"
        events.to_parquet(path, index=False, coerce_timestamps="us")
        print(f"  {len(events):,} units in {args.experiments} experiments "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        loop_ids = sizes.sort_values().index[
            np.linspace(0, len(sizes) - 1, min(args.loop, len(sizes))).round().astype(int)]
        files = {}
        for e in loop_ids:
            files[e] = tmp / f"exp{e}.parquet"
            events[events["experiment_id"] == e].to_parquet(files[e], index=False,
                                                             coerce_timestamps="us")
        del events
        # warm the compile cache: one small report
        _run([str(BAYESCONV), "report", str(files[loop_ids[0]]), "--cohort", "cohort",
              "--control", "A", "--treatment", "B", "--created", "created", "--converted",
              "converted", "--observed-until", "observed_until", "--horizon", str(HORIZON),
              "--no-progress", "--draws", "100", "--out", str(tmp / "warm")], env)
        kw = json.dumps(KW)
        results = {}
        print("bc.readouts (DuckDB) ...", flush=True)
        out = subprocess.run([sys.executable, "-c", BATCH_CHILD, str(path),
                              str(tmp / "batch.parquet"), kw], env=env, capture_output=True,
                             text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        results["bc.readouts (DuckDB, one process)"] = (
            json.loads(out.stdout.strip().splitlines()[-1])["wall"], args.experiments)
        print(f"  {results['bc.readouts (DuckDB, one process)'][0]:.0f} s", flush=True)
        same = None
        if "spark" not in args.skip:
            print("Spark local[2] ...", flush=True)
            out = subprocess.run([sys.executable, "-c", SPARK_CHILD, str(path),
                                  str(tmp / "spark.parquet"), kw], env=env,
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            results["bayesconv.spark.readouts (local[2])"] = (
                json.loads(out.stdout.strip().splitlines()[-1])["wall"], args.experiments)
            print(f"  {results['bayesconv.spark.readouts (local[2])'][0]:.0f} s", flush=True)
            a = pd.read_parquet(tmp / "batch.parquet").drop(columns="fit_seconds")
            b = pd.read_parquet(tmp / "spark.parquet").drop(columns="fit_seconds")
            same = a.equals(b)
        if "loop" not in args.skip:
            print(f"report loop over {len(loop_ids)} experiments ...", flush=True)
            t0 = time.perf_counter()
            for e in loop_ids:
                _run([str(BAYESCONV), "report", str(files[e]), "--cohort", "cohort",
                      "--control", "A", "--treatment", "B", "--created", "created",
                      "--converted", "converted", "--observed-until", "observed_until",
                      "--horizon", str(HORIZON), "--seed", "1", "--no-progress",
                      "--out", str(tmp / f"report{e}")], env)
            results["shell loop of `bayesconv report`"] = (time.perf_counter() - t0,
                                                            len(loop_ids))
            print(f"  {results['shell loop of `bayesconv report`'][0]:.0f} s", flush=True)
    batch = results["bc.readouts (DuckDB, one process)"]
    loop = results.get("shell loop of `bayesconv report`")
    lines = [f"# Readouts per minute ({args.experiments} two-arm experiments of "
             f"{args.min_units:.0e}-{args.max_units:.0e} units, {int(sizes.sum()):,} units in "
             f"all; {os.cpu_count()} cores)", "",
             "Re-run: `.venv/bin/python benchmarks/readouts.py --out benchmarks/readouts.md`", "",
             "| method | experiments | wall (s) | readouts / min | vs the loop | vs bc.readouts |",
             "|---|---|---|---|---|---|"]
    for name, (wall, n) in results.items():
        rate = 60 * n / wall
        vs_loop = f"{rate / (60 * loop[1] / loop[0]):.1f}x" if loop else "-"
        vs_batch = f"{rate / (60 * batch[1] / batch[0]):.2f}x"
        lines.append(f"| {name} | {n} | {wall:.0f} | {rate:.1f} | {vs_loop} | {vs_batch} |")
    lines += ["", f"Experiment sizes: median {int(sizes.median()):,} units, smallest "
              f"{int(sizes.min()):,}, largest {int(sizes.max()):,}."]
    if same is not None:
        lines.append(f"DuckDB and Spark tables identical (every column but fit_seconds): "
                     f"{'yes' if same else 'NO'}.")
    if loop:
        lines.append(f"The loop ran on {loop[1]} of the experiments, spread evenly over the "
                     "sizes; its rate is per experiment like the others'.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
