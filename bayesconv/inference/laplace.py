"""The Laplace approximation: a Gaussian at the posterior mode, on the unconstrained scale.

The posterior of the model's free parameters θ (logit rates, log lag locations, log shapes,
log group sds: the scale NUTS samples on) is approximated by

    θ | data ≈ Normal(θ̂, H⁻¹),   θ̂ = argmax log p(θ | data),   H = −∇² log p(θ̂ | data),

and every posterior variable (eventual rates, lag locations, ...) is computed from draws of that
Gaussian, so a Laplace result has the same variables as a NUTS result (Tierney & Kadane 1986,
"Accurate approximations for posterior moments and marginal densities", *JASA* 81(393);
Gelman et al. 2013, *Bayesian Data Analysis*, 3rd ed., §4.1 and §13.3). With many units per arm
the posterior of an A/B model is close to Gaussian on this scale (Bernstein–von Mises), and a
fit costs one optimisation (tens of gradient evaluations) instead of thousands of NUTS steps.
It is poor where the posterior is not: a funnel of a between-cohort sd, or an eventual rate the
follow-up barely identifies (the cure-versus-long-tail ridge); :func:`bayesconv.project`
validates it against NUTS refits (``validation/projection.md``).

:class:`LaplaceFitter` compiles the log density, its gradient and the map from the
unconstrained parameters to the posterior variables once per model structure (numba) and
refits any data set of that structure by swapping the values of the model's ``pm.Data``
containers: this is what :func:`bayesconv.project` runs per simulated future data set.
``ConversionModel.fit(method="laplace")`` uses the same machinery.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from .compile import announce, cached, reproducible_compilation, structure_key

__all__ = ["LaplaceFitter", "as_posterior", "laplace_fitter", "laplace_method"]

#: Relative step of the central differences of the gradient that give the Hessian.
_HESS_STEP = 1e-5
#: A mode is accepted where the Newton decrement gᵀH⁻¹g of −log p is below this (a Newton
#: step would raise log p by at most half of it).
NEWTON_TOL = 1e-3


def laplace_fitter(model, progressbar: bool = False) -> LaplaceFitter:
    """The :class:`LaplaceFitter` of ``model``'s structure, compiled or reused in this process.

    The per-process cache is keyed like the NUTS compile cache
    (:func:`bayesconv.inference.compile.structure_key`) and cleared with it
    (:func:`bayesconv.clear_compile_cache`).
    """
    def build():
        announce(f"compiling the Laplace approximation ({model.spec.describe()})...",
                 progressbar)
        return LaplaceFitter(model)

    return cached(("laplace", structure_key(model)), build)


class LaplaceFitter:
    """The compiled pieces of a Laplace fit for one model structure.

    Parameters
    ----------
    model : ModelBuilder
        Any model of the structure; its PyMC model is compiled (numba back end) once.

    Attributes
    ----------
    names : list of str
        The free parameters (value variables, unconstrained), in the order of the flat vector.
    outputs : list of str
        The posterior variables computed from each draw (free random variables on their
        natural scale and deterministics; the log-likelihood potential is left out).
    dims : dict
        Variable name -> its dims in the PyMC model.
    """

    def __init__(self, model):
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import vectorize_graph

        self.key = structure_key(model)
        pm_model = model.pymc_model
        self._model = pm_model
        t0 = time.perf_counter()
        with reproducible_compilation(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self._vg = pm_model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")
            self._vg.set_extra_values({})
            values = [v for v in self._vg._grad_vars]
            point = pm_model.initial_point()
            self.names = [v.name for v in values]
            self._shapes = [np.shape(point[n]) for n in self.names]
            self._sizes = [int(np.prod(s)) for s in self._shapes]
            rvs = [pm_model.values_to_rvs[v] for v in values]
            outs = [*rvs, *pm_model.deterministics]
            self.outputs = [o.name for o in outs]
            graph = pm_model.replace_rvs_by_values(outs)
            batched = [pt.tensor(name=f"{v.name}_batch", shape=(None, *v.type.shape),
                                 dtype=v.dtype) for v in values]
            vec = vectorize_graph(graph, replace=dict(zip(values, batched, strict=True)))
            self._transform = pytensor.function(batched, vec, mode="NUMBA",
                                                on_unused_input="ignore")
        self.dims = {name: tuple(dim) for name, dim in pm_model.named_vars_to_dims.items()}
        self.start = np.concatenate([np.ravel(point[n]) for n in self.names]).astype(float)
        self.compile_s = time.perf_counter() - t0

    def set_data(self, model) -> None:
        """Point the compiled functions at ``model``'s data (same structure).

        Raises
        ------
        ValueError
            ``model`` has another structure (:func:`~bayesconv.inference.compile.structure_key`).
        """
        if structure_key(model) != self.key:
            raise ValueError("this LaplaceFitter was compiled for another model structure; "
                             "use laplace_fitter(model)")
        for name, value in model.data_values().items():
            var = self._model[name]
            var.set_value(np.asarray(value, dtype=var.dtype), borrow=False)

    def _negative(self, x):
        """−log p and its gradient; +inf where the compiled graph cannot evaluate ``x`` (an
        optimiser's overlong step: a lag location of e^700), so that the line search backs
        off."""
        try:
            lp, grad = self._vg(x)
        except (ZeroDivisionError, FloatingPointError, OverflowError):
            return np.inf, np.zeros_like(x)
        lp = float(lp)
        if not np.isfinite(lp):
            return np.inf, np.zeros_like(x)
        return -lp, -np.asarray(grad, dtype=float)

    def mode(self, start=None) -> tuple[np.ndarray, np.ndarray, dict]:
        """The posterior mode and the Hessian of −log p there, for the current data.

        Parameters
        ----------
        start : ndarray, optional
            Starting point on the unconstrained scale (default: the model's initial point).

        Returns
        -------
        mode : ndarray of shape (n_params,)
        hessian : ndarray of shape (n_params, n_params)
            Of the negative log posterior (positive definite at a proper mode), by central
            differences of the analytic gradient.
        info : dict
            ``converged`` (the Newton decrement is below :data:`NEWTON_TOL`),
            ``newton_decrement``, ``n_evals`` (gradient evaluations), ``message`` (the
            optimiser's).
        """
        from scipy import optimize

        x0 = self.start if start is None else np.asarray(start, dtype=float)
        res = optimize.minimize(self._negative, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": 1000, "gtol": 1e-8})
        x = res.x
        p = x.size
        hess = np.empty((p, p))
        for i in range(p):
            h = _HESS_STEP * max(1.0, abs(x[i]))
            e = np.zeros(p)
            e[i] = h
            hess[i] = (self._negative(x + e)[1] - self._negative(x - e)[1]) / (2 * h)
        hess = (hess + hess.T) / 2
        # L-BFGS-B often stops on its line search near the optimum (success False): judge
        # the mode by the Newton decrement gᵀH⁻¹g (twice the log density a Newton step would
        # still gain; scale-free), after up to two Newton steps
        f, grad = self._negative(x)
        decrement, evals = np.inf, 1
        for _ in range(3):
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                break
            decrement = float(grad @ step)
            if not decrement > NEWTON_TOL:
                break
            f_new, g_new = self._negative(x - step)
            evals += 1
            if not f_new < f:
                break
            x, f, grad = x - step, f_new, g_new
        info = {"converged": bool(0 <= decrement <= NEWTON_TOL),
                "newton_decrement": decrement, "n_evals": int(res.nfev) + 2 * p + evals,
                "message": str(res.message)}
        return x, hess, info

    def draws(self, mode: np.ndarray, hessian: np.ndarray, n: int, rng) -> dict:
        """``n`` draws of every posterior variable from Normal(mode, hessian⁻¹).

        Returns
        -------
        dict
            Output name -> ndarray of shape (n, *variable shape).

        Raises
        ------
        numpy.linalg.LinAlgError
            The Hessian is not positive definite (the mode is a saddle or on a ridge).
        """
        chol = np.linalg.cholesky(hessian)          # H = L Lᵀ, so Lᵀ⁻¹ z ~ N(0, H⁻¹)
        z = rng.standard_normal((n, mode.size))
        x = mode + np.linalg.solve(chol.T, z.T).T
        parts = np.split(x, np.cumsum(self._sizes)[:-1], axis=1)
        args = [q.reshape((n, *s)) for q, s in zip(parts, self._shapes, strict=True)]
        return dict(zip(self.outputs, self._transform(*args), strict=True))

    def fit(self, model, n: int, rng, start=None) -> tuple[dict, np.ndarray, dict]:
        """Mode, Hessian and ``n`` draws for ``model``'s data.

        Returns
        -------
        draws : dict
            As :meth:`draws`.
        mode : ndarray
        info : dict
            As :meth:`mode`, plus ``positive_definite``.

        Raises
        ------
        numpy.linalg.LinAlgError
            See :meth:`draws`.
        """
        self.set_data(model)
        mode, hess, info = self.mode(start)
        return self.draws(mode, hess, n, rng), mode, info


def as_posterior(model, draws: dict, dims: dict, chains: int = 1):
    """Laplace draws as a posterior Dataset with the model's dims and coordinates.

    Parameters
    ----------
    model : ModelBuilder
        The model fitted (for its coordinates).
    draws : dict
        :meth:`LaplaceFitter.draws` output, each of shape (chains × n, ...).
    dims : dict
        Variable name -> its dims (:attr:`LaplaceFitter.dims`).
    chains : int, default 1
        Split the draws into this many (independent) chains.

    Returns
    -------
    xarray.Dataset with dims (chain, draw, ...), as a NUTS posterior has them.
    """
    import xarray as xr

    data = {}
    n = None
    for name, value in draws.items():
        shape = value.shape[1:]
        n = value.shape[0] // chains
        d = list(dims.get(name) or [f"{name}_dim_{i}" for i in range(len(shape))])
        data[name] = (["chain", "draw", *d], value.reshape((chains, n, *shape)))
    used = {d for _, (dd, _) in data.items() for d in dd}
    coords = {k: v for k, v in model.coords.items() if k in used}
    return xr.Dataset(data, coords={"chain": np.arange(chains), "draw": np.arange(n or 0),
                                    **coords})


def laplace_method(model, opt):
    """Inference method ``"laplace"``: ``chains × draws`` independent Gaussian draws."""
    import xarray as xr

    from .methods import MethodOutput

    t0 = time.perf_counter()
    fitter = laplace_fitter(model, opt.progressbar)
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(opt.random_seed)
    t0 = time.perf_counter()
    draws, _, info = fitter.fit(model, opt.chains * opt.draws, rng)
    post = as_posterior(model, draws, fitter.dims, opt.chains)
    post.attrs["laplace_converged"] = int(info["converged"])
    tree = xr.DataTree.from_dict({"posterior": post})
    return MethodOutput(tree, "laplace", {"compile_s": compile_s,
                                          "sampling_s": time.perf_counter() - t0}, "draws")
