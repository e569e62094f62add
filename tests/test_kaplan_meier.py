"""Kaplan–Meier against lifelines (a test-only oracle) and a hand-computed case."""

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

import bayesconv as bc
from bayesconv import datasets


def _lifelines_table(durations, events, ci_prob=0.95):
    kmf = KaplanMeierFitter(alpha=1 - ci_prob).fit(durations, events)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_survival_function_
    out = pd.DataFrame({"time": sf.index.to_numpy(dtype=float),
                        "conversion": 1 - sf.to_numpy(),
                        "lower": 1 - ci.iloc[:, 1].to_numpy(),
                        "upper": 1 - ci.iloc[:, 0].to_numpy()})
    observed = kmf.event_table["observed"]
    return out[out["time"].isin(observed[observed > 0].index)]


def _compare(ours: pd.DataFrame, ref: pd.DataFrame):
    ours = ours[ours["converted"] > 0].sort_values("time")
    ref = ref.sort_values("time")
    merged = pd.merge_asof(ref, ours, on="time", tolerance=1e-9, direction="nearest",
                           suffixes=("_ref", ""))
    assert len(merged) == len(ours) and merged["conversion"].notna().all()
    np.testing.assert_allclose(merged["conversion"], merged["conversion_ref"], atol=1e-9)
    finite = merged["conversion"] < 1  # at S = 0 the interval is undefined
    for b in ("lower", "upper"):
        np.testing.assert_allclose(merged.loc[finite, b], merged.loc[finite, f"{b}_ref"],
                                   atol=1e-6)


def test_dob_by_bucket_matches_lifelines():
    df = datasets.load_dob_violations()
    with pytest.warns(bc.DataWarning, match="121 conversions"):
        data = bc.prepare(df, created="issue_date", converted="disposition_date",
                          observed_until="now", cohort="bucket", time_unit="Y")
    km = bc.kaplan_meier(data)
    # Durations computed independently of prepare(): days / 365.25.
    conv_days = (df["disposition_date"] - df["issue_date"]).dt.days
    obs_days = (df["now"] - df["issue_date"]).dt.days
    event = conv_days.notna() & (conv_days <= obs_days)
    years = np.where(event, conv_days, obs_days) / 365.25
    for label in data.cohorts:
        m = (df["bucket"] == label).to_numpy()
        _compare(km[km["cohort"] == label], _lifelines_table(years[m], event[m]))


def test_marriage_by_sex_matches_lifelines():
    df = datasets.load_marriage()
    data = bc.prepare(df, created="born", converted="married", observed_until="now",
                      cohort="sex", time_unit="Y")
    km = bc.kaplan_meier(data)
    event = df["married"].notna()
    years = np.where(event, df["married"] - df["born"], df["now"] - df["born"])
    for label in data.cohorts:
        m = (df["sex"] == label).to_numpy()
        _compare(km[km["cohort"] == label], _lifelines_table(years[m], event[m]))


@pytest.mark.parametrize("ci_prob", [0.95, 0.8])
def test_rossi_by_fin_matches_lifelines(ci_prob):
    df = datasets.load_rossi()
    data = bc.prepare(df, duration="week", event="arrest", cohort="fin", time_unit="W")
    km = bc.kaplan_meier(data, ci_prob=ci_prob)
    for label in data.cohorts:
        m = (df["fin"] == label).to_numpy()
        _compare(km[km["cohort"] == label],
                 _lifelines_table(df["week"][m], df["arrest"][m], ci_prob=ci_prob))


def test_hand_computed_ties():
    # times 1, 1, 2, 3 with converted 1, 0, 1, 0. At t=1: 4 at risk, 1 conversion (the censored
    # unit at t=1 is still at risk: conversions before censorings) -> S = 3/4, conversion 0.25.
    # At t=2: 2 at risk, 1 conversion -> S = 3/4 * 1/2 = 0.375, conversion 0.625.
    df = pd.DataFrame({"t": [1, 1, 2, 3], "e": [1, 0, 1, 0]})
    km = bc.kaplan_meier(bc.prepare(df, duration="t", event="e"))
    assert km["time"].tolist() == [1.0, 2.0, 3.0]
    assert km["at_risk"].tolist() == [4, 2, 1]
    assert km["converted"].tolist() == [1, 1, 0]
    assert km["censored"].tolist() == [1, 0, 1]
    np.testing.assert_allclose(km["conversion"], [0.25, 0.625, 0.625])


def test_counts_act_as_weights():
    unit = pd.DataFrame({"t": [1, 1, 1, 2, 3, 3], "e": [1, 1, 0, 1, 0, 0]})
    agg = pd.DataFrame({"t": [1, 1, 2, 3], "e": [1, 0, 1, 0], "n": [2, 1, 1, 2]})
    a = bc.kaplan_meier(bc.prepare(unit, duration="t", event="e"))
    b = bc.kaplan_meier(bc.prepare(agg, duration="t", event="e", count="n"))
    pd.testing.assert_frame_equal(a, b)


def test_curve_is_monotone_and_bounds_bracket_estimate():
    df = datasets.load_rossi()
    km = bc.kaplan_meier(bc.prepare(df, duration="week", event="arrest", cohort="fin",
                                    time_unit="W"))
    for _, g in km.groupby("cohort", observed=True):
        assert np.all(np.diff(g["conversion"]) >= 0)
        assert np.all(g["lower"] <= g["conversion"] + 1e-15)
        assert np.all(g["upper"] >= g["conversion"] - 1e-15)


def test_ci_prob_validated():
    data = bc.prepare(pd.DataFrame({"t": [1.0], "e": [1]}), duration="t", event="e")
    with pytest.raises(ValueError, match="ci_prob"):
        bc.kaplan_meier(data, ci_prob=1.5)


def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    df = datasets.load_rossi()
    data = bc.prepare(df, duration="week", event="arrest", cohort="fin", time_unit="W")
    ax = bc.plot_kaplan_meier(data)
    assert ax.get_xlabel() == "time since creation (weeks)"
    assert len(ax.get_lines()) == 2
