"""pandas input: what narwhals cannot do portably, done before the one path of ``prepare``.

:func:`from_pandas` turns a pandas DataFrame into an :class:`~bayesconv.data.engine.EventFrame`
that :func:`~bayesconv.data.engine.prepare_frame` validates and aggregates like any other
frame. It only normalises what pandas leaves untyped or what narwhals reads lossily:

* text and object date columns are parsed as ISO 8601 (:data:`~bayesconv.data.messages.\
TZ_TEXT_PATTERN`: text with a UTC offset or ``Z`` is read in UTC; a column mixing
  timezone-aware and naive values is refused, naming the rows of the smaller group; text that
  is not a date is refused, naming the rows); an entirely empty conversion column takes the
  creation column's type;
* datetime columns are held as Arrow timestamps, so that narwhals gives their integer
  nanoseconds exactly even next to missing values (numpy-backed columns turn them into
  floats);
* object (and text) columns that should hold numbers are coerced, naming the rows of values
  that are not numbers; object event indicators map True/False to 1/0;
* a categorical cohort column gives its category order and its labels (of any type);
* rows are numbered by position (:data:`~bayesconv.data.messages.ROW_COLUMN`) and named in
  messages by their index labels, and messages show each replaced column's original values.

Validation messages raised here are those of :mod:`~bayesconv.data.messages`, formatted as the
one path formats its own.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

import narwhals as nw
import numpy as np
import pandas as pd
import pyarrow as pa

from . import messages as msg
from .engine import EventFrame, is_column, require_columns
from .messages import INTERNAL_PREFIX, MAX_SHOWN, ROW_COLUMN, describe_rows, row_problem

__all__ = ["from_pandas"]


def _raise_rows(events: pd.DataFrame, bad, problem: str, columns: Sequence[Hashable]) -> None:
    """Raise ``ValueError``: ``problem``, how many rows have it, and the first of them."""
    idx = np.flatnonzero(np.asarray(bad, dtype=bool))
    if len(idx):
        first = [(events.index[i], [(c, events[c].iloc[i]) for c in columns])
                 for i in idx[:MAX_SHOWN]]
        raise ValueError(row_problem(problem, len(idx), describe_rows(
            first, len(idx), timestamps_as_text=False)))


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


def _str_has_tz(value: str) -> bool:
    return re.match(msg.TZ_TEXT_PATTERN, value) is not None


def _to_datetime(events: pd.DataFrame, col: Hashable) -> pd.Series:
    """A text or object column parsed to datetime64, refusing unparseable values and tz mixing.

    Columns of other types are returned unchanged (the one path says what is wrong with them).
    """
    values = events[col]
    if not _is_text_or_object(values):
        return values
    present = values.notna().to_numpy()
    # Python datetimes / Timestamps / text: check that all agree on timezone-awareness
    aware = values.map(lambda v: getattr(v, "tzinfo", None) is not None
                       if not isinstance(v, str) else _str_has_tz(v))
    aware = aware.to_numpy(dtype=bool) & present
    naive = ~aware & present
    if aware.any() and naive.any():
        problem, list_aware = msg.mixed_timezone_problem(col, int(aware.sum()), int(naive.sum()))
        _raise_rows(events, aware if list_aware else naive, problem, [col])
    # all timezone-aware (a mix was refused above): read them in UTC, whatever their offsets
    # (-05:00 and Z in one column), as the command line's DuckDB reader does
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601",
                                utc=bool(aware.any()))
    except (ValueError, TypeError) as err:
        raise ValueError(msg.NOT_READ_AS_DATES.format(col=col, err=err)) from None
    bad = present & parsed.isna().to_numpy()
    _raise_rows(events, bad, msg.NOT_ISO_DATES.format(col=col, hint=msg.PANDAS_DATES_HINT),
                [col])
    return parsed


def _to_numbers(events: pd.DataFrame, col: Hashable) -> pd.Series:
    """A text or object column as numbers, refusing values that are neither numbers nor missing."""
    values = events[col]
    num = pd.to_numeric(values, errors="coerce")
    _raise_rows(events, values.notna().to_numpy() & num.isna().to_numpy(),
                msg.NOT_NUMBERS.format(col=col), [col])
    return num


def _to_event(values: pd.Series) -> pd.Series:
    """Object event indicators as numbers: True/False as 1/0, anything else not a number as NaN
    (which the one path reports as not 0/1, showing the original value)."""
    as_numbers = values.astype("object").map(
        lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    return pd.to_numeric(as_numbers, errors="coerce")


def _arrow_timestamps(values: pd.Series) -> pd.api.extensions.ExtensionArray:
    """Datetimes as an Arrow-backed array (same unit and time zone), missing values as nulls."""
    return pd.arrays.ArrowExtensionArray(pa.array(values, from_pandas=True))


def from_pandas(events: pd.DataFrame, *, created, converted, observed_until, cohort, count,
                duration, event, unit_id, covariates=()) -> EventFrame:
    """Normalise a pandas events table for :func:`~bayesconv.data.engine.prepare_frame`.

    Parameters
    ----------
    events : pandas.DataFrame
        The events table (not modified).
    created, converted, observed_until, cohort, count, duration, event, unit_id, covariates
        As for :func:`bayesconv.prepare` (layouts already checked).

    Returns
    -------
    EventFrame
        A narwhals view of a shallow copy of ``events`` with the normalised columns, row
        numbers, the index labels to name rows by and nanosecond ticks.

    Raises
    ------
    ValueError
        For a column name that does not exist, date text that is not ISO 8601 or that mixes
        timezone-aware and naive values, and values that are neither numbers nor missing in
        columns of numbers, naming the rows by index label.
    """
    require_columns(list(events.columns), {
        "created": created, "converted": converted, "cohort": cohort, "count": count,
        "duration": duration, "event": event, "unit_id": unit_id})
    replaced: dict = {}

    if count is not None and _is_text_or_object(events[count]):
        replaced[count] = _to_numbers(events, count)
    if duration is not None:
        if _is_text_or_object(events[duration]):
            replaced[duration] = _to_numbers(events, duration)
        if _is_text_or_object(events[event]):
            replaced[event] = _to_event(events[event])
    else:
        obs = [observed_until] if is_column(observed_until, list(events.columns)) else []
        cols = list(dict.fromkeys([created, converted, *obs]))
        if _is_datetime_like(events[created]):
            first = _to_datetime(events, created)
            dates = {created: first}
            for col in cols[1:]:
                dates[col] = _to_datetime(events, col) if events[col].notna().any() \
                    else pd.Series(pd.NaT, index=events.index, dtype=first.dtype)
            for col, values in dates.items():
                if pd.api.types.is_datetime64_any_dtype(values):
                    replaced[col] = _arrow_timestamps(values)
        else:
            for col in cols:
                if _is_text_or_object(events[col]):
                    replaced[col] = _to_numbers(events, col)

    categories = None
    if cohort is not None and isinstance(events[cohort].dtype, pd.CategoricalDtype):
        categories = list(events[cohort].cat.categories)
    covariate_categories = {}
    for col in covariates or ():
        if col in events.columns and isinstance(events[col].dtype, pd.CategoricalDtype):
            covariate_categories[col] = (list(events[col].cat.categories),
                                         bool(events[col].cat.ordered))
            replaced.setdefault(col, events[col].astype(object).where(events[col].notna(), None))

    frame = events.copy(deep=False)
    frame.index = pd.RangeIndex(len(frame))
    shown = {}
    for i, (col, values) in enumerate(replaced.items()):
        hidden = f"{INTERNAL_PREFIX}_shown{i}"
        frame[hidden] = events[col].array        # the input's own values, for messages
        frame[col] = values.array if isinstance(values, pd.Series) else values
        shown[col] = hidden
    frame[ROW_COLUMN] = np.arange(len(frame), dtype=np.int64)
    return EventFrame(nw.from_native(frame, eager_only=True), row_labels=events.index,
                      shown=shown, categories=categories, tick="ns", timestamps_as_text=False,
                      covariate_categories=covariate_categories)
