"""Many readouts in one call: every experiment of an events table, each arm against its control.

:func:`readouts` reads out every experiment of one events table (pandas, Polars, DuckDB, or any
frame narwhals reads; :mod:`bayesconv.spark` runs the same on a Spark cluster) in three steps:

1. **Split and validate** every experiment first. Each experiment's rows go through
   :func:`bayesconv.prepare` on their own, in the frame's engine (a pandas group, or a filter of
   the engine's frame), and its arms are checked (the control is there, the treatments are).
   An experiment that fails gets one row whose ``error`` column holds the message; the others
   still run. Rows without an experiment id are reported in a row of their own, never dropped.
2. **Fit** the experiments grouped by model structure (lag family, number of arms, formula
   terms: :func:`bayesconv.inference.compile.structure_key`), so that each structure compiles
   once in the process (and loads from the persistent compile cache in later processes). Each
   experiment's seed is derived from ``random_seed`` and the experiment id alone
   (:func:`experiment_seed`), so its row does not depend on which other experiments are in the
   batch.
3. **Read out** each fit (:func:`bayesconv.compare`, the decision rule with a threshold) into
   rows of one table (:data:`COLUMNS`).

:func:`run_experiment` is the per-experiment step (prepare, fit, readout) that both
:func:`readouts` and the Spark workers of :mod:`bayesconv.spark` call, so every engine gives the
same rows for the same seeds.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import numbers
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data import prepare
from .data.messages import INTERNAL_PREFIX, MAX_SHOWN, ROW_COLUMN, describe_rows, row_problem
from .data.units import TIME_UNITS
from .errors import BayesconvWarning, ConvergenceWarning, DataWarning
from .inference import ConversionModel
from .inference.compile import structure_key
from .lags import get_lag
from .posterior.diagnostics import ESS_MIN, RHAT_MAX
from .readout import compare, default_horizon
from .readout.compare import check_rope
from .readout.decision import check_threshold

__all__ = ["COLUMNS", "OPTIONS", "conform", "experiment_seed", "is_missing", "outcome",
           "readouts",
           "Settings", "run_experiment", "settings", "split_experiments", "summarize"]

#: The columns of a readouts table after the experiment column, with their kinds: "str" (text
#: or missing), "float", "int" (nullable), "bool" (nullable). The Readout.to_frame() columns
#: (:meth:`bayesconv.Readout.to_frame`) come first, then the decision, the diagnostics and the
#: bookkeeping of the fit.
COLUMNS: dict[str, str] = {
    "treatment": "str", "metric": "str", "unit": "str", "control": "str",
    "control_mean": "float", "control_lower": "float", "control_upper": "float",
    "treatment_mean": "float", "treatment_lower": "float", "treatment_upper": "float",
    "diff_mean": "float", "diff_lower": "float", "diff_upper": "float",
    "lift_median": "float", "lift_lower": "float", "lift_upper": "float",
    "lift_defined": "bool", "prob_better": "float", "loss_treatment": "float",
    "loss_control": "float", "prob_rope": "float", "prob_best": "float",
    "control_prob_best": "float",
    "horizon": "float", "time_unit": "str", "decision": "str", "decision_text": "str",
    "max_r_hat": "float", "min_ess": "float", "divergences": "int",
    "weakly_identified": "bool",
    "n_units": "int", "n_control": "int", "n_treatment": "int",
    "fit_seconds": "float", "warnings": "str", "error": "str",
}
_DTYPES = {"str": object, "float": "float64", "int": "Int64", "bool": "boolean"}
#: Columns that describe how long the fit took, not what it found: the only ones that differ
#: between two runs of the same experiment and seed.
TIMING_COLUMNS = ("fit_seconds",)
#: Separator of the messages in the ``warnings`` column.
SEPARATOR = " | "


def experiment_seed(random_seed: int | None, experiment_id) -> int | None:
    """The seed of one experiment's fit, from the batch seed and the experiment id alone.

    Parameters
    ----------
    random_seed : int or None
        The batch's seed; None gives None (each fit seeded from fresh entropy).
    experiment_id : object
        The experiment's id; numpy scalars count as their Python value, and the id enters as
        its text (``str``), so ``7`` from pandas, DuckDB and Spark give the same seed.

    Returns
    -------
    int or None
        A seed in [0, 2**63), the first 8 bytes of BLAKE2b(``random_seed``, id).
    """
    if random_seed is None:
        return None
    key = f"{int(random_seed)}\x1f{_plain(experiment_id)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def _plain(value):
    """A numpy scalar as its Python value; other values unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def is_missing(value) -> bool:
    """Whether a scalar is missing (None, NaN, NaT, pandas.NA); False for values pandas
    cannot test (lists, say)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def conform(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """A readouts table with the columns of :data:`COLUMNS` in order and their dtypes.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`run_experiment` (or a Spark result collected with ``toPandas``).
    experiment : str
        Name of the experiment column, kept first with its own dtype.

    Returns
    -------
    pandas.DataFrame
        Text columns as Python ``str`` or None, floats as float64, counts as nullable Int64,
        flags as nullable boolean; a fresh RangeIndex.
    """
    out = pd.DataFrame({experiment: table[experiment].to_numpy()
                        if experiment in table else pd.Series(dtype=object)})
    for name, kind in COLUMNS.items():
        values = table[name] if name in table else pd.Series([None] * len(table))
        values = pd.Series(values.to_numpy(), dtype=object)
        if kind == "str":
            out[name] = [None if is_missing(v) else str(v) for v in values]
        elif kind == "float":
            out[name] = pd.to_numeric(values.where(values.notna(), np.nan)).astype("float64")
        elif kind == "int":
            out[name] = pd.array([None if is_missing(v) else int(v) for v in values],
                                 dtype="Int64")
        else:
            out[name] = pd.array([None if is_missing(v) else bool(v) for v in values],
                                 dtype="boolean")
    return out


# ----------------------------------------------------------------------------- one experiment


def _arm_labels(data, control, treatment) -> tuple[Any, list]:
    """The control's and the treatments' labels in ``data`` (matched by their text, as on the
    command line), or ValueError naming what is missing."""
    labels = {str(c): c for c in data.cohorts}
    column = data.cohort_name or "cohort"
    if str(control) not in labels:
        raise ValueError(f"the control arm {control!r} is not in column {column!r} of this "
                         f"experiment; its arms: {list(labels)}")
    ctrl = labels[str(control)]
    if treatment is None:
        treated = [c for c in data.cohorts if c != ctrl]
        if not treated:
            raise ValueError(f"only the control arm {control!r} is in column {column!r} of "
                             "this experiment: no treatment arm to compare")
        return ctrl, treated
    wanted = _wanted(treatment)
    missing = [t for t in wanted if str(t) not in labels]
    if missing:
        raise ValueError(f"treatment arm(s) {missing!r} not in column {column!r} of this "
                         f"experiment; its arms: {list(labels)}")
    treated = [labels[str(t)] for t in wanted]
    if ctrl in treated:
        raise ValueError(f"the control arm {control!r} is also listed as a treatment")
    return ctrl, treated


@dataclass
class _Prepared:
    """One experiment after step 1: its data and model, or the error that stopped it."""

    experiment_id: Any
    model: Any = None
    data: Any = None
    control: Any = None
    treatments: list = field(default_factory=list)
    horizon: float | None = None
    messages: list = field(default_factory=list)
    error: str | None = None
    key: str = ""


def _recorded(caught: list) -> list[str]:
    """The texts of bayesconv's warnings among ``caught``; any other warning is issued again
    (it is not the batch's to swallow)."""
    texts = []
    for w in caught:
        if issubclass(w.category, BayesconvWarning):
            texts.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return texts


def _prepare_one(events, experiment_id, st: Settings) -> _Prepared:
    """Step 1 for one experiment: validate its rows and arms, build its model."""
    out = _Prepared(experiment_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = prepare(events, **st.prepare_kw)
            ctrl, treated = _arm_labels(data, st.control, st.treatment)
            compared = [ctrl, *treated]
            left = [c for c in data.cohorts if c not in compared]
            if left:
                units = data.cohort_table()["units"]
                n = int(sum(units.loc[c] for c in left))
                out.messages.append(f"left out {n:,} of {data.n_units:,} units: arms "
                                    f"{[str(c) for c in left]} are not compared")
                data = data.select_cohorts(compared)
            out.horizon = default_horizon(data) if st.horizon is None else st.horizon
            out.model = ConversionModel(data, **st.model_kw)
            out.key = structure_key(out.model)
            out.data, out.control, out.treatments = data, ctrl, treated
        except (ValueError, TypeError) as err:
            out.error = str(err)
    out.messages += _recorded(caught)    # outside the block: other warnings are issued again
    return out


def _error_rows(experiment: str, experiment_id, error: str, messages=()) -> pd.DataFrame:
    return pd.DataFrame({experiment: [experiment_id], "error": [error],
                         "warnings": [SEPARATOR.join(messages) or None]})


def _fit_one(p: _Prepared, st: Settings, callback=None) -> pd.DataFrame:
    """Steps 2 and 3 for one prepared experiment: its rows of the table."""
    experiment, threshold = st.experiment, st.threshold
    seed = experiment_seed(st.random_seed, p.experiment_id)
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            start = time.perf_counter()
            result = p.model.fit(random_seed=seed, progressbar=False, **st.fit_kw)
            seconds = time.perf_counter() - start
            treatment = p.treatments if len(p.treatments) > 1 else p.treatments[0]
            ro = compare(result, treatment, p.control, horizon=p.horizon,
                         threshold=threshold, **st.readout_kw)
            frame = ro.to_frame()
            decisions = {}
            if threshold is not None:
                for m in frame["metric"].unique():
                    if m in ("eventual", "by_horizon"):
                        decisions[m] = ro.decision(metric=m)
            diag = result.diagnostics()
            weak = result.identification()["weakly_identified"]
        except Exception as err:  # noqa: BLE001 (one failed fit must not stop the batch)
            error = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
    if error is not None:
        return _error_rows(experiment, p.experiment_id, error, p.messages + _recorded(caught))
    messages = p.messages + _recorded(caught)
    units = p.data.cohort_table()["units"]
    frame.insert(0, experiment, [p.experiment_id] * len(frame))
    frame["horizon"] = p.horizon
    frame["time_unit"] = p.data.time_unit
    frame["decision"] = [decisions[m].headline if m in decisions else None
                         for m in frame["metric"]]
    frame["decision_text"] = [decisions[m].text if m in decisions else None
                              for m in frame["metric"]]
    frame["max_r_hat"] = diag["max_r_hat"]
    frame["min_ess"] = min(diag["min_ess_bulk"], diag["min_ess_tail"])
    frame["divergences"] = diag["divergences"]
    frame["weakly_identified"] = [bool(weak.loc[p.control] or weak.loc[t])
                                  for t in frame["treatment"]]
    frame["n_units"] = p.data.n_units
    frame["n_control"] = int(units.loc[p.control])
    frame["n_treatment"] = [int(units.loc[t]) for t in frame["treatment"]]
    frame["fit_seconds"] = seconds
    frame["warnings"] = SEPARATOR.join(messages) or None
    frame["error"] = None
    if callback is not None:
        callback(p.experiment_id, result, ro)
    return frame


def run_experiment(events, experiment_id, st: Settings,
                   callback: Callable | None = None) -> pd.DataFrame:
    """Read out one experiment: prepare its rows, fit, compare; its rows of a readouts table.

    The per-experiment step of :func:`readouts`, and what each Spark worker runs in
    :func:`bayesconv.spark.readouts`.

    Parameters
    ----------
    events : frame
        The experiment's rows (any frame :func:`bayesconv.prepare` reads).
    experiment_id : object
        Its id, written into the experiment column and seeding its fit.
    st : Settings
        From :func:`settings`.
    callback : callable, optional
        As for :func:`readouts`.

    Returns
    -------
    pandas.DataFrame
        Conformed (:func:`conform`): one row per treatment arm and metric, or one row with
        the ``error`` when the experiment could not be read out.
    """
    p = _prepare_one(events, experiment_id, st)
    if p.error is not None:
        rows = _error_rows(st.experiment, experiment_id, p.error, p.messages)
    else:
        rows = _fit_one(p, st, callback)
    return conform(rows, st.experiment)


# ----------------------------------------------------------------------------- splitting


def _sorted_ids(ids: list) -> list:
    """Experiment ids in their natural order (by text where they do not compare)."""
    try:
        return sorted(ids)
    except TypeError:
        return sorted(ids, key=str)


def _pandas_rows(events: pd.DataFrame, positions, cohort):
    return _plain_labels(events.take(positions), cohort)


def _native_filter(frame, condition):
    return frame.filter(condition).to_native()


def _plain_labels(frame, cohort: str | None):
    """A pandas frame whose categorical arm column holds its labels as plain values (the
    same rows; missing labels stay missing)."""
    if cohort is None or cohort not in frame.columns or \
            not isinstance(frame[cohort].dtype, pd.CategoricalDtype):
        return frame
    return frame.assign(**{cohort: frame[cohort].astype(object)})


def split_experiments(events, experiment: str, cohort: str | None = None
                      ) -> tuple[list[tuple[Any, Any]], str | None]:
    """Each experiment's rows, in the events' own engine, and the rows without an id.

    Parameters
    ----------
    events : pandas.DataFrame or any frame narwhals reads
    experiment : str
        The experiment column.
    cohort : str, optional
        The arm column. A categorical one (pandas categoricals, Polars Categorical and Enum)
        is read as plain labels, so that every engine orders an experiment's arms alike (by
        label; Spark has no categories) and an experiment is not warned about the categories
        of other experiments' arms.

    Returns
    -------
    groups : list of (experiment id, callable)
        In sorted id order; calling the second item gives the experiment's rows, a frame of
        the input's kind (a pandas sub-frame keeping its index labels, or a filter of the
        engine's frame, still lazy), so that only one experiment's copy exists at a time.
    missing : str or None
        The message for rows without an experiment id, naming the first of them (by index
        label for pandas, by row number or values otherwise), or None.

    Raises
    ------
    ValueError
        ``experiment`` is not a column, or the table is empty.
    TypeError
        ``events`` is no frame bayesconv reads.
    """
    problem = f"no experiment id in column {experiment!r}"
    if isinstance(events, pd.DataFrame):
        if experiment not in events.columns:
            raise ValueError(f"experiment={experiment!r} is not a column of the events table; "
                             f"available columns: {list(events.columns)}")
        if len(events) == 0:
            raise ValueError("the events table has no rows")
        missing = events[experiment].isna()
        where = events[experiment].groupby(events[experiment], sort=False, observed=True).indices
        ids = _sorted_ids([_plain(k) for k in where])
        rows = {_plain(k): v for k, v in where.items()}
        groups = [(k, functools.partial(_pandas_rows, events, rows[k], cohort)) for k in ids]
        n_missing = int(missing.sum())
        if not n_missing:
            return groups, None
        first = events[missing].head(MAX_SHOWN)
        records = [(label, [(c, v) for c, v in row.items() if c != experiment])
                   for label, row in first.iterrows()]
        return groups, row_problem(problem, n_missing, describe_rows(
            records, n_missing, timestamps_as_text=False))
    import narwhals as nw

    frame, schema = _narwhals(events)
    names = schema.names()
    if experiment not in names:
        raise ValueError(f"experiment={experiment!r} is not a column of the events table; "
                         f"available columns: {[n for n in names if not _internal(n)]}")
    if isinstance(frame, nw.DataFrame) and ROW_COLUMN not in names:
        # an eager frame's rows have numbers: keep the whole table's, so that messages about
        # one experiment name rows as they are in the input (prepare would number the subset)
        frame = frame.with_row_index(ROW_COLUMN)
        names = [*names, ROW_COLUMN]
    if cohort is not None and cohort in names and isinstance(schema[cohort],
                                                             nw.Enum | nw.Categorical):
        frame = frame.with_columns(nw.col(cohort).cast(nw.String))
    col = nw.col(experiment)
    counts = _collect(frame.select(col.is_null().cast(nw.Int64).sum().alias("missing"),
                                   nw.len().alias("n")))
    if int(counts["n"].iloc[0]) == 0:
        raise ValueError("the events table has no rows")
    ids = _collect(frame.select(col).filter(~col.is_null()).unique())
    ids = _sorted_ids([_plain(v) for v in ids[experiment].tolist()])
    groups = [(k, functools.partial(_native_filter, frame, col == k)) for k in ids]
    n_missing = int(counts["missing"].iloc[0] or 0)
    if not n_missing:
        return groups, None
    numbered = ROW_COLUMN in names
    first = frame.filter(col.is_null())
    # the first by number, or (no row numbers) by value, so that the message is the same in
    # every run and engine
    by = [ROW_COLUMN] if numbered else [n for n in names if n != experiment
                                        and not _internal(n)]
    first = _collect(first.sort(by, nulls_last=True).head(MAX_SHOWN))
    records = [(row.get(ROW_COLUMN), [(c, v) for c, v in row.items()
                                      if c != experiment and not _internal(c)])
               for row in first.to_dict("records")]
    return groups, row_problem(problem, n_missing, describe_rows(records, n_missing,
                                                                 named=numbered))


def _narwhals(events):
    """A frame narwhals reads and its schema, or TypeError."""
    import narwhals as nw

    frame = nw.from_native(events, pass_through=True)
    if frame is events:
        raise TypeError(f"events must be a pandas DataFrame or a frame narwhals reads "
                        f"(Polars, DuckDB, PySpark), got {type(events).__name__}")
    return frame, frame.schema if isinstance(frame, nw.DataFrame) else frame.collect_schema()


def _names(events) -> list:
    """The column names of a pandas frame or of any frame narwhals reads (TypeError
    otherwise)."""
    if isinstance(events, pd.DataFrame):
        return list(events.columns)
    return list(_narwhals(events)[1].names())


def _internal(name) -> bool:
    return isinstance(name, str) and name.startswith(INTERNAL_PREFIX)


def _collect(frame) -> pd.DataFrame:
    import narwhals as nw

    if isinstance(frame, nw.LazyFrame):
        return frame.collect(backend="pandas").to_native()
    return frame.to_pandas()


# ----------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class Settings:
    """What every experiment of a batch is read out with, checked once.

    Built by :func:`settings` from the arguments of :func:`readouts` (and of
    :func:`bayesconv.spark.readouts`, which ships it to its workers).

    Attributes
    ----------
    experiment : str
        The experiment column.
    control, treatment
        The arms (see :func:`readouts`).
    prepare_kw : dict
        Keyword arguments of :func:`bayesconv.prepare` for each experiment's rows.
    model_kw : dict
        ``lag`` and ``formula`` of :class:`bayesconv.ConversionModel`.
    fit_kw : dict
        ``draws``, ``tune``, ``chains``, ``target_accept``, ``cores`` of
        :meth:`bayesconv.ConversionModel.fit`.
    readout_kw : dict
        ``ci_prob``, ``rope``, ``higher_is_better`` of :func:`bayesconv.compare`.
    horizon, threshold : float or None
    random_seed : int or None
        The batch seed (:func:`experiment_seed`).
    """

    experiment: str
    control: Any
    treatment: Any
    prepare_kw: dict
    model_kw: dict
    fit_kw: dict
    readout_kw: dict
    horizon: float | None
    threshold: float | None
    random_seed: int | None

    def columns(self, available) -> list:
        """The columns of the events (``available``: their names) the readouts read: the
        experiment, the arm, times, counts, ids, covariates, and ``observed_until`` when it
        names a column rather than a date."""
        return list(dict.fromkeys(c for _, c in self._named(available)))

    def _named(self, available) -> list[tuple[str, str]]:
        kw = self.prepare_kw
        pairs = [("experiment", self.experiment)] + [
            (k, kw[k]) for k in ("cohort", "created", "converted", "duration", "event",
                                 "count", "unit_id")]
        obs = kw["observed_until"]
        if isinstance(obs, str) and obs in set(available):
            pairs.append(("observed_until", obs))
        pairs += [("covariates", c) for c in kw["covariates"] or []]
        return [(k, c) for k, c in pairs if c is not None]

    def check_columns(self, available) -> None:
        """ValueError naming the arguments whose columns are not in the events
        (``available``: their names): a misspelt column would fail every experiment alike."""
        available = [a for a in available if not _internal(a)]
        missing = [f"{k}={c!r}" for k, c in self._named(available) if c not in set(available)]
        if missing:
            verb = "is not a column" if len(missing) == 1 else "are not columns"
            raise ValueError(f"{', '.join(missing)} {verb} of the events table; available "
                             f"columns: {available}")


def _wanted(treatment) -> list | None:
    if treatment is None:
        return None
    return [treatment] if isinstance(treatment, str) or not isinstance(treatment, Sequence) \
        else list(treatment)


def settings(**options) -> Settings:
    """The :class:`Settings` of a batch, with the arguments that would fail every experiment
    alike checked at once.

    Parameters
    ----------
    **options
        The keyword arguments of :func:`readouts` (:data:`OPTIONS`), all but ``events``,
        ``progressbar`` and ``callback``; defaults as there.

    Raises
    ------
    TypeError
        An unknown option, or a required one (``experiment``, ``cohort``, ``control``)
        missing.
    ValueError
        An unknown ``time_unit`` or ``lag``; ``horizon``, ``threshold``, ``rope``, ``draws``
        or ``chains`` out of range; the control listed as a treatment; the cohort column
        also the experiment column.
    """
    try:
        bound = OPTIONS.bind(**options)
    except TypeError as err:
        raise TypeError(f"{err}; the options of a batch readout are {list(OPTIONS.parameters)}"
                        ) from None
    bound.apply_defaults()
    o = bound.arguments
    experiment, cohort, control, treatment = (o["experiment"], o["cohort"], o["control"],
                                              o["treatment"])
    time_unit, lag, horizon, threshold, rope = (o["time_unit"], o["lag"], o["horizon"],
                                                o["threshold"], o["rope"])
    draws, chains, random_seed, covariates = (o["draws"], o["chains"], o["random_seed"],
                                              o["covariates"])
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r} is not one of {list(TIME_UNITS)}")
    get_lag(lag)
    if horizon is not None and not (isinstance(horizon, numbers.Real)
                                    and 0 < horizon < float("inf")):
        raise ValueError(f"horizon must be a positive number of time units ({time_unit!r}) "
                         f"or None, got {horizon!r}")
    if threshold is not None:
        check_threshold(threshold, "rate")
    check_rope(rope)
    for name, value in (("draws", draws), ("chains", chains)):
        if not (isinstance(value, numbers.Integral) and value >= 1):
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    wanted = _wanted(treatment)
    if wanted is not None:
        if not wanted:
            raise ValueError("treatment=[] names no arm; None compares every other arm")
        if str(control) in {str(t) for t in wanted}:
            raise ValueError(f"the control arm {control!r} is also listed as a treatment")
    if cohort == experiment:
        raise ValueError(f"cohort={cohort!r} is also the experiment column")
    if random_seed is not None and not isinstance(random_seed, numbers.Integral):
        raise ValueError(f"random_seed must be an integer or None, got {random_seed!r}")
    covariates = [covariates] if isinstance(covariates, str) else covariates
    return Settings(
        experiment=experiment, control=control, treatment=treatment,
        prepare_kw=dict({k: o[k] for k in ("created", "converted", "observed_until",
                                           "duration", "event", "count", "unit_id", "cohort",
                                           "time_unit", "bin_width", "resolution")},
                        covariates=covariates),
        model_kw={k: o[k] for k in ("lag", "formula")},
        fit_kw={k: o[k] for k in ("draws", "tune", "chains", "target_accept", "cores")},
        readout_kw={k: o[k] for k in ("ci_prob", "rope", "higher_is_better")},
        horizon=None if horizon is None else float(horizon),
        threshold=None if threshold is None else float(threshold),
        random_seed=None if random_seed is None else int(random_seed))


def readouts(events, *, experiment: str, cohort: str, control, treatment=None,
             created: str | None = None, converted: str | None = None, observed_until=None,
             duration: str | None = None, event: str | None = None, count: str | None = None,
             unit_id: str | None = None, time_unit: str = "D", bin_width: float | None = None,
             resolution="auto", covariates: Sequence[str] | None = None,
             lag: str = "gamma", formula=None, horizon: float | None = None,
             ci_prob: float = 0.94, rope=None, higher_is_better: bool = True,
             threshold: float | None = None, draws: int = 1000, tune: int | None = None,
             chains: int = 4, target_accept: float | None = None, cores: int | None = None,
             random_seed: int | None = None, progressbar: bool = True,
             callback: Callable | None = None) -> pd.DataFrame:
    """Read out every experiment of an events table: each treatment arm against the control.

    Parameters
    ----------
    events : pandas.DataFrame, polars.DataFrame, polars.LazyFrame, duckdb.DuckDBPyRelation \
or any frame narwhals reads
        One row per unit (or per group of identical units with ``count``), of many
        experiments. For Spark use :func:`bayesconv.spark.readouts`.
    experiment : str
        Column of the experiment id; each distinct id is read out on its own.
    cohort : str
        Column of the arm (variant).
    control : label
        The control arm's label, the same in every experiment (matched by its text, so
        ``0`` and ``"0"`` both name arm 0).
    treatment : label, list of labels or None, default None
        The treatment arm(s); None compares every other arm of each experiment with the
        control. Arms neither control nor treatment are left out of the fit (the
        ``warnings`` column says how many units).
    created, converted, observed_until, duration, event, count, unit_id, time_unit, \
bin_width, resolution, covariates
        As for :func:`bayesconv.prepare`, applied to each experiment's rows. Durations and
        the horizon are in ``time_unit`` (default days).
    lag, formula
        As for :class:`bayesconv.ConversionModel`.
    horizon : float, optional
        Also read out conversion within this time of creation, c·F(horizon), in
        ``time_unit``. Default: each experiment's :func:`bayesconv.default_horizon` (the
        median follow-up of its shortest-followed arm, rounded down); the ``horizon`` column
        says which.
    ci_prob, rope, higher_is_better
        As for :func:`bayesconv.compare`.
    threshold : float, optional
        Threshold of caring of the expected-loss decision rule, in rate units (0.002 = 0.2
        percentage points): the ``decision`` and ``decision_text`` columns on the rate
        metrics (:meth:`bayesconv.Readout.decision`). None leaves them empty.
    draws, tune, chains, target_accept, cores
        As for :meth:`bayesconv.ConversionModel.fit`.
    random_seed : int, optional
        Batch seed; each experiment's fit is seeded by :func:`experiment_seed` of it and the
        experiment id, so an experiment's row is the same alone or in any batch.
    progressbar : bool, default True
        A progress bar over experiments (rich: a terminal or a notebook).
    callback : callable, optional
        ``callback(experiment_id, result, readout)`` after each successful fit, e.g. to save
        the result or write a report (the command line's ``bayesconv readouts`` does).

    Returns
    -------
    pandas.DataFrame
        One row per (experiment, treatment arm, metric), experiments in sorted id order:
        the experiment column under its own name, then :data:`COLUMNS`: ``treatment``,
        ``metric``, the :meth:`bayesconv.Readout.to_frame` columns (means, HDIs,
        ``prob_better``, expected losses, ...), ``horizon``, ``decision``,
        ``decision_text``, diagnostics (``max_r_hat``, ``min_ess`` (the lower of bulk and
        tail ESS), ``divergences``), ``weakly_identified`` (either arm's eventual rate),
        ``n_units``, ``n_control``, ``n_treatment``, ``fit_seconds`` (the fit's wall time,
        the one column that differs between runs), ``warnings`` (bayesconv's warnings for
        that experiment, joined by ``" | "``) and ``error``. An experiment that could not be
        read out (bad rows, a missing arm, a failed fit) has one row with its ``error`` and
        empty values; rows without an experiment id get such a row with the id missing.
        Arm labels are text. ``attrs`` holds the arguments of the readout.

    Raises
    ------
    ValueError
        Arguments that would fail every experiment alike: ``experiment`` (or another
        argument's column, checked by ``prepare`` per experiment) not a column, an empty
        table, an unknown ``time_unit`` or ``lag``, a ``horizon``, ``threshold``, ``rope``,
        ``draws`` or ``chains`` out of range, a control listed as a treatment.
    TypeError
        ``events`` is no frame bayesconv reads.

    Warns
    -----
    DataWarning
        Some experiments could not be read out (their count; see the ``error`` column).
    ConvergenceWarning
        Some fits failed a convergence check (their ids; see the ``warnings`` column).

    Notes
    -----
    Each experiment is fitted as :func:`bayesconv.ConversionModel` fits it alone, with the
    same default priors and pooling across its arms; nothing is pooled across experiments.
    """
    given = dict(locals())     # first: the arguments only
    st = settings(**{k: v for k, v in given.items() if k in OPTIONS.parameters})
    st.check_columns(_names(events))
    groups, missing = split_experiments(events, experiment, cohort)
    tables = []
    if missing:
        tables.append(conform(_error_rows(experiment, None, missing), experiment))
    with _progress(progressbar, len(groups)) as advance:
        prepared = []
        for eid, rows_of in groups:
            advance(f"validating {eid}", 0)
            prepared.append(_prepare_one(rows_of(), eid, st))
        rows: dict[int, pd.DataFrame] = {}
        order = sorted(range(len(prepared)), key=lambda i: prepared[i].key)
        for i in order:   # grouped by model structure: each compiles once
            p = prepared[i]
            advance(f"fitting {p.experiment_id}", 0)
            if p.error is not None:
                rows[i] = _error_rows(experiment, p.experiment_id, p.error, p.messages)
            else:
                rows[i] = _fit_one(p, st, callback)
            advance(f"read out {p.experiment_id}", 1)
    tables += [conform(rows[i], experiment) for i in range(len(prepared))]
    table = pd.concat(tables, ignore_index=True) if tables else conform(
        pd.DataFrame({experiment: []}), experiment)
    table.attrs.update(experiment=experiment, control=str(control), time_unit=time_unit,
                       lag=lag, ci_prob=ci_prob, threshold=threshold, random_seed=random_seed,
                       draws=draws, chains=chains, horizon=horizon)
    summarize(table, experiment)
    return table


#: The options of a batch readout: the keyword arguments of :func:`readouts` but ``events``,
#: ``progressbar`` and ``callback`` (:func:`settings` takes them; so does
#: :func:`bayesconv.spark.readouts`, whose signature is this one).
OPTIONS = inspect.Signature([p for name, p in inspect.signature(readouts).parameters.items()
                             if name not in ("events", "progressbar", "callback")])


def outcome(table: pd.DataFrame, experiment: str) -> tuple[int, list, bool]:
    """How a readouts table went: the number of experiments (rows without an id are none),
    the ids of those that could not be read out (in table order), and whether some rows had
    no experiment id."""
    ids = table[experiment]
    failed = list(dict.fromkeys(ids[table["error"].notna() & ids.notna()].tolist()))
    return ids.nunique(), failed, bool(ids.isna().any())


def summarize(table: pd.DataFrame, experiment: str, stacklevel: int = 3) -> None:
    """Warn once for a whole batch: experiments that failed, fits that did not converge."""
    n, failed, no_id = outcome(table, experiment)
    if failed or no_id:
        parts = []
        if failed:
            ids = ", ".join(repr(_plain(v)) for v in failed[:5]) + (
                ", ..." if len(failed) > 5 else "")
            parts.append(f"{len(failed)} of {n} experiments could not be read out ({ids})")
        if no_id:
            parts.append(f"rows without an id in column {experiment!r} were not read out "
                         "(the error row whose experiment is empty names them)")
        warnings.warn(DataWarning(
            "; ".join(parts), "see the 'error' column for each one's reason", "batch"),
            stacklevel=stacklevel)
    # the checks of ConversionModel.fit's ConvergenceWarning, on the diagnostics columns
    flagged = ((table["max_r_hat"] > RHAT_MAX) | (table["min_ess"] < ESS_MIN)
               | (table["divergences"] > 0)).fillna(False)
    bad = list(dict.fromkeys(table.loc[flagged.astype(bool), experiment].tolist()))
    if bad:
        ids = ", ".join(repr(_plain(v)) for v in bad[:5]) + (", ..." if len(bad) > 5 else "")
        warnings.warn(ConvergenceWarning(
            f"{len(bad)} of {n} experiments failed a convergence check ({ids}); their "
            "intervals are not yet to be trusted",
            "see the 'warnings' column for each fit's problem and remedy, and refit those "
            "experiments alone with its advice (more draws, a higher target_accept)", "batch"),
            stacklevel=stacklevel)


class _progress:
    """A rich progress bar over experiments (a no-op without ``enabled``)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total
        self._bar = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("readouts"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.description}"))
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)

        def advance(text: str, step: int) -> None:
            if self._bar is not None:
                self._bar.update(self._task, advance=step, description=text)

        return advance

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()
        return False
