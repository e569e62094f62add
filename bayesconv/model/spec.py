"""ModelSpec: everything that defines a model besides the data values, in one place.

The same spec is what results carry, what the on-disk format stores and what the compile
cache keys on, through :meth:`ModelSpec.to_dict` and :meth:`ModelSpec.from_dict` (plain
JSON-able values).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..lags import get_lag

__all__ = ["ModelSpec"]


#: How a pooling reads in a sentence ("gamma lag, no pooling").
_POOLING_WORDS = {"none": "no"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a model besides the data values.

    Attributes
    ----------
    lag : str
        Lag family name.
    pooling : str
        "partial", "none" or "complete" (resolved; never "auto").
    priors : dict
        The merged priors (:data:`bayesconv.model.DEFAULT_PRIORS` and overrides).
    parametrization : dict
        Per parameter group ("logit_rate", "log_lag_loc"), per cohort: "centered" or
        "noncentered" (empty unless ``pooling="partial"``).
    time_scale : float
        The internal time unit, in the data's time unit.
    zero_width : float
        Width of the first bin for conversions at duration 0, in the data's time unit.
    formula : dict
        Parameter name -> formula (:mod:`bayesconv.model.formula`); parameters not in it keep
        the design ``pooling`` gives them over cohorts. Empty: the one-factor model.
    """

    lag: str
    pooling: str
    priors: dict
    parametrization: dict
    time_scale: float
    zero_width: float
    formula: dict = field(default_factory=dict)

    def describe(self) -> str:
        """The model in a few words, for warnings, reports and reprs.

        Without a formula: "gamma lag, partial pooling". With one, the formulas, then how each
        parameter they leave out varies by cohort (as the builder makes it): "gamma lag;
        eventual_rate ~ variant + (1 | platform); lag_loc ~ variant; lag_shape: one per
        cohort".
        """
        if not self.formula:
            return f"{self.lag} lag, {_POOLING_WORDS.get(self.pooling, self.pooling)} pooling"
        parts = [f"{self.lag} lag"] + [f"{k} ~ {v}" for k, v in self.formula.items()]
        for name in ("eventual_rate", "lag_loc"):
            if name not in self.formula:
                parts.append(f"{name}: {_POOLING_WORDS.get(self.pooling, self.pooling)} "
                             "pooling over cohorts")
        for param in get_lag(self.lag).extra_params:
            if param.var not in self.formula:
                one = param.shared or self.pooling == "complete"
                parts.append(f"{param.var}: one {'for all cohorts' if one else 'per cohort'}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """The spec as plain JSON-able values (tuples become lists)."""
        return {"lag": self.lag, "pooling": self.pooling, "priors": self.priors,
                "parametrization": {k: list(v) for k, v in self.parametrization.items()},
                "time_scale": float(self.time_scale), "zero_width": float(self.zero_width),
                "formula": dict(self.formula)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        """Invert :meth:`to_dict`.

        Raises
        ------
        KeyError
            A field is missing (its name is the key).
        """
        kwargs = {f.name: values[f.name] for f in dataclasses.fields(cls)
                  if f.name in values or f.default_factory is dataclasses.MISSING}
        kwargs["parametrization"] = {k: tuple(v) for k, v in kwargs["parametrization"].items()}
        kwargs["time_scale"] = float(kwargs["time_scale"])
        kwargs["zero_width"] = float(kwargs["zero_width"])
        return cls(**kwargs)
