"""The JAX samplers on the NYC demo: sampling time and ESS per second beside nutpie (numba).

The demo's cohorts (``run.demo_data``: NYC building complaints, 5-year buckets, gamma lag,
partial pooling), 4 chains x 1000 draws, each sampler's default tuning, one process, the same
seed: nutpie with its numba back end (compiled model from the cache), nutpie's JAX back end,
NumPyro and BlackJAX (chains vectorised). "compile" is the separate compile step where there is
one (nutpie); NumPyro's and BlackJAX's JAX compilation is inside their sampling time.

Run: ``.venv/bin/python benchmarks/jax_samplers.py --out benchmarks/jax_samplers.md`` (about 10 min on 2 cores;
needs ``pip install 'bayesconv[jax]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as B  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=2018)
    ap.add_argument("--samplers", nargs="+",
                    default=["nutpie", "nutpie-jax", "numpyro", "blackjax"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import bayesconv as bc

    data = B.demo_data()
    model = bc.ConversionModel(data, lag="gamma", pooling="partial")
    rows = []
    for sampler in args.samplers:
        print(f"{sampler} ...", flush=True)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", bc.ConvergenceWarning)
            res = model.fit(draws=args.draws, chains=args.chains, random_seed=args.seed,
                            sampler=sampler, progressbar=False)
        wall = time.perf_counter() - t0
        diag = res.diagnostics()
        ess = min(diag["min_ess_bulk"], diag["min_ess_tail"])
        sampling = res.timing["sampling_s"]
        rate = res.eventual_rate().mean(("chain", "draw")).values
        rows.append({"sampler": sampler, "compile": res.timing.get("compile_s"),
                     "sampling": sampling, "wall": wall, "ess": ess,
                     "ess_s": ess / sampling, "rhat": diag["max_r_hat"],
                     "div": diag["divergences"], "warn": len(caught), "rate": rate})
        print(f"  {wall:.0f} s (sampling {sampling:.1f} s, min ESS {ess:.0f})", flush=True)
    ref = rows[0]
    lines = [f"# JAX samplers on the NYC demo ({data.n_units:,} units, {data.n_rows:,} rows, "
             f"{data.n_cohorts} cohorts; {args.chains} chains x {args.draws} draws; "
             f"{os.cpu_count()} cores)", "",
             "Re-run: `.venv/bin/python benchmarks/jax_samplers.py --out benchmarks/jax_samplers.md`", "",
             "| sampler | compile (s) | sampling (s) | wall (s) | min ESS | ESS / s | "
             f"sampling vs {ref['sampler']} | max R-hat | divergences | "
             "largest eventual-rate gap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = abs(r["rate"] - ref["rate"]).max()
        compile_s = f"{r['compile']:.1f}" if r["compile"] is not None else "(in sampling)"
        lines.append(f"| {r['sampler']} | {compile_s} | {r['sampling']:.1f} | {r['wall']:.1f} | "
                     f"{r['ess']:.0f} | {r['ess_s']:.0f} | {r['sampling'] / ref['sampling']:.1f}x"
                     f" | {r['rhat']:.3f} | {r['div']} | {gap:.4f} |")
    lines += ["", "The last column is the largest difference between a sampler's posterior mean "
              f"eventual rate and {ref['sampler']}'s, over the cohorts (rate units)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
