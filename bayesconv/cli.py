"""bayesconv command line: ``demo`` (the main job on bundled real data) and ``report``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

#: Defaults of ``report --project-days`` and ``--project-sims``.
PROJECT_DAYS = (3.0, 7.0, 14.0, 28.0)
PROJECT_SIMS = 200


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
    args.horizon_used, args.time_unit = 52, "W"  # for the remedies in warnings
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


def _arms(args) -> tuple[str, list[str]]:
    treatments = [t for group in args.treatment for t in group.split(",") if t]
    if args.control in treatments:
        raise ValueError(f"--treatment {args.control!r} is also the control arm; compare needs "
                         "two different arms")
    return args.control, treatments


def _prepare_kwargs(args) -> dict:
    """``prepare`` arguments from the command line: dates or durations layout."""
    dates = [args.created, args.converted, args.observed_until]
    if args.duration is not None or args.event is not None:
        if any(d is not None for d in dates):
            raise ValueError("give --created/--converted/--observed-until (dates) or "
                             "--duration/--event (durations), not both")
        if args.duration is None or args.event is None:
            raise ValueError("--duration and --event go together")
        kw = dict(duration=args.duration, event=args.event)
    else:
        if any(d is None for d in dates):
            raise ValueError("give --created, --converted and --observed-until (dates), or "
                             "--duration and --event (durations)")
        kw = dict(created=args.created, converted=args.converted,
                  observed_until=args.observed_until)
    covariates = [c for group in (args.covariates or []) for c in group.split(",") if c]
    by = getattr(args, "by", None)
    if by and by not in covariates:
        covariates.append(by)
    return dict(kw, cohort=args.cohort, time_unit=args.time_unit, bin_width=args.bin_width,
                unit_id=args.unit_id, count=args.count, covariates=covariates or None,
                resolution=args.resolution)


def _resolution(text: str):
    """``--resolution``: "auto", "detect", "exact" (passed on to :func:`bayesconv.prepare`)
    or a positive number of time units."""
    if text in ("auto", "detect", "exact"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', 'detect', 'exact' or a number of time units, got {text!r}"
        ) from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


#: Fewest levels of a ``--by`` column for the default formula's group terms; below it a
#: between-level sd is not identified (a two-level segment: R-hat 1.34, ESS 5 in a user trial),
#: and the segments get fixed effects instead.
MIN_GROUP_LEVELS = 3


def _formula(args, data=None) -> dict | None:
    """``--formula PARAM=FORMULA`` options as a dict; with ``--by`` and no formula, a segment
    term for the arm on the eventual rate and a segment intercept on the lag (group terms; with
    fewer than :data:`MIN_GROUP_LEVELS` levels in ``data``, fixed effects: ``arm * by`` and
    ``arm + by``)."""
    out = {}
    for item in args.formula or []:
        name, sep, formula = item.partition("=")
        if not sep or not name.strip() or not formula.strip():
            raise ValueError(f"--formula {item!r} is not PARAMETER=FORMULA, e.g. "
                             "--formula 'eventual_rate=variant + (variant | platform)'")
        out[name.strip()] = formula.strip()
    if not out and args.by:
        arm = args.cohort
        levels = None if data is None else data.cells[args.by].nunique()
        if levels is not None and levels < MIN_GROUP_LEVELS:
            out = {"eventual_rate": f"{arm} * {args.by}", "lag_loc": f"{arm} + {args.by}"}
        else:
            out = {"eventual_rate": f"{arm} + ({arm} | {args.by})",
                   "lag_loc": f"{arm} + (1 | {args.by})"}
    return out or None


def _left_out(data, compared, column: str) -> str | None:
    """A note on the units of arms that are not compared, flagging look-alike labels."""
    from .data import similar_labels

    others = [c for c in data.cohorts if c not in compared]
    if not others:
        return None
    units = data.cohort_table()["units"]
    parts = []
    for label in others:
        twin = [c for group in similar_labels(data.cohorts) if label in group
                for c in group if c in compared]
        flag = (f", which differs from the compared arm {twin[0]!r} only in case or "
                "whitespace: if it is the same arm, clean the labels" if twin else "")
        parts.append(f"{label!r} ({units.loc[label]:,} units{flag})")
    n = int(sum(units.loc[label] for label in others))
    return (f"left out {n:,} of {data.n_units:,} units: labels of column {column!r} that are "
            f"not compared: {', '.join(parts)}")


def _cli_remedy(warning, args, horizon) -> str:
    """The remedy a command-line user can apply (options, not API calls)."""
    from .data.units import amount
    from .errors import ConvergenceWarning, IdentificationWarning

    if warning.kind == "batch":     # bayesconv readouts: the table's columns say more
        return warning.remedy
    if isinstance(warning, IdentificationWarning):
        if not horizon:
            return "read the rate by a horizon inside the follow-up (--horizon)"
        within = amount(horizon, getattr(args, "time_unit", ""))
        return f"the report leads with conversion within {within}, which the follow-up covers"
    if isinstance(warning, ConvergenceWarning):
        ridge = ("a cohort's conversions pin its conversion by the ages observed but not its "
                 "lag (its eventual rate and lag location move together): read it by a "
                 "--horizon inside the follow-up, which the data pin")
        if warning.pattern == "ridge" and warning.kind != "divergences":
            return ridge
        if warning.kind == "divergences":
            if not hasattr(args, "target_accept"):
                return warning.remedy
            nxt = getattr(warning, "next_accept", None)
            accept = f"raise --target-accept (e.g. {nxt:g})" if nxt else ""
            if warning.pattern == "funnel":
                return ("the divergent draws sit at small values of a between-group sd (a "
                        "funnel): fit so few levels as fixed effects (a --formula without "
                        "group terms)" + (f", or {accept}" if accept else ""))
            if warning.pattern == "lag_shape":
                return ("a lag shape the conversions barely pin: try --lag exponential"
                        + (f", or {accept}" if accept else ""))
            if warning.pattern == "ridge":
                return ridge + (f", or {accept}" if accept else "")
            return accept or ("--target-accept is 0.99 already: simplify the model (fewer "
                              "cohorts or formula terms, --lag exponential)")
        return f"sample longer, e.g. --tune {2 * (args.tune or 500)} --draws {2 * args.draws}"
    return warning.remedy


@contextlib.contextmanager
def _log_lines(enabled: bool):
    """bayesconv's INFO messages ("compiling the model ...") as lines on stderr, for logs."""
    if not enabled:
        yield
        return
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bayesconv: %(message)s"))
    log = logging.getLogger("bayesconv")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


class _Progress:
    """Sampling progress as a line every ``every`` seconds, for output that is not a terminal
    (logs of scheduled reports); a nutpie ``progress_callback``."""

    def __init__(self, every: float = 10.0):
        import time

        self._time = time.perf_counter
        self._start = self._time()
        self._last = self._start
        self.every = every

    def __call__(self, chains) -> None:
        now = self._time()
        if now - self._last < self.every:
            return
        self._last = now
        done = sum(c.finished_draws for c in chains)
        total = sum(c.total_draws for c in chains)
        div = sum(c.divergences for c in chains)
        print(f"bayesconv: sampling {done:,} of {total:,} iterations ({done / max(total, 1):.0%}"
              f", {now - self._start:.0f} s, {div} divergences)", file=sys.stderr, flush=True)


_COMPILE_SOURCE = {"memory": "reused in this process", "disk": "loaded from the compile cache",
                   "compiled": "compiled"}


def _timing_line(result, start: float) -> str:
    """``times: compile ... s (loaded from the compile cache), sampling ... s, ... s since the
    command started``: the last line of ``bayesconv report``."""
    import time

    tm = result.timing
    source = _COMPILE_SOURCE.get(tm.get("compile_source"))
    parts = [f"compile {tm['compile_s']:.1f} s" + (f" ({source})" if source else "")
             if "compile_s" in tm else None,
             f"sampling {tm['sampling_s']:.1f} s" if "sampling_s" in tm else None]
    return ("times: " + ", ".join(p for p in parts if p)
            + f", {time.perf_counter() - start:.1f} s since the command started")


def _report(args: argparse.Namespace) -> int:
    import time

    start = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import bayesconv as bc

    from .data.readers import read_events
    from .data.units import amount

    if args.horizon is not None and not (args.horizon > 0 and args.horizon < float("inf")):
        raise ValueError(f"--horizon must be a positive number of {args.time_unit}, "
                         f"got {args.horizon}")
    _check_decision_options(args)
    kw = _prepare_kwargs(args)
    control, treatments = _arms(args)
    obs = kw.get("observed_until")
    events = read_events(args.events, [kw.get("created"), kw.get("converted"), obs])
    data = bc.prepare(events, **kw)
    labels = {str(c): c for c in data.cohorts}
    for arm in [control, *treatments]:
        if arm not in labels:
            raise ValueError(f"arm {arm!r} is not in column {args.cohort!r}; arms: "
                             f"{list(labels)}")
    compared = [labels[a] for a in [control, *treatments]]
    notes = []
    left_out = _left_out(data, compared, args.cohort)
    if left_out:
        notes.append(left_out)
        print(f"bayesconv: note: {left_out}", file=sys.stderr)
    data = data.select_cohorts(compared)  # only the arms being compared are fitted
    horizon = args.horizon
    if horizon is None:
        horizon = bc.default_horizon(data)
        note = (f"no --horizon given: reading out conversion within "
                f"{amount(horizon, args.time_unit)}, the median follow-up of the "
                "shortest-followed arm (rounded down), besides the eventual rate")
        notes.append(note)
        print(f"bayesconv: note: {note}", file=sys.stderr)
    # the model is built (formulas parsed, designs checked) before "fitting" is announced
    formula = _formula(args, data)
    try:
        model = bc.ConversionModel(data, lag=args.lag, formula=formula)
    except ValueError as err:  # the API's advice, in the command line's words
        raise ValueError(str(err).replace("prepare(..., covariates=[...])",
                                          "--covariates COLUMN,...")) from None
    print(f"fitting {data!r}")
    if args.bin_width is None and data.n_rows > 50_000:
        print(f"note: {data.n_rows:,} distinct rows (times recorded finely); the fit's cost grows "
              "with them: --bin-width 1 (one time unit) would bound them by about "
              "2 x follow-up per arm")
    args.horizon_used = horizon
    tty = sys.stderr.isatty()
    extra = {} if (tty or args.no_progress) else {"progress_callback": _Progress(),
                                                   "progress_rate": 1000}
    if formula is not None and not args.formula:
        grouped = "|" in formula["eventual_rate"]
        note = ("--by without --formula: fitting "
                + "; ".join(f"{k} = {v}" for k, v in formula.items())
                + (f" (each {args.by} shrunk toward the overall effect)" if grouped else
                   f" ({args.by} has fewer than {MIN_GROUP_LEVELS} levels, too few for a "
                   "between-level sd: a fixed effect per level)"))
        notes.append(note)
        print(f"bayesconv: note: {note}", file=sys.stderr)
    with _log_lines(enabled=not tty and not args.no_progress):
        result = model.fit(
            draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
            progressbar=tty and not args.no_progress, target_accept=args.target_accept,
            sampler_kwargs=extra or None)
    readout = bc.compare(result, treatments if len(treatments) > 1 else treatments[0], control,
                         horizon=horizon, higher_is_better=not args.lower_is_better,
                         rope=args.rope, by=args.by, threshold=args.threshold)
    print(readout)
    projection = _projection(args, result, readout, notes)
    if projection is not None:
        print(projection)
    arms = ", ".join(readout.arm_label(t) for t in readout.treatments)
    paths = bc.write_report(result, readout, args.out, title=args.title or
                            f"Conversion readout: {arms} vs {readout.arm_label(control)}",
                            source=f"Events from {args.events}.", notes=notes,
                            projection=projection)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    print(_timing_line(result, start))
    return 0


def _folder(experiment_id, taken: set) -> str:
    """A folder name for an experiment's report: its id with characters other than letters,
    digits, ``.``, ``_`` and ``-`` replaced, made unique among ``taken``."""
    import re

    base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(experiment_id)).strip("._") or "experiment"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    taken.add(name)
    return name


def _readouts(args: argparse.Namespace) -> int:
    import time

    start = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import bayesconv as bc

    from .batch import outcome
    from .data.prepare import similar_labels_note
    from .data.readers import read_events
    from .report import write_index

    kw = _prepare_kwargs(args)
    treatments = [t for group in (args.treatment or []) for t in group.split(",") if t] or None
    events = read_events(args.events, [kw.get("created"), kw.get("converted"),
                                       kw.get("observed_until")])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    links: dict = {}
    taken: set = set()

    def report(experiment_id, result, readout):
        folder = _folder(experiment_id, taken)
        arms = ", ".join(readout.arm_label(t) for t in readout.treatments)
        look_alike = similar_labels_note(result.data)   # compared arms spelt alike
        bc.write_report(result, readout, out / "experiments" / folder,
                        title=f"{args.experiment} {experiment_id}: {arms} vs "
                              f"{readout.arm_label(readout.control)}",
                        source=f"Events from {args.events}.",
                        notes=[look_alike] if look_alike else ())
        links[experiment_id] = f"experiments/{folder}/report.html"

    tty = sys.stderr.isatty()
    table = bc.readouts(
        events, experiment=args.experiment, control=args.control, treatment=treatments, **kw,
        lag=args.lag, horizon=args.horizon, rope=args.rope,
        higher_is_better=not args.lower_is_better, threshold=args.threshold,
        draws=args.draws, tune=args.tune, chains=args.chains, target_accept=args.target_accept,
        random_seed=args.seed, progressbar=tty and not args.no_progress,
        callback=None if args.no_reports else report)
    path = out / f"readouts.{args.format}"
    if args.format == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    index = write_index(table, out, experiment=args.experiment, links=links,
                        title=args.title or f"Readouts of {Path(args.events).name}",
                        source=f"Events from {args.events}.")
    n, failed, no_id = outcome(table, args.experiment)
    print(f"read out {n - len(failed)} of {n} experiments in "
          f"{time.perf_counter() - start:.0f} s"
          + (f"; {len(failed)} could not be read out (see their error column)"
             if failed else "")
          + ("; rows without an experiment id were not read out (see the error row whose "
             "id is empty)" if no_id else ""))
    print(f"wrote {path} and {index}"
          + (f", and {len(links)} reports in {out / 'experiments'}" if links else ""))
    # a scheduled job notices what was not read out; the outputs are written all the same
    return 1 if failed or no_id else 0


def _check_decision_options(args) -> None:
    """The decision and projection options, checked before any data is read or fitted."""
    from .readout.decision import check_threshold

    projection = {"--project-days": args.project_days,
                  "--new-units-per-day": args.new_units_per_day,
                  "--project-sims": args.project_sims}
    if args.threshold is None:
        given = [k for k, v in projection.items() if v is not None]
        if given or args.no_projection:
            raise ValueError(f"{', '.join(given) or '--no-projection'} only apply with "
                             "--threshold (the decision rule's threshold of caring, e.g. "
                             "--threshold 0.002 for 0.2 percentage points)")
        return
    try:    # the report decides on a rate: the lead metric
        check_threshold(args.threshold, "rate")
    except ValueError as err:
        raise ValueError(f"--threshold: {err}") from None
    n = args.new_units_per_day
    if n is not None and not (0 <= n < float("inf")):
        raise ValueError(f"--new-units-per-day must be a number >= 0 (0: enrollment has "
                         f"closed), got {n:g}")
    if args.project_sims is not None and args.project_sims < 1:
        raise ValueError(f"--project-sims must be at least 1, got {args.project_sims}")
    if args.project_days is None:
        args.project_days = list(PROJECT_DAYS)
    if args.project_sims is None:
        args.project_sims = PROJECT_SIMS


def _projection(args, result, readout, notes):
    """``bc.project`` when the decision rule says "keep waiting" (``--threshold``), for the
    days left; None otherwise (with a note saying why, where a user could expect one)."""
    import bayesconv as bc

    if args.threshold is None or args.no_projection:
        return None
    decision = readout.decision()
    if decision.action != "wait":
        return None
    if len(readout.treatments) != 1:
        notes.append("no days-left projection: it compares one treatment arm with the control")
        return None
    if result.data.followup is None and args.new_units_per_day is None:
        note = ("no days-left projection: durations carry no creation dates, so today's "
                "enrollment is unknown; pass --new-units-per-day N (0: enrollment has closed)")
        notes.append(note)
        print(f"bayesconv: note: {note}", file=sys.stderr)
        return None
    print(f"bayesconv: projecting the decision {args.project_days} days ahead "
          f"({args.project_sims} simulated futures)...", file=sys.stderr, flush=True)
    return bc.project(result, readout.treatments[0], readout.control, days=args.project_days,
                      new_units_per_day=args.new_units_per_day, threshold=args.threshold,
                      metric=decision.metric, horizon=readout.horizon, rope=readout.rope,
                      higher_is_better=readout.higher_is_better, n_sims=args.project_sims,
                      random_seed=args.seed)


def _days(text: str) -> list[float]:
    try:
        days = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected days like 3,7,14,28, got {text!r}") from None
    if not days or min(days) <= 0:
        raise argparse.ArgumentTypeError(f"days must be > 0, like 3,7,14,28; got {text!r}")
    return days


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (and exit code 2), not a usage block."""

    def error(self, message):
        self.exit(2, f"bayesconv: error: {message} (see {self.prog} --help)\n")


def _event_options(p) -> None:
    """Options naming the events' columns and how times are read (``prepare``)."""
    p.add_argument("--created", help="column of creation times (ISO 8601 text with or "
                   "without a UTC offset, dates, or numbers in --time-unit)")
    p.add_argument("--converted",
                   help="column of conversion times (empty if not converted)")
    p.add_argument("--observed-until",
                   help="column of observation dates, or one date for all rows")
    p.add_argument("--duration", help="instead of dates: column of durations (time to "
                   "conversion or censoring, in --time-unit), survival-style")
    p.add_argument("--event", help="with --duration: column of the 0/1 conversion indicator")
    p.add_argument("--unit-id", help="column of unit ids: duplicated ids are an error")
    p.add_argument("--count", help="column of counts, for files already aggregated")
    p.add_argument("--covariates", action="append",
                   help="further columns that define the cells the formulas use, e.g. "
                        "platform,signup_week (repeat or comma-separate)")


def _model_options(p) -> None:
    """Options of the model and of the readout's metrics."""
    p.add_argument("--horizon", type=float, default=None,
                   help="also read out conversion within this time of creation (in "
                        "--time-unit; default: the median follow-up of the shortest-followed "
                        "arm, rounded down, so that the data cover it)")
    p.add_argument("--time-unit", default="D", choices=["s", "min", "h", "D", "W", "Y"],
                   help="unit of every duration and of --horizon, and what numbers in "
                        "numeric time columns mean (a year Y is 365.25 days; default D)")
    p.add_argument("--bin-width", type=float, default=None,
                   help="coarsen follow-up to a grid of this width (in --time-unit): at most "
                        "about 2 x follow-up / width rows per arm (see bayesconv.prepare)")
    p.add_argument("--resolution", type=_resolution, default="auto",
                   help="time resolution the dates were recorded to: auto (default: "
                        "detected, e.g. 1 day for dates without a time of day, and "
                        "conversions read as interval-censored within it), detect (detected "
                        "and reported, times read as exact: faster, biased when the "
                        "resolution is not small against the lag), exact, or a number of "
                        "--time-unit (see bayesconv.prepare)")
    p.add_argument("--lag", default="gamma",
                   help="lag family: gamma (default), weibull, exponential, lognormal, gengamma")
    p.add_argument("--rope", type=float, default=None,
                   help="half-width of the region of practical equivalence (rate units)")
    p.add_argument("--lower-is-better", action="store_true",
                   help="fewer conversions is the goal (e.g. churn, re-arrest)")


def _fit_options(p) -> None:
    """Options of the sampler."""
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=None,
                   help="tuning steps per chain (default: 500 with nutpie, 1000 with PyMC)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-accept", type=float, default=None,
                   help="NUTS target acceptance rate (default: 0.95 when a pooled term has "
                        "6 or fewer levels, 0.9 with more or with tied lags, 0.8 for one "
                        "cohort or complete pooling); raise it "
                        "(e.g. 0.99) when divergences are reported")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (on a terminal) and no progress lines (in logs)")


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
    _event_options(rep)
    rep.add_argument("--by", help="also read out per level of this column (a covariate); "
                                  "without --formula the model gets a segment term for the arm")
    rep.add_argument("--formula", action="append", metavar="PARAMETER=FORMULA",
                     help="a formula for a model parameter (eventual_rate, lag_loc, lag_shape, "
                          "lag_q), e.g. 'eventual_rate=variant + (variant | platform) + "
                          "rw(signup_week)'; repeat for several parameters")
    rep.add_argument("--cohort", required=True, help="column of the arm / cohort")
    rep.add_argument("--control", required=True, help="control arm label")
    rep.add_argument("--treatment", required=True, action="append",
                     help="treatment arm label (repeat, or comma-separate, for several arms)")
    rep.add_argument("--threshold", type=float, default=None,
                     help="threshold of caring of the expected-loss decision rule, in the lead "
                          "metric's unit (rates: 0.002 = 0.2 percentage points): the report "
                          "says 'ship', 'keep' or 'keep waiting', and while waiting projects "
                          "the days left")
    rep.add_argument("--project-days", type=_days, default=None, metavar="D1,D2,...",
                     help="with --threshold: calendar days ahead of the days-left projection "
                          "(default 3,7,14,28)")
    rep.add_argument("--new-units-per-day", type=float, default=None,
                     help="with --threshold: new units per arm and day in the projection "
                          "(default: each arm's "
                          "enrollment over the last 7 days; 0: enrollment has closed)")
    rep.add_argument("--project-sims", type=int, default=None,
                     help=f"simulated futures of the projection (default {PROJECT_SIMS})")
    rep.add_argument("--no-projection", action="store_true",
                     help="with --threshold: state the decision but do not project days left")
    _model_options(rep)
    rep.add_argument("--title", default=None)
    rep.add_argument("--out", required=True, help="output folder")
    _fit_options(rep)
    rep.set_defaults(func=_report)

    bat = sub.add_parser("readouts", help="read out every experiment of an events file: a "
                                          "table and an HTML index linking a report each",
                         epilog="Exit status: 0 when every experiment was read out; 1 when "
                                "some could not be (or rows have no experiment id), after "
                                "writing the table, the index and the other reports; 2 for "
                                "an error in the arguments or the file.")
    bat.add_argument("events", help="CSV (optionally gzipped) or Parquet file, one row per "
                                    "unit of any experiment; read by DuckDB")
    bat.add_argument("--experiment", required=True, help="column of the experiment id")
    bat.add_argument("--cohort", required=True, help="column of the arm")
    bat.add_argument("--control", required=True,
                     help="control arm label, the same in every experiment")
    bat.add_argument("--treatment", action="append", default=None,
                     help="treatment arm label (repeat, or comma-separate; default: every "
                          "other arm of each experiment)")
    _event_options(bat)
    _model_options(bat)
    bat.add_argument("--threshold", type=float, default=None,
                     help="threshold of caring of the expected-loss decision rule (rates: "
                          "0.002 = 0.2 percentage points): fills the decision column")
    bat.add_argument("--out", required=True, help="output folder")
    bat.add_argument("--format", choices=["csv", "parquet"], default="csv",
                     help="format of the table readouts.csv / readouts.parquet (default csv)")
    bat.add_argument("--no-reports", action="store_true",
                     help="write the table and the index only, no report per experiment "
                          "(each report's figures take a few seconds)")
    bat.add_argument("--title", default=None)
    _fit_options(bat)
    bat.set_defaults(func=_readouts)
    return parser


def _show_warning(args):
    """A ``warnings.showwarning`` for the command line: one line, no Python source lines, and
    remedies in terms of the command's options rather than API calls."""
    from .errors import BayesconvWarning, DataWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if isinstance(message, BayesconvWarning):
            remedy = _cli_remedy(message, args, getattr(args, "horizon_used", None) or 0)
            text = f"{message.problem}; {remedy}" if remedy else message.problem
        else:
            text = str(message)
        kind = "note" if isinstance(message, DataWarning) else "warning"
        print(f"bayesconv: {kind}: {text}", file=sys.stderr, flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesconv`` console script; returns the exit code."""
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning(args)
        try:
            return args.func(args)
        except (ValueError, TypeError, KeyError, OSError) as err:
            message = str(err).strip("'\"") or type(err).__name__
            print(f"bayesconv: error: {message}", file=sys.stderr)
            return 2


def run() -> None:
    """The ``bayesconv`` console script: :func:`main`, then an exit that skips the
    interpreter's finalization.

    After a report the process holds some 440,000 objects (PyTensor graphs, numba's compiled
    functions, the posterior); freeing them one by one at exit took about 1 s of the 9 s a
    warm ``bayesconv report`` of 10^6 units takes (``benchmarks/cold_start.md``), for
    nothing. As mypy does (``mypy.util.hard_exit``), the process ends with ``os._exit`` once
    everything else is done: the handler is registered before any library is imported, so
    it runs after every other exit handler (``atexit`` runs them in reverse order; Spark's,
    logging's, the thread pools'), and it flushes the standard streams and the logging
    handlers first. The exit status is main's, 1 after an uncaught exception (130 after
    Ctrl-C), or the code of a ``SystemExit`` (``--help``, argparse's usage errors).
    :func:`main` itself returns normally, for callers in Python.
    """
    import atexit
    import os

    status = [1]

    def hard_exit() -> None:
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status[0])

    atexit.register(hard_exit)
    try:
        status[0] = main() or 0
    except SystemExit as stop:
        status[0] = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        raise
    except KeyboardInterrupt:
        status[0] = 130    # the shell's status of a process stopped by Ctrl-C (128 + SIGINT)
        raise
    sys.exit(status[0])


if __name__ == "__main__":  # pragma: no cover
    run()
