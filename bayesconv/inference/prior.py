"""Draws from the priors alone: what the model says before it sees the data (prior predictive
check, Gabry et al. 2019, "Visualization in Bayesian workflow", *JRSS A* 182:389, §3)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from ..data.kaplan_meier import kaplan_meier
from ..plotting import plot_prior_curves as _draw_prior_curves
from ..posterior.result import ConversionResult
from .compile import reproducible_compilation

__all__ = ["plot_prior_curves", "prior_result", "sample_prior"]


def _raw_prior(model, draws: int, random_seed) -> xr.Dataset:
    """``pm.sample_prior_predictive`` on the model's PyMC model: the ``prior`` group."""
    import pymc as pm

    if int(draws) < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    log = logging.getLogger("pymc")
    level = log.level
    log.setLevel(logging.WARNING)  # not the "Sampling: [...]" message
    try:
        with warnings.catch_warnings(), reproducible_compilation():
            # the likelihood is a Potential, which prior sampling ignores: as intended here
            warnings.filterwarnings("ignore", message=".*Potentials.*")
            dt = pm.sample_prior_predictive(draws=int(draws), model=model.pymc_model,
                                            random_seed=random_seed)
    finally:
        log.setLevel(level)
    return dt["prior"].to_dataset() if isinstance(dt, xr.DataTree) else dt.prior


def prior_result(model, draws: int = 500, random_seed=None) -> ConversionResult:
    """A :class:`ConversionResult` whose "posterior" is the prior: curves, summaries of priors.

    Parameters
    ----------
    model : ConversionModel
    draws : int, default 500
    random_seed : int, optional

    Returns
    -------
    ConversionResult with ``sampler == "prior"`` and ``kind == "prior"``; e.g. ``.curves(t)``
    gives prior draws of c·F(t) of shape (1, draws, cohort, t), t in the data's time unit.

    Raises
    ------
    ValueError
        ``draws`` is not a positive integer.
    """
    dt = xr.DataTree.from_dict({"posterior": _raw_prior(model, draws, random_seed)})
    return ConversionResult.from_fit(model, dt, sampler="prior", timing={},
                                     random_seed=random_seed, kind="prior")


def sample_prior(model, draws: int = 500, random_seed=None) -> xr.Dataset:
    """Draws of every cohort's parameters from the priors alone (no data).

    Parameters
    ----------
    model : ConversionModel
    draws : int, default 500
    random_seed : int, optional

    Returns
    -------
    xarray.Dataset with dims (chain = 1, draw, cohort): ``eventual_rate`` (share of units
    that ever convert), ``lag_loc`` (lag location in the data's time unit: the priors are set
    relative to the model's ``time_scale``, the data's median observed conversion time),
    ``lag_shape``, ``median_lag`` (data's time unit) and the unconstrained parameters
    (``logit_rate``, ``log_lag_loc``, ...) and hyperparameters.
    """
    prior = prior_result(model, draws=draws, random_seed=random_seed).posterior
    prior.attrs = {"time_unit": model.data.time_unit, "lag": model.spec.lag,
                   "random_seed": "" if random_seed is None else str(random_seed)}
    return prior


def plot_prior_curves(model, ax=None, *, draws: int = 500, n_lines: int = 50,
                      t_max: float | None = None, ci_prob: float = 0.9, cohort=None,
                      km: bool = True, random_seed=None, n_t: int = 200):
    """What the priors say: prior draws of the share converted by time t, c·F(t).

    Thin lines are single prior draws ("spaghetti"), the band holds the central ``ci_prob``
    of the draws at each t and the thick line is their median. Before the data, every cohort
    has the same prior curve, so one cohort is drawn. The observed Kaplan–Meier curves are
    drawn on top (dashed) to show where the data will pull.

    Parameters
    ----------
    model : ConversionModel
    ax : matplotlib Axes, optional
    draws : int, default 500
        Prior draws for the band and median.
    n_lines : int, default 50
        Prior draws drawn as lines.
    t_max : float, optional
        Right end of the time axis, in the data's time unit (default 1.25 × the longest
        follow-up).
    ci_prob : float, default 0.9
        Probability of the central (equal-tailed) band.
    cohort : label, optional
        Cohort whose prior is drawn (default: the first; all cohorts share the prior).
    km : bool, default True
        Overlay the observed Kaplan–Meier curves.
    random_seed : int, optional
    n_t : int, default 200

    Returns
    -------
    matplotlib.axes.Axes
        x: time since creation in the data's time unit; y: share of units converted.

    Raises
    ------
    ValueError
        ``ci_prob`` outside (0, 1), or an unknown cohort.
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    res = prior_result(model, draws=draws, random_seed=random_seed)
    data = model.data
    g = 0 if cohort is None else res.cohort_code(cohort)
    t_max = float(t_max or 1.25 * data.duration.max())
    t = np.linspace(0.0, t_max, n_t)
    cur = res.curves(t).isel(cohort=g).stack(sample=("chain", "draw")).transpose("sample", "t")
    vals = cur.values
    title = (f"prior predictive conversion curves ({model.spec.lag} lag, cohort "
             f"{data.cohorts[g]}; {min(n_lines, len(vals))} draws)")
    return _draw_prior_curves(t, vals, n_lines=n_lines, ci_prob=ci_prob,
                              km=kaplan_meier(data) if km else None, labels=data.cohorts,
                              unit=data.time_unit, title=title, random_seed=random_seed, ax=ax)
