"""A/B(/n) test readouts from a fitted conversion model: which arm converts more, and by how much.

:func:`compare` turns the joint posterior draws of a :class:`~bayesconv.ConversionResult` into
the quantities an experiment readout needs, for each treatment arm against a control arm:

* the posterior mean and highest density interval (HDI) of each arm's rate;
* the absolute difference (treatment − control) and the relative lift (treatment / control − 1);
* the probability that the treatment is better;
* the expected loss of choosing each arm (Stucchio 2015), in absolute rate units;
* optionally the probability that the difference lies in a region of practical equivalence
  (ROPE; Kruschke 2018, "Rejecting or accepting parameter values in Bayesian estimation",
  *Advances in Methods and Practices in Psychological Science* 1(2));
* the probability that each arm (control included) is the best one.

The metrics (:mod:`bayesconv.readout.metrics`): ``"eventual"``, the eventual conversion rate c
(the share of units that ever convert); with ``horizon=h``, ``"by_horizon"``, the share
converted within h time units of creation, c·F(h); and ``"median_lag"``, the median time to
convert of those who convert, in the data's time unit. A treatment that makes units convert
*faster* but not *more* wins on the second and the third and not on the first; the naive rate
(converted / units) on young cohorts confuses them.
"""

from __future__ import annotations

import html
import numbers

import numpy as np
import pandas as pd
import xarray as xr

from ..data.prepare import shown_label
from ..data.stats import weighted_median
from ..data.units import unit_name
from ..errors import DataNotSavedError
from ..model.formula import formula_columns
from ..plotting import plot_differences, plot_forest
from ..posterior.cells import pooled_mix, row_parameters
from ..posterior.diagnostics import hdi
from ..posterior.result import ConversionResult
from .decision import ALPHA, EFFECT_SCALE, Decision, apply_rule, check_threshold, expected_losses
from .metrics import METRICS

__all__ = ["Readout", "check_rope", "compare", "default_horizon", "marginal_values"]

_SAMPLE = ("chain", "draw")

#: The relative lift θ_T / θ_C − 1 is reported only where the control's rate is bounded away
#: from 0: the lower end of its HDI must be at least this share of the upper end. Below that
#: the ratio's draws are dominated by control draws near 0 (a control arm with no conversions
#: gave draws of 1e-20 and a "lift" of +7.6e80 %), and the lift is reported as not defined.
LIFT_MIN_HDI_RATIO = 0.01


# ---------------------------------------------------------------------------- validation
def _available(result) -> str:
    return ", ".join(repr(c) for c in result.data.cohorts)


def _resolve(result, label, role: str):
    """The cohort label of ``result.data`` matching ``label`` (itself or its str)."""
    cohorts = list(result.data.cohorts)
    for c in cohorts:
        try:
            if type(c) is type(label) and c == label:
                return c
        except (TypeError, ValueError):
            pass
    for c in cohorts:  # e.g. 1 vs np.int64(1), or "1" for the int cohort 1
        try:
            same = bool(c == label)
        except (TypeError, ValueError):
            same = False
        if same or str(c) == str(label):
            return c
    raise ValueError(f"{role} {label!r} is not a cohort of the data; available cohorts: "
                     f"{_available(result)}")


def _as_list(treatment) -> list:
    if isinstance(treatment, list | tuple | np.ndarray | pd.Index | pd.Series):
        return list(treatment)
    return [treatment]


def check_rope(rope) -> tuple[float, float] | None:
    """``rope`` as (low, high) in rate units, or None: a scalar r means (-r, r).

    Raises
    ------
    ValueError
        Not a number or a pair, or low >= high.
    """
    if rope is None:
        return None
    if isinstance(rope, numbers.Real) and not isinstance(rope, bool):
        r = float(rope)
        low, high = -r, r
    else:
        try:
            low, high = (float(x) for x in rope)
        except (TypeError, ValueError):
            raise ValueError("rope must be a number r (meaning (-r, r)) or a pair (low, high) "
                             f"of absolute differences, got {rope!r}") from None
    if np.isnan(low) or np.isnan(high) or not low < high:
        raise ValueError(f"rope needs low < high, got ({low!r}, {high!r}); a scalar rope r "
                         "must be > 0 and means (-r, r), in absolute rate units")
    return low, high


def _check_horizon(horizon) -> float | None:
    if horizon is None:
        return None
    try:
        h = float(horizon)
    except (TypeError, ValueError):
        raise ValueError(f"horizon must be a number > 0 (in the data's time unit), "
                         f"got {horizon!r}") from None
    if isinstance(horizon, bool) or not np.isfinite(h) or h <= 0:
        raise ValueError(f"horizon must be finite and > 0 (in the data's time unit), "
                         f"got {horizon!r}")
    return h


def default_horizon(data, cohorts=None) -> float:
    """A readout horizon that the follow-up of every arm covers.

    The count-weighted median follow-up (age at the observation date) of the arm whose median
    is shortest, rounded down to two significant digits: at least half of every arm's units
    have been observed for that long, so the readout by this horizon rests on data, not on
    the lag family's extrapolation. For the duration/event layout, where follow-up is known
    only for censored units, each arm's longest duration stands in for it (a fixed follow-up
    study such as Rossi's: 52 weeks).

    Parameters
    ----------
    data : ConversionData
    cohorts : sequence of labels, optional
        The arms to cover (default: all cohorts).

    Returns
    -------
    float
        In ``data.time_unit``, > 0.

    Raises
    ------
    ValueError
        An arm has no follow-up at all (every unit observed for 0 time units).
    """
    labels = list(data.cohorts) if cohorts is None else list(cohorts)
    spans = []
    for label in labels:
        g = data.cohorts.index(label)
        if data.followup is not None:
            fu = data.followup[data.cell_cohort[data.followup["cell"].to_numpy()] == g]
            spans.append(weighted_median(fu["age"].to_numpy(float), fu["count"].to_numpy()))
        else:
            spans.append(float(data.duration[data.cohort == g].max()))
    span = min(spans)
    if not span > 0:
        raise ValueError(f"no arm-wide follow-up to read out by: the median follow-up of "
                         f"{labels[int(np.argmin(spans))]!r} is 0 {data.time_unit}")
    step = 10.0 ** (np.floor(np.log10(span)) - 1)
    return float(round(np.floor(span / step + 1e-9) * step, 12))


# ---------------------------------------------------------------------------- computation
def _check_metrics(metrics, horizon) -> list[str]:
    if metrics is None:
        return [m for m, spec in METRICS.items() if horizon is not None or not spec.needs_horizon]
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"metric {m!r} is not one of {list(METRICS)}")
        if METRICS[m].needs_horizon and horizon is None:
            raise ValueError(f"metric {m!r} needs compare(..., horizon=...)")
    if not metrics:
        raise ValueError(f"no metric given; metrics: {list(METRICS)}")
    return list(dict.fromkeys(metrics))


def compare(result, treatment, control, *, horizon: float | None = None,
            ci_prob: float = 0.94, rope=None, higher_is_better: bool = True,
            metrics=None, by: str | None = None, threshold: float | None = None) -> Readout:
    """Read out an experiment: each treatment arm against the control arm, from the posterior.

    Every quantity is computed draw by draw from the joint posterior, so correlations between
    parameters are kept. Arms are cohorts of the fitted data.

    Parameters
    ----------
    result : ConversionResult
        A posterior fitted with NUTS (``method="nuts"``). A MAP fit (one point) is rejected.
    treatment : label or list of labels
        Treatment arm(s). Several arms are each compared with ``control``. A label is a cohort
        label of ``result.data.cohorts`` or its ``str`` (Rossi's cohorts are the ints 0 and 1;
        ``1`` and ``"1"`` both work).
    control : label
        The control (baseline) arm.
    horizon : float, optional
        If given (> 0, in the data's time unit, ``result.data.time_unit``), also read out the
        metric ``"by_horizon"``: the probability that a unit converts within ``horizon`` of its
        creation, c·F(horizon).
    ci_prob : float, default 0.94
        Probability mass of the highest density intervals (HDI), in (0, 1).
    rope : float or (float, float), optional
        Region of practical equivalence on the *absolute difference* treatment − control of
        the rate metrics, in rate units (0.01 = one percentage point). A scalar ``r`` means
        ``(-r, r)``.
    higher_is_better : bool, default True
        Whether a higher rate is better (conversions). With False (e.g. churn, defaults) the
        probability of being better, the losses and P(best) are mirrored. The median lag is
        better when shorter if conversions are good, and when longer if they are bad.
    metrics : sequence of str, optional
        Metrics of :data:`bayesconv.readout.METRICS` to read out (default: ``"eventual"``,
        ``"by_horizon"`` with a horizon, and ``"median_lag"``).
    by : str, optional
        A column of the data's cell table (a covariate such as "platform"): besides the overall
        readout, one readout per level (:attr:`Readout.segments`), with the partial pooling the
        model's formula implies (``(variant | platform)`` shrinks noisy segments toward the
        overall effect); :meth:`Readout.to_frame` gains a column named ``by`` (NaN on the
        overall rows).
    threshold : float, optional
        Threshold of caring of the expected-loss decision rule, in the lead metric's unit
        (rates: 0.002 = 0.2 percentage points): the Readout's text and HTML then state
        :meth:`Readout.decision` ("ship B", "keep A" or "keep waiting").

    Returns
    -------
    Readout
        Tables (:meth:`Readout.to_frame`, :meth:`Readout.arm_table`), HTML and text display,
        :meth:`Readout.plot`, and the draws in :attr:`Readout.draws`.

    Raises
    ------
    TypeError
        ``result`` is not a ConversionResult.
    ValueError
        A label that is not a cohort of the data (the message lists the available cohorts); a
        treatment equal to the control or listed twice; an empty treatment list; ``horizon``
        not finite or <= 0; ``ci_prob`` outside (0, 1); a ROPE with low >= high; ``threshold``
        not a number > 0; a result
        without posterior draws (a MAP fit: a readout needs draws); an unknown metric, or
        ``"by_horizon"`` without a horizon; ``by`` a list of columns (one column only).

    Notes
    -----
    Each arm's metric is averaged over the experiment's own mix of the other factors: the
    combinations of the covariates in the compared arms' cells, weighted by their units
    pooled over the arms (standardisation; the population-averaged, marginal effect a product
    manager means). With formulas the arm's parameters are predicted for every combination;
    without covariates the mix is the arm itself. The overall effect is then the
    unit-weighted average of the per-level effects of ``by``.

    For draws θ_T (treatment) and θ_C (control) of a metric, with "better" meaning higher
    (mirrored where lower is better):

    * ``diff`` = θ_T − θ_C, in the metric's unit; ``lift`` = θ_T / θ_C − 1;
    * ``prob_better`` = P(diff > 0);
    * ``loss_treatment`` = E[max(0, θ_C − θ_T)], the expected shortfall if you ship the
      treatment and the control was better; ``loss_control`` = E[max(0, θ_T − θ_C)]. Losses
      are in the metric's unit (rates: absolute rate units, 0.002 = 0.2 percentage points).
      A common decision rule ships the arm whose expected loss is below a "threshold of
      caring" (Chris Stucchio 2015, "Bayesian A/B Testing at VWO", VWO technical whitepaper);
    * ``prob_rope`` = P(low <= diff <= high), rate metrics only;
    * ``prob_best`` = P(the arm is the best among control and all treatments), and in
      :meth:`Readout.arm_table` ``loss`` = E[best over arms − θ_arm].

    Draws where the arms are exactly equal (only with degenerate posteriors) count as "not
    better" for ``prob_better``, and as a win for the first arm in order (control, then the
    treatments in the order given) for ``prob_best``.

    Examples
    --------
    >>> ro = bc.compare(result, "B", "A", horizon=7, rope=0.005)   # doctest: +SKIP
    >>> ro.to_frame()                                              # doctest: +SKIP
    >>> ro.plot()                                                  # doctest: +SKIP
    """
    if not isinstance(result, ConversionResult):
        raise TypeError("result must be a ConversionResult (from ConversionModel(...).fit()), "
                        f"got {type(result).__name__}")
    if isinstance(ci_prob, bool) or not isinstance(ci_prob, numbers.Real) \
            or not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be a number in (0, 1), got {ci_prob!r}")
    ci_prob = float(ci_prob)
    horizon = _check_horizon(horizon)
    rope = check_rope(rope)
    metrics = _check_metrics(metrics, horizon)
    threshold = None if threshold is None else check_threshold(threshold)
    post = result.posterior
    if not result.has_draws:
        n = post.sizes["chain"] * post.sizes["draw"]
        raise ValueError(f"compare needs posterior draws, but this result has {n} "
                         f"(sampler={result.sampler!r}, kind={result.kind!r}, e.g. a MAP fit); "
                         "fit with method='nuts'")
    control = _resolve(result, control, "control")
    treatments = [_resolve(result, t, "treatment") for t in _as_list(treatment)]
    if not treatments:
        raise ValueError(f"no treatment arm given; available cohorts: {_available(result)}")
    for t in treatments:
        if str(t) == str(control):
            raise ValueError(f"treatment {t!r} is the control arm; compare needs a different "
                             f"cohort; available cohorts: {_available(result)}")
    keys = [str(t) for t in treatments]
    if len(set(keys)) < len(keys):
        raise ValueError(f"treatment arms are listed more than once: {treatments!r}")

    if by is not None and not isinstance(by, str):
        raise ValueError(f"compare(by=...) takes one column, got {by!r}; for a cross of "
                         "factors, add a combined column to the events (e.g. events['segment'] "
                         "= events['a'] + ' × ' + events['b']) and name it in "
                         "prepare(..., covariates=[...])")
    try:
        ident = result.identification()["weakly_identified"]
        weak = [label for label in [control, *treatments] if bool(ident.loc[label])]
    except DataNotSavedError:  # a result saved without its data: identification unknown
        weak = []
    readouts = {}
    for segment, combos, weights in pooled_mix(result.data, [control, *treatments], by):
        value = marginal_values(result.posterior, result.spec, result.family, result.data,
                                [control, *treatments], combos, weights, metrics, horizon)
        readouts[segment] = Readout(
            value, control=control, treatments=treatments, ci_prob=ci_prob, horizon=horizon,
            rope=rope, higher_is_better=bool(higher_is_better),
            time_unit=result.data.time_unit, weakly_identified=weak,
            arm_column=result.data.cohort_name)
    overall = readouts.pop(None)
    overall.threshold = threshold
    if by is not None:
        overall.by = by
        overall.segments = readouts
        used = set().union(*(formula_columns(f) for f in result.spec.formula.values()))
        if by not in used:
            overall.notes.append(
                f"the model has no term for {by!r}, so its segments differ only through "
                "their mix of the other factors; fit with a formula such as "
                f"{{'eventual_rate': '{result.data.cohort_column} + "
                f"({result.data.cohort_column} | {by})'}} to read segment effects")
    return overall


def marginal_values(posterior, spec, family, data, arms, combos, weights, metrics,
                    horizon) -> xr.DataArray:
    """Each metric of each arm averaged over a mix of the other factors.

    The arm's parameters are read (or, with formulas, predicted) for every combination of the
    mix, the metric computed for the mixture.

    Parameters
    ----------
    posterior : Dataset
        Draws (chain, draw, ...) of a fit of ``data`` with ``spec`` and ``family``.
    arms : sequence of labels
    combos, weights
        The mix (:func:`bayesconv.posterior.cells.pooled_mix`).
    metrics : sequence of str
        Keys of :data:`~bayesconv.readout.METRICS`.
    horizon : float or None
        In the data's time unit.

    Returns
    -------
    DataArray of shape (metric, arm, chain, draw), ``arm`` coordinates ``str(label)``.
    """
    column = data.cohort_name or "cohort"
    k = len(combos)
    rows = pd.concat([combos.assign(**{column: pd.Categorical([arm] * k,
                                                              categories=list(data.cohorts))})
                      for arm in arms], ignore_index=True)
    rate, lag = row_parameters(posterior, spec, family, data, rows)
    rate, lag = rate.values, [x.values for x in lag]
    arr = np.stack([np.stack([
        METRICS[m].value(family, rate[..., i * k:(i + 1) * k],
                         [x[..., i * k:(i + 1) * k] for x in lag], weights, horizon)
        for i in range(len(arms))]) for m in metrics])
    post = posterior
    value = xr.DataArray(arr.astype(float), dims=("metric", "arm", "chain", "draw"),
                         coords={"metric": metrics, "arm": [str(a) for a in arms],
                                 "chain": post["chain"].values, "draw": post["draw"].values})
    value.name = "value"
    return value


class Readout:
    """The result of :func:`compare`: arm-versus-control summaries and the draws behind them.

    Attributes
    ----------
    draws : xarray.Dataset
        ``value`` (metric, arm, chain, draw): each arm's value of each metric, control first
        (also as ``rate``, its former name); ``diff`` and ``lift`` (metric, treatment, chain,
        draw): treatment − control and treatment / control − 1. Arm and treatment coordinates
        are ``str(label)``.
    control : label
        The control cohort label (as in ``result.data.cohorts``).
    treatments : list of labels
    metrics : tuple of str
        The metrics read out (keys of :data:`bayesconv.readout.METRICS`).
    ci_prob : float
    horizon : float or None
        In ``time_unit``.
    rope : (float, float) or None
        On the absolute difference of rate metrics, in rate units.
    higher_is_better : bool
        The outcome's direction (for rates).
    time_unit : str
        Time unit of the data (of ``horizon`` and of time metrics).
    weakly_identified : list of labels
        Compared arms whose eventual rate the data barely identify
        (:meth:`ConversionResult.identification`).
    arm_column : str or None
        Name of the arm (cohort) column; displays name numeric arms as ``fin=1``.
    lead : str
        The metric the display leads with: ``"by_horizon"`` when there is a horizon and an
        arm's eventual rate is weakly identified (the horizon readout is what the data
        support), else ``"eventual"``.
    by : str or None
        The column of ``compare(..., by=...)``.
    segments : dict
        Level of ``by`` -> the Readout of that level (empty without ``by``).
    threshold : float or None
        The threshold of caring of ``compare(..., threshold=...)``: the display then states
        :meth:`decision`.
    """

    def __init__(self, value: xr.DataArray, *, control, treatments, ci_prob, horizon, rope,
                 higher_is_better, time_unit, weakly_identified=(), arm_column=None):
        self.by: str | None = None
        self.threshold: float | None = None
        self.segments: dict = {}
        self.notes: list[str] = []
        self.weakly_identified = list(weakly_identified)
        self.arm_column = arm_column
        self.control = control
        self.treatments = list(treatments)
        self.ci_prob = ci_prob
        self.horizon = horizon
        self.rope = rope
        self.higher_is_better = higher_is_better
        self.time_unit = time_unit
        self.metrics = tuple(str(m) for m in value["metric"].values)
        ctrl = value.sel(arm=str(control), drop=True)
        tr = value.sel(arm=[str(t) for t in self.treatments]).rename(arm="treatment")
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = tr / ctrl - 1
        self.draws = xr.Dataset({"value": value, "rate": value, "diff": tr - ctrl,
                                 "lift": lift})
        self.draws.attrs.update(ci_prob=ci_prob, time_unit=time_unit,
                                higher_is_better=int(higher_is_better),
                                horizon=np.nan if horizon is None else horizon)
        self._frame: pd.DataFrame | None = None
        self._arms: pd.DataFrame | None = None

    # ------------------------------------------------------------------ basics
    @property
    def n_draws(self) -> int:
        """Number of posterior draws (chains × draws)."""
        return self.draws.sizes["chain"] * self.draws.sizes["draw"]

    @property
    def lead(self) -> str:
        """The metric shown first (see the class docstring)."""
        if "by_horizon" in self.metrics and self.weakly_identified:
            return "by_horizon"
        return "eventual" if "eventual" in self.metrics else self.metrics[0]

    def arm_label(self, label) -> str:
        """How an arm is named in text: ``"B"``, ``"fin=1"`` for a numeric or boolean label,
        and quoted (``"'B '"``) when it has surrounding whitespace or is empty, so that it is
        told apart from a look-alike arm."""
        text = shown_label(label)
        if text != str(label):
            return text
        if self.arm_column and (isinstance(label, numbers.Number | np.bool_)
                                or text.lstrip("+-").replace(".", "", 1).isdigit()):
            return f"{self.arm_column}={text}"
        return text

    def metric_name(self, metric: str) -> str:
        """Plain-English name of a metric, e.g. "eventual rate" or "rate by 7 days"."""
        self._check_metric(metric)
        return METRICS[metric].title(self.horizon, self.time_unit)

    def _check_metric(self, metric):
        if metric not in self.metrics:
            extra = "" if self.horizon is not None else \
                " (compare(..., horizon=h) adds 'by_horizon')"
            raise ValueError(f"metric {metric!r} is not one of {list(self.metrics)}{extra}")

    def _higher_better(self, metric: str) -> bool:
        return METRICS[metric].higher_is_better(self.higher_is_better)

    def _signs(self) -> xr.DataArray:
        """+1 where a higher value of the metric is better, −1 where lower, per metric."""
        return xr.DataArray([1.0 if self._higher_better(m) else -1.0 for m in self.metrics],
                            dims="metric", coords={"metric": list(self.metrics)})

    def _prob_best(self) -> xr.DataArray:
        """P(arm is best) per metric and arm; dims (metric, arm)."""
        signed = self.draws["value"] * self._signs()
        best = signed.argmax("arm")
        out = np.stack([(best == i).mean(_SAMPLE).values
                        for i in range(signed.sizes["arm"])], axis=-1)
        return xr.DataArray(out, dims=("metric", "arm"),
                            coords={"metric": signed["metric"], "arm": signed["arm"]})

    # ------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per metric × treatment arm (× segment with ``by``).

        With ``compare(..., by=col)`` the overall rows come first, with a column ``col`` that is
        NaN on them, then the rows of each level of ``col``. Columns otherwise as in
        :meth:`_own_frame`.
        """
        own = self._own_frame()
        if not self.segments:
            return own
        frames = [own.assign(**{self.by: np.nan})]
        frames += [seg._own_frame().assign(**{self.by: level})
                   for level, seg in self.segments.items()]
        out = pd.concat(frames, ignore_index=True)
        cols = list(out.columns)
        cols.insert(1, cols.pop(cols.index(self.by)))
        out = out[cols]
        out.attrs.update(self._attrs(), by=self.by)
        return out

    def _own_frame(self) -> pd.DataFrame:
        """Tidy table: one row per metric × treatment arm.

        Returns
        -------
        DataFrame with columns

        * ``metric`` (e.g. "eventual", "by_horizon", "median_lag"), ``unit`` ("rate", or the
          time unit of a time metric), ``treatment``, ``control`` (labels);
        * ``control_mean``, ``control_lower``, ``control_upper``, ``treatment_mean``,
          ``treatment_lower``, ``treatment_upper``: posterior mean and HDI of each arm's value;
        * ``diff_mean``, ``diff_lower``, ``diff_upper``: treatment − control (metric's unit);
        * ``lift_median``, ``lift_lower``, ``lift_upper``: treatment / control − 1
          (relative): the posterior median and HDI of the per-draw ratio, never its mean (a
          ratio's mean is dominated by control draws near 0); NaN where ``lift_defined`` is
          False;
        * ``lift_defined``: whether the control's value is bounded away from 0, i.e. the lower
          end of its HDI is at least :data:`LIFT_MIN_HDI_RATIO` of the upper end;
        * ``prob_better``: P(treatment better than control);
        * ``loss_treatment``, ``loss_control``: expected loss of choosing that arm (metric's
          unit; see :func:`compare`);
        * ``prob_rope``: P(lower <= diff <= upper) for the ROPE (NaN without ``rope`` and for
          time metrics);
        * ``prob_best``, ``control_prob_best``: P(best among control and all treatments) of
          the treatment and of the control (with one treatment, ``prob_best`` equals
          ``prob_better`` up to ties).

        ``.attrs`` holds ``ci_prob``, ``horizon``, ``time_unit``, ``rope``,
        ``higher_is_better`` and ``n_draws``.
        """
        if self._frame is not None:
            return self._frame.copy()
        d = self.draws
        value_mean = d["value"].mean(_SAMPLE)
        value_hdi = hdi(d["value"], self.ci_prob)
        diff, lift = d["diff"], d["lift"]
        diff_hdi, lift_hdi = hdi(diff, self.ci_prob), hdi(lift, self.ci_prob)
        gain = self._signs() * diff  # > 0 where the treatment is better
        prob_better = (gain > 0).mean(_SAMPLE)
        loss_t = np.maximum(0.0, -gain).mean(_SAMPLE)
        loss_c = np.maximum(0.0, gain).mean(_SAMPLE)
        if self.rope is not None:
            low, high = self.rope
            prob_rope = ((diff >= low) & (diff <= high)).mean(_SAMPLE)
        else:
            prob_rope = xr.full_like(prob_better, np.nan, dtype=float)
        pbest = self._prob_best()
        ck = str(self.control)
        rows = []
        for m in self.metrics:
            rate = METRICS[m].kind == "rate"
            for t in self.treatments:
                tk = str(t)
                sel = {"metric": m, "treatment": tk}

                def lo_hi(h, **s):
                    return (float(h.sel(**s, ci_bound="lower")),
                            float(h.sel(**s, ci_bound="upper")))

                c_lo, c_hi = lo_hi(value_hdi, metric=m, arm=ck)
                t_lo, t_hi = lo_hi(value_hdi, metric=m, arm=tk)
                d_lo, d_hi = lo_hi(diff_hdi, **sel)
                defined = bool(c_lo >= LIFT_MIN_HDI_RATIO * c_hi and c_hi > 0)
                l_lo, l_hi = lo_hi(lift_hdi, **sel) if defined else (np.nan, np.nan)
                l_med = float(lift.sel(**sel).median(_SAMPLE)) if defined else np.nan
                rows.append({
                    "metric": m, "treatment": t, "control": self.control,
                    "control_mean": float(value_mean.sel(metric=m, arm=ck)),
                    "control_lower": c_lo, "control_upper": c_hi,
                    "treatment_mean": float(value_mean.sel(metric=m, arm=tk)),
                    "treatment_lower": t_lo, "treatment_upper": t_hi,
                    "diff_mean": float(diff.sel(**sel).mean(_SAMPLE)),
                    "diff_lower": d_lo, "diff_upper": d_hi,
                    "lift_median": l_med, "lift_lower": l_lo, "lift_upper": l_hi,
                    "lift_defined": defined,
                    "prob_better": float(prob_better.sel(**sel)),
                    "loss_treatment": float(loss_t.sel(**sel)),
                    "loss_control": float(loss_c.sel(**sel)),
                    "prob_rope": float(prob_rope.sel(**sel)) if rate else np.nan,
                    "prob_best": float(pbest.sel(metric=m, arm=tk)),
                    "control_prob_best": float(pbest.sel(metric=m, arm=ck)),
                })
        frame = pd.DataFrame(rows)
        frame.insert(1, "unit", [METRICS[m].unit(self.time_unit) for m in frame["metric"]])
        frame.attrs.update(self._attrs())
        self._frame = frame
        return frame.copy()

    def arm_table(self) -> pd.DataFrame:
        """One row per metric × arm (control first): the arm's value and its chance of being best.

        Returns
        -------
        DataFrame with columns ``metric``, ``unit``, ``arm`` (label), ``role`` ("control" or
        "treatment"), ``mean``, ``lower``, ``upper`` (posterior mean and HDI of the value),
        ``prob_best`` (P(best among all arms); sums to 1 per metric) and ``loss``
        (E[best value − this arm's value], the expected loss of choosing this arm among all
        of them, in the metric's unit; mirrored where lower is better).
        """
        if self._arms is not None:
            return self._arms.copy()
        value = self.draws["value"]
        mean = value.mean(_SAMPLE)
        h = hdi(value, self.ci_prob)
        pbest = self._prob_best()
        loss = {m: self._losses(m) for m in self.metrics}
        rows = []
        for m in self.metrics:
            for i, label in enumerate([self.control, *self.treatments]):
                k = str(label)
                rows.append({
                    "metric": m, "unit": METRICS[m].unit(self.time_unit), "arm": label,
                    "role": "control" if i == 0 else "treatment",
                    "mean": float(mean.sel(metric=m, arm=k)),
                    "lower": float(h.sel(metric=m, arm=k, ci_bound="lower")),
                    "upper": float(h.sel(metric=m, arm=k, ci_bound="upper")),
                    "prob_best": float(pbest.sel(metric=m, arm=k)),
                    "loss": float(loss[m][i]),
                })
        frame = pd.DataFrame(rows)
        frame.attrs.update(self._attrs())
        self._arms = frame
        return frame.copy()

    def _signed(self, metric: str) -> np.ndarray:
        """Draws (arm, chain × draw) of ``metric``, signed so that higher is better."""
        v = self.draws["value"].sel(metric=metric).transpose("arm", "chain", "draw").values
        sign = 1.0 if self._higher_better(metric) else -1.0
        return sign * v.reshape(v.shape[0], -1)

    def _losses(self, metric: str) -> np.ndarray:
        """Expected loss of choosing each arm (control first) on ``metric``, E[best − arm]."""
        return expected_losses(self._signed(metric))

    def decision(self, threshold: float | None = None, metric: str | None = None, *,
                 alpha: float | None = ALPHA, effect_scale: float = EFFECT_SCALE) -> Decision:
        """The expected-loss decision rule: ship a treatment, keep the control, or keep waiting.

        Keeps the control if its expected loss E[best arm − control] is below ``threshold``
        and either every arm's is too (the arms are practically equal) or the evidence that
        every treatment differs is safe under repeated looks (a Bayes factor of at least
        k/``alpha``); else ships the treatment of smallest expected loss if that is below
        ``threshold``, the control's is not, and its evidence is safe; else keeps waiting.
        With a ROPE (``compare(..., rope=...)``) on a rate metric, it also keeps the control
        when every treatment's HDI of the difference lies inside the ROPE
        (:mod:`bayesconv.readout.decision`; Stucchio 2015, Johari et al. 2017, Kruschke 2018).

        Parameters
        ----------
        threshold : float, optional
            Threshold of caring, > 0, in the metric's unit (rates: 0.002 = 0.2 percentage
            points; the median lag: the data's time unit). Default: ``compare(...,
            threshold=...)``.
        metric : str, optional
            Default :attr:`lead` (the eventual rate, or the rate by the horizon where an
            arm's eventual rate is weakly identified).
        alpha : float or None, default 0.05
            Bound on the chance of ever shipping a treatment that is no better, at any number
            of looks (the mixture SPRT; :mod:`bayesconv.readout.decision`). None: the
            expected-loss rule alone, which under daily looks ships such a treatment far more
            often (``validation/peeking.md``).
        effect_scale : float, default 10
            The sd τ of the Normal(0, τ²) alternative of the Bayes factor, in multiples of
            ``threshold``: the size of the effects worth detecting.

        Returns
        -------
        Decision
            ``action`` ("ship", "keep", "wait"), ``arm``, the expected losses, P(better), and
            ``text``, the decision in a sentence.

        Raises
        ------
        ValueError
            No threshold here nor in ``compare``; a threshold that is not a number > 0; an
            unknown metric; ``alpha`` outside (0, 1); ``effect_scale`` not > 0.
        """
        if alpha is not None and not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
            raise ValueError(f"alpha must be in (0, 1) or None, got {alpha!r}")
        if not (isinstance(effect_scale, numbers.Real) and effect_scale > 0):
            raise ValueError(f"effect_scale must be a number > 0, got {effect_scale!r}")
        if threshold is None:
            threshold = self.threshold
        if threshold is None:
            raise ValueError("decision needs a threshold of caring, in the metric's unit "
                             "(rates: 0.002 = 0.2 percentage points): "
                             "ro.decision(threshold=...) or compare(..., threshold=...)")
        metric = self.lead if metric is None else metric
        self._check_metric(metric)
        spec = METRICS[metric]
        threshold = check_threshold(threshold, spec.kind)
        arms = [self.control, *self.treatments]
        f = self._own_frame()
        f = f[f["metric"] == metric]
        equivalent = bool(self.rope is not None and spec.kind == "rate" and (
            (f["diff_lower"] >= self.rope[0]) & (f["diff_upper"] <= self.rope[1])).all())
        chosen, losses, log_bf = apply_rule(self._signed(metric), threshold, alpha=alpha,
                                            effect_scale=effect_scale, equivalent=equivalent)
        action = "wait" if chosen is None else "keep" if chosen == 0 else "ship"
        return Decision(
            action=action, arm=None if chosen is None else arms[chosen], metric=metric,
            metric_name=self.metric_name(metric), threshold=threshold,
            losses={a: float(v) for a, v in zip(arms, losses, strict=True)},
            prob_better={t: float(p) for t, p in zip(f["treatment"], f["prob_better"],
                                                     strict=True)},
            control=self.control, equivalent=equivalent and chosen == 0, alpha=alpha,
            bayes_factor={} if alpha is None else {
                t: float(np.exp(min(b, 700.0))) for t, b in zip(self.treatments, log_bf,
                                                                strict=True)},
            unit=spec.diff_unit(self.time_unit), scale=spec.scale,
            labels={str(a): self.arm_label(a) for a in arms})

    def _attrs(self) -> dict:
        return {"ci_prob": self.ci_prob, "horizon": self.horizon, "time_unit": self.time_unit,
                "rope": self.rope, "higher_is_better": self.higher_is_better,
                "n_draws": self.n_draws}

    # ------------------------------------------------------------------ display
    def headline(self, metric: str | None = None, treatment=None) -> str:
        """One plain-English sentence about one treatment arm on one metric.

        Parameters
        ----------
        metric : str, optional
            Default: :attr:`lead`, the horizon readout when an arm's eventual rate is weakly
            identified, else the eventual rate.
        treatment : label, optional
            Default: the first treatment arm.

        Returns
        -------
        str, e.g. ``"P(B better than A) on the eventual rate = 0.97; lift +12.0% (94% HDI
        +3.1% to +21.0%)"``; the lift is the posterior median of treatment / control − 1, or
        "not defined" when the control's HDI reaches 0 (see :meth:`to_frame`).
        """
        metric = self.lead if metric is None else metric
        self._check_metric(metric)
        f = self._own_frame()
        f = f[f["metric"] == metric]
        if treatment is None:
            row = f.iloc[0]
        else:
            match = f[f["treatment"].astype(str) == str(treatment)]
            if match.empty:
                raise ValueError(f"treatment {treatment!r} is not one of {self.treatments!r}")
            row = match.iloc[0]
        better = "better" + METRICS[metric].qualifier(self._higher_better(metric))
        if row["lift_defined"]:
            lift = (f"lift {_pct(row['lift_median'])} ({self.ci_prob:.0%} HDI "
                    f"{_pct(row['lift_lower'])} to {_pct(row['lift_upper'])})")
        else:
            lift = (f"lift not defined (the {self.arm_label(row['control'])} rate's "
                    f"{self.ci_prob:.0%} HDI reaches 0)")
        return (f"P({self.arm_label(row['treatment'])} {better} than "
                f"{self.arm_label(row['control'])}) on the {self.metric_name(metric)} = "
                f"{row['prob_better']:.2f}; {lift}")

    def _ordered_metrics(self) -> list[str]:
        return sorted(self.metrics, key=lambda m: m != self.lead)

    def _headlines(self) -> list[str]:
        metrics = self._ordered_metrics()
        lines = [self.headline(m, t) for m in metrics for t in self.treatments]
        if len(self.treatments) > 1:
            arms = self.arm_table()
            for m in metrics:
                a = arms[arms["metric"] == m]
                parts = ", ".join(f"{self.arm_label(r.arm)} {r.prob_best:.2f}"
                                  for r in a.itertuples())
                lines.append(f"P(best) on the {self.metric_name(m)}: {parts}")
        if self.segments:
            m = self.lead
            for t in self.treatments:
                parts = ", ".join(
                    f"{level} {seg._own_frame().set_index(['metric', 'treatment']).loc[(m, t), 'prob_better']:.2f}"
                    for level, seg in self.segments.items())
                lines.append(f"P({self.arm_label(t)} better than "
                             f"{self.arm_label(self.control)}) on the {self.metric_name(m)} "
                             f"by {self.by} ({len(self.segments)} segments): {parts}")
        if self.threshold is not None:
            lines.append(f"Decision (expected-loss rule): {self.decision().text}")
        lines += [f"Note: {n}" for n in self.notes]
        if self.weakly_identified:
            arms = ", ".join(self.arm_label(a) for a in self.weakly_identified)
            lines.append(f"The eventual rate of {arms} is weakly identified (the follow-up "
                         "covers only part of the lag distribution, so it is mostly "
                         "extrapolation)" + (f": read the {self.metric_name('by_horizon')}."
                                             if self.lead == "by_horizon" else
                                             "; add a horizon inside the follow-up "
                                             "(compare(..., horizon=...)) and read that."))
        return lines

    def _display_frame(self) -> pd.DataFrame:
        f = self._own_frame()
        order = {m: i for i, m in enumerate(self._ordered_metrics())}
        f = f.iloc[np.argsort([order[m] for m in f["metric"]], kind="stable")]
        p = f"{self.ci_prob:.0%}"
        u = self.time_unit

        def value(metric, prefix, r):
            return METRICS[metric].fmt_interval(r[prefix + "_mean"], r[prefix + "_lower"],
                                                r[prefix + "_upper"], u)

        rows = []
        for r in f.to_dict("records"):
            spec = METRICS[r["metric"]]
            fd = spec.fmt_diff
            row = {
                "metric": self.metric_name(r["metric"]),
                "arms": f"{self.arm_label(r['treatment'])} vs {self.arm_label(r['control'])}",
                f"control [{p} HDI]": value(r["metric"], "control", r),
                f"treatment [{p} HDI]": value(r["metric"], "treatment", r),
                "difference": (f"{fd(r['diff_mean'], u)} [{fd(r['diff_lower'], u)}, "
                               f"{fd(r['diff_upper'], u)}] {spec.diff_unit(u)}"),
                "lift (median)": (f"{_pct(r['lift_median'])} [{_pct(r['lift_lower'])}, "
                                  f"{_pct(r['lift_upper'])}]" if r["lift_defined"]
                                  else "not defined"),
                "P(better)": f"{r['prob_better']:.3f}",
                "loss T / C": (f"{spec.fmt_diff(r['loss_treatment'], u).lstrip('+')} / "
                               f"{spec.fmt_diff(r['loss_control'], u).lstrip('+')} "
                               f"{spec.diff_unit(u)}"),
            }
            if self.rope is not None:
                row["P(ROPE)"] = (f"{r['prob_rope']:.3f}" if np.isfinite(r["prob_rope"])
                                  else "")
            if len(self.treatments) > 1:
                row["P(best) T / C"] = f"{r['prob_best']:.3f} / {r['control_prob_best']:.3f}"
            rows.append(row)
        return pd.DataFrame(rows)

    def _footnote(self) -> str:
        direction = "higher" if self.higher_is_better else "lower"
        parts = [f"{self.n_draws} posterior draws; {direction} rates are better",
                 "rates as % of units; their differences and expected losses in percentage "
                 "points (pp)", "loss = expected shortfall if you choose that arm"]
        if "median_lag" in self.metrics:
            faster = "shorter" if self.higher_is_better else "longer"
            parts.append(f"median lag: of the units that convert, in {unit_name(self.time_unit)}"
                         f"; {faster} is better")
        if not self._own_frame()["lift_defined"].all():
            parts.append("a lift is not defined where the control's interval reaches 0")
        if self.rope is not None:
            lo, hi = self.rope
            parts.append(f"ROPE on the difference of rates: [{lo * 100:+.2f}, {hi * 100:+.2f}] "
                         "pp")
        return "; ".join(parts) + "."

    def segment_table(self) -> pd.DataFrame:
        """The display table per level of ``by`` (all metrics), or an empty table."""
        if not self.segments:
            return pd.DataFrame()
        frames = []
        for level, seg in self.segments.items():
            f = seg._display_frame()
            f.insert(0, self.by, level)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        arms = ", ".join(self.arm_label(t) for t in self.treatments)
        head = f"Readout({arms} vs {self.arm_label(self.control)}; {self.ci_prob:.0%} HDI)"
        parts = [head, *self._headlines(), "", self._display_frame().to_string(index=False)]
        if self.segments:
            parts += ["", f"by {self.by}:", self.segment_table().to_string(index=False)]
        return "\n".join([*parts, self._footnote()])

    def _repr_html_(self) -> str:
        heads = "".join(f"<p><b>{html.escape(h)}</b></p>" for h in self._headlines())
        table = self._display_frame().to_html(index=False, escape=True, border=0)
        seg = ""
        if self.segments:
            seg = (f"<p><b>By {html.escape(str(self.by))}</b> ({len(self.segments)} "
                   "segments, each averaged over its own mix of the other factors)</p>"
                   + self.segment_table().to_html(index=False, escape=True, border=0))
        return (f"<div class='bayesconv-readout'>{heads}{table}{seg}"
                f"<p style='font-size:smaller'>{html.escape(self._footnote())}</p></div>")

    # ------------------------------------------------------------------ plot
    def plot_segments(self, ax=None, metric: str | None = None, treatment=None):
        """Forest plot of the treatment effect overall and per level of ``by``.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        metric : str, optional
            Default :attr:`lead`.
        treatment : label, optional
            Default the first treatment arm.

        Returns
        -------
        matplotlib.axes.Axes
            One row per segment (the overall effect first, as a diamond): difference
            treatment − control with its HDI, labelled with P(better).

        Raises
        ------
        ValueError
            The readout has no segments (``compare(..., by=...)``), or an unknown metric.
        """
        if not self.segments:
            raise ValueError("this readout has no segments; use compare(..., by='column')")
        return _segment_plot(self, metric, treatment, ax)

    def plot(self, ax=None, metric: str | None = None):
        """Posterior density of the difference treatment − control, per treatment arm.

        The absolute difference (percentage points for rates, the time unit for the median
        lag) is shown rather than the relative lift so that the ROPE, which is defined on it,
        can be drawn on the same axis.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        metric : str, optional
            Default: :attr:`lead` (the horizon readout when an eventual rate is weakly
            identified).

        Returns
        -------
        matplotlib.axes.Axes
            One density curve (Gaussian KDE of the draws) per treatment arm with its HDI
            shaded, a vertical line at 0 and, with a ROPE on a rate metric, a grey band.

        Raises
        ------
        ValueError
            Unknown metric (or "by_horizon" without ``horizon``).
        """
        metric = self.lead if metric is None else metric
        self._check_metric(metric)
        spec = METRICS[metric]
        f = self._own_frame()
        f = f[f["metric"] == metric]
        diffs = [self.draws["diff"].sel(metric=metric, treatment=str(t)).values
                 for t in self.treatments]
        labels = [f"{self.arm_label(t)} − {self.arm_label(self.control)}: "
                  f"P(better) = {row.prob_better:.2f}"
                  for t, row in zip(self.treatments, f.itertuples(), strict=True)]
        unit = "percentage points" if spec.kind == "rate" else unit_name(self.time_unit)
        direction = "higher" if self._higher_better(metric) else "lower"
        return plot_differences(
            diffs, hdis=list(zip(f["diff_lower"], f["diff_upper"], strict=True)),
            labels=labels, rope=self.rope if spec.kind == "rate" else None, scale=spec.scale,
            quantity=f"treatment − control, {self.metric_name(metric)} (absolute difference, "
                     f"{unit})", direction=direction, ci_prob=self.ci_prob, ax=ax)


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%" if np.isfinite(x) else str(x)


def _segment_plot(readout: Readout, metric: str | None, treatment, ax):
    metric = readout.lead if metric is None else metric
    readout._check_metric(metric)
    t = readout.treatments[0] if treatment is None else treatment
    rows = [("overall", readout)] + list(readout.segments.items())
    stats = []
    for label, ro in rows:
        f = ro._own_frame()
        r = f[(f["metric"] == metric) & (f["treatment"].astype(str) == str(t))].iloc[0]
        stats.append((f"{label} (P = {r['prob_better']:.2f})", r["diff_mean"],
                      r["diff_lower"], r["diff_upper"]))
    spec = METRICS[metric]
    unit = "percentage points" if spec.kind == "rate" else unit_name(readout.time_unit)
    labels, means, lows, highs = zip(*stats, strict=True)
    return plot_forest(list(labels), means, lows, highs, scale=spec.scale,
                       quantity=f"{readout.arm_label(t)} − {readout.arm_label(readout.control)}"
                                f", {readout.metric_name(metric)} ({unit}; "
                                f"{readout.ci_prob:.0%} HDI)",
                       title=f"treatment effect by {readout.by}", ax=ax)
