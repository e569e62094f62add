"""The design of the model's parameters over the data's cohorts (cells).

Today every parameter is indexed by one factor, the cohort: with ``pooling="partial"`` a
group-specific (random) effect per cohort with a between-cohort sd, with ``"none"`` a fixed
value per cohort under the population prior, with ``"complete"`` one value for all. Whether
each cohort's effect is sampled centred or non-centred is chosen from the data here
(:func:`choose_parametrization`).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from ..data.container import ConversionData
from ..data.kaplan_meier import km_arrays
from ..data.stats import weighted_median
from .likelihood import default_zero_width

__all__ = ["GROUPS", "LOW_RANK_RIDGE", "MIN_PARTIAL_COHORTS", "POOLING", "choose_mass_matrix",
           "choose_parametrization", "choose_term_centring", "choose_walk_centring",
           "resolve_pooling", "ridge_ratio", "shear_times", "sums_to_zero"]

POOLING = ("auto", "partial", "none", "complete")

#: The parameter groups that are pooled across cohorts (and so have a parametrization).
GROUPS = ("logit_rate", "log_lag_loc")

#: One-sided confidence of the lower bound of the between-group sd that the centring rules
#: compare standard errors with (:func:`_tau_lower`).
CENTRING_CONFIDENCE = 0.9


#: ``pooling="auto"`` pools partially from this many cohorts on (:func:`resolve_pooling`).
MIN_PARTIAL_COHORTS = 6


def resolve_pooling(pooling: str, n_cohorts: int) -> str:
    """``"auto"`` as "partial" with :data:`MIN_PARTIAL_COHORTS` (6) or more cohorts, "none"
    with fewer; others as given.

    With few cohorts the between-cohort sd is barely identified by the data (its posterior
    follows its prior; Gelman 2006, "Prior distributions for variance parameters in
    hierarchical models", Bayesian Analysis 1, §5), it keeps mass near 0 where the
    hierarchy's funnel makes NUTS diverge, and neither parametrization samples every cohort
    cleanly: in the first calibration study (target_accept 0.9, times read as exact) 3- to
    5-cohort fits diverged in 6 of 11, 4 of 16 and 6 of 12 data sets, 6- to 8-cohort fits in
    none; at 0.95 with the interval reading 3 of the first 4 three-cohort fits still did,
    and refitting them without pooling removed every divergence
    (``validation/sampling.md``). The usual advice for random effects over so few levels is to treat them as fixed (Bolker et al.
    2009, "Generalized linear mixed models: a practical guide for ecology and evolution",
    TREE 24: at least 5–6 levels). With two cohorts (a plain A/B test) independent priors
    also do not shrink the difference a readout measures. ``pooling="partial"`` still pools
    any number of cohorts.

    Raises
    ------
    ValueError
        ``pooling`` is not one of :data:`POOLING`.
    """
    if pooling not in POOLING:
        raise ValueError(f"pooling={pooling!r} is not one of {POOLING}")
    if pooling == "auto":
        return "partial" if n_cohorts >= MIN_PARTIAL_COHORTS else "none"
    return pooling


def _tau_lower(est: np.ndarray, se: np.ndarray, level: float = CENTRING_CONFIDENCE) -> float:
    """Lower confidence bound of the between-group sd τ (Q-profile; Viechtbauer 2007,
    "Confidence intervals for the amount of heterogeneity in meta-analysis", Stat. Med. 26).

    The generalised Q(τ²) = Σ w_i (θ̂_i − θ̄_w)², w_i = 1/(se_i² + τ²), is χ²_{k−1} at the true
    τ² and decreases in τ²; the one-sided lower bound solves Q(τ²_L) = χ²_{k−1}(level)
    (0 when Q(0) is below that quantile: the groups do not differ beyond their noise at this
    confidence). With few groups the bound is 0 unless they differ clearly.
    """
    est, se = np.asarray(est, float), np.asarray(se, float)
    if len(est) < 2:
        return 0.0

    def q_excess(tau2):
        w = 1.0 / (se**2 + tau2)
        return np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2) - crit

    crit = stats.chi2.ppf(level, len(est) - 1)
    if q_excess(0.0) <= 0:
        return 0.0
    hi = max(float(np.var(est)), 1e-12)
    while q_excess(hi) > 0:
        hi *= 4.0
    return float(np.sqrt(optimize.brentq(q_excess, 0.0, hi, xtol=1e-12 * hi)))


def _dersimonian_laird(est: np.ndarray, se: np.ndarray) -> float:
    """Between-group variance τ² from estimates and standard errors (DerSimonian & Laird 1986).

    τ² = max(0, (Q − (k − 1)) / (Σw − Σw² / Σw)), w = 1/se², Q = Σ w (θ̂ − θ̄_w)².
    """
    w = 1.0 / se**2
    mean = np.sum(w * est) / np.sum(w)
    q = np.sum(w * (est - mean) ** 2)
    denom = np.sum(w) - np.sum(w**2) / np.sum(w)
    return float(max(0.0, (q - (len(est) - 1)) / denom)) if denom > 0 else 0.0


def choose_parametrization(data: ConversionData) -> dict:
    """Centred or non-centred form per cohort and parameter group, from the data.

    The centred form samples well when a cohort's own data pin its parameter more tightly than
    the spread between cohorts does; otherwise the non-centred form avoids the funnel between
    the cohort parameters and the between-cohort scale (Betancourt & Girolami 2015, "Hamiltonian
    Monte Carlo for hierarchical models"; Papaspiliopoulos, Roberts & Sköld 2007). The rule
    compares rough per-cohort estimates, computed without fitting:

    * eventual rate: θ̂_g = logit(Kaplan–Meier conversion at the end of follow-up), standard
      error 1 / sqrt(n_g p (1 − p));
    * lag location: θ̂_g = log(median observed conversion time), standard error
      1.25 / sqrt(d_g) (d_g conversions);

    and bounds the between-cohort sd τ from below: the one-sided 90% Q-profile bound τ_L
    (:func:`_tau_lower`; Viechtbauer 2007). Cohort g is centred when se_g < τ_L, i.e. when its
    data pin it more tightly than cohorts differ even at the low end of what the spread may
    be. The point estimate (DerSimonian & Laird 1986) was used before: with 3 cohorts it
    centred cohorts whose se was close to a spread the posterior often put lower, and those
    fits diverged in the funnel (``validation/sampling.md``). Homogeneous cohorts (τ_L = 0)
    are all non-centred; large, distinct cohorts (the NYC complaints buckets) are centred, which there
    cuts NUTS steps per draw about tenfold. With fewer than :data:`MIN_PARTIAL_COHORTS`
    cohorts (partial pooling forced) a parameter's cohorts are centred only where every one
    qualifies, else non-centred throughout (:func:`choose_term_centring` says why). The
    estimates ignore censoring; they only need to tell "cohorts differ more than their
    noise" from "cohorts look alike".

    Parameters
    ----------
    data : ConversionData

    Returns
    -------
    dict mapping "logit_rate" and "log_lag_loc" to a tuple of "centered" / "noncentered" per
    cohort.
    """
    return {key: _whole_if_few(levels)
            for key, levels in _centring(data, data.cohort, data.n_cohorts).items()}


def shear_times(data: ConversionData) -> np.ndarray:
    """Per cohort, the age T_g at which its data pin the conversion c_g·F(T_g), in the
    data's time unit; shape (n_cohorts,).

    Units still waiting at the observation date are most of a cohort when c is small or the
    lag long, and the conversions seen among units of ages a_i pin Σ_i c·F(a_i), so the
    count-weighted median age of the waiting units stands for the cohort's ages. A cohort
    without waiting units takes its longest duration (F(T_g) is then close to 1, and the
    shear of :class:`~bayesconv.model.builder.ModelBuilder` that reads T_g close to the
    identity). No T_g is below the data's smallest positive duration
    (:func:`~bayesconv.model.likelihood.default_zero_width`).
    """
    out = np.empty(data.n_cohorts)
    for g in range(data.n_cohorts):
        m = data.cohort == g
        waiting = m & ~data.converted
        if waiting.any():
            out[g] = weighted_median(data.duration[waiting], data.count[waiting])
        else:
            out[g] = data.duration[m].max() if m.any() else 0.0
    return np.maximum(out, default_zero_width(data))


def _rough_estimates(data: ConversionData, codes: np.ndarray, n: int) -> dict:
    """Rough per-level estimates without fitting, for any grouping of the rows (``codes`` per
    row, ``n`` levels): "logit_rate" and "log_lag_loc" mapped to (estimate, standard error,
    has data), each an ndarray of shape (n,); see :func:`choose_parametrization`."""
    n_g = np.bincount(codes, weights=data.count, minlength=n)
    d_g = np.bincount(codes, weights=data.count * data.converted, minlength=n)
    p = np.zeros(n)
    for g in range(n):
        m = codes == g
        if m.any():
            *_, surv, _ = km_arrays(data.duration[m], data.converted[m], data.count[m])
            p[g] = 1.0 - surv[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.clip(p, 0.5 / n_g, 1 - 0.5 / n_g)
        est_rate = np.log(p / (1 - p))
        se_rate = 1 / np.sqrt(n_g * p * (1 - p))
    est_lag = np.zeros(n)
    for g in range(n):
        m = (codes == g) & data.converted
        if m.any():
            med = weighted_median(data.duration[m], data.count[m])
            est_lag[g] = np.log(max(med, 1e-12))
    d_safe = np.maximum(d_g, 0.25)
    se_lag = 1.25 / np.sqrt(d_safe)
    return {"logit_rate": (est_rate, se_rate, n_g > 0),
            "log_lag_loc": (est_lag, se_lag, d_g >= 2)}


def _centring(data: ConversionData, codes: np.ndarray, n: int) -> dict:
    """:func:`choose_parametrization`'s rule for any grouping of the rows (``codes`` per row,
    ``n`` levels)."""
    out = {}
    for key, (est, se, has) in _rough_estimates(data, codes, n).items():
        tau = _tau_lower(est[has], se[has])
        out[key] = tuple("centered" if (h and s < tau) else "noncentered"
                         for h, s in zip(has, se, strict=True))
    return out


def choose_term_centring(data: ConversionData, design, term, parametrization: str = "auto"
                         ) -> tuple:
    """Centred or non-centred per level of a formula's group term.

    Group intercepts ``(1 | g)`` of the eventual rate and the lag location follow the rule of
    :func:`choose_parametrization` applied to the levels of ``g``. Slopes ``(x | g)`` follow the
    same rule with each level's rough slope estimate: the weighted least-squares slope, on
    ``x``, of the rough estimates of the level's cells (weights 1/se²), and its standard
    error. Group terms of the other parameters are non-centred (their levels are rarely
    pinned by their own data). A term of fewer than :data:`MIN_PARTIAL_COHORTS` levels is
    centred only where every level qualifies, else non-centred throughout: in a 3-segment
    slope term with one level centred, the divergent draws sat at slope sds of 0.005–0.03
    (9 divergences; 1 with the slope term non-centred throughout, ``validation/sampling.md``),
    while a 3-segment model whose terms had every level centred sampled cleanly and diverged
    (15) with them non-centred.
    ``parametrization`` "centered" or "noncentered" forces one form.

    Returns
    -------
    tuple of "centered" / "noncentered", one per level of the term.
    """
    n = len(term.levels)
    if parametrization in ("centered", "noncentered"):
        return (parametrization,) * n
    if design.raw not in GROUPS:
        return ("noncentered",) * n
    if term.intercept:
        level_of_cell = np.argmax(term.Z != 0, axis=1)
        return _whole_if_few(_centring(data, level_of_cell[data.cell], n)[design.raw])
    if term.factor not in data.cells.columns:  # e.g. (x | a:b): no column to split cells by
        return ("noncentered",) * n
    # a slope (x | g): per level, the weighted least-squares slope of the cells' rough
    # estimates on x, and its standard error
    est, se, has = _rough_estimates(data, data.cell, data.n_cells)[design.raw]
    slope, slope_se = np.zeros(n), np.full(n, np.inf)
    level = data.cells[term.factor].astype(str).to_numpy()
    for g in range(n):
        cells = np.flatnonzero(has & (level == term.levels[g]))
        x = term.Z[cells, g]
        w = 1.0 / se[cells] ** 2
        if len(cells) < 2 or np.ptp(x) == 0:
            continue
        xbar = np.sum(w * x) / np.sum(w)
        sxx = np.sum(w * (x - xbar) ** 2)
        slope[g] = np.sum(w * (x - xbar) * est[cells]) / sxx
        slope_se[g] = 1.0 / np.sqrt(sxx)
    ok = np.isfinite(slope_se)
    tau = _tau_lower(slope[ok], slope_se[ok])
    return _whole_if_few(tuple("centered" if (o and s_ < tau) else "noncentered"
                               for o, s_ in zip(ok, slope_se, strict=True)))


def _whole_if_few(levels: tuple) -> tuple:
    """A term (cohorts or a formula's group term) of fewer than :data:`MIN_PARTIAL_COHORTS` levels is centred throughout
    or not at all: non-centred unless every level qualifies for centring. With few levels
    the term's sd can reach 0, and a centred level beside non-centred ones then funnels."""
    if len(levels) >= MIN_PARTIAL_COHORTS or all(v == "centered" for v in levels):
        return levels
    return ("noncentered",) * len(levels)


def choose_walk_centring(data: ConversionData, design, walk, parametrization: str = "auto"
                         ) -> str:
    """Centred or non-centred form of a formula's random walk ``rw(period)``.

    The walk's steps w_k − w_{k−1} have the innovation sd σ. Like a group term's levels
    (:func:`choose_parametrization`), the steps are sampled centred (step ~ Normal(0, σ)) when
    each period's own data pin the step more tightly than σ, else non-centred
    (step = σ · z): with well-informed periods the non-centred walk has the inverted funnel
    (divergences at large σ), with thin periods the centred one has the funnel. The rule uses
    the rough per-period estimates of :func:`choose_parametrization` for the eventual rate and
    the lag location: the lower bound σ_L of :func:`_tau_lower` on the differences of
    consecutive periods' estimates (standard errors √(se²_k + se²_{k−1})), centred when the
    median of those standard errors is below σ_L. Walks of the other parameters are
    non-centred. ``parametrization`` "centered" or "noncentered" forces one form.

    Returns
    -------
    "centered" or "noncentered"
    """
    if parametrization in ("centered", "noncentered"):
        return parametrization
    if design.raw not in GROUPS:
        return "noncentered"
    index = walk.index[data.cell]
    est, se, has = _rough_estimates(data, index, len(walk.levels))[design.raw]
    est, se = est[has], se[has]
    if len(est) < 3:
        return "noncentered"
    d_est, d_se = np.diff(est), np.sqrt(se[1:] ** 2 + se[:-1] ** 2)
    return "centered" if np.median(d_se) < _tau_lower(d_est, d_se) else "noncentered"


def sums_to_zero(design, term) -> bool:
    """Whether a formula's group term is sampled as sum-to-zero effects.

    A term of fewer than :data:`MIN_PARTIAL_COHORTS` levels whose mean effect the fixed part
    of the formula spans (the column Z·1, each cell's weight on the levels' mean: the
    intercept for ``(1 | g)``, the slope's covariate for ``(x | g)``) has its levels'
    effects constrained to sum to zero (PyMC's ``ZeroSumNormal``), and their mean is carried
    by that fixed part: the cells' predictions are the same model, up to the prior of the
    effects' mean, which becomes the fixed effect's. Without the constraint the fixed effect
    and the levels' mean trade along a ridge as long as the between-level sd
    (:func:`ridge_ratio`); on the calibration study's 3–4-segment regression data sets NUTS
    took 70–115 leapfrog steps per draw and diverged at the ridge's ends (the fixed arm effect
    at its 0.1% quantile, every segment's slope at its 99.6%), with it 13–26 steps
    (``validation/sampling.md``). Terms of more levels keep independent effects (the ridge is
    short, ~τ/√levels, and their levels may be centred or not one by one). The model applies
    it only where the mass matrix is diagonal (:func:`choose_mass_matrix`): where the data pin
    the levels so tightly that the ridge is long, the low-rank mass matrix follows it (10^6
    units, 4 platforms: 9 s of sampling with independent effects and a low-rank matrix, 197 s
    with sum-to-zero effects and a diagonal one, ``benchmarks/formula.md``).

    Parameters
    ----------
    design : :class:`~bayesconv.model.formula.Design`
    term : :class:`~bayesconv.model.formula.GroupTerm` of ``design``

    Returns
    -------
    bool
    """
    if len(term.levels) >= MIN_PARTIAL_COHORTS:
        return False
    mean_col = term.Z.sum(axis=1)
    fixed = design.X if not design.intercept else np.column_stack(
        [np.ones(len(mean_col)), design.X])
    if fixed.shape[1] == 0:
        return False
    coef, *_ = np.linalg.lstsq(fixed, mean_col, rcond=None)
    return bool(np.allclose(fixed @ coef, mean_col, rtol=0.0,
                            atol=1e-9 * max(1.0, float(np.abs(mean_col).max()))))


#: :func:`choose_mass_matrix` takes a low-rank mass matrix above this :func:`ridge_ratio`.
LOW_RANK_RIDGE = 20.0


def ridge_ratio(data: ConversionData, designs) -> float:
    """How far the data pin a formula's cells beyond what they say about its terms.

    A group intercept ``(1 | g)`` adds b_g to the formula's intercept; the data pin each
    level's sum intercept + b_g to about its standard error se_g, while the split between the
    two is pinned only by the prior, at the scale of the between-level sd τ. The posterior then
    holds a ridge of length ~τ and width ~se_g along which intercept and every b_g move
    together. The ratio τ̂ / median(se_g), from the rough level estimates of
    :func:`choose_parametrization` and the DerSimonian & Laird (1986) τ̂, measures that ridge
    for every intercept group term of the eventual rate and the lag location; the largest is
    returned (0 without such terms).

    Parameters
    ----------
    data : ConversionData
    designs : mapping of parameter name to :class:`~bayesconv.model.formula.Design`

    Returns
    -------
    float
        Dimensionless, ≥ 0.
    """
    ratio = 0.0
    for design in designs.values():
        if design.raw not in GROUPS:
            continue
        for term in design.groups:
            if not term.intercept:
                continue
            level = np.argmax(term.Z != 0, axis=1)[data.cell]
            est, se, has = _rough_estimates(data, level, len(term.levels))[design.raw]
            if has.sum() < 2:
                continue
            tau = np.sqrt(_dersimonian_laird(est[has], se[has]))
            ratio = max(ratio, float(tau / np.median(se[has])))
    return ratio


def choose_mass_matrix(data: ConversionData, designs) -> str:
    """The NUTS mass-matrix adaptation for a model: ``"diag"`` or ``"low_rank"``.

    A diagonal mass matrix cannot follow the ridge :func:`ridge_ratio` measures: NUTS then
    needs a number of leapfrog steps per draw that grows with the ratio. A diagonal-plus-
    low-rank mass matrix (nutpie's ``adaptation="low_rank"``, after Seyboldt's "covadapt")
    learns the few ridge directions. Measured (``benchmarks/formula.md``; 10^6 units, 2 arms ×
    4 platforms × 12 weeks, ratio 49): 195 → 7 leapfrog steps per draw. On small segment data
    (``validation/calibration_segments.py``, ratios 3–10) the low-rank matrix gave as many or
    more divergences than the diagonal one (130 against 31 on one data set of ratio 3), so it
    is taken only above :data:`LOW_RANK_RIDGE`.

    Returns
    -------
    "diag" or "low_rank"
    """
    return "low_rank" if ridge_ratio(data, designs) > LOW_RANK_RIDGE else "diag"
