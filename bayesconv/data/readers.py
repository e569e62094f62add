"""Events files (CSV, optionally compressed, and Parquet) read by an embedded DuckDB.

The command line reads its input through :func:`read_events`: nothing is loaded into Python
memory, so the validation and aggregation of :func:`bayesconv.prepare` run inside DuckDB and
files larger than memory work. Date columns of a CSV file are read as text and parsed here,
with the rules of the pandas path of ``prepare``:

* text with a UTC offset or ``Z`` (``2024-01-01T20:00:00-05:00``) is timezone-aware and is
  converted to UTC; text without one is naive;
* a column mixing the two is refused with the message ``prepare`` gives for the same values,
  naming the rows of the smaller group;
* text that is not an ISO 8601 date is refused, naming the rows.

Rows are numbered from 0 in file order, after the header (as ``pandas.read_csv`` numbers
them), and errors about the data name them by that number (column
:data:`bayesconv.data.messages.ROW_COLUMN`).
"""

from __future__ import annotations

from pathlib import Path

from .messages import (
    MAX_SHOWN,
    NOT_ISO_DATES,
    ROW_COLUMN,
    TZ_TEXT_PATTERN,
    describe_rows,
    mixed_timezone_problem,
    row_problem,
)

__all__ = ["read_events"]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fail(rel, problem: str, condition: str, col: str, n_bad: int):
    """Raise for the rows meeting ``condition``, naming the first of them in file order."""
    first = (rel.filter(condition).order(ROW_COLUMN)
             .select(f"{ROW_COLUMN}, {_q(col)}").limit(MAX_SHOWN).fetchall())
    shown = describe_rows([(i, [(col, v)]) for i, v in first], n_bad)
    raise ValueError(row_problem(problem, n_bad, shown))


def read_events(path, date_columns=()):
    """An events file as a DuckDB relation, date text parsed, rows numbered.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (optionally ``.gz``/``.zst``; also ``.txt``) or ``.parquet``/``.pq``.
    date_columns : sequence of str
        Columns holding dates. In CSV files they are read as text and parsed as described in
        the module docstring; in Parquet files they keep their stored type unless they are
        text, which is parsed the same way. Names that are not columns are ignored here
        (``prepare`` reports them).

    Returns
    -------
    duckdb.DuckDBPyRelation
        With the file's columns (date text as TIMESTAMP, or TIMESTAMP WITH TIME ZONE in UTC
        for text with offsets) and :data:`~bayesconv.data.messages.ROW_COLUMN`.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unknown file type; date text that is not ISO 8601, or that mixes values with and
        without a UTC offset in one column (the rows are named).
    """
    import duckdb

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"events file {str(path)!r} does not exist")
    suffixes = "".join(p.suffixes).lower()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # text without an offset is never read as local time
    if suffixes.endswith((".parquet", ".pq")):
        rel = con.read_parquet(str(p))
    elif ".csv" in suffixes or ".txt" in suffixes:
        sniffed = con.read_csv(str(p))
        header = sniffed.columns
        text = {c: "VARCHAR" for c in dict.fromkeys(date_columns) if c in header}
        # DuckDB's sniffer reads yes/no (and y/n, ...) columns as BOOLEAN: a segment column of
        # "yes"/"no" would come back as True/False. Only true/false text is read as booleans.
        bools = [c for c, t in zip(header, sniffed.types, strict=True) if str(t) == "BOOLEAN"]
        if bools:
            raw = con.read_csv(str(p), dtype={c: "VARCHAR" for c in bools})
            for c in bools:
                (values,) = raw.aggregate(f"list(DISTINCT lower(trim({_q(c)})))").fetchall()[0]
                if not {v for v in values if v is not None} <= {"true", "false"}:
                    text[c] = "VARCHAR"
        rel = con.read_csv(str(p), dtype=text) if text else con.read_csv(str(p))
    else:
        raise ValueError(f"cannot read {str(path)!r}: expected a .csv (optionally .gz) or "
                         ".parquet file")
    rel = rel.select(f"*, row_number() OVER () - 1 AS {ROW_COLUMN}")
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    casts = {}
    for col in dict.fromkeys(date_columns):
        if types.get(col) != "VARCHAR":
            continue
        v = f"NULLIF(trim({_q(col)}), '')"
        aware = f"regexp_matches({v}, '{TZ_TEXT_PATTERN}')"
        n_aware, n_naive = rel.aggregate(
            f"count(*) FILTER ({v} IS NOT NULL AND {aware}), "
            f"count(*) FILTER ({v} IS NOT NULL AND NOT {aware})").fetchall()[0]
        if n_aware and n_naive:
            problem, list_aware = mixed_timezone_problem(col, n_aware, n_naive)
            cond = f"{v} IS NOT NULL AND {'' if list_aware else 'NOT '}{aware}"
            _fail(rel, problem, cond, col, n_aware if list_aware else n_naive)
        target = "TIMESTAMPTZ" if n_aware else "TIMESTAMP"
        parsed = f"TRY_CAST({v} AS {target})"
        cond = f"{v} IS NOT NULL AND {parsed} IS NULL"
        (n_bad,) = rel.aggregate(f"count(*) FILTER ({cond})").fetchall()[0]
        if n_bad:
            _fail(rel, NOT_ISO_DATES.format(col=col, hint=""), cond, col, n_bad)
        casts[col] = f"{parsed} AS {_q(col)}"
    if not casts:
        return rel
    return rel.select(", ".join(casts.get(c, _q(c)) for c in rel.columns))
