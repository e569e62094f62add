"""The readout layer: experiments read out from a posterior.

* :mod:`~bayesconv.readout.metrics`: the metrics a readout compares arms on (eventual rate,
  rate by a horizon, median lag); add one with :func:`register_metric`;
* :mod:`~bayesconv.readout.compare`: :func:`compare`, :class:`Readout` and
  :func:`default_horizon`;
* :mod:`~bayesconv.readout.decision`: the expected-loss decision rule and :class:`Decision`
  (:meth:`Readout.decision`);
* :mod:`~bayesconv.readout.projection`: :func:`project` ("how many days until we know?") and
  :func:`plan` (before launch), by preposterior simulation.
"""

from .compare import LIFT_MIN_HDI_RATIO, Readout, compare, default_horizon
from .decision import Decision
from .metrics import METRICS, Metric, register_metric
from .projection import Projection, plan, project

__all__ = ["LIFT_MIN_HDI_RATIO", "METRICS", "Decision", "Metric", "Projection", "Readout",
           "compare", "default_horizon", "plan", "project", "register_metric"]
