"""The model layer: what a conversion model is, before it is fitted.

* :mod:`~bayesconv.model.spec`: :class:`ModelSpec`, the serialisable definition;
* :mod:`~bayesconv.model.priors`: :data:`DEFAULT_PRIORS` and their checks;
* :mod:`~bayesconv.model.design`: how parameters vary over cohorts (pooling, centred or
  non-centred per cohort);
* :mod:`~bayesconv.model.mixture`: the cure-mixture formulas, shared with every posterior
  quantity;
* :mod:`~bayesconv.model.likelihood`: the censored likelihood per row kind, on cells;
* :mod:`~bayesconv.model.builder`: the PyMC graph.
"""

from .builder import ModelBuilder
from .design import POOLING, choose_parametrization, resolve_pooling
from .likelihood import LikelihoodArrays, LikelihoodRows, RowKind, rows_from_data
from .priors import DEFAULT_PRIORS, merge_priors
from .spec import ModelSpec

__all__ = ["DEFAULT_PRIORS", "POOLING", "LikelihoodArrays", "LikelihoodRows", "ModelBuilder",
           "ModelSpec", "RowKind", "choose_parametrization", "merge_priors", "resolve_pooling",
           "rows_from_data"]
