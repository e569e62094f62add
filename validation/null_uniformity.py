"""Is P(treatment better) uniform across experiments where the arms do not differ?

Under a true null (both arms share the eventual conversion rate), a calibrated readout gives a
posterior probability P(treatment better) that is roughly Uniform(0, 1) across repeated
experiments: with weak priors and many units the posterior of the difference is close to
normal around the estimate, so P(diff > 0 | data) = Φ(estimate / se), and Φ of a standard normal
is uniform (it is one minus a one-sided p-value). Piling up near 0 and 1 means over-confident
readouts (too many "wins" when nothing changed); piling up near 0.5 means under-confident ones
(strong priors shrink the difference).

Scenarios

* ``null``: same eventual rate and same lag distribution in both arms;
* ``faster``: same eventual rate, but the treatment converts three times faster, read out
  early. The eventual rate of the slow arm is an extrapolation, so this checks that the
  readout of the *eventual* rate does not lean towards the faster arm.

Timestamp resolution (``--resolution``): by default the simulated log stores dates only
(``"D"``), as many event logs do. ``prepare`` then sees creation dates floored to midnight and
an observation date at midnight, so every unit still waiting looks on average half a day older
than it is, while conversion durations stay unbiased. Both arms of the ``null`` scenario are
affected alike, but in ``faster`` the slow arm's eventual rate (an extrapolation) comes out a
little low, which tilts P(faster arm better) upwards; ``--resolution exact`` removes the effect.

Each repeat simulates a seeded two-arm experiment, fits it with NUTS (nutpie), and calls
:func:`bayesconv.readout.compare`. Prints a histogram table of P(treatment better), the share of
"decisive" readouts (P < 0.05 or > 0.95; 10% expected), and a Kolmogorov–Smirnov test against
Uniform(0, 1). The readout's P is a share of finitely many draws, so it is slightly discrete;
with hundreds of draws that does not matter for the KS test at these sample sizes.

Usage::

    .venv/bin/python validation/null_uniformity.py --repeats 60
    .venv/bin/python validation/null_uniformity.py --repeats 40 --scenario faster
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import bayesconv as bc
from bayesconv.readout import compare

SCENARIOS = {
    # eventual rates, lag means (days), enrollment, follow-up (days)
    "null": {"rates": [0.3, 0.3], "locs": [10.0, 10.0], "enrollment": 30.0, "followup": 20.0},
    "faster": {"rates": [0.3, 0.3], "locs": [15.0, 5.0], "enrollment": 20.0, "followup": 10.0},
}


def one_experiment(seed: int, args) -> tuple[float, list[str]]:
    """P(treatment better) on the eventual rate for one seeded experiment, and any warnings."""
    sc = SCENARIOS[args.scenario]
    exact = args.resolution == "exact"
    ev = bc.simulate(n_units=[args.n_units] * 2, eventual_rate=sc["rates"], lag_loc=sc["locs"],
                     lag_shape=2.0, enrollment=sc["enrollment"], followup=sc["followup"],
                     resolution=None if exact else args.resolution, random_seed=seed,
                     cohorts=["A", "B"])
    if exact:
        # durations rounded to the nearest 0.1 day: unbiased, and they still aggregate
        end = ev["converted"].fillna(ev["observed_until"])
        days = (end - ev["created"]).dt.total_seconds() / 86400.0
        table = pd.DataFrame({"cohort": ev["cohort"], "duration": np.round(days, 1),
                              "event": ev["converted"].notna().astype(int)})
        data = bc.prepare(table, duration="duration", event="event", cohort="cohort")
    else:
        data = bc.prepare(ev, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort")
    # two arms -> no pooling, where the parametrization plays no part; fixing it lets data sets
    # with the same row layout reuse the compiled model
    model = bc.ConversionModel(data, parametrization="centered")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bc.ConvergenceWarning)
        result = model.fit(draws=args.draws, tune=args.tune, chains=args.chains,
                           random_seed=seed, progressbar=False)
    problems = [str(w.message) for w in caught if issubclass(w.category, bc.ConvergenceWarning)]
    row = compare(result, "B", "A").to_frame().iloc[0]
    return float(row["prob_better"]), problems


def histogram_table(p: np.ndarray, bins: int) -> str:
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(p, bins=edges)
    expected = len(p) / bins
    lines = [f"{'P(treatment better)':>20}  {'count':>5}  {'expected':>8}  histogram"]
    for lo, hi, k in zip(edges[:-1], edges[1:], counts, strict=True):
        lines.append(f"{f'[{lo:.2f}, {hi:.2f})':>20}  {k:>5d}  {expected:>8.1f}  {'#' * k}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=60, help="number of experiments (60)")
    ap.add_argument("--n-units", type=int, default=1500, help="units per arm (1500)")
    ap.add_argument("--draws", type=int, default=300, help="draws per chain (300)")
    ap.add_argument("--tune", type=int, default=300, help="tuning steps per chain (300)")
    ap.add_argument("--chains", type=int, default=4, help="chains (4)")
    ap.add_argument("--seed", type=int, default=1000, help="seed of the first experiment")
    ap.add_argument("--bins", type=int, default=10, help="histogram bins (10)")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="null")
    ap.add_argument("--resolution", default="D",
                    help="timestamp resolution of the simulated event log: a pandas frequency "
                         "such as 'D' (default: dates only, as daily logs store them) or "
                         "'exact' (durations to the nearest 0.1 day)")
    args = ap.parse_args(argv)
    if args.repeats < 2:
        ap.error("--repeats must be at least 2")

    sc = SCENARIOS[args.scenario]
    print(f"scenario {args.scenario!r}: eventual rates {sc['rates']}, gamma lag means "
          f"{sc['locs']} days (shape 2), enrollment {sc['enrollment']:g} + follow-up "
          f"{sc['followup']:g} days, {args.n_units} units per arm; {args.chains} chains x "
          f"{args.draws} draws; timestamps {args.resolution!r}; seeds "
          f"{args.seed}..{args.seed + args.repeats - 1}")
    t0 = time.perf_counter()
    probs, flagged = [], 0
    for i in range(args.repeats):
        p, problems = one_experiment(args.seed + i, args)
        probs.append(p)
        flagged += bool(problems)
        note = f"  (warned: {', '.join(_kind(m) for m in problems)})" if problems else ""
        print(f"  repeat {i + 1:>3}/{args.repeats}: P(B better) = {p:.3f}   "
              f"[{time.perf_counter() - t0:6.1f} s]{note}", flush=True)
    p = np.asarray(probs)
    ks = stats.kstest(p, "uniform")
    decisive = np.mean((p < 0.05) | (p > 0.95))
    print()
    print(histogram_table(p, args.bins))
    print()
    print(f"mean P = {p.mean():.3f} (0.5 expected), sd = {p.std(ddof=1):.3f} "
          f"(uniform: {1 / np.sqrt(12):.3f})")
    print(f"decisive readouts (P < 0.05 or > 0.95): {decisive:.1%} (10% expected; "
          f"binomial 95% range {_binom_range(len(p), 0.1)})")
    print(f"Kolmogorov-Smirnov vs Uniform(0, 1): D = {ks.statistic:.3f}, p-value = "
          f"{ks.pvalue:.3f}")
    print(f"experiments with convergence warnings: {flagged} of {len(p)}")
    print(f"total time {time.perf_counter() - t0:.0f} s")


def _kind(message: str) -> str:
    for key in ("R-hat", "effective sample size", "divergence"):
        if key in message:
            return "low ESS" if key == "effective sample size" else key
    return message[:40]


def _binom_range(n: int, q: float) -> str:
    lo, hi = stats.binom(n, q).ppf([0.025, 0.975])
    return f"{lo / n:.0%} to {hi / n:.0%}"


if __name__ == "__main__":
    main()
