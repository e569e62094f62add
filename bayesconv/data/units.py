"""Time units: their length, their names, and durations in words."""

from __future__ import annotations

__all__ = ["TIME_UNITS", "amount", "human_duration", "unit_name"]

#: Length of each supported time unit in seconds. A year is 365.25 days (Julian year).
TIME_UNITS: dict[str, float] = {
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "D": 86400.0,
    "W": 7 * 86400.0,
    "Y": 365.25 * 86400.0,
}

_NAMES = {"s": "seconds", "min": "minutes", "h": "hours", "D": "days", "W": "weeks",
          "Y": "years"}


def unit_name(unit: str) -> str:
    """The plural English name of a time unit ("D" -> "days"); unknown units as given."""
    return _NAMES.get(unit, unit)


def amount(x: float, unit: str) -> str:
    """A length of time in words: "1 day", "7 days", "1.5 weeks" (the unit singular for
    exactly one); ``x`` formatted with ``:g``."""
    name = unit_name(unit)
    if float(x) == 1.0 and unit in _NAMES:
        name = name[:-1]
    return f"{float(x):g} {name}"


def number(x: float) -> str:
    """A count-like number for messages: "5,215" at 100 and above, else 3 significant digits."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def human_duration(seconds: float) -> tuple[str, str]:
    """(text, unit) of a duration in the largest unit it reaches, e.g. ("5,215 years", "Y")."""
    for unit in ("Y", "D", "h", "min"):
        if seconds >= TIME_UNITS[unit]:
            return f"{number(seconds / TIME_UNITS[unit])} {_NAMES[unit]}", unit
    return f"{number(seconds)} seconds", "s"
