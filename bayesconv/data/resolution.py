"""The time resolution times were recorded to: detected from the durations, stated in words.

Timestamps floored to the day (``2024-03-05``), day numbers, integer weeks: durations computed
from such times all lie on a grid 0, δ, 2δ, ... of the resolution δ, and a recorded duration
d = kδ is not a time but a bin. With the creation and the conversion time both floored to δ,
a unit created at c₀ + uδ (u in [0, 1)) that converts after a lag T is recorded at
k = floor(u + T/δ), so given T the recorded k is T/δ rounded down or up with the triangular
weights 1 − |T/δ − k|. Reading d as exact biases the lag wherever its density changes on the
scale of δ: a lag with shape < 1 piles conversions up near 0, exactly where flooring moves them
(validation/calibration.md, stress run: 90% intervals of the eventual rate covered 83%).
The likelihood's reading of such rows is in :mod:`bayesconv.model.likelihood`; this module
only finds δ.

Detection looks at the durations of converted units: δ is the largest of a week, a day, an
hour, a minute, a second (and one time unit, for numeric times) that every positive duration is
a whole multiple of, provided there are at least :data:`MIN_DISTINCT` distinct positive
durations (fewer cannot tell a grid from chance). A δ below :data:`NEGLIGIBLE` of the median
positive duration is recorded but read as exact: smearing by it cannot move an estimate.
:func:`bayesconv.prepare` applies the interval reading with ``resolution="auto"``; its default
``"detect"`` records δ and reads times as exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .units import TIME_UNITS, amount, number, unit_name

__all__ = ["MIN_DISTINCT", "NEGLIGIBLE", "describe", "detect", "stamp_resolution"]

#: Fewest distinct positive conversion durations from which a grid is inferred.
MIN_DISTINCT = 5
#: A resolution under this share of the median positive duration is read as exact.
NEGLIGIBLE = 1e-3
#: Calendar resolutions tried, largest first: (seconds, name).
_LADDER = ((7 * 86400.0, "week"), (86400.0, "day"), (3600.0, "hour"), (60.0, "minute"),
           (1.0, "second"))


def _on_grid(values: np.ndarray, width: float) -> bool:
    k = values / width
    return bool(np.all(np.abs(k - np.rint(k)) <= 1e-9 * np.maximum(1.0, np.abs(k))))


def detect(durations, time_unit: str, *, numeric: bool) -> dict:
    """The resolution of converted units' durations.

    Parameters
    ----------
    durations : array_like of float
        Durations of converted units, in ``time_unit`` (zeros are ignored).
    time_unit : str
        One of :data:`bayesconv.data.units.TIME_UNITS`.
    numeric : bool
        Whether times were numbers already in ``time_unit`` (then one time unit is a
        candidate too, e.g. integer years).

    Returns
    -------
    dict
        ``{"resolution": δ in time_unit, "resolution_read": "interval" | "negligible"}``
        ("negligible": under :data:`NEGLIGIBLE` of the median duration), or an empty dict
        when the durations show no grid (exact times, or fewer than :data:`MIN_DISTINCT`
        distinct positive durations).
    """
    d = np.unique(np.asarray(durations, dtype=float))
    d = d[d > 0]
    if d.size < MIN_DISTINCT:
        return {}
    secs = TIME_UNITS[time_unit]
    widths = sorted({s / secs for s, _ in _LADDER} | ({1.0} if numeric else set()),
                    reverse=True)
    for width in widths:
        if _on_grid(d, width):
            median = float(np.median(d))
            read = "negligible" if width < NEGLIGIBLE * median else "interval"
            return {"resolution": float(width), "resolution_read": read}
    return {}


def stamp_resolution(*stamps) -> float:
    """The grid, in seconds, that timestamps were recorded on (0.0: exact).

    Parameters
    ----------
    *stamps : array_like of datetime64
        Timestamps (missing values ignored), e.g. the creation and the conversion times.

    Returns
    -------
    float
        The largest of a week, a day, an hour, a minute and a second such that every stamp
        lies a whole number of it from the earliest stamp, provided there are at least
        :data:`MIN_DISTINCT` distinct stamps; else 0.0. Measured from the earliest stamp
        (time-zone-aware stamps on their wall clock), so that dates floored at local
        midnight are found whatever their time zone.
    """
    values = []
    for s in stamps:
        t = pd.to_datetime(pd.Series(s).reset_index(drop=True))
        if t.dt.tz is not None:      # on the wall clock: local midnights stay a day apart
            t = t.dt.tz_localize(None)
        values.append(t.dropna().to_numpy("datetime64[ns]").astype(np.int64))
    ns = np.unique(np.concatenate(values)) if values else np.zeros(0, np.int64)
    if ns.size < MIN_DISTINCT:
        return 0.0
    offset = ns - ns[0]
    for secs, _ in _LADDER:
        if np.all(offset % int(secs * 1e9) == 0):
            return float(secs)
    return 0.0


def describe(meta: dict, time_unit: str) -> str:
    """How the data's times are read, in words, e.g. ``"times recorded to 1 day, read as
    interval-censored"``; ``"exact times"`` when no resolution applies, ``"times binned to
    7 days"`` with ``bin_width``."""
    if meta.get("bin_width") is not None:
        return f"times binned to {amount(meta['bin_width'], time_unit)}"
    width = meta.get("resolution")
    if width is None:
        return "exact times"
    secs = width * TIME_UNITS[time_unit]
    name = next((f"1 {n}" for s, n in _LADDER if np.isclose(secs, s)), None)
    if name is None:
        unit = unit_name(time_unit)
        name = f"1 {unit[:-1]}" if width == 1 else f"{number(width)} {unit}"
    read = meta.get("resolution_read")
    if read == "negligible":
        return f"times recorded to {name}, read as exact (negligible)"
    if read == "exact":
        return (f"times recorded to {name}, read as exact (resolution='detect'; the default "
                "'auto' reads them as interval-censored)")
    return f"times recorded to {name}, read as interval-censored"
