"""Replaying an experiment as of earlier dates."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

import bayesconv as bc
from bayesconv.replays import as_of, decision_dates, plot_replay, replay

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
                       observed_until="observed_until",
                       treatment="B", control="A", horizon=7, resolution="auto",
                       fit_kwargs=dict(draws=300, tune=300, chains=2))
    assert table["as_of"].tolist() == list(dates)
    # day-floored dates: one reading (interval-censored within a day) for every date
    assert table.attrs["resolution"] == 1.0
    assert table["units_treatment"].is_monotonic_increasing
    # the matured 7-day window only counts units at least 7 days old
    first = as_of(ev, dates[0], created="created", converted="converted",
                  observed_until="observed_until")
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
    with pytest.raises(ValueError, match="before any unit is known: the first creation date"):
        replay(ev, ["2023-01-01"], treatment="B", **kw)
    daily = bc.simulate(n_units=[50, 50], eventual_rate=0.5, lag_loc=3.0, random_seed=1,
                        resolution="D")
    first = daily["created"].min()
    with pytest.raises(ValueError, match="recorded to 1 days.*known from"):
        replay(daily, [first + pd.Timedelta(12, unit="h")], treatment="B", **kw)


def test_as_of_with_day_floored_dates_knows_only_the_days_that_have_passed():
    # a stamp 2024-01-10 on day-floored dates is an event during the 10th: as of midnight
    # of the 10th it has not happened (nor has a unit stamped the 10th been created)
    days = pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-06", "2024-01-09",
                           "2024-01-10", "2024-01-10"])
    ev = pd.DataFrame({"created": days,
                       "converted": pd.to_datetime(["2024-01-10", "2024-01-09", None, None,
                                                    "2024-01-10", None]),
                       "arm": list("ABABAB")})
    known = as_of(ev, "2024-01-10", created="created", converted="converted")
    assert known.index.tolist() == [0, 1, 2, 3]
    assert pd.isna(known.loc[0, "converted"])        # converted during the 10th
    assert known.loc[1, "converted"] == pd.Timestamp("2024-01-09")
    # the day it stands for has passed by the 11th
    later = as_of(ev, "2024-01-11", created="created", converted="converted")
    assert later.index.tolist() == list(range(6))
    assert later.loc[0, "converted"] == pd.Timestamp("2024-01-10")
    # read as exact times, the stamps are known from their instant on
    exact = as_of(ev, "2024-01-10", created="created", converted="converted", resolution=None)
    assert exact.index.tolist() == list(range(6))
    assert exact["converted"].notna().sum() == 3
    # an explicit width, and a bad one
    assert as_of(ev, "2024-01-10 12:00", created="created", converted="converted",
                 resolution="12h").index.tolist() == list(range(6))
    with pytest.raises(ValueError, match="resolution must be 'auto', None or a time width"):
        as_of(ev, "2024-01-10", created="created", converted="converted", resolution="soon")


def test_as_of_with_day_floored_dates_does_not_inflate_early_rates():
    # A replay as of day 7 of day-floored data must not see the conversions of day 7 itself:
    # with them, the naive rate as of day 7 equals the one of a day later.
    start = pd.Timestamp("2024-01-01")
    ev = bc.simulate(n_units=[20000, 20000], eventual_rate=0.2, lag_loc=2.0, lag_shape=1.5,
                     enrollment=14, followup=0, start=start, resolution="D", random_seed=5)
    ev = ev.drop(columns="observed_until")
    cut = start + pd.Timedelta(7, unit="D")
    known = as_of(ev, cut, created="created", converted="converted")
    assert known["created"].max() == cut - pd.Timedelta(1, unit="D")
    assert known["converted"].max() == cut - pd.Timedelta(1, unit="D")
    truth = ev[ev["created"] < cut]
    conv = truth["converted"] < cut
    assert len(known) == len(truth) and known["converted"].notna().sum() == conv.sum()


def test_as_of_keeps_each_units_own_observation_end():
    # unit 8 was lost to follow-up on 2024-01-05: as of the 10th it is followed to the 5th,
    # not to the 10th (and a conversion after its end is not known)
    ev = pd.DataFrame({
        "created": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "converted": pd.to_datetime(["2024-01-04", "2024-01-08", None]),
        "end": pd.to_datetime(["2024-02-01", "2024-01-05", "2024-02-01"]),
        "arm": ["A", "B", "A"]}, index=[7, 8, 9])
    known = as_of(ev, "2024-01-10", created="created", converted="converted",
                  observed_until="end")
    assert known["end"].tolist() == list(pd.to_datetime(["2024-01-10", "2024-01-05",
                                                         "2024-01-10"]))
    # one date for every unit, as prepare accepts: the earlier of it and the as-of date
    k2 = as_of(ev, "2024-01-10", created="created", converted="converted",
               observed_until="2024-01-06")
    assert (k2["observed_until"] == pd.Timestamp("2024-01-06")).all()
    # a column named observed_until is never silently overwritten
    with pytest.raises(ValueError, match="column 'observed_until', which as_of would overwrite"):
        as_of(ev.rename(columns={"end": "observed_until"}), "2024-01-10", created="created",
              converted="converted")


def test_replay_honours_per_unit_observation_ends():
    ev = bc.simulate(n_units=[400, 400], eventual_rate=[0.3, 0.4], lag_loc=5.0,
                     lag_shape=2.0, enrollment=20, followup=20, random_seed=4, resolution="D")
    # half the units lost to follow-up 3 days after creation
    lost = np.arange(len(ev)) % 2 == 0
    ev["end"] = ev["observed_until"].where(~lost, ev["created"] + pd.Timedelta(3, unit="D"))
    ev = ev.drop(columns="observed_until")
    dates = pd.to_datetime(["2024-01-25"])
    kw = dict(created="created", converted="converted", cohort="cohort", treatment="B",
              control="A", window=7, fit_kwargs=dict(draws=100, tune=100, chains=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = replay(ev, dates, observed_until="end", **kw)
        capped = replay(ev, dates, **kw)  # every unit followed to the as-of date
    # units lost after 3 days never mature for a 7-day window
    known = as_of(ev, dates[0], created="created", converted="converted", observed_until="end")
    age = (known["end"] - known["created"]).dt.days
    assert own.loc[0, "matured_treatment"] == int(((known["cohort"] == "B") & (age >= 7)).sum())
    assert own.loc[0, "matured_treatment"] < capped.loc[0, "matured_treatment"]


def test_decision_dates_is_exported():
    assert bc.decision_dates is decision_dates
