"""Convergence diagnostics of a posterior (R-hat, ESS, divergences) and highest density
intervals, with warnings that say what to do."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..errors import ConvergenceWarning

__all__ = ["CHECKED_VARS", "ESS_MIN", "RHAT_MAX", "beyond", "check_convergence",
           "divergence_pattern", "hdi", "ridge_remedy"]

#: Thresholds of the post-sampling checks (Vehtari et al. 2021, "Rank-normalization, folding,
#: and localization: an improved R-hat", Bayesian Analysis 16(2)).
RHAT_MAX = 1.01
ESS_MIN = 400

#: Draws per chain of a run of the default length: a shorter run that fails R-hat or ESS is
#: first told to run that long, before any remedy for the posterior's geometry.
FULL_RUN = 1000

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
    findings = []  # (kind, problem, remedy, divergence pattern)
    if out["max_r_hat"] > RHAT_MAX:
        worst = _extremes(rhat, largest=True, keep=lambda v: v > RHAT_MAX)
        ridge = ridge_remedy(worst, post) if n_draws >= FULL_RUN else ""
        findings.append(("r_hat", f"R-hat is {beyond(out['max_r_hat'], RHAT_MAX)} (> {RHAT_MAX}) "
                         f"for {_listed(worst, 'R-hat')}: the chains disagree, so they have not "
                         "converged", ridge or _length_remedy(n_draws), "ridge" if ridge else ""))
    low = min(out["min_ess_bulk"], out["min_ess_tail"])
    if low < ESS_MIN:
        ess_min = xr.apply_ufunc(np.minimum, ess_b, ess_t)
        worst = _extremes(ess_min, largest=False, keep=lambda v: v < ESS_MIN)
        ridge = ridge_remedy(worst, post) if n_draws >= FULL_RUN else ""
        findings.append(("ess", f"the effective sample size is only {low:.0f} (< {ESS_MIN}) for "
                         f"{_listed(worst, 'ESS', digits=0)}: interval ends are noisy",
                         ridge or _ess_remedy(n_draws, low), "ridge" if ridge else ""))
    accept = post.attrs.get("target_accept")   # recorded by the fit
    if out["divergences"]:
        total = n_chains * n_draws
        where, remedy, pattern = divergence_pattern(post, idata["sample_stats"]["diverging"],
                                                    target_accept=accept)
        findings.append(("divergences", f"{out['divergences']} of {total} draws ended in a "
                         f"divergence{where}: the sampler could not explore part of the "
                         "posterior, which may be biased", remedy, pattern))
    out["problems"] = [f"{p}; {r}" for _, p, r, _ in findings]
    if warn:
        nxt = next_target_accept(accept)
        for kind, p, r, pattern in findings:
            warnings.warn(ConvergenceWarning(f"{label}: {p}" if label else p, r, kind, pattern,
                                             next_accept=nxt if kind == "divergences" else None),
                          stacklevel=stacklevel)
    return out


def _elements(da: xr.DataArray):
    """(label, values) of every element of a variable: ``lag_shape[B]``, ``sigma_logit_rate``."""
    other = [d for d in da.dims if d not in ("chain", "draw")]
    if not other:
        yield da.name, da
        return
    stacked = da.stack(_element=other)
    for i in range(stacked.sizes["_element"]):
        key = stacked["_element"].values[i]
        key = key if isinstance(key, tuple) else (key,)
        yield f"{da.name}[{', '.join(str(k) for k in key)}]", stacked.isel(_element=i)


def _extremes(ds: xr.Dataset, *, largest: bool, keep, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` elements of ``ds`` (a Dataset of per-element statistics) with the largest or
    smallest values among those ``keep`` accepts, as (label, value)."""
    found = [(label, float(v)) for name in ds.data_vars for label, v in _elements(ds[name])
             if np.isfinite(float(v)) and keep(float(v))]
    found.sort(key=lambda lv: -lv[1] if largest else lv[1])
    return found[:n]


def _listed(items: list[tuple[str, float]], what: str, digits: int = 3) -> str:
    """``"lag_shape[B] (R-hat 1.04), eventual_rate[B] (R-hat 1.02)"``."""
    return ", ".join(f"{label} ({what} {value:.{digits}f})" for label, value in items)


def _length_remedy(n_draws: int) -> str:
    """What to do about chains that disagree: a run shorter than the defaults first gets the
    defaults; a run of the default length or longer is unlikely to be cured by length alone."""
    if n_draws < FULL_RUN:
        return ("run at least the default length (draws=1000, tune=500); if the chains still "
                "disagree, see any divergence warning")
    return ("longer runs rarely fix chains that disagree after 1,000 draws: see any divergence "
            "warning, or simplify the model (fewer group terms, pooling='none', "
            "lag='exponential')")


def _ess_remedy(n_draws: int, ess: float) -> str:
    """More draws per chain, as many as bring the smallest ESS to :data:`ESS_MIN` (ESS grows
    about linearly with draws; rounded up to a hundred, at least twice today's); an ESS that
    would need more than four times the draws means chains that mix badly instead."""
    need = n_draws * ESS_MIN / max(ess, 1.0)
    if need > 4 * n_draws:
        return (f"the chains mix badly (ESS {ess:.0f} from {n_draws} draws per chain), so "
                "more draws alone are not enough: " + _length_remedy(n_draws))
    return f"run more draws (e.g. draws={int(max(2 * n_draws, -(-need // 100) * 100))})"


#: Variables looked at when localising divergences: the free parameters and the per-cohort
#: quantities; per-cell copies and the sampled forms of hierarchical effects (``<effects>_raw``:
#: the effects where centred, standardised offsets, N(0, 1) a priori, where not) are skipped.
_SKIP_SUFFIXES = ("_cell", "_raw")
#: Largest number of elements of one variable that is localised.
_MAX_ELEMENTS = 64


def ridge_remedy(worst: list[tuple[str, float]], post: xr.Dataset) -> str:
    """The remedy for the ridge between a cohort's eventual rate and its lag location, when
    both of one cohort are among ``worst`` (the elements a check flagged, as (label, value)),
    else "".

    A cohort whose few conversions (or short follow-up) do not pin its lag can trade a longer
    lag for a higher eventual rate at almost the same likelihood: its c·F(t) over the observed
    ages is pinned, c and the lag location are not, and the chains move slowly along the
    curved ridge between them (``validation/sampling.md``). What helps is to tie its lag
    closer to the other cohorts' (the fixed spread of the tied lag locations, or the
    between-cohort sd's prior under partial pooling), or to read it by a horizon the data
    cover; more draws only follow the same ridge.
    """
    labels = {label for label, _ in worst}
    cohorts = [label[len("eventual_rate"):] for label, _ in worst   # worst first
               if label.startswith("eventual_rate[")
               and "lag_loc" + label[len("eventual_rate"):] in labels]
    if not cohorts:
        return ""
    key = ("log_lag_loc_spread': 0.5" if "mu_log_lag_loc" in post and "sigma_log_lag_loc"
           not in post else "log_lag_loc_sd': 0.5")
    return (f"eventual_rate{cohorts[0]} and lag_loc{cohorts[0]} move together: the ridge of a "
            "cohort whose conversions pin its conversion by the ages observed (c·F(t)) but not "
            "its lag, so a longer lag with a higher eventual rate fits almost as well; tie the "
            f"cohorts' lags closer (priors={{'{key}}}) or read this cohort by a horizon inside "
            "its follow-up (compare(..., horizon=...)), which the data pin; more draws only "
            "follow the same ridge")


def _sd_term(name: str) -> tuple[str, str] | None:
    """(prior key, name of the term's effects) of a between-group or random-walk sd variable
    (the names :mod:`bayesconv.model.builder` gives them), None for other variables:
    ``sigma_logit_rate`` → (``logit_rate_sd``, ``logit_rate``), ``logit_rate_sd_1_by_platform``
    → (``logit_rate_sd``, ``logit_rate_1_by_platform``), ``log_lag_loc_rw_sd_week`` →
    (``log_lag_loc_rw_sd``, ``log_lag_loc_rw_week_step``)."""
    for raw in ("logit_rate", "log_lag_loc", "log_lag_shape", "lag_q"):
        if name == f"sigma_{raw}":
            return f"{raw}_sd", raw
        if name.startswith(f"{raw}_rw_sd_"):
            return f"{raw}_rw_sd", f"{raw}_rw_{name[len(raw) + 7:]}_step"
        if name.startswith(f"{raw}_sd_"):
            return f"{raw}_sd", f"{raw}_{name[len(raw) + 4:]}"
    return None


def next_target_accept(current: float | None) -> float | None:
    """The ``target_accept`` to try after divergences at ``current`` (None: not recorded):
    0.95, then 0.99; None when it is 0.99 or more already (a smaller step will not help)."""
    if current is None or not np.isfinite(current) or current < 0.95:
        return 0.95
    return 0.99 if current < 0.99 else None


def divergence_pattern(post: xr.Dataset, diverging: xr.DataArray, *,
                       target_accept: float | None = None) -> tuple[str, str, str]:
    """Where divergent draws sit, and the remedy that usually works there.

    Each element of each parameter is ranked over all draws; under no pattern the mean rank
    (0 to 1) of the divergent draws is about 0.5 ± 0.29/√n_divergent. Elements whose divergent
    draws sit at one end (|mean rank − 0.5| above 0.2 and above 3 standard errors) are named,
    the most extreme first. Divergences at small values of a between-group sd are the funnel
    of hierarchical models (Betancourt & Girolami 2015, "Hamiltonian Monte Carlo for
    hierarchical models"); at an end of a cohort's lag shape, a shape the cohort's few
    conversions do not pin; otherwise the geometry is not localised.

    Parameters
    ----------
    post : xarray.Dataset
        Posterior draws, dims (chain, draw, ...); ``post.attrs["noncentered"]`` (written by
        the fit) lists, comma-separated, the hierarchical terms with a non-centred level.
    diverging : xarray.DataArray of bool, dims (chain, draw)
    target_accept : float, optional
        The fit's NUTS target acceptance rate: the remedies suggest the next one
        (:func:`next_target_accept`), not a value the fit already used.

    Returns
    -------
    (where, remedy, pattern) : tuple of str
        ``where`` is empty or starts with ", mostly at ..."; ``remedy`` names what to change;
        ``pattern`` is ``"funnel"``, ``"lag_shape"``, ``"ridge"`` (a cohort's eventual rate
        and lag location both at their large values: :func:`ridge_remedy`) or ``""`` (not
        localised).
    """
    from scipy.stats import rankdata

    div = np.asarray(diverging, dtype=bool).ravel()
    n_div = int(div.sum())
    nxt = next_target_accept(target_accept)
    if nxt:
        used = f"; this fit used {target_accept:g}" if target_accept else ""
        generic = (f"raise target_accept (e.g. {nxt:g}{used}); if divergences remain, use "
                   "tighter priors (priors=...) or a simpler model")
    else:
        generic = (f"target_accept is {target_accept:g} already: use tighter priors "
                   "(priors=...) or a simpler model")
    if n_div == 0 or n_div == div.size:
        return "", generic, ""
    bound = max(0.2, 3 * 0.289 / np.sqrt(n_div))
    found = []  # (score, label, name, side)
    for name in post.data_vars:
        da = post[name]
        if name.endswith(_SKIP_SUFFIXES) or da.size // div.size > _MAX_ELEMENTS \
                or da.size % div.size or not np.issubdtype(da.dtype, np.floating):
            continue
        for label, values in _elements(da):
            v = np.asarray(values.transpose("chain", "draw")).ravel()
            if np.ptp(v) == 0:
                continue
            rank = (rankdata(v) - 0.5) / v.size
            score = float(rank[div].mean()) - 0.5
            if abs(score) > bound:
                found.append((abs(score), label, name, "small" if score < 0 else "large"))
    if not found:
        return "", generic, ""
    # a monotone transform of a parameter (logit_rate and eventual_rate) ranks its draws alike:
    # name one of them, the reported (natural-scale) one
    found.sort(key=lambda f: (-f[0], f[2] not in CHECKED_VARS, f[1]))
    seen, distinct = set(), []
    for score, label, name, side in found:
        key = (round(score, 12), label[label.find("["):] if "[" in label else "")
        if key not in seen:
            seen.add(key)
            distinct.append((score, label, name, side))
    where = ", mostly at " + ", ".join(f"{side} {label}" for _, label, _, side in distinct[:3])
    _, label, name, side = distinct[0]
    term = _sd_term(name)
    if term is not None and side == "small":
        key, effects = term
        noncentred = effects in post.attrs.get("noncentered", "").split(",")
        switch = ("parametrization='centered' (this term is non-centred)" if noncentred else
                  "parametrization='noncentered' (this term is centred)")
        return where, (f"{label} is a between-group (or random-walk) sd and the divergent draws "
                       "sit at its small values: the funnel of a hierarchical term with few "
                       f"groups or little data per group; try {switch}, a tighter prior on it "
                       f"(priors={{'{key}': ...}}, a scale below the current one), "
                       "or fixed effects for so few groups (pooling='none', or the factor as a "
                       "fixed term of the formula)"), "funnel"
    if name.endswith("lag_shape"):
        prior = ("priors={'log_lag_shape_spread': 0.3}" if "mu_log_lag_shape" in post else
                 "priors={'log_lag_shape': {'mu': 0.0, 'sigma': 0.5}}")
        return where, (f"{label}: the divergent draws sit at its {side} values, a lag shape "
                       "that the cohort's conversions barely pin; try lag='exponential' "
                       f"(no shape), a tighter shape prior ({prior})"
                       + (f", or target_accept={nxt:g}" if nxt else "")), "lag_shape"
    ridge = ridge_remedy([(lab, score) for score, lab, _, sd in distinct if sd == "large"],
                         post)
    if ridge:
        return where, ridge + (f", or raise target_accept (e.g. {nxt:g})" if nxt else ""), \
            "ridge"
    return where, generic, ""


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
