"""The hierarchical cure-mixture model of time-lagged conversions, built in PyMC."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .data import ConversionData
from .lags import PT, LagFamily, get_lag
from .likelihood import (
    LikelihoodRows,
    default_zero_width,
    padded_arrays,
    rows_from_data,
    total_loglik,
    weighted_median,
)

__all__ = ["ConversionModel", "DEFAULT_PRIORS", "POOLING", "choose_parametrization"]

POOLING = ("auto", "partial", "none", "complete")

#: Default priors. Lag locations are in units of the model's ``time_scale`` (the median
#: observed conversion time), so the priors mean the same thing in any time unit.
DEFAULT_PRIORS: dict = {
    # population mean of logit(eventual rate): 94% of the prior mass of c in about (0.05, 0.95)
    "logit_rate": {"mu": 0.0, "sigma": 1.5},
    # between-cohort sd of logit(eventual rate): HalfNormal scale
    "logit_rate_sd": 1.0,
    # population mean of log(lag location / time_scale): a factor e^2 ≈ 7 per sd either way
    "log_lag_loc": {"mu": 0.0, "sigma": 2.0},
    "log_lag_loc_sd": 1.0,
    # log(lag shape) of each cohort: centred on 1 (exponential), 0.14 to 7 at 2 sd
    "log_lag_shape": {"mu": 0.0, "sigma": 1.0},
    # generalized gamma only: q, shared by all cohorts; 0 log-normal, 1 Weibull, sigma gamma
    "lag_q": {"mu": 0.0, "sigma": 1.0},
}

_GROUPS = ("logit_rate", "log_lag_loc")


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

    and estimates the between-cohort sd τ with the DerSimonian & Laird (1986) moment
    estimator. Cohort g is centred when se_g < τ. Homogeneous cohorts (τ ≈ 0) are all
    non-centred; large, distinct cohorts (the NYC complaints buckets) are centred, which there
    cuts NUTS steps per draw about tenfold. The estimates ignore censoring; they only need to
    tell "cohorts differ more than their noise" from "cohorts look alike".

    Parameters
    ----------
    data : ConversionData

    Returns
    -------
    dict mapping "logit_rate" and "log_lag_loc" to a tuple of "centered" / "noncentered" per
    cohort.
    """
    from .kaplan_meier import kaplan_meier

    km = kaplan_meier(data)
    n_g = np.bincount(data.cohort, weights=data.count, minlength=data.n_cohorts)
    d_g = np.bincount(data.cohort, weights=data.count * data.converted, minlength=data.n_cohorts)
    p = km.groupby("cohort", observed=True)["conversion"].last().to_numpy()
    p = np.clip(p, 0.5 / n_g, 1 - 0.5 / n_g)
    est_rate = np.log(p / (1 - p))
    se_rate = 1 / np.sqrt(n_g * p * (1 - p))
    est_lag = np.zeros(data.n_cohorts)
    for g in range(data.n_cohorts):
        m = (data.cohort == g) & data.converted
        if m.any():
            med = weighted_median(data.duration[m], data.count[m])
            est_lag[g] = np.log(max(med, 1e-12))
    d_safe = np.maximum(d_g, 0.25)
    se_lag = 1.25 / np.sqrt(d_safe)
    out = {}
    for key, est, se in (("logit_rate", est_rate, se_rate), ("log_lag_loc", est_lag, se_lag)):
        has = n_g > 0 if key == "logit_rate" else d_g >= 2
        tau2 = _dersimonian_laird(est[has], se[has]) if has.sum() >= 2 else 0.0
        out[key] = tuple("centered" if (h and s < np.sqrt(tau2)) else "noncentered"
                         for h, s in zip(has, se, strict=True))
    return out

def _merge_priors(priors: dict | None) -> dict:
    out = copy.deepcopy(DEFAULT_PRIORS)
    for key, value in (priors or {}).items():
        if key not in DEFAULT_PRIORS:
            raise ValueError(f"unknown prior {key!r}; known priors: {list(DEFAULT_PRIORS)}")
        if isinstance(DEFAULT_PRIORS[key], dict):
            if not isinstance(value, dict) or set(value) - {"mu", "sigma"}:
                raise ValueError(f"prior {key!r} takes a dict with keys 'mu' and 'sigma', "
                                 f"got {value!r}")
            out[key].update({k: float(v) for k, v in value.items()})
            if out[key]["sigma"] <= 0:
                raise ValueError(f"prior {key!r} needs sigma > 0, got {out[key]['sigma']}")
        else:
            if not float(value) > 0:
                raise ValueError(f"prior {key!r} is a HalfNormal scale and must be > 0, "
                                 f"got {value!r}")
            out[key] = float(value)
    return out


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a model besides the data values (stored with results)."""

    lag: str
    pooling: str
    priors: dict
    parametrization: dict  # per parameter group, per cohort: "centered" / "noncentered"
    time_scale: float
    zero_width: float


class ConversionModel:
    """Hierarchical model of eventual conversion rates and time-to-convert per cohort.

    For unit i of cohort g, with eventual conversion probability c_g and lag distribution
    F(t; m_g, k_g) (location m_g, shape k_g):

    * converted at t: log c_g + log f(t), (interval-censored: log c_g + log(F(b) − F(a)))
    * not converted by t: log(1 − c_g F(t)),

    see :mod:`bayesconv.likelihood`. With ``pooling="partial"``::

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
        Overrides of :data:`DEFAULT_PRIORS`, e.g. ``{"logit_rate": {"mu": -2, "sigma": 1}}``.
    parametrization : {"auto", "centered", "noncentered"}, default "auto"
        For partial pooling: "auto" chooses per cohort and parameter with
        :func:`choose_parametrization`: centred where a cohort's own data pin its parameter
        more tightly than cohorts differ (the non-centred form there makes NUTS take ~10×
        more steps), non-centred elsewhere (which avoids funnel divergences).
    zero_width : float, optional
        Width of the first bin, in the data's time unit, into which conversions at duration 0
        are placed (default: the smallest positive duration in the data).

    Attributes
    ----------
    pymc_model : pymc.Model
        The PyMC model, with a ``cohort`` coordinate; extend it at will.
    spec : ModelSpec

    Raises
    ------
    ValueError
        Unknown lag, pooling, parametrization or prior keys; priors out of range.
    """

    def __init__(self, data: ConversionData, *, lag: str | LagFamily = "gamma",
                 pooling: str = "auto", priors: dict | None = None,
                 parametrization: str = "auto", zero_width: float | None = None):
        if not isinstance(data, ConversionData):
            raise TypeError("data must be a ConversionData from bayesconv.prepare(), "
                            f"got {type(data).__name__}")
        if pooling not in POOLING:
            raise ValueError(f"pooling={pooling!r} is not one of {POOLING}")
        if parametrization not in ("auto", "centered", "noncentered"):
            raise ValueError(f"parametrization={parametrization!r} is not one of "
                             "'auto', 'centered', 'noncentered'")
        self.data = data
        self.family = get_lag(lag)
        if pooling == "auto":
            pooling = "partial" if data.n_cohorts >= 3 else "none"
        self.rows: LikelihoodRows = rows_from_data(data, zero_width=zero_width)
        if pooling != "partial":
            par = {}  # only partial pooling has a centred / non-centred choice
        elif parametrization == "auto":
            par = choose_parametrization(data)
        else:
            par = {key: (parametrization,) * data.n_cohorts for key in _GROUPS}
        self.spec = ModelSpec(
            lag=self.family.name, pooling=pooling, priors=_merge_priors(priors),
            parametrization=par, time_scale=self.rows.time_scale,
            zero_width=float(zero_width) if zero_width is not None
            else default_zero_width(data))
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

    def _build(self) -> pm.Model:
        with pm.Model(coords=self.coords) as model:
            # a Data container, so a cached compiled model can be reused with another scale
            s = pm.Data("time_scale", np.float64(self.spec.time_scale))
            logit_c = self._cohort_vector("logit_rate", "logit_rate")
            log_loc = self._cohort_vector("log_lag_loc", "log_lag_loc")
            pm.Deterministic("eventual_rate", pm.math.sigmoid(logit_c), dims="cohort")
            pm.Deterministic("lag_loc", pt.exp(log_loc) * s, dims="cohort")
            lag_params = [pt.exp(log_loc)] + [self._lag_param(p) for p in self.family.extra_params]
            log_c = -pt.softplus(-logit_c)
            log1m_c = -pt.softplus(logit_c)
            arrays = padded_arrays(self.family, self.rows)
            data_vars = {k: pm.Data(f"lik_{k}", v) for k, v in arrays.items()}
            ll = total_loglik(self.family, self.rows, log_c, log1m_c, *lag_params, xp=PT,
                              data_vars=data_vars)
            pm.Potential("loglik", ll)
        return model

    # ------------------------------------------------------------------ fitting
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
            Same seed, same sampler, same data → identical draws.
        sampler : {"auto", "nutpie", "pymc"}, default "auto"
            "auto" uses nutpie when it is installed (it is a dependency), else PyMC's NUTS.
        progressbar : bool, default True
        method : {"nuts", "map"}, default "nuts"
            "map" finds the posterior mode (a fast point estimate, one draw, no intervals
            worth the name) and returns the same result interface.
        cores : int, optional
            Chains run in parallel on this many cores (default: all, up to ``chains``).
        target_accept : float, optional
            NUTS target acceptance rate. Default 0.9 with partial pooling (a smaller step
            size keeps hierarchical fits free of divergences where cohorts of very different
            sizes meet a between-cohort scale near zero), 0.8 otherwise.
        sampler_kwargs : dict, optional
            Further keyword arguments for ``nutpie.sample`` or ``pymc.sample``. For example
            ``{"adaptation": "low_rank"}`` gives nutpie a diagonal-plus-low-rank mass matrix,
            which absorbs the correlation between a cohort's eventual rate and its lag
            (NYC demo: 15 → 10 leapfrog steps per draw at the same ESS) but produced more
            divergences than the default diagonal one on hierarchical data with many tiny
            cohorts, so it is not the default.

        Returns
        -------
        ConversionResult

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, bulk or tail ESS < 400, or any divergence.
        """
        from .fit import fit_model

        if target_accept is None:
            target_accept = 0.9 if self.spec.pooling == "partial" else 0.8
        return fit_model(self, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                         sampler=sampler, progressbar=progressbar, method=method, cores=cores,
                         target_accept=target_accept, sampler_kwargs=sampler_kwargs)

    def sample_prior_predictive(self, draws: int = 500, random_seed=None):
        """Draws of every cohort's parameters from the priors alone (no data).

        Uses ``pymc.sample_prior_predictive`` on :attr:`pymc_model`; see
        :func:`bayesconv.checks.sample_prior`.

        Returns
        -------
        xarray.Dataset with dims (chain = 1, draw, cohort): ``eventual_rate``, ``lag_loc``
        (data's time unit), ``lag_shape``, ``median_lag`` (data's time unit), ...
        """
        from .checks import sample_prior

        return sample_prior(self, draws=draws, random_seed=random_seed)

    def plot_prior_curves(self, ax=None, **kwargs):
        """Prior draws of the conversion curve c·F(t) in the data's time unit.

        See :func:`bayesconv.checks.plot_prior_curves` (keyword arguments). Returns the Axes.
        """
        from .checks import plot_prior_curves

        return plot_prior_curves(self, ax, **kwargs)

    def __repr__(self) -> str:
        return (f"ConversionModel(lag={self.spec.lag!r}, pooling={self.spec.pooling!r}, "
                f"{self.data!r})")
