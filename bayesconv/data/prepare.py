"""Event preparation: validation, durations in a stated time unit, aggregation.

``prepare`` turns an events table (one row per unit, or an already aggregated table with a
count column) into a :class:`ConversionData`: one row per distinct
(cohort, duration, converted) combination with the number of identical units, so that every
later computation costs in proportion to distinct rows, not to units.

Every input, pandas or an engine's frame, is validated and aggregated by one path,
:func:`bayesconv.data.engine.prepare_frame`; a pandas DataFrame is first normalised by
:func:`bayesconv.data.pandas_input.from_pandas`. The messages are those of
:mod:`bayesconv.data.messages`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataWarning
from . import messages as msg
from .container import ConversionData
from .engine import from_native, prepare_frame
from .pandas_input import from_pandas
from .resolution import detect as detect_resolution
from .units import TIME_UNITS, human_duration, number

__all__ = ["prepare", "shown_label", "similar_labels", "similar_labels_note"]


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
    covariates: Sequence[str] | None = None,
    resolution: float | str | None = "auto",
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
    Every input goes through one path: durations, validation counts and the aggregation run
    inside the frame's engine as narwhals expressions (pandas included); only one row of
    validation counts, the aggregated tables and, for bad input, the first few offending rows
    are collected. A pandas DataFrame is first normalised by a small pandas step: ISO 8601
    text and object date columns are parsed (text with UTC offsets is read in UTC), object
    columns of numbers are coerced, and offending rows are named by index label. Other
    engines' dates must be engine date/datetime columns (strings are not parsed portably: a
    string column is an error asking for a cast); offending rows are named by position for
    eager frames and by their values for lazy ones (by number if the frame carries the
    row-number column of :mod:`bayesconv.data.readers`). Durations are computed from integer
    timestamps: microseconds in engines, nanoseconds for pandas.

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
    covariates : list of str, optional
        Further columns that, with the cohort, define the cells the model's formulas work on
        (:attr:`ConversionData.cells`): factors such as a platform (text, categories,
        booleans), periods such as a signup week (numbers or dates, for ``rw(...)``), numeric
        covariates. Rows are aggregated by (cell, duration, converted), so the cost grows
        with distinct cells; a warning says when the covariates make nearly one cell per
        unit. Missing values are an error naming the rows.
    resolution : {"auto", "detect", "exact"}, float or None, default "auto"
        The time resolution δ (in ``time_unit``) that creation and conversion times were
        recorded to, e.g. 1 for timestamps floored to the day with ``time_unit="D"``, and
        how the model reads it. ``"auto"`` (default) detects δ from the durations of
        converted units (a week, a day, an hour, a minute, a second, or one time unit for
        numeric times: the largest that every positive duration is a multiple of; see
        :mod:`bayesconv.data.resolution`) and reads the rows as interval-censored within
        their bins (see Notes), unless δ is negligible (under 0.1% of the median duration);
        a number sets δ and that reading. ``"detect"`` detects δ and states it but reads
        times as exact (faster on data with many cells and days: per gradient about 4× the
        exact reading's cost, ``benchmarks/resolution.py``; biased where δ is not small
        against the lag). None (or ``"exact"``) reads times as exact without detecting.
        Ignored with ``bin_width``, whose grid reading it would duplicate. The result's
        ``meta`` and repr say what was found and how it is read.

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

    **Time resolution.** When times were recorded to a resolution δ (dates without a time of
    day, day numbers, integer weeks), the rows keep the recorded durations and
    ``meta["resolution"]`` holds δ; by default (``resolution="auto"``, or a number) the model
    reads them as coarsened data (Heitjan & Rubin,
    "Ignorability and coarse data", *Ann. Statist.* 19, 1991): both times floored to δ, a
    recorded duration kδ of a converted unit means a lag in ((k − 1)δ, (k + 1)δ) with
    triangular weights, and a censored unit of recorded age a was followed for a time in
    (a − δ, a] (its creation time lies somewhere in its bin). In the duration/event layout only
    the duration was rounded, by floor or ceiling for all the package can tell: a duration d
    is read as a time in (d − δ/2, d + δ/2]. Exact timestamps stay exact; so does a detected
    resolution under 0.1% of the median duration (seconds on lags of days).
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(msg.UNKNOWN_TIME_UNIT.format(time_unit=time_unit))
    if bin_width is not None:
        if not _positive_number(bin_width):
            raise ValueError(msg.BAD_BIN_WIDTH.format(time_unit=time_unit, bin_width=bin_width))
        bin_width = float(bin_width)
    if isinstance(resolution, str) and resolution == "exact":
        resolution = None
    if resolution is not None and not (isinstance(resolution, str)
                                       and resolution in ("auto", "detect")) \
            and not _positive_number(resolution):
        raise ValueError(msg.BAD_RESOLUTION.format(time_unit=time_unit, resolution=resolution))
    source = None if isinstance(events, pd.DataFrame) else from_native(events)
    dates_layout = created is not None or converted is not None
    dur_layout = duration is not None or event is not None
    if dates_layout and dur_layout:
        raise ValueError(msg.BOTH_LAYOUTS)
    if not dates_layout and not dur_layout:
        raise ValueError(msg.NO_LAYOUT)
    if dates_layout and (created is None or converted is None or observed_until is None):
        raise ValueError(msg.DATES_INCOMPLETE.format(created=created, converted=converted,
                                                     observed_until=observed_until))
    if dur_layout and (duration is None or event is None):
        raise ValueError(msg.DURATIONS_INCOMPLETE.format(duration=duration, event=event))

    columns = dict(created=created, converted=converted, observed_until=observed_until,
                   cohort=cohort, count=count, duration=duration, event=event, unit_id=unit_id)
    covariates = list(dict.fromkeys([covariates] if isinstance(covariates, str)
                                    else (covariates or [])))
    if source is None:
        source = from_pandas(events, **columns, covariates=covariates)
    rows, ages, labels, observed, cov_categories = prepare_frame(
        source, **columns, time_unit=time_unit, bin_width=bin_width, stacklevel=3,
        covariates=covariates)
    meta: dict = {"layout": "durations" if dur_layout else "dates",
                  "time_columns": [duration] if dur_layout else [created, converted]}
    if bin_width is not None:
        meta["bin_width"] = bin_width
    else:
        meta.update(_resolution(resolution, rows, time_unit,
                                numeric=dur_layout or not isinstance(
                                    observed[0] if isinstance(observed, tuple) else observed,
                                    pd.Timestamp)))
    if covariates:
        meta["covariates"] = covariates
    return _finish(rows, ages, labels, time_unit=time_unit, observed_until=observed,
                   cohort_name=cohort, meta=meta, covariates=covariates,
                   covariate_categories=cov_categories)


def _positive_number(value) -> bool:
    """A positive finite int or float (not a bool): a width in time units."""
    return not isinstance(value, bool) and isinstance(value, int | float | np.number) \
        and bool(np.isfinite(value) and value > 0)


def _resolution(resolution, rows: pd.DataFrame, time_unit: str, *, numeric: bool) -> dict:
    """``meta`` entries for the time resolution (see :mod:`bayesconv.data.resolution`)."""
    if resolution is None:
        return {}
    if isinstance(resolution, str):     # "auto" or "detect"
        conv = rows["converted"].to_numpy(bool) & (rows["count"].to_numpy() > 0)
        found = detect_resolution(rows["duration"].to_numpy(float)[conv], time_unit,
                                  numeric=numeric)
        if found.get("resolution_read") == "interval" and resolution == "detect":
            found["resolution_read"] = "exact"
        return found
    return {"resolution": float(resolution), "resolution_read": "interval"}


def _finish(rows: pd.DataFrame, ages: pd.DataFrame | None, labels: tuple, *, time_unit: str,
            observed_until, cohort_name, meta: dict, covariates=(),
            covariate_categories=None) -> ConversionData:
    """ConversionData from aggregated rows (``g`` = cohort code, ``cov<i>`` = covariates,
    counts may sum to 0).

    Drops groups whose count is 0 (warning about cohorts left without units), builds the cell
    table (distinct cohort and covariate values, in cohort then covariate order), sorts by
    cell, duration, converted and lower edge, and builds the follow-up table.
    """
    rows = rows[rows["count"] > 0]
    if len(rows) == 0:
        raise ValueError(msg.NO_UNITS)
    present = np.unique(rows["g"].to_numpy())
    remap = None
    if len(present) < len(labels):  # a cohort whose rows all had count 0
        missing = [labels[i] for i in range(len(labels)) if i not in set(present)]
        warnings.warn(msg.COHORTS_WITHOUT_UNITS.format(missing=missing), DataWarning,
                      stacklevel=3)
        remap = np.full(len(labels), -1)
        remap[present] = np.arange(len(present))
        labels = tuple(labels[i] for i in present)
    if remap is not None:
        rows = rows.assign(g=remap[rows["g"].to_numpy()])
        if ages is not None:
            ages = ages.assign(g=remap[ages["g"].to_numpy()])
    keys = ["g"] + [f"cov{i}" for i in range(len(covariates))]
    order = {f"cov{i}": {c: k for k, c in enumerate(cats[0])}
             for i, col in enumerate(covariates)
             if (cats := (covariate_categories or {}).get(col)) is not None}
    combos = rows[keys].drop_duplicates()
    combos = combos.sort_values(keys, kind="stable", key=lambda v: v.map(order[v.name])
                                if v.name in order else v).reset_index(drop=True)
    code = pd.Series(np.arange(len(combos)), index=pd.MultiIndex.from_frame(combos))
    rows = rows.assign(cell=code.loc[pd.MultiIndex.from_frame(rows[keys])].to_numpy())
    rows = rows.sort_values(["cell", "duration", "converted", "lower"], kind="stable")
    followup = None
    if ages is not None:
        ages = ages[ages["count"] > 0]
        cell = code.loc[pd.MultiIndex.from_frame(ages[keys])].to_numpy()
        followup = pd.DataFrame({"cell": cell.astype(np.int64),
                                 "age": ages["age"].to_numpy(dtype=float),
                                 "count": ages["count"].to_numpy(dtype=np.int64)})
        followup = followup.sort_values(["cell", "age"], kind="stable").reset_index(drop=True)
    cells = pd.DataFrame({cohort_name or "cohort": pd.Categorical.from_codes(
        combos["g"].to_numpy(), categories=list(labels))})
    for i, col in enumerate(covariates):
        values = combos[f"cov{i}"]
        cats = (covariate_categories or {}).get(col)
        if cats is not None:
            values = pd.Categorical(values, categories=[c for c in cats[0]
                                                        if c in set(values)], ordered=cats[1])
        elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            values = pd.Categorical(values)
        cells[col] = values
    data = ConversionData(
        cell=rows["cell"].to_numpy(dtype=np.int64),
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
    if covariates and data.n_cells > 50 and data.n_cells > data.n_units / 5:
        warnings.warn(msg.MANY_CELLS.format(covariates=covariates, n_cells=data.n_cells,
                                            n_units=data.n_units), DataWarning, stacklevel=3)
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


def shown_label(label) -> str:
    """A label as text in readouts and reports: its ``str``, quoted (``"'B '"``) when it has
    surrounding whitespace or is empty, so that it is told apart from a look-alike."""
    text = str(label)
    return repr(text) if text != text.strip() or not text else text


def similar_labels_note(data: ConversionData) -> str | None:
    """The warning text for cohort labels of ``data`` that differ only in case or surrounding
    whitespace (:func:`similar_labels`), with each label's units; None when there are none."""
    groups = similar_labels(data.cohorts)
    if not groups:
        return None
    units = data.cohort_table()["units"].to_numpy()
    code = {label: i for i, label in enumerate(data.cohorts)}
    parts = "; ".join(" and ".join(f"{label!r} ({units[code[label]]:,} units)"
                                   for label in group) for group in groups)
    column = f"column {data.cohort_name!r}" if data.cohort_name else "the cohort column"
    return msg.SIMILAR_LABELS.format(column=column, groups=parts)


def _warn_similar_labels(data: ConversionData) -> None:
    note = similar_labels_note(data)
    if note is not None:
        warnings.warn(note, DataWarning, stacklevel=4)


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
    warnings.warn(msg.IMPLAUSIBLE_DURATIONS.format(where=where, span=span, why=why,
                                                   time_unit=data.time_unit),
                  DataWarning, stacklevel=4)
