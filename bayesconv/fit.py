"""Samplers (nutpie, PyMC NUTS, MAP), convergence checks, and the compiled-model cache."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import time
import warnings

import numpy as np
import pymc as pm

from .backend import reproducible_compilation
from .errors import ConvergenceWarning

__all__ = ["ConvergenceWarning", "fit_model", "check_convergence", "clear_compile_cache"]

#: Thresholds of the post-sampling checks (Vehtari et al. 2021, "Rank-normalization, folding,
#: and localization: an improved R-hat", Bayesian Analysis 16(2)).
RHAT_MAX = 1.01
ESS_MIN = 400

#: Variables whose convergence is checked and reported.
CHECKED_VARS = ("eventual_rate", "lag_loc", "lag_shape", "lag_q")

_COMPILED: dict = {}

_log = logging.getLogger("bayesconv")

#: Typical seconds to compile a model of each lag family with nutpie, measured on 2 cores
#: with PyTensor's on-disk cache of its building blocks already filled (the first compile
#: after an install takes about twice as long); quoted by the "compiling" message.
TYPICAL_COMPILE_S = {"exponential": 10, "weibull": 10, "gamma": 11, "lognormal": 10,
                     "gengamma": 22}


def clear_compile_cache() -> None:
    """Forget every cached compiled nutpie model."""
    _COMPILED.clear()


def _structure_key(model) -> str:
    """What a compiled model depends on besides its data values."""
    from .likelihood import padded_arrays

    arrays = padded_arrays(model.family, model.rows)
    spec = model.spec
    return json.dumps({
        "lag": spec.lag, "pooling": spec.pooling, "priors": spec.priors,
        "par": {k: list(v) for k, v in spec.parametrization.items()}, "cohorts": len(model.data.cohorts),
        "shapes": {k: list(np.shape(v)) for k, v in sorted(arrays.items())},
    }, sort_keys=True)


def _data_values(model) -> dict:
    from .likelihood import padded_arrays

    vals = {f"lik_{k}": v for k, v in padded_arrays(model.family, model.rows).items()}
    vals["time_scale"] = np.float64(model.spec.time_scale)
    return vals


def _announce(message: str, progressbar: bool) -> None:
    """Say what a silent step is doing: to the ``bayesconv`` logger, and on screen with a
    progress bar (where the user is watching)."""
    _log.info(message)
    if progressbar:
        print(f"bayesconv: {message}", file=sys.stderr, flush=True)


def _compiled_nutpie(model, progressbar: bool = False):
    """Compile with nutpie (numba backend), or reuse a compiled model of the same structure."""
    import nutpie

    key = _structure_key(model)
    t0 = time.perf_counter()
    hit = key in _COMPILED
    if hit:
        compiled = _COMPILED[key].with_data(**_data_values(model))
    else:
        typical = TYPICAL_COMPILE_S.get(model.spec.lag)
        _announce(f"compiling the model ({model.spec.lag} lag, {model.spec.pooling} pooling; "
                  "first fit of this structure in this process"
                  + (f", typically ~{typical} s" if typical else "") + ")...", progressbar)
        with reproducible_compilation():
            compiled = nutpie.compile_pymc_model(model.pymc_model, backend="numba")
        _COMPILED[key] = compiled
    return compiled, time.perf_counter() - t0, hit


@contextlib.contextmanager
def _quiet_pymc():
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _resolve_sampler(sampler: str) -> str:
    if sampler == "auto":
        return "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler={sampler!r} is not one of 'auto', 'nutpie', 'pymc'")
    return sampler


def _sample(model, *, draws, tune, chains, random_seed, sampler, progressbar, cores,
            target_accept, sampler_kwargs=None):
    cores = cores or min(chains, os.cpu_count() or 1)
    sampler = _resolve_sampler(sampler)
    extra = dict(sampler_kwargs or {})
    timing = {}
    if sampler == "nutpie":
        import nutpie

        compiled, timing["compile_s"], timing["compile_cached"] = _compiled_nutpie(
            model, progressbar)
        t0 = time.perf_counter()
        dt = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores,
                           seed=random_seed, save_warmup=False, progress_bar=progressbar,
                           target_accept=target_accept, **extra)
        timing["sampling_s"] = time.perf_counter() - t0
    elif sampler == "pymc":
        _announce("compiling and sampling with PyMC's NUTS...", progressbar)
        t0 = time.perf_counter()
        with _quiet_pymc(), warnings.catch_warnings(), reproducible_compilation():
            warnings.simplefilter("ignore", UserWarning)  # "Potentials are ignored" notes
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a threaded process
            dt = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                           random_seed=random_seed, progressbar=progressbar,
                           nuts_sampler="pymc", target_accept=target_accept,
                           compute_convergence_checks=False, model=model.pymc_model,
                           **extra)
        timing["sampling_s"] = time.perf_counter() - t0  # includes PyTensor compilation
    return dt, sampler, timing


def _map(model, *, random_seed, progressbar):
    t0 = time.perf_counter()
    with _quiet_pymc(), reproducible_compilation():
        dt = pm.find_MAP(model=model.pymc_model, progressbar=progressbar,
                         random_seed=random_seed, return_inferencedata=True, jitter=False)
    return dt, {"sampling_s": time.perf_counter() - t0}


def check_convergence(idata, *, var_names=CHECKED_VARS, warn: bool = True,
                      stacklevel: int = 2, label: str | None = None) -> dict:
    """R-hat, bulk/tail ESS and divergences of a posterior, with plain-words warnings.

    Parameters
    ----------
    idata : xarray.DataTree
        With ``posterior`` and (optionally) ``sample_stats`` groups.
    var_names : sequence of str
    warn : bool, default True
        Emit a :class:`ConvergenceWarning` per failed check.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`, so the warning points at the caller's line.
    label : str, optional
        Prefix naming the fit in the warnings (``fit`` passes e.g. "gamma lag, partial
        pooling"), so warnings from several fits can be told apart.

    Returns
    -------
    dict
        ``r_hat``, ``ess_bulk``, ``ess_tail`` (xarray Datasets), ``max_r_hat``,
        ``min_ess_bulk``, ``min_ess_tail``, ``divergences`` (int) and ``problems`` (list of str).
    """
    import arviz_stats as azs

    post = idata["posterior"].to_dataset()
    names = [v for v in var_names if v in post]
    sub = post[names]
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    out: dict = {"divergences": 0, "problems": []}
    if n_draws < 4:
        out.update(max_r_hat=np.nan, min_ess_bulk=np.nan, min_ess_tail=np.nan)
        return out
    rhat = azs.rhat(sub) if n_chains > 1 else None
    ess_b = azs.ess(sub, method="bulk")
    ess_t = azs.ess(sub, method="tail")
    out.update(r_hat=rhat, ess_bulk=ess_b, ess_tail=ess_t)
    out["max_r_hat"] = float(rhat.to_array().max()) if rhat is not None else np.nan
    out["min_ess_bulk"] = float(ess_b.to_array().min())
    out["min_ess_tail"] = float(ess_t.to_array().min())
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        out["divergences"] = int(idata["sample_stats"]["diverging"].sum())
    findings = []  # (kind, problem, remedy)
    if out["max_r_hat"] > RHAT_MAX:
        findings.append(("r_hat", f"R-hat is {beyond(out['max_r_hat'], RHAT_MAX)} (> {RHAT_MAX}): "
                         "the chains "
                         "disagree, so they have not converged",
                         "sample longer (more tune/draws) or check the model and priors"))
    low = min(out["min_ess_bulk"], out["min_ess_tail"])
    if low < ESS_MIN:
        findings.append(("ess", f"the effective sample size is only {low:.0f} (< {ESS_MIN}): "
                         "interval ends are noisy", "run more draws"))
    if out["divergences"]:
        total = n_chains * n_draws
        findings.append(("divergences", f"{out['divergences']} of {total} draws ended in a "
                         "divergence: the sampler could not explore part of the posterior, "
                         "which may be biased",
                         "raise target_accept (e.g. 0.95) or use stronger priors"))
    out["problems"] = [f"{p}; {r}" for _, p, r in findings]
    if warn:
        for kind, p, r in findings:
            warnings.warn(ConvergenceWarning(f"{label}: {p}" if label else p, r, kind),
                          stacklevel=stacklevel)
    return out


def beyond(value: float, bound: float, *, percent: bool = False) -> str:
    """``value`` with enough digits that the text is on the same side of ``bound`` as it.

    0.746 against a bound of 0.75 reads "74.6%", never a rounded "75%" beside "(< 75%)";
    a width of 0.3004 against 0.3 reads "0.3004".
    """
    for digits in range(0 if percent else 2, 7):
        text = f"{value:.{digits}%}" if percent else f"{value:.{digits}f}"
        shown = float(text.rstrip("%")) / (100 if percent else 1)
        if (shown < bound) == (value < bound) and shown != bound:
            return text
    return f"{value:.8%}" if percent else repr(value)


def _warn_weak_identification(result) -> None:
    from .results import WEAK_FOLLOWUP_SHARE, WEAK_HDI_WIDTH, IdentificationWarning

    ident = result.identification()
    weak = ident[ident["weakly_identified"]]
    if len(weak):
        parts = []
        for label, row in weak.iterrows():
            why = []
            if row.followup_share < WEAK_FOLLOWUP_SHARE:
                why.append(f"follow-up reaches only "
                           f"{beyond(row.followup_share, WEAK_FOLLOWUP_SHARE, percent=True)} of "
                           f"the lag distribution (< {WEAK_FOLLOWUP_SHARE:.0%})")
            if row.rate_hdi_width > WEAK_HDI_WIDTH:
                why.append(f"its 94% HDI is {beyond(row.rate_hdi_width, WEAK_HDI_WIDTH)} wide "
                           f"(> {WEAK_HDI_WIDTH})")
            parts.append(f"{label}: {' and '.join(why)}")
        warnings.warn(IdentificationWarning(
            f"the eventual rate is weakly identified for {len(weak)} cohort(s): "
            f"{'; '.join(parts)}. The data barely constrain it, so it is mostly extrapolation "
            "and prior", "prefer a readout by a horizon within the follow-up "
            "(compare(..., horizon=...))", "weak_identification"), stacklevel=4)


def fit_model(model, *, draws, tune, chains, random_seed, sampler, progressbar, method, cores,
              target_accept, sampler_kwargs=None):
    """Fit a :class:`~bayesconv.model.ConversionModel`; see its ``fit`` method."""
    from .results import ConversionResult

    if tune is None and method == "nuts":
        tune = 500 if _resolve_sampler(sampler) == "nutpie" else 1000
    elif tune is None:
        tune = 0

    for name, value in (("draws", draws), ("chains", chains)):
        if not (isinstance(value, int | np.integer) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(tune, int | np.integer) and tune >= 0):
        raise ValueError(f"tune must be a non-negative integer, got {tune!r}")
    if method == "map":
        dt, timing = _map(model, random_seed=random_seed, progressbar=progressbar)
        used = "map"
    elif method == "nuts":
        dt, used, timing = _sample(model, draws=draws, tune=tune, chains=chains,
                                   random_seed=random_seed, sampler=sampler,
                                   progressbar=progressbar, cores=cores,
                                   target_accept=target_accept,
                                   sampler_kwargs=sampler_kwargs)
    else:
        raise ValueError(f"method={method!r} is not one of 'nuts', 'map'")
    result = ConversionResult._from_fit(model, dt, sampler=used, timing=timing,
                                        random_seed=random_seed)
    if method == "nuts":
        # stacklevel 4: check_convergence <- fit_model <- ConversionModel.fit <- user code
        result._diagnostics = check_convergence(
            result._idata, stacklevel=4,
            label=f"{model.spec.lag} lag, {model.spec.pooling} pooling")
        _warn_weak_identification(result)
    return result
