"""When will we know? Preposterior projections of a readout's decision, and run-length plans.

:func:`project` answers "how many more days until the decision rule fires?" from today's
posterior. Each simulation draws one set of parameters from the posterior (so the projection
carries today's uncertainty), simulates the future of the experiment under it, and refits the
model on what would be known at each future date:

* units already enrolled and not converted keep maturing from their current ages: a unit of
  age a converts in (a, a + Δ] with probability c·(F(a + Δ) − F(a)) / (1 − c·F(a));
* new units arrive at ``new_units_per_day`` per arm (None: each arm's enrollment over the last
  7 days; 0: enrollment has closed), each converting with probability c after a lag from F;
* times are recorded as the data record them (to their resolution δ, e.g. day-floored dates,
  read as interval-censored), so the refit sees what a real refit would.

The refit of each simulated data set is, by default, the Laplace approximation
(:mod:`bayesconv.inference.laplace`, the compiled model reused with the new data: a few
hundredths of a second per refit), with a NUTS refit where it finds no proper mode (a ridge
between an eventual rate and its lag), or a NUTS refit throughout (``method="nuts"``, the
compiled model reused too; seconds per refit). At each date the expected-loss rule
(:mod:`bayesconv.readout.decision`) is applied; the share of simulations in which it fires is
the predictive probability of a decision by then, the "preposterior" analysis of Raiffa & Schlaifer (1961, *Applied Statistical Decision
Theory*) and the predictive probability of success of Bayesian trial design (Spiegelhalter,
Abrams & Myles 2004, *Bayesian Approaches to Clinical Trials and Health-Care Evaluation*,
§6.5). "Days left" is the median over simulations of the first projected date at which the
rule fires.

:func:`plan` runs the same machinery before launch, from a baseline (last quarter's cohorts, a
prior fit) and an assumed lift.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from ..data.units import TIME_UNITS, amount, unit_name
from ..errors import DataNotSavedError
from ..inference.laplace import as_posterior, laplace_fitter
from ..inference.model import ConversionModel
from ..plotting import plot_projection
from ..posterior.cells import pooled_mix, row_parameters
from ..posterior.diagnostics import hdi
from ..posterior.result import ConversionResult
from .compare import Readout, check_rope, compare, marginal_values
from .decision import ALPHA, EFFECT_SCALE, Decision, apply_rule, check_threshold
from .metrics import METRICS

__all__ = ["DecisionRefitter", "Projection", "SimulatedFuture", "TimeRecorder", "plan", "project"]

#: Days of recent enrollment that ``new_units_per_day=None`` averages over.
RECENT_DAYS = 7.0
#: Quantiles reported for P(better) and the width of the lift's HDI.
QUANTILES = (0.05, 0.5, 0.95)
_METHODS = ("laplace", "nuts")


# ---------------------------------------------------------------------------- inputs
def _check_settings(who: str, result, threshold, metric, horizon, method, n_sims, draws):
    """The arguments :func:`project` and :func:`plan` share, checked before any work, with
    errors that name ``who``. Returns the threshold as a float."""
    if not isinstance(result, ConversionResult):
        raise TypeError(f"{who} needs a ConversionResult (a fit with posterior draws), got "
                        f"{type(result).__name__}")
    if not result.has_draws:
        raise ValueError(f"{who} simulates from posterior draws, but this result has none to "
                         f"speak of (sampler={result.sampler!r}, kind={result.kind!r}, e.g. a "
                         "MAP fit): fit with method='nuts' (or 'laplace')")
    if method not in _METHODS:
        raise ValueError(f"method={method!r} is not one of {list(_METHODS)}")
    if not (isinstance(n_sims, int | np.integer) and n_sims >= 1):
        raise ValueError(f"n_sims must be a positive integer, got {n_sims!r}")
    if not (isinstance(draws, int | np.integer) and draws >= 100):
        raise ValueError(f"draws must be an integer >= 100, got {draws!r}")
    if metric is not None and metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {list(METRICS)}")
    if metric is not None and METRICS[metric].needs_horizon and horizon is None:
        raise ValueError(f"metric {metric!r} needs {who}(..., horizon=...), in the data's time "
                         "unit")
    return check_threshold(threshold, None if metric is None else METRICS[metric].kind)


def _check_days(days) -> np.ndarray:
    try:
        arr = np.unique(np.asarray(list(np.atleast_1d(days)), dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"days must be numbers of days > 0, got {days!r}") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)) or arr[0] <= 0:
        raise ValueError(f"days must be finite numbers of days > 0, got {days!r}")
    return arr


def _enrollment(data: ConversionData, new_units_per_day, arms, day: float) -> np.ndarray:
    """New units per day per cell: ``new_units_per_day`` split over each arm's cells by their
    current units, or each cell's enrollment over the last :data:`RECENT_DAYS` days."""
    units = np.bincount(data.cell, weights=data.count, minlength=data.n_cells)
    arm_of_cell = np.array([str(c) for c in data.cells[data.cohort_column]])
    labels = [str(a) for a in arms]
    in_arms = np.isin(arm_of_cell, labels)
    if new_units_per_day is None:
        if data.followup is None:
            raise ValueError("new_units_per_day=None reads each arm's recent enrollment from "
                             "the units' creation dates, which the duration/event layout does "
                             "not have; pass a number of new units per day and arm (0: "
                             "enrollment has closed)")
        fu = data.followup
        age = fu["age"].to_numpy(float)
        window = min(RECENT_DAYS * day, float(age.max())) if len(age) else 0.0
        if not window > 0:
            raise ValueError("every unit has age 0, so the recent enrollment rate is unknown; "
                             "pass new_units_per_day")
        recent = np.bincount(fu["cell"].to_numpy(), weights=fu["count"].to_numpy() * (
            age <= window), minlength=data.n_cells)
        return np.where(in_arms, recent / (window / day), 0.0)
    if isinstance(new_units_per_day, dict):
        rate = {str(k): v for k, v in new_units_per_day.items()}
        missing = [lab for lab in labels if lab not in rate]
        unknown = [k for k in rate if k not in labels]
        if missing or unknown:
            wrong = " and ".join(part for part, bad in (
                (f"has no rate for the arms {missing}", missing),
                (f"has rates for arms that are not compared {unknown}", unknown)) if bad)
            raise ValueError(f"new_units_per_day {wrong}; give one per compared arm "
                             f"({labels}), or one number for all")
    else:
        rate = dict.fromkeys(labels, new_units_per_day)
    out = np.zeros(data.n_cells)
    for label in labels:
        r = rate[label]
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not np.isfinite(r) \
                or r < 0:
            raise ValueError(f"new_units_per_day must be a number >= 0 per arm (0: enrollment "
                             f"has closed), got {r!r} for {label!r}")
        cells = arm_of_cell == label
        share = units[cells] / units[cells].sum()
        out[cells] = float(r) * share
    return out


# ---------------------------------------------------------------------------- simulation
class TimeRecorder:
    """Durations as the data record them: on the resolution grid δ (creation and conversion
    floored, or for the duration/event layout the duration rounded), in explicit bins of
    ``bin_width``, or exact."""

    def __init__(self, data: ConversionData):
        meta = data.meta
        self.delta = float(meta["resolution"]) if meta.get("resolution_read") == "interval" \
            else None
        self.durations_layout = meta.get("layout") == "durations"
        self.bin_width = meta.get("bin_width")

    def offsets(self, rng, n: int) -> np.ndarray:
        """Where within its recorded δ-bin each unit was really created (0 if exact)."""
        if self.delta is None or self.durations_layout:
            return np.zeros(n)
        return rng.uniform(0.0, self.delta, n)

    def conversion(self, created_true: np.ndarray, converted_true: np.ndarray):
        """(lower, duration) rows of conversions at these true times (relative to a grid
        point, e.g. today's midnight)."""
        lag = converted_true - created_true
        if self.delta is not None:
            d = self.delta
            if self.durations_layout:
                rec = np.rint(lag / d) * d
            else:
                rec = (np.floor(converted_true / d + 1e-12) - np.floor(created_true / d + 1e-12)
                       ) * d
            return rec, rec
        if self.bin_width:
            w = float(self.bin_width)
            lower = np.floor(lag / w) * w
            return lower, lower + w
        return lag, lag

    def created(self, created_true: np.ndarray) -> np.ndarray:
        """Recorded creation times (floored to δ)."""
        if self.delta is None or self.durations_layout:
            return created_true
        return np.floor(created_true / self.delta + 1e-12) * self.delta


def _aggregate(cell, duration, lower, converted):
    """Identical (cell, duration, lower, converted) units as one row with a count."""
    if cell.size == 0:
        return cell, duration, lower, converted, np.zeros(0, np.int64)
    order = np.lexsort((converted, lower, duration, cell))
    cols = [a[order] for a in (cell, duration, lower, converted)]
    change = np.ones(cell.size, bool)
    change[1:] = np.any([c[1:] != c[:-1] for c in cols], axis=0)
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, cell.size))
    return (*(c[starts] for c in cols), counts.astype(np.int64))


class SimulatedFuture:
    """One simulated future of the experiment under one draw of the parameters (per cell:
    ``rate`` and the lag parameters ``lag``), read at any time up to ``horizon_t`` from now
    (all times in the data's time unit)."""

    #: New units of exactly timed data are created at the middle of one of this many slots
    #: per day, so that their censoring ages aggregate (the lag itself stays exact).
    SLOTS_PER_DAY = 24

    def __init__(self, data: ConversionData, rate, lag, family, enroll, horizon_t, day, rng,
                 recorder: TimeRecorder):
        self.data = data
        # enrolled units not converted yet: one row per (cell, age) of the data
        at_risk = np.flatnonzero(~data.converted)
        self.risk_rows = at_risk
        unit_row = np.repeat(np.arange(at_risk.size), data.count[at_risk])
        cell = data.cell[at_risk][unit_row]
        age = data.duration[at_risk][unit_row]
        off = recorder.offsets(rng, cell.size)
        true_age = np.maximum(age - off, 0.0)
        c = rate[cell]
        params = [p[cell] for p in lag]
        f_now = np.exp(family.logcdf(true_age, *params))
        # P(converts eventually | not converted by its age) = c (1 − F(a)) / (1 − c F(a))
        p_ever = c * (1 - f_now) / np.maximum(1 - c * f_now, 1e-300)
        conv = np.flatnonzero(rng.random(cell.size) < p_ever)
        u = f_now[conv] + rng.random(conv.size) * (1 - f_now[conv])
        lag_t = family.quantile(np.clip(u, 0.0, 1 - 1e-16), *[p[conv] for p in params])
        created = -age[conv] + off[conv]           # relative to now
        when = created + lag_t
        keep = when <= horizon_t
        conv, created, when = conv[keep], created[keep], when[keep]
        self.risk_unit_row, self.risk_when, self.risk_cell = unit_row[conv], when, cell[conv]
        self.risk_lower, self.risk_dur = recorder.conversion(created, when)
        # new units: per cell and day, spread within the day
        n_days = int(np.ceil(horizon_t / day - 1e-9))
        cells, made = [], []
        for g in np.flatnonzero(enroll > 0):
            per_day = np.diff(np.floor(enroll[g] * np.arange(n_days + 1) + 0.5)).astype(int)
            k = np.repeat(np.arange(n_days), per_day)
            u = rng.random(k.size)
            if recorder.delta is None:
                u = (np.floor(u * self.SLOTS_PER_DAY) + 0.5) / self.SLOTS_PER_DAY
            made.append((k + u) * day)
            cells.append(np.full(k.size, g))
        self.new_cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)
        self.new_created = np.concatenate(made) if made else np.zeros(0)
        self.new_created_rec = recorder.created(self.new_created)
        n = self.new_cell.size
        conv = rng.random(n) < rate[self.new_cell]
        self.new_when = np.full(n, np.inf)
        self.new_when[conv] = self.new_created[conv] + family.rvs(
            rng, *[p[self.new_cell[conv]] for p in lag])
        self.new_lower = np.full(n, np.nan)
        self.new_dur = np.full(n, np.nan)
        self.new_lower[conv], self.new_dur[conv] = recorder.conversion(
            self.new_created[conv], self.new_when[conv])

    def at(self, t: float) -> ConversionData:
        """What would be known ``t`` time units from now."""
        d = self.data
        past = np.flatnonzero(d.converted)
        risk_conv = self.risk_when <= t
        still = d.count[self.risk_rows] - np.bincount(self.risk_unit_row[risk_conv],
                                                      minlength=self.risk_rows.size)
        cens_rows = self.risk_rows[still > 0]
        new_in = self.new_created < t
        new_conv = new_in & (self.new_when <= t)
        new_cens = new_in & ~new_conv
        agg = _aggregate(
            np.concatenate([self.risk_cell[risk_conv], self.new_cell[new_conv],
                            self.new_cell[new_cens]]),
            np.concatenate([self.risk_dur[risk_conv], self.new_dur[new_conv],
                            t - self.new_created_rec[new_cens]]),
            np.concatenate([self.risk_lower[risk_conv], self.new_lower[new_conv],
                            t - self.new_created_rec[new_cens]]),
            np.concatenate([np.ones(risk_conv.sum() + new_conv.sum(), bool),
                            np.zeros(new_cens.sum(), bool)]))
        cell = np.concatenate([d.cell[past], d.cell[cens_rows], agg[0]])
        dur = np.concatenate([d.duration[past], d.duration[cens_rows] + t, agg[1]])
        lower = np.concatenate([d.lower[past], d.duration[cens_rows] + t, agg[2]])
        converted = np.concatenate([np.ones(past.size, bool), np.zeros(cens_rows.size, bool),
                                    agg[3]])
        count = np.concatenate([d.count[past], still[still > 0], agg[4]])
        followup = None
        if d.followup is not None:
            fu = d.followup
            new_age = t - self.new_created_rec[new_in]
            fu_new = _aggregate(self.new_cell[new_in], new_age, new_age,
                                np.zeros(new_age.size, bool))
            followup = pd.DataFrame({
                "cell": np.concatenate([fu["cell"].to_numpy(), fu_new[0]]),
                "age": np.concatenate([fu["age"].to_numpy(float) + t, fu_new[1]]),
                "count": np.concatenate([fu["count"].to_numpy(), fu_new[4]])})
        observed = d.observed_until
        if isinstance(observed, pd.Timestamp):
            observed = observed + pd.to_timedelta(float(t) * TIME_UNITS[d.time_unit], unit="s")
        return ConversionData(
            cell=cell, cells=d.cells, duration=dur, lower=lower, converted=converted,
            count=count, time_unit=d.time_unit, observed_until=observed,
            cohort_name=d.cohort_name, followup=followup, meta=d.meta)


# ---------------------------------------------------------------------------- refits
class DecisionRefitter:
    """Refit simulated data sets of one structure and read the decision off each."""

    def __init__(self, spec, arms, metric, horizon, threshold, rope, higher_is_better, ci_prob,
                 method, draws, rng, alpha=ALPHA, effect_scale=EFFECT_SCALE):
        self.alpha, self.effect_scale = alpha, effect_scale
        self.spec, self.arms, self.metric = spec, list(arms), metric
        self.horizon, self.threshold, self.rope = horizon, threshold, rope
        self.sign = 1.0 if METRICS[metric].higher_is_better(higher_is_better) else -1.0
        self.ci_prob, self.method, self.draws, self.rng = ci_prob, method, draws, rng
        self.fitter = None
        self.start = None
        self.fallbacks = 0   # Laplace refits without a proper mode, refitted with NUTS
        self.warned = 0      # NUTS refits with a ConvergenceWarning

    def model(self, data):
        s = self.spec
        return ConversionModel(data, lag=s.lag, pooling=s.pooling, priors=s.priors,
                               formula=s.formula or None)

    def posterior(self, model) -> xr.Dataset:
        if self.method == "laplace":
            # per structure (a row kind absent from early data changes it), cached
            self.fitter = laplace_fitter(model)
            try:
                draws, mode, info = self.fitter.fit(model, self.draws, self.rng, self.start)
            except np.linalg.LinAlgError:    # the Hessian is not positive definite
                info = {"converged": False}
            if info["converged"]:
                self.start = mode
                return as_posterior(model, draws, self.fitter.dims)
            # no proper mode (a ridge between the eventual rate and the lag, say): the
            # Gaussian would misstate this posterior, so NUTS refits this data set
            self.fallbacks += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = model.fit(draws=max(self.draws // 4, 100), chains=4, progressbar=False,
                            random_seed=int(self.rng.integers(2**31)))
        self.warned += any(w.category.__name__ == "ConvergenceWarning" for w in caught)
        return res.posterior

    def read(self, data) -> dict:
        """The rule's outcome on ``data``: action, P(better), min loss, lift HDI width."""
        model = self.model(data)
        post = self.posterior(model)
        (_, combos, weights), = pooled_mix(data, self.arms)
        value = marginal_values(post, model.spec, model.family, data, self.arms, combos,
                                weights, [self.metric], self.horizon).isel(metric=0)
        v = value.transpose("arm", "chain", "draw").values.reshape(len(self.arms), -1)
        gain = self.sign * (v[1:] - v[0])
        equivalent = False
        diff = value.isel(arm=slice(1, None)) - value.isel(arm=0)
        if self.rope is not None and METRICS[self.metric].kind == "rate":
            h = hdi(diff, self.ci_prob)
            equivalent = bool(((h.sel(ci_bound="lower") >= self.rope[0])
                               & (h.sel(ci_bound="upper") <= self.rope[1])).all())
        chosen, losses, _ = apply_rule(self.sign * v, self.threshold, alpha=self.alpha,
                                       effect_scale=self.effect_scale, equivalent=equivalent)
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = value.isel(arm=1) / value.isel(arm=0) - 1
        lh = hdi(lift, self.ci_prob)
        return {"action": "wait" if chosen is None else "keep" if chosen == 0 else "ship",
                "arm": None if chosen is None else str(self.arms[chosen]),
                "prob_better": float((gain[0] > 0).mean()),
                "loss_min": float(losses.min()),
                "lift_hdi_width": float(lh.sel(ci_bound="upper") - lh.sel(ci_bound="lower"))}


def _run(make_future, n_draws, n_sims, days, day, refit, rng, progressbar, what, t_start):
    """``n_sims`` futures, each from a random posterior draw (``make_future(draw index)``),
    read by ``refit`` at each of ``days``: the rows of :attr:`Projection.sims`."""
    rows = []
    for s, j in enumerate(rng.integers(n_draws, size=n_sims)):
        future = make_future(j)
        for d in days:
            rows.append({"sim": s, "day": float(d), **refit.read(future.at(d * day))})
        if progressbar and (s + 1) % max(1, n_sims // 10) == 0:
            print(f"bayesconv: {s + 1} of {n_sims} {what} "
                  f"({time.perf_counter() - t_start:.0f} s)", flush=True)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- public
def project(result, treatment, control, days=(3, 7, 14, 28), *, new_units_per_day=None,
            threshold: float, metric: str | None = None, horizon: float | None = None,
            rope=None, higher_is_better: bool = True, ci_prob: float = 0.94,
            alpha: float | None = ALPHA, effect_scale: float = EFFECT_SCALE,
            n_sims: int = 200, draws: int = 1000, method: str = "laplace",
            random_seed=None, progressbar: bool = False) -> Projection:
    """Project the readout's decision forward: the probability of a decision by each future day.

    Parameters
    ----------
    result : ConversionResult
        A posterior with draws and its data (saved with ``include_data=True``), with
        creation dates (or ``new_units_per_day`` given).
    treatment, control : labels
        Arms, as in :func:`bayesconv.compare` (one treatment arm).
    days : sequence of float, default (3, 7, 14, 28)
        Future dates, in **calendar days** from the data's observation date (whatever the
        data's time unit; a week is 7).
    new_units_per_day : float, dict or None, default None
        New units per calendar day and arm (a dict: per arm label). None: each arm's
        enrollment over the last 7 days (the ages in ``result.data.followup``); 0:
        enrollment has closed, only the enrolled units mature. New units take the arm's
        current mix of cells (covariates).
    threshold : float
        Threshold of caring of the expected-loss rule, > 0, in the metric's unit (rates: 0.002
        = 0.2 percentage points).
    metric : str, optional
        A key of :data:`bayesconv.readout.METRICS`; "by_horizon" needs ``horizon``. Default:
        what :meth:`bayesconv.Readout.decision` decides on, the eventual rate, or the rate by
        ``horizon`` where an arm's eventual rate is weakly identified.
    horizon : float, optional
        In the data's time unit.
    rope : float or (float, float), optional
        As in :func:`bayesconv.compare`: stop and keep the control when the difference's HDI
        lies inside it.
    higher_is_better : bool, default True
        As in :func:`bayesconv.compare` (False where converting is bad, e.g. an arrest or a
        churn): pass the same here as there.
    ci_prob : float, default 0.94
        HDI mass (for the lift's HDI width and the ROPE).
    alpha, effect_scale
        The rule's bound on ever shipping a treatment that is no better, and the scale of its
        Bayes factor's alternative (:meth:`bayesconv.Readout.decision`).
    n_sims : int, default 200
        Simulated futures (each a posterior draw); the Monte Carlo standard error of a
        probability p is √(p(1 − p)/n_sims), at most 0.035 at 200.
    draws : int, default 1000
        Posterior draws per refit.
    method : {"laplace", "nuts"}, default "laplace"
        How each simulated data set is refitted: the Laplace approximation (fast; validated
        against NUTS in ``validation/projection.md``; NUTS where it finds no proper mode,
        counted in ``settings["nuts_fallbacks"]``) or NUTS (4 chains of ``draws / 4``; slow,
        the reference).
    random_seed : int, optional
    progressbar : bool, default False

    Returns
    -------
    Projection
        :meth:`Projection.to_frame` (per day: P(decision), P(ship), P(keep), quantiles of
        P(better) and of the lift's HDI width, the expected loss), :attr:`Projection.days_left`,
        :attr:`Projection.decision` (today's, with the days left), :meth:`Projection.plot`.

    Raises
    ------
    TypeError
        ``result`` is not a ConversionResult.
    ValueError
        Bad arms, days, threshold, metric, ``new_units_per_day``, ``n_sims`` or ``method``; a
        result without draws or without its data.

    Notes
    -----
    Units not converted are assumed to stay under observation (with a per-unit observation
    end, units lost to follow-up are projected as if they were still followed). The
    simulation uses the model's own assumptions (the lag family, constant eventual rates over
    signup time unless a formula says otherwise), so the projection is as good as the model's
    fit; the posterior predictive checks (:meth:`ConversionResult.plot_ppc_km`) are the place
    to look first. It is a preposterior under the model's priors too: where they are much
    wider than the truth, P(decision) is off. Long lags that a short follow-up cannot yet rule
    out make it too low (``validation/projection.md``: 0.28 predicted against 75% decided a
    week later, for lag means of 4.5–6 days seen for 7 days); lifts far larger than real ones
    make it too high. With truths drawn from the priors it is fitted with (informed priors on
    the control rate, the arm effect through a ``formula`` and the lag shape; 200 simulated
    experiments) it matches: 0.29 predicted against 28% decided 3 days ahead, 0.47 against 54%
    7 days ahead, with the lowest bin of predictions (mean 0.06) too low (13% decided).
    """
    t_start = time.perf_counter()
    threshold = _check_settings("project", result, threshold, metric, horizon, method, n_sims,
                                draws)
    ro = compare(result, treatment, control, horizon=horizon, ci_prob=ci_prob, rope=rope,
                 higher_is_better=higher_is_better,
                 metrics=None if metric is None else [metric], threshold=threshold)
    if metric is None:      # as Readout.decision: the rate by the horizon where the eventual
        metric = ro.lead    # rate is weakly identified
        threshold = check_threshold(threshold, METRICS[metric].kind)
    if len(ro.treatments) != 1:
        raise ValueError("project compares one treatment arm with the control; got "
                         f"{ro.treatments!r}")
    data = result.data
    if not isinstance(data, ConversionData):
        raise DataNotSavedError("project needs the result's data (save it with "
                                "include_data=True)")
    days = _check_days(days)
    day = 86400.0 / TIME_UNITS[data.time_unit]
    arms = [ro.control, *ro.treatments]
    enroll = _enrollment(data, new_units_per_day, arms, day)
    today = ro.decision(metric=metric, alpha=alpha, effect_scale=effect_scale)
    rng = np.random.default_rng(random_seed)
    post = result.posterior
    rate, lag = row_parameters(post, result.spec, result.family, data, data.cells)
    rate = rate.values.reshape(-1, data.n_cells)
    lag = [x.values.reshape(-1, data.n_cells) for x in lag]
    recorder = TimeRecorder(data)
    refit = DecisionRefitter(result.spec, arms, metric, ro.horizon, threshold, ro.rope,
                             higher_is_better, ci_prob, method, draws, rng, alpha,
                             effect_scale)
    sims = _run(lambda j: SimulatedFuture(data, rate[j], [x[j] for x in lag], result.family,
                                          enroll, days[-1] * day, day, rng, recorder),
                rate.shape[0], n_sims, days, day, refit, rng, progressbar, "projected futures",
                t_start)
    settings = {"treatment": ro.treatments[0], "control": ro.control, "metric": metric,
                "threshold": threshold, "horizon": ro.horizon, "time_unit": data.time_unit,
                "method": method, "n_sims": n_sims, "new_units_per_day": new_units_per_day,
                "enrollment_per_day": {str(a): float(enroll[np.array(
                    [str(c) for c in data.cells[data.cohort_column]]) == str(a)].sum())
                    for a in arms},
                "nuts_fallbacks": refit.fallbacks, "warned_refits": refit.warned,
                "seconds": time.perf_counter() - t_start}
    return Projection(sims, today, ro, settings)


def plan(baseline, *, lift: float, new_units_per_day: float, days=(7, 14, 21, 28),
         threshold: float, arm=None, metric: str = "eventual", horizon: float | None = None,
         rope=None, higher_is_better: bool = True, ci_prob: float = 0.94,
         alpha: float | None = ALPHA, effect_scale: float = EFFECT_SCALE, n_sims: int = 200,
         draws: int = 1000, method: str = "laplace", random_seed=None,
         progressbar: bool = False) -> Projection:
    """Before launch: the probability that the decision rule fires by each day of a new test.

    A new experiment with a control arm like ``baseline`` and a treatment whose eventual rate
    is ``(1 + lift)`` times the control's (the lag unchanged), both enrolling
    ``new_units_per_day`` from day 0, is simulated from the baseline posterior and read out by
    :func:`project`'s machinery at each of ``days``.

    Parameters
    ----------
    baseline : ConversionResult
        A fit of past data (last quarter's cohorts, or ``ConversionModel(...).fit()`` on a
        pilot), or a prior result (:func:`bayesconv.inference.prior_result`); its posterior
        draws of ``arm`` are the control's parameters.
    lift : float
        Relative lift of the treatment's eventual rate (0.10 = +10%; 0 simulates an A/A test,
        for the false-decision rate). The treatment's rate is capped at 1.
    new_units_per_day : float
        Per arm and calendar day, > 0.
    days : sequence of float, default (7, 14, 21, 28)
        Calendar days after launch.
    threshold, metric, horizon, rope, higher_is_better, ci_prob, alpha, effect_scale, n_sims,
    draws, method, random_seed, progressbar
        As in :func:`project`.
    arm : label, optional
        The baseline cohort to use (default: the one with the most units).

    Returns
    -------
    Projection
        As from :func:`project` (``decision`` is None: nothing is known before launch).

    Raises
    ------
    TypeError, ValueError
        As :func:`project`; ``lift`` <= -1; ``new_units_per_day`` not > 0; an unknown ``arm``.
    """
    if metric is None:
        raise ValueError(f"metric must be one of {list(METRICS)}, got None")
    threshold = _check_settings("plan", baseline, threshold, metric, horizon, method, n_sims,
                                draws)
    if isinstance(lift, bool) or not isinstance(lift, numbers.Real) or not lift > -1:
        raise ValueError(f"lift must be a number > -1 (0.10 = +10%), got {lift!r}")
    if lift > 1:
        warnings.warn(f"lift={lift!r} is a relative lift of {lift:+.0%}: lifts are fractions "
                      "(0.10 = +10%); pass 0.10 if a 10% lift was meant", UserWarning,
                      stacklevel=2)
    if isinstance(new_units_per_day, bool) or not isinstance(new_units_per_day, numbers.Real) \
            or not new_units_per_day > 0:
        raise ValueError(f"new_units_per_day must be a number > 0, got {new_units_per_day!r}")
    t_start = time.perf_counter()
    data0 = baseline.data
    if not isinstance(data0, ConversionData):
        raise DataNotSavedError("plan needs the baseline's data (save it with "
                                "include_data=True)")
    units = pd.Series(np.bincount(data0.cohort, weights=data0.count,
                                  minlength=data0.n_cohorts), index=list(data0.cohorts))
    if arm is None:
        arm = units.idxmax()
    matches = [c for c in data0.cohorts if str(c) == str(arm)]
    if not matches:
        raise ValueError(f"arm {arm!r} is not a cohort of the baseline; cohorts: "
                         f"{list(data0.cohorts)}")
    arm = matches[0]
    days = _check_days(days)
    day = 86400.0 / TIME_UNITS[data0.time_unit]
    rng = np.random.default_rng(random_seed)
    column = data0.cohort_column
    # the baseline arm's parameters for the control ("A") and the treatment ("B")
    cells = pd.DataFrame({column: pd.Categorical(["A", "B"], categories=["A", "B"])})
    base_rows = pd.DataFrame({column: pd.Categorical([arm], categories=list(data0.cohorts))})
    rate, lag = row_parameters(baseline.posterior, baseline.spec, baseline.family, data0,
                               base_rows)
    rate = rate.values.reshape(-1)
    lag = [x.values.reshape(-1) for x in lag]
    empty = ConversionData(cell=np.zeros(0, np.int64), cells=cells, duration=np.zeros(0),
                           lower=np.zeros(0), converted=np.zeros(0, bool),
                           count=np.zeros(0, np.int64), time_unit=data0.time_unit,
                           observed_until=None, cohort_name=column,
                           followup=pd.DataFrame({"cell": np.zeros(0, np.int64),
                                                  "age": np.zeros(0),
                                                  "count": np.zeros(0, np.int64)}),
                           meta=data0.meta)
    recorder = TimeRecorder(data0)
    spec = baseline.spec
    if spec.formula:
        raise ValueError("plan simulates a two-arm test from the baseline arm's parameters; "
                         "a baseline fitted with a formula is not supported yet: fit the "
                         "baseline cohorts without one")
    over = float(np.mean(rate * (1 + lift) > 1))
    if over > 0:
        warnings.warn(f"with lift={lift:g}, the treatment's eventual rate would exceed 1 in "
                      f"{over:.1%} of the baseline's draws; it is capped at 1 there",
                      UserWarning, stacklevel=2)
    enroll = np.full(2, float(new_units_per_day))
    # the refits use the baseline's model choices on the new test's two arms, with the
    # pooling two arms get ("auto": independent eventual rates, tied lags)
    refit = DecisionRefitter(dataclasses.replace(spec, pooling="auto"), ["A", "B"], metric,
                             horizon, threshold,
                             check_rope(rope), higher_is_better,
                             ci_prob, method, draws, rng, alpha, effect_scale)
    sims = _run(lambda j: SimulatedFuture(
        empty, np.array([rate[j], min(rate[j] * (1 + lift), 1.0)]),
        [np.array([x[j], x[j]]) for x in lag], baseline.family, enroll, days[-1] * day, day,
        rng, recorder), rate.size, n_sims, days, day, refit, rng, progressbar, "planned tests",
        t_start)
    settings = {"treatment": "B", "control": "A", "metric": metric, "threshold": threshold,
                "horizon": horizon, "time_unit": data0.time_unit, "method": method,
                "n_sims": n_sims, "lift": float(lift),
                "new_units_per_day": float(new_units_per_day), "baseline_arm": arm,
                "enrollment_per_day": {"A": float(new_units_per_day),
                                       "B": float(new_units_per_day)},
                "nuts_fallbacks": refit.fallbacks, "warned_refits": refit.warned,
                "seconds": time.perf_counter() - t_start}
    return Projection(sims, None, None, settings)


class Projection:
    """The result of :func:`project` or :func:`plan`.

    Attributes
    ----------
    sims : DataFrame
        One row per simulation × day: ``sim``, ``day``, ``action`` ("ship", "keep",
        "wait"), ``arm``, ``prob_better``,
        ``loss_min`` (the smaller expected loss, metric's unit), ``lift_hdi_width``.
    decision : Decision or None
        Today's decision, with :attr:`days_left` (None for a plan).
    days_left : float
        Median over simulations of the first projected day on which the rule fires (0 if it
        fires today; inf if it fires by the last projected day in fewer than half of them).
    readout : Readout or None
        Today's readout (None for a plan).
    settings : dict
        The arguments, the enrollment per arm used, ``nuts_fallbacks`` (Laplace refits
        without a proper mode, refitted with NUTS), ``warned_refits`` (NUTS refits with a
        ConvergenceWarning), ``seconds``.
    """

    def __init__(self, sims: pd.DataFrame, decision: Decision | None, readout: Readout | None,
                 settings: dict):
        self.sims = sims
        self.readout = readout
        self.settings = settings
        self.days = np.unique(sims["day"].to_numpy())
        first = np.sort(self.first_decision_day.to_numpy())
        median = float(first[(len(first) - 1) // 2]) if len(first) else np.inf
        self.days_left = 0.0 if decision is not None and decision.action != "wait" else median
        if decision is not None:
            decision = decision.replace(days_left=self.days_left,
                                        days_left_note=self._days_left_note())
        self.decision = decision

    @property
    def first_decision_day(self) -> pd.Series:
        """Per simulation, the first projected day on which the rule fires (inf if never)."""
        fired = self.sims[self.sims["action"].isin(["ship", "keep"])]
        first = fired.groupby("sim")["day"].min()
        return first.reindex(range(self.settings["n_sims"]), fill_value=np.inf)

    def _enrollment_words(self) -> str:
        n = self.settings.get("new_units_per_day")
        if n is None:
            return "at today's enrollment"
        if isinstance(n, dict):
            return "at the given enrollment"
        if n == 0:
            return "with enrollment closed"
        return f"at {n:,.0f} new units per day and arm" if n >= 10 else \
            f"at {n:g} new units per day and arm"

    def _days_left_note(self) -> str:
        d = self.days_left
        words = self._enrollment_words()
        if not np.isfinite(d):
            p = self.to_frame()["prob_decided_by"].iloc[-1]
            return (f"a decision by day {self.days[-1]:g} in only {p:.0%} of the projected "
                    f"futures {words}")
        return f"~{amount(d, 'D')} left {words}"

    def to_frame(self) -> pd.DataFrame:
        """One row per projected day.

        Returns
        -------
        DataFrame with columns ``day`` (calendar days from now), ``prob_decision`` (the rule
        fires on that day's data), ``prob_ship``, ``prob_keep``, ``prob_decided_by`` (fired on
        some projected day up to this one: a team stops at the first decision, so this, not
        ``prob_decision``, which a future that fired earlier can fall out of again, gives
        :attr:`days_left` and the plot), ``prob_better_q05``, ``_q50``, ``_q95``
        (quantiles over the futures of P(treatment better)), ``lift_hdi_width_q05``, ``_q50``,
        ``_q95``, ``loss_median`` (median of the smaller expected loss), ``new_units_per_arm``
        (new units per arm by then, at the projected enrollment) and ``n_sims``.
        """
        ok = self.sims
        first = self.first_decision_day
        rows = []
        enroll = self.settings.get("enrollment_per_day", {})
        for d in self.days:
            g = ok[ok["day"] == d]
            row = {"day": d,
                   "prob_decision": float(g["action"].isin(["ship", "keep"]).mean()),
                   "prob_ship": float((g["action"] == "ship").mean()),
                   "prob_keep": float((g["action"] == "keep").mean()),
                   "prob_decided_by": float((first <= d).mean())}
            for col in ("prob_better", "lift_hdi_width"):
                for q in QUANTILES:
                    row[f"{col}_q{round(q * 100):02d}"] = float(g[col].quantile(q)) \
                        if len(g) else np.nan
            row["loss_median"] = float(g["loss_min"].median()) if len(g) else np.nan
            row["new_units_per_arm"] = float(np.round(np.mean(list(enroll.values())) * d)) \
                if enroll else np.nan
            row["n_sims"] = len(g)
            rows.append(row)
        out = pd.DataFrame(rows)
        out.attrs.update({k: v for k, v in self.settings.items() if k != "enrollment_per_day"})
        return out

    def plot(self, ax=None):
        """P(decision by each day) and the band of P(better) over the projected futures.

        Returns
        -------
        matplotlib.axes.Axes
        """
        f = self.to_frame()
        st = self.settings
        spec = METRICS[st["metric"]]
        caring = f"{st['threshold'] * 100:g} pp" if spec.kind == "rate" else \
            f"{st['threshold']:g} {unit_name(st['time_unit'])}"
        title = (f"{st['treatment']} vs {st['control']}: "
                 f"{spec.title(st['horizon'], st['time_unit'])}, threshold {caring}")
        return plot_projection(f["day"].to_numpy(), f["prob_decided_by"].to_numpy(),
                               f["prob_better_q05"].to_numpy(), f["prob_better_q50"].to_numpy(),
                               f["prob_better_q95"].to_numpy(), title=title, ax=ax)

    def __repr__(self) -> str:
        head = "Projection" if self.decision is not None else "Plan"
        lines = [f"{head} ({self.settings['n_sims']} simulated futures, "
                 f"{self.settings['method']} refits, {self.settings['seconds']:.0f} s)"]
        if self.decision is not None:
            lines.append(f"Today: {self.decision.text}")
        lines.append(self.to_frame().round(4).to_string(index=False))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html as _html

        parts = []
        if self.decision is not None:
            parts.append(self.decision._repr_html_())
        parts.append(self.to_frame().round(4).to_html(index=False, border=0))
        return "<div class='bayesconv-projection'>" + "".join(parts) + \
            f"<p style='font-size:smaller'>{_html.escape(self.__repr__().splitlines()[0])}</p></div>"
