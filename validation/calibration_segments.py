"""Do the per-segment treatment effects of a formula model cover the truth? (issue 14)

Simulates seeded 2-arm experiments with a segment factor of 3–6 levels and a numeric
covariate, fits each with

    eventual_rate = cohort + score + (cohort | segment),   lag_loc = cohort

(gamma lag, nutpie, 4 chains × 500 draws after 500 tuning steps, the defaults otherwise) and
counts how often the central 50% and 90% intervals of each segment's treatment effect on the
eventual rate (``compare(..., by="segment")``: B − A on the segment's own mix of the covariate)
contain the true effect. Truths per data set (independent draws, seeded):

* segments: uniform integer 3 to 6; segment baselines on logit(c) ~ Normal(logit 0.2, 0.5);
* arm effect on logit(c): overall ~ Normal(0, 0.3), per segment + Normal(0, τ), τ ~ U(0, 0.4);
* covariate ``score`` ∈ {0, 1, 2} per unit (uniform), effect on logit(c) ~ Normal(0, 0.3);
* units per cell (arm × segment × score) log-uniform on [150, 1500]; gamma lag mean
  log-uniform on [3, 15] days (B's ×exp(Normal(0, 0.1))), shape log-uniform on [1, 3];
  enrollment 28 days, follow-up uniform integer 21 to 60 days; timestamps floored to the day.

The true segment effect is Σ_s w_s (c_B,s − c_A,s) over the segment's score levels s, w_s the
share of the compared arms' units at s (the readout's definition). Segments of one data set
share a fit, so they are not independent; the Wilson interval counts segments and is somewhat
too narrow.

    .venv/bin/python validation/calibration_segments.py --n-datasets 30 \
        --out validation/calibration_segments.md
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

import bayesconv as bc

FORMULA = {"eventual_rate": "cohort + score + (cohort | segment)", "lag_loc": "cohort"}
LEVELS = (0.5, 0.9)


def simulate(index: int, seed: int):
    rng = np.random.default_rng([seed, index])
    k = int(rng.integers(3, 7))
    base = rng.normal(logit(0.2), 0.5, k)
    tau = rng.uniform(0, 0.4)
    arm = rng.normal(0, 0.3) + rng.normal(0, tau, k)
    beta = rng.normal(0, 0.3)
    mean = np.exp(rng.uniform(np.log(3), np.log(15)))
    mean_b = mean * np.exp(rng.normal(0, 0.1))
    shape = np.exp(rng.uniform(0, np.log(3)))
    followup = int(rng.integers(21, 61))
    rows = []
    for a, name in enumerate(("A", "B")):
        for j in range(k):
            for s in range(3):
                rows.append({"cohort": name, "segment": f"s{j}", "score": s,
                             "n_units": int(np.exp(rng.uniform(np.log(150), np.log(1500)))),
                             "eventual_rate": float(expit(base[j] + a * arm[j] + beta * s)),
                             "lag_loc": mean_b if a else mean, "lag_shape": shape})
    cells = pd.DataFrame(rows)
    ev = bc.simulate(cells=cells, enrollment=28, followup=followup, resolution="D",
                     random_seed=int(rng.integers(2**31)))
    return ev, cells, {"segments": k, "tau": tau, "followup": followup, "lag_mean": mean}


def true_effects(cells: pd.DataFrame) -> pd.Series:
    out = {}
    for seg, sub in cells.groupby("segment"):
        wide = sub.pivot(index="score", columns="cohort", values=["eventual_rate", "n_units"])
        w = wide["n_units"].sum(axis=1)
        d = wide["eventual_rate"]["B"] - wide["eventual_rate"]["A"]
        out[seg] = float((d * w).sum() / w.sum())
    return pd.Series(out)


def one(index: int, args) -> list[dict]:
    ev, cells, info = simulate(index, args.seed)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort",
                      covariates=["segment", "score"])
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bc.ConversionModel(data, formula=FORMULA).fit(
            draws=args.draws, tune=args.tune, chains=args.chains, random_seed=index,
            progressbar=False)
    seconds = time.perf_counter() - t0
    diag = res.diagnostics()
    ro = bc.compare(res, treatment="B", control="A", by="segment")
    truth = true_effects(cells)
    rows = []
    for seg, value in truth.items():
        draws = ro.segments[seg].draws["diff"].sel(metric="eventual", treatment="B").values
        row = {"dataset": index, "segment": seg, "truth": value, "mean": float(draws.mean()),
               **info, "divergences": diag["divergences"], "max_r_hat": diag["max_r_hat"],
               "convergence_warnings": sum(issubclass(w.category, bc.ConvergenceWarning)
                                           for w in caught), "seconds": seconds}
        for level in LEVELS:
            lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
            row[f"covered_{int(level * 100)}"] = bool(lo <= value <= hi)
        rows.append(row)
    return rows


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def report(df: pd.DataFrame, args, runtime: float) -> str:
    lines = ["# Calibration of per-segment treatment effects (formula models)", "",
             f"Run on {date.today()}: {df['dataset'].nunique()} data sets, {len(df)} segment "
             f"effects; {args.chains} chains × {args.draws} draws after {args.tune} tuning "
             f"steps; {runtime / 60:.0f} min on this machine.",
             "Re-run: `.venv/bin/python validation/calibration_segments.py --n-datasets "
             f"{df['dataset'].nunique()} --out validation/calibration_segments.md` (model and "
             "truths: the script's docstring; the report is rewritten after every data set).",
             "",
             "| segments | 50% interval covers | 90% interval covers |", "|---|---|---|"]
    clean = df[(df["divergences"] == 0) & (df["max_r_hat"] <= 1.01)]
    for name, sub in (("all", df), ("fits without divergences, R-hat ≤ 1.01", clean)):
        cells = []
        for level in LEVELS:
            col = f"covered_{int(level * 100)}"
            k, n = int(sub[col].sum()), len(sub)
            lo, hi = wilson(k, n) if n else (np.nan, np.nan)
            cells.append(f"{k / n:.0%} ({lo:.0%}–{hi:.0%})" if n else "—")
        lines.append(f"| {name} ({len(sub)}) | {cells[0]} | {cells[1]} |")
    per = df.drop_duplicates("dataset")
    lines += ["", f"Wilson 95% intervals in parentheses. Fits with a divergence: "
              f"{int((per['divergences'] > 0).sum())} of {len(per)}; with R-hat > 1.01: "
              f"{int((per['max_r_hat'] > 1.01).sum())}; median fit time "
              f"{per['seconds'].median():.0f} s (including compile).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-datasets", type=int, default=30)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for i in range(args.n_datasets):
        rows += one(i, args)
        df = pd.DataFrame(rows)
        print(f"data set {i + 1}/{args.n_datasets}: 90% coverage so far "
              f"{df['covered_90'].mean():.0%} of {len(df)}", flush=True)
        text = report(df, args, time.perf_counter() - t0)
        if args.out:  # after every data set, so that a stopped run leaves a true report
            args.out.write_text(text, encoding="utf-8")
            df.to_csv(args.out.with_suffix(".csv"), index=False)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
