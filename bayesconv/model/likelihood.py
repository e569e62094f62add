"""The censored cure-mixture log-likelihood, written once for numpy and PyTensor.

For a unit of cell g with eventual conversion probability c_g and lag distribution F
(density f, survival S = 1 − F), each aggregated row contributes ``count`` times one of:

==============================  ======================================  ===========================
row kind (:class:`RowKind`)     log-likelihood of one unit              computed as
==============================  ======================================  ===========================
EXACT: converted at t > 0       log c_g + log f(t)                      sufficient statistics if any
FIRST_BIN: converted in (0, b]  log c_g + log F(b)                      logcdf
INTERVAL: converted in (a, b]   log c_g + log(F(b) − F(a))              :meth:`LagFamily.log_mass`
CENSORED: not converted by t    log(1 − c_g F(t)) = log(1 − c + c S)    :mod:`~bayesconv.model.mixture`
AT_ZERO: not converted, t = 0   0                                       (left out)
SMEARED_FIRST: recorded 0       log c_g + log ∫₀¹ F((1 − u)δ) du        Gauss–Legendre, CDF
SMEARED_NEAR: recorded δ        log c_g + log ∫ f(t) Λ(t/δ − 1) dt      Gauss–Legendre, density
SMEARED: recorded kδ, k ≥ 2     log c_g + log ∫ f(t) Λ(t/δ − k) dt      Gauss rule for Λ, density
SMEARED_CENSORED_NEAR: a < 1.5δ log(1 − c_g ∫₀¹ F(a − u min(δ, a)) du)  S(a) + density nodes
SMEARED_CENSORED: a ≥ 1.5δ      log(1 − c_g ∫₀¹ F(a − uδ) du)           S(a) + Gauss rule for v
==============================  ======================================  ===========================

The SMEARED kinds read data recorded to a resolution δ (``data.meta["resolution"]`` with
``data.meta["resolution_read"] == "interval"``, see :mod:`bayesconv.data.resolution`) as
coarsened data (Heitjan & Rubin 1991, "Ignorability and coarse data", *Ann. Statist.* 19):
creation and conversion times are both floored to δ, so a unit created at c₀ + uδ, with u
uniform on [0, 1), whose conversion is recorded k bins later converted after a lag in
[(k − u)δ, (k + 1 − u)δ); integrating over u gives the probability of the recorded k, the lag
density averaged with the triangular weights Λ(s) = max(0, 1 − |s|) over ((k − 1)δ,
(k + 1)δ). A censored unit of recorded age a was followed for a − uδ, with u uniform over the
part of its creation bin before the observation date (u < min(1, a/δ)). The integrals are
Gauss rules (:func:`_smeared`): next to a lag of 0, Gauss–Legendre after substitutions that
smooth the density's integrable singularity there (shape < 1); away from it, where the
density is smooth over the bin, Gaussian rules for the weights themselves (Λ, or v on the
censored unit's last bin: Golub & Welsch 1969), which reach the same accuracy with fewer
density evaluations, 6 or 4 instead of 16 or 8 per row. Their relative error is below 3e-4
against adaptive quadrature for every lag family (tests/test_likelihood.py), 1e-3 to 2e-3 only for
probabilities below 1e-6 or lags much narrower than δ.

A conversion at duration 0 (same timestamp as creation) has density log f(0) = −∞ for lags
that rise from zero (gamma or Weibull with shape > 1), so it enters as a conversion in the
first bin (0, δ], where δ is ``zero_width`` (by default the smallest positive duration in the
data, i.e. the data's time resolution). This is the interval-censoring reading of a timestamp
that is only known to its resolution (Klein & Moeschberger 2003, §3.3).

Rows are indexed by **cell** (:attr:`bayesconv.data.ConversionData.cell`); parameters are
vectors over cells. What a cell is (a cohort, an arm × segment) is the design's business, not
the likelihood's.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..data.container import ConversionData
from ..data.stats import weighted_median
from ..lags.namespace import Namespace
from .mixture import log_converted_by, log_not_converted

__all__ = ["DENSITY_NODES", "RAMP_NODES", "SMEARED_KINDS", "SMEAR_NODES", "TRIANGLE_NODES",
           "LikelihoodArrays", "LikelihoodRows", "RowKind", "default_time_scale",
           "default_zero_width", "merge_cells", "row_loglik", "rows_from_data", "total_loglik"]


class RowKind(IntEnum):
    """How an aggregated row enters the likelihood (see the module docstring)."""

    EXACT = 0
    FIRST_BIN = 1
    INTERVAL = 2
    CENSORED = 3
    AT_ZERO = 4
    SMEARED_FIRST = 5
    SMEARED = 6
    SMEARED_CENSORED = 7
    SMEARED_NEAR = 8
    SMEARED_CENSORED_NEAR = 9


#: Row kinds that contribute to the likelihood, in the order the terms are summed.
CONTRIBUTING = (RowKind.EXACT, RowKind.FIRST_BIN, RowKind.INTERVAL, RowKind.CENSORED,
                RowKind.SMEARED_FIRST, RowKind.SMEARED_NEAR, RowKind.SMEARED,
                RowKind.SMEARED_CENSORED_NEAR, RowKind.SMEARED_CENSORED)
#: Row kinds of data recorded to a resolution: they read a per-row ``width``.
SMEARED_KINDS = (RowKind.SMEARED_FIRST, RowKind.SMEARED_NEAR, RowKind.SMEARED,
                 RowKind.SMEARED_CENSORED_NEAR, RowKind.SMEARED_CENSORED)
#: Recorded durations below ``NEAR * δ`` use the rules that handle a density singular at 0.
NEAR = 1.5
#: Gauss–Legendre nodes of the integral of the first bin's CDF over the creation time.
SMEAR_NODES = 6
#: Gauss–Legendre nodes on each half of the triangular weights of the lag density (next to 0).
DENSITY_NODES = 8
#: Nodes of the Gaussian rule for the triangular weights Λ (away from 0).
TRIANGLE_NODES = 6
#: Nodes of the Gaussian rule for the weight v on (0, 1) (a censored unit's last bin).
RAMP_NODES = 4


def _smear_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Nodes u on (0, 1) and log weights (summing to 1) for ∫₀¹ g(u) du with g(u) ~
    (1 − u)^shape at u → 1: Gauss–Legendre after u = 1 − (1 − v)², which makes it smooth."""
    x, w = np.polynomial.legendre.leggauss(SMEAR_NODES)
    v, w = (x + 1.0) / 2.0, w / 2.0
    return 1.0 - (1.0 - v) ** 2, np.log(2.0 * w * (1.0 - v))


def _density_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Offsets o in (−1, 0) and log weights (summing to 1/2) for ∫₀¹ g(v) v dv, written as
    Σ w g(1 + o): one half of the triangular weights, the density's integrable singularity at
    a lag of 0 (shape < 1) at its v = 0 end. Gauss–Legendre after v = x², which turns
    v^shape there into x^(2·shape + 1)."""
    x, w = np.polynomial.legendre.leggauss(DENSITY_NODES)
    x, w = (x + 1.0) / 2.0, w / 2.0
    v = x ** 2
    return v - 1.0, np.log(2.0 * w * x * v)


def _gauss_rule(x: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n-node Gaussian rule of the measure Σ w δ_x (nodes, weights): the recurrence of
    its orthogonal polynomials by the Stieltjes procedure, then the eigenvalues of the Jacobi
    matrix (Golub & Welsch 1969, "Calculation of Gauss quadrature rules", *Math. Comp.* 23;
    Gautschi 2004, *Orthogonal Polynomials*, §2.2). With ``x, w`` a Gauss–Legendre rule of
    many nodes for a weight that is polynomial on each piece, the discrete measure has the
    weight's moments exactly, so the rule is the weight's own."""
    a, b = np.zeros(n), np.zeros(n)   # p_{k+1} = (x − a_k) p_k − b_k p_{k−1}; b_0 = Σ w
    p_prev, p = np.zeros_like(x), np.ones_like(x)
    norm_prev = 1.0
    for k in range(n):
        norm = np.sum(w * p * p)
        a[k] = np.sum(w * x * p * p) / norm
        b[k] = norm / norm_prev
        p_prev, p = p, (x - a[k]) * p - (b[k] if k else 0.0) * p_prev
        norm_prev = norm
    jacobi = np.diag(a) + np.diag(np.sqrt(b[1:]), 1) + np.diag(np.sqrt(b[1:]), -1)
    nodes, vectors = np.linalg.eigh(jacobi)
    return nodes, b[0] * vectors[0] ** 2


def _piecewise_legendre(edges, weight, n=200):
    """Gauss–Legendre nodes and weights × ``weight`` on each piece between ``edges``."""
    x, w = np.polynomial.legendre.leggauss(n)
    xs, ws = [], []
    for lo, hi in itertools.pairwise(edges):
        t = lo + (x + 1.0) * (hi - lo) / 2.0
        xs.append(t)
        ws.append(w * (hi - lo) / 2.0 * weight(t))
    return np.concatenate(xs), np.concatenate(ws)


@functools.cache
def _triangle_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Offsets s in (−1, 1) and log weights (summing to 1) of the Gaussian rule for
    ∫ g(s) Λ(s) ds, Λ(s) = 1 − |s|: exact for polynomial g of degree 2·TRIANGLE_NODES − 1."""
    s, w = _gauss_rule(*_piecewise_legendre((-1.0, 0.0, 1.0), lambda t: 1.0 - np.abs(t)),
                       TRIANGLE_NODES)
    return _frozen(s), _frozen(np.log(w))


@functools.cache
def _ramp_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Offsets o in (−1, 0) and log weights (summing to 1/2) for ∫₀¹ g(v) v dv, written as
    Σ w g(1 + o): the Gaussian rule for the weight v, exact for polynomial g of degree
    2·RAMP_NODES − 1."""
    v, w = _gauss_rule(*_piecewise_legendre((0.0, 1.0), lambda t: t), RAMP_NODES)
    return _frozen(v - 1.0), _frozen(np.log(w))


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only: the cached rules are shared by every caller."""
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class LikelihoodRows:
    """Aggregated rows split by how they enter the likelihood.

    All times are in the model's internal unit: the data's time unit divided by ``time_scale``.

    Attributes
    ----------
    kind : ndarray of shape (n_rows,), int
        :class:`RowKind` of each data row, in the order of the ``ConversionData``.
    cell, lower, upper, count : ndarray of shape (n_rows,)
        Cell code, lower and upper time (equal for exact and censored rows), unit count.
    width : ndarray of shape (n_rows,)
        Resolution δ of the SMEARED rows (0 for the others).
    time_scale : float
        Internal time unit in the data's time unit.
    n_cells : int
    """

    kind: np.ndarray
    cell: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    time_scale: float
    n_cells: int
    width: np.ndarray | None = None

    def __post_init__(self):
        if self.width is None:
            object.__setattr__(self, "width", np.zeros(len(self.kind)))

    def subset(self, kind: RowKind):
        """Cell, lower, upper, count arrays of the rows of one kind."""
        m = self.kind == kind
        return self.cell[m], self.lower[m], self.upper[m], self.count[m].astype(float)


def default_time_scale(data: ConversionData) -> float:
    """A time scale that follows the data, so that priors do not depend on the time unit.

    The count-weighted median duration of converted units (or of all units if none converted).
    Fitting the same events in hours or in days gives the same scale in calendar time.
    """
    m = data.converted if data.converted.any() else np.ones(data.n_rows, bool)
    med = weighted_median(data.duration[m], data.count[m])
    if med <= 0:
        pos = data.duration[data.duration > 0]
        med = pos.max() if pos.size else 1.0
    return float(med)


def default_zero_width(data: ConversionData) -> float:
    """Smallest positive duration in the data (its time resolution), 1.0 if there is none."""
    pos = data.duration[data.duration > 0]
    return float(pos.min()) if pos.size else 1.0


def rows_from_data(data: ConversionData, *, time_scale: float | None = None,
                   zero_width: float | None = None) -> LikelihoodRows:
    """Classify the rows of ``data`` for the likelihood (see the module docstring).

    Parameters
    ----------
    data : ConversionData
    time_scale : float, optional
        Internal time unit, in the data's time unit (default :func:`default_time_scale`).
    zero_width : float, optional
        Width δ of the first bin that conversions at duration 0 are placed in, in the data's
        time unit (default :func:`default_zero_width`).

    Returns
    -------
    LikelihoodRows
        With ``data.meta["resolution_read"] == "interval"`` every row that is not binned
        (``lower == duration``) is one of the SMEARED kinds, with width
        ``data.meta["resolution"]``; in the duration/event layout (``meta["layout"] ==
        "durations"``), where only the duration was rounded, a converted row is an interval
        (d − δ/2, d + δ/2] (FIRST_BIN from 0) and a censored one averages the survival over
        the same interval.
    """
    s = default_time_scale(data) if time_scale is None else float(time_scale)
    z = default_zero_width(data) if zero_width is None else float(zero_width)
    if not (s > 0 and z > 0):
        raise ValueError(f"time_scale and zero_width must be positive, got {s} and {z}")
    lower = data.lower.astype(float).copy()
    upper = data.duration.astype(float).copy()
    conv = data.converted
    zero_conv = conv & (upper == 0)
    upper[zero_conv] = z
    lower[zero_conv] = 0.0
    kind = np.full(data.n_rows, RowKind.CENSORED, dtype=np.int8)
    kind[conv & (lower == upper)] = RowKind.EXACT
    kind[conv & (lower == 0) & (upper > 0) & (lower < upper)] = RowKind.FIRST_BIN
    kind[conv & (lower > 0) & (lower < upper)] = RowKind.INTERVAL
    kind[~conv & (upper == 0)] = RowKind.AT_ZERO
    width = np.zeros(data.n_rows)
    if data.meta.get("resolution_read") == "interval":
        recorded = data.duration.astype(float)
        point = data.lower == data.duration     # not binned
        delta = float(data.meta["resolution"])
        if data.meta.get("layout") == "durations":
            # only the duration was rounded, and floor cannot be told from ceiling: d is read
            # as rounded to the nearest δ, a lag (or follow-up) in (d − δ/2, d + δ/2]
            hi = recorded + delta / 2
            lo = np.maximum(recorded - delta / 2, 0.0)
            kind[point & conv] = np.where(lo[point & conv] > 0, RowKind.INTERVAL,
                                          RowKind.FIRST_BIN)
            lower[point & conv], upper[point & conv] = lo[point & conv], hi[point & conv]
            upper[point & ~conv] = lower[point & ~conv] = hi[point & ~conv]
            kind[point & ~conv] = np.where(hi[point & ~conv] < NEAR * delta,
                                           RowKind.SMEARED_CENSORED_NEAR,
                                           RowKind.SMEARED_CENSORED)
            width[point & ~conv] = delta
        else:
            near = recorded < NEAR * delta
            kind[point & conv & (recorded == 0)] = RowKind.SMEARED_FIRST
            kind[point & conv & (recorded > 0) & near] = RowKind.SMEARED_NEAR
            kind[point & conv & ~near] = RowKind.SMEARED
            kind[point & ~conv & (recorded > 0) & near] = RowKind.SMEARED_CENSORED_NEAR
            kind[point & ~conv & ~near] = RowKind.SMEARED_CENSORED
            smeared = np.isin(kind, SMEARED_KINDS)
            upper[smeared], lower[smeared] = recorded[smeared], recorded[smeared]
            width[smeared] = delta
    return LikelihoodRows(kind=kind, cell=data.cell.astype(np.int64), lower=lower / s,
                          upper=upper / s, count=data.count.astype(np.int64), time_scale=s,
                          n_cells=data.n_cells, width=width / s)


def merge_cells(rows: LikelihoodRows, cell_class: np.ndarray, n_classes: int) -> LikelihoodRows:
    """The rows with cells that share every parameter merged into one class.

    A unit's log-likelihood depends on its cell only through the cell's parameters, so cells
    whose parameters are equal by construction (a formula that does not use some of the
    covariates, no formula on data with covariates) can be one class, and rows alike in
    (class, kind, lower, upper) one row with the summed count: the total log-likelihood is
    unchanged, its cost is that of the coarser data.

    Parameters
    ----------
    rows : LikelihoodRows
        Rows indexed by cell.
    cell_class : ndarray of int, shape (rows.n_cells,)
        Class code of every cell, in ``0 .. n_classes - 1``.
    n_classes : int

    Returns
    -------
    LikelihoodRows
        Rows indexed by class (``cell`` holds class codes, ``n_cells == n_classes``), sorted by
        (class, kind, lower, upper); times in the same internal unit.
    """
    cell_class = np.asarray(cell_class, dtype=np.int64)
    if cell_class.shape != (rows.n_cells,):
        raise ValueError(f"cell_class has shape {cell_class.shape}, expected ({rows.n_cells},)")
    keys = np.rec.fromarrays([cell_class[rows.cell], rows.kind.astype(np.int64), rows.lower,
                              rows.upper, rows.width], names="cls,kind,lower,upper,width")
    unique, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse.ravel(), weights=rows.count, minlength=len(unique))
    return LikelihoodRows(kind=unique["kind"].astype(np.int8), cell=unique["cls"].copy(),
                          lower=unique["lower"].copy(), upper=unique["upper"].copy(),
                          count=np.rint(count).astype(np.int64), time_scale=rows.time_scale,
                          n_cells=int(n_classes), width=unique["width"].copy())


def _split_xp(params, xp):
    """``(params, xp)`` from ``*params`` whose last item may be the namespace (old call form)."""
    if xp is None and params and isinstance(params[-1], Namespace):
        return params[:-1], params[-1]
    if xp is None:
        raise TypeError("the numeric namespace xp (bayesconv.lags.NP or PT) is required")
    return params, xp


def _terms(family, kind, g, lo, up, log_c, log1m_c, params, xp, width=None):
    """Per-unit log-likelihood of rows of a single kind (vectorised).

    ``params``: the family's lag parameters (``family.param_names`` order), per cell;
    ``width``: the resolution of SMEARED rows.
    """
    lc = log_c[..., g]
    pk = tuple(p[..., g] for p in params)
    if kind in SMEARED_KINDS:
        return _smeared(family, kind, lc, log1m_c[..., g], pk, up, width, xp)
    if kind == RowKind.EXACT:
        return lc + family.logpdf(up, *pk, xp=xp)
    if kind == RowKind.FIRST_BIN:
        return log_converted_by(lc, family.logcdf(up, *pk, xp=xp))
    if kind == RowKind.INTERVAL:
        return lc + family.log_mass(lo, up, *pk, xp=xp)
    if kind == RowKind.CENSORED:
        return log_not_converted(lc, log1m_c[..., g], family.logsf(up, *pk, xp=xp), xp)
    raise ValueError(f"unknown row kind {kind}")


def _smeared(family, kind, lc, l1c, pk, up, width, xp):
    """Rows of data recorded to a resolution (module docstring), as log-sums over quadrature
    nodes on a trailing axis.

    With δ the width and d the recorded duration (internal time unit):

    * recorded 0: P = ∫₀¹ F((1 − u)δ) du, from the CDF at :data:`SMEAR_NODES` nodes;
    * recorded d ≥ δ: P = δ ∫ f(d + sδ) Λ(s) ds, the density with its triangular weights:
      next to 0 (SMEARED_NEAR) as δ ∫₀¹ [f(d − δ + vδ) + f(d + δ − vδ)] v dv at
      2 × :data:`DENSITY_NODES` nodes, away from it (SMEARED) at the
      :data:`TRIANGLE_NODES` nodes of Λ's Gaussian rule (densities are cheap, and a sum of
      positive terms loses no digits);
    * censored at recorded age a, with s = min(δ, a): the average survival over (a − s, a] is
      S(a) + s ∫₀¹ f(a − s + v s) v dv (integrating by parts), 1 survival function and
      :data:`DENSITY_NODES` densities next to 0 (SMEARED_CENSORED_NEAR), the
      :data:`RAMP_NODES` nodes of the weight v's Gaussian rule away from it.
    """
    pk = tuple(p[..., None] for p in pk)
    w = width[..., None]
    if kind == RowKind.SMEARED_FIRST:      # recorded 0: ``up`` is not read (nor stored)
        x, log_w = _smear_nodes()
        log_p = xp.logsumexp(family.logcdf((1.0 - x) * w, *pk, xp=xp) + log_w, axis=-1)
        return log_converted_by(lc, log_p)
    d = up[..., None]
    if kind in (RowKind.SMEARED, RowKind.SMEARED_NEAR):
        if kind == RowKind.SMEARED:
            o, log_w = _triangle_nodes()
        else:
            o, log_w = _density_nodes()
            o, log_w = np.concatenate([o, -o]), np.concatenate([log_w, log_w])
        log_p = xp.log(width) + xp.logsumexp(family.logpdf(d + o * w, *pk, xp=xp) + log_w,
                                             axis=-1)
        return log_converted_by(lc, log_p)
    o, log_w = _ramp_nodes() if kind == RowKind.SMEARED_CENSORED else _density_nodes()
    s = xp.minimum(w, d)
    log_head = xp.log(s[..., 0]) + xp.logsumexp(family.logpdf(d + o * s, *pk, xp=xp) + log_w,
                                                axis=-1)
    log_avg_sf = xp.logaddexp(family.logsf(up, *(p[..., 0] for p in pk), xp=xp), log_head)
    return log_not_converted(lc, l1c, log_avg_sf, xp)


def row_loglik(family, rows: LikelihoodRows, log_c, log1m_c, *params, xp=None):
    """Per-unit log-likelihood of every row, in data order (numpy only).

    Parameters
    ----------
    family : LagFamily
    rows : LikelihoodRows
    log_c, log1m_c : ndarray of shape (..., n_cells)
        log c_g and log(1 − c_g); leading dims (e.g. chain, draw) broadcast.
    *params : ndarray of shape (..., n_cells)
        The lag parameters per cell in ``family.param_names`` order (``loc, shape`` for
        most families; lag location in the internal time unit).
    xp : namespace
        ``bayesconv.lags.NP`` (keyword, or positionally after the parameters).

    Returns
    -------
    ndarray of shape (..., n_rows)
        Log-likelihood of one unit of each row, in the data's time unit (exact rows include
        the Jacobian −log(time_scale)). Multiply by ``rows.count`` for the row's total.
    """
    params, xp = _split_xp(params, xp)
    log_c, log1m_c, *params = np.broadcast_arrays(log_c, log1m_c, *params)
    out = np.zeros(log_c.shape[:-1] + (len(rows.kind),))
    for kind in CONTRIBUTING:
        m = rows.kind == kind
        if not m.any():
            continue
        val = _terms(family, kind, rows.cell[m], rows.lower[m], rows.upper[m], log_c,
                     log1m_c, params, xp, rows.width[m])
        if kind == RowKind.EXACT:
            val = val - np.log(rows.time_scale)
        out[..., m] = val
    return out


class LikelihoodArrays(dict):
    """The arrays :func:`total_loglik` reads, keyed ``(kind, field)`` or ``("stats", name)``.

    Fields per row kind: ``cell``, ``count``, ``upper`` (but for
    :attr:`RowKind.SMEARED_FIRST`, whose recorded duration is 0) and, for
    :attr:`RowKind.INTERVAL`, ``lower``, for the SMEARED kinds ``width``: every array is read
    by the graph (nutpie's ``with_data`` knows only the data the graph uses);
    ``("stats", name)`` holds a family's per-cell sufficient statistics of the exact
    conversions (``family.suff_stat_names``). Kinds without rows are left out, so the model
    graph has no empty terms. :meth:`data_name` names each array as a ``pm.Data`` variable.
    """

    @staticmethod
    def data_name(key) -> str:
        """The ``pm.Data`` name of an array, e.g. ``"lik_3_upper"`` or ``"lik_stats_n"``."""
        kind, field = key
        return f"lik_{kind if kind == 'stats' else int(kind)}_{field}"

    def named(self) -> dict:
        """``{pm.Data name: array}``, e.g. for ``CompiledModel.with_data``."""
        return {self.data_name(k): v for k, v in self.items()}

    def ranks(self) -> dict:
        """``{pm.Data name: number of dimensions}``: what a compiled model's structure depends
        on. The lengths are not: the graph reads them from the data at run time, so a model
        compiled on one data set runs on another with other row counts
        (``CompiledModel.with_data``; tested in ``tests/test_inference.py``)."""
        return {self.data_name(k): int(np.ndim(v)) for k, v in sorted(self.items(),
                                                                      key=lambda kv: str(kv[0]))}

    @classmethod
    def from_rows(cls, family, rows: LikelihoodRows) -> LikelihoodArrays:
        out = cls()
        for kind in CONTRIBUTING:
            g, lo, up, cnt = rows.subset(kind)
            if kind == RowKind.EXACT and getattr(family, "suff_stats", None) is not None:
                if cnt.size:
                    # weights of shape (n_cells, n_rows): row r counts only for its own cell
                    w = np.where(g[None, :] == np.arange(rows.n_cells)[:, None], cnt, 0.0)
                    stats = family.suff_stats(up, w, axis=1)
                    out.update({("stats", name): v
                                for name, v in zip(family.suff_stat_names, stats, strict=True)})
                continue
            if cnt.size:
                out.update({(kind, "cell"): g, (kind, "count"): cnt})
                if kind != RowKind.SMEARED_FIRST:   # recorded 0: the term does not read it
                    out[(kind, "upper")] = up
                if kind == RowKind.INTERVAL:  # only interval rows use their lower edge
                    out[(kind, "lower")] = lo
                if kind in SMEARED_KINDS:
                    out[(kind, "width")] = rows.width[rows.kind == kind]
        return out


def total_loglik(family, rows: LikelihoodRows, log_c, log1m_c, *params, xp=None,
                 data_vars: dict | None = None):
    """Sum of count × log-likelihood over all rows: the model's likelihood term.

    Parameters
    ----------
    family : LagFamily
    rows : LikelihoodRows
    log_c, log1m_c, *params : vectors of shape (n_cells,)
        Parameters (numpy arrays or PyTensor tensors): log c, log(1 − c) and the lag
        parameters in ``family.param_names`` order, lag location in the internal time unit.
    xp : namespace
        ``bayesconv.lags.NP`` or ``bayesconv.lags.PT`` (keyword, or positionally after the
        parameters).
    data_vars : LikelihoodArrays or dict, optional
        The arrays to read, keyed as :class:`LikelihoodArrays` (e.g. ``pm.Data`` tensors);
        default: the arrays of ``rows``.

    Returns
    -------
    scalar
        Log-likelihood up to the constant Jacobian of the time scale. Exact conversions of a
        family with sufficient statistics (gamma: Σ n, Σ n log t, Σ n t; exponential,
        log-normal) are summed per cell from them instead of row by row.
    """
    params, xp = _split_xp(params, xp)
    arrays = data_vars if data_vars is not None else LikelihoodArrays.from_rows(family, rows)
    total = 0.0
    for kind in CONTRIBUTING:
        if kind == RowKind.EXACT and ("stats", "n") in arrays:
            stats = [arrays[("stats", name)] for name in family.suff_stat_names]
            total = total + (stats[0] * log_c).sum() + family.loglik_exact_from_stats(
                *stats, *params, xp=xp).sum()
            continue
        if (kind, "count") not in arrays:
            continue
        g, cnt = arrays[(kind, "cell")], arrays[(kind, "count")]
        lo, up, wd = (arrays.get((kind, name)) for name in ("lower", "upper", "width"))
        total = total + (cnt * _terms(family, kind, g, lo, up, log_c, log1m_c, params,
                                      xp, wd)).sum()
    return total
