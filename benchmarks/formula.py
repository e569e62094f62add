"""Benchmark for issue 14: a formula fit of 10^6 units beside the one-factor fit of the same data.

A simulated 2-arm × 4-platform × 12-week experiment (10^6 units, day-resolution timestamps,
the treatment lifting one platform, conversion drifting over signup weeks) is written to
Parquet; each fit then runs in a fresh process (read through DuckDB + prepare, build, compile,
sample 4 chains × 1000 draws with nutpie, and the readout):

* ``one-factor``: ``prepare(cohort="variant")``, no formula (today's 2-arm model);
* ``formula``: ``prepare(..., covariates=["platform", "signup_week"])`` and
  ``eventual_rate = variant + (variant | platform) + rw(signup_week)``,
  ``lag_loc = variant + (1 | platform)``, read out overall and ``by="platform"``.

Prints a markdown table (wall seconds per phase, ratios to the one-factor fit, diagnostics)
and writes it with the machine description to ``--out``.

    .venv/bin/python benchmarks/formula.py --out benchmarks/formula.md
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PLATFORMS = ("ios", "android", "web", "desktop")
WEEKS = 12
FORMULA = {"eventual_rate": "variant + (variant | platform) + rw(signup_week)",
           "lag_loc": "variant + (1 | platform)"}


def gen(path: str, n_units: int, seed: int) -> dict:
    import numpy as np
    import pandas as pd

    import bayesconv as bc

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    walk = np.r_[0.0, np.cumsum(rng.normal(-0.03, 0.05, WEEKS - 1))]
    rows = []
    per_cell = n_units // (2 * len(PLATFORMS) * WEEKS)
    for arm in ("A", "B"):
        for i, p in enumerate(PLATFORMS):
            for w in range(WEEKS):
                base = 0.25 - 0.03 * i
                lift = 1.10 if (arm == "B" and p == "ios") else 1.0
                c = 1 / (1 + np.exp(-(np.log(base / (1 - base)) + walk[w]))) * lift
                rows.append({"variant": arm, "platform": p, "signup_week": w,
                             "n_units": per_cell, "eventual_rate": c,
                             "lag_loc": 6.0 + i, "lag_shape": 1.5})
    cells = pd.DataFrame(rows).rename(columns={"variant": "cohort", "signup_week": "period"})
    ev = bc.simulate(cells=cells, period_length=7.0, enrollment=7.0 * WEEKS, followup=14.0,
                     resolution="D", random_seed=seed)
    ev = ev.rename(columns={"cohort": "variant", "period": "signup_week"})
    ev.attrs = {}
    ev.to_parquet(path, index=False)
    return {"units": len(ev), "gen_s": time.perf_counter() - t0}


def worker(path: str, kind: str, draws: int, chains: int, seed: int,
           resolution: str = "auto") -> dict:
    from run import _quiet

    _quiet()
    import duckdb
    import pymc  # noqa: F401  (import cost is not part of the timing)

    import bayesconv as bc

    t_total = time.perf_counter()
    kw = dict(created="created", converted="converted", observed_until="observed_until",
              cohort="variant", time_unit="D", resolution=resolution)
    t0 = time.perf_counter()
    rel = duckdb.sql(f"select * from '{path}'")
    if kind == "formula":
        data = bc.prepare(rel, **kw, covariates=["platform", "signup_week"])
    else:
        data = bc.prepare(rel, **kw)
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = bc.ConversionModel(data, formula=FORMULA if kind == "formula" else None)
    build_s = time.perf_counter() - t0
    res = model.fit(draws=draws, chains=chains, random_seed=seed, progressbar=False)
    t0 = time.perf_counter()
    ro = bc.compare(res, treatment="B", control="A", horizon=14,
                    by="platform" if kind == "formula" else None)
    frame = ro.to_frame()
    readout_s = time.perf_counter() - t0
    diag = res.diagnostics()
    ev = frame[frame["metric"] == "eventual"]
    return {"kind": kind, "units": data.n_units, "rows": data.n_rows, "cells": data.n_cells,
            "prepare_s": prepare_s, "build_s": build_s,
            "compile_s": res.timing.get("compile_s"), "sampling_s": res.timing.get("sampling_s"),
            "readout_s": readout_s, "total_s": time.perf_counter() - t_total,
            "divergences": diag["divergences"], "max_r_hat": diag["max_r_hat"],
            "min_ess_bulk": diag["min_ess_bulk"],
            "p_better": {("overall" if (("platform" not in ev) or r.get("platform") != r.get(
                "platform")) else r["platform"]): round(float(r["prob_better"]), 3)
                for r in ev.to_dict("records")}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out")
    ap.add_argument("--resolution", default="auto", choices=["auto", "detect"],
                    help="prepare(resolution=...): 'auto' (the package default) reads the "
                         "day-floored times as interval-censored, 'detect' as exact")
    ap.add_argument("--worker", nargs=2, metavar=("PATH", "KIND"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.draws, args.chains, args.seed,
                                args.resolution)))
        return 0
    from run import machine

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "events.parquet")
        info = gen(path, args.units, args.seed)
        rows = []
        for kind in ("one-factor", "formula"):
            cmd = [sys.executable, __file__, "--worker", path, kind, "--draws",
                   str(args.draws), "--chains", str(args.chains), "--seed", str(args.seed),
                   "--resolution", args.resolution]
            # empty compile caches (PyTensor's compiledir, numba's cache): a cold first fit
            cache = Path(tmp) / f"cache-{kind}"
            env = dict(os.environ, NUMBA_CACHE_DIR=str(cache / "numba"),
                       PYTENSOR_FLAGS=f"base_compiledir={cache / 'pytensor'}")
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["process_s"] = wall
            rows.append(row)
    base = rows[0]
    lines = [f"# Formula fit vs one-factor fit, {info['units']:,} units", "",
             f"2 arms × {len(PLATFORMS)} platforms × {WEEKS} signup weeks, day resolution "
             f"read as {'interval-censored' if args.resolution == 'auto' else 'exact'} "
             f"(`--resolution {args.resolution}`), {args.chains} chains × {args.draws} draws (nutpie), each fit in a fresh process "
             "(import not timed; empty PyTensor and numba compile caches, so every compile is "
             "cold). The formula fit's nutpie mass matrix is low-rank (chosen by "
             "`bayesconv.model.design.choose_mass_matrix`).", "",
             "| fit | rows | cells | read+prepare s | build s | compile s | sampling s | "
             "fit s (build + compile + sampling) | readout s | total s (× one-factor) | "
             "process wall s | divergences | max R-hat | min ESS | P(B better), eventual |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pb = ", ".join(f"{k} {v:.3f}" for k, v in r["p_better"].items())
        lines.append(
            f"| {r['kind']} | {r['rows']:,} | {r['cells']} | {r['prepare_s']:.1f} | "
            f"{r['build_s']:.1f} | {r['compile_s']:.1f} | {r['sampling_s']:.1f} | "
            f"{r['build_s'] + r['compile_s'] + r['sampling_s']:.1f} | {r['readout_s']:.1f} | {r['total_s']:.1f} (× {r['total_s'] / base['total_s']:.1f})"
            f" | {r['process_s']:.1f} | {r['divergences']} | {r['max_r_hat']:.3f} | "
            f"{r['min_ess_bulk']:.0f} | {pb} |")
    lines += ["", "Re-run: `.venv/bin/python benchmarks/formula.py --out benchmarks/formula.md"
              + ("" if args.resolution == "auto" else f" --resolution {args.resolution}") + "`",
              "", "## Machine", "", machine()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
