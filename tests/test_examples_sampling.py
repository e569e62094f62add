"""The cheapest bundled example samples without a divergence at the default settings (issue 15;
all of them: ``validation/examples_sampling.py``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from examples_sampling import fit_example, rossi_data  # noqa: E402


def test_rossi_fits_cleanly_at_the_defaults():
    # the demo's Rossi fit: weeks read as interval-censored (integer weeks), gamma lag,
    # independent priors for the two arms, nutpie 4 x 1000 draws, seed 2018; draws are
    # bit-reproducible on a machine (README "Reproducibility"), so this cannot pass by luck
    data = rossi_data()
    assert data.meta["resolution_read"] == "interval"
    r = fit_example(data, {"lag": "gamma"}, 2018)   # records the warnings it raises
    assert r["divergences"] == 0 and not r["warned"]
    assert r["max_r_hat"] <= 1.01 and r["min_ess_bulk"] >= 400
