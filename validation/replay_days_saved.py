"""How many days earlier does the model decide than a matured fixed-window comparison?

Replays a simulated experiment with a real lift as of dates every 5 days and prints the table
and the first date each method reached P(treatment better) >= 0.95.

    .venv/bin/python validation/replay_days_saved.py [--seed 7]
"""

import argparse

import pandas as pd

import bayesconv as bc
from bayesconv.replays import decision_dates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    events = bc.simulate(n_units=[3000, 3000], eventual_rate=[0.30, 0.36], lag_loc=10.0,
                         lag_shape=2.0, cohorts=["A", "B"], enrollment=60, followup=30,
                         random_seed=args.seed, resolution="D")
    dates = pd.date_range("2024-01-11", periods=16, freq="5D")
    table = bc.replay(events, dates, created="created", converted="converted", cohort="cohort",
                      observed_until="observed_until", treatment="B", control="A", horizon=14,
                      fit_kwargs={"draws": 500, "tune": 500, "chains": 4}, progress=True)
    cols = ["as_of", "units_treatment", "prob_better", "prob_better_horizon",
            "prob_better_window", "prob_better_naive", "max_r_hat", "divergences"]
    print(table[cols].round(3).to_string(index=False))
    first = decision_dates(table)
    for col, date in first.items():
        print(f"{col:>22}: {date.date() if pd.notna(date) else 'never'}")
    win = first["prob_better_window"]
    for col in ("prob_better", "prob_better_horizon"):
        if pd.notna(first[col]) and pd.notna(win):
            print(f"{col} decided {(win - first[col]).days} days before the matured window")


if __name__ == "__main__":
    main()
