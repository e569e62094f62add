"""Marriage by sex, with drift over birth decades and with state: LOO and calibration.

    .venv/bin/python validation/marriage_drift.py --out validation/marriage_drift.md

Fits the generalized gamma lag to ``bc.datasets.load_marriage()`` (10,000 people, years;
cohort = sex) prepared once with the covariates ``birth_decade`` and ``state`` (the 1,392
people without a state as their own level, "(not reported)"), so that every model is compared
on the same rows:

* ``sex``: no formula (the one-factor model of notebook 03);
* ``drift``: ``sex + rw(birth_decade)`` on the eventual rate, the lag location and the shape;
* ``drift + state`` (only with ``--with-state``): the same with ``(1 | state)`` on the
  eventual rate. Every one of the 936 cells then has its own parameters (6,276 likelihood
  rows instead of 748): on 2 cores this fit had not finished after 20 minutes.

Writes the PSIS-LOO table (``bc.compare_models``), the diagnostics, the fit times and the
number of calibration bands (by age in 2016, 10 per sex) inside their 94% posterior predictive
interval. The notebook ``05_segments_and_drift.ipynb`` fits the first two (without state, so
its data have 20 cells instead of 936).
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import date
from pathlib import Path

import pandas as pd

import bayesconv as bc

DRIFT = {"eventual_rate": "sex + rw(birth_decade)", "lag_loc": "sex + rw(birth_decade)",
         "lag_shape": "sex + rw(birth_decade)"}
MODELS = {
    "sex": (None, None),
    "drift": (DRIFT, 0.95),
    "drift + state": ({**DRIFT, "eventual_rate": DRIFT["eventual_rate"] + " + (1 | state)"},
                      0.95),
}


def _markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (index as the first column)."""
    frame = frame.reset_index()
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--with-state", action="store_true",
                    help="also fit the model with (1 | state) (slow: see the docstring)")
    args = ap.parse_args(argv)
    df = bc.datasets.load_marriage()
    df["birth_decade"] = df["born"] // 10 * 10
    df["state"] = df["state"].fillna("(not reported)")
    data = bc.prepare(df, created="born", converted="married", observed_until="now",
                      cohort="sex", time_unit="Y", covariates=["birth_decade", "state"])
    fits, rows = {}, []
    models = {k: v for k, v in MODELS.items() if args.with_state or "state" not in k}
    for name, (formula, target) in models.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = bc.ConversionModel(data, lag="gengamma", formula=formula)
            res = model.fit(draws=args.draws, chains=args.chains, random_seed=1,
                            progressbar=False, target_accept=target)
        wall = time.perf_counter() - t0
        fits[name] = res
        d = res.diagnostics()
        calib = res.calibration_table(by_cohort=True, random_seed=0)
        rows.append({"model": name, "formula": "; ".join(f"{k} = {v}" for k, v in
                                                        (formula or {}).items()) or "—",
                     "likelihood rows": len(model.rows.count), "seconds": round(wall),
                     "divergences": d["divergences"], "max R-hat": round(d["max_r_hat"], 4),
                     "min ESS": round(d["min_ess_bulk"]),
                     "bands inside": f"{int(calib['inside'].sum())} of {len(calib)}",
                     "warnings": len([w for w in caught
                                      if issubclass(w.category, bc.ConvergenceWarning)])})
        print(rows[-1], flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.ParetoKWarning)
        loo = bc.compare_models(fits)
    cols = ["elpd_loo", "se", "p_loo", "elpd_diff", "dse", "n_pareto_k_bad", "max_pareto_k"]
    pairwise = bc.compare_models({k: fits[k] for k in ("sex", "drift")}, warn=False)
    gap = pairwise.loc["sex", "elpd_diff"] / pairwise.loc["sex", "dse"]
    text = "\n".join([
        "# Marriage: drift over birth decades" + (" and state" if args.with_state else ""), "",
        f"Run on {date.today()}: {data!r}, {data.n_cells} cells; generalized gamma lag, "
        f"{args.chains} chains × {args.draws} draws.",
        "Re-run: `.venv/bin/python validation/marriage_drift.py --out "
        "validation/marriage_drift.md`" + (" --with-state" if args.with_state else "")
        + ". The calibration count moves by a band or two with the posterior predictive "
        "draws (several bands sit at the edge of their interval), so compare models on the "
        "same run.", "",
        _markdown(pd.DataFrame(rows).set_index("model")), "",
        "PSIS-LOO (every unit counted; `n_pareto_k_bad` units have Pareto k above the "
        "threshold, so their elpd values are unreliable):", "",
        _markdown(loo[cols].round(2)), "",
        f"drift vs sex alone: {pairwise.loc['sex', 'elpd_diff']:.1f} elpd "
        f"({gap:.1f} standard errors of the difference).", ""])
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
