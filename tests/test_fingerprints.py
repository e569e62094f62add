"""Today's numbers, recorded before the package was reorganised, are still today's numbers.

``tests/fixtures/fingerprints.json`` holds posterior means, sds and Monte Carlo standard errors
of every variable and the summary, readout and nowcast tables of two seeded fits (the NYC demo
model and the Rossi readout; see ``tests/fingerprints.py``). On the platform they were recorded
on (CPU and library versions) the draws must be identical, so every number agrees to round-off.
Elsewhere draws for a seed may differ (README, "Reproducibility"), and the posterior means must
agree within 4 Monte Carlo standard errors of their difference.
"""

import json

import numpy as np
import pytest
from fingerprints import PATH, compute


@pytest.fixture(scope="module")
def now():
    return compute()


def _close(a, b, where):
    if isinstance(a, dict):
        assert set(a) == set(b), (where, sorted(set(a) ^ set(b)))
        for k in a:
            _close(a[k], b[k], f"{where}/{k}")
        return
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if isinstance(x, str | bool) or x is None:
            assert x == y, (where, i, x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12, err_msg=f"{where}[{i}]")


def _as_recorded(now: dict, recorded: dict) -> dict:
    """The readout tables restricted to what was recorded: later metrics (the median lag)
    add rows and a ``unit`` column, the rows and columns recorded must be unchanged."""
    out = json.loads(json.dumps(now))
    for fit, parts in recorded.items():
        if not isinstance(parts, dict) or "readout" not in parts:
            continue
        table, was = out[fit]["readout"], parts["readout"]
        keep = [i for i, m in enumerate(table["metric"]) if m in set(was["metric"])]
        out[fit]["readout"] = {col: [table[col][i] for i in keep] for col in was}
        out[fit]["readout"]["_index"] = was["_index"]
    return out


def test_numbers_are_unchanged(now):
    recorded = json.loads(PATH.read_text())
    if now["platform"] == recorded["platform"]:
        _close(_as_recorded(now, recorded), recorded, "")
        return
    for fit in ("nyc", "rossi"):
        for name, was in recorded[fit]["posterior"].items():
            new = now[fit]["posterior"][name]
            diff = np.abs(np.subtract(new["mean"], was["mean"]))
            tol = 4 * np.hypot(new["mcse"], was["mcse"]) + 1e-12
            assert np.all(diff <= tol), (fit, name, diff, tol)
