"""Replay an experiment "as of" earlier dates: when would each method have decided?"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import plotting
from .data.prepare import prepare
from .data.resolution import stamp_resolution
from .data.units import TIME_UNITS
from .inference.model import ConversionModel
from .readout.compare import compare

__all__ = ["as_of", "decision_dates", "replay", "plot_replay"]


#: Column of the per-unit observation end that :func:`as_of` writes when it adds one.
AS_OF_COLUMN = "observed_until"


def as_of(events: pd.DataFrame, date, *, created: str, converted: str,
          observed_until=None, resolution="auto") -> pd.DataFrame:
    """The events table as it would have looked on ``date``.

    Units created after ``date`` are not known yet; conversions after ``date`` have not
    happened yet (their ``converted`` becomes empty); each unit is observed until the earlier
    of ``date`` and its own observation end (a unit lost to follow-up on 2024-01-05 stays
    followed to 2024-01-05, whatever the as-of date).

    Timestamps recorded to a resolution δ (dates floored to the day, say) stand for a whole
    bin: an event stamped ``s`` happened somewhere in [s, s + δ), so it is known on ``date``
    only once its bin has passed, s + δ <= date. As of midnight of 2024-01-10, the units
    stamped 2024-01-10 do not exist yet and the conversions stamped 2024-01-10 have not
    happened (reading them as known would leak a day of the future into every replay).

    Parameters
    ----------
    events : DataFrame
        One row per unit with datetime columns ``created`` and ``converted``.
    date : str or Timestamp
    created, converted : str
        Column names.
    observed_until : str or date, optional
        As in :func:`bayesconv.prepare`: a column of per-unit observation ends, or one date
        for every unit. The result's observation end is the earlier of it and ``date``, in
        that column (for a column) or in a column ``"observed_until"`` (for a date or None).
        None: every unit is observed until ``date``.
    resolution : "auto", None or timedelta-like, default "auto"
        The grid the ``created`` and ``converted`` stamps were recorded on. "auto": the
        largest of a week, a day, an hour, a minute, a second that every stamp lies on
        (:func:`bayesconv.data.resolution.stamp_resolution`; exact when none); None: exact
        times (an event is known from its stamp on); else a width such as ``"1D"``.

    Returns
    -------
    DataFrame
        A copy of the known rows, with the original index.

    Raises
    ------
    ValueError
        ``observed_until`` is None or a date but the events already have a column
        ``"observed_until"`` (it would be overwritten; pass its name to cap it instead); a
        ``resolution`` that is not a width >= 0.
    """
    date = pd.Timestamp(date)
    is_col = isinstance(observed_until, str) and observed_until in events.columns
    if not is_col and AS_OF_COLUMN in events.columns:
        raise ValueError(f"the events have a column {AS_OF_COLUMN!r}, which as_of would "
                         f"overwrite with the as-of date; pass observed_until="
                         f"{AS_OF_COLUMN!r} to cap each unit's observation end at the as-of "
                         "date")
    c = pd.to_datetime(events[created])
    if isinstance(resolution, str) and resolution == "auto":
        width = pd.Timedelta(stamp_resolution(c, events[converted]), unit="s")
    elif resolution is None:
        width = pd.Timedelta(0)
    else:
        try:
            with warnings.catch_warnings():     # pandas' deprecation notes on bad text
                warnings.simplefilter("ignore", DeprecationWarning)
                width = pd.Timedelta(resolution)
        except (TypeError, ValueError):
            raise ValueError(f"resolution must be 'auto', None or a time width such as "
                             f"'1D', got {resolution!r}") from None
        if not width >= pd.Timedelta(0):
            raise ValueError(f"resolution must be a width >= 0, got {resolution!r}")
    last = date - width                 # an event stamped s is known once s + δ <= date
    known = events.loc[(c <= last).to_numpy()].copy()
    conv = pd.to_datetime(known[converted])
    known[converted] = conv.where(conv <= last)
    if is_col:
        known[observed_until] = pd.to_datetime(known[observed_until]).clip(upper=date)
    elif observed_until is not None:
        known[AS_OF_COLUMN] = min(pd.Timestamp(observed_until), date)
    else:
        known[AS_OF_COLUMN] = date
    return known


def _beta_prob_better(conv_t, n_t, conv_c, n_c, higher_is_better, rng, draws=20000):
    """P(p_t better than p_c) under independent Beta(1, 1) priors (Monte Carlo)."""
    if n_t == 0 or n_c == 0:
        return np.nan
    pt = rng.beta(1 + conv_t, 1 + n_t - conv_t, draws)
    pc = rng.beta(1 + conv_c, 1 + n_c - conv_c, draws)
    return float(np.mean(pt > pc) if higher_is_better else np.mean(pt < pc))


def replay(events: pd.DataFrame, as_of_dates, *, created: str, converted: str, cohort: str,
           treatment, control, observed_until=None, horizon: float | None = None,
           window: float | None = None,
           time_unit: str = "D", higher_is_better: bool = True, ci_prob: float = 0.94,
           lag: str = "gamma", fit_kwargs: dict | None = None, random_seed: int = 0,
           progress: bool = False, covariates=None, formula: dict | None = None,
           resolution="auto") -> pd.DataFrame:
    """Refit an experiment as of each date and compare three ways of reading it out.

    For every date: the events are re-censored as they were known then (:func:`as_of`), the
    model is refitted and read out with :func:`bayesconv.compare`; beside it, two common
    shortcuts on the same data:

    * **naive**: converted / units so far, counting units too young to have converted as
      non-converters (biased against whichever arm converts later);
    * **matured window**: the rate of conversion within ``window`` among units at least
      ``window`` old, the fixed-conversion-window rule of experimentation platforms (unbiased,
      but it ignores every unit younger than the window).

    Both shortcuts are turned into P(treatment better) with independent Beta(1, 1) priors on
    the two proportions, so all three columns are on the same probability scale.

    Parameters
    ----------
    events : DataFrame
        One row per unit with datetime columns ``created`` and ``converted`` and a cohort
        (arm) column.
    as_of_dates : sequence of dates
    created, converted, cohort : str
        Column names.
    treatment, control : labels
        Arms to compare.
    observed_until : str or date, optional
        Each unit's observation end, as in :func:`bayesconv.prepare` (a column or one date);
        as of each date a unit is observed until the earlier of it and that date (see
        :func:`as_of`). None: every unit is observed until the as-of date.
    horizon : float, optional
        Also read out conversion by ``horizon`` (data's time unit) with the model.
    window : float, optional
        Conversion window of the matured-window comparison (default: ``horizon``, else the
        median observed conversion time on the last date, rounded up).
    time_unit : str, default "D"
    higher_is_better : bool, default True
    ci_prob : float, default 0.94
    lag : str, default "gamma"
    fit_kwargs : dict, optional
        Passed to ``ConversionModel.fit`` (default: 4 chains × 1000 draws, no progress bar).
    random_seed : int, default 0
        Seed of the fits and of the Beta Monte Carlo.
    progress : bool, default False
        Print one line per date.
    covariates : list of str, optional
        Covariate columns, as in :func:`bayesconv.prepare`.
    formula : dict, optional
        Formulas of the refitted model, as in :class:`bayesconv.ConversionModel`; the model's
        readout averages over the experiment's mix of the covariates as of each date.
    resolution : {"auto", "detect", "exact"}, float or None, default "auto"
        Time resolution of the dates and its reading, as in :func:`bayesconv.prepare`.
        ``"auto"`` (default) detects it once, on the events as of the last date, and every date's fit
        reads the times as interval-censored within it (an early date's few conversions could
        not show the grid).

    Returns
    -------
    DataFrame, one row per date, with columns ``as_of``, ``units_treatment``,
    ``units_control``, ``naive_treatment``, ``naive_control``, ``prob_better_naive``,
    ``window``, ``matured_treatment``, ``matured_control`` (units old enough),
    ``window_rate_treatment``, ``window_rate_control``, ``prob_better_window``,
    ``prob_better`` (model, eventual rate), ``lift_median``, ``lift_lower``, ``lift_upper``
    (model, eventual rate; NaN where the lift is not defined, see
    :meth:`bayesconv.Readout.to_frame`) and, with a horizon, ``prob_better_horizon``,
    ``lift_horizon_median``, ``lift_horizon_lower``, ``lift_horizon_upper``, and the fit's
    ``max_r_hat`` and ``divergences``. ``.attrs`` keeps the settings (``resolution`` among
    them).

    Raises
    ------
    ValueError
        No dates; a date before the first unit was created; unknown arms.
    """
    dates = sorted(pd.to_datetime(list(np.atleast_1d(as_of_dates))))
    if not dates:
        raise ValueError("as_of_dates is empty")
    first = pd.to_datetime(events[created]).min()
    stamps = pd.Timedelta(stamp_resolution(events[created], events[converted]), unit="s")
    if dates[0] <= first or dates[0] < first + stamps:
        raise ValueError(f"as_of date {dates[0]} is before any unit is known: the first "
                         f"creation date is {first}" + (
                             f", recorded to {stamps}, so its units are known from "
                             f"{first + stamps} on" if stamps > pd.Timedelta(0) else ""))
    labels = set(events[cohort].astype(str))
    for name, arm in (("treatment", treatment), ("control", control)):
        if str(arm) not in labels:
            raise ValueError(f"{name} {arm!r} is not an arm of column {cohort!r}; arms: "
                             f"{sorted(labels)}")
    secs = TIME_UNITS[time_unit]
    if window is None and horizon is not None:
        window = float(horizon)
    fit_kwargs = {"draws": 1000, "chains": 4, "progressbar": False,
                  **(fit_kwargs or {})}
    rng = np.random.default_rng(random_seed)
    if window is None:
        last = as_of(events, dates[-1], created=created, converted=converted,
                     observed_until=observed_until, resolution=stamps)
        lag_t = (pd.to_datetime(last[converted]) - pd.to_datetime(last[created]))
        lag_t = lag_t.dt.total_seconds().dropna() / secs
        window = float(np.ceil(lag_t.median())) if len(lag_t) else 1.0
    obs_col = observed_until if isinstance(observed_until, str) \
        and observed_until in events.columns else AS_OF_COLUMN
    if isinstance(resolution, str) and resolution == "auto":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the dates' own prepare warns where it matters
            meta = prepare(as_of(events, dates[-1], created=created, converted=converted,
                                 observed_until=observed_until, resolution=stamps),
                           created=created, converted=converted, observed_until=obs_col,
                           cohort=cohort, time_unit=time_unit, resolution="auto").meta
        resolution = meta["resolution"] if meta.get("resolution_read") == "interval" else None
    rows = []
    for date in dates:
        known = as_of(events, date, created=created, converted=converted,
                      observed_until=observed_until, resolution=stamps)
        row: dict = {"as_of": date}
        arm = known[cohort].astype(str)
        c = pd.to_datetime(known[created])
        conv = pd.to_datetime(known[converted])
        conv = conv.where(conv <= pd.to_datetime(known[obs_col]))  # after the unit's own end
        age = (pd.to_datetime(known[obs_col]) - c).dt.total_seconds().to_numpy() / secs
        lag_t = (conv - c).dt.total_seconds().to_numpy() / secs
        for role, label in (("treatment", treatment), ("control", control)):
            m = (arm == str(label)).to_numpy()
            n, k = int(m.sum()), int(conv[m].notna().sum())
            matured = m & (age >= window)
            k_w = int(np.sum(matured & (lag_t <= window)))
            row[f"units_{role}"] = n
            row[f"naive_{role}"] = k / n if n else np.nan
            row[f"_k_{role}"], row[f"_kw_{role}"] = k, k_w
            row[f"matured_{role}"] = int(matured.sum())
            row[f"window_rate_{role}"] = k_w / matured.sum() if matured.any() else np.nan
        row["prob_better_naive"] = _beta_prob_better(
            row["_k_treatment"], row["units_treatment"], row["_k_control"],
            row["units_control"], higher_is_better, rng)
        row["window"] = window
        row["prob_better_window"] = _beta_prob_better(
            row["_kw_treatment"], row["matured_treatment"], row["_kw_control"],
            row["matured_control"], higher_is_better, rng)
        for key in [k for k in row if k.startswith("_")]:
            del row[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # early dates are thin; diagnostics are kept below
            data = prepare(known, created=created, converted=converted,
                           observed_until=obs_col, cohort=cohort, time_unit=time_unit,
                           covariates=covariates, resolution=resolution)
            result = ConversionModel(data, lag=lag, formula=formula).fit(
                random_seed=random_seed, **fit_kwargs)
        ro = compare(result, treatment, control, horizon=horizon, ci_prob=ci_prob,
                     higher_is_better=higher_is_better).to_frame().set_index("metric")
        ev = ro.loc["eventual"]
        row.update(prob_better=ev["prob_better"], lift_median=ev["lift_median"],
                   lift_lower=ev["lift_lower"], lift_upper=ev["lift_upper"])
        if horizon is not None:
            hz = ro.loc["by_horizon"]
            row.update(prob_better_horizon=hz["prob_better"],
                       lift_horizon_median=hz["lift_median"],
                       lift_horizon_lower=hz["lift_lower"], lift_horizon_upper=hz["lift_upper"])
        diag = result.diagnostics()
        row.update(max_r_hat=diag["max_r_hat"], divergences=diag["divergences"])
        rows.append(row)
        if progress:
            print(f"{date.date()}: P(model) {row['prob_better']:.3f}, P(window) "
                  f"{row['prob_better_window']:.3f}, P(naive) {row['prob_better_naive']:.3f}")
    out = pd.DataFrame(rows)
    out.attrs.update(treatment=treatment, control=control, horizon=horizon, window=window,
                     time_unit=time_unit, higher_is_better=higher_is_better, ci_prob=ci_prob,
                     resolution=resolution)
    return out


def decision_dates(table: pd.DataFrame, threshold: float = 0.95) -> dict:
    """First as-of date on which each method's P(treatment better) reached ``threshold``.

    Returns
    -------
    dict mapping column name (``prob_better``, ``prob_better_horizon``,
    ``prob_better_window``, ``prob_better_naive``) to a Timestamp, or NaT if never.
    """
    out = {}
    for col in ("prob_better", "prob_better_horizon", "prob_better_window",
                "prob_better_naive"):
        if col in table:
            hit = table.loc[table[col] >= threshold, "as_of"]
            out[col] = hit.iloc[0] if len(hit) else pd.NaT
    return out


def plot_replay(table: pd.DataFrame, ax=None, *, threshold: float = 0.95):
    """P(treatment better) over calendar time for the model and the two shortcuts.

    Parameters
    ----------
    table : DataFrame from :func:`replay`.
    ax : matplotlib Axes, optional
    threshold : float, default 0.95
        Decision threshold drawn as a dotted line; the first date each method crosses it
        (:func:`decision_dates`) is marked.

    Returns
    -------
    matplotlib.axes.Axes
    """
    return plotting.plot_replay(table, decision_dates(table, threshold), ax,
                                threshold=threshold)
