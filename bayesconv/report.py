"""A self-contained HTML report of a fitted model and its A/B readout."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

__all__ = ["write_report"]

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


def write_report(result, readout, out_dir, *, title: str, source: str = "",
                 ci_prob: float = 0.94) -> dict:
    """Write ``report.html`` (figures embedded) and ``readout.csv`` into ``out_dir``.

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

    Returns
    -------
    dict with the paths written (``report``, ``readout``, ``summary``, ``nowcast``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = result.data
    summary = result.summary(ci_prob=ci_prob)
    nowcast = result.nowcast(ci_prob=ci_prob, random_seed=0)
    frame = readout.to_frame()
    diag = result.diagnostics()
    paths = {"report": out / "report.html", "readout": out / "readout.csv",
             "summary": out / "summary.csv", "nowcast": out / "nowcast.csv"}
    frame.to_csv(paths["readout"], index=False)
    summary.to_csv(paths["summary"])
    nowcast.to_csv(paths["nowcast"])

    ax = result.plot(ci_prob=ci_prob)
    fig_curves = _png(ax.figure)
    ax = readout.plot()
    fig_lift = _png(ax.figure)
    figs_extra = ""
    if "by_horizon" in set(frame["metric"]):
        figs_extra = _png(readout.plot(metric="by_horizon").figure)
    ax = result.plot_ppc_km(n_draws=50, random_seed=0)
    fig_ppc = _png(ax.figure)

    problems = diag.get("problems", [])
    warn_html = "".join(f"<p class='warn'>{html.escape(p)}</p>" for p in problems) or \
        "<p class='note'>All convergence checks passed (R-hat ≤ 1.01, ESS ≥ 400, no " \
        "divergences).</p>"
    weak = summary.index[summary["weakly_identified"]].tolist()
    weak_html = ""
    if weak:
        weak_html = (
            "<p class='warn'><b>The eventual rate is weakly identified</b> for "
            f"{html.escape(', '.join(map(str, weak)))}: follow-up reaches only part of the lag "
            "distribution (see <i>followup_share</i> below), so the eventual rate, its lift and "
            "the nowcast's eventual totals are mostly extrapolation of the lag family and the "
            "prior. Base decisions on the readout by a horizon within the follow-up.</p>")
    diag_cols = ["units", "converted", "naive_rate", "km_end", "rate_mean", "rate_lower",
                 "rate_upper", "median_lag_mean", "followup_share", "weakly_identified",
                 "r_hat", "ess_bulk", "ess_tail"]
    now_cols = ["units", "converted", "pending", "remaining_mean", "remaining_lower",
                "remaining_upper", "eventual_mean", "eventual_lower", "eventual_upper"]
    unit = data.time_unit
    post = result.posterior
    observed = ("followed to each unit's recorded duration" if data.observed_until is None
                else f"observed until {data.observed_until}")
    pooling = {"none": "independent priors per arm", "partial": "partial pooling across arms",
               "complete": "one curve for all arms"}[result.spec.pooling]
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">{html.escape(source)} {data.n_units:,} units in {data.n_cohorts} cohorts
({html.escape(', '.join(map(str, data.cohorts)))}); time unit {html.escape(unit)};
{html.escape(observed)}. Model: {html.escape(result.spec.lag)} lag,
{html.escape(pooling)}, sampler {html.escape(result.sampler)},
{post.sizes['chain']} chains × {post.sizes['draw']} draws.</p>
<h2>Readout</h2>{weak_html}
{readout._repr_html_()}
{fig_lift}{figs_extra}
<h2>Conversion curves</h2>
<p>Posterior mean and {ci_prob:.0%} HDI of c·F(t) per arm (solid) over the Kaplan–Meier estimate
(dashed). Beyond the longest follow-up the curves are the model's extrapolation.</p>{fig_curves}
<h2>Nowcast</h2>
<p>Conversions so far, still to come from units not converted yet (posterior predictive,
{ci_prob:.0%} HDI), and eventual totals.</p>{_table(nowcast[now_cols], 1)}
<h2>Diagnostics</h2>{warn_html}{weak_html}
{_table(summary[diag_cols])}
<p class="note">Max R-hat {diag.get('max_r_hat', float('nan')):.3f}; min bulk ESS
{diag.get('min_ess_bulk', float('nan')):.0f}; min tail ESS {diag.get('min_ess_tail', float('nan')):.0f};
divergences {diag.get('divergences', 0)}.</p>
<h3>Posterior predictive check</h3>
<p>Kaplan–Meier curves of data simulated from the posterior with each unit's real follow-up
(thin) against the observed ones (thick): observed steps outside the simulated spread point at
misfit of the lag shape.</p>{fig_ppc}
<h2>What the model assumes</h2>
<p class="note">Each unit of an arm converts eventually with probability c, after a lag drawn from
one {html.escape(result.spec.lag)} distribution; units not converted by the observation date are
right-censored; censoring is unrelated to when a unit would convert. Written by bayesconv
{html.escape(str(result._idata.attrs.get('bayesconv_version', '')))}.</p>
</body></html>"""
    paths["report"].write_text(doc, encoding="utf-8")
    return paths
