"""The posterior layer: what a fitted posterior is and everything computed from it.

* :mod:`~bayesconv.posterior.result`: :class:`ConversionResult` and :func:`load`;
* :mod:`~bayesconv.posterior.quantities`: curves, conversion probabilities, nowcasts and the
  pointwise log-likelihood, as functions of the draws;
* :mod:`~bayesconv.posterior.diagnostics`: R-hat, ESS, divergences, HDIs;
* :mod:`~bayesconv.posterior.identification`: how well follow-up identifies eventual rates;
* :mod:`~bayesconv.posterior.predictive`: posterior predictive Kaplan–Meier curves;
* :mod:`~bayesconv.posterior.calibration`: observed vs predicted by follow-up age band;
* :mod:`~bayesconv.posterior.comparison`: PSIS-LOO per unit and :func:`compare_models`;
* :mod:`~bayesconv.posterior.store`: the on-disk format.
"""

from .comparison import compare_models, loo, row_loo
from .diagnostics import check_convergence, hdi
from .quantities import Draws
from .result import ConversionResult, load
from .store import DataNotSaved, save_result

__all__ = ["ConversionResult", "DataNotSaved", "Draws", "check_convergence", "compare_models",
           "hdi", "load", "loo", "row_loo", "save_result"]
