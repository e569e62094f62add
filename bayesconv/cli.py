"""bayesconv command line: ``demo`` (the main job on bundled real data) and ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.part in ("all", "cohorts"):
        _demo_cohorts(args)
    if args.part in ("all", "ab"):
        _demo_ab(args)
    return 0


def _demo_ab(args: argparse.Namespace) -> None:
    """Rossi et al. (1980): financial aid (fin=1) vs none, re-arrest within 52 weeks."""
    import time

    import bayesconv as bc

    start = time.perf_counter()
    out = Path(args.out) / "rossi"
    events = bc.datasets.load_rossi()
    data = bc.prepare(events, duration="week", event="arrest", cohort="fin", time_unit="W")
    print(f"\nRossi randomized experiment: {data!r}; fewer re-arrests is better")
    result = bc.ConversionModel(data, lag="gamma").fit(
        draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
        progressbar=not args.no_progress)
    readout = bc.compare(result, treatment=1, control=0, horizon=52, higher_is_better=False,
                         rope=0.01)
    print(readout)
    paths = bc.write_report(result, readout, out, title="Rossi experiment: financial aid and "
                            "re-arrest", source="Rossi, Berk & Lenihan (1980), 432 released "
                            "prisoners randomized to financial aid (fin=1) or not, followed 52 "
                            "weeks; the conversion is re-arrest.")
    print(f"wrote {paths['report']} and {paths['readout']} "
          f"({time.perf_counter() - start:.0f} s)")


def _demo_cohorts(args: argparse.Namespace) -> None:
    import time
    import warnings

    import bayesconv as bc

    out = Path(args.out)
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


def _read_events(path: str, date_columns=()):
    """An events file as a DuckDB relation: nothing is loaded into Python memory.

    CSV (optionally compressed) and Parquet are scanned by an embedded DuckDB, so the
    validation and aggregation in :func:`bayesconv.prepare` run in DuckDB and files larger
    than memory work. Columns in ``date_columns`` that DuckDB read as text (e.g. a column that
    is empty in every row) are cast to TIMESTAMP; text that is not an ISO 8601 date is an
    error naming the first such rows.

    Raises
    ------
    FileNotFoundError, ValueError
    """
    import duckdb

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"events file {path!r} does not exist")
    suffixes = "".join(p.suffixes).lower()
    con = duckdb.connect()
    if suffixes.endswith(".parquet") or suffixes.endswith(".pq"):
        rel = con.read_parquet(str(p))
    elif ".csv" in suffixes or ".txt" in suffixes:
        rel = con.read_csv(str(p))
    else:
        raise ValueError(f"cannot read {path!r}: expected a .csv (optionally .gz) or .parquet "
                         "file")
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    text = [c for c in dict.fromkeys(date_columns) if types.get(c) == "VARCHAR"]
    if not text:
        return rel

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    for col in text:
        bad = rel.filter(f"{q(col)} IS NOT NULL AND TRY_CAST({q(col)} AS TIMESTAMP) IS NULL")
        n_bad = bad.aggregate("count(*)").fetchall()[0][0]
        if n_bad:
            first = "; ".join(f"({col}={v!r})" for (v,) in bad.select(q(col)).limit(5).fetchall())
            more = f", and {n_bad - 5} more" if n_bad > 5 else ""
            rows = "row" if n_bad == 1 else "rows"
            raise ValueError(f"values in column {col!r} that are not ISO 8601 dates "
                             f"(YYYY-MM-DD[ HH:MM:SS]) in {n_bad} {rows}: {first}{more}")
    cols = ", ".join(f"TRY_CAST({q(c)} AS TIMESTAMP) AS {q(c)}" if c in text else q(c)
                     for c in rel.columns)
    return rel.select(cols)


def _report(args: argparse.Namespace) -> int:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import bayesconv as bc

    if args.horizon is not None and not (args.horizon > 0 and args.horizon < float("inf")):
        raise ValueError(f"--horizon must be a positive number of {args.time_unit}, "
                         f"got {args.horizon}")
    obs = args.observed_until
    events = _read_events(args.events, [args.created, args.converted, obs])
    kw = dict(created=args.created, converted=args.converted, observed_until=obs,
              cohort=args.cohort, time_unit=args.time_unit, bin_width=args.bin_width)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bc.DataWarning)
        data = bc.prepare(events, **kw)
    for w in caught:
        print(f"note: {str(w.message).split('; first:')[0]}")
    treatments = [t for group in args.treatment for t in group.split(",") if t]
    control = args.control
    labels = {str(c): c for c in data.cohorts}
    if control in treatments:
        raise ValueError(f"--treatment {control!r} is also the control arm; compare needs two "
                         "different arms")
    for arm in [control, *treatments]:
        if arm not in labels:
            raise ValueError(f"arm {arm!r} is not in column {args.cohort!r}; arms: "
                             f"{list(labels)}")
    # only the arms being compared are fitted
    keep = [labels[a] for a in [control, *treatments]]
    if len(keep) < data.n_cohorts:
        import narwhals as nw

        sub = nw.from_native(events).filter(
            nw.col(args.cohort).cast(nw.String).is_in([str(k) for k in keep])).to_native()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bc.DataWarning)  # already printed above
            data = bc.prepare(sub, **kw)
    print(f"fitting {data!r}")
    if args.bin_width is None and data.n_rows > 50_000:
        print(f"note: {data.n_rows:,} distinct rows (times recorded finely); the fit's cost grows "
              "with them: --bin-width 1 (one time unit) would bound them by about "
              "2 x follow-up per arm")
    result = bc.ConversionModel(data, lag=args.lag).fit(
        draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
        progressbar=not args.no_progress)
    readout = bc.compare(result, treatments if len(treatments) > 1 else treatments[0], control,
                         horizon=args.horizon, higher_is_better=not args.lower_is_better,
                         rope=args.rope)
    print(readout)
    paths = bc.write_report(result, readout, args.out, title=args.title or
                            f"Conversion readout: {', '.join(treatments)} vs {control}",
                            source=f"Events from {args.events}.")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (and exit code 2), not a usage block."""

    def error(self, message):
        self.exit(2, f"bayesconv: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``bayesconv`` argument parser."""
    parser = _Parser(prog="bayesconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="run the main job on the bundled real data")
    demo.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
    demo.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    demo.add_argument("--tune", type=int, default=None,
                      help="tuning steps per chain (default: 500 with nutpie, 1000 with PyMC)")
    demo.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    demo.add_argument("--seed", type=int, default=2018, help="random seed")
    demo.add_argument("--min-rows", type=int, default=100,
                      help="smallest cohort kept (default 100 complaints)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.add_argument("--part", choices=["all", "cohorts", "ab"], default="all",
                      help="cohorts: NYC complaints by 5-year bucket; ab: the Rossi randomized "
                           "experiment readout and report; all (default): both")
    demo.add_argument("--ab", dest="part", action="store_const", const="ab",
                      help="same as --part ab")
    demo.set_defaults(func=_demo)

    rep = sub.add_parser("report", help="fit an events file and write an A/B report")
    rep.add_argument("events", help="CSV (optionally gzipped) or Parquet file, one row per "
                                    "unit; read and aggregated by DuckDB")
    rep.add_argument("--created", required=True, help="column of creation times")
    rep.add_argument("--converted", required=True,
                     help="column of conversion times (empty if not converted)")
    rep.add_argument("--observed-until", required=True,
                     help="column of observation dates, or one date for all rows")
    rep.add_argument("--cohort", required=True, help="column of the arm / cohort")
    rep.add_argument("--control", required=True, help="control arm label")
    rep.add_argument("--treatment", required=True, action="append",
                     help="treatment arm label (repeat, or comma-separate, for several arms)")
    rep.add_argument("--horizon", type=float, default=None,
                     help="also read out conversion by this time (in --time-unit)")
    rep.add_argument("--time-unit", default="D", choices=["s", "min", "h", "D", "W", "Y"])
    rep.add_argument("--bin-width", type=float, default=None,
                     help="coarsen follow-up to a grid of this width (in --time-unit): at most "
                          "about 2 x follow-up / width rows per arm (see bayesconv.prepare)")
    rep.add_argument("--lag", default="gamma",
                     help="lag family: gamma (default), weibull, exponential, lognormal, gengamma")
    rep.add_argument("--rope", type=float, default=None,
                     help="half-width of the region of practical equivalence (rate units)")
    rep.add_argument("--lower-is-better", action="store_true",
                     help="fewer conversions is the goal (e.g. churn, re-arrest)")
    rep.add_argument("--title", default=None)
    rep.add_argument("--out", required=True, help="output folder")
    rep.add_argument("--draws", type=int, default=1000)
    rep.add_argument("--tune", type=int, default=None,
                     help="tuning steps per chain (default: 500 with nutpie, 1000 with PyMC)")
    rep.add_argument("--chains", type=int, default=4)
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--no-progress", action="store_true")
    rep.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesconv`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, OSError) as err:
        message = str(err).strip("'\"") or type(err).__name__
        print(f"bayesconv: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
