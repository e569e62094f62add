"""The package's layers point down only, enforced by import-linter (pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache",
                           "--config", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """A copy of the package and its import-linter contract, to break on purpose."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "bayesconv", root / "bayesconv",
                    ignore=shutil.ignore_patterns("__pycache__", "*.csv*"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_layers_hold():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "KEPT" in out.stdout


@pytest.mark.parametrize("lower,upper", [
    ("data/units.py", "from bayesconv.readout import compare"),   # data -> readout
    ("model/mixture.py", "import bayesconv.posterior.result"),      # model -> posterior
])
def test_an_upward_import_breaks_the_contract(copy, lower, upper):
    path = copy / "bayesconv" / lower
    original = path.read_text()
    try:
        # inside a function, where an import hiding a circle would sit
        path.write_text(original + f"\n\ndef _sneak():\n    {upper}\n")
        out = _lint(copy)
    finally:
        path.write_text(original)
    assert out.returncode != 0 and "BROKEN" in out.stdout, out.stdout[-2000:]
