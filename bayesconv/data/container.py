"""ConversionData: aggregated, validated conversion events and the table of their cells.

Each row of a :class:`ConversionData` stands for ``count`` identical units: same cell, same
duration (or conversion interval), same conversion status. A **cell** is one distinct
combination of the grouping columns; the cells form the table :attr:`ConversionData.cells`,
one row per cell and one column per grouping column, and every data row points into it
(:attr:`ConversionData.cell`). Today the grouping columns are the cohort (arm) column alone, so
cells and cohorts coincide; the likelihood and the lag math only ever see cells, so adding
factors and covariates adds columns to the cell table and touches neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .resolution import describe as describe_resolution
from .units import TIME_UNITS

__all__ = ["ConversionData", "group_index"]

_ROW_ARRAYS = ("cell", "duration", "lower", "converted", "count")


def group_index(cells: pd.DataFrame, by) -> tuple[str, list, np.ndarray]:
    """The levels of ``by`` (a column, or a list of columns) over the cells.

    Returns
    -------
    name : str
        Dimension name ("platform", or "variant×platform" for several columns).
    labels : list
        The levels present, in category (or sorted) order; tuples for several columns.
    index : ndarray of shape (n_cells,)
        Each cell's level.

    Raises
    ------
    ValueError
        A column that is not in the cell table.
    """
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in cols if c not in cells.columns]
    if missing:
        raise ValueError(f"by={by!r}: {missing} not among the data's columns "
                         f"{list(cells.columns)} (covariates are added with "
                         "prepare(..., covariates=[...]))")
    keys = cells[cols].apply(tuple, axis=1) if len(cols) > 1 else cells[cols[0]]
    if len(cols) == 1 and isinstance(cells[cols[0]].dtype, pd.CategoricalDtype):
        present = set(keys)
        labels = [c for c in cells[cols[0]].cat.categories if c in present]
    else:
        labels = sorted(set(keys), key=lambda k: tuple(map(str, k)) if isinstance(k, tuple)
                        else (str(type(k)), k))
    pos = {label: i for i, label in enumerate(labels)}
    index = np.array([pos[k] for k in keys], dtype=np.int64)
    return "×".join(cols), labels, index


class ConversionData:
    """Aggregated, validated conversion events, ready for Kaplan–Meier and the model.

    A converted row with ``lower < duration`` is interval-censored: the conversion happened in
    ``(lower, duration]``. A converted row with ``lower == duration`` has an exact conversion
    time. A row that did not convert is right-censored at ``duration`` (its age at the
    observation date).

    Parameters
    ----------
    duration, lower, converted, count : array_like of shape (n_rows,)
        See Attributes.
    cell : array_like of shape (n_rows,), int, optional
        Cell code of each row, an index into ``cells``.
    cells : DataFrame, optional
        The cell table (one row per cell). Its column :attr:`cohort_column` is categorical,
        its categories the cohort labels.
    cohort, cohorts : optional
        Instead of ``cell`` and ``cells``: cohort code per row and the cohort labels, for
        data grouped by one cohort column (then each cohort is a cell).
    time_unit, observed_until, cohort_name, followup, meta
        See Attributes.

    Attributes
    ----------
    cell : ndarray of shape (n_rows,), int
        Cell code of each row (row of :attr:`cells`).
    cells : DataFrame of shape (n_cells, n_factors)
        One row per distinct combination of the grouping columns.
    duration : ndarray of shape (n_rows,), float
        Time from creation to conversion (upper bin edge for interval-censored rows), or to the
        observation date for units not converted yet, in ``time_unit``.
    lower : ndarray of shape (n_rows,), float
        Lower edge of the conversion interval; equal to ``duration`` for exact and censored rows.
    converted : ndarray of shape (n_rows,), bool
        Whether the units of the row converted by the observation date.
    count : ndarray of shape (n_rows,), int
        Number of identical units the row stands for (>= 1).
    time_unit : str
        One of ``TIME_UNITS``: "s", "min", "h", "D", "W", "Y" (a year is 365.25 days).
    observed_until : object
        The observation date (or number, for numeric inputs); for a per-row column the
        (earliest, latest) pair.
    cohort_name : str or None
        Name of the cohort column in the input, or None for a single cohort.
    followup : DataFrame or None
        Every unit's age at the observation date (converted or not), aggregated: columns
        ``cell`` (code), ``age`` (in ``time_unit``) and ``count``. Needed to simulate what
        would have been observed (posterior predictive Kaplan–Meier). None for the
        duration/event layout, where the follow-up of converted units is unknown.
    meta : dict
        Provenance (e.g. the input layout) and how times are read: ``"resolution"`` (δ in
        ``time_unit``) and ``"resolution_read"`` (``"interval"``: the likelihood reads the
        rows as recorded to δ; ``"exact"``: as exact times; ``"negligible"``: as exact, δ
        being under 0.1% of the median duration), set by
        :func:`bayesconv.prepare` (see :mod:`bayesconv.data.resolution`); ``"bin_width"``.

    Raises
    ------
    ValueError
        Arrays of different lengths, an unknown time unit, cell codes outside the cell table,
        or neither (cell, cells) nor (cohort, cohorts).
    """

    def __init__(self, *, duration, lower, converted, count, cell=None, cells=None,
                 cohort=None, cohorts=None, time_unit: str = "D", observed_until: Any = None,
                 cohort_name: str | None = None, followup: pd.DataFrame | None = None,
                 meta: dict | None = None):
        if cells is None:
            if cohort is None or cohorts is None:
                raise ValueError("ConversionData needs cell= and cells=, or cohort= and "
                                 "cohorts=")
            cell = cohort
            cells = pd.DataFrame({cohort_name or "cohort": pd.Categorical(
                list(cohorts), categories=list(cohorts))})
        elif cell is None:
            raise ValueError("ConversionData needs cell= with cells=")
        self.cohort_name = cohort_name
        self.cells = cells.reset_index(drop=True)
        column = self.cohort_column
        if column not in self.cells or not isinstance(self.cells[column].dtype,
                                                      pd.CategoricalDtype):
            raise ValueError(f"the cell table needs a categorical cohort column {column!r}")
        arrays = {"cell": np.asarray(cell, dtype=np.int64),
                  "duration": np.asarray(duration, dtype=float),
                  "lower": np.asarray(lower, dtype=float),
                  "converted": np.asarray(converted, dtype=bool),
                  "count": np.asarray(count, dtype=np.int64)}
        n = len(arrays["cell"])
        for name, value in arrays.items():
            if len(value) != n:
                raise ValueError(f"ConversionData.{name} has length {len(value)}, expected {n} "
                                 "(the length of cell)")
            value.setflags(write=False)
            setattr(self, name, value)
        if n and (arrays["cell"].min() < 0 or arrays["cell"].max() >= len(self.cells)):
            raise ValueError(f"cell codes must index the {len(self.cells)} cells")
        if time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit {time_unit!r} is not one of {list(TIME_UNITS)}")
        self.time_unit = time_unit
        self.observed_until = observed_until
        self.followup = followup
        self.meta = dict(meta or {})
        codes = self.cells[column].cat.codes.to_numpy().astype(np.int64)
        self._cell_cohort = codes
        self.cohort = codes[self.cell] if n else np.zeros(0, np.int64)
        self.cohort.setflags(write=False)

    # ------------------------------------------------------------------ shape
    @property
    def cohort_column(self) -> str:
        """Name of the cohort column in :attr:`cells` (``cohort_name``, or "cohort")."""
        return self.cohort_name or "cohort"

    @property
    def cohorts(self) -> tuple:
        """Cohort labels in code order (the ``cohort`` coordinate of every result)."""
        return tuple(self.cells[self.cohort_column].cat.categories)

    @property
    def cell_cohort(self) -> np.ndarray:
        """ndarray of shape (n_cells,): the cohort code of each cell."""
        return self._cell_cohort

    @property
    def n_rows(self) -> int:
        """Number of aggregated rows."""
        return len(self.cell)

    @property
    def n_units(self) -> int:
        """Number of units (sum of counts)."""
        return int(self.count.sum())

    @property
    def n_cells(self) -> int:
        """Number of cells (rows of :attr:`cells`)."""
        return len(self.cells)

    @property
    def n_cohorts(self) -> int:
        """Number of cohorts."""
        return len(self.cohorts)

    @property
    def interval_censored(self) -> np.ndarray:
        """ndarray of shape (n_rows,), bool: converted rows known only to a bin (lower, duration]."""
        return self.converted & (self.lower < self.duration)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ConversionData):
            return NotImplemented
        same = all(np.array_equal(getattr(self, k), getattr(other, k)) for k in _ROW_ARRAYS)
        fu = (self.followup is None and other.followup is None) or (
            self.followup is not None and other.followup is not None
            and self.followup.equals(other.followup))
        return bool(same and fu and self.cells.equals(other.cells)
                    and self.time_unit == other.time_unit
                    and self.cohort_name == other.cohort_name)

    __hash__ = None

    # ------------------------------------------------------------------ subsets
    def select_cohorts(self, labels) -> ConversionData:
        """The rows of some cohorts only, as a new ConversionData (codes renumbered).

        Parameters
        ----------
        labels : sequence of labels
            Cohorts to keep, each a label of :attr:`cohorts`; kept in the order of
            :attr:`cohorts`.

        Raises
        ------
        ValueError
            A label that is not a cohort, or no label.
        """
        keep = list(dict.fromkeys(labels))
        unknown = [lab for lab in keep if lab not in self.cohorts]
        if unknown or not keep:
            raise ValueError(f"cohorts {unknown!r} are not in the data; cohorts: "
                             f"{list(self.cohorts)}")
        kept_cohorts = [lab for lab in self.cohorts if lab in keep]
        kept = np.flatnonzero(np.isin(self.cells[self.cohort_column], kept_cohorts))
        remap = np.full(self.n_cells, -1)
        remap[kept] = np.arange(len(kept))
        m = remap[self.cell] >= 0
        cells = self.cells.iloc[kept].reset_index(drop=True)
        cells[self.cohort_column] = cells[self.cohort_column].cat.remove_unused_categories()
        followup = None
        if self.followup is not None:
            fu = self.followup[remap[self.followup["cell"].to_numpy()] >= 0].copy()
            fu["cell"] = remap[fu["cell"].to_numpy()]
            followup = fu.reset_index(drop=True)
        return ConversionData(
            cell=remap[self.cell[m]], cells=cells, duration=self.duration[m],
            lower=self.lower[m], converted=self.converted[m], count=self.count[m],
            time_unit=self.time_unit, observed_until=self.observed_until,
            cohort_name=self.cohort_name, followup=followup, meta=self.meta)

    # ------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """Return the aggregated rows as a DataFrame.

        Returns
        -------
        DataFrame with columns ``cohort`` (labels, categorical), ``lower``, ``duration``
        (in ``time_unit``), ``converted`` and ``count``, one row per aggregated row.
        """
        return pd.DataFrame({
            "cohort": pd.Categorical.from_codes(self.cohort, categories=list(self.cohorts)),
            "lower": self.lower, "duration": self.duration, "converted": self.converted,
            "count": self.count})

    def cohort_table(self) -> pd.DataFrame:
        """Units, conversions and follow-up per cohort.

        Returns
        -------
        DataFrame indexed by cohort label with columns ``units``, ``converted``,
        ``naive_rate`` (converted / units, biased low for young cohorts) and
        ``max_duration`` (longest follow-up, in ``time_unit``).
        """
        k = self.n_cohorts
        units = np.bincount(self.cohort, weights=self.count, minlength=k)
        conv = np.bincount(self.cohort, weights=self.count * self.converted, minlength=k)
        max_dur = np.full(k, -np.inf)
        np.maximum.at(max_dur, self.cohort, self.duration)
        return pd.DataFrame(
            {"units": units.astype(np.int64), "converted": conv.astype(np.int64),
             "naive_rate": conv / units, "max_duration": max_dur},
            index=pd.Index(self.cohorts, name=self.cohort_name or "cohort"))

    def unit_followup(self) -> pd.DataFrame:
        """Every unit's follow-up age (age at the observation date) and conversion, per cell.

        With the date layout :attr:`followup` holds the ages of all units and the censored
        rows those of the unconverted ones, so the converted units of each age are the
        difference. With the duration/event layout a censored unit's follow-up is its duration
        and a converted unit's is unknown: it is taken to be its **cohort's** longest duration
        (true of fixed-follow-up studies such as Rossi's). Not the cell's longest duration:
        with covariates a cell may hold one or two units, and its longest duration would then
        be the unit's own conversion time, conditioning the follow-up on the outcome.

        Returns
        -------
        DataFrame with columns ``cell`` (code), ``age`` (in ``time_unit``), ``units`` and
        ``converted`` (units of that age converted by the observation date), one row per
        (cell, age) with at least one unit, sorted by cell and age.

        Raises
        ------
        ValueError
            If :attr:`followup` does not account for every censored and converted unit.
        """
        cens_m = ~self.converted
        cens = pd.DataFrame({"cell": self.cell[cens_m], "age": self.duration[cens_m],
                             "censored": self.count[cens_m]})
        cens = cens.groupby(["cell", "age"], as_index=False)["censored"].sum()
        conv_n = np.bincount(self.cell, weights=self.count * self.converted,
                             minlength=self.n_cells)
        if self.followup is not None:
            fu = self.followup.groupby(["cell", "age"], as_index=False)["count"].sum()
            out = fu.merge(cens, on=["cell", "age"], how="outer").fillna(0)
            conv = out["count"] - out["censored"]
            if (conv < 0).any() or conv.sum() != conv_n.sum():
                bad = out.loc[conv < 0, ["cell", "age"]].head(5).to_dict("records")
                raise ValueError("the follow-up table does not match the censored rows (more "
                                 f"censored units than units at (cell, age) {bad}); cannot "
                                 "tell converted units' follow-up ages apart")
            out = pd.DataFrame({"cell": out["cell"], "age": out["age"],
                                "units": out["count"], "converted": conv})
        else:
            cohort_max = np.full(self.n_cohorts, -np.inf)
            np.maximum.at(cohort_max, self.cohort, self.duration)
            conv = pd.DataFrame({"cell": np.arange(self.n_cells),
                                 "age": cohort_max[self.cell_cohort], "converted": conv_n})
            out = cens.merge(conv, on=["cell", "age"], how="outer").fillna(0)
            out["units"] = out["censored"] + out["converted"]
            out = out[["cell", "age", "units", "converted"]]
        out = out[out["units"] > 0].sort_values(["cell", "age"]).reset_index(drop=True)
        return out.astype({"cell": np.int64, "units": np.int64, "converted": np.int64})

    def longest_followup(self) -> np.ndarray:
        """Longest follow-up age of each cell's units, shape ``(n_cells,)``, in ``time_unit``.

        From :meth:`unit_followup`, so with the duration/event layout a cell with converted
        units is followed to its cohort's longest duration; -inf for a cell without units.
        """
        fu = self.unit_followup()
        out = np.full(self.n_cells, -np.inf)
        np.maximum.at(out, fu["cell"].to_numpy(), fu["age"].to_numpy(float))
        return out

    def __repr__(self) -> str:
        return (f"ConversionData({self.n_units} units in {self.n_rows} rows, "
                f"{self.n_cohorts} cohorts, time unit {self.time_unit!r}, "
                f"{describe_resolution(self.meta, self.time_unit)})")
