"""Formulas on the model's parameters: a design per parameter over the data's cells.

A formula is a Wilkinson formula with lme4-style group terms, parsed and expanded into design
matrices by `formulae <https://github.com/bambinos/formulae>`_ (the library bambi uses), on the
cell table (:attr:`bayesconv.data.ConversionData.cells`, one row per distinct combination of the
cohort and the covariates):

* ``variant``, ``a:b``, ``a * b``, numeric covariates: fixed effects;
* ``(1 | g)``, ``(x | g)``: group-specific (random) effects over the levels of ``g``, one
  between-group sd per term (formulae splits ``(x | g)`` into ``1|g`` and ``x|g``);
* ``rw(period)``: a Gaussian random walk over the ordered levels of a period column (drift over
  signup weeks), identified against the intercept by starting at 0.

The linear predictor is on the parameter's link scale: logit of the eventual rate, log of the
lag location over the model's time scale, log of the lag shape, and the generalized gamma's
``q`` itself. Numeric covariates enter standardised (centred and divided by their unit-weighted
sd over the cells), so their coefficients are per sd and their priors mean the same in any
unit; the scaling is kept for predictions on new rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["PARAMETERS", "Design", "GroupTerm", "WalkTerm", "build_design", "formula_columns",
           "parse_formula"]

#: The model's parameters a formula can be given for: (raw name on the link scale, link).
PARAMETERS = {
    "eventual_rate": ("logit_rate", "logit"),
    "lag_loc": ("log_lag_loc", "log"),
    "lag_shape": ("log_lag_shape", "log"),
    "lag_q": ("lag_q", "identity"),
}

_SYNTAX_HINT = ("Formulas are Wilkinson formulas: terms joined by '+', e.g. "
                "'variant + age + (variant | platform) + rw(signup_week)'; 'a:b' and 'a * b' "
                "for interactions, '(1 | g)' or '(x | g)' for group-specific terms.")
_GROUP_FACTOR = re.compile(r"\|\s*([^()|]+?)\s*\)")
_C_CALL = re.compile(r"\bC\(\s*([A-Za-z_]\w*)")
_CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
_RW = re.compile(r"^rw\(\s*([^()]+?)\s*\)$")


def parse_formula(formula: str) -> tuple[str, list[str]]:
    """Split ``rw(period)`` terms off a formula.

    Parameters
    ----------
    formula : str
        E.g. ``"variant + (variant | platform) + rw(signup_week)"``.

    Returns
    -------
    formula : str
        The formula without the random walks, in formulae's syntax (``"1"`` when nothing else
        is left but the intercept, ``"0"`` when not even that).
    periods : list of str
        The period columns of the random walks, in order.

    Raises
    ------
    ValueError
        A formula formulae cannot parse (its message is kept).
    """
    from formulae import model_description
    from formulae.terms import GroupSpecificTerm, Intercept

    if not formula.strip():
        raise ValueError("the formula is empty: give '1' for an intercept only, or leave the "
                         "parameter out of formula= to keep its default")
    if "~" in formula:
        raise ValueError(f"the formula {formula!r} has a '~': formulas here have no left-hand "
                         "side (the parameter is the dict key), e.g. {'eventual_rate': "
                         "'variant + (1 | platform)'}")
    depth = 0
    for ch in formula:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(f"cannot parse the formula {formula!r}: unbalanced parentheses "
                         f"({formula.count('(')} '(' and {formula.count(')')} ')'). "
                         f"{_SYNTAX_HINT}")
    try:
        desc = model_description(formula)
    except Exception as err:  # formulae raises its own error types for syntax errors
        msg = str(err)
        if msg == "Don't know how to parse ''":
            msg = "it ends where a term is expected (an operator with nothing after it?)"
        elif msg.startswith("Don't know how to parse"):
            msg += " (a term is missing there)"
        raise ValueError(f"cannot parse the formula {formula!r}: {msg}. {_SYNTAX_HINT}"
                         ) from None
    intercept, parts, periods = False, [], []
    for term in desc.terms:
        if isinstance(term, Intercept):
            intercept = True
        elif isinstance(term, GroupSpecificTerm):
            parts.append(f"({term.name})")
        elif (m := _RW.match(term.name)) is not None:
            periods.append(m.group(1))
        else:
            calls = [f for f in _CALL.findall(term.name) if f != "C"]
            if calls:
                raise ValueError(
                    f"the formula {formula!r}: the term {term.name!r} calls {calls[0]}(); "
                    "functions of covariates are not supported in formulas (numeric covariates "
                    "enter standardised, so log(age) would be the log of a standardised age): "
                    "add the transformed column to the events (events['log_age'] = "
                    "np.log(events['age'])) and name it in prepare(..., covariates=[...]); "
                    "C(x) for a numeric column as categories is fine")
            parts.append(term.name)
    return " + ".join(["1" if intercept else "0", *parts]), periods


def formula_columns(formula: str) -> set:
    """The data columns a formula uses (its variables, in any term)."""
    from formulae import model_description

    return set().union(*(getattr(t, "var_names", set()) for t in
                         model_description(formula).terms))


@dataclass(frozen=True)
class GroupTerm:
    """A group-specific term: one coefficient per level of a factor, with a common sd.

    Attributes
    ----------
    name : str
        formulae's name, e.g. ``"1|platform"`` or ``"variant|platform"``.
    factor : str
        The grouping column.
    levels : tuple of str
        Its levels (the coefficients' coordinate).
    Z : ndarray of shape (n_cells, n_levels)
        Each cell's weight on each level's coefficient (an indicator, times the slope's
        covariate for ``x|g``).
    intercept : bool
        Whether the term is a group intercept ``1|g`` (else a slope).
    """

    name: str
    factor: str
    levels: tuple
    Z: np.ndarray
    intercept: bool


@dataclass(frozen=True)
class WalkTerm:
    """A random walk over the ordered levels of a period column.

    Attributes
    ----------
    period : str
        The period column.
    levels : tuple
        Its distinct values in order (the walk's coordinate).
    index : ndarray of shape (n_cells,)
        Each cell's position among ``levels``.
    """

    period: str
    levels: tuple
    index: np.ndarray


@dataclass(frozen=True)
class Design:
    """The design of one parameter over the cells.

    Attributes
    ----------
    parameter : str
        A key of :data:`PARAMETERS`.
    formula : str
        As given.
    intercept : bool
    fixed : tuple of str
        Names of the fixed-effect columns (without the intercept).
    X : ndarray of shape (n_cells, n_fixed)
    groups : tuple of GroupTerm
    walks : tuple of WalkTerm
    scaling : dict
        Numeric covariate -> (mean, sd) used to standardise it.
    dtypes : dict
        Column the formula uses -> its dtype in the cell table (new rows are converted to it).
    """

    parameter: str
    formula: str
    intercept: bool
    fixed: tuple
    X: np.ndarray
    groups: tuple
    walks: tuple
    scaling: dict = field(default_factory=dict)
    dtypes: dict = field(default_factory=dict)
    _matrices: object = field(default=None, repr=False, compare=False)

    @property
    def raw(self) -> str:
        """The name of the parameter on its link scale (``"logit_rate"``, ...)."""
        return PARAMETERS[self.parameter][0]

    def evaluate(self, rows: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray], list]:
        """The design of new rows (cells not necessarily in the data).

        Parameters
        ----------
        rows : DataFrame
            With the columns the formula uses.

        Returns
        -------
        X : ndarray of shape (n_rows, n_fixed)
        Zs : list of ndarray of shape (n_rows, n_levels), one per group term
        walk_index : list of ndarray of shape (n_rows,), one per walk

        Raises
        ------
        ValueError
            Columns the formula uses that ``rows`` lacks (all named); rows with a missing
            value in one of them, or a value that cannot be converted to the column's type in
            the data (naming rows and values); a level of a group factor, a category or a
            period that the data did not have.
        """
        where = f"the formula of {self.parameter!r} ({self.formula!r})"
        rows = _conform(rows, self.dtypes, where)
        for term in self.groups:
            if term.factor not in rows:  # an interaction a:b has no single column
                continue
            values = rows[term.factor].astype(str)
            bad = ~values.isin(term.levels).to_numpy()
            if bad.any():
                shown = [(i, v) for i, v in zip(rows.index[bad][:10], values[bad][:10],
                                                strict=True)]
                raise ValueError(f"{where}: the group term ({term.name}) has no level for rows "
                                 f"(index, value) {shown}; its levels: {list(term.levels)}")
        frame = _standardised(rows, self.scaling)
        dm = self._matrices
        try:
            X = np.zeros((len(rows), 0))
            if dm.common is not None:
                full = _dense(dm.common.evaluate_new_data(frame))
                X = full[:, 1:] if self.intercept else full
            Zs = []
            if dm.group is not None:
                Z = dm.group.evaluate_new_data(frame)
                Z = _dense(Z)
                Zs = [Z[:, dm.group.slices[term.name]] for term in self.groups]
        except (ValueError, KeyError) as err:
            raise ValueError(f"the design of {self.parameter!r} ({self.formula!r}) cannot be "
                             f"evaluated on these rows: {str(err).strip(chr(39))}") from None
        walk_index = []
        for walk in self.walks:
            values = list(rows[walk.period])
            bad = [v for v in values if v not in walk.levels]
            if bad:
                raise ValueError(f"rw({walk.period}) of {self.parameter!r} has no value for the "
                                 f"periods {sorted(set(map(str, bad)))}; periods: "
                                 f"{[str(v) for v in walk.levels]}")
            walk_index.append(np.array([walk.levels.index(v) for v in values], np.int64))
        return X, Zs, walk_index


def _conform(rows: pd.DataFrame, dtypes: dict, where: str) -> pd.DataFrame:
    """``rows`` with the columns of ``dtypes`` converted to those types, or a ValueError.

    A number given as text ("1" for a numeric column) is converted, and so is a number given
    for a text column (1 for the level "1"); a missing value is an error, never a NaN
    prediction.
    """
    missing = [c for c in dtypes if c not in rows]
    if missing:
        raise ValueError(f"{where} uses the columns {missing}, which the rows do not have; "
                         f"they have {list(rows.columns)}")
    out = rows.copy()
    for col, dtype in dtypes.items():
        values = out[col]
        na = values.isna().to_numpy()
        if na.any():
            where_na = list(rows.index[na][:10])
            raise ValueError(f"{where}: column {col!r} has missing values in {int(na.sum())} "
                             f"rows (index {where_na}); a prediction needs every covariate")
        if pd.api.types.is_bool_dtype(dtype):
            ok = values.isin([True, False]).to_numpy()
            conv = values.astype(bool) if ok.all() else values
        elif pd.api.types.is_numeric_dtype(dtype):
            conv = pd.to_numeric(values, errors="coerce")
            ok = conv.notna().to_numpy()
            if ok.all() and pd.api.types.is_integer_dtype(dtype) and (conv % 1 == 0).all():
                conv = conv.astype(dtype)  # 1.0 or "1" for an integer column is the level 1
        elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) \
                or pd.api.types.is_string_dtype(dtype):
            cats = dtype.categories if isinstance(dtype, pd.CategoricalDtype) else None
            if cats is not None and values.isin(cats).all():
                conv, ok = values, np.ones(len(values), bool)
            else:  # compare as text: 1 and "1" are one level
                text = values.astype(str)
                conv = text if cats is None else text.map(
                    {str(c): c for c in cats}).fillna(text)
                ok = np.ones(len(values), bool)
        else:
            conv, ok = values, np.ones(len(values), bool)
        if not ok.all():
            bad = [(i, v) for i, v in zip(rows.index[~ok][:10], values[~ok][:10], strict=True)]
            raise ValueError(f"{where}: column {col!r} is {dtype} in the data, but rows "
                             f"(index, value) {bad} are not")
        out[col] = conv
    return out


def _dense(matrix) -> np.ndarray:
    """A formulae matrix (dense, sparse or a matrix object) as a float ndarray."""
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(np.asarray(matrix), dtype=float)


def _standardised(cells: pd.DataFrame, scaling: dict) -> pd.DataFrame:
    out = cells.copy()
    for col, (mean, sd) in scaling.items():
        if col in out:
            out[col] = (out[col].astype(float) - mean) / sd
    return out


def _ordered_levels(values: pd.Series, period: str, parameter: str) -> tuple:
    if isinstance(values.dtype, pd.CategoricalDtype):
        if not values.cat.ordered:
            raise ValueError(f"rw({period}) of {parameter!r}: column {period!r} is an unordered "
                             "categorical; a random walk needs ordered periods (numbers, dates, "
                             "or an ordered categorical)")
        return tuple(c for c in values.cat.categories if c in set(values))
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
            or all(isinstance(v, pd.Period) for v in values)):
        raise ValueError(f"rw({period}) of {parameter!r}: column {period!r} holds "
                         f"{values.dtype} values, which have no order to walk along; use "
                         "numbers, dates, periods or an ordered categorical")
    return tuple(sorted(pd.unique(values)))


def build_design(parameter: str, formula: str, cells: pd.DataFrame,
                 weights: np.ndarray) -> Design:
    """The design of ``parameter`` given by ``formula`` over the cells.

    Parameters
    ----------
    parameter : str
        A key of :data:`PARAMETERS`.
    formula : str
    cells : DataFrame of shape (n_cells, n_columns)
        The cell table.
    weights : ndarray of shape (n_cells,)
        Units per cell (for standardising numeric covariates).

    Returns
    -------
    Design

    Raises
    ------
    ValueError
        A term that uses a column the cell table does not have (naming the term and the
        column); a group factor with a single level; a random walk over an unordered or
        unsortable column, or over fewer than 2 periods; an unparseable formula.
    """
    from formulae import design_matrices

    fixed_formula, periods = parse_formula(formula)
    where = f"the formula of {parameter!r} ({formula!r})"
    used = sorted(formula_columns(fixed_formula)) + [p for p in periods]
    missing = [c for c in dict.fromkeys(used) if c not in cells]
    if missing:
        raise ValueError(f"{where} uses the columns {missing}, which are not columns of the "
                         f"data; columns: {list(cells.columns)} (add covariates with "
                         "prepare(..., covariates=[...]))")
    # numeric covariates are standardised, except where the formula uses them as categories:
    # grouping factors of group terms and C(x), whose levels must keep their own values
    as_levels = {name for grp in _GROUP_FACTOR.findall(fixed_formula) for name in
                 re.split(r"\s*:\s*", grp.strip())} | set(_C_CALL.findall(fixed_formula))
    numeric = [c for c in cells.columns if pd.api.types.is_numeric_dtype(cells[c])
               and not pd.api.types.is_bool_dtype(cells[c]) and c not in as_levels]
    scaling = {}
    w = np.asarray(weights, dtype=float)
    for col in numeric:
        x = cells[col].astype(float).to_numpy()
        mean = float(np.average(x, weights=w))
        sd = float(np.sqrt(np.average((x - mean) ** 2, weights=w)))
        scaling[col] = (mean, sd if sd > 0 else 1.0)
    frame = _standardised(cells, scaling)
    try:
        dm = design_matrices(fixed_formula, frame, na_action="error")
    except KeyError as err:
        col = str(err).strip("'\"")
        raise ValueError(f"{where} uses column {col!r}, which is not a column of the data; "
                         f"columns: {list(cells.columns)} (add covariates with "
                         "prepare(..., covariates=[...]))") from None
    except ValueError as err:
        raise ValueError(f"{where} cannot be built on the data: {err}") from None
    common = _dense(dm.common) if dm.common is not None else \
        np.zeros((len(cells), 0))
    names = list(dm.common.terms) if dm.common is not None else []
    intercept = "Intercept" in names
    columns = []
    if dm.common is not None:
        for name, sl in dm.common.slices.items():
            if name == "Intercept":
                continue
            labels = dm.common.terms[name].labels if hasattr(dm.common.terms[name], "labels") \
                else None
            n = sl.stop - sl.start
            columns += list(labels) if labels is not None and len(labels) == n else \
                ([name] if n == 1 else [f"{name}[{i}]" for i in range(n)])
    X = common[:, 1:] if intercept else common
    groups = []
    if dm.group is not None:
        for name, term in dm.group.terms.items():
            factor = name.split("|", 1)[1]
            levels = tuple(str(g) for g in term.groups)
            if len(levels) < 2:
                raise ValueError(f"{where}: the group term ({name}) has one level "
                                 f"({levels[0]!r} of column {factor!r}); a between-group sd "
                                 "needs at least 2 levels (use a fixed effect, or drop it)")
            Z = _dense(dm.group[name])
            groups.append(GroupTerm(name=name, factor=factor, levels=levels, Z=Z,
                                    intercept=name.startswith("1|")))
    walks = []
    for period in periods:
        levels = _ordered_levels(cells[period], period, parameter)
        if len(levels) < 2:
            raise ValueError(f"{where}: rw({period}) needs at least 2 periods; column "
                             f"{period!r} has {len(levels)}")
        index = np.array([levels.index(v) for v in cells[period]], dtype=np.int64)
        walks.append(WalkTerm(period=period, levels=levels, index=index))
    return Design(parameter=parameter, formula=formula, intercept=intercept,
                  fixed=tuple(columns), X=X, groups=tuple(groups), walks=tuple(walks),
                  scaling=scaling, dtypes={c: cells[c].dtype for c in dict.fromkeys(used)},
                  _matrices=dm)
