"""Worked examples on the bundled data, reusable from notebooks, scripts and tests.

:func:`marriage_data` and :func:`marriage_lag_comparison`: which lag family describes the age
at first marriage (``bayesconv.datasets.load_marriage``)?
"""

from __future__ import annotations

from . import datasets
from .data.prepare import prepare
from .inference.model import ConversionModel
from .lags.families import LAG_FAMILIES
from .posterior.comparison import compare_models

__all__ = ["marriage_data", "marriage_lag_comparison"]


def marriage_data(n_units: int | None = None, random_seed: int = 0):
    """Age at first marriage, in years, by sex, censored at the age in 2016 for the unmarried.

    A unit is a person created at birth (``born``), converting at first marriage
    (``married``) and observed until ``now`` (2016): the duration is the age at marriage,
    or for people not married by 2016 their age then (right-censored). Years are whole
    numbers, so ages are too (ties are merged into counted rows).

    Parameters
    ----------
    n_units : int, optional
        Use a random subsample of this many people (default: all 10,000).
    random_seed : int, default 0
        Seed of the subsample.

    Returns
    -------
    ConversionData
        Cohort = ``sex`` (Female, Male), time unit ``"Y"``.
    """
    df = datasets.load_marriage()
    if n_units is not None and n_units < len(df):
        df = df.sample(n=int(n_units), random_state=random_seed)
    return prepare(df, created="born", converted="married", observed_until="now",
                   cohort="sex", time_unit="Y")


def marriage_lag_comparison(lags=None, *, n_units: int | None = None, draws: int = 300,
                            chains: int = 2, random_seed: int = 1, progressbar: bool = False,
                            data=None):
    """Fit the marriage data with several lag families and compare them by PSIS-LOO.

    Parameters
    ----------
    lags : sequence of str, optional
        Lag families to fit (default: every family in :data:`bayesconv.lags.LAG_FAMILIES`).
    n_units : int, optional
        Subsample size (see :func:`marriage_data`).
    draws, chains : int, default 300, 2
        NUTS draws per chain and chains per fit.
    random_seed : int, default 1
    progressbar : bool, default False
    data : ConversionData, optional
        Use these data instead of :func:`marriage_data`.

    Returns
    -------
    dict with ``data`` (ConversionData), ``results`` (dict of lag name to ConversionResult)
    and ``table`` (:func:`bayesconv.compare_models`, best first).
    """
    if data is None:
        data = marriage_data(n_units)
    lags = list(LAG_FAMILIES) if lags is None else list(lags)
    results = {}
    for lag in lags:
        # convergence problems warn (bc.ConvergenceWarning) as with any fit
        results[lag] = ConversionModel(data, lag=lag).fit(
            draws=draws, chains=chains, random_seed=random_seed, progressbar=progressbar)
    return {"data": data, "results": results, "table": compare_models(results)}
