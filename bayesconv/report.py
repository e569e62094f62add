"""A self-contained HTML report of a fitted model and its A/B readout."""

from __future__ import annotations

import base64
import html
import io
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from .data.resolution import describe as describe_resolution
from .data.units import unit_name

__all__ = ["write_index", "write_report"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}
.headline{font-size:1.1em;background:#eef6ff;padding:.6em 1em;border-left:4px solid #3b82f6}
.warn{background:#fff4e5;padding:.6em 1em;border-left:4px solid #f59e0b}
.note{color:#555;font-size:.9em}img{max-width:100%}
.wide{max-width:100%;overflow-x:auto}
.bayesconv-readout{max-width:100%;overflow-x:auto}
"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return ("<img alt='figure' src='data:image/png;base64,"
            f"{base64.b64encode(buf.getvalue()).decode('ascii')}'/>")


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(float_format=lambda x: f"{x:.{digits}f}", border=0, escape=True)


def _interval(mean, lower, upper, fmt="{:.3f}") -> list[str]:
    return [f"{fmt.format(m)} [{fmt.format(lo)}, {fmt.format(hi)}]"
            for m, lo, hi in zip(mean, lower, upper, strict=True)]


def _summary_table(summary: pd.DataFrame, ci_prob: float, unit: str) -> pd.DataFrame:
    """The per-arm summary with readable headers, intervals in one cell each."""
    p = f"{ci_prob:.0%} HDI"
    out = pd.DataFrame(index=summary.index)
    out["units"] = summary["units"].map("{:,}".format)
    out["converted"] = summary["converted"].map("{:,}".format)
    out["naive rate"] = summary["naive_rate"].map("{:.3f}".format)
    out["Kaplan–Meier at end (at risk)"] = [
        f"{k:.3f} ({n:,})" for k, n in zip(summary["km_end"], summary["km_at_risk"],
                                           strict=True)]
    out[f"eventual rate [{p}]"] = _interval(summary["rate_mean"], summary["rate_lower"],
                                            summary["rate_upper"])
    out[f"median lag, {unit} [{p}]"] = _interval(
        summary["median_lag_mean"], summary["median_lag_lower"], summary["median_lag_upper"],
        "{:.3g}")
    out["share of lag covered by follow-up"] = summary["followup_share"].map("{:.2f}".format)
    out["weakly identified"] = summary["weakly_identified"].map({True: "yes", False: "no"})
    out["R-hat"] = summary["r_hat"].map("{:.3f}".format)
    out["ESS bulk / tail"] = [f"{b:.0f} / {t:.0f}" for b, t in
                              zip(summary["ess_bulk"], summary["ess_tail"], strict=True)]
    return out


def _nowcast_table(nowcast: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    p = f"{ci_prob:.0%} HDI"
    out = pd.DataFrame(index=nowcast.index)
    for col, name in (("units", "units"), ("converted", "converted so far"),
                      ("pending", "not converted yet")):
        out[name] = nowcast[col].map("{:,}".format)
    out[f"still to come [{p}]"] = _interval(nowcast["remaining_mean"],
                                            nowcast["remaining_lower"],
                                            nowcast["remaining_upper"], "{:,.1f}")
    out[f"total by then [{p}]"] = _interval(nowcast["eventual_mean"], nowcast["eventual_lower"],
                                            nowcast["eventual_upper"], "{:,.1f}")
    return out


def write_report(result, readout, out_dir, *, title: str, source: str = "",
                 ci_prob: float = 0.94, notes=(), nowcast_within: float | None = None,
                 projection=None) -> dict:
    """Write ``report.html`` (figures embedded) and ``readout.csv`` into ``out_dir``.

    The first line is the readout's lead headline: the horizon readout when an arm's eventual
    rate is weakly identified (what the data support), else the eventual rate.

    Parameters
    ----------
    result : ConversionResult
    readout : Readout
        From :func:`bayesconv.compare` on ``result``.
    out_dir : str or Path
        Created if missing.
    title : str
    source : str, optional
        One sentence on where the data come from.
    ci_prob : float, default 0.94
        Interval probability of the summary tables.
    notes : sequence of str, optional
        Notes on the input shown at the top (e.g. units of arms that were left out).
    nowcast_within : float, optional
        The nowcast counts conversions still to come within this many time units (default:
        the readout's horizon, else the longest follow-up), not "ever", which would rest on
        the extrapolated eventual rate.
    projection : Projection, optional
        From :func:`bayesconv.project`: a section "When will we know?" with the days left,
        the table and its plot; written to ``projection.csv``.

    Returns
    -------
    dict with the paths written (``report``, ``readout``, ``summary``, ``nowcast``, and
    ``projection`` with one).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = result.data
    summary = result.summary(ci_prob=ci_prob)
    within = nowcast_within
    if within is None:
        within = readout.horizon if readout.horizon is not None else float(data.duration.max())
    nowcast = result.nowcast(ci_prob=ci_prob, random_seed=0, within=within)
    frame = readout.to_frame()
    diag = result.diagnostics()
    paths = {"report": out / "report.html", "readout": out / "readout.csv",
             "summary": out / "summary.csv", "nowcast": out / "nowcast.csv"}
    frame.to_csv(paths["readout"], index=False)
    projection_html = ""
    if projection is not None:
        paths["projection"] = out / "projection.csv"
        projection.to_frame().to_csv(paths["projection"], index=False)
        projection_html = (
            "<h2>When will we know?</h2>"
            f"<p class='headline'>{html.escape(projection.decision.text)}</p>"
            f"<p class='note'>{projection.settings['n_sims']} futures simulated from today's "
            "posterior (units still maturing, new units at the projected enrollment), each "
            "refitted at every date and read with the same rule; P(decision) is the share of "
            "futures in which the rule fires.</p>"
            f"<div class='wide'>{projection.to_frame().round(4).to_html(index=False, border=0)}"
            f"</div>{_png(projection.plot().figure)}")
    summary.to_csv(paths["summary"])
    nowcast.to_csv(paths["nowcast"])

    ax = result.plot(ci_prob=ci_prob)
    fig_curves = _png(ax.figure)
    figs = [_png(readout.plot(metric=m).figure)
            for m in sorted(set(frame["metric"]), key=lambda m: m != readout.lead)]
    if readout.segments:
        figs.insert(0, _png(readout.plot_segments().figure))
    ax = result.plot_ppc_km(n_draws=50, random_seed=0)
    fig_ppc = _png(ax.figure)

    problems = diag.get("problems", [])
    warn_html = "".join(f"<p class='warn'>{html.escape(p)}</p>" for p in problems) or \
        "<p class='note'>All convergence checks passed (R-hat ≤ 1.01, ESS ≥ 400, no " \
        "divergences).</p>"
    weak = [readout.arm_label(c) for c in summary.index[summary["weakly_identified"]]]
    weak_html = ""
    if weak:
        lead = ("The readout above leads with the "
                f"{readout.metric_name(readout.lead)}, which the follow-up covers."
                if readout.lead == "by_horizon" else
                "Base decisions on a readout by a horizon within the follow-up.")
        weak_html = (
            "<p class='warn'><b>The eventual rate is weakly identified</b> for "
            f"{html.escape(', '.join(weak))}: follow-up reaches only part of the lag "
            "distribution (see <i>share of lag covered by follow-up</i> below), so the eventual "
            "rate and its lift are mostly extrapolation of the lag family and the prior. "
            f"{html.escape(lead)}</p>")
    notes_html = "".join(f"<p class='warn'>{html.escape(n)}</p>" for n in notes)
    unit = data.time_unit
    post = result.posterior
    observed = ("followed to each unit's recorded duration" if data.observed_until is None
                else f"observed until {data.observed_until}")
    if result.spec.formula:
        model_text = result.spec.describe()
    else:
        model_text = f"{result.spec.lag} lag, " + {
            "none": "independent eventual rates per arm (lags tied)",
            "partial": "partial pooling across arms",
            "complete": "one curve for all arms"}[result.spec.pooling]
    arms = ", ".join(readout.arm_label(c) for c in data.cohorts)
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="headline">{html.escape(readout.headline())}</p>
{notes_html}
<p class="note">{html.escape(source)} {data.n_units:,} units in {data.n_cohorts} arms
({html.escape(arms)}); time unit {html.escape(unit)};
{html.escape(describe_resolution(data.meta, data.time_unit))}; {html.escape(observed)}.
Model: {html.escape(model_text)}, sampler {html.escape(result.sampler)},
{post.sizes['chain']} chains × {post.sizes['draw']} draws.</p>
<h2>Readout</h2>{weak_html}
{readout._repr_html_()}
{''.join(figs)}
{projection_html}
<h2>Conversion curves</h2>
<p>Posterior mean and {ci_prob:.0%} HDI of c·F(t) per arm (solid) over the Kaplan–Meier estimate
(dashed). Beyond the longest follow-up the curves are the model's extrapolation.</p>{fig_curves}
<h2>Nowcast</h2>
<p>Conversions so far, and still to come within the next {within:g}
{html.escape(unit_name(unit))} from
units not converted yet (posterior predictive, {ci_prob:.0%} HDI).</p>
<div class="wide">{_nowcast_table(nowcast, ci_prob).to_html(border=0, escape=True)}</div>
<h2>Diagnostics</h2>{warn_html}{weak_html}
<div class="wide">{_summary_table(summary, ci_prob, unit).to_html(border=0, escape=True)}</div>
<p class="note">Max R-hat {diag.get('max_r_hat', float('nan')):.3f}; min bulk ESS
{diag.get('min_ess_bulk', float('nan')):.0f}; min tail ESS {diag.get('min_ess_tail', float('nan')):.0f};
divergences {diag.get('divergences', 0)}. Kaplan–Meier at end: the estimate at the arm's longest
follow-up, with the number of units still at risk there (few at risk, a noisy estimate).</p>
<h3>Posterior predictive check</h3>
<p>Kaplan–Meier curves of data simulated from the posterior with each unit's real follow-up
(thin) against the observed ones (thick): observed steps outside the simulated spread point at
misfit of the lag shape.</p>{fig_ppc}
<h2>What the model assumes</h2>
<p class="note">Each unit of an arm converts eventually with probability c, after a lag drawn from
one {html.escape(result.spec.lag)} distribution; units not converted by the observation date are
right-censored; censoring is unrelated to when a unit would convert. Written by bayesconv
{html.escape(version('bayesconv'))}.</p>
</body></html>"""
    paths["report"].write_text(doc, encoding="utf-8")
    return paths


#: The columns of the index page of many readouts, with their headers.
_INDEX_COLUMNS = {"treatment": "treatment", "decision": "decision", "diff": "difference",
                  "prob_better": "P(better)", "n_units": "units (control / treatment)",
                  "max_r_hat": "max R-hat", "divergences": "divergences",
                  "problems": "warnings or error"}


def _run_context(table: pd.DataFrame) -> str:
    """The settings a readouts table records in its ``attrs`` (control, lag, horizon,
    threshold, seed, draws, chains), as a sentence, or ""."""
    a = table.attrs
    if not a:
        return ""
    names = {"control": "control", "lag": "lag", "horizon": "horizon",
             "threshold": "threshold", "random_seed": "seed", "draws": "draws",
             "chains": "chains"}
    parts = [f"{name} {a[k]}" for k, name in names.items() if a.get(k) is not None]
    if "horizon" in a and a["horizon"] is None:
        parts.append("horizon per experiment (the median follow-up of its shortest-followed "
                     "arm)")
    return "Settings: " + ", ".join(parts) + ". "


def write_index(table: pd.DataFrame, out_dir, *, experiment: str, links: dict | None = None,
                title: str = "Readouts", source: str = "") -> Path:
    """Write ``index.html``: one line per experiment and treatment arm of a readouts table,
    each linking the experiment's own report.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesconv.readouts`.
    out_dir : str or Path
        Created if missing.
    experiment : str
        The experiment column.
    links : dict, optional
        Experiment id -> path of its report, relative to ``out_dir``.
    title, source : str
        Page title; one sentence on the data.

    Returns
    -------
    Path of the page.

    Notes
    -----
    Each line shows the experiment's lead metric, the same for all its arms: the eventual
    rate, or the rate by the horizon where a compared arm's eventual rate is weakly
    identified (as :attr:`bayesconv.Readout.lead`). The difference is treatment − control,
    its mean and HDI, in percentage points for a rate. An experiment's warnings are shown
    once, on its first line.
    """
    from .data.prepare import shown_label
    from .readout.metrics import METRICS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    links = links or {}
    lines = []
    for eid, rows in table.groupby(experiment, sort=False, dropna=False):
        eid = None if pd.isna(eid) else eid
        failed = rows[rows["error"].notna()]
        name = html.escape("(no id)" if eid is None else str(eid))
        href = links.get(eid)
        cell = f"<a href='{html.escape(str(href))}'>{name}</a>" if href else name
        if len(failed):
            lines.append([cell] + [""] * (len(_INDEX_COLUMNS) - 1)
                         + [html.escape(str(failed["error"].iloc[0]))])
            continue
        # the lead metric once per experiment, as Readout.lead chooses it: the rate by the
        # horizon where any compared arm's eventual rate is weakly identified
        metrics = list(dict.fromkeys(rows["metric"]))
        weak = bool(rows["weakly_identified"].fillna(False).any()) and "by_horizon" in metrics
        lead_metric = "by_horizon" if weak else "eventual" if "eventual" in metrics \
            else metrics[0]
        leads = rows[rows["metric"] == lead_metric]
        for i, (_, lead) in enumerate(leads.iterrows()):
            spec = METRICS[lead_metric]
            unit = lead["time_unit"] or ""
            diff = (f"{spec.fmt_diff(lead['diff_mean'], unit)} "
                    f"[{spec.fmt_diff(lead['diff_lower'], unit)}, "
                    f"{spec.fmt_diff(lead['diff_upper'], unit)}] {spec.diff_unit(unit)}")
            name = spec.title(lead["horizon"], unit)
            # an experiment's warnings once, on its first line
            problems = html.escape(str(lead["warnings"] or "")) if i == 0 else ""
            lines.append([cell, html.escape(shown_label(lead["treatment"])),
                          html.escape(str(lead["decision"] or "")),
                          f"{html.escape(diff)} ({html.escape(name)})",
                          f"{lead['prob_better']:.3f}",
                          f"{int(lead['n_control']):,} / {int(lead['n_treatment']):,}",
                          f"{lead['max_r_hat']:.3f}", f"{int(lead['divergences'])}", problems])
    head = "".join(f"<th>{h}</th>" for h in [experiment, *_INDEX_COLUMNS.values()])
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in line) + "</tr>" for line in lines)
    ids = table[experiment]
    n_exp = ids.nunique()                 # rows without an id are no experiment
    n_bad = ids[table["error"].notna()].nunique()
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='note'>{html.escape(source)} {n_exp} experiments"
            + (f", {n_bad} of them could not be read out (last column)" if n_bad else "")
            + ("; rows without an experiment id were not read out (line '(no id)')"
               if ids.isna().any() else "")
            + f". {html.escape(_run_context(table))}bayesconv {version('bayesconv')}.</p><div class='wide'><table><tr>{head}</tr>"
            f"{body}</table></div></body></html>")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
