"""Start-up cost: ``import bayesconv`` and ``bayesconv --help`` import nothing heavy (issue 17).

Each check runs in a fresh interpreter, because this test process has long imported
everything. Measured with ``python -X importtime -c "import bayesconv"`` (benchmarks/cold_start.py
reports the times in fresh processes).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import bayesconv

HEAVY = ("arviz", "arviz_base", "arviz_stats", "duckdb", "matplotlib", "numba", "nutpie",
         "pymc", "pyspark", "pytensor", "scipy", "xarray")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\n"
         "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
        capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_bayesconv_loads_no_heavy_library():
    loaded = _loaded_after("import bayesconv")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "pandas" not in loaded and "numpy" not in loaded


def test_cli_help_loads_no_heavy_library():
    code = ("import sys\nsys.argv = ['bayesconv', '--help']\nimport bayesconv.cli\n"
            "try:\n    bayesconv.cli.main()\nexcept SystemExit:\n    pass\n")
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_figures_do_not_load_jax():
    """arviz_base leaves a pending lazy ``jax`` in sys.modules (when JAX is installed), which
    made matplotlib load all of JAX (~0.8 s) on bayesconv's first figure; ``import jax``
    still works afterwards."""
    pytest.importorskip("jax")
    code = "\n".join([
        "import sys, matplotlib", "matplotlib.use('Agg')", "import arviz_base",
        "import bayesconv as bc", "from bayesconv import plotting",
        "ev = bc.simulate(n_units=[50, 50], eventual_rate=0.3, lag_loc=3.0, lag_shape=1.0, "
        "random_seed=1)",
        "plotting.plot_kaplan_meier(bc.prepare(ev, created='created', converted='converted', "
        "observed_until='observed_until', cohort='cohort'))",
        "print('jax loaded by the figure:', 'jax._src' in sys.modules)",
        "import jax", "print('jax works:', float(jax.numpy.ones(2).sum()) == 2.0)"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-2:] == ["jax loaded by the figure: False",
                                                   "jax works: True"]


def test_public_names_resolve_to_what_their_modules_define():
    import bayesconv.replays
    import bayesconv.simulation

    assert sorted(bayesconv.__all__) == sorted(bayesconv._PUBLIC)
    for name in bayesconv.__all__:
        assert getattr(bayesconv, name) is not None
    # the functions, not the modules of (almost) the same name
    assert bayesconv.replay is bayesconv.replays.replay
    assert bayesconv.simulate is bayesconv.simulation.simulate
    assert set(bayesconv.__all__) <= set(dir(bayesconv))


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        bayesconv.nonsense  # noqa: B018
    assert not hasattr(bayesconv, "nonsense")
