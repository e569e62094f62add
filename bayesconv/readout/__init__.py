"""The readout layer: experiments read out from a posterior.

* :mod:`~bayesconv.readout.metrics`: the metrics a readout compares arms on (eventual rate,
  rate by a horizon, median lag); add one with :func:`register_metric`;
* :mod:`~bayesconv.readout.compare`: :func:`compare`, :class:`Readout` and
  :func:`default_horizon`.
"""

from .compare import LIFT_MIN_HDI_RATIO, Readout, compare, default_horizon
from .metrics import METRICS, Metric, register_metric

__all__ = ["LIFT_MIN_HDI_RATIO", "METRICS", "Metric", "Readout", "compare", "default_horizon",
           "register_metric"]
