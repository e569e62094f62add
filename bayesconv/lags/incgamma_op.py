"""The PyTensor Op of the fused incomplete-gamma kernel (:mod:`bayesconv.lags.incgamma`).

Kept apart from the kernel so that importing the numpy side does not import PyTensor, and
defined at module level so that the Op pickles by reference: numba's on-disk cache keys a
compiled model by a pickle of what it calls, and a class built inside a function pickles by
value with a random id, which made every process miss the compile cache
(:mod:`bayesconv.inference.compile`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import (
    numba_njit,
    register_funcify_default_op_cache_key,
)

from .incgamma import log_gamma_pq_kernel


class LogGammaPQ(Op):
    """``(log P, log Q, d log P/dk, d log Q/dk)`` of same-shaped float64 ``k``, ``x``.

    The derivative outputs make the pullback free: the gradient reuses them instead of
    running the series or continued fraction again. The derivative outputs themselves are
    not differentiable (NUTS needs first derivatives only).
    """

    __props__ = ()

    def make_node(self, k, x):
        k = pt.as_tensor_variable(k)
        x = pt.as_tensor_variable(x)
        if k.type.dtype != "float64" or x.type.dtype != "float64" or k.ndim != x.ndim:
            raise TypeError("LogGammaPQ needs float64 inputs of equal ndim (broadcast first)")
        return Apply(self, [k, x], [x.type() for _ in range(4)])

    def perform(self, node, inputs, outputs):
        k, x = (np.ascontiguousarray(v, dtype=np.float64) for v in inputs)
        for out, value in zip(outputs, log_gamma_pq_kernel(k, x), strict=True):
            out[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[1]] * 4

    def pullback(self, inputs, outputs, output_grads):
        k, x = inputs
        log_p, log_q, dlog_p, dlog_q = outputs
        g_p, g_q, g_dp, g_dq = output_grads
        for g in (g_dp, g_dq):
            if not isinstance(g.type, DisconnectedType):
                raise NotImplementedError("second derivatives of log P / log Q in the shape")
        pos = x > 0.0
        x1 = pt.switch(pos, x, 1.0)
        # log density of the standard gamma at x: d log P/dx = f / P, d log Q/dx = -f / Q
        log_f = (k - 1.0) * pt.log(x1) - x1 - pt.gammaln(k)
        gk = pt.zeros_like(k)
        gx = pt.zeros_like(x)
        if not isinstance(g_p.type, DisconnectedType):
            gk = gk + g_p * dlog_p
            gx = gx + pt.switch(pos, g_p * pt.exp(log_f - log_p), 0.0)
        if not isinstance(g_q.type, DisconnectedType):
            gk = gk + g_q * dlog_q
            gx = gx - pt.switch(pos, g_q * pt.exp(log_f - log_q), 0.0)
        return [gk, gx]

@register_funcify_default_op_cache_key(LogGammaPQ)
def _numba_log_gamma_pq(op, node=None, **kwargs):
    @numba_njit
    def log_gamma_pq(k, x):
        return log_gamma_pq_kernel(np.ascontiguousarray(k), np.ascontiguousarray(x))

    return log_gamma_pq


LOG_GAMMA_PQ = LogGammaPQ()


_JAX_REGISTERED = False


def register_jax() -> None:
    """Teach PyTensor's JAX back end the ``LogGammaPQ`` Op (:mod:`bayesconv.lags.incgamma_jax`).

    Called by the JAX samplers of :meth:`bayesconv.ConversionModel.fit` (``"numpyro"``,
    ``"blackjax"``, ``"nutpie-jax"``) before they compile; call it before compiling a
    bayesconv model with ``mode="JAX"`` yourself. Not done at import, which would import JAX
    (a second of start-up) into every process that builds a gamma model.

    Raises
    ------
    ImportError
        JAX is not installed (``pip install 'bayesconv[jax]'``).
    """
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    try:
        from pytensor.link.jax.dispatch import jax_funcify
    except ImportError as err:
        raise ImportError("the JAX samplers need jax: pip install 'bayesconv[jax]' "
                          f"({err})") from None
    from .incgamma_jax import log_gamma_pq_jax

    @jax_funcify.register(LogGammaPQ)
    def _jax_log_gamma_pq(op, node=None, **kwargs):
        return log_gamma_pq_jax

    _JAX_REGISTERED = True
