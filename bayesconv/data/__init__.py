"""The data layer: events in, validated and aggregated :class:`ConversionData` out.

* :mod:`~bayesconv.data.units`: time units and their names;
* :mod:`~bayesconv.data.container`: :class:`ConversionData` and its cell table;
* :mod:`~bayesconv.data.prepare`: :func:`prepare` (validation, durations, aggregation);
* :mod:`~bayesconv.data.engine`: the narwhals expressions that run inside Polars, DuckDB, Spark;
* :mod:`~bayesconv.data.readers`: events files (CSV, Parquet) through DuckDB;
* :mod:`~bayesconv.data.messages`: message texts shared by several input paths;
* :mod:`~bayesconv.data.kaplan_meier`: the Kaplan–Meier estimate per cohort.
"""

from .container import ConversionData
from .kaplan_meier import kaplan_meier, km_at
from .prepare import prepare, similar_labels
from .units import TIME_UNITS, unit_name

__all__ = ["TIME_UNITS", "ConversionData", "kaplan_meier", "km_at", "prepare",
           "similar_labels", "unit_name"]
