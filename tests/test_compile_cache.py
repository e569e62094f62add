"""The persistent compile cache (bayesconv/inference/disk_cache.py): a later process loads
the compiled model from disk instead of compiling it, whatever its data, and samples the same
draws as a fresh compile; two processes may fill the cache at once; the directory, its
versioning, the switch and the clearing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bayesconv.inference import disk_cache
from bayesconv.inference.compile import clear_compile_cache

# One fit in a fresh process; prints where the compiled model came from and a digest of the
# draws. Days of enrollment from argv: 30 and 20 days give other row counts and other data.
SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import bayesconv as bc
    ev = bc.simulate(n_units=[400, 400], eventual_rate=[0.3, 0.35], lag_loc=5, lag_shape=1.5,
                     enrollment=int(sys.argv[1]), followup=0, resolution="D", random_seed=3)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    res = bc.ConversionModel(data).fit(draws=100, tune=100, chains=1, random_seed=5,
                                       progressbar=False)
    draws = res.posterior["logit_rate"].values
    print(json.dumps({"source": res.timing["compile_source"],
                      "draws": [float(v) for v in np.ravel(draws)[:20]]}))
""")


# The same fit called from another file, two calls deep, after other imports: PyTensor's
# creation traces on graph variables named the caller's file and line, and were part of the
# cache key, so a notebook and a script missed each other's entries.
ELSEWHERE = f"""
import matplotlib.pyplot, scipy.stats
def deeper():
    exec(compile({SCRIPT!r}, "another_entry_point.py", "exec"), {{}})
def main():
    deeper()
main()
"""


def _start(cache, days, code=SCRIPT):
    env = {**os.environ, disk_cache.ENV_VAR: str(cache)}
    return subprocess.Popen([sys.executable, "-c", code, str(days)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _result(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_second_process_loads_the_compiled_model_from_disk(tmp_path):
    # two processes compile the same structure into the empty cache at once ...
    first, concurrent = (_result(p) for p in [_start(tmp_path, 30), _start(tmp_path, 30)])
    assert first["source"] == concurrent["source"] == "compiled"
    # ... and a later process loads what they wrote, whatever its data and caller
    later = _result(_start(tmp_path, 30, ELSEWHERE))
    other_data = _result(_start(tmp_path, 20))   # other row counts and values, same structure
    assert later["source"] == "disk", "the on-disk compile cache was not reused"
    assert other_data["source"] == "disk"
    # machine code from the cache computes what the fresh compile computed: the same draws
    assert later["draws"] == concurrent["draws"] == first["draws"]
    assert other_data["draws"] != first["draws"]
    (version_dir,) = tmp_path.iterdir()
    assert version_dir.name == disk_cache.version_tag()
    assert any((version_dir / "numba").rglob("*.nbi"))       # numba's index files


def test_the_cache_can_be_moved_and_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv(disk_cache.ENV_VAR, str(tmp_path / "elsewhere"))
    assert disk_cache.cache_root() == tmp_path / "elsewhere"
    assert disk_cache.compile_cache_dir().parent == tmp_path / "elsewhere"
    for off in ("off", "0", "False", "no"):
        monkeypatch.setenv(disk_cache.ENV_VAR, off)
        assert disk_cache.cache_root() is None and disk_cache.compile_cache_dir() is None
    monkeypatch.delenv(disk_cache.ENV_VAR)
    import platformdirs

    assert str(disk_cache.cache_root()) == platformdirs.user_cache_dir("bayesconv",
                                                                      appauthor=False)


def test_the_cache_is_versioned_by_the_compiled_code_it_depends_on():
    from importlib.metadata import version

    import bayesconv

    tag = disk_cache.version_tag()
    for dist in ("bayesconv", "pytensor", "nutpie", "numba", "llvmlite"):
        assert f"_{dist}-{version(dist)}_" in tag
    assert bayesconv.__version__ == version("bayesconv")
    assert f"py{sys.version_info.major}.{sys.version_info.minor}" in tag


def test_clear_compile_cache_deletes_the_disk_cache_and_nothing_else(monkeypatch, tmp_path):
    root = tmp_path / "cache"
    monkeypatch.setenv(disk_cache.ENV_VAR, str(root))
    for version in ("bayesconv-old_numba-0.1", disk_cache.version_tag()):
        (root / version / "numba").mkdir(parents=True)
        (root / version / "numba" / "f.nbi").write_bytes(b"x")
    (root / "user-notes.txt").write_text("not ours")        # the variable may point anywhere
    (root / "other-tool").mkdir()
    clear_compile_cache(disk=False)
    assert len(list(root.glob("bayesconv-*"))) == 2
    clear_compile_cache()
    assert sorted(p.name for p in root.iterdir()) == ["other-tool", "user-notes.txt"]
    clear_compile_cache()                    # nothing left to delete: no error
    monkeypatch.setenv(disk_cache.ENV_VAR, str(tmp_path / "never-created"))
    clear_compile_cache()


def test_nothing_is_patched_when_switched_off(monkeypatch):
    monkeypatch.setenv(disk_cache.ENV_VAR, "off")
    with disk_cache.persistent_compilation(None, {}) as directory:
        assert directory is None


def test_an_unusable_cache_directory_falls_back_to_compiling(monkeypatch, tmp_path):
    """A read-only home or a cache path that is a file: the fit still runs, and says why it
    compiled."""
    import bayesconv as bc

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv(disk_cache.ENV_VAR, str(blocker))
    clear_compile_cache(disk=False)
    ev = bc.simulate(n_units=[200, 200], eventual_rate=[0.3, 0.35], lag_loc=5, lag_shape=1.5,
                     enrollment=20, followup=0, resolution="D", random_seed=3)
    data = bc.prepare(ev, created="created", converted="converted",
                      observed_until="observed_until", cohort="cohort")
    with pytest.warns(RuntimeWarning, match="compile cache could not be used"):
        res = bc.ConversionModel(data).fit(draws=50, tune=50, chains=1, random_seed=5,
                                           progressbar=False)
    assert res.timing["compile_source"] == "compiled"
    assert res.posterior["logit_rate"].notnull().all()
