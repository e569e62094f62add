"""Every figure bayesconv draws, as functions that return matplotlib Axes.

The functions draw numbers they are given (arrays and tables: curves with their bands,
Kaplan–Meier steps, posterior draws of a difference, calibration and replay tables); they do
not fit or compute posterior quantities. The objects users hold call them:
``ConversionResult.plot()``, ``Readout.plot()`` and the rest compute what to draw and pass it
here, so plotting sits low in the layers and knows nothing about models or results.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.container import ConversionData
from .data.kaplan_meier import kaplan_meier
from .data.units import unit_name

__all__ = ["plot_calibration", "plot_curves", "plot_differences", "plot_forest",
           "plot_kaplan_meier", "plot_ppc_km", "plot_prior_curves", "plot_replay"]


def plot_kaplan_meier(data, *, ax=None, ci=True, ci_prob=0.95, cohorts=None, colors=None,
                      legend=True):
    """Draw Kaplan–Meier cumulative conversion curves as steps, with interval bands.

    Parameters
    ----------
    data : ConversionData or DataFrame
        Prepared data, or the output of :func:`kaplan_meier`.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made when None.
    ci : bool, default True
        Draw the pointwise interval as a shaded step band.
    ci_prob : float, default 0.95
        Interval probability when ``data`` is ConversionData.
    cohorts : list of labels, optional
        Subset of cohorts to draw (default all).
    colors : dict or list, optional
        Colour per cohort.
    legend : bool, default True

    Returns
    -------
    matplotlib.axes.Axes
    """
    km = kaplan_meier(data, ci_prob=ci_prob) if isinstance(data, ConversionData) else data
    ax = _axes(ax, (7, 4.5))
    labels = list(km["cohort"].cat.categories) if cohorts is None else list(cohorts)
    for i, label in enumerate(labels):
        grp = km[km["cohort"] == label]
        color = (colors.get(label) if isinstance(colors, dict) else colors[i]) if colors \
            else f"C{i % 10}"
        t = np.concatenate([[0.0], grp["time"].to_numpy()])
        y = np.concatenate([[0.0], grp["conversion"].to_numpy()])
        ax.step(t, y, where="post", color=color, lw=1.4, label=f"{label}")
        if ci:
            lo = np.concatenate([[0.0], grp["lower"].to_numpy()])
            hi = np.concatenate([[0.0], grp["upper"].to_numpy()])
            ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.15, lw=0)
    unit = km.attrs.get("time_unit", "")
    ax.set_xlabel(f"time since creation ({unit_name(unit)})")
    ax.set_ylabel("cumulative conversion")
    ax.set_ylim(0, None)
    ax.set_xlim(0, None)
    if legend:
        ax.legend(loc="lower right", title="cohort", fontsize="small")
    return ax


#: Legends are placed at a fixed corner, never loc="best": matplotlib's search for the best
#: place is slow on curves with many points and then warns, depending on the machine's speed
#: (so whether the CLI printed that warning depended on the machine).


def _without_pending_jax() -> None:
    """Drop a not-yet-loaded lazy ``jax`` module from ``sys.modules``.

    arviz_base registers ``jax`` as a lazy module (``lazy_loader.load("jax")`` in its numpyro
    converter) whenever JAX is installed; matplotlib, which deliberately never imports JAX,
    then finds it in ``sys.modules`` while checking whether its inputs are JAX arrays and so
    loads all of JAX (about 0.8 s) on the first figure. Without the pending entry matplotlib
    sees no JAX, as intended; ``import jax`` still works (a fresh import), and a JAX array
    made by the user means JAX is loaded, which this leaves alone.
    """
    import sys

    pending = sys.modules.get("jax")
    if pending is not None and type(pending).__name__ == "_LazyModule" \
            and "jax._src" not in sys.modules:
        del sys.modules["jax"]


def _axes(ax, size):
    _without_pending_jax()
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def plot_curves(t, mean, lower, upper, followup, *, labels, show=None, km=None, key="cohort",
                ci_prob: float = 0.94, unit: str = "", legend_title=None, ax=None):
    """Posterior mean and HDI band of each cohort's conversion curve, over Kaplan–Meier steps.

    Parameters
    ----------
    t : ndarray of shape (n_t,)
        Times, in ``unit``.
    mean, lower, upper : ndarray of shape (n_cohorts, n_t)
        Posterior mean and HDI ends of c·F(t).
    followup : ndarray of shape (n_cohorts,)
        Each cohort's longest follow-up: the curve is solid up to it, dotted beyond
        (extrapolation).
    labels : list
        Cohort labels, in the order of the rows.
    show : list, optional
        The cohorts to draw (default all).
    km : DataFrame, optional
        :func:`~bayesconv.data.kaplan_meier` table, drawn as dashed steps.
    key : str, default "cohort"
        The column of ``km`` (and of ``sims``) that holds the labels.
    ci_prob : float
    unit : str
    legend_title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (8, 5))
    show = list(labels) if show is None else list(show)
    for i, label in enumerate(labels):
        if label not in show:
            continue
        color = f"C{i % 10}"
        inside = t <= followup[i]
        last = np.arange(len(t)) == inside.sum() - 1
        ax.plot(t[inside], mean[i][inside], color=color, lw=2, label=f"{label}")
        ax.plot(t[~inside | last], mean[i][~inside | last], color=color, lw=1.5, ls=":")
        ax.fill_between(t, lower[i], upper[i], color=color, alpha=0.2, lw=0)
        if km is not None:
            g = km[km[key] == label]
            ax.step(np.r_[0.0, g["time"]], np.r_[0.0, g["conversion"]], where="post",
                    color=color, lw=0.9, ls="--", alpha=0.9)
    ax.set_xlim(0, float(t[-1]))
    ax.set_ylim(0, None)
    ax.set_xlabel(f"time since creation ({unit_name(unit)})")
    ax.set_ylabel("cumulative conversion")
    ax.set_title(f"posterior mean and {ci_prob:.0%} HDI (solid; dotted beyond the "
                 "cohort's follow-up), Kaplan–Meier (dashed)", fontsize="medium")
    ax.legend(loc="lower right", title=legend_title or "cohort", fontsize="small")
    return ax


def plot_ppc_km(sims, km, *, labels, show=None, key="cohort", unit: str = "", ax=None):
    """Simulated Kaplan–Meier curves (thin) against the observed ones (thick).

    Parameters
    ----------
    sims : DataFrame
        Columns ``draw``, ``cohort``, ``time``, ``conversion`` (a posterior predictive check).
    km : DataFrame
        The observed :func:`~bayesconv.data.kaplan_meier` table.
    labels, show, key, unit, ax
        As in :func:`plot_curves`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (8, 5))
    show = list(labels) if show is None else list(show)
    for i, label in enumerate(labels):
        if label not in show:
            continue
        color = f"C{i % 10}"
        for _, g in sims[sims[key] == label].groupby("draw"):
            ax.step(np.r_[0.0, g["time"]], np.r_[0.0, g["conversion"]], where="post",
                    color=color, lw=0.5, alpha=0.15)
        g = km[km[key] == label]
        ax.step(np.r_[0.0, g["time"]], np.r_[0.0, g["conversion"]], where="post",
                color=color, lw=2, label=f"{label} observed")
    ax.set_xlabel(f"time since creation ({unit_name(unit)})")
    ax.set_ylabel("cumulative conversion (Kaplan–Meier)")
    ax.set_title("posterior predictive Kaplan–Meier: simulated (thin) vs observed (thick)",
                 fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_calibration(table, *, group: str | None = None, ci_prob: float = 0.94, unit: str = "",
                     legend_title=None, ax=None):
    """Observed vs predicted share converted per follow-up age band, with predictive HDIs.

    Parameters
    ----------
    table : DataFrame
        A calibration table (``ConversionResult.calibration_table``).
    group : str, optional
        A column of ``table`` to colour the bands by (``"cohort"`` for a table by cohort).
    ci_prob, unit, legend_title, ax
        As in :func:`plot_curves`.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.calibration_table`` holds the table drawn.
    """
    ax = _axes(ax, (6, 6))
    parts = [(None, table)] if group is None else list(table.groupby(group, sort=False,
                                                                   observed=True))
    for i, (label, t) in enumerate(parts):
        x = t["predicted_mean"].to_numpy()
        err = np.vstack([x - t["predicted_lower"].to_numpy(),
                         t["predicted_upper"].to_numpy() - x])
        ax.errorbar(x, t["observed_share"], xerr=np.clip(err, 0, None), fmt="o",
                    color=f"C{i % 10}", ms=4, lw=1, capsize=2,
                    label=f"{label}" if label is not None else "follow-up age bands")
    hi = float(max(table[["observed_share", "predicted_upper"]].max().max(), 0.01)) * 1.05
    hi = min(hi, 1.0)
    ax.plot([0, hi], [0, hi], color="0.4", ls="--", lw=1, label="perfect calibration")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(f"predicted share converted (mean, {ci_prob:.0%} predictive HDI)")
    ax.set_ylabel("observed share converted")
    n_in = int(table["inside"].sum())
    ax.set_title(f"calibration by follow-up age band ({unit_name(unit)}): {n_in} of "
                 f"{len(table)} observed inside", fontsize="medium")
    ax.legend(loc="upper left", fontsize="small", title=(legend_title or group) if group else None)
    ax.calibration_table = table
    return ax


def plot_prior_curves(t, draws, *, n_lines: int = 50, ci_prob: float = 0.9, km=None,
                      labels=(), unit: str = "", title: str = "", random_seed=None, ax=None):
    """Prior draws of c·F(t): thin lines, the central ``ci_prob`` band and the median.

    Parameters
    ----------
    t : ndarray of shape (n_t,)
    draws : ndarray of shape (n_draws, n_t)
        Prior draws of the curve.
    n_lines : int
        Draws drawn as lines.
    ci_prob : float
        Probability of the central (equal-tailed) band.
    km : DataFrame, optional
        Observed Kaplan–Meier curves to overlay (dashed), for ``labels``.
    unit, title, random_seed, ax

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (8, 5))
    rng = np.random.default_rng(random_seed)
    for i in rng.choice(len(draws), size=min(n_lines, len(draws)), replace=False):
        ax.plot(t, draws[i], color="C0", lw=0.6, alpha=0.3)
    lo, med, hi = np.quantile(draws, [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2], axis=0)
    ax.fill_between(t, lo, hi, color="C0", alpha=0.15, lw=0,
                    label=f"prior: central {ci_prob:.0%} of c·F(t)")
    ax.plot(t, med, color="C0", lw=2.5, label="prior median")
    if km is not None:
        for i, lab in enumerate(labels):
            gk = km[km["cohort"] == lab]
            ax.step(np.r_[0.0, gk["time"]], np.r_[0.0, gk["conversion"]], where="post",
                    color=f"C{(i + 1) % 10}", lw=1.2, ls="--", label=f"{lab} observed (KM)")
    ax.set_xlim(0, float(t[-1]))
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"time since creation ({unit_name(unit)})")
    ax.set_ylabel("share of units converted")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_differences(diffs, *, hdis, labels, rope=None, scale: float = 100.0,
                     quantity: str = "", direction: str = "higher", ci_prob: float = 0.94,
                     ax=None):
    """Posterior density of the difference treatment − control, one curve per treatment.

    Parameters
    ----------
    diffs : list of ndarray
        Draws of each treatment's difference, in the metric's unit.
    hdis : list of (float, float)
        Each difference's HDI.
    labels : list of str
        Legend text of each curve.
    rope : (float, float), optional
        Region of practical equivalence, drawn as a grey band.
    scale : float, default 100
        Factor from the metric's unit to the axis (100: rates in percentage points).
    quantity : str
        Axis label of the difference.
    direction : str
        "higher" or "lower" (which is better), for the title.
    ci_prob, ax

    Returns
    -------
    matplotlib.axes.Axes
        Gaussian KDE of each difference with its HDI shaded, a line at 0 and the ROPE.
    """
    from scipy.stats import gaussian_kde

    ax = _axes(ax, (7, 4))
    if rope is not None:
        lo, hi = rope
        ax.axvspan(lo * scale, hi * scale, color="0.5", alpha=0.2, lw=0,
                   label=f"ROPE [{lo * scale:+.2f}, {hi * scale:+.2f}]")
    for i, (x, (lo, hi), label) in enumerate(zip(diffs, hdis, labels, strict=True)):
        x = np.asarray(x).ravel() * scale
        lo, hi = lo * scale, hi * scale
        color = f"C{(i + 1) % 10}"
        if np.ptp(x) > 0:
            pad = 0.1 * np.ptp(x)
            grid = np.linspace(x.min() - pad, x.max() + pad, 400)
            dens = gaussian_kde(x)(grid)
        else:  # all draws equal: a spike
            grid, dens = np.array([x[0]] * 2), np.array([0.0, 1.0])
        ax.plot(grid, dens, color=color, lw=2, label=label)
        inside = (grid >= lo) & (grid <= hi)
        ax.fill_between(grid, 0, dens, where=inside, color=color, alpha=0.25, lw=0)
    ax.axvline(0.0, color="k", lw=1)
    ax.set_ylim(0, None)
    ax.set_xlabel(quantity)
    ax.set_ylabel("posterior density")
    ax.set_title(f"posterior of the difference, {ci_prob:.0%} HDI shaded "
                 f"({direction} is better)", fontsize="medium")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_replay(table, first: dict, ax=None, *, threshold: float = 0.95):
    """P(treatment better) over calendar time for the model and the two shortcuts.

    Parameters
    ----------
    table : DataFrame from :func:`bayesconv.replay`.
    first : dict
        The first date each method reached the threshold (:func:`bayesconv.decision_dates`),
        marked with a vertical line.
    ax : matplotlib Axes, optional
    threshold : float, default 0.95
        Decision threshold drawn as a dotted line.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (8, 4.5))
    unit = unit_name(table.attrs.get("time_unit", ""))
    styles = {
        "prob_better": ("model: eventual rate", "C0", "-"),
        "prob_better_horizon": (f"model: by {table.attrs.get('horizon')} {unit}", "C2", "-"),
        "prob_better_window": (f"matured {table.attrs.get('window'):g}-{unit.rstrip('s')} "
                               "window", "C1", "--"),
        "prob_better_naive": ("naive rate so far", "C7", ":"),
    }
    for col, (label, color, ls) in styles.items():
        if col not in table:
            continue
        ax.plot(table["as_of"], table[col], color=color, ls=ls, marker="o", ms=3, label=label)
        if pd.notna(first.get(col, pd.NaT)):
            ax.axvline(first[col], color=color, ls=ls, lw=0.8, alpha=0.6)
    ax.axhline(threshold, color="k", ls=":", lw=0.8)
    ax.axhline(1 - threshold, color="k", ls=":", lw=0.8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(f"P({table.attrs.get('treatment')} better than "
                  f"{table.attrs.get('control')})")
    ax.set_xlabel("as-of date")
    ax.set_title(f"when would each method have decided? (threshold {threshold:.0%})",
                 fontsize="medium")
    ax.legend(fontsize="small", loc="lower right")
    ax.figure.autofmt_xdate()
    return ax


def plot_forest(labels, means, lowers, uppers, *, reference: float = 0.0, scale: float = 100.0,
                quantity: str = "", title: str = "", highlight_first: bool = True, ax=None):
    """A forest plot: one estimate and interval per row (segments of a readout).

    Parameters
    ----------
    labels : list of str
        Row labels, top to bottom.
    means, lowers, uppers : sequence of float
        Point estimates and interval ends, in the metric's unit.
    reference : float, default 0
        A vertical reference line (no difference).
    scale : float, default 100
        Factor from the metric's unit to the axis (100: rates in percentage points).
    quantity, title : str
        Axis label and title.
    highlight_first : bool, default True
        Draw the first row (the overall estimate) as a diamond.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (7, 0.6 * len(labels) + 1.5))
    y = np.arange(len(labels))[::-1]
    m, lo, hi = (np.asarray(v, dtype=float) * scale for v in (means, lowers, uppers))
    for i, (yy, a, b, c) in enumerate(zip(y, m, lo, hi, strict=True)):
        first = highlight_first and i == 0
        ax.plot([b, c], [yy, yy], color="k" if first else "C0", lw=2 if first else 1.5)
        ax.plot([a], [yy], marker="D" if first else "o", color="k" if first else "C0",
                ms=8 if first else 5)
    ax.axvline(reference * scale, color="0.5", ls="--", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlabel(quantity)
    ax.set_title(title, fontsize="medium")
    return ax


def plot_projection(days, prob_decided, pb_low, pb_mid, pb_high, *, title: str = "", ax=None):
    """P(decision by each day) and the spread of P(better) over projected futures.

    Parameters
    ----------
    days : array of shape (n,)
        Calendar days from now.
    prob_decided : array of shape (n,)
        Share of simulated futures in which the rule has fired by each day.
    pb_low, pb_mid, pb_high : arrays of shape (n,)
        5%, 50% and 95% quantiles over the futures of P(treatment better).
    title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (7, 4))
    ax.plot(days, prob_decided, "o-", color="C0", label="P(decision by then)")
    ax.fill_between(days, pb_low, pb_high, color="C1", alpha=0.2,
                    label="P(better): 5%–95% of futures")
    ax.plot(days, pb_mid, "s--", color="C1", label="P(better): median future")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("days from now")
    ax.set_ylabel("probability")
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return ax
