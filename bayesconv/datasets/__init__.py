"""Real conversion data sets shipped with bayesconv (see ``datasets/README.md`` for provenance).

Each loader returns a fresh pandas DataFrame read from the packaged file.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_dob_violations", "load_marriage", "load_rossi"]


def _path(name: str):
    return resources.files(__package__).joinpath(name)


def load_dob_violations() -> pd.DataFrame:
    """NYC Department of Buildings complaints: time from issue to resolution.

    A random sample of 9,715 complaints from NYC Open Data, "DOB Complaints Received", as
    subsampled for the examples of the ``convoys`` library (MIT licence). About 26% are not
    resolved at the observation date.

    Returns
    -------
    pandas.DataFrame of shape (9715, 7)
        ``issue_date`` (datetime64, creation), ``disposition_date`` (datetime64, resolution;
        NaT if not resolved yet), ``now`` (datetime64, observation date, 2018-01-01 for every
        row), ``boro``, ``category``, ``type`` (strings), and ``bucket`` (str, the 5-year
        bucket of ``issue_date``, e.g. ``"1990-1994"``, an ordered categorical).
    """
    df = pd.read_csv(_path("dob_violations.csv.gz"),
                     parse_dates=["issue_date", "disposition_date", "now"])
    start = (df["issue_date"].dt.year // 5) * 5
    labels = {s: f"{s}-{s + 4}" for s in sorted(start.unique())}
    df["bucket"] = pd.Categorical(start.map(labels), categories=list(labels.values()),
                                  ordered=True)
    return df


def load_marriage() -> pd.DataFrame:
    """Year of birth and of first marriage of 10,000 US people (years only).

    A random sample as shipped with the ``convoys`` examples (MIT licence). Many never marry,
    so the eventual rate is below 1, and nobody marries as a child, so the lag has a long
    run-up (a gamma-like onset).

    Returns
    -------
    pandas.DataFrame of shape (10000, 7)
        ``now`` (int, observation year 2016), ``born`` (int, year), ``married`` (float, year of
        first marriage, NaN if not married), ``sex``, ``race``, ``hispanic``, ``state``.
        Durations are in years: use ``prepare(..., time_unit="Y")``.
    """
    return pd.read_csv(_path("marriage.csv.gz"))


def load_rossi() -> pd.DataFrame:
    """Rossi, Berk & Lenihan (1980) randomized experiment on financial aid and re-arrest.

    432 prisoners released from Maryland state prisons were randomly given financial aid
    (``fin`` = 1) or not, and followed for 52 weeks (as shipped with ``lifelines``, MIT
    licence). About 74% were not re-arrested during follow-up. Fewer conversions (arrests) are
    better here.

    Rossi, P.H., Berk, R.A. and Lenihan, K.J. (1980). *Money, Work, and Crime: Some
    Experimental Results.* New York: Academic Press.

    Returns
    -------
    pandas.DataFrame of shape (432, 9)
        ``week`` (int, week of arrest, or 52 if not arrested: the follow-up length, in weeks),
        ``arrest`` (1 = arrested), ``fin`` (1 = financial aid), ``age``, ``race``, ``wexp``,
        ``mar``, ``paro``, ``prio``. Use ``prepare(..., duration="week", event="arrest",
        cohort="fin", time_unit="W")``.
    """
    return pd.read_csv(_path("rossi.csv"))
