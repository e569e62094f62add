"""How well the data identify each cohort's eventual rate, and the warning when they barely do.

The eventual rate is identified by the data only as far as follow-up reaches into the lag
distribution; beyond that it is an extrapolation of the lag family and the prior.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from ..errors import IdentificationWarning
from ..lags.namespace import NP
from .cells import Draws
from .diagnostics import beyond, hdi

__all__ = ["WEAK_FOLLOWUP_SHARE", "WEAK_HDI_WIDTH", "identification", "warn_weak_identification"]

#: A cohort's eventual rate is flagged as weakly identified below this follow-up share ...
WEAK_FOLLOWUP_SHARE = 0.75
#: ... or above this 94% HDI width.
WEAK_HDI_WIDTH = 0.3


def identification(draws: Draws, data: ConversionData, by=None) -> pd.DataFrame:
    """How well the data pin each cohort's (or each level of ``by``'s) eventual rate.

    Two measures per cohort:

    * ``followup_share``: posterior mean of F(longest follow-up), the share of eventual
      converters who would have converted by the longest follow-up (of each of the cohort's
      cells, averaged over their units);
    * ``rate_hdi_width``: width of the 94% HDI of the cohort's eventual rate.

    A cohort is flagged ``weakly_identified`` when ``followup_share`` < 0.75 (most of the
    eventual rate is extrapolated) or the HDI is wider than 0.3.

    Parameters
    ----------
    draws : Draws
    data : ConversionData
    by : str or list of str, optional
        Column(s) of the cell table: the measures per level, from the unit-weighted averages
        of its cells (default: per cohort).

    Returns
    -------
    DataFrame indexed by cohort (or by the level labels of ``by``) with columns
    ``followup_share``, ``rate_hdi_width`` and ``weakly_identified``.
    """
    fmax = data.longest_followup()
    tt = xr.DataArray(fmax, dims="cell", coords={"cell": draws.rate["cell"]})
    f_end = np.exp(xr.apply_ufunc(lambda x, *a: draws.family.logcdf(x, *a, xp=NP),
                                  tt, *draws.lag))
    share = draws.average(f_end, by).mean(("chain", "draw"))
    width = hdi(draws.average(draws.rate, by), 0.94).diff("ci_bound").squeeze("ci_bound",
                                                                              drop=True)
    index = (pd.Index(data.cohorts, name=data.cohort_name or "cohort") if by is None else
             pd.Index(share[share.dims[-1]].values, name=share.dims[-1]))
    out = pd.DataFrame({"followup_share": share.values, "rate_hdi_width": width.values},
                       index=index)
    out["weakly_identified"] = ((out["followup_share"] < WEAK_FOLLOWUP_SHARE)
                                | (out["rate_hdi_width"] > WEAK_HDI_WIDTH))
    return out


def warn_weak_identification(table: pd.DataFrame, stacklevel: int = 2) -> None:
    """An :class:`~bayesconv.IdentificationWarning` naming the weakly identified cohorts.

    Parameters
    ----------
    table : DataFrame from :func:`identification`.
    """
    weak = table[table["weakly_identified"]]
    if not len(weak):
        return
    parts = []
    for label, row in weak.iterrows():
        why = []
        if row.followup_share < WEAK_FOLLOWUP_SHARE:
            why.append(f"follow-up reaches only "
                       f"{beyond(row.followup_share, WEAK_FOLLOWUP_SHARE, percent=True)} of "
                       f"the lag distribution (< {WEAK_FOLLOWUP_SHARE:.0%})")
        if row.rate_hdi_width > WEAK_HDI_WIDTH:
            why.append(f"its 94% HDI is {beyond(row.rate_hdi_width, WEAK_HDI_WIDTH)} wide "
                       f"(> {WEAK_HDI_WIDTH})")
        parts.append(f"{label}: {' and '.join(why)}")
    warnings.warn(IdentificationWarning(
        f"the eventual rate is weakly identified for {len(weak)} cohort(s): "
        f"{'; '.join(parts)}. The data barely constrain it, so it is mostly extrapolation "
        "and prior", "prefer a readout by a horizon within the follow-up "
        "(compare(..., horizon=...))", "weak_identification"), stacklevel=stacklevel)
