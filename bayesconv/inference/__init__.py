"""The inference layer: from a model to a posterior.

* :mod:`~bayesconv.inference.model`: :class:`ConversionModel` (the model layer's builder plus
  ``fit``, prior predictive draws and prior curves);
* :mod:`~bayesconv.inference.methods`: the registry of inference methods (NUTS through nutpie
  or PyMC, MAP, Laplace); add one with :func:`register_method`;
* :mod:`~bayesconv.inference.laplace`: the Laplace approximation, compiled once per model
  structure and refitted with new data (what :func:`bayesconv.project` refits with);
* :mod:`~bayesconv.inference.compile`: reproducible compilation and the per-process cache of
  compiled models;
* :mod:`~bayesconv.inference.disk_cache`: the persistent compile cache shared by processes
  (numba's on-disk cache of nutpie's compiled functions, made to hit);
* :mod:`~bayesconv.inference.prior`: draws from the priors alone.
"""

from .compile import clear_compile_cache, reproducible_compilation
from .methods import METHODS, FitOptions, MethodOutput, register_method
from .model import ConversionModel, fit_model
from .prior import plot_prior_curves, prior_result, sample_prior

__all__ = ["METHODS", "ConversionModel", "FitOptions", "MethodOutput", "clear_compile_cache",
           "fit_model", "plot_prior_curves", "prior_result", "register_method",
           "reproducible_compilation", "sample_prior"]
