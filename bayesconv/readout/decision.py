"""The expected-loss decision rule: ship an arm, keep the control, or keep waiting.

For posterior draws θ_a of a metric for each arm a (signed so that higher is better), the
expected loss of choosing arm a is

    L(a) = E[max_b θ_b − θ_a] ,

the expected shortfall against whichever arm is really best (with two arms, L(treatment) =
E[max(0, θ_C − θ_T)] and L(control) = E[max(0, θ_T − θ_C)]). The rule stops as soon as an
arm's expected loss is below a **threshold of caring** ε, in the metric's unit (0.002 = 0.2
percentage points of a rate), and otherwise keeps waiting (Chris Stucchio 2015, "Bayesian A/B
Testing at VWO", VWO technical whitepaper, §4). Unlike "P(better) > 0.95" it stops early when
the arms are practically equal and weighs how much is at stake, not only how sure we are of
the sign. Where several arms are below ε, any of them costs less than ε; the rule then keeps
the control (the status quo needs no change), so "ship" always means that keeping the control
would risk more than ε: L(control) ≥ ε > L(treatment). Otherwise the treatment of smallest
loss is shipped.

**Safe under repeated looks.** On its own the rule bounds the expected loss, not how often a
treatment that is no better gets shipped: the shipping loss is zero when the arms are equal,
and with daily looks the rule shipped such a treatment in about half (49%) of simulated A/A
tests (``validation/peeking.md``, 2,000 units per arm and day); likewise it kept the control
in 7% of tests whose treatment was 10% better, on an early fluctuation. So by default a ship,
and a keep because the treatment is worse, also need evidence that the arms differ which stays
valid whenever and however often one looks (a keep because the arms are practically equal,
every loss below ε, needs none: it takes precision, which luck does not give): a Bayes factor

    BF = N(Δ̂; 0, V + τ²) / N(Δ̂; 0, V)

of "the difference is Normal(0, τ²)" against "no difference", for the posterior mean Δ̂ and
variance V of the difference, of at least 1/α. This is the mixture sequential probability ratio
test (Robbins 1970, "Statistical methods related to the law of the iterated logarithm", *Ann.
Math. Statist.* 41(5); Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B tests", KDD '17):
under no difference, BF is a nonnegative martingale, so by Ville's inequality the chance that it
*ever* reaches 1/α is at most α, at any schedule of looks. Δ̂ and V come from the conversion
model, so maturing units count as what they are (censored), not as non-converters. With several
treatments each needs 1/(α/k) (Bonferroni). ``alpha=None`` gives Stucchio's rule alone.

With a region of practical equivalence (ROPE) on the difference treatment − control, the rule
also stops, keeping the control, when the HDI of every treatment's difference lies inside the
ROPE (Kruschke 2018, "Rejecting or accepting parameter values in Bayesian estimation",
*Advances in Methods and Practices in Psychological Science* 1(2)).
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ALPHA", "EFFECT_SCALE", "Decision", "apply_rule", "check_threshold", "decide",
           "expected_losses", "log_bayes_factor"]

#: The three outcomes of the rule.
ACTIONS = ("ship", "keep", "wait")
#: Default bound on the chance of ever shipping a treatment that is no better.
ALPHA = 0.05
#: Default sd τ of the mixing Normal(0, τ²) of the difference, in multiples of the threshold of
#: caring: the effects worth detecting are several times what a wrong choice may cost.
EFFECT_SCALE = 10.0


def log_bayes_factor(diff: np.ndarray, tau: float) -> np.ndarray:
    """log BF of a Normal(0, τ²) difference against none, from draws of the difference.

    Parameters
    ----------
    diff : ndarray of shape (..., n_draws)
        Draws of treatment − control (signed so that higher is better, or not: BF is even in
        the difference).
    tau : float
        Sd of the mixing distribution, in the metric's unit.

    Returns
    -------
    ndarray of shape (...)
        ½ log(V / (V + τ²)) + Δ̂² τ² / (2 V (V + τ²)), for the draws' mean Δ̂ and variance V
        (Johari et al. 2017, eq. 11 with a normal likelihood for Δ̂).
    """
    diff = np.asarray(diff, dtype=float)
    m, v = diff.mean(axis=-1), diff.var(axis=-1)
    t2 = float(tau) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * np.log(v / (v + t2)) + m ** 2 * t2 / (2 * v * (v + t2))
    return np.where(v > 0, out, np.inf)


def expected_losses(signed: np.ndarray) -> np.ndarray:
    """Expected loss of choosing each arm, E[max_b θ_b − θ_a].

    Parameters
    ----------
    signed : ndarray of shape (..., n_arms, n_draws)
        Draws of each arm's metric, signed so that higher is better.

    Returns
    -------
    ndarray of shape (..., n_arms), >= 0, in the metric's unit.
    """
    signed = np.asarray(signed, dtype=float)
    return (signed.max(axis=-2, keepdims=True) - signed).mean(axis=-1)


def check_threshold(threshold, kind: str | None = None) -> float:
    """``threshold`` as a float > 0.

    Parameters
    ----------
    threshold : float
    kind : {"rate", "time"}, optional
        The kind of the metric it is for (:class:`bayesconv.readout.metrics.Metric`): a
        rate's threshold is a fraction, so it must be below 1.

    Raises
    ------
    ValueError
        Not a finite number > 0; 1 or more for a rate (percentage points given as a number,
        2 for 2 pp, where the unit is a fraction: 0.02).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not np.isfinite(threshold) or threshold <= 0:
        raise ValueError("threshold must be a finite number > 0 in the metric's unit (rates: "
                         f"0.002 = 0.2 percentage points), got {threshold!r}")
    if kind == "rate" and threshold >= 1:
        raise ValueError(f"threshold={threshold!r} is {threshold * 100:g} percentage points: a "
                         "rate's threshold is a fraction (0.002 = 0.2 percentage points, 0.02 = "
                         "2)")
    return float(threshold)


def decide(losses: np.ndarray, threshold: float, *, equivalent: bool = False,
           log_bf: np.ndarray | None = None, alpha: float | None = None) -> int | None:
    """The index of the arm the rule chooses, or None to keep waiting.

    Parameters
    ----------
    losses : ndarray of shape (n_arms,)
        :func:`expected_losses` of the arms, control first.
    threshold : float
        The threshold of caring (> 0, the metric's unit).
    equivalent : bool, default False
        Whether every treatment's HDI of the difference lies inside the ROPE: then the
        control (index 0) is kept.
    log_bf, alpha : ndarray of shape (n_arms - 1,) and float, optional
        :func:`log_bayes_factor` per treatment and the bound α: a treatment is shipped only if
        its log BF reaches log(k/α) for k treatments (no evidence is asked without them).

    Returns
    -------
    int or None
        0 keeps the control: ``equivalent``, or its loss is below ``threshold`` and either
        every treatment's is too (the arms are practically equal) or, with ``alpha``, the
        evidence that every treatment differs is safe; i > 0 ships treatment i, the treatment
        of smallest loss, when that loss is below ``threshold``, the control's is not and,
        with ``alpha``, its evidence is safe; None keeps waiting.
    """
    losses = np.asarray(losses, dtype=float)
    safe = None if alpha is None or log_bf is None \
        else np.asarray(log_bf) >= np.log((len(losses) - 1) / alpha)
    if equivalent:
        return 0
    if losses[0] < threshold:
        # every arm within the threshold: practically equal, which takes precision, not luck;
        # else a treatment is worse, which must be as safe as a ship
        if safe is None or np.all(losses[1:] < threshold) or np.all(safe):
            return 0
        return None
    best = 1 + int(np.argmin(losses[1:]))
    if not losses[best] < threshold:
        return None
    if safe is not None and not safe[best - 1]:
        return None
    return best


def apply_rule(signed: np.ndarray, threshold: float, *, alpha: float | None = ALPHA,
               effect_scale: float = EFFECT_SCALE, equivalent: bool = False):
    """The rule on draws of each arm's metric: what :meth:`bayesconv.Readout.decision`,
    :func:`bayesconv.project` and the validation studies all apply.

    Parameters
    ----------
    signed : ndarray of shape (n_arms, n_draws)
        Control first; signed so that higher is better.
    threshold, alpha, effect_scale, equivalent
        See :meth:`bayesconv.Readout.decision` and :func:`decide`.

    Returns
    -------
    chosen : int or None
        As :func:`decide`.
    losses : ndarray of shape (n_arms,)
    log_bf : ndarray of shape (n_arms - 1,)
    """
    losses = expected_losses(signed)
    log_bf = log_bayes_factor(signed[1:] - signed[0], effect_scale * threshold)
    chosen = decide(losses, threshold, equivalent=equivalent, log_bf=log_bf, alpha=alpha)
    return chosen, losses, log_bf


@dataclass(frozen=True)
class Decision:
    """What the expected-loss rule says today (:meth:`bayesconv.Readout.decision`).

    Attributes
    ----------
    action : {"ship", "keep", "wait"}
        Ship a treatment arm, keep the control, or keep waiting.
    arm : label or None
        The arm chosen (None while waiting).
    metric : str
        The readout metric decided on.
    metric_name : str
        Its name in words ("eventual rate").
    threshold : float
        Threshold of caring, in the metric's unit.
    losses : dict
        Arm label -> expected loss of choosing it (metric's unit), control first.
    prob_better : dict
        Treatment label -> P(better than the control) on the metric.
    control : label
    equivalent : bool
        Whether the ROPE rule kept the control (every treatment's HDI inside the ROPE).
    alpha : float or None
        The bound on ever shipping a treatment that is no better (None: Stucchio's rule alone).
    bayes_factor : dict
        Treatment label -> the Bayes factor of a difference against none (empty without
        ``alpha``); a ship needs at least ``k / alpha``.
    unit : str
        How differences are shown: "pp" for rates, else the time unit's name.
    scale : float
        Factor from the metric's unit to the displayed one (100 for rates).
    days_left : float or None
        Set by :func:`bayesconv.project`: the median number of days until the rule fires.
    labels : dict
        Arm label -> its name in text (``"fin=1"`` for numeric arms).
    """

    action: str
    arm: object
    metric: str
    metric_name: str
    threshold: float
    losses: dict
    prob_better: dict
    control: object
    equivalent: bool = False
    alpha: float | None = None
    bayes_factor: dict = field(default_factory=dict)
    unit: str = "pp"
    scale: float = 100.0
    days_left: float | None = None
    days_left_note: str = ""
    labels: dict = field(default_factory=dict)

    def _name(self, label) -> str:
        return self.labels.get(str(label), str(label))

    def _fmt(self, x: float) -> str:
        return f"{x * self.scale:.3g} {self.unit}"

    @property
    def headline(self) -> str:
        """The decision in a few words: "ship B", "keep A" or "keep waiting"."""
        if self.action == "wait":
            return "keep waiting"
        return f"{'ship' if self.action == 'ship' else 'keep'} {self._name(self.arm)}"

    @property
    def text(self) -> str:
        """The decision and its reason in one sentence."""
        thr = self._fmt(self.threshold)
        on = f"on the {self.metric_name}"
        if self.action == "wait":
            parts = ", ".join(f"{self._name(a)} {self._fmt(v)}" for a, v in self.losses.items())
            low = [a for a, v in self.losses.items() if v < self.threshold]
            need = len(self.bayes_factor) / self.alpha if self.alpha else np.inf
            bf = ", ".join(f"{self._name(t)} {b:.3g}" if len(self.bayes_factor) > 1
                           else f"{b:.3g}" for t, b in self.bayes_factor.items())
            if low and self.alpha is not None and str(low[0]) == str(self.control):
                out = (f"keep waiting: keeping {self._name(self.control)} risks less than the "
                       f"threshold of {thr} {on} ({self._fmt(self.losses[self.control])}), but "
                       "the evidence that the treatment is worse is not yet safe under "
                       f"repeated looks (Bayes factor {bf} < {need:g})")
            elif low and self.alpha is not None:
                a = low[0]
                out = (f"keep waiting: {self._name(a)}'s expected loss {on} is below the "
                       f"threshold of {thr} ({self._fmt(self.losses[a])}), but the evidence "
                       f"that it differs from {self._name(self.control)} is not yet safe under "
                       f"repeated looks (Bayes factor {self.bayes_factor[a]:.3g} < {need:g})")
            else:
                out = (f"keep waiting: no arm's expected loss {on} is below the threshold of "
                       f"{thr} (expected loss of choosing {parts})")
            if self.days_left is not None:
                out += f"; {self.days_left_note or _days(self.days_left)}"
            return out
        if self.equivalent:
            return (f"{self.headline}: every treatment's difference {on} lies inside the "
                    "region of practical equivalence")
        others = ", ".join(f"{self._name(a)} {self._fmt(v)}" for a, v in self.losses.items()
                           if str(a) != str(self.arm))
        if self.action == "keep" and min(self.losses.values()) < self.losses[self.arm]:
            return (f"{self.headline}: the arms differ by less than the threshold of caring "
                    f"{on} (expected loss of keeping it {self._fmt(self.losses[self.arm])}, "
                    f"of choosing {others}, all below {thr})")
        out = (f"{self.headline}: its expected loss {on} is {self._fmt(self.losses[self.arm])}"
               f", below the threshold of {thr} (choosing {others} instead)")
        if self.action == "ship" and self.alpha is not None:
            out += (f"; Bayes factor of a difference {self.bayes_factor[self.arm]:.3g}, safe "
                    f"under repeated looks at α = {self.alpha:g}")
        elif self.action == "keep" and self.alpha is not None and not self.equivalent:
            bf = ", ".join(f"{self._name(t)} {b:.3g}" if len(self.bayes_factor) > 1
                           else f"{b:.3g}" for t, b in self.bayes_factor.items())
            out += (f"; the treatment is worse, Bayes factor of a difference {bf}, safe under "
                    f"repeated looks at α = {self.alpha:g}")
        return out

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Decision({self.text})"

    def _repr_html_(self) -> str:
        return f"<p><b>Decision</b> (expected-loss rule): {html.escape(self.text)}</p>"

    def replace(self, **changes) -> Decision:
        """A copy with some fields changed."""
        from dataclasses import replace

        return replace(self, **changes)


def _days(days: float) -> str:
    if not np.isfinite(days):
        return "no decision expected within the projected days"
    return f"~{days:.0f} days left" if days >= 1.5 else "~1 day left"
