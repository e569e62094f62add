"""Command line: ``bayesconv demo`` (the main job on bundled real data)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import bayesconv as bc

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    events = bc.datasets.load_dob_violations()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bc.DataWarning)
        data = bc.prepare(events, created="issue_date", converted="disposition_date",
                          observed_until="now", cohort="bucket", time_unit="Y")
    for w in caught:
        print(f"note: {w.message}".split("; first:")[0], file=sys.stderr)
    table = data.cohort_table()
    print(f"NYC building complaints: {data!r}")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    km = bc.kaplan_meier(data)
    km.to_csv(out / "kaplan_meier.csv", index=False)
    ax = bc.plot_kaplan_meier(km)
    ax.set_title("NYC building complaints: Kaplan–Meier resolution by 5-year issue bucket")
    ax.figure.savefig(out / "kaplan_meier.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'kaplan_meier.csv'} and {out / 'kaplan_meier.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bayesconv`` argument parser."""
    parser = argparse.ArgumentParser(prog="bayesconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job on the bundled NYC complaints data")
    demo.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
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
