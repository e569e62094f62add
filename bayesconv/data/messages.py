"""Every message of :func:`bayesconv.prepare` and its readers, each written once.

The texts are templates (``str.format`` fields in braces) used by the pandas pre-step
(:mod:`~bayesconv.data.pandas_input`), the narwhals path that validates every input
(:mod:`~bayesconv.data.engine`), :mod:`~bayesconv.data.prepare` and the command line's DuckDB
reader (:mod:`~bayesconv.data.readers`). Row-level problems read
``"<problem> in <n> rows: row <name> (<column>=<value>, ...); ..."`` (:func:`row_problem`,
:func:`describe_rows`). This module imports nothing from the package but the time units, so
every module of :mod:`bayesconv.data` may use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .units import TIME_UNITS

__all__ = ["NOT_ISO_DATES", "ROW_COLUMN", "TZ_TEXT_PATTERN", "describe_rows",
           "mixed_timezone_problem", "row_problem"]

#: Column of row numbers (0, 1, ... in input order). Eager frames get it from
#: ``with_row_index`` (pandas frames from their positions, their index labels then name the
#: rows); a reader of a lazy source (the command line's DuckDB reader,
#: :mod:`bayesconv.data.readers`) may add it itself, and then offending rows are named by
#: number there too.
ROW_COLUMN = "__bayesconv_row"
#: Prefix of the columns bayesconv adds to a frame; they are never listed as available.
INTERNAL_PREFIX = "__bayesconv"
#: How many offending rows a message shows.
MAX_SHOWN = 5

# ----------------------------------------------------------------------------- arguments

UNKNOWN_TIME_UNIT = ("time_unit={time_unit!r} is not one of " + str(list(TIME_UNITS))
                     + " (a year 'Y' is 365.25 days)")
BAD_BIN_WIDTH = ("bin_width must be a positive finite number (in time units {time_unit!r}) or "
                 "None, got {bin_width!r}")
BAD_RESOLUTION = ("resolution must be 'auto', 'detect', 'exact' (or None) or a positive "
                  "finite number of time units (time_unit={time_unit!r}), got {resolution!r}")
NOT_A_FRAME = ("events must be a pandas DataFrame, got {kind}; Polars DataFrames and "
               "LazyFrames, DuckDB relations and PySpark DataFrames (any frame narwhals reads) "
               "are accepted too")
BOTH_LAYOUTS = "give either created/converted/observed_until or duration/event, not both"
NO_LAYOUT = ("give created=, converted= and observed_until= (dates), or duration= and event= "
             "(durations)")
DATES_INCOMPLETE = ("created=, converted= and observed_until= are all required (got "
                    "created={created!r}, converted={converted!r}, "
                    "observed_until={observed_until!r})")
DURATIONS_INCOMPLETE = ("duration= and event= are both required (got duration={duration!r}, "
                        "event={event!r})")

# ----------------------------------------------------------------------------- the table

NOT_A_COLUMN = ("{arg}={name!r} is not a column of the events table; available columns: "
                "{available}")
NOT_COLUMNS = ("{arg}= names {names!r}, which are not columns of the events table; available "
               "columns: {available}")
EMPTY_TABLE = "the events table is empty: there is nothing to prepare"
#: ``expected`` is one of the ``EXPECTED_*`` texts below.
WRONG_DTYPE = "column {col!r} has dtype {dtype}, expected {expected}"
EXPECTED_COUNTS = "numbers (counts of identical units)"
EXPECTED_DURATIONS = "numbers (durations in the time unit)"
EXPECTED_EVENTS = "0/1 or True/False (an event indicator)"
EXPECTED_TIMES = ("numbers or dates (types narwhals does not know, such as DuckDB's "
                  "TIMESTAMPTZ_NS, show as Unknown): {hint}")
#: ``what`` is "dates" or "numbers": the kind of the created column.
OTHER_KIND_THAN_CREATED = ("column {col!r} has dtype {dtype} but {created!r} holds {what} "
                           "({created_dtype}); give {what} in both")
STRING_DATES = ("column {col!r} holds strings ({dtype}); dates are not parsed inside the "
                "engine: {hint}")
CAST_HINT = ("cast column {col!r} to a date or datetime type in the engine first (DuckDB: "
             "CAST({col} AS TIMESTAMP); Polars: pl.col({col!r}).str.to_datetime(); Spark: "
             "F.to_timestamp({col!r}))")

# ----------------------------------------------------------------------------- text read as data

#: An ISO 8601 date-time text that ends in a time zone designator (Z, ±HH, ±HHMM, ±HH:MM).
#: One pattern for the pandas pre-step and the command line's DuckDB reader, so that both read
#: the same text as timezone-aware; a date alone ("2024-01-05") never matches.
TZ_TEXT_PATTERN = (r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*"
                   r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$")
#: The problem text of values that are not ISO 8601 dates (pandas and DuckDB readers).
NOT_ISO_DATES = ("values in column {col!r} that are not ISO 8601 dates "
                 "(YYYY-MM-DD[ HH:MM:SS][±HH:MM]{hint})")
PANDAS_DATES_HINT = "; parse other formats with pandas.to_datetime(..., format=...) first"
NOT_READ_AS_DATES = "column {col!r} could not be read as dates: {err}"
NOT_NUMBERS = "values in column {col!r} that are neither numbers nor missing"


def mixed_timezone_problem(col: str, n_aware: int, n_naive: int) -> tuple[str, bool]:
    """How to report a column that mixes timezone-aware and naive values.

    The rows listed are those of the smaller group, the few a user has to find and fix (one
    timestamp with an offset among thousands of plain ones, or the reverse).

    Returns
    -------
    problem : str
        Text for :func:`row_problem` ("... in N rows: row ...").
    list_aware : bool
        Whether the rows to list are the timezone-aware ones.
    """
    list_aware = n_aware <= n_naive
    minority, majority = ("aware", "naive") if list_aware else ("naive", "aware")
    n_major = n_naive if list_aware else n_aware
    return (f"timezone-{minority} timestamps in column {col!r} mixed with {n_major} "
            f"timezone-{majority} ones (make all naive or all aware)", list_aware)


#: ``states`` is "'created' is timezone-aware, 'converted' is naive" (:func:`timezone_states`).
TIMEZONES_MIXED = ("timezone-aware and naive timestamps are mixed: {states}; convert all to "
                   "one (e.g. .dt.tz_localize(None) or .dt.tz_convert('UTC'))")


def timezone_states(states: dict[str, bool]) -> str:
    """"'a' is timezone-aware, 'b' is naive" for :data:`TIMEZONES_MIXED`."""
    return ", ".join(f"{col!r} is {'timezone-aware' if aware else 'naive'}"
                     for col, aware in states.items())


# ----------------------------------------------------------------------------- observed_until

OBSERVED_NOT_ISO = ("observed_until={value!r} is not an ISO 8601 date (YYYY-MM-DD[ HH:MM:SS]) "
                    "nor a column of the events table")
OBSERVED_TIMEZONE = ("observed_until={value!r} is timezone-{state} but the event timestamps "
                     "are timezone-{columns}")
OBSERVED_NOT_A_DATE = ("observed_until={value!r} is neither a column nor a date (available "
                       "columns: {available})")
OBSERVED_NOT_A_NUMBER = ("observed_until={value!r} is neither a column nor a number (the "
                         "created column {created!r} is numeric; available columns: "
                         "{available})")

# ----------------------------------------------------------------------------- rows

INFINITE = "infinite values in column {col!r}"
MISSING_COUNT = "missing count in column {col!r}"
NEGATIVE_COUNT = "negative count in column {col!r}"
NON_INTEGER_COUNT = "non-integer count in column {col!r}"
DUPLICATED_ID = "duplicated unit id in column {col!r} (each unit must appear once)"
MISSING_COHORT = "missing cohort label in column {col!r}"
MISSING_COVARIATE = ("missing values in covariate column {col!r} (a cell needs every "
                     "covariate; fill or drop them first)")
COVARIATE_DTYPE = ("covariate column {col!r} has dtype {dtype}; covariates are numbers, "
                   "booleans, text, categories or dates")
COVARIATE_IS_TAKEN = ("covariates={covariates!r}: {col!r} is already the {role} column; a "
                      "covariate is another column")
MANY_CELLS = ("the covariates {covariates} make {n_cells:,} cells (distinct combinations with "
              "the cohort) for {n_units:,} units: the model's cost grows with cells; bin "
              "numeric covariates with many values (e.g. pandas.cut, or weeks instead of days) "
              "or leave out ones that barely repeat")
MISSING_DURATION = "missing duration in column {col!r}"
NEGATIVE_DURATION = "negative duration in column {col!r}"
NOT_AN_EVENT = "event indicator in column {col!r} that is not 0/1 or True/False"
MISSING_CREATED = "missing creation time in column {col!r}"
#: ``what`` is "date" for dates, "time" for numeric times.
MISSING_OBSERVED = "missing observation {what} in column {col!r}"
CONVERTED_BEFORE_CREATED = "conversion before creation ({converted!r} earlier than {created!r})"
OBSERVED_BEFORE_CREATED = ("observation date before creation (observation date earlier than "
                           "{created!r})")

# ----------------------------------------------------------------------------- warnings, results

LATE_CONVERSIONS = ("{n} conversions are dated after the observation date and are treated as "
                    "not converted at the observation date; first: {rows}")
ZERO_COUNTS = "{n} rows with count 0 stand for no units and are left out"
EMPTY_CATEGORIES = "cohort categories with no rows are left out: {empty}"
NO_UNITS = "every row has count 0: there are no units"
COHORTS_WITHOUT_UNITS = "cohorts with no units are left out: {missing}"
SIMILAR_LABELS = ("cohort labels in {column} that differ only in case or surrounding "
                  "whitespace are separate cohorts: {groups}; if they are one arm, clean the "
                  "labels first (e.g. .str.strip())")
IMPLAUSIBLE_DURATIONS = ("durations from {where} run from {span}, {why}: implausible for "
                         "time_unit={time_unit!r}; are the numbers in another unit? (time_unit "
                         "says what a number means for numeric columns: one of "
                         + str(list(TIME_UNITS)) + ")")


# ----------------------------------------------------------------------------- naming rows


def _plain(value: Any) -> Any:
    """Numpy scalars as plain Python values, so messages read ``13`` not ``np.int64(13)``."""
    return value.item() if isinstance(value, np.generic) else value


def _shown(value: Any, timestamps_as_text: bool) -> Any:
    value = _plain(value)
    if timestamps_as_text and isinstance(value, pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value))
    return value


def describe_rows(rows: Iterable[tuple[Any, Sequence[tuple[str, Any]]]], n_bad: int, *,
                  named: bool = True, timestamps_as_text: bool = True) -> str:
    """'row 12 (created=..., converted=...); row 13 (...), and 4 more'.

    Parameters
    ----------
    rows : iterable of (name, [(column, value), ...])
        The first offending rows (at most :data:`MAX_SHOWN` are shown), each with its name
        (a row number or index label) and the values to show.
    n_bad : int
        How many rows have the problem.
    named : bool
        False for lazy frames without row numbers: the values alone say which rows.
    timestamps_as_text : bool
        Show timestamps as ISO text, as files write them (engines), or as Python reprs
        (``Timestamp('2024-01-03 00:00:00')``, what a pandas user has in the frame).
    """
    shown = []
    for name, values in list(rows)[:MAX_SHOWN]:
        text = ", ".join(f"{col}={_shown(value, timestamps_as_text)!r}" for col, value in values)
        shown.append(f"row {_plain(name)!r} ({text})" if named else f"({text})")
    more = f", and {n_bad - MAX_SHOWN} more" if n_bad > MAX_SHOWN else ""
    return "; ".join(shown) + more


def row_problem(problem: str, n_bad: int, rows: str) -> str:
    """'<problem> in <n> row(s): <rows>', the message of a row-level error."""
    return f"{problem} in {n_bad} {'row' if n_bad == 1 else 'rows'}: {rows}"
