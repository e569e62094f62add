"""The PyMC graph of the hierarchical cure-mixture model, built from data and a spec.

:class:`ModelBuilder` holds everything a model is before it is fitted: the data, the lag
family, the :class:`~bayesconv.model.spec.ModelSpec`, the likelihood rows and their (padded)
arrays, each computed once, and the PyMC model built from them on first access. The public
:class:`bayesconv.ConversionModel` adds fitting to it (:mod:`bayesconv.inference`).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..data.container import ConversionData
from ..lags.families import LagFamily, get_lag
from ..lags.namespace import pytensor_namespace
from .design import GROUPS, choose_parametrization, resolve_pooling
from .likelihood import (
    LikelihoodArrays,
    LikelihoodRows,
    default_zero_width,
    rows_from_data,
    total_loglik,
)
from .mixture import log_c_pair
from .priors import merge_priors
from .spec import ModelSpec

__all__ = ["ModelBuilder"]


class ModelBuilder:
    """Hierarchical model of eventual conversion rates and time-to-convert per cohort.

    For unit i of cohort g, with eventual conversion probability c_g and lag distribution
    F(t; m_g, k_g) (location m_g, shape k_g):

    * converted at t: log c_g + log f(t), (interval-censored: log c_g + log(F(b) − F(a)))
    * not converted by t: log(1 − c_g F(t)),

    see :mod:`bayesconv.model.likelihood`. With ``pooling="partial"``::

        logit c_g      ~ Normal(μ_c, σ_c),   μ_c ~ Normal(0, 1.5),   σ_c ~ HalfNormal(1)
        log(m_g / s)   ~ Normal(μ_m, σ_m),   μ_m ~ Normal(0, 2),     σ_m ~ HalfNormal(1)
        log k_g        ~ Normal(0, 1)        (not pooled)
        q              ~ Normal(0, 1)        (generalized gamma only; one for all cohorts)

    where s is ``time_scale``, the count-weighted median observed conversion time, so the priors
    are the same in any time unit (fitting in hours or days gives the same posterior in
    calendar time). The lag shape has independent priors: pooled, it produced funnels (tens to
    hundreds of divergences on simulated cohorts of very different sizes) in both the centred
    and non-centred forms, because the shape is weakly identified relative to how little shapes
    differ between cohorts; the eventual rate and the lag location, which small cohorts need to
    borrow, are pooled. This is the mixture cure model of Boag (1949) and Berkson & Gage (1952) with
    a hierarchical prior across cohorts (Gelman et al. 2013, *Bayesian Data Analysis*, ch. 5).

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
        "partial": hierarchical priors across cohorts (partial pooling). "none": each cohort
        gets the population priors independently. "complete": one curve for all cohorts.
        "auto": "partial" with 3 or more cohorts, "none" with 1 or 2 (with two cohorts, e.g. a
        plain A/B test, the between-cohort scale is barely identified and independent priors
        sample cleanly and do not shrink the difference you want to measure).
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

    Attributes
    ----------
    data : ConversionData
    family : LagFamily
    spec : ModelSpec
    rows : LikelihoodRows
        The data rows classified for the likelihood (computed once).
    arrays : LikelihoodArrays
        The padded arrays the model's ``pm.Data`` containers hold (computed once).
    pymc_model : pymc.Model
        The PyMC model, with a ``cohort`` coordinate; extend it at will.

    Raises
    ------
    TypeError
        ``data`` is not a ConversionData.
    ValueError
        Unknown lag, pooling, parametrization or prior keys; priors out of range.
    """

    def __init__(self, data: ConversionData, *, lag: str | LagFamily = "gamma",
                 pooling: str = "auto", priors: dict | None = None,
                 parametrization: str = "auto", zero_width: float | None = None):
        if not isinstance(data, ConversionData):
            raise TypeError("data must be a ConversionData from bayesconv.prepare(), "
                            f"got {type(data).__name__}")
        pooling = resolve_pooling(pooling, data.n_cohorts)
        if parametrization not in ("auto", "centered", "noncentered"):
            raise ValueError(f"parametrization={parametrization!r} is not one of "
                             "'auto', 'centered', 'noncentered'")
        self.data = data
        self.family = get_lag(lag)
        self.rows: LikelihoodRows = rows_from_data(data, zero_width=zero_width)
        if pooling != "partial":
            par = {}  # only partial pooling has a centred / non-centred choice
        elif parametrization == "auto":
            par = choose_parametrization(data)
        else:
            par = {key: (parametrization,) * data.n_cohorts for key in GROUPS}
        self.spec = ModelSpec(
            lag=self.family.name, pooling=pooling, priors=merge_priors(priors),
            parametrization=par, time_scale=self.rows.time_scale,
            zero_width=float(zero_width) if zero_width is not None
            else default_zero_width(data))
        self.arrays = LikelihoodArrays.from_rows(self.family, self.rows).padded()
        self._model: pm.Model | None = None

    # ------------------------------------------------------------------ building
    @property
    def pymc_model(self) -> pm.Model:
        """The PyMC model (built on first access)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    @property
    def coords(self) -> dict:
        return {"cohort": [str(c) for c in self.data.cohorts]}

    def data_values(self) -> dict:
        """The values of every ``pm.Data`` container: what a compiled model of the same
        structure needs to run on this model's data (``CompiledModel.with_data``)."""
        return {**self.arrays.named(), "time_scale": np.float64(self.spec.time_scale)}

    def _cohort_vector(self, name: str, prior_key: str, pooling: str | None = None):
        """A cohort-level parameter on the unconstrained scale, shape (n_cohorts,)."""
        p = self.spec.priors
        n = self.data.n_cohorts
        mu0, sd0 = p[prior_key]["mu"], p[prior_key]["sigma"]
        pooling = pooling or self.spec.pooling
        if pooling == "complete":
            value = pm.Normal(f"{name}_all", mu0, sd0)
            return pm.Deterministic(name, pt.ones(n) * value, dims="cohort")
        if pooling == "none":
            return pm.Normal(name, mu0, sd0, dims="cohort")
        mu = pm.Normal(f"mu_{name}", mu0, sd0)
        sigma = pm.HalfNormal(f"sigma_{name}", p[f"{prior_key}_sd"])
        centred = np.array([s == "centered" for s in self.spec.parametrization[prior_key]])
        if centred.all():
            return pm.Normal(name, mu, sigma, dims="cohort")
        if not centred.any():
            z = pm.Normal(f"{name}_offset", 0.0, 1.0, dims="cohort")
            return pm.Deterministic(name, mu + sigma * z, dims="cohort")
        idx_c, idx_n = np.flatnonzero(centred), np.flatnonzero(~centred)
        raw_c = pm.Normal(f"{name}_centered", mu, sigma, shape=len(idx_c))
        z = pm.Normal(f"{name}_offset", 0.0, 1.0, shape=len(idx_n))
        value = pt.zeros(n)
        value = pt.set_subtensor(value[idx_c], raw_c)
        value = pt.set_subtensor(value[idx_n], mu + sigma * z)
        return pm.Deterministic(name, value, dims="cohort")

    def _lag_param(self, param):
        """A lag parameter besides the location (:class:`~bayesconv.lags.LagParam`), per cohort.

        Not pooled hierarchically (see the class docstring): one independent value per cohort
        (``pooling="none"``/``"partial"``) or one for all (``"complete"``, or a ``shared``
        parameter such as the generalized gamma's ``q``). Positive parameters are sampled on
        the log scale (``log_<var>``); the parameter itself is the per-cohort variable ``var``.
        """
        pooling = "complete" if (param.shared or self.spec.pooling == "complete") else "none"
        if not param.positive:
            return self._cohort_vector(param.var, param.prior, pooling)
        raw = self._cohort_vector(f"log_{param.var}", param.prior, pooling)
        return pm.Deterministic(param.var, pt.exp(raw), dims="cohort")

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
            logit_c = self._cohort_vector("logit_rate", "logit_rate")
            log_loc = self._cohort_vector("log_lag_loc", "log_lag_loc")
            pm.Deterministic("eventual_rate", pm.math.sigmoid(logit_c), dims="cohort")
            pm.Deterministic("lag_loc", pt.exp(log_loc) * s, dims="cohort")
            lag_params = [pt.exp(log_loc)] + [self._lag_param(p) for p in self.family.extra_params]
            log_c, log1m_c = log_c_pair(logit_c, PT)
            data_vars = LikelihoodArrays(
                {key: pm.Data(LikelihoodArrays.data_name(key), v)
                 for key, v in self.arrays.items()})
            ll = total_loglik(self.family, self.rows, self._per_cell(log_c),
                              self._per_cell(log1m_c),
                              *(self._per_cell(p) for p in lag_params), xp=PT,
                              data_vars=data_vars)
            pm.Potential("loglik", ll)
        return model

    def __repr__(self) -> str:
        return (f"ConversionModel(lag={self.spec.lag!r}, pooling={self.spec.pooling!r}, "
                f"{self.data!r})")
