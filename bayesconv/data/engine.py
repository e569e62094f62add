"""``prepare`` inside a dataframe engine (Polars, DuckDB, PySpark, ...) through narwhals.

Validation, durations and the aggregation to (cohort, lower, duration, converted, count) and
to the follow-up table (cohort, age, count) are narwhals expressions that the engine evaluates;
only one row of validation counts, the aggregated tables and, for bad input, the first few
offending rows come back to Python.

:func:`aggregate` (the grouping and time binning) is also what the pandas path of
:func:`bayesconv.prepare` uses, so both paths bin and aggregate with the same code.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import narwhals as nw
import numpy as np
import pandas as pd

from ..errors import DataWarning

__all__ = ["aggregate", "prepare_engine", "to_pandas"]

_MAX_SHOWN = 5
#: Column of row numbers. Eager frames get it from ``with_row_index``; a reader of a lazy source
#: (the command line's DuckDB reader, :mod:`bayesconv.readers`) may add it itself, and then
#: offending rows are named by number there too.
ROW_COLUMN = "__bayesconv_row"
_ROW = ROW_COLUMN
_EPOCH = pd.Timestamp("1970-01-01")


def to_pandas(frame) -> pd.DataFrame:
    """Collect a narwhals DataFrame or LazyFrame into a pandas DataFrame."""
    if isinstance(frame, nw.LazyFrame):
        return frame.collect(backend="pandas").to_native()
    return frame.to_pandas()


# ----------------------------------------------------------------------------- aggregation


def _bin_index(x: nw.Expr, width: float, integer: bool) -> nw.Expr:
    """k = floor(x / width) as Int64, defined by k·width <= x < (k+1)·width.

    Integer ticks with an integral width use exact integer floor division (x >= 0). For
    floats the quotient is corrected by one step where it disagrees with the products: some
    engines divide by a scalar as a multiplication by its reciprocal (Polars), which can land
    on the wrong side of a grid point.
    """
    if integer:
        return (x // int(width)).cast(nw.Int64)
    k = (x / width).floor()
    k = nw.when((k + 1) * width <= x).then(k + 1).otherwise(k)
    k = nw.when(k * width > x).then(k - 1).otherwise(k)
    return k.cast(nw.Int64)


def aggregate(units, *, bin_width: float | None, followup: bool, ticks_per_second: float,
              secs: float, integer: bool):
    """Group per-unit rows into the aggregated tables, in the frame's own engine.

    Times stay in the engine's exact representation (integer ticks such as microseconds, or the
    input floats) while grouping; the conversion to the time unit is done afterwards in numpy,
    so that every engine returns bit-identical durations.

    Parameters
    ----------
    units : narwhals DataFrame or LazyFrame
        One row per unit or group of identical units, columns ``g`` (cohort key), ``d``
        (conversion time of converted rows, censoring time of the others, in ticks), ``conv``
        (bool), ``age`` (follow-up at the observation date, in ticks; only read when
        ``followup`` is true) and ``n`` (int count, may be 0).
    bin_width : float or None
        Width w of the time grid, in the time unit, or None for no binning.
    followup : bool
        Whether ages are known (dates layout): then the follow-up table is built too, and
        binning censors conversions in the last, incomplete bin (see
        :func:`bayesconv.prepare`).
    ticks_per_second, secs : float
        Ticks per second (1e6 for microsecond ticks, 1e9 for nanoseconds) and seconds per
        time unit; both 1 for floats that are already in the time unit. A time in the unit
        is ``ticks / ticks_per_second / secs``, the same two divisions as pandas'
        ``Timedelta.total_seconds() / secs``.
    integer : bool
        Whether ``d`` and ``age`` are integer ticks.

    Returns
    -------
    rows : pandas.DataFrame
        Columns ``g``, ``lower``, ``duration`` (float, in the time unit), ``converted``,
        ``count``, one row per distinct (g, lower, duration, converted); counts are summed and
        groups whose count is 0 are kept (the caller drops them), unsorted.
    ages : pandas.DataFrame or None
        Columns ``g``, ``age`` (float, in the time unit; floored to the grid when binned),
        ``count``; None when ``followup`` is false.
    """
    d, conv = nw.col("d"), nw.col("conv")
    if bin_width is None:
        lo = hi = d
        converted = conv
        age = nw.col("age")

        def to_unit(values):
            return np.asarray(values, dtype=float) / ticks_per_second / secs
    else:
        w = float(bin_width)
        width = w * secs * ticks_per_second
        exact = integer and width == round(width)
        kd = _bin_index(d, width, exact)
        if followup:
            ka = _bin_index(nw.col("age"), width, exact)
            # a conversion in a bin that ended before the unit's last grid point is known to
            # its bin; one in the last, incomplete bin is not yet observed at that grid point
            converted = conv & (kd < ka)
            lo = nw.when(converted).then(kd).otherwise(ka)
            hi = nw.when(converted).then(kd + 1).otherwise(ka)
            age = ka
        else:
            converted = conv
            lo = kd
            hi = nw.when(conv).then(kd + 1).otherwise(kd)
            age = None

        def to_unit(values):
            return np.asarray(values, dtype=np.int64) * w
    rows = (units.select(nw.col("g"), lo.alias("lo"), hi.alias("hi"),
                         converted.alias("converted"), nw.col("n").cast(nw.Int64))
            .group_by("g", "lo", "hi", "converted")
            .agg(nw.col("n").sum().alias("count")))
    rows = to_pandas(rows)
    rows = pd.DataFrame({"g": rows["g"], "lower": to_unit(rows["lo"]),
                         "duration": to_unit(rows["hi"]),
                         "converted": rows["converted"].astype(bool),
                         "count": rows["count"].astype(np.int64)})
    ages = None
    if followup:
        ages = to_pandas(units.select(nw.col("g"), age.alias("age"),
                                      nw.col("n").cast(nw.Int64))
                         .group_by("g", "age").agg(nw.col("n").sum().alias("count")))
        ages = pd.DataFrame({"g": ages["g"], "age": to_unit(ages["age"]),
                             "count": ages["count"].astype(np.int64)})
    return rows, ages


# ----------------------------------------------------------------------------- engine input


def _kind(dtype) -> str:
    """'datetime', 'date', 'number', 'bool', 'string' or 'other' for a narwhals dtype."""
    if isinstance(dtype, nw.Datetime):
        return "datetime"
    if dtype == nw.Date:
        return "date"
    if dtype.is_boolean():
        return "bool"
    if dtype.is_numeric():
        return "number"
    if dtype == nw.String:
        return "string"
    return "other"


def _epoch_us(name: str, kind: str, implementation) -> nw.Expr:
    """Microseconds since 1970-01-01 (UTC for timezone-aware columns) as an Int64 expression.

    narwhals has no single epoch function that all engines implement (2.x): Polars and pandas
    have ``dt.timestamp``, DuckDB subtracts timestamps into intervals, Spark casts timestamps
    to seconds since the epoch (a double holding microseconds, rounded back exactly).
    """
    col = nw.col(name)
    if kind == "date":
        col = col.cast(nw.Datetime("us"))
    if implementation.is_duckdb():
        import datetime as dt

        return (col - nw.lit(dt.datetime(1970, 1, 1))).dt.total_microseconds().cast(nw.Int64)
    if implementation.is_spark_like():
        # TIMESTAMP_NTZ (naive) cannot be cast to a number: read it as a TIMESTAMP first,
        # which Spark does in its session time zone (set spark.sql.session.timeZone=UTC)
        col = col.cast(nw.Datetime("us", "UTC"))
        return (col.cast(nw.Float64) * 1e6).round(0).cast(nw.Int64)
    return col.dt.timestamp("us").cast(nw.Int64)


def _missing(name: str, kind: str, dtype) -> nw.Expr:
    expr = nw.col(name).is_null()
    if kind == "number" and dtype.is_float():
        expr = expr | nw.col(name).is_nan()
    return expr


def _cast_hint(col: str) -> str:
    return (f"cast column {col!r} to a date or datetime type in the engine first (DuckDB: "
            f"CAST({col} AS TIMESTAMP); Polars: pl.col({col!r}).str.to_datetime(); Spark: "
            f"F.to_timestamp({col!r}))")


def _scalar_us(ts: pd.Timestamp) -> int:
    """Microseconds since the epoch of a scalar observation date (UTC if aware)."""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int((ts - _EPOCH) // pd.Timedelta(1, "us"))


class _Checks:
    """Row-level checks evaluated in one pass over the engine's data."""

    def __init__(self, frame, numbered: bool):
        self.frame = frame
        self.eager = numbered  # rows carry a ROW_COLUMN: name them by number
        self.items: list[tuple[str, nw.Expr, list[str], str]] = []  # problem, bad, cols, how

    def add(self, problem: str, bad: nw.Expr, columns: Sequence[str], how: str = "error"):
        self.items.append((problem, bad.fill_null(False), list(columns), how))

    def counts(self, extra: dict[str, nw.Expr]) -> tuple[list[int], dict[str, Any]]:
        exprs = [bad.cast(nw.Int64).sum().alias(f"__bc_check{i}")
                 for i, (_, bad, _, _) in enumerate(self.items)]
        exprs += [e.alias(k) for k, e in extra.items()]
        out = to_pandas(self.frame.select(*exprs)).iloc[0]
        counts = [int(out[f"__bc_check{i}"]) if pd.notna(out[f"__bc_check{i}"]) else 0
                  for i in range(len(self.items))]
        return counts, {k: out[k] for k in extra}

    def rows(self, bad: nw.Expr, columns: Sequence[str], n_bad: int) -> str:
        """The first offending rows, fetched from the engine: 'row i (col=value, ...)'."""
        keep = ([_ROW] if self.eager else []) + list(dict.fromkeys(columns))
        first = to_pandas(self.frame.filter(bad).select(*keep).head(_MAX_SHOWN))
        if self.eager:
            first = first.sort_values(_ROW)
        shown = []
        for _, r in first.iterrows():
            values = ", ".join(f"{c}={_py(r[c])!r}" for c in columns)
            shown.append(f"row {int(r[_ROW])} ({values})" if self.eager else f"({values})")
        more = f", and {n_bad - _MAX_SHOWN} more" if n_bad > _MAX_SHOWN else ""
        return "; ".join(shown) + more

    def raise_first(self, counts: list[int]) -> list[tuple[str, int, str]]:
        """Raise for the first failing error check; return the (problem, n, rows) warnings."""
        warned = []
        for (problem, bad, cols, how), n_bad in zip(self.items, counts, strict=True):
            if not n_bad:
                continue
            if how == "error":
                rows = "row" if n_bad == 1 else "rows"
                raise ValueError(f"{problem} in {n_bad} {rows}: {self.rows(bad, cols, n_bad)}")
            warned.append((problem, n_bad, self.rows(bad, cols, n_bad)))
        return warned


def _py(value):
    """Plain values for messages: ``13`` not ``np.int64(13)``, ISO text for timestamps."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value))
    return value


def prepare_engine(events, *, created, converted, observed_until, cohort, time_unit, count,
                   duration, event, unit_id, bin_width, secs: float, scalar_date, stacklevel):
    """The engine path of :func:`bayesconv.prepare` (arguments as there, already checked).

    Returns
    -------
    rows, ages : pandas.DataFrame
        As :func:`aggregate`, with ``g`` holding cohort labels (or the constant ``"all"``).
    info : dict
        ``observed_until`` (scalar, or (min, max) of the column), ``categories`` (the cohort
        dtype's categories for Enum columns, else None).
    """
    frame = nw.from_native(events)
    eager = isinstance(frame, nw.DataFrame)
    schema = frame.schema if eager else frame.collect_schema()
    implementation = frame.implementation
    available = [c for c in schema.names() if c != _ROW]
    for arg, name in {"created": created, "converted": converted, "cohort": cohort,
                      "count": count, "duration": duration, "event": event,
                      "unit_id": unit_id}.items():
        if name is not None and name not in schema:
            raise ValueError(f"{arg}={name!r} is not a column of the events table; "
                             f"available columns: {available}")
    if eager:
        if len(frame) == 0:
            raise ValueError("the events table is empty: there is nothing to prepare")
        if _ROW not in schema:
            frame = frame.with_row_index(_ROW)
    checks = _Checks(frame, eager or _ROW in schema)
    kinds = {name: _kind(dtype) for name, dtype in schema.items()}
    extra: dict[str, nw.Expr] = {"__bc_n": nw.len()}

    # ---- counts
    if count is not None:
        if kinds[count] != "number":
            raise ValueError(f"column {count!r} has dtype {schema[count]}, expected numbers "
                             "(counts of identical units)")
        n_expr = nw.col(count)
        checks.add(f"missing count in column {count!r}", _missing(count, "number",
                                                                  schema[count]), [count])
        checks.add(f"negative count in column {count!r}", n_expr < 0, [count])
        if schema[count].is_float():
            checks.add(f"infinite values in column {count!r}", ~n_expr.is_finite()
                       & ~_missing(count, "number", schema[count]), [count])
            checks.add(f"non-integer count in column {count!r}", n_expr != n_expr.floor(),
                       [count])
        checks.add("{n} rows with count 0 stand for no units and are left out",
                   n_expr == 0, [count], how="warn-zero")
        n_expr = n_expr.cast(nw.Int64)
    else:
        n_expr = nw.lit(1).cast(nw.Int64)

    # ---- unit ids: duplicated ids, found by a group-by in the engine
    if unit_id is not None:
        dup = (frame.group_by(unit_id).agg(nw.len().alias("__bc_k"))
               .filter(nw.col("__bc_k") > 1))
        dup_info = to_pandas(dup.select(nw.col("__bc_k").sum().alias("rows"),
                                        nw.len().alias("ids")))
        n_dup = dup_info["rows"].iloc[0]
        if pd.notna(n_dup) and int(n_dup) > 0:
            ids = to_pandas(dup.select(unit_id).head(_MAX_SHOWN))[unit_id].tolist()
            bad = nw.col(unit_id).is_in(ids)
            n_dup = int(n_dup)
            raise ValueError(
                f"duplicated unit id in column {unit_id!r} (each unit must appear once) in "
                f"{n_dup} rows: {checks.rows(bad, [unit_id], n_dup)}")

    # ---- cohorts
    categories = None
    if cohort is None:
        g_expr = nw.lit("all")
    else:
        g_expr = nw.col(cohort)
        checks.add(f"missing cohort label in column {cohort!r}", nw.col(cohort).is_null(),
                   [cohort])
        if isinstance(schema[cohort], nw.Enum):
            categories = list(schema[cohort].categories)
            g_expr = g_expr.cast(nw.String)
        elif isinstance(schema[cohort], nw.Categorical):
            g_expr = g_expr.cast(nw.String)

    # ---- durations
    info: dict[str, Any] = {"categories": categories}
    dates = duration is None
    if not dates:
        if kinds[duration] != "number":
            raise ValueError(f"column {duration!r} has dtype {schema[duration]}, expected "
                             "numbers (durations in the time unit)")
        d = nw.col(duration).cast(nw.Float64)
        miss = _missing(duration, "number", schema[duration])
        checks.add(f"missing duration in column {duration!r}", miss, [duration])
        if schema[duration].is_float():
            checks.add(f"infinite values in column {duration!r}", ~d.is_finite() & ~miss,
                       [duration])
        checks.add(f"negative duration in column {duration!r}", d < 0, [duration])
        if kinds[event] == "bool":
            conv = nw.col(event)
            checks.add(f"event indicator in column {event!r} that is not 0/1 or True/False",
                       nw.col(event).is_null(), [event])
        elif kinds[event] == "number":
            ev = nw.col(event).cast(nw.Float64)
            checks.add(f"event indicator in column {event!r} that is not 0/1 or True/False",
                       ~(ev.is_in([0.0, 1.0]).fill_null(False)), [event])
            conv = ev == 1.0
        else:
            raise ValueError(f"event indicator column {event!r} has dtype {schema[event]}, "
                             "expected 0/1 or True/False")
        dur = d
        age = d
        ticks, integer, secs = 1.0, False, 1.0
        info["observed_until"] = None
    else:
        obs_is_col = isinstance(observed_until, str) and observed_until in schema
        date_cols = [created, converted] + ([observed_until] if obs_is_col else [])
        for col in date_cols:
            if kinds[col] == "string":
                raise ValueError(f"column {col!r} holds strings ({schema[col]}); dates are not "
                                 f"parsed inside the engine: {_cast_hint(col)}")
        created_kind = kinds[created]
        cols = date_cols
        if created_kind in ("datetime", "date"):
            for col in date_cols[1:]:
                if kinds[col] not in ("datetime", "date"):
                    raise ValueError(f"column {col!r} has dtype {schema[col]} but {created!r} "
                                     f"holds dates ({schema[created]}); give dates in both")
            states = {c: (kinds[c] == "datetime" and schema[c].time_zone is not None)
                      for c in date_cols if kinds[c] in ("datetime", "date")}
            if len(set(states.values())) > 1:
                desc = ", ".join(f"{k!r} is {'timezone-aware' if s else 'naive'}"
                                 for k, s in states.items())
                raise ValueError(f"timezone-aware and naive timestamps are mixed: {desc}; "
                                 "convert all to one")
            aware = states[created]
            c_us = _epoch_us(created, created_kind, implementation)
            v_us = (_epoch_us(converted, kinds[converted], implementation)
                    if kinds[converted] in ("datetime", "date") else nw.lit(None, nw.Int64))
            if obs_is_col:
                o_us = _epoch_us(observed_until, kinds[observed_until], implementation)
                extra["__bc_omin"] = nw.col(observed_until).min()
                extra["__bc_omax"] = nw.col(observed_until).max()
            else:
                ts = scalar_date(observed_until, aware)
                if not isinstance(ts, pd.Timestamp):
                    raise ValueError(f"observed_until={observed_until!r} is neither a column "
                                     f"nor a date (available columns: {available})")
                o_us = nw.lit(_scalar_us(ts)).cast(nw.Int64)
                info["observed_until"] = ts
            c_miss, o_miss = nw.col(created).is_null(), (
                nw.col(observed_until).is_null() if obs_is_col else nw.lit(False))
            to_conv = v_us - c_us            # integer microseconds
            to_obs = o_us - c_us
            ticks, integer = 1e6, True
            conv_raw = ~nw.col(converted).is_null() if kinds[converted] != "other" \
                else nw.lit(False)
            late = conv_raw & (v_us > o_us)
        elif created_kind == "number":
            for col in date_cols[1:]:
                if kinds[col] not in ("number", "other"):
                    raise ValueError(f"column {col!r} has dtype {schema[col]} but {created!r} "
                                     f"holds numbers ({schema[created]}); give numbers in both")
            num = {}
            for col in date_cols:
                if kinds[col] == "other":
                    num[col] = nw.lit(None, nw.Float64)
                    continue
                num[col] = nw.col(col).cast(nw.Float64)
                if schema[col].is_float():
                    checks.add(f"infinite values in column {col!r}", ~num[col].is_finite()
                               & ~_missing(col, "number", schema[col]), [col])
            c_miss = _missing(created, "number", schema[created])
            v_present = ~_missing(converted, "number", schema[converted]) \
                if kinds[converted] == "number" else nw.lit(False)
            if obs_is_col:
                o_num = num[observed_until]
                o_miss = _missing(observed_until, "number", schema[observed_until])
                extra["__bc_omin"] = o_num.min()
                extra["__bc_omax"] = o_num.max()
            else:
                try:
                    o_num = nw.lit(float(observed_until))
                except (TypeError, ValueError):
                    raise ValueError(
                        f"observed_until={observed_until!r} is neither a column nor a number "
                        f"(the created column {created!r} is numeric; available columns: "
                        f"{available})") from None
                o_miss = nw.lit(False)
                info["observed_until"] = float(observed_until)
            to_conv = num[converted] - num[created]
            to_obs = o_num - num[created]
            ticks, integer, secs = 1.0, False, 1.0
            conv_raw = v_present
            late = conv_raw & (to_conv > to_obs)
        elif created_kind == "string":
            raise ValueError(f"column {created!r} holds strings; {_cast_hint(created)}")
        else:
            raise ValueError(f"column {created!r} has dtype {schema[created]}, expected "
                             f"numbers or dates (types narwhals does not know, such as DuckDB's "
                             f"TIMESTAMPTZ_NS, show as Unknown): {_cast_hint(created)}")
        checks.add(f"missing creation time in column {created!r}", c_miss, [created])
        obs_word = "observation date" if created_kind != "number" else "observation time"
        if obs_is_col:
            checks.add(f"missing {obs_word} in column {observed_until!r}", o_miss,
                       [observed_until])
        checks.add(f"conversion before creation ({converted!r} earlier than {created!r})",
                   conv_raw & (to_conv < 0), cols)
        checks.add(f"observation date before creation (observation date earlier than "
                   f"{created!r})", to_obs < 0, cols)
        checks.add("{n} conversions are dated after the observation date and are treated as "
                   "not converted at the observation date", late, cols, how="warn-late")
        conv = conv_raw & ~late
        dur = nw.when(conv).then(to_conv).otherwise(to_obs)
        age = to_obs

    counts, values = checks.counts(extra)
    if int(values["__bc_n"]) == 0:
        raise ValueError("the events table is empty: there is nothing to prepare")
    for problem, n_bad, rows in checks.raise_first(counts):
        if "{n} conversions" in problem:
            warnings.warn(f"{problem.format(n=n_bad)}; first: {rows}", DataWarning,
                          stacklevel=stacklevel)
        else:
            warnings.warn(problem.format(n=n_bad), DataWarning, stacklevel=stacklevel)
    if dates and "__bc_omin" in values:
        lo, hi = values["__bc_omin"], values["__bc_omax"]
        if created_kind == "number":
            lo, hi = float(lo), float(hi)
        else:
            lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
        info["observed_until"] = (lo, hi) if lo != hi else lo

    tick_type = nw.Int64 if integer else nw.Float64
    units = frame.select(g_expr.alias("g"), dur.cast(tick_type).alias("d"),
                         conv.fill_null(False).alias("conv"), age.cast(tick_type).alias("age"),
                         n_expr.alias("n"))
    rows, ages = aggregate(units, bin_width=bin_width, followup=dates, ticks_per_second=ticks,
                           secs=secs, integer=integer)
    return rows, ages, info
