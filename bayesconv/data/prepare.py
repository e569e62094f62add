"""Event preparation: validation, durations in a stated time unit, aggregation.

``prepare`` turns an events table (one row per unit, or an already aggregated table with a
count column) into a :class:`ConversionData`: one row per distinct
(cohort, duration, converted) combination with the number of identical units, so that every
later computation costs in proportion to distinct rows, not to units.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataWarning
from .container import ConversionData
from .messages import NOT_ISO_DATES, TZ_TEXT_PATTERN, mixed_timezone_problem
from .units import TIME_UNITS, human_duration, number

__all__ = ["prepare", "similar_labels"]

_MAX_SHOWN = 5


def _format_rows(frame: pd.DataFrame, mask: np.ndarray, columns: Sequence[Hashable]) -> str:
    """Describe the first offending rows of ``frame`` as 'index label (col=value, ...)'."""
    mask = np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(mask)
    shown = []
    for i in idx[:_MAX_SHOWN]:
        values = ", ".join(f"{c}={_py(frame[c].iloc[i])!r}" for c in columns)
        shown.append(f"row {_py(frame.index[i])!r} ({values})")
    more = f", and {len(idx) - _MAX_SHOWN} more" if len(idx) > _MAX_SHOWN else ""
    return "; ".join(shown) + more


def _py(value):
    """Numpy scalars as plain Python values, so messages read ``13`` not ``np.int64(13)``."""
    return value.item() if isinstance(value, np.generic) else value


def _check(frame: pd.DataFrame, bad: np.ndarray, problem: str, columns: Sequence[Hashable]) -> None:
    """Raise ``ValueError``: ``problem``, how many rows have it, and the first of them."""
    bad = np.asarray(bad, dtype=bool)
    n_bad = int(bad.sum())
    if n_bad:
        rows = "row" if n_bad == 1 else "rows"
        raise ValueError(f"{problem} in {n_bad} {rows}: {_format_rows(frame, bad, columns)}")


# ----------------------------------------------------------------------------- helpers


def _require_columns(frame: pd.DataFrame, names: dict[str, Any]) -> None:
    available = list(frame.columns)
    for arg, name in names.items():
        if name is None or not isinstance(name, Hashable):
            continue
        if name not in frame.columns:
            raise ValueError(
                f"{arg}={name!r} is not a column of the events table; "
                f"available columns: {available}"
            )


def _is_text_or_object(series: pd.Series) -> bool:
    """Object columns, or pandas' string dtypes (the default for text from pandas 3)."""
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def _is_datetime_like(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series) or (
        _is_text_or_object(series) and series.dropna().map(
            lambda v: isinstance(v, pd.Timestamp | np.datetime64 | str)
            or hasattr(v, "isoformat")).all()
        and len(series.dropna()) > 0
    )


def _to_datetime(frame: pd.DataFrame, col: str, values: pd.Series) -> pd.Series:
    """Parse a column to datetime64, raising on unparseable values and tz mixing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    present = values.notna().to_numpy()
    if _is_text_or_object(values):
        # Python datetimes / Timestamps: check that all agree on timezone-awareness.
        aware = values.map(lambda v: getattr(v, "tzinfo", None) is not None
                           if not isinstance(v, str) else _str_has_tz(v))
        aware = aware.to_numpy(dtype=bool) & present
        naive = ~aware & present
        if aware.any() and naive.any():
            problem, list_aware = mixed_timezone_problem(col, int(aware.sum()),
                                                         int(naive.sum()))
            _check(frame, aware if list_aware else naive, problem, [col])
        # all timezone-aware (a mix was refused above): read them in UTC, whatever their
        # offsets (-05:00 and Z in one column), as the command line's DuckDB reader does
        utc = bool(aware.any())
    else:
        utc = None
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=utc)
    except (ValueError, TypeError) as err:
        raise ValueError(f"column {col!r} could not be read as dates: {err}") from None
    bad = present & parsed.isna().to_numpy()
    _check(frame, bad, NOT_ISO_DATES.format(col=col, hint="; parse other formats with "
                                            "pandas.to_datetime(..., format=...) first"), [col])
    return parsed


def _str_has_tz(value: str) -> bool:
    return re.match(TZ_TEXT_PATTERN, value) is not None


def _tz_state(series: pd.Series) -> bool | None:
    """True if tz-aware, False if naive, None if not datetime."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return True
    if pd.api.types.is_datetime64_dtype(series):
        return False
    return None


def _scalar_date(value, like_aware: bool | None):
    if isinstance(value, str | pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
        try:
            # strings must be ISO 8601, as in date columns: "04/03/2024" is ambiguous
            ts = pd.to_datetime(value, format="ISO8601") if isinstance(value, str) \
                else pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ValueError(f"observed_until={value!r} is not an ISO 8601 date "
                             "(YYYY-MM-DD[ HH:MM:SS]) nor a column of the events table") from None
        if like_aware is not None and (ts.tzinfo is not None) != like_aware:
            raise ValueError(
                f"observed_until={value!r} is timezone-{'aware' if ts.tzinfo else 'naive'} "
                f"but the event timestamps are timezone-{'aware' if like_aware else 'naive'}"
            )
        return ts
    return value


def _numeric(frame: pd.DataFrame, col: str, values: pd.Series) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(values) or values.dtype == object):
        raise ValueError(f"column {col!r} has dtype {values.dtype}, expected numbers or dates")
    num = pd.to_numeric(values, errors="coerce")
    bad = values.notna().to_numpy() & num.isna().to_numpy()
    _check(frame, bad, f"values in column {col!r} that are neither numbers nor missing", [col])
    out = num.to_numpy(dtype=float)
    _check(frame, np.isinf(out), f"infinite values in column {col!r}", [col])
    return out


# ----------------------------------------------------------------------------- prepare


def prepare(
    events: Any,
    *,
    created: str | None = None,
    converted: str | None = None,
    observed_until: Any = None,
    cohort: str | None = None,
    time_unit: str = "D",
    count: str | None = None,
    duration: str | None = None,
    event: str | None = None,
    unit_id: str | None = None,
    bin_width: float | None = None,
) -> ConversionData:
    """Validate an events table and aggregate it into :class:`ConversionData`.

    Two input layouts are accepted:

    * **Dates** (``created``, ``converted``, ``observed_until``): one row per unit (or per group
      of identical units with ``count``). ``converted`` is empty (NaN/NaT/None) for units that
      have not converted. Columns may hold datetimes (naive or timezone-aware, consistently;
      ISO 8601 strings are parsed) or numbers already in ``time_unit`` (e.g. years).
    * **Durations** (``duration``, ``event``): survival-style input, the time from creation to
      conversion or censoring in ``time_unit``, and a 0/1 (or bool) conversion indicator.

    ``events`` may also be a Polars DataFrame or LazyFrame, a DuckDB relation
    (``duckdb.DuckDBPyRelation``), a PySpark DataFrame or any other frame that narwhals reads.
    Then durations, validation counts and the aggregation run inside that engine (as narwhals
    expressions); only one row of validation counts, the aggregated tables and, for bad input,
    the first few offending rows are collected. Dates must be engine date/datetime columns
    (strings are not parsed portably: a string column is an error asking for a cast);
    offending rows are named by position for eager frames and by their values for lazy ones.
    Durations are computed from microsecond timestamps there (nanoseconds in pandas).

    Parameters
    ----------
    events : pandas.DataFrame, polars.DataFrame, polars.LazyFrame, duckdb.DuckDBPyRelation, \
pyspark.sql.DataFrame
        The events table, one row per unit or per group of identical units.
    created, converted : str
        Column names of the creation time and of the conversion time (empty if not converted).
    observed_until : str or scalar
        Column name of each unit's observation date, or one date/number for every row
        (e.g. ``"2018-01-01"`` or ``2016``).
    cohort : str, optional
        Column with the cohort (arm, signup week, channel). None puts every unit in one cohort
        labelled ``"all"``. Categorical columns keep their category order; categories with no
        rows are left out with a warning.
    time_unit : {"s", "min", "h", "D", "W", "Y"}, default "D"
        Unit of every duration in the result (a year "Y" is 365.25 days). For numeric inputs
        the numbers are taken to be in this unit already.
    count : str, optional
        Column with the number of identical units each row stands for (non-negative integers;
        rows with count 0 are kept out of the result with a warning).
    duration, event : str, optional
        Survival-style input instead of dates (see above).
    unit_id : str, optional
        Column with a unit identifier; duplicated identifiers are an error.
    bin_width : float, optional
        Width w > 0 of a time grid, in ``time_unit``, to coarsen the data to (grouped data):
        the number of rows then no longer grows with the time resolution. None (default)
        keeps exact times. See Notes.

    Returns
    -------
    ConversionData
        One row per distinct (cohort, lower, duration, converted) with summed counts, sorted
        by cohort and duration. Without ``bin_width`` ``lower == duration`` everywhere.

    Raises
    ------
    ValueError
        With the number of offending rows and the first of them (index label and values) for:
        an empty table; a column name that does not exist (the message lists the available
        columns); missing creation time or observation date; dates that cannot be parsed;
        timezone-aware mixed with naive timestamps; NaN or infinite numeric times; conversion
        before creation; observation date before creation; missing cohort label; negative or
        non-integer counts; duplicated unit ids; an unknown ``time_unit``; a ``bin_width``
        that is not a positive finite number; for engine inputs, string or unknown-typed date
        columns (the message says how to cast them).

    TypeError
        If ``events`` is neither a pandas DataFrame nor a frame narwhals can read.

    Warns
    -----
    DataWarning
        A conversion dated after the observation date is treated as not converted at the
        observation date (the warning gives the count); empty categorical cohorts are left out
        (the warning names them); zero-count rows are left out (the warning gives the count).

    Notes
    -----
    Conversions at duration 0 (same timestamp as creation) are kept; see
    :mod:`bayesconv.likelihood` for how they enter the model.

    **Time binning.** With ``bin_width`` w every time is read on the grid 0, w, 2w, ... (in
    ``time_unit``), as grouped, interval-censored survival data (Kalbfleisch & Prentice,
    *The Statistical Analysis of Failure Time Data*, 2nd ed. 2002, §1.3 and §5.5 on grouped
    data and interval censoring). A unit of age a at the observation date is followed up to
    its last complete grid point a_eff = floor(a / w) · w, and a conversion at time d lies in
    the bin k = floor(d / w), i.e. [k w, (k + 1) w):

    * converted, k < floor(a / w): an interval-censored row ``lower = k w``,
      ``duration = (k + 1) w`` (k = 0 is the first bin (0, w] of the likelihood);
    * converted in the last, incomplete bin (k = floor(a / w)): right-censored at a_eff. The
      conversion happened after a_eff, so under the coarsened follow-up it is not observed
      yet; counting it would make the censoring depend on the outcome;
    * not converted: right-censored at a_eff (a_eff = 0 rows contribute nothing).

    ``followup`` then holds the floored ages a_eff. In the duration/event layout there is no
    separate follow-up for converted units: their bin is taken to be complete (interval
    [k w, (k + 1) w)), and censored units are censored at floor(duration / w) · w.

    Each cohort then has at most K converted rows and K + 1 censored rows, K = floor(longest
    follow-up / w): at most n_cohorts × (2K + 1) rows (n_cohorts × (2K + 2) for the
    duration/event layout), however many units there are.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r} is not one of {list(TIME_UNITS)} "
                         "(a year 'Y' is 365.25 days)")
    if bin_width is not None:
        if isinstance(bin_width, bool) or not isinstance(bin_width, int | float | np.number) \
                or not (np.isfinite(bin_width) and bin_width > 0):
            raise ValueError(f"bin_width must be a positive finite number (in time units "
                             f"{time_unit!r}) or None, got {bin_width!r}")
        bin_width = float(bin_width)
    on_engine = not isinstance(events, pd.DataFrame)
    if on_engine:
        import narwhals as nw

        if nw.from_native(events, pass_through=True) is events:
            raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}; "
                            "Polars DataFrames and LazyFrames, DuckDB relations and PySpark "
                            "DataFrames (any frame narwhals reads) are accepted too")
    dates_layout = created is not None or converted is not None
    dur_layout = duration is not None or event is not None
    if dates_layout and dur_layout:
        raise ValueError("give either created/converted/observed_until or duration/event, not both")
    if not dates_layout and not dur_layout:
        raise ValueError("give created=, converted= and observed_until= (dates), "
                         "or duration= and event= (durations)")
    if dates_layout and (created is None or converted is None or observed_until is None):
        raise ValueError("created=, converted= and observed_until= are all required "
                         f"(got created={created!r}, converted={converted!r}, "
                         f"observed_until={observed_until!r})")
    if dur_layout and (duration is None or event is None):
        raise ValueError(f"duration= and event= are both required (got duration={duration!r}, "
                         f"event={event!r})")

    meta: dict = {"layout": "durations" if dur_layout else "dates",
                  "time_columns": [duration] if dur_layout else [created, converted]}
    if bin_width is not None:
        meta["bin_width"] = bin_width
    if on_engine:
        from .engine import prepare_engine

        rows, ages, info = prepare_engine(
            events, created=created, converted=converted, observed_until=observed_until,
            cohort=cohort, time_unit=time_unit, count=count, duration=duration, event=event,
            unit_id=unit_id, bin_width=bin_width, secs=TIME_UNITS[time_unit],
            scalar_date=_scalar_date, stacklevel=3)
        categories = info["categories"]
        if categories is not None:
            used = set(rows["g"])
            empty = [c for c in categories if c not in used]
            if empty:
                warnings.warn(f"cohort categories with no rows are left out: {empty}",
                              DataWarning, stacklevel=2)
            labels = tuple(c for c in categories if c in used)
        else:
            labels = tuple(pd.Categorical(rows["g"]).categories)
        codes = pd.Categorical(rows["g"], categories=list(labels)).codes.astype(np.int64)
        rows["g"] = codes
        if ages is not None:
            ages["g"] = pd.Categorical(ages["g"], categories=list(labels)).codes.astype(np.int64)
        return _finish(rows, ages, labels, time_unit=time_unit, observed_until=info[
            "observed_until"], cohort_name=cohort, meta=meta)

    obs_is_col = isinstance(observed_until, Hashable) and observed_until in events.columns
    _require_columns(events, {"created": created, "converted": converted, "cohort": cohort,
                              "count": count, "duration": duration, "event": event,
                              "unit_id": unit_id})
    if len(events) == 0:
        raise ValueError("the events table is empty: there is nothing to prepare")

    frame = events
    n = len(frame)

    # ---- counts
    if count is not None:
        cnt = _numeric(frame, count, frame[count])
        _check(frame, np.isnan(cnt), f"missing count in column {count!r}", [count])
        _check(frame, cnt < 0, f"negative count in column {count!r}", [count])
        _check(frame, cnt != np.round(cnt), f"non-integer count in column {count!r}",
               [count])
        cnt = cnt.astype(np.int64)
    else:
        cnt = np.ones(n, dtype=np.int64)

    # ---- unit ids
    if unit_id is not None:
        dup = frame[unit_id].duplicated(keep=False).to_numpy()
        _check(frame, dup, f"duplicated unit id in column {unit_id!r} (each unit must appear once)",
               [unit_id])

    # ---- cohorts
    if cohort is None:
        codes = np.zeros(n, dtype=np.int64)
        labels: tuple = ("all",)
    else:
        col = frame[cohort]
        _check(frame, col.isna().to_numpy(), f"missing cohort label in column {cohort!r}",
               [cohort])
        cat = col.astype("category") if not isinstance(col.dtype, pd.CategoricalDtype) else col
        if isinstance(col.dtype, pd.CategoricalDtype):
            used = pd.unique(cat.cat.codes)
            empty = [c for i, c in enumerate(cat.cat.categories) if i not in set(used)]
            if empty:
                warnings.warn(f"cohort categories with no rows are left out: {empty}",
                              DataWarning, stacklevel=2)
                cat = cat.cat.remove_unused_categories()
        codes = cat.cat.codes.to_numpy().astype(np.int64)
        labels = tuple(cat.cat.categories)

    # ---- durations
    if dur_layout:
        dur = _numeric(frame, duration, frame[duration])
        _check(frame, np.isnan(dur), f"missing duration in column {duration!r}", [duration])
        _check(frame, dur < 0, f"negative duration in column {duration!r}", [duration])
        ev_raw = frame[event]
        ev_num = pd.to_numeric(ev_raw.astype("object").map(
            lambda v: float(v) if isinstance(v, bool | np.bool_) else v), errors="coerce")
        ev = ev_num.to_numpy(dtype=float)
        _check(frame, ~np.isin(ev, [0.0, 1.0]), f"event indicator in column {event!r} that is not "
               "0/1 or True/False", [event])
        conv = ev == 1.0
        obs_meta = None
    else:
        c_raw = frame[created]
        v_raw = frame[converted]
        o_raw = frame[observed_until] if obs_is_col else None
        datetime_mode = _is_datetime_like(c_raw)
        if datetime_mode:
            c = _to_datetime(frame, created, c_raw)
            v = _to_datetime(frame, converted, v_raw) if v_raw.notna().any() else \
                pd.Series(pd.NaT, index=frame.index, dtype=c.dtype)
            if o_raw is not None:
                o = _to_datetime(frame, observed_until, o_raw)
            else:
                o = None
            states = {created: _tz_state(c), converted: _tz_state(v)}
            if o is not None:
                states[observed_until] = _tz_state(o)
            if v_raw.notna().sum() == 0:
                states.pop(converted)
            if len(set(states.values())) > 1:
                desc = ", ".join(f"{k!r} is {'timezone-aware' if s else 'naive'}"
                                 for k, s in states.items())
                raise ValueError(f"timezone-aware and naive timestamps are mixed: {desc}; "
                                 "convert all to one (e.g. .dt.tz_localize(None) or "
                                 ".dt.tz_convert('UTC'))")
            aware = states[created]
            if o is None:
                ts = _scalar_date(observed_until, aware)
                if not isinstance(ts, pd.Timestamp):
                    raise ValueError(f"observed_until={observed_until!r} is neither a column "
                                     f"nor a date (available columns: {list(frame.columns)})")
                o = pd.Series(ts, index=frame.index)
                obs_meta = ts
            else:
                obs_meta = (o.min(), o.max()) if o.min() != o.max() else o.min()
            if aware:
                c, v, o = (s.dt.tz_convert("UTC") for s in (c, v, o))
            _check(frame, c.isna().to_numpy(), f"missing creation time in column {created!r}",
                   [created])
            _check(frame, o.isna().to_numpy(),
                   f"missing observation date in column {observed_until!r}",
                   [observed_until])
            secs = TIME_UNITS[time_unit]
            to_conv = ((v - c).dt.total_seconds() / secs).to_numpy(dtype=float)
            to_obs = ((o - c).dt.total_seconds() / secs).to_numpy(dtype=float)
            # exact integer nanoseconds for the aggregation (NaT -> 0, masked below)
            ns_conv = (v - c).astype("timedelta64[ns]").fillna(pd.Timedelta(0)) \
                .to_numpy().astype(np.int64)
            ns_obs = (o - c).astype("timedelta64[ns]").fillna(pd.Timedelta(0)) \
                .to_numpy().astype(np.int64)
            ticks = (1e9, secs)
        else:
            cn = _numeric(frame, created, c_raw)
            vn = _numeric(frame, converted, v_raw)
            if o_raw is not None:
                on = _numeric(frame, observed_until, o_raw)
                obs_meta = (np.nanmin(on), np.nanmax(on)) if np.nanmin(on) != np.nanmax(on) \
                    else float(on[0])
            else:
                try:
                    on = np.full(n, float(observed_until))
                except (TypeError, ValueError):
                    raise ValueError(
                        f"observed_until={observed_until!r} is neither a column nor a number "
                        f"(the created column {created!r} is numeric; available columns: "
                        f"{list(frame.columns)})") from None
                obs_meta = float(observed_until)
            _check(frame, np.isnan(cn), f"missing creation time in column {created!r}",
                   [created])
            _check(frame, np.isnan(on),
                   f"missing observation time in column {observed_until!r}",
                   [observed_until])
            to_conv = vn - cn
            to_obs = on - cn
            ticks = None
        cols = [created, converted] + ([observed_until] if obs_is_col else [])
        _check(frame, to_conv < 0, f"conversion before creation ({converted!r} earlier "
               f"than {created!r})", cols)
        _check(frame, to_obs < 0, "observation date before creation (observation date "
               f"earlier than {created!r})", cols)
        conv = ~np.isnan(to_conv)
        late = conv & (to_conv > to_obs)
        if late.any():
            warnings.warn(
                f"{int(late.sum())} conversions are dated after the observation date and are "
                f"treated as not converted at the observation date; first: "
                f"{_format_rows(frame, late, cols)}", DataWarning, stacklevel=2)
            conv = conv & ~late
        dur = np.where(conv, to_conv, to_obs)
        if ticks is not None:
            dur, to_obs = np.where(conv, ns_conv, ns_obs), ns_obs

    # ---- zero counts
    zero = cnt == 0
    if zero.any():
        warnings.warn(f"{int(zero.sum())} rows with count 0 stand for no units and are left out",
                      DataWarning, stacklevel=2)
    import narwhals as nw

    from .engine import aggregate

    if dur_layout:
        ticks, to_obs = None, np.full(n, np.nan)
    units = pd.DataFrame({"g": codes, "d": dur, "conv": conv, "age": to_obs, "n": cnt})
    per_second, secs = ticks if ticks is not None else (1.0, 1.0)
    rows, ages = aggregate(nw.from_native(units, eager_only=True), bin_width=bin_width,
                           followup=not dur_layout, ticks_per_second=per_second, secs=secs,
                           integer=ticks is not None)
    return _finish(rows, ages, labels, time_unit=time_unit, observed_until=obs_meta,
                   cohort_name=cohort, meta=meta)


def _finish(rows: pd.DataFrame, ages: pd.DataFrame | None, labels: tuple, *, time_unit: str,
            observed_until, cohort_name, meta: dict) -> ConversionData:
    """ConversionData from aggregated rows (``g`` = cohort code, counts may sum to 0).

    Drops groups whose count is 0 (warning about cohorts left without units), sorts by
    cohort, duration, converted and lower edge, and builds the follow-up table.
    """
    rows = rows[rows["count"] > 0]
    if len(rows) == 0:
        raise ValueError("every row has count 0: there are no units")
    present = np.unique(rows["g"].to_numpy())
    remap = None
    if len(present) < len(labels):  # a cohort whose rows all had count 0
        missing = [labels[i] for i in range(len(labels)) if i not in set(present)]
        warnings.warn(f"cohorts with no units are left out: {missing}", DataWarning,
                      stacklevel=3)
        remap = np.full(len(labels), -1)
        remap[present] = np.arange(len(present))
        labels = tuple(labels[i] for i in present)
    rows = rows.sort_values(["g", "duration", "converted", "lower"], kind="stable")
    g = rows["g"].to_numpy(dtype=np.int64)
    followup = None
    if ages is not None:
        ages = ages[ages["count"] > 0]
        followup = pd.DataFrame({"cell": ages["g"].to_numpy(dtype=np.int64),
                                 "age": ages["age"].to_numpy(dtype=float),
                                 "count": ages["count"].to_numpy(dtype=np.int64)})
        if remap is not None:
            followup["cell"] = remap[followup["cell"].to_numpy()]
        followup = followup.sort_values(["cell", "age"], kind="stable").reset_index(drop=True)
    if remap is not None:
        g = remap[g]
    # one factor today: each cohort is a cell
    cells = pd.DataFrame({cohort_name or "cohort": pd.Categorical(list(labels),
                                                                  categories=list(labels))})
    data = ConversionData(
        cell=g,
        cells=cells,
        duration=rows["duration"].to_numpy(dtype=float),
        lower=rows["lower"].to_numpy(dtype=float),
        converted=rows["converted"].to_numpy(dtype=bool),
        count=rows["count"].to_numpy(dtype=np.int64),
        time_unit=time_unit,
        observed_until=observed_until,
        cohort_name=cohort_name,
        followup=followup,
        meta=meta,
    )
    _warn_similar_labels(data)
    _warn_implausible_durations(data)
    return data


def similar_labels(labels) -> list[tuple]:
    """Groups of labels that differ only in case or surrounding whitespace.

    ``"IDV"`` and ``"IDV "``, or ``"B"`` and ``"b"``, are different cohorts to the model, and
    almost always one arm spelled two ways in the data.

    Returns
    -------
    list of tuples of labels, each of two or more labels, in the order given.
    """
    groups: dict[str, list] = {}
    for label in labels:
        groups.setdefault(str(label).strip().casefold(), []).append(label)
    return [tuple(g) for g in groups.values() if len(g) > 1]


def _warn_similar_labels(data: ConversionData) -> None:
    groups = similar_labels(data.cohorts)
    if not groups:
        return
    units = data.cohort_table()["units"].to_numpy()
    code = {label: i for i, label in enumerate(data.cohorts)}
    parts = "; ".join(" and ".join(f"{label!r} ({units[code[label]]:,} units)"
                                   for label in group) for group in groups)
    column = f"column {data.cohort_name!r}" if data.cohort_name else "the cohort column"
    warnings.warn(f"cohort labels in {column} that differ only in case or surrounding "
                  f"whitespace are separate cohorts: {parts}; if they are one arm, clean "
                  "the labels first (e.g. .str.strip())", DataWarning, stacklevel=4)


#: Durations outside these bounds (in seconds) are implausible for the stated time unit:
#: more than 150 years of follow-up, or every conversion and follow-up under one second.
PLAUSIBLE_SECONDS = (1.0, 150 * TIME_UNITS["Y"])


def _warn_implausible_durations(data: ConversionData) -> None:
    secs = TIME_UNITS[data.time_unit]
    longest = float(data.duration.max()) * secs
    low, high = PLAUSIBLE_SECONDS
    if low <= longest <= high or longest == 0:
        return
    columns = data.meta.get("time_columns")
    where = (f"column{'s' if len(columns) > 1 else ''} "
             f"{', '.join(repr(c) for c in columns)}" if columns else "the input")
    pos = data.duration[data.duration > 0]
    ends = [human_duration(x * secs) for x in (pos.min(), pos.max())]
    span = f"{number(pos.min())} to {number(pos.max())} {data.time_unit}"
    if any(unit != data.time_unit for _, unit in ends):
        span += f" ({ends[0][0]} to {ends[1][0]})"
    why = "more than 150 years" if longest > high else "all of them under one second"
    warnings.warn(f"durations from {where} run from {span}, {why}: implausible for "
                  f"time_unit={data.time_unit!r}; are the numbers in another unit? (time_unit "
                  f"says what a number means for numeric columns: one of {list(TIME_UNITS)})",
                  DataWarning, stacklevel=4)
