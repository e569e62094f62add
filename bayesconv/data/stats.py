"""Small weighted statistics of aggregated rows (counts as weights)."""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_median"]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Lower weighted median of ``values`` (ndarray of shape (n,)) with ``weights`` (n,)."""
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, cw[-1] / 2.0)])
