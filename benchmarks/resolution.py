"""Cost of reading day-floored times as interval-censored, per log-density evaluation.

The formula benchmark's data (``benchmarks/formula.py``: 2 arms × 4 platforms × 12 signup
weeks, day resolution) read by ``prepare(..., resolution=None)`` (exact times: exact
conversions enter through per-cell sufficient statistics) and by ``resolution="auto"``
(interval-censored within their day: quadrature nodes per row); for each, the time of one
log-density-and-gradient evaluation of the formula model's PyMC graph compiled with numba,
the quantity the NUTS cost scales with. Prints a markdown table with the ratio.

    .venv/bin/python benchmarks/resolution.py [--units 200000] [--repeat 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import pandas as pd
    from formula import FORMULA, gen

    import bayesconv as bc

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "events.parquet")
        gen(path, args.units, 14)
        events = pd.read_parquet(path)
    rows = []
    for reading in (None, "auto"):
        data = bc.prepare(events, created="created", converted="converted",
                          observed_until="observed_until", cohort="variant",
                          covariates=["platform", "signup_week"], resolution=reading)
        model = bc.ConversionModel(data, formula=FORMULA)
        kinds = {bc.model.RowKind(int(k)).name: int((model.rows.kind == k).sum())
                 for k in np.unique(model.rows.kind)}
        fn = model.pymc_model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")
        fn.set_extra_values({})
        point = model.pymc_model.initial_point()
        x0 = np.concatenate([np.ravel(point[v.name]) for v in fn._grad_vars])
        fn(x0)
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            fn(x0)
        ms = (time.perf_counter() - t0) / args.repeat * 1e3
        rows.append((str(reading), data.n_rows, kinds, ms))
    base = rows[0][3]
    print(f"# Log density + gradient, formula model, {args.units:,} units\n")
    print("| resolution= | rows | row kinds | ms per evaluation | × exact |")
    print("|---|---|---|---|---|")
    for reading, n, kinds, ms in rows:
        text = ", ".join(f"{k} {v:,}" for k, v in kinds.items())
        print(f"| {reading} | {n:,} | {text} | {ms:.2f} | {ms / base:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
