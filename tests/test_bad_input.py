"""A table of malformed or awkward inputs, each with the clear error or warning it must give.

Every row asserts that the message names the problem (and, for row-level problems, the row).
Degenerate but valid data must fit and give wide but sensible intervals.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesconv as bc
from bayesconv.cli import main


def _ev(**cols):
    base = {"created": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "converted": ["2024-01-04", None, "2024-01-05"], "arm": ["A", "B", "A"]}
    base.update(cols)
    return pd.DataFrame(base, index=[101, 102, 103])


def _prep(df, **kw):
    args = dict(created="created", converted="converted", observed_until="2024-02-01",
                cohort="arm")
    args.update(kw)
    return bc.prepare(df, **args)


PREPARE_ERRORS = [
    ("unparseable date string",
     lambda: _prep(_ev(converted=["2024-01-04", None, "next week"])),
     r"not ISO 8601 dates.*row 103 \(converted='next week'\)"),
    ("mixed date formats",
     lambda: _prep(_ev(created=["2024-01-01", "02/01/2024", "2024-01-03"])),
     r"not ISO 8601 dates.*row 102 \(created='02/01/2024'\)"),
    # the few timezone-aware rows among the naive ones are the ones to find and fix
    ("timezone-aware mixed with naive in one column",
     lambda: _prep(_ev(created=["2024-01-01T00:00:00+01:00", "2024-01-02", "2024-01-03"])),
     r"timezone-aware timestamps in column 'created' mixed with 2 timezone-naive ones.*"
     r"in 1 row: row 101 \(created='2024-01-01T00:00:00\+01:00'\)$"),
    ("conversion before creation",
     lambda: _prep(_ev(converted=["2023-12-31", None, "2024-01-05"])),
     r"conversion before creation.*in 1 row: row 101"),
    ("observation before creation",
     lambda: _prep(_ev(), observed_until="2024-01-02"),
     r"observation date before creation.*row 103"),
    ("duplicate unit ids",
     lambda: _prep(_ev(uid=["u1", "u1", "u2"]), unit_id="uid"),
     r"duplicated unit id in column 'uid'.*row 101.*row 102"),
    ("NaN numeric duration",
     lambda: bc.prepare(pd.DataFrame({"t": [1.0, np.nan], "e": [1, 0]}), duration="t",
                        event="e"),
     r"missing duration in column 't' in 1 row: row 1"),
    ("infinite numeric duration",
     lambda: bc.prepare(pd.DataFrame({"t": [1.0, np.inf], "e": [1, 0]}), duration="t",
                        event="e"),
     r"infinite values in column 't' in 1 row: row 1"),
    ("negative duration",
     lambda: bc.prepare(pd.DataFrame({"t": [1.0, -2.0], "e": [1, 0]}), duration="t",
                        event="e"),
     r"negative duration in column 't' in 1 row: row 1 \(t=-2.0\)"),
    ("negative count",
     lambda: _prep(_ev(n=[1, -1, 1]), count="n"), r"negative count in column 'n'.*row 102"),
    ("non-integer count",
     lambda: _prep(_ev(n=[1, 2.5, 1]), count="n"), r"non-integer count.*row 102 \(n=2.5\)"),
    ("missing cohort label",
     lambda: _prep(_ev(arm=["A", None, "A"])), r"missing cohort label.*row 102"),
    ("missing creation time",
     lambda: _prep(_ev(created=["2024-01-01", None, "2024-01-03"])),
     r"missing creation time in column 'created' in 1 row: row 102"),
    ("column that does not exist",
     lambda: _prep(_ev(), converted="purchase_at"),
     r"converted='purchase_at' is not a column.*available columns: \['created', "),
    ("empty table", lambda: _prep(_ev().iloc[:0]), r"the events table is empty"),
    ("ambiguous observation date string",
     lambda: _prep(_ev(), observed_until="04/03/2024"),
     r"observed_until='04/03/2024' is not an ISO 8601 date"),
    ("unknown time unit", lambda: _prep(_ev(), time_unit="months"),
     r"time_unit='months' is not one of"),
]


@pytest.mark.parametrize("name,call,pattern", PREPARE_ERRORS, ids=[r[0] for r in PREPARE_ERRORS])
def test_prepare_errors(name, call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_conversions_after_observation_warn_with_count():
    with pytest.warns(bc.DataWarning, match=r"1 conversions are dated after the observation"
                                            r".*row 103"):
        data = _prep(_ev(), observed_until="2024-01-04T12:00")
    assert data.converted.sum() == 1 and data.n_units == 3  # nobody dropped


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="events must be a pandas DataFrame, got list"):
        bc.prepare([1, 2], duration="t", event="e")


@pytest.mark.parametrize("kwargs,pattern", [
    ({"lag": "lognormal2"}, "unknown lag family 'lognormal2'; known families"),
    ({"pooling": "hierarchical"}, "pooling='hierarchical' is not one of"),
    ({"priors": {"eventual_rate": 0.5}}, "unknown prior 'eventual_rate'"),
    ({"parametrization": "both"}, "parametrization='both' is not one of"),
])
def test_model_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        bc.ConversionModel(_prep(_ev()), **kwargs)


def test_fit_argument_errors():
    model = bc.ConversionModel(_prep(_ev()))
    with pytest.raises(ValueError, match="draws must be a positive integer, got 0"):
        model.fit(draws=0)
    with pytest.raises(ValueError, match="sampler='stan' is not one of"):
        model.fit(sampler="stan", draws=10, tune=10, chains=1)
    with pytest.raises(ValueError, match="method='vi' is not one of"):
        model.fit(method="vi")


# ------------------------------------------------------------------ degenerate but valid data


@pytest.fixture(scope="module")
def degenerate_fit():
    """Three cohorts: no conversions yet, every unit converted, and a single unit."""
    rng = np.random.default_rng(0)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 30, 401), "D")
    lag = pd.to_timedelta(rng.integers(1, 10, 401), "D")
    arm = np.array(["none"] * 200 + ["all"] * 200 + ["one"])
    converted = (created + lag).where(arm == "all")
    ev = pd.DataFrame({"created": created, "converted": converted, "arm": arm})
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="2024-02-15", cohort="arm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thin data: convergence/identification warnings
        return bc.ConversionModel(data).fit(draws=500, tune=700, chains=2, random_seed=1,
                                            progressbar=False)


def test_degenerate_cohorts_fit_with_sensible_intervals(degenerate_fit):
    s = degenerate_fit.summary()
    assert np.isfinite(s[["rate_mean", "rate_lower", "rate_upper"]].to_numpy()).all()
    assert (s["rate_lower"] >= 0).all() and (s["rate_upper"] <= 1).all()
    # 200 units, none converted in 2-6 weeks: conversion by two weeks is surely small, but the
    # eventual rate is not identified (the lag could be long): wide, and flagged as such
    by_two_weeks = degenerate_fit.curves([14.0]).sel(cohort="none")
    assert float(by_two_weeks.quantile(0.97)) < 0.05
    assert s.loc["none", "weakly_identified"]
    assert s.loc["all", "rate_lower"] > 0.9      # every unit converted
    # one unconverted unit says little: a wide interval, not a point at 0 or 1
    assert s.loc["one", "rate_upper"] - s.loc["one", "rate_lower"] > 0.3


def test_all_durations_zero_fit():
    ev = pd.DataFrame({"t": [0.0] * 50 + [0.0] * 50, "e": [1] * 50 + [0] * 50})
    data = bc.prepare(ev, duration="t", event="e")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bc.ConversionModel(data).fit(draws=300, tune=500, chains=2, random_seed=2,
                                           progressbar=False)
    s = res.summary()
    assert np.isfinite(s["rate_mean"]).all() and 0 < s["rate_mean"].iloc[0] < 1


@pytest.mark.parametrize("unit", ["s", "Y"])
def test_extreme_time_units_give_the_same_map(unit):
    """Seconds over months (durations ~1e6) or years over days (~1e-2): same estimate."""
    ev = bc.simulate(n_units=[800, 800], eventual_rate=[0.3, 0.5], lag_loc=6.0, lag_shape=2.0,
                     enrollment=20, followup=30, random_seed=4, resolution="D")
    kw = dict(created="created", converted="converted", observed_until="observed_until",
              cohort="cohort")
    ref = bc.ConversionModel(bc.prepare(ev, **kw, time_unit="D")).fit(method="map",
                                                                      progressbar=False)
    other = bc.ConversionModel(bc.prepare(ev, **kw, time_unit=unit)).fit(method="map",
                                                                         progressbar=False)
    np.testing.assert_allclose(other.summary()["rate_mean"], ref.summary()["rate_mean"],
                               rtol=1e-4)


# ------------------------------------------------------------------ compare


@pytest.mark.parametrize("call,pattern", [
    (lambda r: bc.compare(r, "Z", "all"), r"'Z'.*(cohorts|arms).*"),
    (lambda r: bc.compare(r, "all", "all"), r"treatment 'all' is the control arm"),
    (lambda r: bc.compare(r, "none", "all", horizon=0), r"horizon"),
    (lambda r: bc.compare(r, "none", "all", horizon=-5), r"horizon"),
])
def test_compare_errors(degenerate_fit, call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(degenerate_fit)


# ------------------------------------------------------------------ CLI


def test_cli_same_arm_is_caught_before_fitting(tmp_path, capsys):
    path = tmp_path / "ev.csv"
    _ev().to_csv(path)
    code = main(["report", str(path), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-01", "--cohort", "arm", "--control", "A",
                 "--treatment", "A", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and "fitting" not in captured.out
    assert "--treatment 'A' is also the control arm" in captured.err


@pytest.mark.parametrize("extra,message", [
    (["--time-unit", "months"], "invalid choice: 'months'"),
    (["--draws"], "expected one argument"),
])
def test_cli_argument_errors_are_one_line(capsys, extra, message):
    argv = ["report", "x.csv", "--created", "c", "--converted", "v", "--observed-until", "o",
            "--cohort", "g", "--control", "A", "--treatment", "B", "--out", "o"] + extra
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_data_error_is_one_line(tmp_path, capsys):
    path = tmp_path / "ev.csv"
    _ev(converted=["2023-12-31", None, "2024-01-05"]).to_csv(path)
    code = main(["report", str(path), "--created", "created", "--converted", "converted",
                 "--observed-until", "2024-02-01", "--cohort", "arm", "--control", "A",
                 "--treatment", "B", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "conversion before creation" in err[0]
