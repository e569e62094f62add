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

Two metrics are read out: ``"eventual"``, the eventual conversion rate c (the share of units
that ever convert), and, with ``horizon=h``, ``"by_horizon"``, the share converted within h time
units of creation, c·F(h). A treatment that makes units convert *faster* but not *more* wins on
the second and not on the first; the naive rate (converted / units) on young cohorts confuses
the two.
"""

from __future__ import annotations

import html
import numbers

import numpy as np
import pandas as pd
import xarray as xr

from .kaplan_meier import unit_name
from .results import _hdi

__all__ = ["Readout", "compare", "default_horizon"]

METRICS = ("eventual", "by_horizon")
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


def _check_rope(rope) -> tuple[float, float] | None:
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
    from .likelihood import weighted_median

    labels = list(data.cohorts) if cohorts is None else list(cohorts)
    spans = []
    for label in labels:
        g = data.cohorts.index(label)
        if data.followup is not None:
            fu = data.followup[data.followup["cohort"] == g]
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
def compare(result, treatment, control, *, horizon: float | None = None,
            ci_prob: float = 0.94, rope=None, higher_is_better: bool = True) -> Readout:
    """Read out an experiment: each treatment arm against the control arm, from the posterior.

    Every quantity is computed draw by draw from the joint posterior, so correlations between
    parameters are kept. Arms are cohorts of the fitted data.

    Parameters
    ----------
    result : ConversionResult
        A posterior fitted with NUTS (``method="nuts"``). A MAP fit (one draw) is rejected.
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
        Region of practical equivalence on the *absolute difference* treatment − control, in
        rate units (0.01 = one percentage point). A scalar ``r`` means ``(-r, r)``.
    higher_is_better : bool, default True
        Whether a higher rate is better (conversions). With False (e.g. churn, defaults) the
        probability of being better, the losses and P(best) are mirrored.

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
        not finite or <= 0; ``ci_prob`` outside (0, 1); a ROPE with low >= high; a result
        with a single draw (a MAP fit: a readout needs posterior draws).

    Notes
    -----
    For draws θ_T (treatment) and θ_C (control) of a metric, and higher_is_better:

    * ``diff`` = θ_T − θ_C, ``lift`` = θ_T / θ_C − 1;
    * ``prob_better`` = P(diff > 0) (P(diff < 0) when lower is better);
    * ``loss_treatment`` = E[max(0, θ_C − θ_T)], the expected shortfall in rate if you ship the
      treatment and the control was better; ``loss_control`` = E[max(0, θ_T − θ_C)]
      (mirrored when lower is better). Losses are in **absolute rate units** (0.002 = 0.2
      percentage points of conversion), not relative. A common decision rule ships the arm
      whose expected loss is below a "threshold of caring" (Chris Stucchio 2015, "Bayesian
      A/B Testing at VWO", VWO technical whitepaper);
    * ``prob_rope`` = P(low <= diff <= high);
    * ``prob_best`` = P(the arm has the highest rate among control and all treatments)
      (lowest when lower is better), and in :meth:`Readout.arm_table` ``loss`` =
      E[max over arms − θ_arm] (E[θ_arm − min over arms] when lower is better).

    Draws where the arms are exactly equal (only with degenerate posteriors) count as "not
    better" for ``prob_better``, and as a win for the first arm in order (control, then the
    treatments in the order given) for ``prob_best``.

    Examples
    --------
    >>> ro = bc.compare(result, "B", "A", horizon=7, rope=0.005)   # doctest: +SKIP
    >>> ro.to_frame()                                              # doctest: +SKIP
    >>> ro.plot()                                                  # doctest: +SKIP
    """
    from .results import ConversionResult

    if not isinstance(result, ConversionResult):
        raise TypeError("result must be a ConversionResult (from ConversionModel(...).fit()), "
                        f"got {type(result).__name__}")
    if isinstance(ci_prob, bool) or not isinstance(ci_prob, numbers.Real) \
            or not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be a number in (0, 1), got {ci_prob!r}")
    ci_prob = float(ci_prob)
    horizon = _check_horizon(horizon)
    rope = _check_rope(rope)
    post = result.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    if getattr(result, "sampler", None) == "map" or n < 2:
        raise ValueError("compare needs posterior draws, but this result has a single draw "
                         f"(sampler={getattr(result, 'sampler', None)!r}, e.g. a MAP fit); "
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
    arms = [str(control), *keys]

    values = {"eventual": result.eventual_rate().sel(cohort=arms)}
    if horizon is not None:
        values["by_horizon"] = result.curves([horizon]).isel(t=0, drop=True).sel(cohort=arms)
    arr = np.stack([v.transpose("cohort", "chain", "draw").values for v in values.values()])
    rate = xr.DataArray(arr.astype(float), dims=("metric", "arm", "chain", "draw"),
                        coords={"metric": list(values), "arm": arms,
                                "chain": post["chain"].values, "draw": post["draw"].values})
    rate.name = "rate"
    from .persistence import DataNotSavedError

    try:
        ident = result.identification()["weakly_identified"]
        weak = [label for label in [control, *treatments] if bool(ident.loc[label])]
    except DataNotSavedError:  # a result saved without its data: identification unknown
        weak = []
    return Readout(rate, control=control, treatments=treatments, ci_prob=ci_prob,
                   horizon=horizon, rope=rope, higher_is_better=bool(higher_is_better),
                   time_unit=result.data.time_unit, weakly_identified=weak,
                   arm_column=result.data.cohort_name)


class Readout:
    """The result of :func:`compare`: arm-versus-control summaries and the draws behind them.

    Attributes
    ----------
    draws : xarray.Dataset
        ``rate`` (metric, arm, chain, draw): each arm's rate, control first; ``diff`` and
        ``lift`` (metric, treatment, chain, draw): treatment − control and
        treatment / control − 1. Arm and treatment coordinates are ``str(label)``.
    control : label
        The control cohort label (as in ``result.data.cohorts``).
    treatments : list of labels
    metrics : tuple of str
        ``("eventual",)`` or ``("eventual", "by_horizon")``.
    ci_prob : float
    horizon : float or None
        In ``time_unit``.
    rope : (float, float) or None
        On the absolute difference, in rate units.
    higher_is_better : bool
    time_unit : str
        Time unit of the data (and of ``horizon``).
    weakly_identified : list of labels
        Compared arms whose eventual rate the data barely identify
        (:meth:`ConversionResult.identification`).
    arm_column : str or None
        Name of the arm (cohort) column; displays name numeric arms as ``fin=1``.
    lead : str
        The metric the display leads with: ``"by_horizon"`` when there is a horizon and an
        arm's eventual rate is weakly identified (the horizon readout is what the data
        support), else ``"eventual"``.
    """

    def __init__(self, rate: xr.DataArray, *, control, treatments, ci_prob, horizon, rope,
                 higher_is_better, time_unit, weakly_identified=(), arm_column=None):
        self.weakly_identified = list(weakly_identified)
        self.arm_column = arm_column
        self.control = control
        self.treatments = list(treatments)
        self.ci_prob = ci_prob
        self.horizon = horizon
        self.rope = rope
        self.higher_is_better = higher_is_better
        self.time_unit = time_unit
        self.metrics = tuple(str(m) for m in rate["metric"].values)
        ctrl = rate.sel(arm=str(control), drop=True)
        tr = rate.sel(arm=[str(t) for t in self.treatments]).rename(arm="treatment")
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = tr / ctrl - 1
        self.draws = xr.Dataset({"rate": rate, "diff": tr - ctrl, "lift": lift})
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
        return "eventual"

    def arm_label(self, label) -> str:
        """How an arm is named in text: ``"B"``, or ``"fin=1"`` for a numeric or boolean label."""
        text = str(label)
        if self.arm_column and (isinstance(label, numbers.Number | np.bool_)
                                or text.lstrip("+-").replace(".", "", 1).isdigit()):
            return f"{self.arm_column}={text}"
        return text

    def metric_name(self, metric: str) -> str:
        """Plain-English name of a metric, e.g. "eventual rate" or "rate by 7 days"."""
        self._check_metric(metric)
        if metric == "eventual":
            return "eventual rate"
        return f"rate by {self.horizon:g} {unit_name(self.time_unit)}"

    def _check_metric(self, metric):
        if metric not in self.metrics:
            extra = "" if self.horizon is not None else \
                " (compare(..., horizon=h) adds 'by_horizon')"
            raise ValueError(f"metric {metric!r} is not one of {list(self.metrics)}{extra}")

    def _prob_best(self) -> xr.DataArray:
        """P(arm is best) per metric and arm; dims (metric, arm)."""
        rate = self.draws["rate"]
        best = rate.argmax("arm") if self.higher_is_better else rate.argmin("arm")
        out = np.stack([(best == i).mean(_SAMPLE).values for i in range(rate.sizes["arm"])],
                       axis=-1)
        return xr.DataArray(out, dims=("metric", "arm"),
                            coords={"metric": rate["metric"], "arm": rate["arm"]})

    # ------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per metric × treatment arm.

        Returns
        -------
        DataFrame with columns

        * ``metric`` ("eventual" or "by_horizon"), ``treatment``, ``control`` (labels);
        * ``control_mean``, ``control_lower``, ``control_upper``, ``treatment_mean``,
          ``treatment_lower``, ``treatment_upper``: posterior mean and HDI of each arm's rate;
        * ``diff_mean``, ``diff_lower``, ``diff_upper``: treatment − control (rate units);
        * ``lift_median``, ``lift_lower``, ``lift_upper``: treatment / control − 1
          (relative): the posterior median and HDI of the per-draw ratio, never its mean (a
          ratio's mean is dominated by control draws near 0); NaN where ``lift_defined`` is
          False;
        * ``lift_defined``: whether the control's rate is bounded away from 0, i.e. the lower
          end of its HDI is at least :data:`LIFT_MIN_HDI_RATIO` of the upper end;
        * ``prob_better``: P(treatment better than control);
        * ``loss_treatment``, ``loss_control``: expected loss of choosing that arm (rate
          units; see :func:`compare`);
        * ``prob_rope``: P(lower <= diff <= upper) for the ROPE (NaN without ``rope``);
        * ``prob_best``, ``control_prob_best``: P(best among control and all treatments) of
          the treatment and of the control (with one treatment, ``prob_best`` equals
          ``prob_better`` up to ties).

        ``.attrs`` holds ``ci_prob``, ``horizon``, ``time_unit``, ``rope``,
        ``higher_is_better`` and ``n_draws``.
        """
        if self._frame is not None:
            return self._frame.copy()
        d = self.draws
        rate_mean = d["rate"].mean(_SAMPLE)
        rate_hdi = _hdi(d["rate"], self.ci_prob)
        diff, lift = d["diff"], d["lift"]
        diff_hdi, lift_hdi = _hdi(diff, self.ci_prob), _hdi(lift, self.ci_prob)
        sign = 1.0 if self.higher_is_better else -1.0
        gain = sign * diff  # > 0 where the treatment is better
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
            for t in self.treatments:
                tk = str(t)
                sel = {"metric": m, "treatment": tk}

                def lo_hi(h, **s):
                    return (float(h.sel(**s, ci_bound="lower")),
                            float(h.sel(**s, ci_bound="upper")))

                c_lo, c_hi = lo_hi(rate_hdi, metric=m, arm=ck)
                t_lo, t_hi = lo_hi(rate_hdi, metric=m, arm=tk)
                d_lo, d_hi = lo_hi(diff_hdi, **sel)
                defined = bool(c_lo >= LIFT_MIN_HDI_RATIO * c_hi and c_hi > 0)
                l_lo, l_hi = lo_hi(lift_hdi, **sel) if defined else (np.nan, np.nan)
                l_med = float(lift.sel(**sel).median(_SAMPLE)) if defined else np.nan
                rows.append({
                    "metric": m, "treatment": t, "control": self.control,
                    "control_mean": float(rate_mean.sel(metric=m, arm=ck)),
                    "control_lower": c_lo, "control_upper": c_hi,
                    "treatment_mean": float(rate_mean.sel(metric=m, arm=tk)),
                    "treatment_lower": t_lo, "treatment_upper": t_hi,
                    "diff_mean": float(diff.sel(**sel).mean(_SAMPLE)),
                    "diff_lower": d_lo, "diff_upper": d_hi,
                    "lift_median": l_med, "lift_lower": l_lo, "lift_upper": l_hi,
                    "lift_defined": defined,
                    "prob_better": float(prob_better.sel(**sel)),
                    "loss_treatment": float(loss_t.sel(**sel)),
                    "loss_control": float(loss_c.sel(**sel)),
                    "prob_rope": float(prob_rope.sel(**sel)),
                    "prob_best": float(pbest.sel(metric=m, arm=tk)),
                    "control_prob_best": float(pbest.sel(metric=m, arm=ck)),
                })
        frame = pd.DataFrame(rows)
        frame.attrs.update(self._attrs())
        self._frame = frame
        return frame.copy()

    def arm_table(self) -> pd.DataFrame:
        """One row per metric × arm (control first): the arm's rate and its chance of being best.

        Returns
        -------
        DataFrame with columns ``metric``, ``arm`` (label), ``role`` ("control" or
        "treatment"), ``mean``, ``lower``, ``upper`` (posterior mean and HDI of the rate),
        ``prob_best`` (P(best among all arms); sums to 1 per metric) and ``loss``
        (E[best rate − this arm's rate], the expected loss of choosing this arm among all of
        them, rate units; mirrored when lower is better).
        """
        if self._arms is not None:
            return self._arms.copy()
        rate = self.draws["rate"]
        mean = rate.mean(_SAMPLE)
        h = _hdi(rate, self.ci_prob)
        pbest = self._prob_best()
        if self.higher_is_better:
            loss = (rate.max("arm") - rate).mean(_SAMPLE)
        else:
            loss = (rate - rate.min("arm")).mean(_SAMPLE)
        rows = []
        for m in self.metrics:
            for i, label in enumerate([self.control, *self.treatments]):
                k = str(label)
                rows.append({
                    "metric": m, "arm": label,
                    "role": "control" if i == 0 else "treatment",
                    "mean": float(mean.sel(metric=m, arm=k)),
                    "lower": float(h.sel(metric=m, arm=k, ci_bound="lower")),
                    "upper": float(h.sel(metric=m, arm=k, ci_bound="upper")),
                    "prob_best": float(pbest.sel(metric=m, arm=k)),
                    "loss": float(loss.sel(metric=m, arm=k)),
                })
        frame = pd.DataFrame(rows)
        frame.attrs.update(self._attrs())
        self._arms = frame
        return frame.copy()

    def _attrs(self) -> dict:
        return {"ci_prob": self.ci_prob, "horizon": self.horizon, "time_unit": self.time_unit,
                "rope": self.rope, "higher_is_better": self.higher_is_better,
                "n_draws": self.n_draws}

    # ------------------------------------------------------------------ display
    def headline(self, metric: str | None = None, treatment=None) -> str:
        """One plain-English sentence about one treatment arm on one metric.

        Parameters
        ----------
        metric : {"eventual", "by_horizon"}, optional
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
        f = self.to_frame()
        f = f[f["metric"] == metric]
        if treatment is None:
            row = f.iloc[0]
        else:
            match = f[f["treatment"].astype(str) == str(treatment)]
            if match.empty:
                raise ValueError(f"treatment {treatment!r} is not one of {self.treatments!r}")
            row = match.iloc[0]
        better = "better" if self.higher_is_better else "better (lower)"
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
        f = self.to_frame()
        order = {m: i for i, m in enumerate(self._ordered_metrics())}
        f = f.iloc[np.argsort([order[m] for m in f["metric"]], kind="stable")]
        p = f"{self.ci_prob:.0%}"

        def rate(prefix, r):
            return (f"{_pp(r[prefix + '_mean'])} [{_pp(r[prefix + '_lower'])}, "
                    f"{_pp(r[prefix + '_upper'])}]")

        rows = []
        for r in f.to_dict("records"):
            row = {
                "metric": self.metric_name(r["metric"]),
                "arms": f"{self.arm_label(r['treatment'])} vs {self.arm_label(r['control'])}",
                f"control [{p} HDI]": rate("control", r),
                f"treatment [{p} HDI]": rate("treatment", r),
                "difference (pp)": (f"{r['diff_mean'] * 100:+.2f} "
                                    f"[{r['diff_lower'] * 100:+.2f}, "
                                    f"{r['diff_upper'] * 100:+.2f}]"),
                "lift (median)": (f"{_pct(r['lift_median'])} [{_pct(r['lift_lower'])}, "
                                  f"{_pct(r['lift_upper'])}]" if r["lift_defined"]
                                  else "not defined"),
                "P(better)": f"{r['prob_better']:.3f}",
                "loss T / C (pp)": (f"{r['loss_treatment'] * 100:.3f} / "
                                    f"{r['loss_control'] * 100:.3f}"),
            }
            if self.rope is not None:
                row["P(ROPE)"] = f"{r['prob_rope']:.3f}"
            if len(self.treatments) > 1:
                row["P(best) T / C"] = f"{r['prob_best']:.3f} / {r['control_prob_best']:.3f}"
            rows.append(row)
        return pd.DataFrame(rows)

    def _footnote(self) -> str:
        direction = "higher" if self.higher_is_better else "lower"
        parts = [f"{self.n_draws} posterior draws; {direction} is better",
                 "rates as % of units; difference and expected losses in percentage points (pp)",
                 "loss = expected shortfall if you choose that arm"]
        if not self.to_frame()["lift_defined"].all():
            parts.append("a lift is not defined where the control's rate interval reaches 0")
        if self.rope is not None:
            lo, hi = self.rope
            parts.append(f"ROPE on the difference: [{lo * 100:+.2f}, {hi * 100:+.2f}] pp")
        return "; ".join(parts) + "."

    def __repr__(self) -> str:
        arms = ", ".join(self.arm_label(t) for t in self.treatments)
        head = f"Readout({arms} vs {self.arm_label(self.control)}; {self.ci_prob:.0%} HDI)"
        table = self._display_frame().to_string(index=False)
        return "\n".join([head, *self._headlines(), "", table, self._footnote()])

    def _repr_html_(self) -> str:
        heads = "".join(f"<p><b>{html.escape(h)}</b></p>" for h in self._headlines())
        table = self._display_frame().to_html(index=False, escape=True, border=0)
        return (f"<div class='bayesconv-readout'>{heads}{table}"
                f"<p style='font-size:smaller'>{html.escape(self._footnote())}</p></div>")

    # ------------------------------------------------------------------ plot
    def plot(self, ax=None, metric: str | None = None):
        """Posterior density of the absolute difference treatment − control, per treatment arm.

        The absolute difference (in percentage points) is shown rather than the relative lift so
        that the ROPE, which is defined on it, can be drawn on the same axis.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        metric : {"eventual", "by_horizon"}, optional
            Default: :attr:`lead` (the horizon readout when an eventual rate is weakly
            identified).

        Returns
        -------
        matplotlib.axes.Axes
            One density curve (Gaussian KDE of the draws) per treatment arm with its HDI
            shaded, a vertical line at 0 and, with a ROPE, a grey band.

        Raises
        ------
        ValueError
            Unknown metric (or "by_horizon" without ``horizon``).
        """
        import matplotlib.pyplot as plt
        from scipy.stats import gaussian_kde

        metric = self.lead if metric is None else metric
        self._check_metric(metric)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        f = self.to_frame()
        f = f[f["metric"] == metric]
        if self.rope is not None:
            lo, hi = self.rope
            ax.axvspan(lo * 100, hi * 100, color="0.5", alpha=0.2, lw=0,
                       label=f"ROPE [{lo * 100:+.2f}, {hi * 100:+.2f}] pp")
        for i, (t, row) in enumerate(zip(self.treatments, f.itertuples(), strict=True)):
            x = self.draws["diff"].sel(metric=metric, treatment=str(t)).values.ravel() * 100
            color = f"C{(i + 1) % 10}"
            lo, hi = row.diff_lower * 100, row.diff_upper * 100
            if np.ptp(x) > 0:
                pad = 0.1 * np.ptp(x)
                grid = np.linspace(x.min() - pad, x.max() + pad, 400)
                dens = gaussian_kde(x)(grid)
            else:  # all draws equal: a spike
                grid, dens = np.array([x[0]] * 2), np.array([0.0, 1.0])
            ax.plot(grid, dens, color=color, lw=2,
                    label=f"{self.arm_label(t)} − {self.arm_label(self.control)}: "
                          f"P(better) = {row.prob_better:.2f}")
            inside = (grid >= lo) & (grid <= hi)
            ax.fill_between(grid, 0, dens, where=inside, color=color, alpha=0.25, lw=0)
        ax.axvline(0.0, color="k", lw=1)
        ax.set_ylim(0, None)
        ax.set_xlabel(f"treatment − control, {self.metric_name(metric)} "
                      "(absolute difference, percentage points)")
        ax.set_ylabel("posterior density")
        direction = "higher" if self.higher_is_better else "lower"
        ax.set_title(f"posterior of the difference, {self.ci_prob:.0%} HDI shaded "
                     f"({direction} is better)", fontsize="medium")
        ax.legend(fontsize="small")
        return ax


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%" if np.isfinite(x) else str(x)


def _pp(x: float) -> str:
    return f"{x * 100:.2f}%"
