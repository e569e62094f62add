"""The data layer: events in, validated and aggregated :class:`ConversionData` out.

* :mod:`~bayesconv.data.units`: time units and their names;
* :mod:`~bayesconv.data.container`: :class:`ConversionData` and its cell table;
* :mod:`~bayesconv.data.prepare`: :func:`prepare` (arguments, the result and its warnings);
* :mod:`~bayesconv.data.engine`: the one path of ``prepare``: validation, durations and
  aggregation as narwhals expressions that run inside pandas, Polars, DuckDB, Spark;
* :mod:`~bayesconv.data.pandas_input`: the pandas step before it (date text parsed, index
  labels to name rows by);
* :mod:`~bayesconv.data.readers`: events files (CSV, Parquet) through DuckDB;
* :mod:`~bayesconv.data.messages`: every message text of ``prepare`` and the readers, once;
* :mod:`~bayesconv.data.kaplan_meier`: the Kaplan–Meier estimate per cohort.

Modules import downwards only: units <- messages <- engine <- pandas_input <- prepare
(readers: messages; container: units; kaplan_meier: container).
"""

from .container import ConversionData
from .kaplan_meier import kaplan_meier, km_at
from .prepare import prepare, similar_labels
from .units import TIME_UNITS, unit_name

__all__ = ["TIME_UNITS", "ConversionData", "kaplan_meier", "km_at", "prepare",
           "similar_labels", "unit_name"]
