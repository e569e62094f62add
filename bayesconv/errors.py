"""The warnings bayesconv emits, each saying what is wrong and what to do about it, and its
one error class of its own.

Every warning carries its ``problem`` (what was found) and its ``remedy`` (what usually fixes
it, in terms of the Python API) separately; the message is the two joined. Front ends that
offer other means, such as the command line's options, print the problem with their own remedy.
"""

from __future__ import annotations

__all__ = ["BayesconvWarning", "ConvergenceWarning", "DataNotSavedError", "DataWarning",
           "IdentificationWarning", "ParetoKWarning"]


class BayesconvWarning(UserWarning):
    """Base class of bayesconv's warnings.

    Parameters
    ----------
    problem : str
        What was found.
    remedy : str, optional
        What to do about it, in terms of the Python API.
    kind : str, optional
        A machine-readable tag of the problem (e.g. ``"divergences"``).
    """

    def __init__(self, problem: str, remedy: str = "", kind: str = ""):
        super().__init__(f"{problem}; {remedy}" if remedy else problem)
        self.problem = problem
        self.remedy = remedy
        self.kind = kind


class DataWarning(BayesconvWarning):
    """Input data that was accepted but changed or looks wrong (never silently)."""


class ConvergenceWarning(BayesconvWarning):
    """The sampler's output fails a convergence check; do not trust its intervals yet.

    ``kind`` is ``"r_hat"``, ``"ess"`` or ``"divergences"``; ``pattern`` says where the
    trouble sits: for divergences ``"funnel"``, ``"lag_shape"`` or ``"ridge"``
    (:func:`bayesconv.posterior.diagnostics.divergence_pattern`), for any kind ``"ridge"``
    when a cohort's eventual rate and lag location are flagged together
    (:func:`~bayesconv.posterior.diagnostics.ridge_remedy`), else ``""`` (not localised);
    ``next_accept`` the NUTS ``target_accept`` worth trying after divergences (None: the fit's
    was 0.99 already; not meaningful for other kinds).
    """

    def __init__(self, problem: str, remedy: str = "", kind: str = "", pattern: str = "",
                 next_accept: float | None = 0.95):
        super().__init__(problem, remedy, kind)
        self.pattern = pattern
        self.next_accept = next_accept


class IdentificationWarning(BayesconvWarning):
    """The data barely constrain an eventual rate: it is mostly extrapolation and prior."""


class ParetoKWarning(BayesconvWarning):
    """PSIS-LOO is unreliable for some units of a model (Pareto k above the threshold)."""


class DataNotSavedError(ValueError):
    """A method needs the unit-level data, but the result was saved without them."""
