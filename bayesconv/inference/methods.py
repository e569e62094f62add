"""Inference methods as a registry: each turns a model into a posterior (draws or a point).

``ConversionModel.fit(method=...)`` looks the method up in :data:`METHODS`:

* ``"nuts"``: the No-U-Turn sampler, through nutpie (default when installed; numba back end)
  or PyMC's own NUTS (``sampler="pymc"``);
* ``"map"``: the posterior mode (one point, no intervals);
* ``"laplace"``: independent draws from a Gaussian at the mode on the unconstrained scale
  (:mod:`bayesconv.inference.laplace`), an approximation for large, well-identified data.

A method is a function ``(model, options) -> MethodOutput``; :func:`register_method` adds one
(e.g. Pathfinder or ADVI) without touching the rest.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import xarray as xr

from .compile import announce, compiled_nutpie, reproducible_compilation
from .laplace import laplace_method

__all__ = ["METHODS", "SAMPLERS", "FitOptions", "MethodOutput", "register_method",
           "resolve_sampler"]


@dataclass(frozen=True)
class FitOptions:
    """The options of one fit (see ``ConversionModel.fit``)."""

    draws: int
    tune: int
    chains: int
    random_seed: int | None
    sampler: str
    progressbar: bool
    cores: int | None
    target_accept: float
    sampler_kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodOutput:
    """What a method returns: the raw tree, who made it, how long it took, and its kind."""

    tree: xr.DataTree
    sampler: str
    timing: dict
    kind: str  # "draws" or "point"


@contextlib.contextmanager
def _quiet_pymc():
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


#: NUTS implementations: nutpie (numba back end), PyMC's own NUTS, and the JAX ones: nutpie's
#: JAX back end, NumPyro and BlackJAX (through ``pymc.sample(nuts_sampler=...)``).
SAMPLERS = ("nutpie", "pymc", "nutpie-jax", "numpyro", "blackjax")
#: The packages each JAX sampler needs, besides jax.
_JAX_NEEDS = {"nutpie-jax": ("nutpie",), "numpyro": ("numpyro",), "blackjax": ("blackjax",)}


def resolve_sampler(sampler: str) -> str:
    """``"auto"`` as nutpie when it is installed, else PyMC; others checked.

    Raises
    ------
    ValueError
        Not one of "auto" and :data:`SAMPLERS`.
    ImportError
        A JAX sampler whose packages are not installed (``pip install 'bayesconv[jax]'``).
    """
    if sampler == "auto":
        return "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not one of "
                         f"{', '.join(repr(s) for s in ('auto', *SAMPLERS))}")
    if sampler in _JAX_NEEDS:
        missing = [m for m in ("jax", *_JAX_NEEDS[sampler]) if importlib.util.find_spec(m)
                   is None]
        if missing:
            raise ImportError(f"sampler={sampler!r} needs {', '.join(missing)}: pip install "
                              "'bayesconv[jax]'")
    return sampler


def _nuts(model, opt: FitOptions) -> MethodOutput:
    import pymc as pm

    cores = opt.cores or min(opt.chains, os.cpu_count() or 1)
    sampler = resolve_sampler(opt.sampler)
    extra = dict(opt.sampler_kwargs)
    timing = {}
    if sampler == "nutpie":
        import nutpie

        # the ridge of a formula with well-pinned group levels needs a low-rank mass matrix
        extra.setdefault("adaptation", model.mass_matrix)
        compiled, timing["compile_s"], timing["compile_source"] = compiled_nutpie(
            model, opt.progressbar)
        timing["compile_cached"] = timing["compile_source"] == "memory"
        t0 = time.perf_counter()
        dt = nutpie.sample(compiled, draws=opt.draws, tune=opt.tune, chains=opt.chains,
                           cores=cores, seed=opt.random_seed, save_warmup=False,
                           progress_bar=opt.progressbar, target_accept=opt.target_accept,
                           **extra)
        timing["sampling_s"] = time.perf_counter() - t0
        dt["posterior"].attrs["nutpie_adaptation"] = str(extra["adaptation"])
    elif sampler == "nutpie-jax":
        import nutpie

        from ..lags.incgamma_op import register_jax

        register_jax()
        extra.setdefault("adaptation", model.mass_matrix)
        announce("compiling the model with JAX (nutpie's JAX back end)...", opt.progressbar)
        t0 = time.perf_counter()
        with _quiet_pymc(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            compiled = nutpie.compile_pymc_model(model.pymc_model, backend="jax",
                                                 gradient_backend="jax")
        timing["compile_s"] = time.perf_counter() - t0
        timing["compile_source"] = "compiled"
        t0 = time.perf_counter()
        dt = nutpie.sample(compiled, draws=opt.draws, tune=opt.tune, chains=opt.chains,
                           cores=cores, seed=opt.random_seed, save_warmup=False,
                           progress_bar=opt.progressbar, target_accept=opt.target_accept,
                           **extra)
        timing["sampling_s"] = time.perf_counter() - t0  # includes JAX's jit on first call
        dt["posterior"].attrs["nutpie_adaptation"] = str(extra["adaptation"])
    elif sampler in ("numpyro", "blackjax"):
        from ..lags.incgamma_op import register_jax

        register_jax()
        announce(f"compiling and sampling with {sampler} (JAX)...", opt.progressbar)
        t0 = time.perf_counter()
        with _quiet_pymc(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # PyMC 6.4 deprecates nuts_sampler_kwargs for nuts={...}; the old keyword is kept
            # while pyproject admits PyMC 6.0 (its nuts= for external samplers is untested)
            warnings.filterwarnings("ignore", "`nuts_sampler_kwargs` is deprecated",
                                    FutureWarning)
            dt = pm.sample(draws=opt.draws, tune=opt.tune, chains=opt.chains,
                           random_seed=opt.random_seed, progressbar=opt.progressbar,
                           nuts_sampler=sampler, target_accept=opt.target_accept,
                           compute_convergence_checks=False, model=model.pymc_model,
                           nuts_sampler_kwargs={"chain_method": "vectorized"} | extra)
        timing["sampling_s"] = time.perf_counter() - t0  # includes JAX compilation
    else:
        announce("compiling and sampling with PyMC's NUTS...", opt.progressbar)
        t0 = time.perf_counter()
        with _quiet_pymc(), warnings.catch_warnings(), reproducible_compilation():
            warnings.simplefilter("ignore", UserWarning)  # "Potentials are ignored" notes
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a threaded process
            dt = pm.sample(draws=opt.draws, tune=opt.tune, chains=opt.chains, cores=cores,
                           random_seed=opt.random_seed, progressbar=opt.progressbar,
                           nuts_sampler="pymc", target_accept=opt.target_accept,
                           compute_convergence_checks=False, model=model.pymc_model, **extra)
        timing["sampling_s"] = time.perf_counter() - t0  # includes PyTensor compilation
    dt["posterior"].attrs["target_accept"] = float(opt.target_accept)
    dt["posterior"].attrs["tune"] = int(opt.tune)
    # the hierarchical terms with a non-centred level, for the divergence remedies
    dt["posterior"].attrs["noncentered"] = ",".join(
        sorted(k for k, w in model.centring().items() if (w == 0).any()))
    return MethodOutput(dt, sampler, timing, "draws")


def _map(model, opt: FitOptions) -> MethodOutput:
    import pymc as pm

    t0 = time.perf_counter()
    with _quiet_pymc(), reproducible_compilation():
        dt = pm.find_MAP(model=model.pymc_model, progressbar=opt.progressbar,
                         random_seed=opt.random_seed, return_inferencedata=True, jitter=False)
    return MethodOutput(dt, "map", {"sampling_s": time.perf_counter() - t0}, "point")


#: Inference methods by name: ``(model, FitOptions) -> MethodOutput``.
METHODS: dict[str, Callable] = {"nuts": _nuts, "map": _map, "laplace": laplace_method}

#: Default tuning steps per method and sampler (``tune=None``).
DEFAULT_TUNE = {("nuts", "nutpie"): 500, ("nuts", "pymc"): 1000, ("nuts", "nutpie-jax"): 500,
                ("nuts", "numpyro"): 1000, ("nuts", "blackjax"): 1000}


def register_method(name: str, method: Callable) -> None:
    """Add an inference method: ``method(model, FitOptions) -> MethodOutput``."""
    METHODS[name] = method
