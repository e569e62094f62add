"""Message texts and rules that several input paths share, each written once."""

from __future__ import annotations

__all__ = ["NOT_ISO_DATES", "TZ_TEXT_PATTERN", "mixed_timezone_problem"]

#: An ISO 8601 date-time text that ends in a time zone designator (Z, ±HH, ±HHMM, ±HH:MM).
#: One pattern for the pandas path and the command line's DuckDB reader, so that both read the
#: same text as timezone-aware; a date alone ("2024-01-05") never matches.
TZ_TEXT_PATTERN = (r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*"
                   r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$")

#: The problem text of values that are not ISO 8601 dates (pandas and DuckDB readers).
NOT_ISO_DATES = ("values in column {col!r} that are not ISO 8601 dates "
                 "(YYYY-MM-DD[ HH:MM:SS][±HH:MM]{hint})")


def mixed_timezone_problem(col: str, n_aware: int, n_naive: int) -> tuple[str, bool]:
    """How to report a column that mixes timezone-aware and naive values.

    The rows listed are those of the smaller group, the few a user has to find and fix (one
    timestamp with an offset among thousands of plain ones, or the reverse).

    Returns
    -------
    problem : str
        Text for :func:`_check`-style messages ("... in N rows: row ...").
    list_aware : bool
        Whether the rows to list are the timezone-aware ones.
    """
    list_aware = n_aware <= n_naive
    minority, majority = ("aware", "naive") if list_aware else ("naive", "aware")
    n_major = n_naive if list_aware else n_aware
    return (f"timezone-{minority} timestamps in column {col!r} mixed with {n_major} "
            f"timezone-{majority} ones (make all naive or all aware)", list_aware)
