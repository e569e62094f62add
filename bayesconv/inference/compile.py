"""How bayesconv compiles PyTensor graphs: reproducibly, the same in every process, once per
model structure in a process, and from the persistent on-disk cache of an earlier process
(:mod:`bayesconv.inference.disk_cache`) when there is one.

PyTensor's numba back end compiles with LLVM fast-math flags by default
(``pytensor.config.numba__fastmath``: reassociation, contraction to fused multiply-add,
approximate functions, reciprocals). With them, the machine code of a graph depends on which
of its pieces LLVM can inline and optimise together, and that differs between a graph
compiled from scratch and one whose pieces come from PyTensor's on-disk numba cache
(``<base_compiledir>/numba``). The same model, data and seed then gave different draws in
the first process after an install than in every later process (measured on the NYC demo and
on a partially pooled fit: identical within each kind of process, different between them).

Without fast-math every floating point operation is IEEE and unfused, so fresh and cached
code compute bit-identical values. A second source was numba's flag inheritance: a jitted
callee that does not set ``fastmath`` itself is compiled with its caller's setting and that
compile is then reused, in memory and from numba's on-disk cache, by every later caller; the
incomplete-gamma kernels (:mod:`bayesconv.lags.incgamma`) therefore set ``fastmath=False``. The cost, measured on the NYC demo (4 chains × 1,000
draws, 2 cores), is within run-to-run noise of the sampling time (15.0-17.1 s without,
15.0-15.6 s with fast-math). Every PyTensor compilation bayesconv triggers (nutpie, PyMC's
NUTS, MAP, prior predictive draws) runs inside :func:`reproducible_compilation`; the user's
own global setting is left as it is for their other graphs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
import threading
import time
import warnings

from .disk_cache import ENV_VAR, cache_hit, clear_disk_cache, persistent_compilation

__all__ = ["announce", "cached", "clear_compile_cache", "compiled_nutpie",
           "reproducible_compilation", "structure_key"]


@contextlib.contextmanager
def reproducible_compilation():
    """Compile PyTensor graphs without fast-math inside this block.

    Examples
    --------
    >>> with reproducible_compilation():                      # doctest: +SKIP
    ...     compiled = nutpie.compile_pymc_model(model, backend="numba")
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield


# ----------------------------------------------------------------------------- compile cache
_COMPILED: dict = {}

_log = logging.getLogger("bayesconv")

#: Typical seconds to compile a model of each lag family with nutpie, measured on 2 cores
#: with PyTensor's on-disk cache of its building blocks already filled (the first compile
#: after an install takes about twice as long); quoted by the "compiling" message.
TYPICAL_COMPILE_S = {"exponential": 10, "weibull": 10, "gamma": 11, "lognormal": 10,
                     "gengamma": 22}


def clear_compile_cache(disk: bool = True) -> None:
    """Forget every compiled model kept in this process (NUTS and Laplace) and, with
    ``disk=True``, delete the on-disk compile cache too.

    Parameters
    ----------
    disk : bool, default True
        Also delete the persistent cache shared by every process
        (:mod:`bayesconv.inference.disk_cache`: ``platformdirs.user_cache_dir("bayesconv")``
        or ``$BAYESCONV_COMPILE_CACHE``), all versions of it.
    """
    _COMPILED.clear()
    if disk:
        clear_disk_cache()


def cached(key, build):
    """The compiled object stored under ``key`` in this process, built by ``build()`` on
    first use (the cache :func:`clear_compile_cache` empties)."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def structure_key(model) -> str:
    """What a compiled model depends on besides its data values: the spec (but its time
    scale, zero width and per-level parametrization, which are data), the number of cohorts,
    which data arrays the graph reads and their ranks (not their lengths: data sets with other
    row counts share the compiled model), whether the eventual rates are sheared along the
    lags (``model.shears``), and the constants of the graph (cells' cohorts, design
    matrices)."""
    spec = {k: v for k, v in model.spec.to_dict().items()
            if k not in ("time_scale", "zero_width", "parametrization")}
    return json.dumps({"spec": spec, "cohorts": model.data.n_cohorts,
                       "arrays": model.arrays.ranks(), "shears": model.shears,
                       "constants": model.constants_digest()}, sort_keys=True)


def announce(message: str, progressbar: bool) -> None:
    """Say what a silent step is doing: to the ``bayesconv`` logger, and on screen with a
    progress bar (where the user is watching)."""
    _log.info(message)
    if progressbar:
        print(f"bayesconv: {message}", file=sys.stderr, flush=True)


def _initial_point_func(pymc_model):
    """The starting points of ``pymc_model`` as nutpie draws them (each chain from the support
    points of its free variables plus PyMC's jitter, on the unconstrained scale), flattened in
    the order of its free variables.

    A compiled model reused with ``with_data`` reads the new data in its log density, but its
    own starting-point function still evaluates the graph it was compiled from, on that
    graph's data: the old centring weights, hence other starting points and other draws for
    the same seed than a fresh compile gives (found when the fingerprint fit came out
    different after an earlier test had compiled the same structure). Building it from the
    model being fitted costs about 0.2 s.
    """
    import numpy as np
    from pymc.initial_point import make_initial_point_fn

    fn = make_initial_point_fn(model=pymc_model, jitter_rvs=set(pymc_model.free_RVs),
                               default_strategy="support_point", return_transformed=True)
    names = [pymc_model.rvs_to_values[rv].name for rv in pymc_model.free_RVs]
    lock = threading.Lock()   # nutpie's chains start in threads; a PyTensor function is not

    def flat(seed=None):
        with lock:
            point = fn(seed)
        return np.concatenate([np.asarray(point[n], dtype="float64").ravel() for n in names])

    return flat


def _placeholders(model, values: dict) -> dict:
    """Stand-ins for ``model``'s data while it compiles into the on-disk cache: zeros of
    length 1 for the likelihood's row arrays (their lengths are data, not structure), zeros of
    the real shape for the rest (the centring weights, whose length is the number of levels
    and sets the shape of the group-level parameters; the time scale). ``values`` is
    ``model.data_values()``."""
    import numpy as np

    rows = set(model.arrays.named())
    return {name: np.zeros((1,) * np.ndim(v) if name in rows else np.shape(v),
                           dtype=np.asarray(v).dtype)
            for name, v in values.items()}


def compiled_nutpie(model, progressbar: bool = False):
    """A nutpie model of ``model`` (numba backend): compiled, loaded from the on-disk compile
    cache, or reused from this process.

    A reused compile gets ``model``'s data (``with_data``) and starting points drawn from
    ``model`` itself, so it samples exactly as a fresh compile of ``model`` would for the
    same seed.

    The first compile of a structure in a process goes through the persistent on-disk cache
    (:func:`~bayesconv.inference.disk_cache.persistent_compilation`): compiled on placeholder
    data, its machine code loaded by numba if an earlier process compiled the same
    structure, then given ``model``'s data.

    Returns
    -------
    (compiled model, seconds, where it came from)
        The last is ``"memory"`` (reused in this process), ``"disk"`` (numba's on-disk cache
        served both of nutpie's compiled functions) or ``"compiled"``.
    """
    import nutpie

    key = structure_key(model)
    t0 = time.perf_counter()
    values = model.data_values()
    if key in _COMPILED:
        source = "memory"
    else:
        typical = TYPICAL_COMPILE_S.get(model.spec.lag)
        announce(f"compiling the model ({model.spec.describe()}; "
                 "first fit of this structure in this process"
                 + (f", typically ~{typical} s unless an earlier process compiled it"
                    if typical else "") + ")...", progressbar)
        try:
            with reproducible_compilation(), \
                    persistent_compilation(model.pymc_model,
                                           _placeholders(model, values)) as directory:
                compiled = nutpie.compile_pymc_model(model.pymc_model, backend="numba",
                                                     cache=directory is not None)
        except OSError as err:   # a read-only or vanished cache directory
            warnings.warn(f"the compile cache could not be used ({err}); compiling without "
                          f"it. Set {ENV_VAR} to a writable directory, or to off.",
                          RuntimeWarning, stacklevel=2)
            directory = None
            with reproducible_compilation():
                compiled = nutpie.compile_pymc_model(model.pymc_model, backend="numba")
        source = "disk" if cache_hit(compiled) else "compiled"
        _log.info("compiled model %s (%s)", "loaded from the on-disk cache"
                  if source == "disk" else "compiled", directory or "on-disk cache off")
        _COMPILED[key] = compiled
    compiled = dataclasses.replace(_COMPILED[key].with_data(**values),
                                   initial_point_func=_initial_point_func(model.pymc_model))
    return compiled, time.perf_counter() - t0, source
