"""The on-disk format of fitted results: write a result's parts to a Zarr store, read them back.

:meth:`bayesconv.ConversionResult.save` and :func:`bayesconv.load` use :func:`save_result` and
:func:`read_result`; this module knows the format, not the result class.

File format
-----------
A result is stored as a **Zarr (format 3) directory store**, written with
``xarray.DataTree.to_zarr`` and read with ``xarray.open_datatree(engine="zarr")``: a directory
that ArviZ and xarray can open on their own. Zarr is used rather than netCDF because it needs no
HDF5 library (``zarr`` is a pure-Python dependency, already pulled in by nutpie) and stores the
``DataTree`` groups one to one.

The store holds

* every group of ``result.idata`` (``posterior``, ``sample_stats``, ``observed_data``,
  ``constant_data`` and any group you added), unchanged, except ``log_likelihood``: it is a
  function of the posterior and the data (draws × rows, most of the bytes: 178 MB of the NYC
  demo's 190 MB), so it is recomputed when the loaded result's ``idata`` is first read;
* with ``include_data=True``, a group ``bayesconv_data`` with the arrays of
  :class:`~bayesconv.data.ConversionData` (``cell``, ``duration``, ``lower``, ``converted``,
  ``count`` on dimension ``row``) and its ``followup`` table (``followup_cell``,
  ``followup_age``, ``followup_count`` on dimension ``followup_row``);
* two root attributes besides those of ``result.idata``: ``bayesconv_format`` (an integer, the
  version of this layout, now 2) and ``bayesconv_result``, a JSON text with the model spec
  (:meth:`~bayesconv.model.ModelSpec.to_dict`), the data's cell table (each column with its
  labels), time unit, observation date, cohort name and meta, the sampler, the kind of
  posterior (draws or a point) and its timing, the package versions that wrote the file, and a
  SHA-256 digest of every stored variable.

Format 1 (before the cell table; ``cohort`` codes and ``cohorts`` labels) is still read.

Values whose Python type JSON cannot keep (cohort labels that are ints, timestamps or periods,
an observation date, tuples) are written as ``{"__type__": ..., ...}`` objects and come back with
their type: Rossi's cohorts stay the ints 0 and 1.

On loading, the digests are checked, so a missing or corrupted chunk file (which Zarr would
otherwise read as fill values without complaint) is reported as a damaged store.

``include_data=False`` leaves out every group that holds unit-level data: ``observed_data``,
``constant_data``, ``log_likelihood`` (one value per aggregated data row, so it is data too),
``posterior_predictive``, ``predictions``, ``predictions_constant_data`` and any other group with
a ``row`` dimension. The loaded result then answers everything that needs only the posterior
(``eventual_rate()``, ``curves()``, ``conversion_probability()``, ``diagnostics()``,
:func:`bayesconv.compare`); ``result.data`` is a :class:`DataNotSaved` that raises
:class:`DataNotSavedError` when summaries, nowcasts, Kaplan–Meier plots or posterior predictive
checks reach for the data.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..data.container import ConversionData
from ..errors import DataNotSavedError, DataWarning
from ..model.spec import ModelSpec

__all__ = ["FORMAT_VERSION", "DataNotSaved", "DataNotSavedError", "read_result", "save_result"]

#: Version of the on-disk layout written by :func:`save_result` (root attribute
#: ``bayesconv_format``). :func:`read_result` reads versions 1 and 2 and refuses newer ones.
FORMAT_VERSION = 2

_FORMAT_ATTR = "bayesconv_format"
_META_ATTR = "bayesconv_result"
_DATA_GROUP = "bayesconv_data"
_TAG = "__type__"

#: idata groups holding unit-level data, left out by ``include_data=False`` (besides any group
#: with a ``row`` dimension).
_DATA_GROUPS = ("observed_data", "constant_data", "log_likelihood", "posterior_predictive",
                "predictions", "predictions_constant_data")

#: Variable attributes that xarray's CF decoding acts on when reading; variables carrying any of
#: them have their attributes kept in the JSON metadata instead, so they come back unchanged.
_CF_ATTRS = frozenset({"_FillValue", "missing_value", "scale_factor", "add_offset", "calendar",
                       "coordinates", "bounds", "_Unsigned", "dtype", "grid_mapping",
                       "compress", "formula_terms", "cell_methods"})
_CF_TIME_UNITS = frozenset({"days", "hours", "minutes", "seconds", "milliseconds",
                            "microseconds", "nanoseconds"})


class _NotSaved:
    """Descriptor of a :class:`DataNotSaved` attribute that raises :class:`DataNotSavedError`."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        raise DataNotSavedError(obj._message(self.name))


class DataNotSaved:
    """Stand-in for :class:`~bayesconv.data.ConversionData` in a result saved without data.

    A result saved with ``save_result(..., include_data=False)`` and loaded with :func:`load`
    has this as ``result.data``. It knows the cohorts and the time unit, which is all that the
    posterior-only methods need; every attribute holding unit-level data raises
    :class:`DataNotSavedError`.

    Attributes
    ----------
    cohorts : tuple of labels
        Cohort labels in code order, with their original types.
    time_unit : str
    observed_until : object
        The observation date (or number, or (earliest, latest) pair, or None).
    cohort_name : str or None
    meta : dict
    path : str
        The store the result was loaded from.
    saved : bool
        Always False (a :class:`~bayesconv.data.ConversionData` has no such attribute).
    """

    saved = False

    cohort = _NotSaved()
    cell = _NotSaved()
    cells = _NotSaved()
    cell_cohort = _NotSaved()
    n_cells = _NotSaved()
    duration = _NotSaved()
    lower = _NotSaved()
    converted = _NotSaved()
    count = _NotSaved()
    followup = _NotSaved()
    unit_followup = _NotSaved()
    longest_followup = _NotSaved()
    n_rows = _NotSaved()
    n_units = _NotSaved()
    interval_censored = _NotSaved()
    to_frame = _NotSaved()
    cohort_table = _NotSaved()

    def __init__(self, *, cohorts, time_unit, observed_until=None, cohort_name=None,
                 meta=None, path=""):
        self.cohorts = tuple(cohorts)
        self.time_unit = time_unit
        self.observed_until = observed_until
        self.cohort_name = cohort_name
        self.meta = dict(meta or {})
        self.path = str(path)

    @property
    def n_cohorts(self) -> int:
        """Number of cohorts."""
        return len(self.cohorts)

    def _message(self, name: str) -> str:
        return (f"the unit-level data were not saved: this result was loaded from {self.path}, "
                f"written with include_data=False, so data.{name} is not available. "
                "summary(), identification(), nowcast(), plot() (Kaplan–Meier steps and "
                "default time range), posterior_predictive_km(), plot_ppc_km(), "
                "pointwise_loglik() and kaplan_meier() need the data; eventual_rate(), curves(), "
                "conversion_probability(), diagnostics() and bayesconv.compare() work without "
                "them. Save with include_data=True to keep them")

    def __repr__(self) -> str:
        return (f"DataNotSaved({self.n_cohorts} cohorts, time unit {self.time_unit!r}; "
                f"unit-level data not saved in {self.path})")


# ---------------------------------------------------------------------------- tagged JSON
def _encode(value, where: str):
    """``value`` as JSON-ready data; types JSON would change are tagged with ``__type__``.

    Raises
    ------
    TypeError
        For a type this format cannot store (``where`` names the value in the message).
    """
    if value is None or (isinstance(value, bool | str) and not isinstance(value, np.generic)):
        return value
    if isinstance(value, np.datetime64 | np.timedelta64):
        return {_TAG: "numpy", "dtype": value.dtype.str, "int": int(value.view("i8"))}
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biufU":
            raise TypeError(f"cannot store {where}: numpy {value.dtype} scalar {value!r}")
        return {_TAG: "numpy", "dtype": value.dtype.str, "value": value.item()}
    if isinstance(value, int | float):
        return value
    if value is pd.NaT:
        return {_TAG: "NaT"}
    if isinstance(value, pd.Timestamp):
        return {_TAG: "Timestamp", "value": value.isoformat(),
                "tz": None if value.tz is None else str(value.tz), "unit": value.unit}
    if isinstance(value, pd.Timedelta):
        return {_TAG: "Timedelta", "ns": int(value.value), "unit": value.unit}
    if isinstance(value, pd.Period):
        return {_TAG: "Period", "value": str(value), "freq": value.freqstr}
    if isinstance(value, _dt.datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, _dt.date):
        return {_TAG: "date", "value": value.isoformat()}
    if isinstance(value, _dt.timedelta):
        return {_TAG: "timedelta", "days": value.days, "seconds": value.seconds,
                "microseconds": value.microseconds}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAG not in value:
            return {k: _encode(v, where) for k, v in value.items()}
        return {_TAG: "dict", "items": [[_encode(k, where), _encode(v, where)]
                                         for k, v in value.items()]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":
        return {_TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "items": value.ravel().tolist()}
    raise TypeError(f"cannot store {where}: values of type {type(value).__name__} "
                    f"({value!r}) have no JSON form in the bayesconv file format")


def _decode(obj):
    """Invert :func:`_encode`."""
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    tag = obj.get(_TAG)
    if tag is None:
        return {k: _decode(v) for k, v in obj.items()}
    if tag == "numpy":
        dtype = np.dtype(obj["dtype"])
        if "int" in obj:
            return np.array(obj["int"], dtype="i8").view(dtype)[()]
        return np.array(obj["value"], dtype=dtype)[()]
    if tag == "NaT":
        return pd.NaT
    if tag == "Timestamp":
        ts = pd.Timestamp(obj["value"])
        if obj.get("tz") is not None:
            try:
                ts = ts.tz_convert(obj["tz"])
            except (ValueError, TypeError, KeyError):  # e.g. a fixed offset: keep it
                pass
        return ts.as_unit(obj["unit"]) if obj.get("unit") else ts
    if tag == "Timedelta":
        td = pd.Timedelta(obj["ns"], unit="ns")
        return td.as_unit(obj["unit"]) if obj.get("unit") else td
    if tag == "Period":
        return pd.Period(obj["value"], freq=obj["freq"])
    if tag == "datetime":
        return _dt.datetime.fromisoformat(obj["value"])
    if tag == "date":
        return _dt.date.fromisoformat(obj["value"])
    if tag == "timedelta":
        return _dt.timedelta(days=obj["days"], seconds=obj["seconds"],
                             microseconds=obj["microseconds"])
    if tag == "tuple":
        return tuple(_decode(v) for v in obj["items"])
    if tag == "dict":
        return {_decode(k): _decode(v) for k, v in obj["items"]}
    if tag == "ndarray":
        return np.array(obj["items"], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
    raise ValueError(f"unknown tagged value type {tag!r}")


def _encode_labels(labels) -> list:
    """Cohort labels with their types; a label type JSON cannot hold is stored as its str."""
    out = []
    for label in labels:
        try:
            out.append(_encode(label, "a cohort label"))
        except TypeError:
            warnings.warn(f"cohort label {label!r} of type {type(label).__name__} is saved as "
                          f"the string {str(label)!r} and loads as that string", DataWarning,
                          stacklevel=3)
            out.append(str(label))
    return out


# ---------------------------------------------------------------------------- helpers
def _versions() -> dict:
    out = {}
    for pkg in ("bayesconv", "pymc", "arviz", "xarray", "zarr", "numpy", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    out["python"] = platform.python_version()
    return out


def _key(node_path: str, name) -> str:
    return f"{node_path.rstrip('/')}/{name}"


def _text(x) -> str:
    return x if isinstance(x, str) else str(x)


def _digest(var: xr.Variable, key: str = "a variable") -> str:
    """SHA-256 of a variable's dims, shape, dtype and values (``key`` names it in errors)."""
    values = np.asarray(var.values)
    text_kind = values.dtype.kind in "OSUT"
    if not text_kind:
        values = np.ascontiguousarray(values)
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("<"))
    h = hashlib.sha256()
    h.update(json.dumps([[str(d) for d in var.dims], list(values.shape),
                         "text" if text_kind else values.dtype.str]).encode())
    if values.dtype.kind == "O":
        for x in values.ravel():
            h.update(json.dumps(_encode(x, f"an element of {key}")).encode())
            h.update(b"\x00")
    elif text_kind:
        for x in values.ravel():
            h.update(_text(x).encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
    else:
        if values.dtype.kind in "fc" and np.isnan(values).any():  # one NaN bit pattern
            values = np.where(np.isnan(values), np.nan, values).astype(values.dtype)
        h.update(values.reshape(-1).view(np.uint8).tobytes())
    return h.hexdigest()


def _cf_sensitive(attrs: dict) -> bool:
    if set(attrs) & _CF_ATTRS:
        return True
    units = attrs.get("units")
    return isinstance(units, str) and (" since " in units or units.strip() in _CF_TIME_UNITS)


def _has_row_dim(node) -> bool:
    return "row" in node.to_dataset(inherit=False).dims


def _map_variables(ds: xr.Dataset, node_path: str, func, layout: dict | None = None
                   ) -> xr.Dataset:
    """A copy of ``ds`` with ``func(key, variable)`` applied to every variable.

    ``layout`` ({"coords": [...], "data_vars": [...]}) puts the variables in that order.
    """
    names = {"coords": list(ds.coords), "data_vars": list(ds.data_vars)}
    if layout is not None:
        for kind in names:
            saved = [n for n in layout.get(kind, []) if n in names[kind]]
            names[kind] = saved + [n for n in names[kind] if n not in saved]
    coords, data_vars = ({name: func(_key(node_path, name), ds.variables[name])
                          for name in names[kind]} for kind in ("coords", "data_vars"))
    return xr.Dataset(data_vars, coords=coords, attrs=dict(ds.attrs))


def _is_bayesconv_store(path: Path) -> bool:
    try:
        meta = json.loads((path / "zarr.json").read_text())
        return _FORMAT_ATTR in meta.get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return False


# ---------------------------------------------------------------------------- save
def save_result(result, path, *, include_data: bool = True, overwrite: bool = False) -> Path:
    """Write a fitted result to a Zarr directory store that :func:`load` reads back.

    Parameters
    ----------
    result : ConversionResult
    path : str or os.PathLike
        Directory to create (conventionally ending in ``.zarr``). Its parent must exist.
    include_data : bool, default True
        Also store the unit-level data (the :class:`~bayesconv.data.ConversionData` arrays and
        follow-up table, and the idata groups ``observed_data``, ``constant_data`` and
        ``log_likelihood``), so the loaded result gives everything the fitted one did. False
        stores only the posterior, ``sample_stats`` and the cohort labels: the loaded result
        gives ``eventual_rate()``, ``curves()``, ``conversion_probability()``,
        ``diagnostics()`` and :func:`bayesconv.compare`, while methods that need the data
        raise :class:`DataNotSavedError`.
    overwrite : bool, default False
        Replace an existing bayesconv result at ``path``. Anything else at ``path`` (a file, a
        directory that is not a bayesconv result) is never replaced.

    Returns
    -------
    pathlib.Path
        The store written.

    Raises
    ------
    TypeError
        ``result`` is not a ConversionResult, or holds a value the format cannot store.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        The parent directory of ``path`` does not exist.
    ValueError
        ``overwrite=True`` but ``path`` is not a bayesconv result; ``include_data=True`` for a
        result that was itself loaded without its data; no ``posterior`` group.

    Notes
    -----
    The store is written to a temporary directory next to ``path`` and renamed into place, so
    an interrupted save never leaves a half-written result under ``path``.
    """
    if not all(hasattr(result, a) for a in ("tree", "data", "spec", "sampler", "timing")):
        raise TypeError(f"save_result needs a ConversionResult, got {type(result).__name__}")
    path = Path(os.fspath(path))
    data = result.data
    if include_data and isinstance(data, DataNotSaved):
        raise ValueError("this result has no unit-level data (it was loaded from "
                         f"{data.path}, saved with include_data=False); save it with "
                         "include_data=False")
    if "posterior" not in result.tree.children:
        raise ValueError("result.idata has no posterior group: nothing to save")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace a "
                                  "saved bayesconv result")
        if not (path.is_dir() and _is_bayesconv_store(path)):
            raise ValueError(f"{path} exists and is not a bayesconv result; refusing to "
                             "overwrite it (remove it yourself or choose another path)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: the directory {parent} does not exist")

    tree, _ = _build_tree(result, include_data=include_data)
    # write next to ``path`` (same file system), then rename into place
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        store = staging / "new"
        tree.to_zarr(store, mode="w-", consolidated=False, zarr_format=3)
        if path.exists():
            os.replace(path, staging / "old")
            try:
                os.replace(store, path)
            except BaseException:
                os.replace(staging / "old", path)
                raise
        else:
            os.replace(store, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _build_tree(result, *, include_data: bool):
    """The DataTree to write and the JSON metadata stored in its root attributes."""
    nodes: dict[str, xr.Dataset] = {}
    object_vars: list[str] = []
    var_attrs: dict[str, dict] = {}
    checksums: dict[str, str] = {}
    dropped: list[str] = []
    layout: dict[str, dict] = {}
    for node in result.tree.subtree:
        if node.name == "log_likelihood":
            continue  # a function of posterior and data, recomputed on access (result.idata)
        if node.path != "/" and not include_data and (
                node.name in _DATA_GROUPS or _has_row_dim(node)
                or any(node.path.startswith(f"{d}/") for d in dropped)):
            dropped.append(node.path)
            continue
        if node.path != "/" and node.name == _DATA_GROUP:
            raise ValueError(f"result.idata has a group named {_DATA_GROUP!r}, a name the "
                             "bayesconv file format reserves")
        ds = node.to_dataset(inherit=False).drop_encoding()
        attrs = {k: v for k, v in ds.attrs.items()
                 if node.path != "/" or k not in (_FORMAT_ATTR, _META_ATTR)}

        def prepare(key, var):
            checksums[key] = _digest(var, key)
            if _cf_sensitive(var.attrs):
                var_attrs[key] = _encode(dict(var.attrs), f"the attributes of {key}")
                var = xr.Variable(var.dims, var.data, {})
            if var.dtype.kind == "O":
                object_vars.append(key)
                text = [json.dumps(_encode(x, f"an element of {key}"))
                        for x in np.asarray(var.values).ravel()]
                var = xr.Variable(var.dims, np.array(text, dtype=object).reshape(var.shape),
                                  var.attrs)
            return var

        layout[node.path] = {"coords": [str(n) for n in ds.coords],
                             "data_vars": [str(n) for n in ds.data_vars]}
        ds = _map_variables(ds, node.path, prepare)
        ds.attrs = attrs
        nodes[node.path] = ds

    data = result.data
    data_fields: dict = {"values": {}, "arrays": [], "frames": {}}
    data_vars: dict = {}
    for name in ("time_unit", "observed_until", "cohort_name", "meta"):
        data_fields["values"][name] = _encode(getattr(data, name), f"data.{name}")
    if isinstance(data, ConversionData):
        data_fields["cells"] = _encode_cells(data.cells)
        if include_data:
            for name in ("cell", "duration", "lower", "converted", "count"):
                data_fields["arrays"].append(name)
                data_vars[name] = ("row", np.asarray(getattr(data, name)))
            if data.followup is not None:
                cols = [str(c) for c in data.followup.columns]
                data_fields["frames"]["followup"] = {"dim": "followup_row", "columns": cols}
                for c in cols:
                    data_vars[f"followup_{c}"] = ("followup_row", data.followup[c].to_numpy())
    else:  # DataNotSaved
        data_fields["values"]["cohorts"] = _encode_labels(data.cohorts)
    if data_vars:
        ds = xr.Dataset(data_vars)
        for name, var in ds.variables.items():
            key = _key("/" + _DATA_GROUP, name)
            checksums[key] = _digest(var, key)
        nodes["/" + _DATA_GROUP] = ds

    spec = _encode(result.spec.to_dict(), "the model spec")
    meta = {
        "format": FORMAT_VERSION,
        "include_data": bool(include_data),
        "spec": spec,
        "data": data_fields,
        "sampler": _encode(result.sampler, "sampler"),
        "kind": _encode(result.kind, "kind"),
        "timing": _encode(dict(result.timing), "timing"),
        "written_by": _versions(),
        "written_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "groups": layout,
        "groups_left_out": dropped,
        "object_vars": object_vars,
        "var_attrs": var_attrs,
        "checksums": checksums,
    }
    nodes["/"].attrs[_FORMAT_ATTR] = FORMAT_VERSION
    nodes["/"].attrs[_META_ATTR] = json.dumps(meta, ensure_ascii=False)
    return xr.DataTree.from_dict(nodes), meta


# ---------------------------------------------------------------------------- load
def _damaged(path: Path, what: str) -> ValueError:
    return ValueError(f"{path} is a damaged bayesconv result: {what}")


def _unreadable_metadata(path: Path) -> list[str]:
    """Zarr metadata files under ``path`` that are not valid JSON (relative paths)."""
    bad = []
    for file in sorted(path.rglob("zarr.json")):
        try:
            json.loads(file.read_text())
        except (OSError, ValueError):
            bad.append(str(file.relative_to(path)))
    return bad


def _read_meta(path: Path) -> dict:
    """Check that ``path`` is a bayesconv store this code can read; return its metadata."""
    import zarr

    if not (path.exists() or path.is_symlink()):
        raise FileNotFoundError(f"no bayesconv result at {path}: the path does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is not a bayesconv result: it is a file, and results are "
                         "saved as Zarr directory stores (bayesconv.save_result)")
    if not ((path / "zarr.json").exists() or (path / ".zgroup").exists()):
        raise ValueError(f"{path} is not a bayesconv result: it is not a Zarr store (no "
                         "zarr.json metadata)")
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except MemoryError:
        raise
    except Exception as err:
        raise _damaged(path, f"its root metadata cannot be read ({type(err).__name__}: "
                             f"{err})") from err
    if _FORMAT_ATTR not in attrs:
        raise ValueError(f"{path} is not a bayesconv result: its root has no "
                         f"{_FORMAT_ATTR!r} attribute (it was not written by "
                         "bayesconv.save_result)")
    fmt = attrs[_FORMAT_ATTR]
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise _damaged(path, f"{_FORMAT_ATTR} is {fmt!r}, not a format version")
    if fmt > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer bayesconv (format {fmt}); this is "
                         f"format {FORMAT_VERSION}: upgrade bayesconv")
    try:
        meta = json.loads(attrs[_META_ATTR])
    except (KeyError, TypeError, ValueError) as err:
        raise _damaged(path, f"the {_META_ATTR!r} metadata is missing or unreadable "
                             f"({type(err).__name__}: {err})") from err
    lacking = [k for k in ("spec", "data", "checksums", "sampler", "timing")
               if not isinstance(meta, dict) or k not in meta]
    if lacking:
        raise _damaged(path, f"the {_META_ATTR!r} metadata lacks {', '.join(lacking)}")
    return meta


def read_result(path) -> dict:
    """Read the parts of a result written by :func:`save_result` (see :func:`bayesconv.load`).

    Parameters
    ----------
    path : str or os.PathLike
        The Zarr directory store.

    Returns
    -------
    dict
        ``tree`` (the saved groups, every group and attribute as saved), ``data`` (the
        ConversionData, or a :class:`DataNotSaved` for a store saved with
        ``include_data=False``), ``spec``, ``sampler``, ``kind`` and ``timing``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a bayesconv result (a file, a directory that is not a Zarr store, a
        Zarr store without the bayesconv attributes); it was written by a newer bayesconv
        (a higher format version); it is damaged (unreadable metadata, a missing group or
        variable, a missing or corrupted chunk file: every variable's SHA-256 digest is
        checked); or its lag family is not known to this bayesconv.
    """
    path = Path(os.fspath(path))
    meta = _read_meta(path)
    try:
        opened = xr.open_datatree(path, engine="zarr", consolidated=False)
        try:
            opened.load()
            nodes = {node.path: node.to_dataset(inherit=False) for node in opened.subtree}
        finally:
            opened.close()
    except MemoryError:
        raise
    except Exception as err:
        broken = _unreadable_metadata(path)
        where = f"; unreadable metadata: {', '.join(broken)}" if broken else ""
        raise _damaged(path, f"reading it failed ({type(err).__name__}: {err}{where})"
                       ) from err

    object_vars = set(meta.get("object_vars", []))
    var_attrs = meta.get("var_attrs", {})

    def restore(key, var):
        if key in object_vars:
            try:
                flat = [_decode(json.loads(s)) for s in np.asarray(var.values).ravel()]
            except (TypeError, ValueError) as err:
                raise _damaged(path, f"{key} holds unreadable values ({err})") from err
            values = np.empty(len(flat), dtype=object)
            values[:] = flat
            var = xr.Variable(var.dims, values.reshape(var.shape), var.attrs)
        if key in var_attrs:
            var = xr.Variable(var.dims, var.data, _decode(var_attrs[key]))
        return var

    layout = meta.get("groups", {})
    missing = [g for g in layout if g not in nodes]
    if missing:
        raise _damaged(path, f"the group {missing[0]} is missing")
    ordered = [*layout, *(g for g in nodes if g not in layout)]
    for node_path in ordered:
        ds = _map_variables(nodes.pop(node_path).drop_encoding(), node_path, restore,
                            layout.get(node_path))
        if node_path == "/":
            ds.attrs = {k: v for k, v in ds.attrs.items() if k not in (_FORMAT_ATTR, _META_ATTR)}
        nodes[node_path] = ds

    for key, expected in meta["checksums"].items():
        node_path, _, name = key.rpartition("/")
        ds = nodes.get(node_path or "/")
        if ds is None:
            raise _damaged(path, f"the group {node_path or '/'} is missing")
        if name not in ds.variables:
            raise _damaged(path, f"the variable {key} is missing")
        if _digest(ds.variables[name], key) != expected:
            raise _damaged(path, f"the values of {key} do not match their checksum (a chunk "
                                 "file is missing or corrupted)")

    stored = nodes.pop("/" + _DATA_GROUP, None)
    sampler = _decode(meta["sampler"])
    return {"tree": xr.DataTree.from_dict(nodes), "spec": _rebuild_spec(path, meta["spec"]),
            "data": _rebuild_data(path, meta, stored), "sampler": sampler,
            "kind": _decode(meta.get("kind")) or ("point" if sampler == "map" else "draws"),
            "timing": _decode(meta["timing"])}


def _rebuild_spec(path: Path, saved: dict) -> ModelSpec:
    values = _decode(saved)
    if "lag" not in values:  # format 1 stored the fields one by one, tagged
        values = {k: _decode(v) for k, v in saved.items()}
    try:
        return ModelSpec.from_dict(values)
    except KeyError as err:
        raise _damaged(path, f"the model spec has no {err.args[0]!r}") from err


def _encode_cells(cells: pd.DataFrame) -> dict:
    """The cell table as JSON: per column its categories (labels with their types) and codes,
    or its plain values."""
    out = {}
    for col in cells.columns:
        values = cells[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            out[str(col)] = {"categories": _encode_labels(values.cat.categories),
                             "codes": values.cat.codes.astype(int).tolist()}
        else:
            out[str(col)] = {"values": [_encode(v, f"cell column {col!r}")
                                        for v in values.tolist()]}
    return out


def _decode_cells(encoded: dict) -> pd.DataFrame:
    cols = {}
    for col, enc in encoded.items():
        if "categories" in enc:
            cats = [_decode(v) for v in enc["categories"]]
            cols[col] = pd.Categorical.from_codes(enc["codes"], categories=cats)
        else:
            cols[col] = [_decode(v) for v in enc["values"]]
    return pd.DataFrame(cols)


def _rebuild_data(path: Path, meta: dict, stored: xr.Dataset | None):
    fields = meta["data"]
    values = {k: _decode(v) for k, v in fields["values"].items()}
    fmt = meta.get("format", 1)
    name = values.get("cohort_name")
    if fmt >= 2 and "cells" in fields:
        cells = _decode_cells(fields["cells"])
    elif "cohorts" in values:  # format 1, or a store saved without data
        labels = list(values["cohorts"])
        cells = pd.DataFrame({name or "cohort": pd.Categorical(labels, categories=labels)})
    else:
        raise _damaged(path, "it has no cell table or cohort labels")
    if not meta.get("include_data", False):
        cohorts = tuple(cells[name or "cohort"].cat.categories)
        return DataNotSaved(cohorts=cohorts, time_unit=values.get("time_unit", "D"),
                            observed_until=values.get("observed_until"), cohort_name=name,
                            meta=values.get("meta"), path=path)
    if stored is None and (fields["arrays"] or fields["frames"]):
        raise _damaged(path, f"the group /{_DATA_GROUP} is missing")
    arrays = {k: np.array(stored[k].values) for k in fields["arrays"]}
    if "cohort" in arrays:  # format 1: one cell per cohort
        arrays["cell"] = arrays.pop("cohort")
    followup = None
    if "followup" in fields["frames"]:
        followup = pd.DataFrame({c: np.array(stored[f"followup_{c}"].values)
                                 for c in fields["frames"]["followup"]["columns"]})
        followup = followup.rename(columns={"cohort": "cell"})
    try:
        return ConversionData(cells=cells, followup=followup, time_unit=values["time_unit"],
                              observed_until=values.get("observed_until"), cohort_name=name,
                              meta=values.get("meta"),
                              **{k: arrays[k] for k in ("cell", "duration", "lower",
                                                        "converted", "count")})
    except (TypeError, ValueError, KeyError) as err:
        raise _damaged(path, f"its data cannot be rebuilt ({err})") from err
