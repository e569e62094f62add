"""Shared test fixtures.

``py_mode`` evaluates PyTensor graphs with the Python linker and no graph rewrites: no numba or
C compilation, so tests about a model's structure and about how its likelihood terms are
composed run in a fraction of a second instead of the 5-35 s a cold numba compile of each
family's graph costs. The numba code that sampling runs is held to the numpy reference in
``test_lags.py`` (every family, values and gradients) and exercised by the seeded fits.
"""

import pytest
from pytensor.compile.mode import Mode


@pytest.fixture(scope="session")
def py_mode():
    """A PyTensor mode that compiles nothing: Python linker, no rewrites."""
    return Mode(linker="py", optimizer=None)
