"""The model's default priors and how user overrides are checked and merged."""

from __future__ import annotations

import copy

__all__ = ["DEFAULT_PRIORS", "merge_priors"]

#: Default priors. Lag locations are in units of the model's ``time_scale`` (the median
#: observed conversion time), so the priors mean the same thing in any time unit.
DEFAULT_PRIORS: dict = {
    # population mean of logit(eventual rate): median 18%, 94% of the prior mass of c in about
    # (0.01, 0.79). Funnels convert well under half their units, and under censoring the prior
    # decides where on the ridge between a higher c and a longer lag the posterior sits: centred
    # at 50% it overestimated c in the weakly identified corner (validation/calibration_stress.md)
    "logit_rate": {"mu": -1.5, "sigma": 1.5},
    # between-cohort sd of logit(eventual rate): HalfNormal scale; with fewer than 6 levels
    # (of any group term) a Gamma(2) of the same mean (bayesconv.model.builder.group_sd)
    "logit_rate_sd": 1.0,
    # population mean of log(lag location / time_scale): a factor e^2 ≈ 7 per sd either way
    "log_lag_loc": {"mu": 0.0, "sigma": 2.0},
    "log_lag_loc_sd": 1.0,
    # without pooling (pooling="none"): the cohorts' log lag locations ~ Normal(that mean,
    # this sd), the sd fixed: lags of one experiment's cohorts are of one order (a factor
    # e^±2 ≈ 7 at 2 sd), so a cohort with a handful of conversions cannot trade a long lag
    # for a high eventual rate without bound; its eventual rate keeps an independent prior
    "log_lag_loc_spread": 1.0,
    # log(lag shape) of each cohort: centred on 1 (exponential), 0.14 to 7 at 2 sd
    "log_lag_shape": {"mu": 0.0, "sigma": 1.0},
    # the cohorts' log lag shapes ~ Normal(that mean, this sd), the sd fixed (with and
    # without pooling)
    "log_lag_shape_spread": 0.6,
    # generalized gamma only: q, shared by all cohorts; 0 log-normal, 1 Weibull, sigma gamma
    "lag_q": {"mu": 0.0, "sigma": 1.0},
    # --- formulas (bayesconv.model.formula). The intercept of a parameter's formula takes the
    # population prior above ("logit_rate", "log_lag_loc", "log_lag_shape", "lag_q"); then:
    # fixed effects on logit(eventual rate): an odds ratio within e^±2 (0.14 to 7) at 2 sd
    "logit_rate_effect": {"mu": 0.0, "sigma": 1.0},
    # step sd of a random walk over periods on logit(eventual rate): HalfNormal scale
    "logit_rate_rw_sd": 0.5,
    # fixed effects on log(lag location): a lag factor within e^±2 at 2 sd; walk steps
    "log_lag_loc_effect": {"mu": 0.0, "sigma": 1.0},
    "log_lag_loc_rw_sd": 0.5,
    # lag shape: fixed effects, between-group sd and walk steps on log(shape), kept small:
    # shapes are weakly identified under censoring
    "log_lag_shape_effect": {"mu": 0.0, "sigma": 0.5},
    "log_lag_shape_sd": 0.5,
    "log_lag_shape_rw_sd": 0.25,
    # generalized gamma q
    "lag_q_effect": {"mu": 0.0, "sigma": 0.5},
    "lag_q_sd": 0.5,
    "lag_q_rw_sd": 0.25,
}


def merge_priors(priors: dict | None) -> dict:
    """:data:`DEFAULT_PRIORS` with the overrides in ``priors``.

    Raises
    ------
    ValueError
        An unknown key, a Normal prior that is not ``{"mu", "sigma"}`` or has sigma <= 0, a
        HalfNormal scale <= 0.
    """
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
