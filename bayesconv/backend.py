"""How bayesconv compiles PyTensor graphs: reproducibly, the same in every process.

PyTensor's numba back end compiles with LLVM fast-math flags by default
(``pytensor.config.numba__fastmath``: reassociation, contraction to fused multiply-add,
approximate functions, reciprocals). With them, the machine code of a graph depends on which
of its pieces LLVM can inline and optimise together, and that differs between a graph
compiled from scratch and one whose pieces come from PyTensor's on-disk numba cache
(``<base_compiledir>/numba``). The same model, data and seed then gave different draws in
the first process after an install than in every later process (measured on the NYC demo and
on a partially pooled fit: identical within each kind of process, different between them).

Without fast-math every floating point operation is IEEE and unfused, so fresh and cached
code compute bit-identical values. The cost, measured on the NYC demo (4 chains × 1,000
draws, 2 cores), is within run-to-run noise of the sampling time (15.0-17.1 s without,
15.0-15.6 s with fast-math). Every PyTensor compilation bayesconv triggers (nutpie, PyMC's
NUTS, MAP, prior predictive draws) runs inside :func:`reproducible_compilation`; the user's
own global setting is left as it is for their other graphs.
"""

from __future__ import annotations

import contextlib

__all__ = ["reproducible_compilation"]


@contextlib.contextmanager
def reproducible_compilation():
    """Compile PyTensor graphs without fast-math inside this block.

    Examples
    --------
    >>> with reproducible_compilation():                      # doctest: +SKIP
    ...     compiled = nutpie.compile_pymc_model(model, backend="numba")
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield
