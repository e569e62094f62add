"""Readout metrics as a registry: what a readout can compare arms on.

Each :class:`Metric` has a name, a unit (a rate, or a time in the data's time unit), the
direction in which it is better (relative to the outcome's: with conversions good, a higher
rate and a *shorter* lag are better), a formatter for displays, and a function that gives its
posterior draws for a group of cells mixed with weights (an arm, averaged over the
experiment's mix of the other factors). :func:`bayesconv.compare`, the Readout's tables, text and HTML, the
CLI report and replays iterate over :data:`METRICS`; adding a metric is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.units import amount, unit_name
from ..model.mixture import converter_median

__all__ = ["METRICS", "Metric", "register_metric"]


@dataclass(frozen=True)
class Metric:
    """A quantity a readout compares arms on.

    Attributes
    ----------
    name : str
        Key in tables (the ``metric`` column).
    kind : {"rate", "time"}
        A share of units (shown in %, differences in percentage points), or a time (in the
        data's time unit).
    same_direction : bool
        Whether "better" follows the outcome's direction (``higher_is_better``): True for
        rates; False for the median lag, where with conversions good a shorter lag is better.
    needs_horizon : bool
        Whether the metric needs ``compare(..., horizon=...)``.
    value : callable
        ``value(family, rate, lag, weights, horizon) -> ndarray (chain, draw)``: the metric
        of a mix of cells, from their parameter draws ``rate`` (chain, draw, k) and ``lag``
        (tuple of (chain, draw, k); location in the data's time unit) and mixing ``weights``
        (k,) summing to 1.
    title : callable
        ``title(horizon, time_unit) -> str``, the metric's name in text ("rate by 14 days").
    """

    name: str
    kind: str
    same_direction: bool
    needs_horizon: bool
    value: Callable
    title: Callable

    def higher_is_better(self, outcome_higher_is_better: bool) -> bool:
        """Whether a higher value of this metric is better, for an outcome's direction."""
        return outcome_higher_is_better if self.same_direction else not outcome_higher_is_better

    def unit(self, time_unit: str) -> str:
        """``"rate"`` or the time unit (the ``unit`` column of readout tables)."""
        return "rate" if self.kind == "rate" else time_unit

    def qualifier(self, higher_better: bool) -> str:
        """Words after "better" in a headline: "" or " (lower)" for rates, " (shorter)" or
        " (longer)" for times."""
        if self.kind == "time":
            return " (longer)" if higher_better else " (shorter)"
        return "" if higher_better else " (lower)"

    def fmt(self, x: float, time_unit: str) -> str:
        """A value for display: "12.34%" for a rate, "4.21" for a time (its unit is in the
        metric's name)."""
        if self.kind == "rate":
            return f"{x * 100:.2f}%"
        return f"{x:.3g}" if abs(x) < 1 else f"{x:,.2f}" if abs(x) < 1000 else f"{x:,.0f}"

    def fmt_interval(self, mean: float, lower: float, upper: float, time_unit: str) -> str:
        """"12.34% [11.0%, 13.7%]" or "4.21 [4.05, 4.40]"."""
        return (f"{self.fmt(mean, time_unit)} [{self.fmt(lower, time_unit)}, "
                f"{self.fmt(upper, time_unit)}]")

    def fmt_diff(self, x: float, time_unit: str) -> str:
        """A difference for display: "+1.23" (percentage points) or "-0.80" (time unit)."""
        if self.kind == "rate":
            return f"{x * 100:+.2f}"
        return f"{x:+.3g}" if abs(x) < 1 else f"{x:+,.2f}"

    def diff_unit(self, time_unit: str) -> str:
        """The unit of a difference: "pp" or the time unit's name."""
        return "pp" if self.kind == "rate" else unit_name(time_unit)

    @property
    def scale(self) -> float:
        """Factor from the metric's unit to the displayed one (100 for rates in %)."""
        return 100.0 if self.kind == "rate" else 1.0


def _mix(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_k w_k v_k over the last axis; one component with weight 1 is returned as is."""
    if len(weights) == 1 and weights[0] == 1.0:
        return values[..., 0]
    return (values * weights).sum(axis=-1)


def _eventual(family, rate, lag, weights, horizon):
    return _mix(rate, weights)


def _by_horizon(family, rate, lag, weights, horizon):
    return _mix(rate * np.exp(family.logcdf(np.float64(horizon), *lag)), weights)


def _median_lag(family, rate, lag, weights, horizon):
    return converter_median(family, rate, lag, weights)


#: The readout metrics, in display order.
METRICS: dict[str, Metric] = {
    "eventual": Metric("eventual", "rate", True, False, _eventual,
                       lambda h, u: "eventual rate"),
    "by_horizon": Metric("by_horizon", "rate", True, True, _by_horizon,
                         lambda h, u: f"rate by {amount(h, u)}"),
    "median_lag": Metric("median_lag", "time", False, False, _median_lag,
                         lambda h, u: f"median lag ({unit_name(u)})"),
}


def register_metric(metric: Metric) -> None:
    """Add a readout metric (shown after the built-in ones)."""
    METRICS[metric.name] = metric
