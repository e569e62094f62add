"""The PyMC graph of the hierarchical cure-mixture model, built from data and a spec.

:class:`ModelBuilder` holds everything a model is before it is fitted: the data, the lag
family, the :class:`~bayesconv.model.spec.ModelSpec`, the likelihood rows and their
arrays, each computed once, and the PyMC model built from them on first access. The public
:class:`bayesconv.ConversionModel` adds fitting to it (:mod:`bayesconv.inference`).
"""

from __future__ import annotations

import hashlib
from functools import cached_property

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from ..data.container import ConversionData
from ..lags.families import LagFamily, get_lag
from ..lags.namespace import pytensor_namespace
from .design import (
    GROUPS,
    MIN_PARTIAL_COHORTS,
    choose_mass_matrix,
    choose_parametrization,
    choose_term_centring,
    choose_walk_centring,
    resolve_pooling,
    shear_times,
    sums_to_zero,
)
from .formula import PARAMETERS, Design, build_design
from .likelihood import (
    LikelihoodArrays,
    LikelihoodRows,
    default_zero_width,
    merge_cells,
    rows_from_data,
    total_loglik,
)
from .mixture import log_c_pair
from .priors import merge_priors
from .spec import ModelSpec

__all__ = ["ModelBuilder", "group_sd"]


#: Sample the eventual rates sheared along the lags where the model allows it
#: (:meth:`ModelBuilder._shear_applies`).
SHEAR = True


def group_sd(name: str, scale: float, n_levels: int):
    """The prior of a hierarchical term's between-level sd (a PyMC variable named ``name``).

    HalfNormal(``scale``) from :data:`~bayesconv.model.design.MIN_PARTIAL_COHORTS` (6) levels
    on; with fewer, the boundary-avoiding Gamma(2, 2 / (scale·√(2/π))), whose mean is the
    HalfNormal's (0.80·scale) but whose density is 0 at sd = 0 (Chung, Rabe-Hesketh, Dorie,
    Gelman & Liu 2013, "A nondegenerate penalized likelihood estimator for variance parameters
    in multilevel models", Psychometrika 78, 685–709, recommend the Gamma(2) for this reason).
    With a handful of levels the data barely inform the sd (Gelman 2006, §5); a HalfNormal
    then leaves mass near 0, where the levels' funnel makes NUTS diverge whichever
    parametrization: on the regression data sets of the calibration study (3–4 segments) the
    Gamma(2) prior cut the divergences from 16 to 6 in the 5 fits that had any and the NUTS
    steps per draw from 70–115 to 42–68 (``validation/sampling.md``). The price is less
    shrinkage of the levels when their true sd is near 0.
    """
    scale = np.float64(scale)
    if n_levels < MIN_PARTIAL_COHORTS:
        return pm.Gamma(name, alpha=np.float64(2.0),
                        beta=np.float64(2.0) / (scale * np.sqrt(2.0 / np.pi)))
    return pm.HalfNormal(name, scale)


class ModelBuilder:
    """Hierarchical model of eventual conversion rates and time-to-convert per cohort.

    For unit i of cohort g, with eventual conversion probability c_g and lag distribution
    F(t; m_g, k_g) (location m_g, shape k_g):

    * converted at t: log c_g + log f(t), (interval-censored: log c_g + log(F(b) − F(a)))
    * not converted by t: log(1 − c_g F(t)),

    see :mod:`bayesconv.model.likelihood`. With ``pooling="partial"``::

        logit c_g      ~ Normal(μ_c, σ_c),   μ_c ~ Normal(-1.5, 1.5), σ_c ~ HalfNormal(1)
        log(m_g / s)   ~ Normal(μ_m, σ_m),   μ_m ~ Normal(0, 2),     σ_m ~ HalfNormal(1)
        log k_g        ~ Normal(μ_k, 0.6),   μ_k ~ Normal(0, 1)      (spread fixed)
        q              ~ Normal(0, 1)        (generalized gamma only; one for all cohorts)

    (σ_c, σ_m ~ Gamma(2, 2.5) when fewer than 6 cohorts are pooled, :func:`group_sd`), where
    s is ``time_scale``, the count-weighted median observed conversion time, so the priors
    are the same in any time unit (fitting in hours or days gives the same posterior in
    calendar time). The lag shapes share a learned mean but their spread is fixed
    (``log_lag_shape_spread``): with a learned spread they produced funnels (tens to hundreds
    of divergences on simulated cohorts of very different sizes) in both the centred and
    non-centred forms, because the shape is weakly identified relative to how little shapes
    differ between cohorts; with independent Normal(0, 1) priors the shape of a cohort with a
    handful of conversions wandered to 10–20, where the lag location's conditional posterior
    narrows like a funnel and NUTS diverged (``validation/sampling.md``). Without pooling
    (``"none"``) the eventual rates have independent priors and the lags are tied the same
    way, by a learned mean and a fixed spread::

        logit c_g      ~ Normal(-1.5, 1.5)                           (independent)
        log(m_g / s)   ~ Normal(μ_m, 1.0),   μ_m ~ Normal(0, 2)      (spread fixed)
        log k_g        ~ Normal(μ_k, 0.6),   μ_k ~ Normal(0, 1)      (spread fixed)

    Independent lag priors (log(m_g / s) ~ Normal(0, 2)) let a cohort with a handful of
    conversions and a follow-up short of its lag trade a lag tens of times the others' for an
    eventual rate near 1: a ridge on which 4 chains disagreed (R-hat 1.01–1.025) or NUTS
    diverged in 13 of 74 calibration data sets with 2–5 cohorts; tied, 4 of the 74 warned, and
    1 at the default ``target_accept`` of 0.9 for tied lags (``validation/sampling.md``).
    Marginally each cohort's prior is about the old one (Normal(0, 2.24) and Normal(0,
    1.17)); the eventual rates, which a readout compares, are not shrunk towards each other.
    This is the mixture cure model of Boag (1949) and Berkson & Gage (1952) with a
    hierarchical prior across cohorts (Gelman et al. 2013, *Bayesian Data Analysis*, ch. 5).

    Parameters
    ----------
    data : ConversionData
        Output of :func:`bayesconv.prepare`.
    lag : {"gamma", "weibull", "exponential", "lognormal", "gengamma"} or LagFamily
        Lag family (default "gamma"; see :mod:`bayesconv.lags`). The gamma location is its
        mean; the Weibull, exponential and log-normal locations their medians; the
        generalized gamma's ``e^mu``. The exponential has no shape (no ``lag_shape``
        variable); the generalized gamma adds ``lag_q``, one value shared by all cohorts
        (stored per cohort), whose per-cohort version is weakly identified under censoring.
    pooling : {"auto", "partial", "none", "complete"}, default "auto"
        "partial": hierarchical priors across cohorts (partial pooling). "none": each
        cohort's eventual rate gets the population prior independently, and the lags are tied
        by a learned mean with a fixed spread (``log_lag_loc_spread``,
        ``log_lag_shape_spread``; see above). "complete": one curve for all cohorts.
        "auto": "partial" with 6 or more cohorts, "none" with fewer (with few cohorts the
        between-cohort scale is barely identified, its funnel makes NUTS diverge, and
        independent eventual rates sample cleanly and do not shrink the differences a readout
        measures; see :func:`~bayesconv.model.resolve_pooling`).
    priors : dict, optional
        Overrides of :data:`~bayesconv.model.DEFAULT_PRIORS`, e.g.
        ``{"logit_rate": {"mu": -2, "sigma": 1}}``.
    parametrization : {"auto", "centered", "noncentered"}, default "auto"
        For partial pooling: "auto" chooses per cohort and parameter with
        :func:`~bayesconv.model.choose_parametrization`: centred where a cohort's own data pin
        its parameter more tightly than cohorts differ (the non-centred form there makes NUTS
        take ~10× more steps), non-centred elsewhere (which avoids funnel divergences).
    zero_width : float, optional
        Width of the first bin, in the data's time unit, into which conversions at duration 0
        are placed (default: the smallest positive duration in the data).
    formula : dict, optional
        A formula per parameter (keys ``"eventual_rate"``, ``"lag_loc"``, and ``"lag_shape"`` /
        ``"lag_q"`` where the family has them), on the columns of the data's cell table (the
        cohort column and the ``covariates`` of :func:`bayesconv.prepare`), e.g.
        ``{"eventual_rate": "variant + (variant | platform) + rw(signup_week)"}``; see
        :mod:`bayesconv.model.formula`. A parameter left out keeps the design ``pooling``
        gives it over cohorts; without a formula the model is the one-factor model above.

    Attributes
    ----------
    data : ConversionData
    family : LagFamily
    spec : ModelSpec
    rows : LikelihoodRows
        The data rows classified for the likelihood (computed once). Cells whose parameters
        are equal by construction (covariates that no formula uses) are merged into one class
        first (:func:`~bayesconv.model.likelihood.merge_cells`), so that unused covariates cost
        nothing; ``rows.cell`` then holds class codes.
    cell_class : ndarray of int, shape (n_cells,), or None
        Class of every cell when cells were merged (None when every cell is its own class).
    arrays : LikelihoodArrays
        The arrays the model's ``pm.Data`` containers hold (computed once).
    pymc_model : pymc.Model
        The PyMC model, with a ``cohort`` coordinate; extend it at will.

    Raises
    ------
    TypeError
        ``data`` is not a ConversionData, or ``formula`` not a dict of strings.
    ValueError
        Unknown lag, pooling, parametrization or prior keys; priors out of range; a formula
        key that is not a parameter of the lag family; a formula that uses a column the data
        do not have, groups over a single level, or walks over an unordered column.
    """

    def __init__(self, data: ConversionData, *, lag: str | LagFamily = "gamma",
                 pooling: str = "auto", priors: dict | None = None,
                 parametrization: str = "auto", zero_width: float | None = None,
                 formula: dict | None = None):
        if not isinstance(data, ConversionData):
            raise TypeError("data must be a ConversionData from bayesconv.prepare(), "
                            f"got {type(data).__name__}")
        pooling = resolve_pooling(pooling, data.n_cohorts)
        if parametrization not in ("auto", "centered", "noncentered"):
            raise ValueError(f"parametrization={parametrization!r} is not one of "
                             "'auto', 'centered', 'noncentered'")
        self.data = data
        self.family = get_lag(lag)
        formula = _check_formula(formula, self.family)
        self.rows: LikelihoodRows = rows_from_data(data, zero_width=zero_width)
        units = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
        self.designs: dict[str, Design] = {
            name: build_design(name, f, data.cells, units) for name, f in formula.items()}
        if pooling != "partial":
            par = {}  # only partial pooling has a centred / non-centred choice
        elif parametrization == "auto":
            par = choose_parametrization(data)
        else:
            par = {key: (parametrization,) * data.n_cohorts for key in GROUPS}
        par = {k: v for k, v in par.items() if k not in {d.raw for d in self.designs.values()}}
        for design in self.designs.values():
            for term in design.groups:
                par[f"{design.raw}:{term.name}"] = choose_term_centring(
                    data, design, term, parametrization)
            for walk in design.walks:
                par[f"{design.raw}:rw({walk.period})"] = (choose_walk_centring(
                    data, design, walk, parametrization),)
        self.spec = ModelSpec(
            lag=self.family.name, pooling=pooling, priors=merge_priors(priors),
            parametrization=par, time_scale=self.rows.time_scale,
            zero_width=float(zero_width) if zero_width is not None
            else default_zero_width(data), formula=formula)
        self.cell_class, self._class_cell = self._parameter_classes()
        if self.cell_class is not None:
            self.rows = merge_cells(self.rows, self.cell_class, len(self._class_cell))
        self.arrays = LikelihoodArrays.from_rows(self.family, self.rows)
        self._model: pm.Model | None = None
        #: Whether the eventual rates are sampled sheared along the lags (:meth:`_shear_applies`),
        #: fixed here: the graph and :meth:`data_values` must agree.
        self.shears: bool = self._shear_applies()
        self._shear_time = shear_times(data) if self.shears else None

    def _parameter_classes(self):
        """(class of every cell, first cell of every class) for cells whose parameters are
        equal by construction: the same cohort (where a parameter has the one-factor design)
        and the same rows of every design matrix. (None, None) when no two cells share."""
        columns = [np.asarray(self.data.cell_cohort, dtype=float)[:, None]]
        for design in self.designs.values():
            columns += [np.asarray(design.X, dtype=float),
                        *(np.asarray(t.Z, dtype=float) for t in design.groups),
                        *(np.asarray(w.index, dtype=float)[:, None] for w in design.walks)]
        if len(self.designs) == 2 + len(self.family.extra_params):
            columns = columns[1:]  # every parameter has a formula: cohorts matter only there
        signature = np.concatenate(columns, axis=1)
        unique, first, inverse = np.unique(signature, axis=0, return_index=True,
                                           return_inverse=True)
        if len(unique) == self.data.n_cells:
            return None, None
        return inverse.ravel().astype(np.int64), first.astype(np.int64)

    @property
    def hierarchy_sizes(self) -> dict:
        """Levels of each hierarchical (partially pooled) term: ``{name: n_levels}``.

        The between-cohort terms of partial pooling (``"logit_rate"``, ``"log_lag_loc"``,
        unless a formula replaces them), each group term (``"eventual_rate:(1|g)"``) and
        random walk (``"lag:rw(week)"``, its periods). Few levels leave the between-level sd
        weakly identified, down to the funnel near 0 that NUTS diverges in; the fit's default
        ``target_accept`` reads this. Empty for a model without partial pooling.
        """
        out = {}
        if self.spec.pooling == "partial":
            raw = {d.raw for d in self.designs.values()}
            out.update({key: self.data.n_cohorts for key in GROUPS if key not in raw})
        for design in self.designs.values():
            out.update({f"{design.raw}:{t.name}": len(t.levels) for t in design.groups})
            out.update({f"{design.raw}:rw({w.period})": len(w.levels) for w in design.walks})
        return out

    @cached_property
    def mass_matrix(self) -> str:
        """The NUTS mass-matrix adaptation the data call for, ``"diag"`` or ``"low_rank"``
        (:func:`choose_mass_matrix`; computed once, read by the fit and by
        :attr:`zero_sum_terms`)."""
        return choose_mass_matrix(self.data, self.designs)

    @cached_property
    def zero_sum_terms(self) -> tuple:
        """The formulas' group terms sampled as sum-to-zero effects (:func:`sums_to_zero`,
        with a diagonal mass matrix: :attr:`mass_matrix`), named as in
        :attr:`hierarchy_sizes` (``"logit_rate:cohort|segment"``); the fit's default
        ``target_accept`` reads this."""
        if not self.designs or self.mass_matrix != "diag":
            return ()
        return tuple(f"{d.raw}:{t.name}" for d in self.designs.values() for t in d.groups
                     if sums_to_zero(d, t))

    @property
    def tied_sizes(self) -> dict:
        """Cohort-level parameters with a learned mean and a fixed spread: ``{prior key:
        n_cohorts}`` (``"log_lag_loc"`` under ``pooling="none"``, ``"log_lag_shape"`` under
        ``"none"`` and ``"partial"``, unless a formula replaces them; empty with one cohort).
        No funnel (the spread is not learned), but a cohort with a handful of conversions
        then moves along a curved ridge (its lag against its eventual rate, bounded by the
        other cohorts' lags) that a smaller NUTS step follows without diverging; the fit's
        default ``target_accept`` reads this."""
        keys = [("lag_loc", "log_lag_loc")] + [
            (q.var, q.prior) for q in self.family.extra_params if q.positive and not q.shared]
        return {prior: self.data.n_cohorts for var, prior in keys
                if var not in self.designs and self._spread(prior) is not None}

    def _spread(self, prior_key: str, pooling: str | None = None):
        """The fixed spread of a cohort-level parameter tied by a learned mean, or None (see
        :meth:`_cohort_vector`)."""
        pooling = pooling or self.spec.pooling
        if (pooling == "complete" or (pooling == "partial" and prior_key in GROUPS)
                or self.data.n_cohorts == 1):
            return None
        return self.spec.priors.get(f"{prior_key}_spread")

    # ------------------------------------------------------------------ building
    @property
    def pymc_model(self) -> pm.Model:
        """The PyMC model (built on first access)."""
        if self._model is None:
            # no creation traces on the graph's variables: they hold the caller's stack (a
            # script's path and line, a notebook cell), which would then be part of the
            # compiled model's key in the persistent compile cache and differ by caller
            with pytensor.config.change_flags(traceback__limit=0):
                self._model = self._build()
        return self._model

    @property
    def coords(self) -> dict:
        coords = {"cohort": [str(c) for c in self.data.cohorts]}
        if self.designs:
            coords["cell"] = list(range(self.data.n_cells))
        for design in self.designs.values():
            if design.fixed:
                coords[f"{design.raw}_fixed"] = list(design.fixed)
            for term in design.groups:
                coords[term.factor] = list(term.levels)
            for walk in design.walks:
                coords[walk.period] = [str(v) for v in walk.levels]
        return coords

    def constants_digest(self) -> str:
        """A digest of the arrays the graph holds as constants (not ``pm.Data``): the cells'
        cohorts and the formulas' design matrices. Models that differ in them must not share a
        compiled model."""
        h = hashlib.sha256(np.ascontiguousarray(self.data.cell_cohort).tobytes())
        for name, design in sorted(self.designs.items()):
            h.update(name.encode())
            for arr in (design.X, *(t.Z for t in design.groups),
                        *(w.index for w in design.walks)):
                h.update(str(arr.shape).encode() + np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def data_values(self) -> dict:
        """The values of every ``pm.Data`` container: what a compiled model of the same
        structure needs to run on this model's data (``CompiledModel.with_data``)."""
        shear = {"shear_time": self._shear_time} if self.shears else {}
        return {**self.arrays.named(), "time_scale": np.float64(self.spec.time_scale),
                **{f"centring_{k}": v for k, v in self.centring().items()}, **shear}

    def _shear_applies(self) -> bool:
        """Whether the eventual rates are sampled sheared along the cohorts' lags.

        Under censoring a cohort's conversions pin c_g·F(T_g) (:func:`shear_times`) far better
        than c_g or its lag alone: a longer lag with a higher eventual rate fits almost as
        well, a curved ridge between logit c_g and the lag. The sampler then moves
        u_g = logit c_g + log F(T_g) instead of logit c_g, with the lag parameters as they
        are. Given the lag, u_g is logit c_g shifted, so the map is a shear with unit
        Jacobian and the prior and posterior are unchanged: u_g ~ Normal(μ + log F(T_g), σ)
        is the prior logit c_g ~ Normal(μ, σ) (centred; non-centred, the standardised
        deviation shifted by log F(T_g) / σ), and the eventual rate is recovered exactly.
        Where the follow-up covers the lag, F(T_g) ≈ 1 and the shear is nearly the identity.
        One-factor models with more than one cohort and pooling "none" or "partial"; not a
        parameter with a formula (its linear predictor has no per-cohort value to shear).
        """
        return bool(SHEAR and self.spec.pooling in ("none", "partial")
                    and self.data.n_cohorts > 1 and not self.designs)

    def _cohort_vector(self, name: str, prior_key: str, pooling: str | None = None,
                       shift=None):
        """A cohort-level parameter on the unconstrained scale, shape (n_cohorts,).

        ``"complete"``: one value for all cohorts. ``"partial"`` for the eventual rate and
        the lag location: Normal(μ, σ) per cohort with μ and σ learned (centred or not per
        cohort, :meth:`_hierarchical`). Otherwise, for a parameter with a fixed spread prior
        (``<prior_key>_spread``: the lag location under ``"none"``, the lag shape under
        ``"none"`` and ``"partial"``) and more than one cohort: Normal(μ, spread) per cohort,
        μ learned, centred (a fixed spread has no funnel). Else independent
        Normal(mu, sigma) priors (the eventual rate under ``"none"``).

        ``shift`` (a tensor of shape (n_cohorts,), :attr:`shears`): the free variable is the
        parameter plus ``shift`` (``<name>_raw``), the parameter its Deterministic.
        """
        p = self.spec.priors
        n = self.data.n_cohorts
        # float64 constants: PyTensor types a Python float such as 1.5 as float32 (exact), and
        # log(sigma) then loses ~1e-8 in the log density
        mu0, sd0 = np.float64(p[prior_key]["mu"]), np.float64(p[prior_key]["sigma"])
        pooling = pooling or self.spec.pooling
        if pooling == "complete":
            value = pm.Normal(f"{name}_all", mu0, sd0)
            return pm.Deterministic(name, pt.ones(n) * value, dims="cohort")
        if pooling == "partial" and prior_key in GROUPS:
            mu = pm.Normal(f"mu_{name}", mu0, sd0)
            sigma = group_sd(f"sigma_{name}", p[f"{prior_key}_sd"], n)
            value = self._hierarchical(name, mu, sigma, "cohort", shift=shift)
            return pm.Deterministic(name, value, dims="cohort")
        spread = self._spread(prior_key, pooling)
        if spread is None and shift is not None:
            raw = pm.Normal(f"{name}_raw", mu0 + shift, sd0, dims="cohort")
            return pm.Deterministic(name, raw - shift, dims="cohort")
        if spread is None:
            return pm.Normal(name, mu0, sd0, dims="cohort")
        # population mean learned, spread across cohorts fixed (no sd, so no funnel)
        mu = pm.Normal(f"mu_{name}", mu0, sd0)
        return pm.Normal(name, mu, np.float64(spread), dims="cohort")

    def centring(self) -> dict:
        """``{effects name: ndarray of float}``, 1.0 for each level sampled centred and 0.0 for
        each level sampled non-centred (``spec.parametrization``), for every hierarchical term
        the model has: the cohort vectors under partial pooling (``"logit_rate"``,
        ``"log_lag_loc"``), the formulas' group terms (``"logit_rate_1_by_platform"``) and
        random walks (``"logit_rate_rw_week_step"``, one value for all steps). The model reads
        them as ``pm.Data`` (``centring_<effects>``), so models that differ only in
        parametrization share one compiled model."""
        par = self.spec.parametrization
        out = {key: np.array([v == "centered" for v in par[key]], dtype=float)
               for key in GROUPS if key in par}
        for design in self.designs.values():
            for term in design.groups:
                out[f"{design.raw}_{term.name.replace('|', '_by_')}"] = np.array(
                    [v == "centered" for v in par[f"{design.raw}:{term.name}"]], dtype=float)
            for walk in design.walks:
                out[f"{design.raw}_rw_{walk.period}_step"] = np.array(
                    par[f"{design.raw}:rw({walk.period})"] == ("centered",), dtype=float)
        return out

    def _hierarchical(self, effects: str, mu, sigma, dims: str | None = None, shape=None,
                      zero_sum: bool = False, shift=None):
        """Effects ``effects`` ~ Normal(mu, sigma) per level, each level centred or non-centred
        as :meth:`centring` says, in one form whose graph does not depend on which: with
        w = 1 (centred) or 0 (non-centred) per level, the free variable ``<effects>_raw`` is
        Normal(w·mu, w·sigma + 1 − w) and the effect is (1 − w)·mu + ((1 − w)·sigma + w)·raw,
        i.e. raw itself where centred and mu + sigma·raw where not (the two forms of
        Papaspiliopoulos, Roberts & Sköld 2007, "A general framework for the parametrization
        of hierarchical models", Stat. Sci. 22, with their weight fixed at 0 or 1 per level).
        With ``zero_sum`` (a formula's few-level group term, :func:`sums_to_zero`; ``mu`` 0
        and one weight for all levels, as :func:`choose_term_centring` gives such a term) the
        raw effects are ``ZeroSumNormal`` with that sd instead. ``shift`` (not with
        ``zero_sum``): raw is sampled shifted by shift / ((1 − w)·sigma + w) and the effect
        less ``shift`` (:meth:`_shear_applies`). Returns the effects tensor."""
        w = pm.Data(f"centring_{effects}", self.centring()[effects])
        if zero_sum:
            w0 = w[0]
            raw = pm.ZeroSumNormal(f"{effects}_raw", sigma=w0 * sigma + (1.0 - w0), dims=dims)
            return ((1.0 - w0) * sigma + w0) * raw
        scale = (1.0 - w) * sigma + w
        if shift is None:
            raw = pm.Normal(f"{effects}_raw", w * mu, w * sigma + (1.0 - w), dims=dims,
                            shape=shape)
            return (1.0 - w) * mu + scale * raw
        raw = pm.Normal(f"{effects}_raw", w * mu + shift / scale, w * sigma + (1.0 - w),
                        dims=dims, shape=shape)
        return (1.0 - w) * mu + scale * raw - shift

    def _lag_param(self, param):
        """A lag parameter besides the location (:class:`~bayesconv.lags.LagParam`), per cohort.

        Under ``pooling="partial"`` and ``"none"`` one value per cohort around a learned
        population mean with the fixed spread ``<prior>_spread`` (see the class docstring;
        centred, as a fixed spread has no funnel), independent values for a parameter without
        a spread prior; one for all under ``"complete"`` or for a ``shared`` parameter such as
        the generalized gamma's ``q``. Positive parameters are sampled on the log scale
        (``log_<var>``); the parameter itself is the per-cohort variable ``var``.
        """
        pooling = ("complete" if (param.shared or self.spec.pooling == "complete")
                   else self.spec.pooling)
        if not param.positive:
            return self._cohort_vector(param.var, param.prior, pooling)
        raw = self._cohort_vector(f"log_{param.var}", param.prior, pooling)
        return pm.Deterministic(param.var, pt.exp(raw), dims="cohort")

    def _formula_vector(self, design: Design):
        """A parameter on its link scale per cell, from its formula: intercept, fixed effects,
        group-specific effects and random walks (shape (n_cells,))."""
        p = self.spec.priors
        raw = design.raw
        mu0, sd0 = p[raw]["mu"], p[raw]["sigma"]
        eta = pt.zeros(self.data.n_cells)
        if design.intercept:
            eta = eta + pm.Normal(f"{raw}_intercept", mu0, sd0)
        elif not (design.fixed or design.groups or design.walks):
            raise ValueError(f"the formula of {design.parameter!r} ({design.formula!r}) has no "
                             "terms at all")
        if design.fixed:
            eff = p[f"{raw}_effect"]
            beta = pm.Normal(f"{raw}_beta", eff["mu"], eff["sigma"], dims=f"{raw}_fixed")
            eta = eta + pt.dot(design.X, beta)
        for term in design.groups:
            key = term.name.replace("|", "_by_")
            sd = group_sd(f"{raw}_sd_{key}", p[f"{raw}_sd"], len(term.levels))
            b = pm.Deterministic(f"{raw}_{key}",
                                 self._hierarchical(f"{raw}_{key}", 0.0, sd, term.factor,
                                                    zero_sum=f"{raw}:{term.name}"
                                                    in self.zero_sum_terms),
                                 dims=term.factor)
            eta = eta + pt.dot(term.Z, b)
        for walk in design.walks:
            sd = pm.HalfNormal(f"{raw}_rw_sd_{walk.period}", p[f"{raw}_rw_sd"])
            steps = self._hierarchical(f"{raw}_rw_{walk.period}_step", 0.0, sd,
                                       shape=len(walk.levels) - 1)
            w = pm.Deterministic(f"{raw}_rw_{walk.period}",
                                 pt.concatenate([pt.zeros(1), pt.cumsum(steps)]),
                                 dims=walk.period)
            eta = eta + w[walk.index]
        return eta

    def _parameter(self, name: str, default):
        """A parameter's link-scale value per cell: from its formula, or ``default()`` (the
        cohort-level design of ``pooling``) mapped to cells. Returns (per cell, per cohort or
        None)."""
        if name in self.designs:
            return self._formula_vector(self.designs[name]), None
        value = default()
        return self._per_cell(value), value

    def _per_cell(self, value):
        """A per-cohort vector as the per-cell vector the likelihood reads."""
        codes = self.data.cell_cohort
        if np.array_equal(codes, np.arange(self.data.n_cohorts)):
            return value  # one cell per cohort, in cohort order: nothing to index
        return value[codes]

    def _build(self) -> pm.Model:
        PT = pytensor_namespace()
        with pm.Model(coords=self.coords) as model:
            # a Data container, so a cached compiled model can be reused with another scale
            s = pm.Data("time_scale", np.float64(self.spec.time_scale))
            # the lag first: the eventual rates may be sampled sheared along it (_shear_applies)
            log_loc, log_loc_cohort = self._parameter(
                "lag_loc", lambda: self._cohort_vector("log_lag_loc", "log_lag_loc"))
            lag_params = [pt.exp(log_loc)]
            lag_cohort = [] if log_loc_cohort is None else [pt.exp(log_loc_cohort)]
            for param in self.family.extra_params:
                if param.var in self.designs:
                    raw = self._formula_vector(self.designs[param.var])
                    value = pt.exp(raw) if param.positive else raw
                    lag_params.append(pm.Deterministic(f"{param.var}_cell", value, dims="cell"))
                else:
                    value = self._lag_param(param)
                    lag_cohort.append(value)
                    lag_params.append(self._per_cell(value))
            shift = None
            if self.shears:
                t_g = pm.Data("shear_time", self._shear_time) / s
                shift = self.family.logcdf(t_g, *lag_cohort, xp=PT)
            logit_c, logit_c_cohort = self._parameter(
                "eventual_rate",
                lambda: self._cohort_vector("logit_rate", "logit_rate", shift=shift))
            for name, cohort_value, cell_value, to_natural in (
                    ("eventual_rate", logit_c_cohort, logit_c, pm.math.sigmoid),
                    ("lag_loc", log_loc_cohort, log_loc, lambda x: pt.exp(x) * s)):
                if cohort_value is not None:
                    pm.Deterministic(name, to_natural(cohort_value), dims="cohort")
                else:
                    pm.Deterministic(f"{name}_cell", to_natural(cell_value), dims="cell")
            if self._class_cell is not None:  # merged cells: parameters per class
                logit_c = logit_c[self._class_cell]
                lag_params = [p[self._class_cell] for p in lag_params]
            log_c, log1m_c = log_c_pair(logit_c, PT)
            data_vars = LikelihoodArrays(
                {key: pm.Data(LikelihoodArrays.data_name(key), v)
                 for key, v in self.arrays.items()})
            ll = total_loglik(self.family, self.rows, log_c, log1m_c, *lag_params, xp=PT,
                              data_vars=data_vars)
            pm.Potential("loglik", ll)
        return model

    def __repr__(self) -> str:
        if self.spec.formula:
            return f"ConversionModel({self.spec.describe()}, {self.data!r})"
        return (f"ConversionModel(lag={self.spec.lag!r}, pooling={self.spec.pooling!r}, "
                f"{self.data!r})")


def _check_formula(formula, family) -> dict:
    """``formula`` as a dict of the family's parameter names to formula strings."""
    if formula is None:
        return {}
    if not isinstance(formula, dict) or not all(isinstance(v, str) for v in formula.values()):
        raise TypeError("formula must be a dict of parameter name to formula string, e.g. "
                        "{'eventual_rate': 'variant + (1 | platform)'}, got "
                        f"{type(formula).__name__}")
    known = ["eventual_rate", "lag_loc"] + [p.var for p in family.extra_params]
    for key in formula:
        if key not in known:
            extra = (f" ({key!r} is a parameter of another lag family)"
                     if key in PARAMETERS else "")
            raise ValueError(f"formula key {key!r} is not a parameter of the {family.name} "
                             f"lag{extra}; its parameters: {known}")
    return {k: formula[k] for k in known if k in formula}
