"""Benchmarks for issue 6: bayesconv against a plain PyMC model and lifelines, same data.

Two parts, each printed as a markdown table (and written to ``--out`` with a description of
the machine):

* ``demo``: the NYC building-complaints data exactly as ``bayesconv demo`` builds it, fitted
  in this one process by bayesconv with nutpie (first run, compiling), nutpie again (compiled
  model cached), bayesconv with PyMC's NUTS, a plain per-row PyMC version of the same model,
  and lifelines' maximum-likelihood ``MixtureCureFitter`` per cohort.
* ``ab``: simulated 2-arm A/B experiments of 10^4 .. 10^7 units written to Parquet and read
  back end to end (read + prepare, fit, ``bc.compare``), one subprocess per size and method so
  that every peak memory is its own.

Run ``python benchmarks/run.py --help``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHECKED = ("eventual_rate", "lag_loc", "lag_shape")

# the simulated experiment (day resolution, 90 days from the first creation to the readout)
AB_RATES = (0.30, 0.305)
AB_LAG_MEAN = 10.0
AB_LAG_SHAPE = 1.5
AB_WINDOW = 90.0
AB_START = "2024-01-01"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
AB_METHODS = ("bayesconv", "pymc-plain", "lifelines-weibull", "lifelines-gengamma",
              "lifelines-weibull-units")


# ============================================================================ helpers
def _quiet():
    """Silence convergence / data / deprecation chatter: the tables report what matters."""
    warnings.simplefilter("ignore")
    import logging

    for name in ("pymc", "pytensor", "nutpie", "numba"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_rss_mb() -> float:
    """Peak resident memory of this process's own address space (VmHWM).

    Not getrusage's ru_maxrss: on Linux that survives fork + exec, so a worker started from
    a big parent would report the parent's peak.
    """
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _cores(chains: int) -> int:
    return min(chains, os.cpu_count() or 1)


def _diag(idata) -> dict:
    """Min bulk ESS, max R-hat over CHECKED, divergences and mean leapfrog steps per draw."""
    from bayesconv.posterior.diagnostics import check_convergence

    d = check_convergence(idata, var_names=CHECKED, warn=False)
    stats = idata["sample_stats"]
    steps = float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan")
    return {"min_ess_bulk": d["min_ess_bulk"], "max_r_hat": d["max_r_hat"],
            "divergences": d["divergences"], "steps_per_draw": steps}


# ============================================================================ plain PyMC
def plain_pymc_model(data, spec):
    """The same model written the obvious way: per data row, weighted by count.

    * ``pooling="partial"``: non-centred cohort offsets for logit(eventual rate) and
      log(lag mean / s); ``"none"``: independent Normal priors per cohort (what bayesconv uses
      for 2 arms). log(lag shape) independent per cohort in both.
    * Priors and the time scale s are bayesconv's (``spec.priors``, ``spec.time_scale``), so the
      posterior is the same distribution; the lag is ``pm.Gamma(mu=mean, sigma=mean/sqrt(k))``,
      i.e. alpha = k, beta = k / mean, in the data's time unit.
    * Likelihood, one term per aggregated row (bc.prepare's distinct rows) times its count:
      converted at t > 0: log c + log f(t); converted at t = 0 (the demo has 4 such rows, the
      day-resolution A/B data many): log c + log F(delta), delta the data's resolution, because
      f(0) is 0 or infinite for a gamma; right-censored at t > 0: log(1 - c F(t)). Rows not
      converted at t = 0 contribute nothing.
    """
    import pymc as pm
    import pytensor.tensor as pt

    p = spec.priors
    s, delta = spec.time_scale, spec.zero_width
    t = np.asarray(data.duration, float)
    conv = np.asarray(data.converted, bool)
    g = np.asarray(data.cohort, np.int64)
    n = np.asarray(data.count, float)
    if np.any(data.lower < data.duration):
        raise NotImplementedError("the plain model has no interval-censored rows")
    exact = conv & (t > 0)
    zero = conv & (t == 0)
    cens = ~conv & (t > 0)
    labels = [str(c) for c in data.cohorts]

    def cohort_param(name, key):
        mu0, sd0 = p[key]["mu"], p[key]["sigma"]
        if spec.pooling == "partial":
            mu = pm.Normal(f"mu_{name}", mu0, sd0)
            sd = pm.HalfNormal(f"sigma_{name}", p[f"{key}_sd"])
            z = pm.Normal(f"{name}_offset", 0.0, 1.0, dims="cohort")
            return pm.Deterministic(name, mu + sd * z, dims="cohort")
        if spec.pooling == "none":
            return pm.Normal(name, mu0, sd0, dims="cohort")
        raise ValueError(f"plain model: pooling {spec.pooling!r} not written")

    with pm.Model(coords={"cohort": labels}) as model:
        logit_c = cohort_param("logit_rate", "logit_rate")
        log_m = cohort_param("log_lag_loc", "log_lag_loc")
        log_k = pm.Normal("log_lag_shape", p["log_lag_shape"]["mu"],
                          p["log_lag_shape"]["sigma"], dims="cohort")
        c = pm.Deterministic("eventual_rate", pm.math.sigmoid(logit_c), dims="cohort")
        mean = pm.Deterministic("lag_loc", s * pt.exp(log_m), dims="cohort")
        k = pm.Deterministic("lag_shape", pt.exp(log_k), dims="cohort")

        def lag(rows):
            return pm.Gamma.dist(mu=mean[g[rows]], sigma=mean[g[rows]] / pt.sqrt(k[g[rows]]))

        ll = 0.0
        if exact.any():
            ll += (n[exact] * (pt.log(c[g[exact]]) + pm.logp(lag(exact), t[exact]))).sum()
        if zero.any():
            ll += (n[zero] * (pt.log(c[g[zero]])
                              + pm.logcdf(lag(zero), np.full(zero.sum(), delta)))).sum()
        if cens.any():
            cdf = pt.exp(pm.logcdf(lag(cens), t[cens]))
            ll += (n[cens] * pt.log1p(-c[g[cens]] * cdf)).sum()
        pm.Potential("loglik", ll)
    return model


def check_same_posterior(data, pooling: str, n_points: int = 20, seed: int = 0) -> float:
    """Spread of (plain − bayesconv) log-density over random points; ~0 means same posterior.

    bayesconv is built in the same non-centred form (``parametrization="noncentered"``), so
    both models have the same free variables; their log-densities may differ only by a
    constant (bayesconv's internal time unit drops the Jacobian −log(time_scale) per exact
    conversion).
    """
    import bayesconv as bc

    kw = {"parametrization": "noncentered"} if pooling == "partial" else {}
    ref = bc.ConversionModel(data, lag="gamma", pooling=pooling, **kw)
    plain = plain_pymc_model(data, ref.spec)
    f_ref, f_plain = ref.pymc_model.compile_logp(), plain.compile_logp()
    ip = ref.pymc_model.initial_point()
    if set(ip) != set(plain.initial_point()):
        return float("nan")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_points):
        point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in ip.items()}
        diffs.append(f_plain(point) - f_ref(point))
    return float(np.ptp(diffs))


def _verdict(spread: float) -> str:
    if spread < 1e-6:
        return "a constant difference, so the two posteriors are the same"
    return "NOT constant: the plain model is not the same model, its timings are not comparable"


def fit_plain_pymc(data, *, draws, tune, chains, seed, pooling="auto", target_accept=None):
    """Build and sample the plain model with PyMC's NUTS; returns (posterior DataTree, row)."""
    import pymc as pm

    import bayesconv as bc

    _quiet()  # again after importing pymc, which sets its logger's level
    t0 = time.perf_counter()
    ref = bc.ConversionModel(data, lag="gamma", pooling=pooling)
    spec = ref.spec  # priors, s, delta
    model = plain_pymc_model(data, spec)
    if target_accept is None:  # bayesconv's default, for a like-for-like comparison
        from bayesconv.inference.model import default_target_accept

        target_accept = default_target_accept(ref.hierarchy_sizes, ref.tied_sizes)
    t1 = time.perf_counter()
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=_cores(chains),
                          random_seed=seed, progressbar=False, nuts_sampler="pymc",
                          target_accept=target_accept, compute_convergence_checks=False,
                          model=model)
    # pm.sample compiles the PyTensor functions itself: compile time is inside sampling_s
    row = {"compile_s": None, "sampling_s": time.perf_counter() - t1, **_diag(idata)}
    row["wall_s"] = time.perf_counter() - t0  # build + sample + diagnostics
    return idata, row


# ============================================================================ lifelines
def _lifelines_arrays(data, cohort_code, delta):
    """Aggregated rows of one cohort as lifelines input: durations, events, weights.

    lifelines' parametric fitters need positive durations: conversions at duration 0 are put
    at delta / 2 (middle of the first bin), rows not converted at 0 carry no information and
    are left out.
    """
    m = (data.cohort == cohort_code) & ((data.duration > 0) | data.converted)
    t = np.where(data.duration[m] > 0, data.duration[m], delta / 2)
    return t, data.converted[m].astype(bool), data.count[m].astype(float)


def _base_fitter(base: str):
    from lifelines import GeneralizedGammaFitter, WeibullFitter

    return {"weibull": WeibullFitter, "gengamma": GeneralizedGammaFitter}[base]()


def fit_lifelines(data, base: str, delta: float) -> dict:
    """MixtureCureFitter per cohort on aggregated rows with weights = counts (the same
    likelihood as one row per unit). Returns eventual rate (1 − cured fraction) and its se."""
    from lifelines import MixtureCureFitter

    out = {}
    for code, label in enumerate(data.cohorts):
        t, e, w = _lifelines_arrays(data, code, delta)
        try:
            f = MixtureCureFitter(base_fitter=_base_fitter(base)).fit(t, e, weights=w)
            se = float(f.summary.loc["cured_fraction_", "se(coef)"])
            out[str(label)] = (1.0 - float(f.cured_fraction_), se)
        except Exception as err:  # report, do not abort the benchmark
            out[str(label)] = (float("nan"), float("nan"), f"{type(err).__name__}: {err}"[:120])
    return out


# ============================================================================ demo
def demo_data():
    """``bayesconv demo``'s cohorts data (cli._demo_cohorts), buckets with >= 200 rows."""
    import bayesconv as bc

    events = bc.datasets.load_dob_violations()
    sizes = events["bucket"].value_counts()
    small = sorted(sizes[sizes < 200].index)
    events = events[~events["bucket"].isin(small)].copy()
    events["bucket"] = events["bucket"].cat.remove_unused_categories()
    return bc.prepare(events, created="issue_date", converted="disposition_date",
                      observed_until="now", cohort="bucket", time_unit="Y")


def run_demo(args) -> tuple[list[dict], dict, str]:
    import bayesconv as bc
    from bayesconv.inference import clear_compile_cache

    data = demo_data()
    rows, rates = [], {}
    fit_kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
                  progressbar=False)

    def bayesconv_row(name, sampler):
        t0 = time.perf_counter()
        model = bc.ConversionModel(data, lag="gamma", pooling="partial")
        res = model.fit(sampler=sampler, **fit_kw)
        wall = time.perf_counter() - t0
        tm = res.timing
        row = {"method": name, "wall_s": wall, "compile_s": tm.get("compile_s"),
               "compile_cached": tm.get("compile_cached"), "sampling_s": tm.get("sampling_s"),
               **_diag(res.idata)}
        rates[name] = res.posterior["eventual_rate"].mean(("chain", "draw")).to_numpy()
        return row

    print(f"demo: {data!r}; {args.chains} chains x {args.draws} draws (tune {args.tune or 'default'})",
          flush=True)
    clear_compile_cache()
    for name, sampler in (("bayesconv, nutpie (first run, compiles)", "nutpie"),
                          ("bayesconv, nutpie (compiled model cached)", "nutpie"),
                          ("bayesconv, PyMC NUTS", "pymc")):
        print(f"  {name} ...", end=" ", flush=True)
        rows.append(bayesconv_row(name, sampler))
        print(f"{rows[-1]['wall_s']:.1f} s", flush=True)

    name = "plain per-row PyMC model, PyMC NUTS"
    print(f"  {name} ...", end=" ", flush=True)
    idata, row = fit_plain_pymc(data, draws=args.draws,
                                tune=1000 if args.tune is None else args.tune, chains=args.chains,
                                seed=args.seed, pooling="partial")
    rows.append({"method": name, **row})
    print(f"{row['wall_s']:.1f} s", flush=True)
    rates[name] = idata["posterior"]["eventual_rate"].mean(("chain", "draw")).to_numpy()

    delta = bc.ConversionModel(data).spec.zero_width
    for base, label in (("weibull", "WeibullFitter"), ("gengamma", "GeneralizedGammaFitter")):
        name = f"lifelines MixtureCureFitter({label}), ML per cohort"
        print(f"  {name} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        est = fit_lifelines(data, base, delta)
        rows.append({"method": name, "wall_s": time.perf_counter() - t0,
                     "errors": [f"{k}: {v[2]}" for k, v in est.items() if len(v) > 2]})
        print(f"{rows[-1]['wall_s']:.1f} s", flush=True)
        rates[name] = np.array([v[0] for v in est.values()])

    base = rows[0]["wall_s"]
    for r in rows:
        r["ratio"] = r["wall_s"] / base
    spread = check_same_posterior(data, "partial")  # after all timings (compiles PyTensor)
    table = _demo_table(rows) + (
        f"\n\nSame model check: over 20 random parameter points, the plain model's log density "
        f"minus bayesconv's (built non-centred, so the free variables match) varies by "
        f"{spread:.1e}: {_verdict(spread)}.")
    rate_table = _rate_table(data, rates)
    return rows, {"table": table, "rates": rate_table, "data": repr(data)}, table


def _f(x, fmt="{:.1f}", none="—"):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return none
    return fmt.format(x)


def _demo_table(rows) -> str:
    head = ("| method | wall (s) | compile (s) | sampling (s) | min bulk ESS | ESS/s (wall) "
            "| max R-hat | divergences | steps/draw | wall / bayesconv nutpie first |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        ess = r.get("min_ess_bulk")
        comp = r.get("compile_s")
        if comp is None and "sampling_s" in r and r["sampling_s"] is not None:
            comp_s = "in sampling"
        else:
            comp_s = _f(comp, "{:.2f}") + (" (cached)" if r.get("compile_cached") else "")
        lines.append("| " + " | ".join([
            r["method"], _f(r["wall_s"]), comp_s, _f(r.get("sampling_s")),
            _f(ess, "{:.0f}"), _f(ess / r["wall_s"] if ess is not None else None),
            _f(r.get("max_r_hat"), "{:.3f}"), _f(r.get("divergences"), "{:d}"),
            _f(r.get("steps_per_draw")), f"{r['ratio']:.2f}×"]) + " |")
    for r in rows:
        for e in r.get("errors", []):
            lines.append(f"\n{r['method']} failed for cohort {e}")
    return "\n".join(lines)


def _rate_table(data, rates) -> str:
    names = list(rates)
    short = {n: n.split(",")[0] if n.startswith("lifelines") else n for n in names}
    ct = data.cohort_table()
    lines = ["| cohort | units | naive | " + " | ".join(short[n] for n in names) + " |",
             "|" + "---|" * (3 + len(names))]
    for i, label in enumerate(data.cohorts):
        vals = " | ".join(_f(rates[n][i], "{:.3f}") for n in names)
        lines.append(f"| {label} | {ct['units'].iloc[i]:,} | {ct['naive_rate'].iloc[i]:.3f} "
                     f"| {vals} |")
    return "\n".join(lines)


# ============================================================================ A/B (subprocesses)
def gen_ab(n_units: int, path: str, seed: int) -> dict:
    """Write a simulated 2-arm experiment to Parquet (bc.simulate; it scales to 10^7)."""
    import bayesconv as bc

    t0 = time.perf_counter()
    half = n_units // 2
    events = bc.simulate(n_units=[half, n_units - half], eventual_rate=list(AB_RATES),
                         lag_loc=AB_LAG_MEAN, lag_shape=AB_LAG_SHAPE, enrollment=AB_WINDOW,
                         followup=0.0, start=AB_START, resolution="D", random_seed=seed)
    events.attrs = {}
    events.to_parquet(path, index=False)
    return {"gen_s": time.perf_counter() - t0, "bytes": os.path.getsize(path)}


def _read_prepare(path: str):
    """Read the Parquet file and prepare it, via DuckDB when bc.prepare accepts a relation."""
    import bayesconv as bc

    # resolution="detect": the day-floored times read as exact, as the plain per-row model
    # reads them, so that both fit the same likelihood (the package default reads them as
    # interval-censored: benchmarks/resolution.py measures that reading's cost)
    kw = dict(created="created", converted="converted", observed_until="observed_until",
              cohort="cohort", time_unit="D", resolution="detect")
    note = None
    try:
        import duckdb
    except ImportError:
        note = "pandas.read_parquet (duckdb not installed)"
    if note is None:
        t0 = time.perf_counter()
        try:
            data = bc.prepare(duckdb.sql(f"select * from '{path}'"), **kw)
            return data, time.perf_counter() - t0, "duckdb"
        except TypeError:
            note = "pandas.read_parquet (prepare rejects DuckDB relations)"
    import pandas as pd

    t0 = time.perf_counter()
    data = bc.prepare(pd.read_parquet(path), **kw)
    return data, time.perf_counter() - t0, note


def ab_worker(path: str, method: str, draws: int, tune: int, chains: int, seed: int) -> dict:
    """One method on one Parquet file, in a fresh process; returns a JSON-able row."""
    _quiet()
    import pymc  # noqa: F401

    import bayesconv as bc  # import cost is not part of any timing

    if method.startswith("lifelines"):
        import lifelines  # noqa: F401
    rss_imports = _rss_now_mb()
    t_total = time.perf_counter()
    row: dict = {"method": method}

    if method == "lifelines-weibull-units":
        # the unaggregated way: one lifelines row per unit, durations computed in pandas
        import pandas as pd
        from lifelines import MixtureCureFitter, WeibullFitter

        t0 = time.perf_counter()
        df = pd.read_parquet(path)
        conv = df["converted"].notna().to_numpy()
        end = df["converted"].where(df["converted"].notna(), df["observed_until"])
        dur = ((end - df["created"]) / pd.Timedelta(days=1)).to_numpy()
        keep = (dur > 0) | conv
        row.update(read_s=time.perf_counter() - t0, input="pandas.read_parquet",
                   distinct_rows=int(keep.sum()))
        t0 = time.perf_counter()
        est = {}
        for arm in ("A", "B"):
            m = keep & (df["cohort"] == arm).to_numpy()
            t = np.where(dur[m] > 0, dur[m], 0.5)
            f = MixtureCureFitter(base_fitter=WeibullFitter()).fit(t, conv[m])
            est[arm] = (1 - f.cured_fraction_, float(f.summary.loc["cured_fraction_",
                                                                   "se(coef)"]))
        row["fit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        row["p_better"] = _wald_p_better(est)
        row["readout_s"] = time.perf_counter() - t0
        row["rate_a"], row["rate_b"] = est["A"][0], est["B"][0]
    else:
        data, row["read_s"], row["input"] = _read_prepare(path)
        row["distinct_rows"] = data.n_rows
        if method == "bayesconv":
            t0 = time.perf_counter()
            res = bc.ConversionModel(data, lag="gamma").fit(
                draws=draws, tune=tune, chains=chains, random_seed=seed, sampler="nutpie",
                progressbar=False)
            row["fit_s"] = time.perf_counter() - t0
            row.update(compile_s=res.timing.get("compile_s"),
                       sampling_s=res.timing.get("sampling_s"), **_diag(res.idata))
            t0 = time.perf_counter()
            ro = bc.compare(res, treatment="B", control="A")
            fr = ro.to_frame()
            row["readout_s"] = time.perf_counter() - t0
            sel = fr[fr["metric"] == "eventual"] if "metric" in fr.columns else fr
            row["p_better"] = float(sel["prob_better"].iloc[0])
            row["rate_a"] = float(sel["control_mean"].iloc[0])
            row["rate_b"] = float(sel["treatment_mean"].iloc[0])
        elif method == "pymc-plain":
            t0 = time.perf_counter()
            idata, diag = fit_plain_pymc(data, draws=draws, tune=1000 if tune is None else tune,
                                         chains=chains, seed=seed)
            row["fit_s"] = time.perf_counter() - t0
            row.update({k: diag[k] for k in ("min_ess_bulk", "max_r_hat", "divergences",
                                             "steps_per_draw")})
            t0 = time.perf_counter()
            c = idata["posterior"]["eventual_rate"]
            row["p_better"] = float((c.sel(cohort="B") > c.sel(cohort="A")).mean())
            row["rate_a"] = float(c.sel(cohort="A").mean())
            row["rate_b"] = float(c.sel(cohort="B").mean())
            row["readout_s"] = time.perf_counter() - t0
        elif method in ("lifelines-weibull", "lifelines-gengamma"):
            t0 = time.perf_counter()
            delta = bc.ConversionModel(data).spec.zero_width
            est = fit_lifelines(data, method.split("-")[1], delta)
            row["fit_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            row["p_better"] = _wald_p_better(est)
            row["readout_s"] = time.perf_counter() - t0
            row["rate_a"], row["rate_b"] = est["A"][0], est["B"][0]
            errs = [f"{k}: {v[2]}" for k, v in est.items() if len(v) > 2]
            if errs:
                row["error"] = "; ".join(errs)
        else:
            raise ValueError(f"unknown method {method!r}")
    row["total_s"] = time.perf_counter() - t_total
    row["rss_imports_mb"] = rss_imports
    row["peak_rss_mb"] = _peak_rss_mb()
    if method == "pymc-plain":  # after the timings and the memory peak
        row["same_posterior_spread"] = check_same_posterior(data, "none")
    return row


def _wald_p_better(est: dict) -> float:
    """P(c_B > c_A) from the ML estimates and standard errors (normal approximation)."""
    from math import erf, sqrt

    (ca, sa), (cb, sb) = est["A"][:2], est["B"][:2]
    z = (cb - ca) / sqrt(sa**2 + sb**2)
    return 0.5 * (1 + erf(z / sqrt(2)))


def _subprocess(argv: list[str], timeout: float | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ab(args) -> str:
    sizes = args.sizes
    methods = [m for m in AB_METHODS if m in args.methods]
    tmp = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bc-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    units_times = {}  # size -> measured fit time of lifelines on one row per unit
    for n in sizes:
        path = tmp / f"ab_{n}.parquet"
        if not path.exists():
            print(f"ab: simulating {n:,} units -> {path}", flush=True)
            g = _subprocess(["_gen", str(n), str(path), str(args.seed)])
            if "error" in g:
                raise RuntimeError(f"generating {n:,} units failed: {g['error']}")
        mb = path.stat().st_size / 1e6
        for method in methods:
            if method == "lifelines-weibull-units" and n > args.units_max:
                done = {k: v for k, v in units_times.items() if v is not None}
                if done:
                    k = max(done)
                    est = done[k] * n / k
                    why = (f"skipped: took {done[k]:.0f} s at {k:,} units, so about "
                           f"{est / 60:.1f} min at {n:,} (linear in units)")
                else:
                    why = f"skipped: above --units-max {args.units_max:,}"
                print(f"  {method}: {why}", flush=True)
                rows.append({"units": n, "method": method, "skipped": why, "mb": mb})
                continue
            print(f"  {n:,} units, {method} ...", end=" ", flush=True)
            r = _subprocess(["_ab", str(path), method, str(args.draws), str(args.tune),
                             str(args.chains), str(args.seed)])
            print(f"{r['total_s']:.1f} s" if "total_s" in r else r.get("error"), flush=True)
            r.update(units=n, method=method, mb=mb)
            if method == "lifelines-weibull-units":
                units_times[n] = r.get("fit_s")
            rows.append(r)
    if not args.keep_data and not args.data_dir:
        for p in tmp.glob("ab_*.parquet"):
            p.unlink()
        tmp.rmdir()
    return _ab_table(rows)


_AB_LABEL = {
    "bayesconv": "bayesconv, nutpie",
    "pymc-plain": "plain per-row PyMC, PyMC NUTS",
    "lifelines-weibull": "lifelines MixtureCure(Weibull), weighted rows",
    "lifelines-gengamma": "lifelines MixtureCure(GeneralizedGamma), weighted rows",
    "lifelines-weibull-units": "lifelines MixtureCure(Weibull), one row per unit",
}


def _ab_table(rows) -> str:
    head = ("| units | Parquet (MB) | method | input | read+prepare (s) | distinct rows "
            "| fit (s) | compile (s) | readout (s) | total (s) | peak RSS (MB) "
            "| RSS after imports (MB) | eventual rate A | eventual rate B "
            "| P(B better), eventual | min bulk ESS | max R-hat | divergences |")
    lines = [head, "|" + "---|" * 18]
    for r in rows:
        label = _AB_LABEL.get(r["method"], r["method"])
        lead = f"| {r['units']:,} | {r['mb']:.2f} | {label} |"
        if "skipped" in r or "error" in r:
            lines.append(f"{lead} {r.get('skipped') or 'failed: ' + r['error']} |"
                         + " |" * 14)
            continue
        lines.append(lead + " " + " | ".join([
            r.get("input", "—"), _f(r.get("read_s"), "{:.2f}"),
            _f(r.get("distinct_rows"), "{:,}"), _f(r.get("fit_s")),
            _f(r.get("compile_s"), "{:.1f}",
               none="in fit" if r["method"] == "pymc-plain" else "—"),
            _f(r.get("readout_s"), "{:.3f}"), _f(r.get("total_s")),
            _f(r.get("peak_rss_mb"), "{:,.0f}"), _f(r.get("rss_imports_mb"), "{:,.0f}"),
            _f(r.get("rate_a"), "{:.4f}"), _f(r.get("rate_b"), "{:.4f}"),
            _f(r.get("p_better"), "{:.4f}"),
            _f(r.get("min_ess_bulk"), "{:.0f}"), _f(r.get("max_r_hat"), "{:.3f}"),
            _f(r.get("divergences"), "{:d}")]) + " |")
    spreads = [r["same_posterior_spread"] for r in rows if "same_posterior_spread" in r]
    if spreads:
        lines.append(f"\nSame model check (plain PyMC vs bayesconv, 20 random points per size): "
                     f"the log-density difference varies by at most {max(spreads):.1e}: "
                     f"{_verdict(max(spreads))}.")
    return "\n".join(lines)


# ============================================================================ report
def _v(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        mem = f"{int(fh.readline().split()[1]) / 1e6:.1f} GB"
    try:
        commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain",
                                "bayesconv"], capture_output=True, text=True).stdout.strip()
        commit += " (bayesconv/ has uncommitted changes)" if dirty else ""
    except OSError:
        commit = "?"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    pk = ", ".join(f"{p} {_v(p)}" for p in ("bayesconv", "pymc", "pytensor", "nutpie", "numba",
                                            "numpy", "pandas", "arviz", "lifelines", "duckdb"))
    return "\n".join([
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- machine: {platform.platform()}; CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, "
        f"usable by this process: {usable}; RAM {mem}",
        f"- python {platform.python_version()}; {pk}",
        f"- git commit: {commit}",
    ])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # the persistent compile cache off (here and in the workers): "first run, compiles"
    # compiles; benchmarks/cold_start.py measures fresh processes with the cache
    os.environ["BAYESCONV_COMPILE_CACHE"] = "off"
    if argv and argv[0] == "_gen":
        print(json.dumps(gen_ab(int(argv[1]), argv[2], int(argv[3]))))
        return 0
    if argv and argv[0] == "_ab":
        path, method, draws, tune, chains, seed = argv[1:7]
        print(json.dumps(ab_worker(path, method, int(draws),
                                   None if tune == "None" else int(tune), int(chains),
                                   int(seed))))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 2 chains x 100 draws (tune 100)")
    ap.add_argument("--only", choices=["demo", "ab"], help="run only one part")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                    help="A/B experiment sizes in units (default: 10^4 10^5 10^6 10^7)")
    ap.add_argument("--methods", nargs="+", default=list(AB_METHODS), choices=AB_METHODS,
                    help="A/B methods (default: all)")
    ap.add_argument("--units-max", type=int, default=10_000_000,
                    help="largest size for lifelines on one row per unit (default 10^7;"
                         " larger sizes are skipped with the time measured at the largest run)")
    ap.add_argument("--draws", type=int, help="draws per chain (default 1000; --quick 100)")
    ap.add_argument("--tune", type=int, help="tuning steps per chain (default: each sampler's own, bayesconv+nutpie "
                         "500, PyMC 1000; --quick 100)")
    ap.add_argument("--chains", type=int, help="chains (default 4; --quick 2)")
    ap.add_argument("--seed", type=int, default=2018)
    ap.add_argument("--out", help="write the tables and the machine description to this "
                                  "markdown file (e.g. benchmarks/results.md)")
    ap.add_argument("--data-dir", help="keep the simulated Parquet files here (default: a "
                                       "temporary directory, deleted at the end)")
    ap.add_argument("--keep-data", action="store_true",
                    help="do not delete the temporary Parquet files")
    args = ap.parse_args(argv)
    args.draws = args.draws or (100 if args.quick else 1000)
    # None: each bayesconv sampler uses its own default (nutpie 500, PyMC 1000); the plain
    # PyMC model gets PyMC's default, 1000
    args.tune = args.tune if args.tune is not None else (100 if args.quick else None)
    args.chains = args.chains or (2 if args.quick else 4)

    _quiet()
    parts = [f"# bayesconv benchmarks\n\n{machine()}\n- sampling: {args.chains} chains × "
             f"{args.draws} draws (tune: "
             + ("each sampler's default: bayesconv+nutpie 500, PyMC 1000" if args.tune is None
                else str(args.tune)) + f"), seed {args.seed}"
             + (" (--quick: NOT for quoting)" if args.quick else "")]
    print(parts[0], flush=True)
    if args.only in (None, "demo"):
        _, demo, table = run_demo(args)
        text = (f"## NYC building complaints (bayesconv demo data)\n\n{demo['data']}, "
                f"partial pooling, gamma lag; one process, same data.\n\n{table}\n\n"
                f"Eventual rate per cohort (posterior mean; lifelines: ML estimate):\n\n"
                f"{demo['rates']}")
        print("\n" + text, flush=True)
        parts.append(text)
    if args.only in (None, "ab"):
        table = run_ab(args)
        text = (f"## Simulated A/B experiments from Parquet, end to end\n\n"
                f"2 arms, eventual rate {AB_RATES[0]} vs {AB_RATES[1]}, gamma lag (mean "
                f"{AB_LAG_MEAN:g} days, shape {AB_LAG_SHAPE:g}), creation uniform over "
                f"{AB_WINDOW:g} days, observed at day {AB_WINDOW:g}, dates floored to days "
                f"(`bc.simulate(..., resolution='D')`). One subprocess per size and method: "
                f"times exclude imports; peak RSS is the subprocess's own (imports included). "
                f"P(B better) is the posterior probability for the Bayesian rows and a Wald "
                f"(normal) approximation from the ML estimates for lifelines.\n\n{table}")
        print("\n" + text, flush=True)
        parts.append(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n\n".join(parts) + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
