"""Operating characteristics of stopping rules under daily peeking, with lagged conversions.

Simulated 2-arm experiments enrol ``--per-day`` units per arm and day for 30 days and are
looked at every day (as of each midnight; timestamps day-floored, as event logs store them).
Three scenarios, ``--n`` experiments each:

* (a) **no difference**: both arms convert eventually at 10%, gamma lag mean 7 days, shape 1.5;
* (b) **faster, not more**: the same eventual rate, the treatment's lag mean 4.2 days (0.6×);
* (c) **a real lift**: the treatment's eventual rate 11% (+10%), lags equal.

Rules, each applied at every look until it first decides:

* ``bayesconv eventual ε=…``: bayesconv's decision rule (:meth:`bayesconv.Readout.decision`
  at its defaults): the expected-loss rule at each threshold of ``--thresholds``, a ship also
  needing a Bayes factor safe under repeated looks (α = 0.05, τ = 10 ε), on the eventual rate;
* ``bayesconv c·F(7) ε=…``: the same on the rate by 7 days;
* ``loss alone …``: the expected-loss rule without the Bayes factor (Stucchio's rule);
* ``P>0.95 eventual`` / ``P>0.95 c·F(7)``: ship when P(treatment better) > 0.95, keep the
  control when it is < 0.05, from the same posteriors;
* ``naive P>0.95``: converted / enrolled so far in each arm, independent Beta(1, 1) posteriors
  (what conjugate A/B tools do), the same 0.95 / 0.05 rule;
* ``matured 7d P>0.95``: only units at least 7 days old, converted within 7 days, the same
  Beta-binomial rule (the fixed conversion window of experimentation platforms);
* ``matured 7d safe``: the matured window read with bayesconv's rule (expected loss and the
  Bayes factor) on its Beta-binomial posteriors: as safe, without the model's use of
  maturing units; the fair comparison for the days saved;
* ``matured 14d P>0.95`` / ``matured 14d safe``: the same with a 14-day window, which holds
  about 90% of the eventual conversions (the 7-day one about 60%): the window a platform would
  choose to read the eventual rate, at the price of deciding nothing before day 15.

The model's posteriors at each look are Laplace fits (:mod:`bayesconv.inference.laplace`, with
NUTS where a fit has no proper mode), the refits ``bc.project`` uses: 30 looks × 3 scenarios ×
``--n`` experiments are too many NUTS fits for a validation run (``validation/projection.md``
compares the two). A decision is **wrong** when it ships the treatment in (a) or (b) (its
eventual rate is not higher), or keeps the control in (c). Reported per scenario and rule: the
share of experiments whose first decision is wrong (Wilson 95% interval), the median day of a
correct first decision, and the share never decided in 30 days.

    .venv/bin/python validation/peeking.py --n 200 --out validation/peeking.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesconv as bc
from bayesconv.data.container import ConversionData
from bayesconv.inference.laplace import as_posterior, laplace_fitter
from bayesconv.posterior.cells import pooled_mix
from bayesconv.readout.compare import marginal_values
from bayesconv.readout.decision import apply_rule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration import wilson  # noqa: E402

DAYS = 30
HORIZON = 7.0
SCENARIOS = {"a": ("no difference", (0.10, 0.10), (7.0, 7.0)),
             "b": ("faster, not more", (0.10, 0.10), (7.0, 4.2)),
             "c": ("+10% eventual rate", (0.10, 0.11), (7.0, 7.0))}
WINDOWS = (7, 14)
BASE_RULES = ("P>0.95 eventual", "P>0.95 c·F(7)", "naive P>0.95",
              *(f"matured {w}d {kind}" for w in WINDOWS for kind in ("P>0.95", "safe")))


def loss_rules(thresholds) -> list[str]:
    """bayesconv's rule (expected loss + a Bayes factor safe under peeking, α = 0.05) and the
    expected-loss rule alone, per metric and threshold."""
    return [f"{kind} {m} ε={t * 100:g}pp" for kind in ("bayesconv", "loss alone")
            for m in ("eventual", "c·F(7)") for t in thresholds]
META = {"layout": "dates", "time_columns": ["created", "converted"], "resolution": 1.0,
        "resolution_read": "interval"}
CELLS = pd.DataFrame({"cohort": pd.Categorical(["A", "B"], categories=["A", "B"])})


def simulate(rates, lag_means, per_day, rng):
    """Unit-level arrays: arm, creation time and conversion time (inf if never), in days."""
    arm = np.repeat([0, 1], per_day * DAYS)
    created = np.concatenate([np.repeat(np.arange(DAYS), per_day) + rng.random(per_day * DAYS)
                              for _ in range(2)])
    c = np.asarray(rates)[arm]
    mean = np.asarray(lag_means)[arm]
    shape = 1.5
    lag = rng.gamma(shape, mean / shape)
    when = np.where(rng.random(arm.size) < c, created + lag, np.inf)
    return arm, created, when


def data_as_of(arm, created, when, day):
    """The ConversionData known at midnight of ``day`` (day-floored times)."""
    known = created < day
    a, c0, w = arm[known], np.floor(created[known]), when[known]
    conv = w < day
    dur = np.where(conv, np.floor(np.where(conv, w, 0)) - c0, day - c0)
    keys = np.stack([a, dur, conv], axis=1)
    uniq, count = np.unique(keys, axis=0, return_counts=True)
    age = day - c0
    fu_keys, fu_count = np.unique(np.stack([a, age], axis=1), axis=0, return_counts=True)
    followup = pd.DataFrame({"cell": fu_keys[:, 0].astype(np.int64), "age": fu_keys[:, 1],
                             "count": fu_count})
    return ConversionData(cell=uniq[:, 0].astype(np.int64), cells=CELLS, duration=uniq[:, 1],
                          lower=uniq[:, 1], converted=uniq[:, 2].astype(bool), count=count,
                          time_unit="D", observed_until=float(day), cohort_name="cohort",
                          followup=followup, meta=META)


def beta_prob_better(k_t, n_t, k_c, n_c, rng, draws=4000):
    if n_t == 0 or n_c == 0:
        return 0.5
    return float(np.mean(rng.beta(1 + k_t, 1 + n_t - k_t, draws)
                         > rng.beta(1 + k_c, 1 + n_c - k_c, draws)))


def matured_safe(k, n, threshold, rng, draws=4000):
    """The matured window read with bayesconv's rule (expected loss and the Bayes factor safe
    under repeated looks) on its Beta-binomial posteriors: the same safety, without the model."""
    if min(n) == 0:
        return None
    x = np.stack([rng.beta(1 + k[a], 1 + n[a] - k[a], draws) for a in (0, 1)])
    chosen, _, _ = apply_rule(x, threshold, alpha=0.05)
    return None if chosen is None else ("keep", "ship")[chosen]


class ModelReader:
    """Laplace (NUTS fallback) fits of the one-factor model, read on both metrics."""

    def __init__(self, rng):
        self.rng = rng
        self.fitter = None
        self.start = None
        self.fallbacks = 0

    def read(self, data, thresholds):
        model = bc.ConversionModel(data)
        self.fitter = laplace_fitter(model)   # per structure, cached
        try:
            draws, mode, info = self.fitter.fit(model, 2000, self.rng, self.start)
        except np.linalg.LinAlgError:
            info = {"converged": False}
        if info["converged"]:
            self.start = mode
            post = as_posterior(model, draws, self.fitter.dims)
        else:
            self.fallbacks += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                post = model.fit(draws=500, chains=4, progressbar=False,
                                 random_seed=int(self.rng.integers(2**31))).posterior
        (_, combos, weights), = pooled_mix(data, ["A", "B"])
        v = marginal_values(post, model.spec, model.family, data, ["A", "B"], combos, weights,
                            ["eventual", "by_horizon"], HORIZON)
        out = {}
        for metric, name in (("eventual", "eventual"), ("by_horizon", "c·F(7)")):
            x = v.sel(metric=metric).transpose("arm", "chain", "draw").values.reshape(2, -1)
            for t in thresholds:
                for kind, alpha in (("bayesconv", 0.05), ("loss alone", None)):
                    chosen, _, _ = apply_rule(x, t, alpha=alpha)
                    out[f"{kind} {name} ε={t * 100:g}pp"] = None if chosen is None \
                        else ("keep", "ship")[chosen]
            p = float(np.mean(x[1] > x[0]))
            out[f"P>0.95 {name}"] = "ship" if p > 0.95 else "keep" if p < 0.05 else None
        return out


def run_experiment(scenario, per_day, thresholds, rng, reader):
    _, rates, lags = SCENARIOS[scenario]
    arm, created, when = simulate(rates, lags, per_day, rng)
    model_rules = [*loss_rules(thresholds), *BASE_RULES[:2]]
    rules = [*model_rules, *BASE_RULES[2:]]
    first = dict.fromkeys(rules)
    for day in range(1, DAYS + 1):
        pending = [r for r in rules if first[r] is None]
        if not pending:
            break
        known = created < day
        k = [int(np.sum(known & (arm == a) & (when < day))) for a in (0, 1)]
        n = [int(np.sum(known & (arm == a))) for a in (0, 1)]
        p = beta_prob_better(k[1], n[1], k[0], n[0], rng)
        naive = "ship" if p > 0.95 else "keep" if p < 0.05 else None
        looks = {"naive P>0.95": naive}
        for w in WINDOWS:
            # units at least w days old, converted within w days of their (floored)
            # creation: every such conversion is observed by now
            mature = known & (day - np.floor(created) >= w)
            km = [int(np.sum(mature & (arm == a) & (when < np.floor(created) + w)))
                  for a in (0, 1)]
            nm = [int(np.sum(mature & (arm == a))) for a in (0, 1)]
            pm = beta_prob_better(km[1], nm[1], km[0], nm[0], rng) if min(nm) > 0 else 0.5
            looks[f"matured {w}d P>0.95"] = "ship" if pm > 0.95 else "keep" if pm < 0.05 \
                else None
            looks[f"matured {w}d safe"] = matured_safe(km, nm, thresholds[0], rng)
        if any(first[r] is None for r in model_rules) and min(k) > 0:
            looks.update(reader.read(data_as_of(arm, created, when, day), thresholds))
        for r in pending:
            if looks.get(r) is not None:
                first[r] = (looks[r], day)
    return first


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (scenario, rule), g in results.groupby(["scenario", "rule"], sort=False):
        wrong_action = "keep" if scenario == "c" else "ship"
        decided = g["action"].notna()
        wrong = (g["action"] == wrong_action)
        correct = decided & ~wrong
        lo, hi = wilson(int(wrong.sum()), len(g))
        # the day by which half of all experiments had decided correctly (inf: never), so
        # that a rule deciding rarely but early by luck does not look fast
        days = np.sort(np.where(correct, g["day"], np.inf))
        rows.append({"scenario": scenario, "rule": rule, "experiments": len(g),
                     "wrong": wrong.mean(), "wrong_lo": lo, "wrong_hi": hi,
                     "correct": correct.mean(),
                     "median_day_correct": float(days[(len(days) - 1) // 2]),
                     "median_day_among_correct": float(g.loc[correct, "day"].median())
                     if correct.any() else np.nan,
                     "never": (~decided).mean()})
    return pd.DataFrame(rows)


def report(summary: pd.DataFrame, args, seconds, fallbacks) -> str:
    lines = ["# Stopping rules under daily peeking, with lagged conversions", "",
             "Generated by `validation/peeking.py`. Re-run with", "", "```bash",
             f".venv/bin/python validation/peeking.py --n {args.n} --per-day {args.per_day} "
             f"--thresholds {' '.join(f'{t:g}' for t in args.thresholds)} --seed {args.seed} "
             f"--out {args.out}", "```", "",
             f"{args.n} experiments per scenario, {args.per_day} units per arm and day for "
             f"{DAYS} days, a look every day; expected-loss thresholds ε of "
             f"{', '.join(f'{t * 100:g}' for t in args.thresholds)} percentage points "
             "(the eventual rate is 10%). Model fits: Laplace, "
             f"{fallbacks} of them refitted with NUTS (no proper mode). "
             f"{seconds / 60:.0f} min on 2 cores.", "",
             "A decision is wrong when it ships the treatment in (a) or (b), or keeps the "
             "control in (c). \"correct\": the first decision is right (in (a) and (b): keep "
             "the control). \"Day by which half decided correctly\": the median over all "
             "experiments of the day of a correct first decision, counting a wrong or no "
             f"decision as never (\"> {DAYS}\": fewer than half decided correctly); \"median "
             "day of a correct decision\": among the experiments decided correctly; days are "
             "days of enrollment.", ""]
    for scenario, (title, rates, lags) in SCENARIOS.items():
        g = summary[summary["scenario"] == scenario]
        lines += [f"## ({scenario}) {title}: eventual rates {rates[0]:.0%} / {rates[1]:.0%}, "
                  f"lag means {lags[0]:g} / {lags[1]:g} days", "",
                  "| rule | wrong first decision (Wilson 95%) | correct | day by which half "
                  "decided correctly | median day of a correct decision | never decided |",
                  "|---|---|---|---|---|---|"]
        for r in g.itertuples():
            day = f"> {DAYS}" if not np.isfinite(r.median_day_correct) \
                else f"{r.median_day_correct:g}"
            among = "—" if np.isnan(r.median_day_among_correct) \
                else f"{r.median_day_among_correct:g}"
            lines.append(f"| {r.rule} | {r.wrong:.1%} ({r.wrong_lo:.1%}–{r.wrong_hi:.1%}) | "
                         f"{r.correct:.0%} | {day} | {among} | {r.never:.0%} |")
        lines.append("")
    c = summary[summary["scenario"] == "c"].set_index("rule")

    def by(rule):
        d = c.loc[rule, "median_day_correct"]
        return f"by day {d:g}" if np.isfinite(d) else f"not by day {DAYS}"

    for rule in loss_rules(args.thresholds)[:len(args.thresholds)]:
        for window in (f"matured {w}d {kind}" for w in WINDOWS for kind in ("safe", "P>0.95")):
            saved = c.loc[window, "median_day_correct"] - c.loc[rule, "median_day_correct"]
            words = f"**{saved:g} days saved**" if np.isfinite(saved) else (
                "**more than "
                f"{DAYS - c.loc[rule, 'median_day_correct']:g} days saved**"
                if np.isfinite(c.loc[rule, "median_day_correct"]) else "no days saved")
            lines.append(f"* In (c), half of the experiments decided correctly {by(rule)} "
                         f"with `{rule}` and {by(window)} with `{window}`: {words}; among "
                         "the experiments each decided correctly, the median day was "
                         f"{c.loc[rule, 'median_day_among_correct']:g} against "
                         f"{c.loc[window, 'median_day_among_correct']:g}.")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--per-day", type=int, default=2000)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.001])
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("validation/peeking.md"))
    ap.add_argument("--from-csv", action="store_true",
                    help="rewrite the report from the results CSV of an earlier run with the "
                         "same settings (its run time and NUTS fallbacks from the .json "
                         "beside it) instead of simulating")
    args = ap.parse_args()
    meta_path = args.out.with_suffix(".json")
    if args.from_csv:
        meta = json.loads(meta_path.read_text())
        results = pd.read_csv(args.out.with_suffix(".csv"))
        text = report(summarise(results), args, meta["seconds"], meta["fallbacks"])
        args.out.write_text(text)
        print(text)
        return
    t0 = time.perf_counter()
    rows = []
    reader = ModelReader(np.random.default_rng([args.seed, 999]))
    for scenario in SCENARIOS:
        for e in range(args.n):
            rng = np.random.default_rng([args.seed, ord(scenario), e])
            first = run_experiment(scenario, args.per_day, args.thresholds, rng, reader)
            for rule, got in first.items():
                rows.append({"scenario": scenario, "experiment": e, "rule": rule,
                             "action": None if got is None else got[0],
                             "day": np.nan if got is None else got[1]})
            if (e + 1) % 20 == 0:
                print(f"  ({scenario}) {e + 1}/{args.n} experiments "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(args.out.with_suffix(".csv"), index=False)
    summary = summarise(results)
    seconds = time.perf_counter() - t0
    meta_path.write_text(json.dumps({"seconds": seconds, "fallbacks": reader.fallbacks}) + "\n")
    text = report(summary, args, seconds, reader.fallbacks)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
