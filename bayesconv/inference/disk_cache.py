"""The persistent compile cache: compiled models kept on disk between processes.

A fresh process (a scheduled ``bayesconv report``, a notebook kernel started this morning, a
worker in a pool) would otherwise spend most of a small readout compiling. The cache is the
ecosystem's own: nutpie compiles the log density into two ``numba.cfunc`` wrappers with
``cache=True`` (:func:`nutpie.compile_pymc_model`), and numba keeps their machine code in its
on-disk cache (an index per function, keyed by the function's bytecode and a hash of a pickle
of its closure, plus one data file per entry; both written to a temporary file and renamed,
so two processes compiling at once both end up with a valid entry, the last one written
winning). This module only makes that key the same in every process for the same model
structure, and puts the files in the user's cache directory.

Why the key differed between processes, and what is done about each, only while bayesconv
compiles (:func:`persistent_compilation`):

* numba names every dispatcher and intrinsic by a random UUID, which is part of their
  pickle; here they get a UUID derived from what they compile (a SHA-256 of the pickle of
  their Python function and options, or of an intrinsic's name and definition);
* PyTensor writes the generated Python source of each compiled function to a new temporary
  file; ``pytensor.config.generated_src_dir`` makes it content-addressed in the cache;
* nutpie names the shared data arrays by random UUIDs; here by a counter;
* nutpie's closure holds the data arrays themselves (their values and shapes), so the model
  is compiled on placeholder arrays of the same ranks and dtypes and then given its data
  with ``with_data``: the key depends on the model structure
  (:func:`~bayesconv.inference.compile.structure_key`), not on the data or its row counts.

The directory is ``platformdirs.user_cache_dir("bayesconv")`` (``~/.cache/bayesconv`` on
Linux) or the value of the environment variable ``BAYESCONV_COMPILE_CACHE``, in a
subdirectory named by the versions of bayesconv (with a digest of its source, so that an
edited kernel is never served stale machine code), PyTensor, nutpie, numba, llvmlite and
Python. ``BAYESCONV_COMPILE_CACHE=off`` (or ``0``, ``false``, ``no``) disables it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path

__all__ = ["ENV_VAR", "cache_hit", "cache_root", "clear_disk_cache", "compile_cache_dir",
           "persistent_compilation", "version_tag"]

#: Environment variable that moves the cache (a directory) or disables it (off, 0, false, no).
ENV_VAR = "BAYESCONV_COMPILE_CACHE"
_OFF = {"off", "0", "false", "no", "none"}

_log = logging.getLogger("bayesconv")
_LOCK = threading.RLock()   # the patches below are process-wide


def cache_root() -> Path | None:
    """The directory that holds every version's compile cache, or None when disabled.

    Returns
    -------
    Path or None
        ``$BAYESCONV_COMPILE_CACHE`` if set to a directory, else
        ``platformdirs.user_cache_dir("bayesconv")``; None if the variable says off.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bayesconv", appauthor=False))


@functools.cache
def version_tag() -> str:
    """The name of this installation's cache directory,
    ``bayesconv-<source digest>_bayesconv-<v>_pytensor-<v>_nutpie-<v>_numba-<v>_llvmlite-<v>_py<v>``:
    what compiled code depends on besides the model structure."""
    from importlib.metadata import PackageNotFoundError, version

    src = Path(__file__).resolve().parent.parent      # the bayesconv package
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    parts = [f"bayesconv-{digest.hexdigest()[:12]}"]
    for dist in ("bayesconv", "pytensor", "nutpie", "numba", "llvmlite"):
        try:
            parts.append(f"{dist}-{version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}-none")
    parts.append("py{}.{}".format(*sys.version_info[:2]))
    return "_".join(parts)


def compile_cache_dir() -> Path | None:
    """This installation's compile cache directory (``cache_root() / <versions>``), or None
    when the cache is disabled (:data:`ENV_VAR`)."""
    root = cache_root()
    return None if root is None else root / version_tag()


def clear_disk_cache() -> list[Path]:
    """Delete the on-disk compile cache of every version; return the directories removed.

    Only the version folders this module writes (``bayesconv-*`` in :func:`cache_root`) are
    deleted, never the root itself or anything else in it (``BAYESCONV_COMPILE_CACHE`` may
    point into a folder that holds other things). Each is renamed first and then deleted, so
    a process compiling at the same time sees the whole of it or none (and then compiles).
    """
    root = cache_root()
    if root is None or not root.is_dir():
        return []
    removed = []
    for folder in sorted(root.glob("bayesconv-*")):
        if not folder.is_dir() or ".deleting-" in folder.name:
            continue
        trash = folder.with_name(f"{folder.name}.deleting-{uuid.uuid4().hex[:8]}")
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(folder)
    return removed


def _content_uuid(blob: bytes) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(blob).digest()[:16]))


@contextlib.contextmanager
def _stable_numba_ids():
    """numba dispatchers and intrinsics named by a digest of what they compile instead of a
    random UUID (``numba.core.dispatcher._MemoMixin._uuid``, ``_Intrinsic._uuid``: private
    names of numba, checked here; without them the cache still works within a process but
    misses in the next)."""
    from numba.core import dispatcher, extending, serialize

    memo = getattr(dispatcher, "_MemoMixin", None)
    intrinsic = getattr(extending, "_Intrinsic", None)
    if (not isinstance(getattr(memo, "_uuid", None), property)
            or not isinstance(getattr(intrinsic, "_uuid", None), property)
            or not hasattr(memo, "_set_uuid") or not hasattr(intrinsic, "_set_uuid")):
        _log.warning("this numba version names its functions differently; the compile "
                     "cache will not be reused by the next process")
        yield
        return
    busy: set[int] = set()

    def dispatcher_uuid(self):
        u = self._MemoMixin__uuid
        if u is None:
            if id(self) in busy:           # a function whose pickle contains itself
                u = str(uuid.uuid4())
            else:
                busy.add(id(self))
                try:
                    u = _content_uuid(serialize.dumps(
                        (self.py_func, getattr(self, "targetoptions", None),
                         getattr(self, "locals", None))))
                finally:
                    busy.discard(id(self))
                if self._MemoMixin__uuid is not None:   # set while pickling itself
                    return self._MemoMixin__uuid
            self._set_uuid(u)
        return u

    def intrinsic_uuid(self):
        u = self._Intrinsic__uuid
        if u is None:
            u = _content_uuid(serialize.dumps((self._name, self._defn)))
            self._set_uuid(u)
        return u

    saved = memo._uuid, intrinsic._uuid
    memo._uuid, intrinsic._uuid = property(dispatcher_uuid), property(intrinsic_uuid)
    try:
        yield
    finally:
        memo._uuid, intrinsic._uuid = saved


@contextlib.contextmanager
def _counted_nutpie_keys():
    """nutpie's shared-data keys (``uuid4().hex`` in :mod:`nutpie.compile_pymc`) numbered
    0, 1, 2, ... for each compile instead of random."""
    import nutpie.compile_pymc as ncp

    if not hasattr(ncp, "uuid4"):
        yield
        return
    counter = itertools.count()
    saved = ncp.uuid4
    ncp.uuid4 = lambda: uuid.UUID(int=next(counter))
    try:
        yield
    finally:
        ncp.uuid4 = saved


@contextlib.contextmanager
def _placeholder_data(pymc_model, placeholders: dict):
    """The model's ``pm.Data`` set to ``placeholders`` while it compiles, so that nutpie's
    closure (and so the cache key) does not hold the data; the data are put back afterwards."""
    import numpy as np

    saved = {}
    try:
        for name, value in placeholders.items():
            var = pymc_model[name]
            saved[name] = var.get_value(borrow=True)
            var.set_value(np.asarray(value, dtype=var.dtype))
        yield
    finally:
        for name, value in saved.items():
            pymc_model[name].set_value(value, borrow=True)


@contextlib.contextmanager
def persistent_compilation(pymc_model, placeholders: dict):
    """Compile ``pymc_model`` with nutpie inside this block to use the on-disk cache.

    Parameters
    ----------
    pymc_model : pymc.Model
        The model to compile.
    placeholders : dict
        ``{pm.Data name: array}`` the model's data containers hold inside the block: arrays
        that depend only on the model's structure (zeros of the data's dtype; of length 1
        along axes whose length is the data's row count, of the data's shape where a
        parameter's shape follows it). The compiled model must be given the real data
        afterwards with ``with_data``.

    Yields
    ------
    Path or None
        The cache directory, or None when the cache is disabled (then nothing is changed:
        compile without ``cache=True``).
    """
    directory = compile_cache_dir()
    if directory is None:
        yield None
        return
    import numba
    import pytensor

    (directory / "numba").mkdir(parents=True, exist_ok=True)
    (directory / "pytensor").mkdir(parents=True, exist_ok=True)
    # no creation traces on the variables the compile's rewrites make (they hold the caller's
    # stack, see ConversionModel.pymc_model)
    flags = {"traceback__limit": 0}
    if hasattr(pytensor.config, "generated_src_dir"):
        flags["generated_src_dir"] = str(directory / "pytensor")
    with (_LOCK, _stable_numba_ids(), _counted_nutpie_keys(),
          pytensor.config.change_flags(**flags), _placeholder_data(pymc_model, placeholders)):
        saved = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = str(directory / "numba")
        try:
            yield directory
        finally:
            numba.config.CACHE_DIR = saved


def cache_hit(compiled) -> bool:
    """Whether both of nutpie's compiled functions came from the on-disk cache."""
    funcs = (getattr(compiled, "compiled_logp_func", None),
             getattr(compiled, "compiled_expand_func", None))
    return all(getattr(f, "cache_hits", 0) > 0 for f in funcs)
