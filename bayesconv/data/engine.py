"""The one path of :func:`bayesconv.prepare`: validation, durations and aggregation as narwhals
expressions, for pandas, Polars, DuckDB, PySpark and any other frame narwhals reads.

Validation, durations and the aggregation to (cohort, lower, duration, converted, count) and
to the follow-up table (cohort, age, count) are narwhals expressions that the frame's engine
evaluates; only one row of validation counts, the aggregated tables and, for bad input, the
first few offending rows come back to Python. A pandas DataFrame is first normalised by
:func:`bayesconv.data.pandas_input.from_pandas` (date text parsed, object columns of numbers
coerced, index labels to name rows by), then read here like every other frame.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import numpy as np
import pandas as pd

from ..errors import DataWarning
from . import messages as msg
from .messages import INTERNAL_PREFIX, MAX_SHOWN, ROW_COLUMN, describe_rows, row_problem
from .units import TIME_UNITS

__all__ = ["ROW_COLUMN", "EventFrame", "aggregate", "from_native", "prepare_frame",
           "require_columns", "to_pandas"]

_ROW = ROW_COLUMN
_EPOCH = pd.Timestamp("1970-01-01")
#: Integer ticks per second of each timestamp resolution.
TICKS_PER_SECOND = {"us": 1e6, "ns": 1e9}


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
              secs: float, integer: bool, keys: Sequence[str] = ("g",)):
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
    keys : sequence of str, default ("g",)
        The cell key columns of ``units``: the cohort key and any covariates.

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
        # bin indices computed once (narwhals would evaluate an expression again where used)
        units = units.with_columns(_bin_index(d, width, exact).alias("kd"), *(
            [_bin_index(nw.col("age"), width, exact).alias("ka")] if followup else []))
        kd = nw.col("kd")
        if followup:
            ka = nw.col("ka")
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
    keys = list(keys)
    rows = (units.select(*(nw.col(k) for k in keys), lo.alias("lo"), hi.alias("hi"),
                         converted.alias("converted"), nw.col("n").cast(nw.Int64))
            .group_by(*keys, "lo", "hi", "converted")
            .agg(nw.col("n").sum().alias("count")))
    rows = to_pandas(rows)
    rows = pd.DataFrame({**{k: rows[k] for k in keys}, "lower": to_unit(rows["lo"]),
                         "duration": to_unit(rows["hi"]),
                         "converted": rows["converted"].astype(bool),
                         "count": rows["count"].astype(np.int64)})
    ages = None
    if followup:
        ages = to_pandas(units.select(*(nw.col(k) for k in keys), age.alias("age"),
                                      nw.col("n").cast(nw.Int64))
                         .group_by(*keys, "age").agg(nw.col("n").sum().alias("count")))
        ages = pd.DataFrame({**{k: ages[k] for k in keys}, "age": to_unit(ages["age"]),
                             "count": ages["count"].astype(np.int64)})
    return rows, ages


# ----------------------------------------------------------------------------- the events table


@dataclass(frozen=True)
class EventFrame:
    """An events table as :func:`prepare_frame` reads it.

    Attributes
    ----------
    frame : narwhals.DataFrame or narwhals.LazyFrame
        The events.
    row_labels : sequence, optional
        The name of each row by position (a pandas index): messages name row ``i`` by
        ``row_labels[i]``. None names rows by their number (:data:`ROW_COLUMN`).
    shown : dict
        Column -> column whose values messages show instead: the input's own values of a
        column the pandas pre-step normalised (date text that was parsed, say).
    categories : list, optional
        Order and labels of the cohort's categories (pandas categoricals); an Enum dtype gives
        its own.
    covariate_categories : dict
        Categorical covariate -> (categories, ordered) of pandas categoricals.
    tick : {"us", "ns"}
        Resolution of the integer timestamps durations are computed from: microseconds for
        engines, nanoseconds for pandas (its own resolution, so durations stay exact).
    timestamps_as_text : bool
        Whether messages show timestamps as ISO text (engines, as files write them) or as the
        Python values a pandas frame holds (``Timestamp('2024-01-03 00:00:00')``).
    """

    frame: Any
    row_labels: Any = None
    shown: dict = field(default_factory=dict)
    categories: list | None = None
    tick: str = "us"
    timestamps_as_text: bool = True
    covariate_categories: dict = field(default_factory=dict)


def from_native(events) -> EventFrame:
    """An :class:`EventFrame` of any frame narwhals reads.

    pandas DataFrames go through :func:`bayesconv.data.pandas_input.from_pandas` instead.

    Parameters
    ----------
    events : polars.DataFrame, polars.LazyFrame, duckdb.DuckDBPyRelation, \
pyspark.sql.DataFrame or any frame narwhals reads
        The events table.

    Returns
    -------
    EventFrame
        Rows named by number (eager frames), microsecond ticks, timestamps shown as text.

    Raises
    ------
    TypeError
        If narwhals cannot read ``events``.
    """
    frame = nw.from_native(events, pass_through=True)
    if frame is events:
        raise TypeError(msg.NOT_A_FRAME.format(kind=type(events).__name__))
    return EventFrame(frame)


def require_columns(available: Sequence, names: dict[str, Any]) -> None:
    """Raise ``ValueError`` for the first argument naming a column that does not exist.

    Parameters
    ----------
    available : sequence
        The column names of the events table.
    names : dict
        Argument name -> the column it names (None for arguments not given).
    """
    for arg, name in names.items():
        if name is None or not isinstance(name, Hashable):
            continue
        if name not in set(available):
            raise ValueError(msg.NOT_A_COLUMN.format(arg=arg, name=name,
                                                     available=list(available)))


def is_column(name: Any, available: Sequence) -> bool:
    """Whether ``name`` is one of the ``available`` column names.

    Parameters
    ----------
    name : object
        An argument that names a column or is a value (``observed_until``: a column or a
        date); unhashable values are no column.
    available : sequence
        The column names.

    Returns
    -------
    bool
    """
    return isinstance(name, Hashable) and name in set(available)


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


def _epoch(name: str, kind: str, implementation, tick: str) -> nw.Expr:
    """Ticks (``tick``: "us" or "ns") since 1970-01-01 (UTC if timezone-aware) as Int64.

    narwhals has no single epoch function that all engines implement (2.x): Polars and pandas
    have ``dt.timestamp``, DuckDB subtracts timestamps into intervals, Spark casts timestamps
    to seconds since the epoch (a double holding microseconds, rounded back exactly). The
    last two give microseconds only.
    """
    col = nw.col(name)
    if kind == "date":
        col = col.cast(nw.Datetime(tick))
    if implementation.is_duckdb():
        return (col - nw.lit(dt.datetime(1970, 1, 1))).dt.total_microseconds().cast(nw.Int64)
    if implementation.is_spark_like():
        # TIMESTAMP_NTZ (naive) cannot be cast to a number: read it as a TIMESTAMP first,
        # which Spark does in its session time zone (set spark.sql.session.timeZone=UTC)
        col = col.cast(nw.Datetime("us", "UTC"))
        return (col.cast(nw.Float64) * 1e6).round(0).cast(nw.Int64)
    return col.dt.timestamp(tick).cast(nw.Int64)


def _missing(name: str, kind: str, dtype) -> nw.Expr:
    expr = nw.col(name).is_null()
    if kind == "number" and dtype.is_float():
        expr = expr | nw.col(name).is_nan()
    return expr


def _cast_hint(col: str) -> str:
    return msg.CAST_HINT.format(col=col)


def scalar_date(value, like_aware: bool | None):
    """``observed_until`` as a ``pandas.Timestamp`` if it is a date, else unchanged.

    Parameters
    ----------
    value : object
        The ``observed_until`` argument. Strings must be ISO 8601, as in date columns
        ("04/03/2024" is ambiguous); ``datetime``, ``date``, ``numpy.datetime64`` and
        ``pandas.Timestamp`` are dates.
    like_aware : bool or None
        Whether the event timestamps are timezone-aware; the date must agree (None: no check).

    Returns
    -------
    pandas.Timestamp or object
        The date, or ``value`` itself if it is not a date (a number, say).

    Raises
    ------
    ValueError
        Text that is not an ISO 8601 date, or a date that disagrees on timezone-awareness.
    """
    if isinstance(value, str | pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
        try:
            ts = pd.to_datetime(value, format="ISO8601") if isinstance(value, str) \
                else pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ValueError(msg.OBSERVED_NOT_ISO.format(value=value)) from None
        if like_aware is not None and (ts.tzinfo is not None) != like_aware:
            raise ValueError(msg.OBSERVED_TIMEZONE.format(
                value=value, state="aware" if ts.tzinfo else "naive",
                columns="aware" if like_aware else "naive"))
        return ts
    return value


def _scalar_ticks(ts: pd.Timestamp, tick: str) -> int:
    """Ticks since the epoch of a scalar observation date (UTC if aware)."""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int((ts - _EPOCH) // pd.Timedelta(1, tick))


def _count(value) -> int:
    return int(value) if pd.notna(value) else 0


class _Checks:
    """Row-level checks of one events table, counted in one pass over the engine's data.

    Errors are raised in the order they were added (the first that fails); warnings are
    returned as texts. A check's count may be known already (``n_bad``): then it is not
    counted again.
    """

    def __init__(self, frame, source: EventFrame, numbered: bool):
        self.frame = frame
        self.source = source
        self.numbered = numbered  # rows carry a ROW_COLUMN: name them
        self.errors: list[list] = []    # [problem, bad, columns, n_bad]
        self.warnings: list[list] = []  # [template, bad, columns or None, n]

    def error(self, problem: str, bad: nw.Expr, columns: Sequence[str],
              n_bad: int | None = None) -> None:
        self.errors.append([problem, bad.fill_null(False), list(columns), n_bad])

    def warning(self, template: str, bad: nw.Expr, columns: Sequence[str] | None) -> None:
        """A warning; ``template`` has fields ``n`` and, if ``columns`` are given, ``rows``."""
        self.warnings.append([template, bad.fill_null(False), columns, None])

    def count(self, extra: dict[str, nw.Expr]) -> dict[str, Any]:
        """Count every check and evaluate ``extra`` in one query; return the extra values."""
        pending = [c for c in self.errors if c[3] is None] + self.warnings
        exprs = [c[1].cast(nw.Int64).sum().alias(f"__bc_check{i}") for i, c in enumerate(pending)]
        exprs += [e.alias(k) for k, e in extra.items()]
        out = to_pandas(self.frame.select(*exprs)).iloc[0]
        for i, c in enumerate(pending):
            c[3] = _count(out[f"__bc_check{i}"])
        return {k: out[k] for k in extra}

    def rows(self, bad: nw.Expr, columns: Sequence[str], n_bad: int) -> str:
        """The first offending rows, fetched from the engine (:func:`describe_rows`)."""
        shown = {c: self.source.shown.get(c, c) for c in columns}
        keep = ([_ROW] if self.numbered else []) + list(dict.fromkeys(shown.values()))
        first = self.frame.filter(bad).select(*keep)
        if self.numbered and isinstance(first, nw.LazyFrame):
            first = first.sort(_ROW)  # no order in a lazy engine: the first by number
        first = to_pandas(first.head(MAX_SHOWN))
        labels = self.source.row_labels
        records = []
        for i in range(len(first)):
            name = None
            if self.numbered:
                name = int(first[_ROW].iloc[i])
                name = labels[name] if labels is not None else name
            records.append((name, [(c, first[shown[c]].iloc[i]) for c in columns]))
        return describe_rows(records, n_bad, named=self.numbered,
                             timestamps_as_text=self.source.timestamps_as_text)

    def raise_first(self) -> list[str]:
        """Raise for the first failing error check; return the texts of the warnings."""
        for problem, bad, cols, n_bad in self.errors:
            if n_bad:
                raise ValueError(row_problem(problem, n_bad, self.rows(bad, cols, n_bad)))
        return [template.format(n=n, rows=self.rows(bad, cols, n) if cols else "")
                for template, bad, cols, n in self.warnings if n]


def _duplicated_ids(frame, unit_id: str, numbered: bool) -> tuple[int, nw.Expr]:
    """How many rows share their unit id with another row, and which to show.

    The ids are found by a group-by in the engine; the rows shown are those of the first
    few duplicated ids (in row order when rows are numbered), so they are the first
    offending rows.
    """
    aggs = [nw.len().alias("__bc_k")] + ([nw.col(_ROW).min().alias("__bc_first")]
                                          if numbered else [])
    dup = frame.group_by(unit_id).agg(*aggs).filter(nw.col("__bc_k") > 1)
    n_dup = _count(to_pandas(dup.select(nw.col("__bc_k").sum().alias("rows")))["rows"].iloc[0])
    if not n_dup:
        return 0, nw.lit(False)
    if numbered:
        dup = dup.sort("__bc_first")
    ids = to_pandas(dup.select(unit_id).head(MAX_SHOWN))[unit_id].tolist()
    present = [v.item() if isinstance(v, np.generic) else v for v in ids if not pd.isna(v)]
    bad = nw.col(unit_id).is_in(present)
    if len(present) < len(ids):
        bad = bad | nw.col(unit_id).is_null()
    return n_dup, bad


def prepare_frame(source: EventFrame, *, created, converted, observed_until, cohort,
                  time_unit, count, duration, event, unit_id, bin_width, stacklevel,
                  covariates=()):
    """Validate an events table and aggregate it: the one path of :func:`bayesconv.prepare`.

    Row-level checks are counted in one query in the frame's engine; the first failing one
    raises ``ValueError`` naming the first offending rows (by number, by index label for
    pandas, by their values in lazy frames without row numbers); warnings (late conversions,
    zero counts, empty categories) are issued after all checks passed.

    Parameters
    ----------
    source : EventFrame
        The events table (:func:`from_native`, or
        :func:`bayesconv.data.pandas_input.from_pandas`).
    created, converted, observed_until, cohort, time_unit, count, duration, event, unit_id, \
bin_width
        As for :func:`bayesconv.prepare`, each already checked on its own (one layout given,
        ``time_unit`` known, ``bin_width`` a positive float or None).
    stacklevel : int
        ``stacklevel`` of the warnings, pointing at the caller of ``prepare``.
    covariates : sequence of str
        Columns that, with the cohort, define the cells (the key columns ``cov0``, ``cov1``,
        ... of ``rows`` and ``ages``).

    Returns
    -------
    rows, ages : pandas.DataFrame
        As :func:`aggregate`, with ``g`` holding cohort codes into ``labels`` and a column
        ``cov<i>`` per covariate.
    labels : tuple
        The cohort labels: the categories in their order for categorical cohorts (empty ones
        left out with a warning), else the sorted distinct labels; ``("all",)`` without a
        cohort column.
    covariate_categories : dict
        Categorical covariate -> (categories, ordered), to rebuild their dtype.
    observed_until : object
        The scalar observation date or number, (min, max) of the column (one value if they
        agree), or None for the durations layout.
    """
    frame = source.frame
    eager = isinstance(frame, nw.DataFrame)
    schema = frame.schema if eager else frame.collect_schema()
    implementation = frame.implementation
    available = [c for c in schema.names()
                 if not (isinstance(c, str) and c.startswith(INTERNAL_PREFIX))]
    require_columns(available, {"created": created, "converted": converted, "cohort": cohort,
                                "count": count, "duration": duration, "event": event,
                                "unit_id": unit_id})
    covariates = list(covariates or ())
    missing = [c for c in covariates if not is_column(c, available)]
    if len(missing) == 1:
        require_columns(available, {"covariates": missing[0]})
    elif missing:
        raise ValueError(msg.NOT_COLUMNS.format(arg="covariates", names=missing,
                                                available=list(available)))
    roles = {cohort: "cohort", created: "created", converted: "converted",
             duration: "duration", event: "event", count: "count", unit_id: "unit_id"}
    for c in covariates:
        if c in roles or (isinstance(observed_until, str) and c == observed_until):
            raise ValueError(msg.COVARIATE_IS_TAKEN.format(
                covariates=covariates, col=c, role=roles.get(c, "observed_until")))
    if eager:
        if len(frame) == 0:
            raise ValueError(msg.EMPTY_TABLE)
        if _ROW not in schema:
            frame = frame.with_row_index(_ROW)
    numbered = eager or _ROW in schema
    checks = _Checks(frame, source, numbered)
    kinds = {name: _kind(dtype) for name, dtype in schema.items()}
    extra: dict[str, nw.Expr] = {"__bc_n": nw.len()}

    # ---- counts
    if count is not None:
        if kinds[count] != "number":
            raise ValueError(msg.WRONG_DTYPE.format(col=count, dtype=schema[count],
                                                    expected=msg.EXPECTED_COUNTS))
        n_expr = nw.col(count)
        miss = _missing(count, "number", schema[count])
        if schema[count].is_float():
            checks.error(msg.INFINITE.format(col=count), ~n_expr.is_finite() & ~miss, [count])
        checks.error(msg.MISSING_COUNT.format(col=count), miss, [count])
        checks.error(msg.NEGATIVE_COUNT.format(col=count), n_expr < 0, [count])
        if schema[count].is_float():
            checks.error(msg.NON_INTEGER_COUNT.format(col=count), n_expr != n_expr.floor(),
                         [count])
        n_expr = n_expr.cast(nw.Int64)
    else:
        n_expr = nw.lit(1).cast(nw.Int64)

    # ---- unit ids: duplicated ids, found by a group-by in the engine
    if unit_id is not None:
        n_dup, bad = _duplicated_ids(frame, unit_id, numbered)
        checks.error(msg.DUPLICATED_ID.format(col=unit_id), bad, [unit_id], n_bad=n_dup)

    # ---- cohorts
    categories = source.categories
    if cohort is None:
        g_expr = nw.lit("all")
    else:
        g_expr = nw.col(cohort)
        checks.error(msg.MISSING_COHORT.format(col=cohort), nw.col(cohort).is_null(), [cohort])
        if isinstance(schema[cohort], nw.Enum):
            categories = list(schema[cohort].categories)
            g_expr = g_expr.cast(nw.String)
        elif isinstance(schema[cohort], nw.Categorical) and categories is None:
            g_expr = g_expr.cast(nw.String)  # (pandas categoricals group by their values)

    # ---- covariates: part of the cell key
    cov_exprs, cov_categories = [], dict(source.covariate_categories)
    for i, c in enumerate(covariates):
        kind = _kind(schema[c])
        dtype = schema[c]
        expr = nw.col(c)
        if isinstance(dtype, nw.Enum):
            cov_categories[c] = (list(dtype.categories), True)
            expr = expr.cast(nw.String)
        elif isinstance(dtype, nw.Categorical):
            expr = expr.cast(nw.String)
        elif kind == "other":
            raise ValueError(msg.COVARIATE_DTYPE.format(col=c, dtype=dtype))
        checks.error(msg.MISSING_COVARIATE.format(col=c), _missing(c, kind, dtype), [c])
        cov_exprs.append(expr.alias(f"cov{i}"))

    # ---- durations
    observed = None
    dates = duration is None
    if not dates:
        if kinds[duration] != "number":
            raise ValueError(msg.WRONG_DTYPE.format(col=duration, dtype=schema[duration],
                                                    expected=msg.EXPECTED_DURATIONS))
        d = nw.col(duration).cast(nw.Float64)
        miss = _missing(duration, "number", schema[duration])
        if schema[duration].is_float():
            checks.error(msg.INFINITE.format(col=duration), ~d.is_finite() & ~miss, [duration])
        checks.error(msg.MISSING_DURATION.format(col=duration), miss, [duration])
        checks.error(msg.NEGATIVE_DURATION.format(col=duration), d < 0, [duration])
        if kinds[event] == "bool":
            conv = nw.col(event)
            bad_event = nw.col(event).is_null()
        elif kinds[event] == "number":
            ev = nw.col(event).cast(nw.Float64)
            bad_event = ~(ev.is_in([0.0, 1.0]).fill_null(False))
            conv = ev == 1.0
        else:
            raise ValueError(msg.WRONG_DTYPE.format(col=event, dtype=schema[event],
                                                    expected=msg.EXPECTED_EVENTS))
        checks.error(msg.NOT_AN_EVENT.format(col=event), bad_event, [event])
        dur = d
        age = d
        ticks, integer, secs = 1.0, False, 1.0
    else:
        obs_is_col = is_column(observed_until, available)
        date_cols = [created, converted] + ([observed_until] if obs_is_col else [])
        for col in date_cols:
            if kinds[col] == "string":
                raise ValueError(msg.STRING_DATES.format(col=col, dtype=schema[col],
                                                         hint=_cast_hint(col)))
        created_kind = kinds[created]
        cols = date_cols
        if created_kind in ("datetime", "date"):
            for col in date_cols[1:]:
                if kinds[col] not in ("datetime", "date"):
                    raise ValueError(msg.OTHER_KIND_THAN_CREATED.format(
                        col=col, dtype=schema[col], created=created, what="dates",
                        created_dtype=schema[created]))
            states = {c: (kinds[c] == "datetime" and schema[c].time_zone is not None)
                      for c in date_cols if kinds[c] in ("datetime", "date")}
            if len(set(states.values())) > 1:
                raise ValueError(msg.TIMEZONES_MIXED.format(states=msg.timezone_states(states)))
            aware = states[created]
            tick = source.tick
            epochs = {"__bc_c": _epoch(created, created_kind, implementation, tick),
                      "__bc_v": _epoch(converted, kinds[converted], implementation, tick)}
            if obs_is_col:
                epochs["__bc_o"] = _epoch(observed_until, kinds[observed_until],
                                          implementation, tick)
            # computed once (narwhals would evaluate an expression again in every check)
            frame = frame.with_columns(*(e.alias(k) for k, e in epochs.items()))
            checks.frame = frame
            c_t, v_t = nw.col("__bc_c"), nw.col("__bc_v")
            if obs_is_col:
                o_t = nw.col("__bc_o")
                extra["__bc_omin"] = nw.col(observed_until).min()
                extra["__bc_omax"] = nw.col(observed_until).max()
            else:
                ts = scalar_date(observed_until, aware)
                if not isinstance(ts, pd.Timestamp):
                    raise ValueError(msg.OBSERVED_NOT_A_DATE.format(value=observed_until,
                                                                    available=available))
                o_t = nw.lit(_scalar_ticks(ts, tick)).cast(nw.Int64)
                observed = ts
            c_miss, o_miss = nw.col(created).is_null(), (
                nw.col(observed_until).is_null() if obs_is_col else nw.lit(False))
            to_conv = v_t - c_t            # integer ticks
            to_obs = o_t - c_t
            ticks, integer, secs = TICKS_PER_SECOND[tick], True, TIME_UNITS[time_unit]
            conv_raw = ~nw.col(converted).is_null()
            late = conv_raw & (v_t > o_t)
        elif created_kind == "number":
            for col in date_cols[1:]:
                if kinds[col] not in ("number", "other"):
                    raise ValueError(msg.OTHER_KIND_THAN_CREATED.format(
                        col=col, dtype=schema[col], created=created, what="numbers",
                        created_dtype=schema[created]))
            num = {}
            for col in date_cols:
                if kinds[col] == "other":
                    num[col] = nw.lit(None, nw.Float64)
                    continue
                num[col] = nw.col(col).cast(nw.Float64)
                if schema[col].is_float():
                    checks.error(msg.INFINITE.format(col=col), ~num[col].is_finite()
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
                    raise ValueError(msg.OBSERVED_NOT_A_NUMBER.format(
                        value=observed_until, created=created, available=available)) from None
                o_miss = nw.lit(False)
                observed = float(observed_until)
            to_conv = num[converted] - num[created]
            to_obs = o_num - num[created]
            ticks, integer, secs = 1.0, False, 1.0
            conv_raw = v_present
            late = conv_raw & (to_conv > to_obs)
        else:
            raise ValueError(msg.WRONG_DTYPE.format(
                col=created, dtype=schema[created],
                expected=msg.EXPECTED_TIMES.format(hint=_cast_hint(created))))
        checks.error(msg.MISSING_CREATED.format(col=created), c_miss, [created])
        if obs_is_col:
            what = "time" if created_kind == "number" else "date"
            checks.error(msg.MISSING_OBSERVED.format(what=what, col=observed_until), o_miss,
                         [observed_until])
        checks.error(msg.CONVERTED_BEFORE_CREATED.format(converted=converted, created=created),
                     conv_raw & (to_conv < 0), cols)
        checks.error(msg.OBSERVED_BEFORE_CREATED.format(created=created), to_obs < 0, cols)
        checks.warning(msg.LATE_CONVERSIONS, late, cols)
        conv = conv_raw & ~late
        dur = nw.when(conv).then(to_conv).otherwise(to_obs)
        age = to_obs
    if count is not None:
        checks.warning(msg.ZERO_COUNTS, nw.col(count) == 0, None)

    values = checks.count(extra)
    if int(values["__bc_n"]) == 0:
        raise ValueError(msg.EMPTY_TABLE)
    for text in checks.raise_first():
        warnings.warn(text, DataWarning, stacklevel=stacklevel)
    if dates and "__bc_omin" in values:
        lo, hi = values["__bc_omin"], values["__bc_omax"]
        if created_kind == "number":
            lo, hi = float(lo), float(hi)
        else:
            lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
        observed = (lo, hi) if lo != hi else lo

    tick_type = nw.Int64 if integer else nw.Float64
    units = frame.select(g_expr.alias("g"), *cov_exprs, dur.cast(tick_type).alias("d"),
                         conv.fill_null(False).alias("conv"), age.cast(tick_type).alias("age"),
                         n_expr.alias("n"))
    keys = ["g"] + [f"cov{i}" for i in range(len(covariates))]
    rows, ages = aggregate(units, bin_width=bin_width, followup=dates, ticks_per_second=ticks,
                           secs=secs, integer=integer, keys=keys)
    labels = _labels(rows["g"], categories, stacklevel=stacklevel + 1)
    rows["g"] = pd.Categorical(rows["g"], categories=list(labels)).codes.astype(np.int64)
    if ages is not None:
        ages["g"] = pd.Categorical(ages["g"], categories=list(labels)).codes.astype(np.int64)
    return rows, ages, labels, observed, cov_categories


def _labels(keys: pd.Series, categories: list | None, *, stacklevel: int) -> tuple:
    """Cohort labels of the aggregated keys: the categories in order, else sorted."""
    if categories is None:
        return tuple(pd.Categorical(keys).categories)
    used = set(keys)
    empty = [c for c in categories if c not in used]
    if empty:
        warnings.warn(msg.EMPTY_CATEGORIES.format(empty=empty), DataWarning,
                      stacklevel=stacklevel)
    return tuple(c for c in categories if c in used)
