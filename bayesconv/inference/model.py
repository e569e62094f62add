"""ConversionModel: a model that can be fitted (the model layer's builder plus inference)."""

from __future__ import annotations

import numpy as np

from ..model.builder import ModelBuilder
from ..posterior.identification import warn_weak_identification
from ..posterior.result import ConversionResult
from . import prior
from .methods import DEFAULT_TUNE, METHODS, FitOptions, resolve_sampler

__all__ = ["FEW_LEVELS", "ConversionModel", "default_target_accept", "fit_model"]


class ConversionModel(ModelBuilder):
    __doc__ = ModelBuilder.__doc__

    def fit(self, *, draws: int = 1000, tune: int | None = None, chains: int = 4,
            random_seed: int | None = None, sampler: str = "auto", progressbar: bool = True,
            method: str = "nuts", cores: int | None = None,
            target_accept: float | None = None, sampler_kwargs: dict | None = None):
        """Sample the posterior (NUTS) or find its mode (MAP).

        Parameters
        ----------
        draws : int, default 1000
            Kept draws per chain.
        tune : int, optional
            Warm-up (tuning) iterations per chain. Default 500 with nutpie, whose mass-matrix
            adaptation (from draws and gradients) settles quickly, and 1000 with PyMC's NUTS.
        chains : int, default 4
        random_seed : int, optional
            Same seed, same sampler, same data → identical draws, in any process (README,
            "Reproducibility").
        sampler : {"auto", "nutpie", "pymc", "nutpie-jax", "numpyro", "blackjax"}, default "auto"
            The NUTS implementation: "auto" uses nutpie when it is installed (it is a
            dependency; numba back end, with the compile cache), else PyMC's NUTS. The JAX
            samplers (``pip install 'bayesconv[jax]'``) run the same log density through
            PyTensor's JAX back end, the incomplete gamma of the gamma and
            generalized-gamma lags included (:mod:`bayesconv.lags.incgamma_jax`): nutpie's
            JAX back end, NumPyro and BlackJAX (through ``pymc.sample``, chains vectorised).
            They compile on every call (no compile cache) and are slower on a CPU
            (``benchmarks/jax_samplers.md``); they are there for GPUs and JAX pipelines.
        progressbar : bool, default True
            Progress bar, and a line before the compile step of a structure's first fit.
        method : {"nuts", "map", "laplace"} or a registered method, default "nuts"
            An inference method of :data:`bayesconv.inference.METHODS`: "nuts" samples the
            posterior; "map" finds its mode (a fast point estimate, one draw, no intervals
            worth the name) and returns the same result interface (``result.kind ==
            "point"``); "laplace" draws ``chains × draws`` independent points from a
            Gaussian at the mode on the unconstrained scale (:mod:`bayesconv.inference.laplace`;
            ``sampler == "laplace"``): an approximation for many units per arm and an eventual
            rate the follow-up identifies, poor for funnels and weakly identified rates.
        cores : int, optional
            Chains run in parallel on this many cores (default: all, up to ``chains``).
        target_accept : float, optional
            NUTS target acceptance rate; default :func:`default_target_accept` of the
            model's hierarchical terms: 0.95 when one has 6 or fewer levels, 0.9 for other
            hierarchical models and for several cohorts without pooling (their lags are tied),
            0.8 for one cohort or complete pooling. Kept in
            ``result.posterior.attrs["target_accept"]`` (the tuning steps in ``"tune"``).
        sampler_kwargs : dict, optional
            Further keyword arguments for ``nutpie.sample`` or ``pymc.sample``. nutpie's
            mass-matrix ``adaptation`` is chosen by
            :func:`bayesconv.model.design.choose_mass_matrix` unless given here: diagonal,
            or diagonal-plus-low-rank (``"low_rank"``) for formulas whose group levels the
            data pin far more tightly than the between-level sd (the ridge between the
            intercept and the group effects; 195 → 7 leapfrog steps per draw on 10^6 units).
            The choice is kept in ``result.posterior.attrs["nutpie_adaptation"]``.
            ``{"adaptation": "low_rank"}`` also absorbs the correlation between a cohort's
            eventual rate and its lag (NYC demo: 15 → 10 steps per draw at the same ESS) but
            produced more divergences than the diagonal one on hierarchical data with many
            tiny cohorts or few segments, so it is not the default there.

        Returns
        -------
        ConversionResult

        Raises
        ------
        ValueError
            An unknown method or sampler; ``draws`` or ``chains`` not positive integers,
            ``tune`` negative.

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, bulk or tail ESS < 400, or any divergence.
        IdentificationWarning
            An eventual rate the follow-up barely identifies.
        """
        if target_accept is None:
            target_accept = default_target_accept(self.hierarchy_sizes, self.tied_sizes,
                                                  self.zero_sum_terms)
        return fit_model(self, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                         sampler=sampler, progressbar=progressbar, method=method, cores=cores,
                         target_accept=target_accept, sampler_kwargs=sampler_kwargs)

    def sample_prior_predictive(self, draws: int = 500, random_seed=None):
        """Draws of every cohort's parameters from the priors alone (no data).

        See :func:`bayesconv.inference.prior.sample_prior`.

        Returns
        -------
        xarray.Dataset with dims (chain = 1, draw, cohort): ``eventual_rate``, ``lag_loc``
        (data's time unit), ``lag_shape``, ``median_lag`` (data's time unit), ...
        """
        return prior.sample_prior(self, draws=draws, random_seed=random_seed)

    def plot_prior_curves(self, ax=None, **kwargs):
        """Prior draws of the conversion curve c·F(t) in the data's time unit.

        See :func:`bayesconv.plot_prior_curves` (keyword arguments). Returns the Axes.
        """
        return prior.plot_prior_curves(self, ax, **kwargs)


#: Hierarchical terms with fewer levels than this get the higher default ``target_accept``.
FEW_LEVELS = 7


def default_target_accept(hierarchy_sizes: dict, tied_sizes: dict | None = None,
                          zero_sum_terms: tuple = ()) -> float:
    """Default NUTS target acceptance rate for a model's hierarchical terms.

    Parameters
    ----------
    hierarchy_sizes : dict
        ``{term: number of levels}``, as :attr:`ConversionModel.hierarchy_sizes`.
    tied_sizes : dict, optional
        ``{parameter: number of cohorts}`` of the parameters tied by a learned mean with a
        fixed spread, as :attr:`ConversionModel.tied_sizes`.
    zero_sum_terms : tuple, optional
        The formulas' few-level group terms sampled as sum-to-zero effects, as
        :attr:`ConversionModel.zero_sum_terms`.

    Returns
    -------
    float
        0.8 without hierarchical or tied terms (one cohort, complete pooling); 0.95 when a
        hierarchical term has fewer than :data:`FEW_LEVELS` levels; 0.9 otherwise (tied
        lags without pooling included: on the 74 calibration data sets with 2–5 cohorts,
        1 warned fit at 0.9 against 4 at 0.8, for about 10% more sampling time;
        ``validation/sampling.md``). A smaller step changes the cost of a draw, not the
        posterior. With few levels the between-level sd is weakly identified and its
        posterior reaches the funnel near 0 where NUTS diverges: in the calibration study
        (``validation/calibration.md``, 100 data sets at 0.9) 45% of the 3-cohort fits, 6%
        of the 4-cohort and 25% of the 5-cohort fits diverged, against 0–9% with 6 to 8
        cohorts; refitting the failing ones at 0.95 left 3 divergences where 0.9 had 18
        (``validation/sampling.md``). Many-level models (the NYC demo's 7 cohorts) keep 0.9,
        which costs fewer steps per draw. Six levels count as few: of the calibration study's
        23 six-cohort partially pooled data sets, 3 diverged (1–3 draws) at 0.9 and none at
        0.95, for 1.7 times the sampling time (seconds, not minutes, at that size); with 7 and
        8 cohorts 1 of 22 and 1 of 27 warned at 0.9. 0.99 with a sum-to-zero group term: on
        the 5 regression data sets of the calibration study (3–4 segments) that diverged at
        0.95, sum-to-zero effects with the Gamma(2) sd prior gave 13–26 NUTS steps per draw and
        1–7 divergences at 0.95, 24–47 steps and none at 0.99 (70–115 steps and 1–6
        divergences before either; ``validation/sampling.md``).
    """
    if zero_sum_terms:
        return 0.99
    if not hierarchy_sizes:
        return 0.9 if tied_sizes else 0.8
    return 0.95 if min(hierarchy_sizes.values()) < FEW_LEVELS else 0.9


def fit_model(model, *, draws, tune, chains, random_seed, sampler, progressbar, method, cores,
              target_accept, sampler_kwargs=None) -> ConversionResult:
    """Fit a :class:`ConversionModel` with a registered method; see its ``fit``."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {list(METHODS)}")
    if tune is None:
        tune = DEFAULT_TUNE.get((method, resolve_sampler(sampler)), 0) \
            if method == "nuts" else 0
    for name, value in (("draws", draws), ("chains", chains)):
        if not (isinstance(value, int | np.integer) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(tune, int | np.integer) and tune >= 0):
        raise ValueError(f"tune must be a non-negative integer, got {tune!r}")
    options = FitOptions(draws=int(draws), tune=int(tune), chains=int(chains),
                         random_seed=random_seed, sampler=sampler, progressbar=progressbar,
                         cores=cores, target_accept=target_accept,
                         sampler_kwargs=dict(sampler_kwargs or {}))
    out = METHODS[method](model, options)
    result = ConversionResult.from_fit(model, out.tree, sampler=out.sampler, timing=out.timing,
                                       random_seed=random_seed, kind=out.kind)
    if out.kind == "draws":
        # the warnings point at the user's line: warn <- check_convergence <- check <- fit_model
        # <- fit <- user code (check adds one for itself)
        result.check(stacklevel=4, label=model.spec.describe())
        warn_weak_identification(result.identification(), stacklevel=4)
    return result
