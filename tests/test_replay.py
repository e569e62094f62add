"""Replaying an experiment as of earlier dates."""

import warnings

import matplotlib
import pandas as pd
import pytest

import bayesconv as bc
from bayesconv.replay import as_of, decision_dates, plot_replay, replay

matplotlib.use("Agg")


def test_as_of_recensors_units_and_conversions():
    ev = pd.DataFrame({
        "created": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-20"]),
        "converted": pd.to_datetime(["2024-01-03", "2024-01-15", None]),
        "arm": ["A", "B", "A"]}, index=[7, 8, 9])
    known = as_of(ev, "2024-01-10", created="created", converted="converted")
    assert known.index.tolist() == [7, 8]  # unit 9 did not exist yet
    assert known.loc[7, "converted"] == pd.Timestamp("2024-01-03")
    assert pd.isna(known.loc[8, "converted"])  # converted later: not known on the 10th
    assert (known["observed_until"] == pd.Timestamp("2024-01-10")).all()
    assert ev.loc[8, "converted"] == pd.Timestamp("2024-01-15")  # input untouched


def test_replay_table_and_plot():
    ev = bc.simulate(n_units=[1500, 1500], eventual_rate=[0.3, 0.4], lag_loc=8.0,
                     lag_shape=2.0, enrollment=30, followup=20, random_seed=3,
                     resolution="D")
    dates = pd.to_datetime(["2024-01-15", "2024-02-01", "2024-02-20"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)
        table = replay(ev, dates, created="created", converted="converted", cohort="cohort",
                       treatment="B", control="A", horizon=7,
                       fit_kwargs=dict(draws=300, tune=300, chains=2))
    assert table["as_of"].tolist() == list(dates)
    assert table["units_treatment"].is_monotonic_increasing
    # the matured 7-day window only counts units at least 7 days old
    first = as_of(ev, dates[0], created="created", converted="converted")
    age = (dates[0] - first["created"]).dt.days
    assert table.loc[0, "matured_treatment"] == int(((first["cohort"] == "B") & (age >= 7)).sum())
    for col in ("prob_better", "prob_better_horizon", "prob_better_window",
                "prob_better_naive"):
        assert table[col].between(0, 1).all()
    # a 33% lift with 1,500 units per arm: every method is sure by the last date
    assert table["prob_better"].iloc[-1] > 0.95
    assert decision_dates(table)["prob_better"] <= dates[-1]
    ax = plot_replay(table)
    assert len(ax.get_lines()) >= 4


def test_replay_errors():
    ev = bc.simulate(n_units=[10, 10], eventual_rate=0.5, lag_loc=3.0, random_seed=1)
    kw = dict(created="created", converted="converted", cohort="cohort", control="A")
    with pytest.raises(ValueError, match="treatment 'Z' is not an arm.*arms: \\['A', 'B'\\]"):
        replay(ev, ["2024-02-01"], treatment="Z", **kw)
    with pytest.raises(ValueError, match="is not after the first creation date"):
        replay(ev, ["2023-01-01"], treatment="B", **kw)
