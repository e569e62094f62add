"""Readouts of many experiments on a Spark cluster: :func:`readouts`.

The events never leave Spark as rows. Spark compresses them to one row per distinct
(experiment, arm, creation time, conversion time, observation date, covariates) with the number
of identical units, then ``groupBy(experiment).applyInPandas`` hands each experiment's small
table to a Python worker, which validates, fits and reads it out with the same per-experiment
step as :func:`bayesconv.readouts` (:func:`bayesconv.batch.run_experiment`), so the rows are the
same as those of :func:`bayesconv.readouts` on the same events and seed. Python workers are
reused between experiments (Spark's default ``spark.python.worker.reuse``), and with them the
compiled models; the persistent compile cache (:mod:`bayesconv.inference.disk_cache`) serves
every later worker on the same machine.

Needs ``pyspark`` (``pip install 'bayesconv[spark]'``) and bayesconv installed on every
executor; README, "Readouts of many experiments", says how to size executors.
"""

from __future__ import annotations

import inspect

from .batch import COLUMNS, OPTIONS, conform, is_missing, run_experiment, settings, summarize
from .data.messages import INTERNAL_PREFIX, MAX_SHOWN, describe_rows, row_problem

__all__ = ["collect", "output_schema", "readouts"]

#: The count column of the compressed table when the events carry no count column (with a
#: trailing underscore per clash with a column of the events).
COUNT = "bayesconv_count"
_N = INTERNAL_PREFIX + "_n"


def output_schema(experiment_type, experiment: str):
    """The Spark schema of a readouts table: the experiment column, then :data:`COLUMNS`.

    Parameters
    ----------
    experiment_type : pyspark.sql.types.DataType
        The experiment column's type in the events.
    experiment : str
        Its name.

    Returns
    -------
    pyspark.sql.types.StructType
    """
    from pyspark.sql import types as T

    kinds = {"str": T.StringType(), "float": T.DoubleType(), "int": T.LongType(),
             "bool": T.BooleanType()}
    return T.StructType([T.StructField(experiment, experiment_type, True)]
                        + [T.StructField(name, kinds[kind], True)
                           for name, kind in COLUMNS.items()])


def _compress(sdf, st):
    """One row per distinct combination of the columns the readout reads, with the count of
    identical rows (times the events' own count column, if any), computed in Spark. Without a
    unit id nothing the validation looks at is lost: every value a check reads is a key. With
    a unit id the rows are kept as they are (duplicated ids must stay visible)."""
    from pyspark.sql import functions as F

    kw = st.prepare_kw
    keys = st.columns(sdf.columns)
    if kw["unit_id"] is not None:
        return sdf.select(*keys), kw["count"]
    out = sdf.groupBy(*keys).agg(F.count(F.lit(1)).alias(_N))
    if kw["count"] is None:
        name = COUNT
        while name in sdf.columns:
            name += "_"
        return out.withColumnRenamed(_N, name), name
    count = kw["count"]
    return (out.withColumn(count, F.col(count) * F.col(_N)).drop(_N), count)


def readouts(sdf, **options):
    """:func:`bayesconv.readouts` on a Spark DataFrame: a Spark DataFrame of the same rows.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        The events, one row per unit (or per group of identical units with ``count``).
        Times as Spark ``TIMESTAMP``/``TIMESTAMP_NTZ``/``DATE`` columns or numbers in
        ``time_unit``.
    **options
        The keyword arguments of :func:`bayesconv.readouts` (``experiment``, ``cohort``,
        ``control``, ``created``, ..., ``random_seed``; :data:`bayesconv.batch.OPTIONS`, the
        signature shown), but ``progressbar`` and ``callback``. ``cores`` (default: all the
        worker sees) is how many chains a worker runs at once; give each task that many CPUs
        (``spark.task.cpus``).

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy; the schema is :func:`output_schema` (arm labels as text). One row per
        (experiment, treatment arm, metric), or one row with the ``error`` for an experiment
        that could not be read out, including one for rows without an experiment id. Rows
        come in no particular order (``orderBy(experiment, "treatment", "metric")`` sorts
        them as :func:`bayesconv.readouts` does). Warnings about single experiments are in
        the ``warnings`` column; nothing is warned on the driver (the work runs when the
        result is collected).

    Raises
    ------
    ValueError
        As :func:`bayesconv.batch.settings`, and for a column the arguments name that is not
        in ``sdf``.
    TypeError
        ``sdf`` is not a PySpark DataFrame; an unknown option, or ``experiment``,
        ``cohort`` or ``control`` missing.
    """
    from pyspark.sql import DataFrame

    if not isinstance(sdf, DataFrame):
        raise TypeError(f"sdf must be a pyspark.sql.DataFrame, got {type(sdf).__name__}; "
                        "bayesconv.readouts reads pandas, Polars and DuckDB frames")
    st = settings(**options)
    experiment, count = st.experiment, st.prepare_kw["count"]
    st.check_columns(sdf.columns)
    compressed, count_column = _compress(sdf, st)
    worker_st = _with_count(st, count_column)
    # applyInPandas hands TIMESTAMP columns over as naive wall times of the session's zone:
    # the worker puts the zone back, so they are the instants Spark holds (TIMESTAMP_NTZ
    # columns stay naive)
    from pyspark.sql.types import TimestampType

    zone = sdf.sparkSession.conf.get("spark.sql.session.timeZone")
    aware = [f.name for f in compressed.schema.fields if isinstance(f.dataType, TimestampType)]
    schema = output_schema(sdf.schema[experiment].dataType, experiment)
    names = [f.name for f in schema.fields]

    def fit_group(key, pdf):
        import pandas as pd

        eid = key[0]
        if is_missing(eid):  # a null id arrives as None, or as NaN in a numeric column
            n = int(pdf[count_column].fillna(1).sum()) if count_column else len(pdf)
            hidden = {experiment, _N} | ({count_column} if count is None else set())
            shown = [c for c in pdf.columns if c not in hidden]
            # no row numbers: the first rows by value, as for the other lazy engines
            first = pdf.sort_values(shown, na_position="last", kind="stable")
            records = [(None, [(c, row[c]) for c in shown])
                       for row in first.head(MAX_SHOWN).to_dict("records")]
            text = row_problem(f"no experiment id in column {experiment!r}", n,
                               describe_rows(records, n, named=False))
            rows = conform(pd.DataFrame({experiment: [None], "error": [text]}), experiment)
        else:
            pdf = pdf.drop(columns=[experiment])
            for c in aware:
                pdf[c] = pdf[c].dt.tz_localize(zone)
            rows = run_experiment(_lazy(pdf), eid, worker_st)
        return _to_spark_frame(rows, names)

    return compressed.groupBy(experiment).applyInPandas(fit_group, schema=schema)


def _with_count(st, count_column):
    """The settings with the compressed table's count column."""
    import dataclasses

    return dataclasses.replace(st, prepare_kw=dict(st.prepare_kw, count=count_column))


def _lazy(pdf):
    """An experiment's compressed rows as a Polars LazyFrame: rows of the compressed table have
    no meaningful number, so messages name offending rows by their values, as for every lazy
    engine."""
    import polars as pl

    return pl.from_pandas(pdf).lazy()


def _to_spark_frame(rows, names):
    """Rows as Arrow hands them to Spark: nullable columns as object/float, in schema order."""
    out = rows[names].astype(object)
    return out.where(out.notna(), None)


def collect(result, experiment: str):
    """A Spark readouts table as :func:`bayesconv.readouts` returns it: collected, sorted by
    experiment, treatment and metric as a batch orders them, and conformed
    (:func:`bayesconv.batch.conform`), with the batch's warnings issued on the driver.

    Parameters
    ----------
    result : pyspark.sql.DataFrame
        From :func:`readouts`.
    experiment : str
        The experiment column.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd
    from pyspark.sql.types import IntegralType

    pdf = result.toPandas()
    if isinstance(result.schema[experiment].dataType, IntegralType) and \
            pdf[experiment].dtype.kind == "f":
        # integer ids with the null id of the rows without one: toPandas makes them floats;
        # as the other engines, Python ints and None
        pdf[experiment] = pd.Series([None if is_missing(v) else int(v)
                                     for v in pdf[experiment]], dtype=object)
    table = conform(pdf, experiment)
    order = {"eventual": 0, "by_horizon": 1, "median_lag": 2}
    table = table.assign(_m=table["metric"].map(order).fillna(9)).sort_values(
        [experiment, "_m", "treatment"], kind="stable", na_position="first").drop(columns="_m")
    table = table.reset_index(drop=True)
    summarize(table, experiment)
    return table


readouts.__signature__ = inspect.Signature(
    [inspect.Parameter("sdf", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     *OPTIONS.parameters.values()])
