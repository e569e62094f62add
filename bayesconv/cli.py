"""Command line: ``bayesconv demo`` (the main job on bundled real data)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import time
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import bayesconv as bc

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    events = bc.datasets.load_dob_violations()
    sizes = events["bucket"].value_counts()
    small = sorted(sizes[sizes < args.min_rows].index)
    events = events[~events["bucket"].isin(small)].copy()
    events["bucket"] = events["bucket"].cat.remove_unused_categories()
    print(f"NYC building complaints ({len(events):,} of {sizes.sum():,} complaints; cohorts: "
          f"5-year buckets of issue date with >= {args.min_rows} rows; left out: {small})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bc.DataWarning)
        data = bc.prepare(events, created="issue_date", converted="disposition_date",
                          observed_until="now", cohort="bucket", time_unit="Y")
    for w in caught:
        print(f"note: {str(w.message).split('; first:')[0]}")
    model = bc.ConversionModel(data, lag="gamma", pooling="partial")
    print(f"fitting {model!r} with NUTS, {args.chains} chains x {args.draws} draws")
    result = model.fit(draws=args.draws, tune=args.tune, chains=args.chains,
                       random_seed=args.seed, progressbar=not args.no_progress)
    table = result.summary(ci_prob=0.94)
    cols = {"units": "units", "naive_rate": "naive", "km_end": "KM at end",
            "rate_mean": "eventual", "rate_lower": "HDI 3%", "rate_upper": "HDI 97%",
            "median_lag_mean": "median lag (y)", "r_hat": "R-hat", "ess_bulk": "ESS bulk"}
    shown = table[list(cols)].rename(columns=cols)
    print("\nEventual resolution rate by cohort (posterior mean, 94% HDI):")
    print(shown.to_string(float_format=lambda x: f"{x:.3f}", formatters={
        "units": "{:,}".format, "ESS bulk": "{:.0f}".format}))
    diag = result.diagnostics()
    print(f"\ndiagnostics: max R-hat {diag['max_r_hat']:.3f}, min ESS bulk "
          f"{diag['min_ess_bulk']:.0f}, tail {diag['min_ess_tail']:.0f}, divergences "
          f"{diag['divergences']}; sampler {result.sampler}, compile "
          f"{result.timing.get('compile_s', float('nan')):.1f} s, sampling "
          f"{result.timing['sampling_s']:.1f} s")
    table.to_csv(out / "summary.csv")
    ax = result.plot()
    ax.set_title("NYC building complaints: posterior resolution curves (94% HDI) over "
                 "Kaplan–Meier (dashed)", fontsize="medium")
    ax.figure.savefig(out / "curves.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'summary.csv'} and {out / 'curves.png'} "
          f"({time.perf_counter() - start:.0f} s in all)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bayesconv`` argument parser."""
    parser = argparse.ArgumentParser(prog="bayesconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job on the bundled NYC complaints data")
    demo.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
    demo.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    demo.add_argument("--tune", type=int, default=1000, help="tuning steps per chain")
    demo.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    demo.add_argument("--seed", type=int, default=2018, help="random seed")
    demo.add_argument("--min-rows", type=int, default=100,
                      help="smallest cohort kept (default 100 complaints)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesconv`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"bayesconv: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
