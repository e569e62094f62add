"""Is ``bc.project`` right? Laplace refits against NUTS refits, and calibration of P(decision).

Part 1, **Laplace vs NUTS refits**: for a 2-arm experiment fitted with NUTS today, simulated
futures are read at two future dates twice, once refitted with the Laplace approximation (the
projection's default) and once with NUTS (4 × 1000 draws), on the same simulated data. Reported:
the differences in P(treatment better) and in the smaller expected loss, and how often the two
reach the same decision. Two settings: a well-identified one (lag mean 5 days, 14 days of
enrollment) and a weakly identified one (lag mean 12 days, 7 days of enrollment).

Part 2, **calibration**: experiments simulated once over 14 days of enrollment
(``bc.simulate``, independently of the projection's own simulator); as of day 7 the data are
fitted with NUTS and projected 3 and 7 days ahead at the true enrollment (Laplace refits); the
data as of days 10 and 14 are fitted with NUTS and read with the same rule. The predicted
P(decision by day d) is compared with the share of experiments that decided, overall and in
bins of the prediction, with Wilson 95% intervals. Two studies differ in how far apart the
arms' true rates are drawn (``--studies``): widely (sd 30% of the rate), as the model's flat
prior on each arm's rate allows, and narrowly (sd 8%), as real lifts are. The projection is a
preposterior under the model's prior, so it is calibrated when the truths are as spread as
that prior says; when they are far closer, the posterior as of day 7 does not shrink a noisy
early difference enough, and the projection over-predicts decisions. A third study fits the
narrow truths with an informed prior on the lift (the arm as a fixed effect on logit(eventual
rate) with prior sd 0.08, what a team would learn from its past experiments). A fourth
(``0.3/0.3/informed``) draws the truths from informed priors on the control rate, the arm
effect and the lag shape and fits them with the same priors: the setting in which a
preposterior must be calibrated.

    .venv/bin/python validation/projection.py --futures 20 --experiments 50 --n-sims 100 \
        --studies 0.3 0.08/0.08 --out validation/projection.md
    .venv/bin/python validation/projection.py --experiments 200 --n-sims 100 \
        --studies 0.3/0.3/informed --add-studies --out validation/projection.md
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
from scipy.special import expit

import bayesconv as bc
from bayesconv.readout.projection import DecisionRefitter, SimulatedFuture, TimeRecorder
from bayesconv.replays import as_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration import wilson  # noqa: E402

THRESHOLD = 0.002
#: Part 2's truths: lag means (days) and units per arm and day, drawn uniformly; large enough
#: that many experiments reach a decision within a week, so that P(decision) is spread out.
LAG_MEANS = (2.0, 6.0)
UNITS_PER_DAY = (300, 1500)
START = pd.Timestamp("2024-01-01")


def _prepare(events):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bc.prepare(events, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort", resolution="auto")


#: The "informed" studies' priors on the control's logit(eventual rate) and on log(lag shape),
#: what a team would learn from past experiments; their truths are drawn from these.
INFORMED = {"logit_rate": {"mu": -2.0, "sigma": 0.5},
            "log_lag_shape": {"mu": float(np.log(1.4)), "sigma": 0.25}}


def _fit(data, seed, prior_sd=None, informed=False):
    """NUTS at the defaults; with ``prior_sd``, the arm effect on logit(eventual rate) as a
    fixed effect of prior sd ``prior_sd`` (an informed prior on the lift); with ``informed``,
    the priors :data:`INFORMED` on the control's rate and the lag shape too."""
    kw = {} if prior_sd is None else {
        "formula": {"eventual_rate": "cohort"},
        "priors": {"logit_rate_effect": {"mu": 0.0, "sigma": prior_sd},
                   **(INFORMED if informed else {})}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bc.ConversionModel(data, **kw).fit(random_seed=seed, progressbar=False)
    return res, any(w.category.__name__ == "ConvergenceWarning" for w in caught)


def agreement(setting: str, lag_mean: float, enrollment: int, n_futures: int, seed: int):
    """Part 1 for one setting: rows per (future, day) with both refits' readings."""
    rng = np.random.default_rng(seed)
    n = 1000 * enrollment
    ev = bc.simulate(n_units=[n, n], eventual_rate=[0.10, 0.11], lag_loc=lag_mean,
                     lag_shape=1.5, enrollment=enrollment, followup=0.5, resolution="D",
                     random_seed=seed)
    data = _prepare(ev)
    res, _ = _fit(data, seed)
    family = res.family
    from bayesconv.posterior.cells import row_parameters

    rate, lag = row_parameters(res.posterior, res.spec, family, data, data.cells)
    rate = rate.values.reshape(-1, 2)
    lag = [x.values.reshape(-1, 2) for x in lag]
    readers = {m: DecisionRefitter(res.spec, list(data.cohorts), "eventual", None, THRESHOLD, None,
                            True, 0.94, m, 4000, rng) for m in ("laplace", "nuts")}
    rows = []
    for f in range(n_futures):
        j = rng.integers(rate.shape[0])
        fut = SimulatedFuture(data, rate[j], [x[j] for x in lag], family, np.full(2, n / enrollment),
                      14.0, 1.0, rng, TimeRecorder(data))
        for day in (3.0, 14.0):
            d = fut.at(day)
            out = {m: r.read(d) for m, r in readers.items()}
            rows.append({"setting": setting, "future": f, "day": day,
                         **{f"{k}_{m}": out[m][k] for m in out
                            for k in ("action", "prob_better", "loss_min")}})
    return pd.DataFrame(rows), readers["laplace"].fallbacks, readers["nuts"].warned


def calibration(n_experiments: int, n_sims: int, seed: int, lift_sd: float,
                prior_sd: float | None = None, informed: bool = False) -> pd.DataFrame:
    """Part 2: rows per (experiment, day ahead) with the predicted P and what happened (the
    same truths for a given ``lift_sd`` whatever ``prior_sd``). With ``informed``, the truths
    are draws from the fitted priors where those are informed: logit(control rate) and
    log(lag shape) from :data:`INFORMED`, the arm effect on logit(rate) Normal(0, ``lift_sd``)."""
    rng = np.random.default_rng([seed, int(round(lift_sd * 1000)), int(informed)])
    rows = []
    for e in range(n_experiments):
        t0 = time.perf_counter()
        if informed:
            logit_a = rng.normal(INFORMED["logit_rate"]["mu"], INFORMED["logit_rate"]["sigma"])
            c_a, c_b = expit(logit_a), expit(logit_a + rng.normal(0, lift_sd))
            lag_mean = rng.uniform(*LAG_MEANS)
            shape = np.exp(rng.normal(INFORMED["log_lag_shape"]["mu"],
                                      INFORMED["log_lag_shape"]["sigma"]))
        else:
            c_a = rng.uniform(0.05, 0.25)
            c_b = min(c_a * (1 + rng.normal(0, lift_sd)), 0.99)
            lag_mean, shape = rng.uniform(*LAG_MEANS), rng.uniform(1, 2)
        per_day = int(rng.integers(*UNITS_PER_DAY))
        ev = bc.simulate(n_units=[14 * per_day] * 2, eventual_rate=[c_a, c_b],
                         lag_loc=lag_mean, lag_shape=shape, enrollment=14, followup=0,
                         start=START, resolution="D",
                         random_seed=[seed, e]).drop(columns="observed_until")
        known = {d: _prepare(as_of(ev, START + pd.Timedelta(d, unit="D"), created="created",
                                   converted="converted")) for d in (7, 10, 14)}
        today, warned = _fit(known[7], e, prior_sd, informed)
        proj = bc.project(today, "B", "A", days=[3, 7], threshold=THRESHOLD, n_sims=n_sims,
                          new_units_per_day=per_day, random_seed=e)
        f = proj.to_frame().set_index("day")
        for ahead, day in ((3.0, 10), (7.0, 14)):
            later, warned_later = _fit(known[day], e, prior_sd, informed)
            action = bc.compare(later, "B", "A").decision(THRESHOLD).action
            rows.append({"lift_sd": lift_sd, "prior_sd": prior_sd, "informed": informed,
                         "experiment": e,
                         "days_ahead": ahead,
                         "c_a": c_a, "c_b": c_b,
                         "lag_mean": lag_mean, "units_per_day": per_day,
                         "decided_today": proj.decision.action != "wait",
                         "predicted": f.loc[ahead, "prob_decision"],
                         "decided": action != "wait", "action": action,
                         "warned": warned or warned_later,
                         "fallbacks": proj.settings["nuts_fallbacks"]})
        print(f"  lift sd {lift_sd:g}, prior sd {prior_sd}, experiment {e + 1}/"
              f"{n_experiments}: P(decision by "
              f"+3, +7) = "
              f"{f['prob_decision'].round(2).tolist()}, decided "
              f"{[r['decided'] for r in rows[-2:]]} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    return pd.DataFrame(rows)


def _pct(k, n):
    lo, hi = wilson(int(k), int(n))
    return f"{k / n:.0%} ({lo:.0%}–{hi:.0%})" if n else "—"


def report(agree: pd.DataFrame, extra: dict, calib: pd.DataFrame, args, seconds,
           commands: list[str]) -> str:
    lines = ["# Projections of the decision: Laplace vs NUTS refits, and calibration", "",
             "Generated by `validation/projection.py`. Re-run with", "", "```bash",
             *commands, "```", "", f"Expected-loss rule on the eventual rate, threshold "
             f"{THRESHOLD * 100:g} percentage points. {seconds / 60:.0f} min on 2 cores.", "",
             "## 1. Laplace refits against NUTS refits on the same simulated futures", "",
             "| setting | day | data sets | same decision | mean abs. diff. P(better) | "
             "max abs. diff. P(better) | median loss (Laplace / NUTS, pp) | "
             "P(decision) Laplace / NUTS |",
             "|---|---|---|---|---|---|---|---|"]
    for (setting, day), g in agree.groupby(["setting", "day"], sort=False):
        dp = (g["prob_better_laplace"] - g["prob_better_nuts"]).abs()
        same = (g["action_laplace"] == g["action_nuts"]).sum()
        dec_l = (g["action_laplace"] != "wait").mean()
        dec_n = (g["action_nuts"] != "wait").mean()
        lines.append(f"| {setting} | +{day:g} d | {len(g)} | {_pct(same, len(g))} | "
                     f"{dp.mean():.3f} | {dp.max():.3f} | "
                     f"{g['loss_min_laplace'].median() * 100:.3f} / "
                     f"{g['loss_min_nuts'].median() * 100:.3f} | {dec_l:.2f} / {dec_n:.2f} |")
    lines += ["", "Laplace refits without a proper mode (refitted with NUTS instead), and NUTS "
              "refits with a ConvergenceWarning: " + "; ".join(
                  f"{k}: {v[0]} fallbacks, {v[1]} warned" for k, v in extra.items()) + ".", "",
              "## 2. Calibration of the predicted P(decision)", "",
              "Experiments as of day 7 of a 14-day enrollment; truths: control rate uniform on "
              "[0.05, 0.25], relative lift Normal(0, sd) for each sd below, gamma lag mean "
              f"uniform on [{LAG_MEANS[0]:g}, {LAG_MEANS[1]:g}] days, shape on [1, 2], "
              f"{UNITS_PER_DAY[0]:,}–{UNITS_PER_DAY[1]:,} units per arm and day; "
              f"{args.n_sims} simulated futures per projection (Laplace refits); the data as "
              "of day 7, 10 and 14 fitted with NUTS at the defaults.", ""]
    bins = [0, 0.2, 0.4, 0.6, 0.8, 1.0001]
    for (sd, prior, inf), cal in calib.groupby(["lift_sd", "prior_sd", "informed"], sort=False,
                                               dropna=False):
        fitted = "the default model" if pd.isna(prior) else (
            f"`formula={{'eventual_rate': 'cohort'}}` with the arm effect's prior "
            f"`logit_rate_effect` Normal(0, {prior:g})")
        truths = f"Relative lift Normal(0, {sd:g})"
        if inf:
            fitted += (", `logit_rate` Normal(−2, 0.5) and `log_lag_shape` Normal(log 1.4, "
                       "0.25)")
            truths = (f"Truths from the fitted priors (logit control rate Normal(−2, 0.5), arm "
                      f"effect on it Normal(0, {sd:g}), log lag shape Normal(log 1.4, 0.25), "
                      "lag mean as above)")
        lines += [f"### {truths}, fitted with {fitted}: "
                  f"{cal['experiment'].nunique()} experiments", "",
                  "Decided today (so trivially predicted): "
                  f"{int(cal.drop_duplicates('experiment')['decided_today'].sum())}.", "",
                  "| days ahead | experiments | mean predicted P(decision) | share decided "
                  "(Wilson 95%) | inside | NUTS fits warned |", "|---|---|---|---|---|---|"]
        for ahead, g in cal.groupby("days_ahead"):
            lo, hi = wilson(int(g["decided"].sum()), len(g))
            inside = "yes" if lo <= g["predicted"].mean() <= hi else "**no**"
            lines.append(f"| +{ahead:g} | {len(g)} | {g['predicted'].mean():.2f} | "
                         f"{_pct(g['decided'].sum(), len(g))} | {inside} | "
                         f"{int(g['warned'].sum())} |")
        lines += ["", "By bins of the prediction (both horizons pooled):", "",
                  "| predicted P(decision) | cases | mean predicted | share decided (Wilson "
                  "95%) | inside |", "|---|---|---|---|---|"]
        cal = cal.assign(bin=pd.cut(cal["predicted"], bins, right=False))
        for b, g in cal.groupby("bin", observed=True):
            lo, hi = wilson(int(g["decided"].sum()), len(g))
            inside = "yes" if lo <= g["predicted"].mean() <= hi else "**no**"
            lines.append(f"| [{b.left:.1f}, {min(b.right, 1):.1f}) | {len(g)} | "
                         f"{g['predicted'].mean():.2f} | {_pct(g['decided'].sum(), len(g))} | "
                         f"{inside} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _study(text: str) -> tuple:
    """``LIFT_SD[/PRIOR_SD[/informed]]`` as (lift sd, prior sd or None, informed)."""
    parts = text.split("/")
    if len(parts) > 3 or (len(parts) == 3 and parts[2] != "informed"):
        raise SystemExit(f"--studies: {text!r} is not LIFT_SD[/PRIOR_SD[/informed]]")
    return (float(parts[0]), float(parts[1]) if len(parts) > 1 else None, len(parts) == 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--futures", type=int, default=25)
    ap.add_argument("--experiments", type=int, default=60)
    ap.add_argument("--n-sims", type=int, default=100)
    ap.add_argument("--studies", nargs="+", default=["0.3", "0.08/0.08", "0.3/0.3/informed"],
                    help="part 2's studies: LIFT_SD (sd of the truths' relative lift, the "
                         "default model), LIFT_SD/PRIOR_SD/informed (truths drawn from "
                         "informed priors on the control rate, the arm effect and the lag "
                         "shape, and fitted with them) or LIFT_SD/PRIOR_SD (fitted with an "
                         "informed prior "
                         "of sd PRIOR_SD on the arm effect on logit(eventual rate))")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("validation/projection.md"))
    ap.add_argument("--add-studies", action="store_true",
                    help="keep part 1 and the other studies of the earlier run (its CSVs and "
                         ".json beside --out) and run only --studies, replacing any of theirs")
    args = ap.parse_args()
    t0 = time.perf_counter()
    studies = [_study(x) for x in args.studies]
    meta_path = args.out.with_suffix(".json")
    calib_path = args.out.with_suffix(".calibration.csv")
    if args.add_studies:
        meta = json.loads(meta_path.read_text())
        agree = pd.read_csv(args.out.with_suffix(".agreement.csv"))
        extra, seconds = meta["extra"], meta["seconds"]
        commands = meta.get("commands", [])
        old = pd.read_csv(calib_path)
        if "informed" not in old:
            old["informed"] = False
        of_row = [(sd, None if pd.isna(prior) else prior, bool(inf)) for sd, prior, inf in zip(
            old["lift_sd"], old["prior_sd"], old["informed"], strict=True)]
        redo = np.array([key in studies for key in of_row], dtype=bool)
        kept = old[~redo]
    else:
        kept, extra, seconds, commands = None, {}, 0.0, []
        parts = []
        for setting, lag_mean, enrollment in (
                ("well identified (lag mean 5 d, 14 d enrolled)", 5.0, 14),
                ("weakly identified (lag mean 12 d, 7 d enrolled)", 12.0, 7)):
            print(f"part 1: {setting}", flush=True)
            table, fallbacks, warned = agreement(setting, lag_mean, enrollment, args.futures,
                                                 args.seed)
            parts.append(table)
            extra[setting.split(" (")[0]] = (fallbacks, warned)
        agree = pd.concat(parts, ignore_index=True)
    print("part 2: calibration", flush=True)
    calib = pd.concat([kept, *(calibration(args.experiments, args.n_sims, args.seed, *key)
                               for key in studies)], ignore_index=True)
    seconds += time.perf_counter() - t0
    commands.append(" ".join([".venv/bin/python validation/projection.py", *sys.argv[1:]]))
    text = report(agree, extra, calib, args, seconds, commands)
    args.out.write_text(text)
    agree.to_csv(args.out.with_suffix(".agreement.csv"), index=False)
    calib.to_csv(calib_path, index=False)
    meta_path.write_text(json.dumps({"seconds": seconds, "extra": extra,
                                     "commands": commands}) + "\n")
    print(text)


if __name__ == "__main__":
    main()
