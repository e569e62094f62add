"""Where do a calibration data set's divergent draws sit? (issue 15, ``validation/sampling.md``)

Simulates data set ``--dataset`` of ``validation/calibration.py`` (one-factor) or, with
``--regression``, of ``validation/calibration_segments.py``, builds the default model, samples it
as ``validation/calibration.py`` does (package defaults, the study's seed) keeping each divergence's start point
(``store_divergences``), and prints the model's parametrization, the number of divergences and
NUTS steps per draw, and for each divergent draw every per-cohort (per-term) variable with its
posterior quantile: a divergence at a quantile near 0 or 1 of one variable names the geometry
(a between-group sd near 0: a funnel; a lag shape at an extreme: a shape the cohort's few
conversions do not pin).

    .venv/bin/python validation/divergent_draws.py --dataset 11
    .venv/bin/python validation/divergent_draws.py --dataset 23 --regression
    .venv/bin/python validation/divergent_draws.py --dataset 23 --regression --parametrization noncentered
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

import bayesconv as bc

sys.path.insert(0, str(Path(__file__).parent))


def build(index: int, seed: int, regression: bool, parametrization: str):
    """(model, truths, fit seed) of the data set, as the study fits it."""
    if regression:
        from calibration_segments import FORMULA, simulate

        events, cells, info = simulate(index, seed)
        data = bc.prepare(events, created="created", converted="converted",
                          observed_until="observed_until", cohort="cohort",
                          covariates=["segment", "score"])
        model = bc.ConversionModel(data, formula=FORMULA, parametrization=parametrization)
        return model, info, index   # calibration.py's one_regression_dataset seeds by index
    from calibration import simulate_dataset

    data, design, fit_seed = simulate_dataset(index, seed)
    return bc.ConversionModel(data, parametrization=parametrization), design, fit_seed


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=int, required=True, help="data set index (0-based)")
    ap.add_argument("--seed", type=int, default=2024, help="master seed of the study (2024)")
    ap.add_argument("--regression", action="store_true",
                    help="a data set of calibration_segments.py instead of calibration.py")
    ap.add_argument("--parametrization", default="auto",
                    choices=["auto", "centered", "noncentered"])
    ap.add_argument("--target-accept", type=float, default=None,
                    help="NUTS target acceptance (default: the package's for the model)")
    args = ap.parse_args(argv)
    model, truth, fit_seed = build(args.dataset, args.seed, args.regression,
                                   args.parametrization)
    print("truth:", {k: np.round(v, 3) if isinstance(v, np.ndarray) else v
                     for k, v in truth.items()})
    print("parametrization:", model.spec.parametrization)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ConvergenceWarning)   # the point is to look
        result = model.fit(random_seed=fit_seed, progressbar=False,
                           target_accept=args.target_accept,
                           sampler_kwargs={"store_divergences": True})
    stats, post = result.idata["sample_stats"], result.idata["posterior"]
    div = stats["diverging"].to_numpy()
    print(f"target_accept {post.attrs['target_accept']}: {int(div.sum())} divergences, "
          f"{float(stats['n_steps'].mean()):.1f} NUTS steps per draw")
    names = [v for v in post.data_vars if post[v].ndim <= 3 and not v.endswith("_cell")]
    for c, d in zip(*np.nonzero(div), strict=True):
        print(f"chain {c} draw {d}: {stats['divergence_message'].to_numpy()[c, d]}")
        for v in names:
            x = post[v].to_numpy()
            q = (x < x[c, d]).mean(axis=(0, 1))
            print(f"    {v}: {np.round(x[c, d], 3)} (quantile {np.round(q, 3)})")


if __name__ == "__main__":
    main()
