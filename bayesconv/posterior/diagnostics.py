"""Convergence diagnostics of a posterior (R-hat, ESS, divergences) and highest density
intervals, with warnings that say what to do."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..errors import ConvergenceWarning

__all__ = ["CHECKED_VARS", "ESS_MIN", "RHAT_MAX", "beyond", "check_convergence", "hdi"]

#: Thresholds of the post-sampling checks (Vehtari et al. 2021, "Rank-normalization, folding,
#: and localization: an improved R-hat", Bayesian Analysis 16(2)).
RHAT_MAX = 1.01
ESS_MIN = 400

#: Variables whose convergence is checked and reported.
CHECKED_VARS = ("eventual_rate", "lag_loc", "lag_shape", "lag_q")


def hdi(da: xr.DataArray, prob: float) -> xr.DataArray:
    """Highest density interval over (chain, draw); dim ``ci_bound`` = (lower, upper).

    A single draw (a MAP point) gives that point as both ends.
    """
    import arviz_stats as azs

    if da.sizes["chain"] * da.sizes["draw"] < 3:
        return xr.concat([da.isel(chain=0, draw=0)] * 2, dim="ci_bound").assign_coords(
            ci_bound=["lower", "upper"]).transpose(..., "ci_bound")
    return azs.hdi(da, prob=prob)


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
