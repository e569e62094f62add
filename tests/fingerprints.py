"""Fingerprints of today's numbers, to hold a restructuring of the package to them.

``compute()`` fits the demo's NYC complaints model and reads out the Rossi experiment with fixed
seeds and returns posterior means and sds of every variable, and the ``summary()``,
``compare(...).to_frame()`` and ``nowcast()`` tables, as plain JSON-able values.
``python tests/fingerprints.py`` writes them to ``tests/fixtures/fingerprints.json``; the test
``test_fingerprints.py`` recomputes them and compares. Recorded with the code of issues 19 and
12, before the package was reorganised into layers (issue 13), in empty compile caches: a first
recording on this machine's warm caches had picked up an incomplete-gamma kernel compiled under
a fast-math caller (numba's flag inheritance, fixed in bayesconv.lags.incgamma), and differed in
the last digits. Re-recorded (empty caches again) for issue 14, when the longest follow-up of a
cell became its oldest unit's age (``ConversionData.longest_followup``) instead of its longest
recorded duration: of all the numbers only the NYC summary's ``followup_share`` moved (by up to
0.0026), and two others in their last digit. Re-recorded (empty caches) for issue 15 on a
different CPU (rocketlake; before: znver4), when partial pooling gave the cohorts' lag shapes a
shared mean with a fixed spread: the NYC posterior means moved by at most 2.5 Monte Carlo
standard errors of the difference, Rossi's (no pooling, the same model) by 1.7, from the CPU.
Re-recorded (empty caches, znver4) for issue 15 when the lags of cohorts without pooling were
tied by a learned mean with a fixed spread and such fits moved to target_accept 0.9: Rossi's
numbers moved (another model); the NYC numbers (partial pooling, unchanged) agree with the
rocketlake recording to a relative 1e-13, and their R-hats to 1e-4.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

PATH = Path(__file__).parent / "fixtures" / "fingerprints.json"


def _table(frame) -> dict:
    out = {"_index": [str(i) for i in frame.index]}
    for col in frame.columns:
        values = frame[col].tolist()
        out[str(col)] = [v if isinstance(v, str | bool) or v is None else
                         (None if isinstance(v, float) and np.isnan(v) else float(v))
                         for v in values]
    return out


def _posterior(result) -> dict:
    import arviz_stats as azs

    post = result.posterior
    mcse = azs.mcse(post)
    return {name: {"mean": np.asarray(post[name].mean(("chain", "draw"))).ravel().tolist(),
                   "sd": np.asarray(post[name].std(("chain", "draw"))).ravel().tolist(),
                   "mcse": np.asarray(mcse[name]).ravel().tolist()}
            for name in sorted(post.data_vars)}


def platform() -> dict:
    """What bit-identical draws depend on: the CPU llvmlite compiles for, and the versions."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    return {"cpu": llvm.get_host_cpu_name(), "features": llvm.get_host_cpu_features().flatten(),
            **{p: version(p) for p in ("numpy", "pytensor", "numba", "llvmlite", "nutpie",
                                       "pymc")}}


def compute() -> dict:
    import bayesconv as bc

    out = {"platform": platform()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = bc.datasets.load_dob_violations()
        sizes = events["bucket"].value_counts()
        events = events[events["bucket"].isin(sizes[sizes >= 100].index)].copy()
        events["bucket"] = events["bucket"].cat.remove_unused_categories()
        data = bc.prepare(events, created="issue_date", converted="disposition_date",
                          observed_until="2024-06-30", cohort="bucket", time_unit="Y")
        nyc = bc.ConversionModel(data, lag="gamma", pooling="partial").fit(
            draws=400, chains=2, random_seed=7, progressbar=False)
        out["nyc"] = {"posterior": _posterior(nyc), "summary": _table(nyc.summary()),
                      "nowcast": _table(nyc.nowcast(random_seed=0))}
        rossi = bc.prepare(bc.datasets.load_rossi(), duration="week", event="arrest",
                           cohort="fin", time_unit="W")
        res = bc.ConversionModel(rossi).fit(draws=400, chains=2, random_seed=1,
                                            progressbar=False)
        ro = bc.compare(res, 1, 0, horizon=52, higher_is_better=False, rope=0.01)
        out["rossi"] = {"posterior": _posterior(res), "summary": _table(res.summary()),
                        "readout": _table(ro.to_frame().drop(columns=["treatment", "control"])),
                        "nowcast": _table(res.nowcast(random_seed=0, within=26.0))}
    return out


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH}", file=sys.stderr)
