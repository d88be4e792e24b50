"""Fréchet (Karcher) means on any manifold, batched over groups, with an implicit backward.

``frechet_mean(points, manifold)`` minimizes ``Σ wᵢ d²(M, Xᵢ)`` for every group of points at once.

Algorithms (chosen from the manifold and its metric):

=============================  ==================================================================
Euclidean                      weighted arithmetic mean (closed form)
SPD, log-Euclidean             ``exp(Σ wᵢ log Xᵢ)`` (closed form; the same for every ``θ, α, β``:
                               the metric is invariant under power deformation and ``(α, β)``
                               only reweights a flat inner product)
SPD, log-Cholesky              Lin (2019) closed form on Cholesky factors; ``θ``: mean of ``Xᵢ^θ``
                               raised to ``1/θ`` (the deformed metric is a pullback)
SPD, affine-invariant          Riemannian Newton–CG in the whitened frame with Armijo steps (one
                               ``eigh`` per matrix per iteration; converges on widely spread data
                               where the unit-step fixed point diverges); ``(α, β)`` leave the
                               geodesics, hence the mean, unchanged; ``θ`` as for log-Cholesky
SPD, Bures–Wasserstein         fixed point of Álvarez-Esteban et al. (2016); ``θ`` as above
any other (sphere, Grassmann,  Riemannian gradient descent, Barzilai–Borwein steps with an
hyperbolic, Stiefel, ...)      Armijo safeguard; Lorentz starts at the Lorentz centroid (the
                               Poincaré ball is solved in the isometric Lorentz model), Grassmann
                               at the extrinsic (projector) mean, others at the projected
                               Euclidean mean
=============================  ==================================================================

The mean is differentiable w.r.t. points and weights. Closed forms differentiate by autograd;
iterative means use the implicit function theorem on ``Σ wᵢ log_M(Xᵢ) = 0`` (one adjoint
linear solve by conjugate gradient in the backward), so memory does not grow with iterations.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.euclidean import FlatMetric
from ..manifolds.spectral import eigh, powm
from ..manifolds.tolerance import eps
from . import _mean_generic as _gen
from . import _mean_spd as _spd

__all__ = ["frechet_mean", "FrechetMeanInfo", "check_weights", "capture_aim_states", "estimator_tol",
           "ESTIMATOR_TOL"]

_AIM_STATES: ContextVar[list | None] = ContextVar("riemlearn_aim_states", default=None)


@contextmanager
def capture_aim_states() -> Iterator[list]:
    """Collect the solver states of the affine-invariant means computed inside (this thread or
    task only), as ``(state, points)`` in the compute dtype; the final frame and eigenpairs, or a
    guess for them, that :meth:`TangentSpace.fit_transform` reuses instead of a fresh ``eigh``."""
    states: list = []
    token = _AIM_STATES.set(states)
    try:
        yield states
    finally:
        _AIM_STATES.reset(token)


@dataclass
class FrechetMeanInfo:
    """Convergence report of :func:`frechet_mean`, one entry per group (shape ``(*groups,)``).

    Attributes
    ----------
    iterations : Tensor (long)
        Iterations performed (0 for closed forms).
    grad_norm : Tensor
        Metric norm of the Riemannian gradient ``Σ wᵢ log_M(Xᵢ)`` (weights summing to one) at
        the returned mean (0 for closed forms, which are exact).
    converged : Tensor (bool)
        Whether ``grad_norm <= tol``.
    algorithm : str
        Which algorithm ran.
    """

    iterations: Tensor
    grad_norm: Tensor
    converged: Tensor
    algorithm: str


def default_tol(dtype: torch.dtype) -> float:
    """Default gradient-norm tolerance: 1e-10 in float64, ``3·sqrt(eps)`` otherwise."""
    e = eps(dtype)
    return 1e-10 if e <= 1e-15 else 3.0 * math.sqrt(e)


#: Gradient-norm tolerance of the means inside the scikit-learn estimators (MDM, FgMDM,
#: TangentSpace) when computing in float64: pyRiemann's (``mean_riemann(tol=1e-8)``). The mean
#: is then within ~1e-8 of the exact one (Hess ≥ I), and distances to it change at ~1e-8
#: relative: far below what a classifier resolves.
ESTIMATOR_TOL = 1e-8


def estimator_tol(tol: float | None, metric: Any, dtype: torch.dtype) -> float:
    """An estimator's ``tol`` (None: :data:`ESTIMATOR_TOL`, or the default of a lower compute dtype)."""
    if tol is not None:
        return float(tol)
    return max(ESTIMATOR_TOL, default_tol(_compute_dtype(metric, dtype)))


def _validated_weights(weights: Tensor, groups: tuple[int, ...], n: int, ref: Tensor) -> Tensor:
    """Unnormalized weights ``(*groups, N)`` on ``ref``'s device (floating, not yet cast to
    ``ref.dtype``); ``ValueError`` on a bad shape, NaN/inf or a negative weight."""
    w = torch.as_tensor(weights, device=ref.device)
    if not w.dtype.is_floating_point:
        w = w.to(ref.dtype)
    if w.dim() == 1 and w.shape[0] == n:
        w = w.expand(groups + (n,))
    elif tuple(w.shape) != groups + (n,):
        raise ValueError(f"weights must have shape (N,)=({n},) or (*groups, N)={groups + (n,)}, "
                         f"got {tuple(w.shape)}")
    wd = w.detach()
    if not bool(torch.isfinite(wd).all()):
        raise ValueError("weights contain NaN/inf")
    if bool((wd < 0).any()):
        raise ValueError(f"weights must be non-negative, smallest is {float(wd.min()):.3g}")
    return w


def check_weights(weights: Tensor | None, groups: tuple[int, ...], n: int, ref: Tensor) -> Tensor:
    """Normalized weights ``(*groups, N)`` (differentiable); ``ValueError`` on bad input."""
    if weights is None:
        return torch.full(groups + (n,), 1.0 / n, dtype=ref.dtype, device=ref.device)
    w = _validated_weights(weights, groups, n, ref)
    s = w.sum(-1, keepdim=True)
    if bool((s.detach() <= 0).any()):
        raise ValueError("weights of some group sum to zero")
    return (w / s).to(ref.dtype)


def _check_points(points: Tensor, manifold: Manifold) -> None:
    if not isinstance(manifold, Manifold):
        raise ValueError(f"manifold must be a riemlearn Manifold, got {type(manifold).__name__}")
    if not isinstance(points, Tensor):
        raise ValueError(f"points must be a torch.Tensor, got {type(points).__name__}")
    problem = manifold.shape_problem(points)
    if problem is not None:
        raise ValueError(f"points {problem}")
    if points.dim() < manifold.ndim + 1:
        raise ValueError(f"points must have shape (*groups, N, *point_shape) with {manifold.ndim} point "
                         f"dimensions, got {tuple(points.shape)}")
    if points.shape[points.dim() - manifold.ndim - 1] == 0:
        raise ValueError("points has no points (N = 0)")
    if not bool(torch.isfinite(points.detach().sum())):  # one pass; NaN/inf propagate into the sum
        if not bool(torch.isfinite(points.detach()).all()):
            raise ValueError("points contain NaN/inf")


def _check_init(init: Tensor | None, points: Tensor, groups: tuple[int, ...],
                point_shape: tuple[int, ...]) -> Tensor | None:
    """``init`` as ``(*groups, *point_shape)`` in the points' dtype; ``ValueError`` on bad input."""
    if init is None:
        return None
    if not isinstance(init, Tensor):
        raise ValueError(f"init must be a torch.Tensor, got {type(init).__name__}")
    if tuple(init.shape[init.dim() - len(point_shape):]) != point_shape:
        raise ValueError(f"init has shape {tuple(init.shape)}, expected (*groups, {point_shape})")
    return init.to(points.dtype).expand(groups + point_shape)

# -- algorithm selection ---------------------------------------------------------------------------
def _spd_kind(metric: Any) -> str | None:
    from ..manifolds.spd_affine_invariant import AffineInvariant
    from ..manifolds.spd_bures_wasserstein import BuresWasserstein
    from ..manifolds.spd_log_cholesky import LogCholesky
    from ..manifolds.spd_log_euclidean import LogEuclidean

    for cls, kind in ((AffineInvariant, "ai"), (LogEuclidean, "le"), (LogCholesky, "lc"),
                      (BuresWasserstein, "bw")):
        if type(metric) is cls:
            return kind
    return None


def _compute_dtype(metric: Any, dtype: torch.dtype) -> torch.dtype:
    from ..manifolds.spd_base import resolve_compute_dtype

    return resolve_compute_dtype(getattr(metric, "compute_dtype", None), dtype)


class _Implicit(torch.autograd.Function):
    """Identity on the (detached) mean in forward; implicit-function adjoint in backward."""

    @staticmethod
    def forward(ctx: Any, mean: Tensor, x: Tensor, w: Tensor, adjoint: Any) -> Tensor:
        ctx.adjoint = adjoint
        ctx.save_for_backward(x, w)
        return mean.clone()

    @staticmethod
    def backward(ctx: Any, gbar: Tensor) -> Any:
        x, w = ctx.saved_tensors
        gx, gw = ctx.adjoint(x, w, gbar, ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        return None, gx, gw, None


def _needs_grad(*ts: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def _spd_mean(kind: str, metric: Any, x: Tensor, w: Tensor, init: Tensor | None, tol: float,
              max_iter: int) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """SPD means in the compute dtype; ``x (G, N, n, n)``, ``w (G, N)``."""
    groups = x.shape[:-3]
    zero_i = torch.zeros(groups, dtype=torch.long, device=x.device)
    zero_f = torch.zeros(groups, dtype=x.dtype, device=x.device)
    if kind == "le":
        return _spd.le_mean(x, w), zero_i, zero_f, zero_f == 0, "log-Euclidean closed form"
    theta = float(getattr(metric, "theta", 1.0))
    if theta != 1.0:  # pullback by P ↦ P^θ, norms scaled by 1/|θ|
        x = powm(x, theta)
        init = powm(init, theta) if init is not None else None
    if kind == "lc":
        mean, it, gn, conv, alg = _spd.lc_mean(x, w), zero_i, zero_f, zero_f == 0, "log-Cholesky closed form"
    else:
        grad = _needs_grad(x, w)
        xd, wd = x.detach(), w.detach()
        if init is None:
            init = _spd.ah_frame(xd, wd) if kind == "ai" else _spd_init(xd, wd)
        else:
            init = init.detach().expand(groups + x.shape[-2:])
        if kind == "ai":
            ab = (float(getattr(metric, "alpha", 1.0)), float(getattr(metric, "beta", 0.0)))
            mean, it, gn, conv, state = _spd.aim_mean(xd, wd, init, tol * abs(theta), max_iter,
                                                      1.0 / abs(theta), ab)
            sink = _AIM_STATES.get()
            if sink is not None and theta == 1.0:
                sink.append((state, xd))

            def adjoint(xa, wa, gbar, nx, nw):
                return _spd.aim_adjoint(state, xa, wa, gbar, nx, nw)
            alg = "affine-invariant Newton-CG (whitened frame, Armijo)"
        else:
            mean, it, gn, conv = _spd.bw_mean(xd, wd, init, tol * abs(theta), max_iter)
            gn = gn / abs(theta)
            from ..manifolds.spd import SPD
            from ..manifolds.spd_bures_wasserstein import BuresWasserstein

            plain = SPD(metric=BuresWasserstein(compute_dtype=None))

            def adjoint(xa, wa, gbar, nx, nw):
                return _gen.implicit_adjoint(plain, mean, xa, wa, gbar, nx, nw)
            alg = "Bures-Wasserstein fixed point (Alvarez-Esteban et al. 2016)"
        if grad:
            mean = _Implicit.apply(mean, x, w, adjoint)
    if theta != 1.0:
        mean = powm(mean, 1.0 / theta)
    return mean, it, gn, conv, alg


def _spd_init(x: Tensor, w: Tensor) -> Tensor:
    """Weighted arithmetic mean (cheap, SPD, and good for concentrated data)."""
    return _spd._wsum(w, x)


def _generic_init(m: Manifold, x: Tensor, w: Tensor) -> Tensor:
    nd = m.ndim
    wb = w.reshape(w.shape + (1,) * nd)
    first = x.select(-nd - 1, 0)
    name = type(m).__name__
    if name in ("PoincareBall", "Lorentz"):
        from ..manifolds.hyperbolic_conversions import ball_to_lorentz, lorentz_to_ball
        from ..manifolds.lorentz import minkowski

        c = float(m.metric.c)
        z = ball_to_lorentz(x, c) if name == "PoincareBall" else x
        y = (wb * z).sum(-2)
        q = (-minkowski(y, y, keepdim=True)).clamp_min(torch.finfo(y.dtype).tiny)
        y = y / torch.sqrt(c * q)  # the Lorentz centroid (Law et al. 2019)
        out = lorentz_to_ball(y, c) if name == "PoincareBall" else y
    elif name == "Grassmann":
        proj = (wb * (x @ x.mT)).sum(-3)
        _, vecs = eigh(proj)
        out = vecs[..., -x.shape[-1]:]
    else:
        try:
            out = m.project_point((wb * x).sum(-nd - 1))
        except Exception:  # noqa: BLE001 - any failure: fall back to a data point
            return first
    ok = torch.isfinite(out).reshape(out.shape[: out.dim() - nd] + (-1,)).all(-1)
    if name not in ("PoincareBall", "Lorentz", "Grassmann"):
        ok = ok & m.belongs(torch.where(torch.isfinite(out), out, first))
    return torch.where(ok.reshape(ok.shape + (1,) * nd), out, first)


def finish_mean(mean: Tensor, it: Tensor, gn: Tensor, conv: Tensor, groups: tuple[int, ...],
                point_shape: tuple[int, ...], alg: str, tol: float, max_iter: int,
                return_info: bool) -> Tensor | tuple[Tensor, FrechetMeanInfo]:
    """Warn about groups that did not converge, reshape, and attach the report if asked."""
    if not bool(conv.all()):
        warnings.warn(
            f"frechet_mean ({alg}) did not converge for {int((~conv).sum())} of {conv.numel()} "
            f"group(s) in {max_iter} iterations: largest gradient norm {float(gn.max()):.3g} > "
            f"tol {tol:.3g}", RuntimeWarning, stacklevel=3)
    mean = mean.reshape(groups + point_shape)
    if not return_info:
        return mean
    info = FrechetMeanInfo(it.reshape(groups), gn.reshape(groups).detach(), conv.reshape(groups), alg)
    return mean, info


def frechet_mean(
    points: Tensor,
    manifold: Manifold,
    weights: Tensor | None = None,
    *,
    tol: float | None = None,
    max_iter: int = 100,
    init: Tensor | None = None,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, FrechetMeanInfo]:
    """Weighted Fréchet mean of every group of points.

    Parameters
    ----------
    points : Tensor, shape (*groups, N, *point_shape)
        ``N`` points per group (for SPD: ``(*groups, N, n, n)``).
    manifold : Manifold
        The space and metric (e.g. ``SPD(metric="affine_invariant")``, ``Sphere(3)``).
    weights : Tensor, shape (N,) or (*groups, N), optional
        Non-negative weights (normalized per group); uniform by default.
    tol : float, optional
        Stop when the metric norm of the Riemannian gradient ``Σ wᵢ log_M Xᵢ`` is ``<= tol``.
        Default 1e-10 in float64 (the compute dtype), ``3·sqrt(eps)`` in lower precision.
        Bures–Wasserstein, whose lengths scale like ``√‖X‖``, tests
        ``<= tol · sqrt(Σ wᵢ tr Xᵢ)`` instead (``info.grad_norm`` stays absolute).
    max_iter : int, default 100
        Maximum iterations of iterative algorithms.
    init : Tensor, shape (*point_shape) or (*groups, *point_shape), optional
        Starting point (default: a cheap estimate suited to the space).
    return_info : bool, default False
        Also return a :class:`FrechetMeanInfo` (iterations, gradient norm, convergence).

    Returns
    -------
    mean : Tensor, shape (*groups, *point_shape)
    info : FrechetMeanInfo, only if ``return_info``

    Warns
    -----
    RuntimeWarning
        If some group did not reach ``tol`` within ``max_iter`` iterations.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats.frechet_mean import frechet_mean
    >>> m = SPD(3)
    >>> x = m.random_point(2, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> mean, info = frechet_mean(x, m, return_info=True)   # one mean per group
    >>> mean.shape, bool(info.converged.all()), bool((info.grad_norm <= 1e-10).all())
    (torch.Size([2, 3, 3]), True, True)
    """
    _check_points(points, manifold)
    if not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    nd = manifold.ndim
    point_shape = tuple(points.shape[points.dim() - nd:])
    groups = tuple(points.shape[: points.dim() - nd - 1])
    n_pts = points.shape[points.dim() - nd - 1]
    w = check_weights(weights, groups, n_pts, points)
    init = _check_init(init, points, groups, point_shape)

    # flatten groups to one dimension
    g = math.prod(groups)
    x = points.reshape((g, n_pts) + point_shape)
    wf = w.reshape(g, n_pts)
    initf = init.reshape((g,) + point_shape) if init is not None else None

    metric = manifold.metric
    if isinstance(metric, FlatMetric):
        mean = (wf.reshape(wf.shape + (1,) * nd) * x).sum(1)
        zi = torch.zeros(g, dtype=torch.long, device=x.device)
        zf = torch.zeros(g, dtype=x.dtype, device=x.device)
        it, gn, conv, alg = zi, zf, zf == 0, "Euclidean closed form"
    else:
        kind = _spd_kind(metric) if nd == 2 and type(manifold).__name__ == "SPD" else None
        if kind is not None:
            cdt = _compute_dtype(metric, x.dtype)
            tol_ = default_tol(cdt) if tol is None else float(tol)
            xc, wc = x.to(cdt), wf.to(cdt)
            ic = initf.to(cdt) if initf is not None else None
            mean, it, gn, conv, alg = _spd_mean(kind, metric, xc, wc, ic, tol_, max_iter)
            mean, gn = mean.to(points.dtype), gn.to(points.dtype)
        elif type(manifold).__name__ == "PoincareBall":
            # Same mean in the isometric Lorentz model (better conditioned steps, centroid init).
            from ..manifolds.hyperbolic_conversions import ball_to_lorentz, lorentz_to_ball
            from ..manifolds.lorentz import Lorentz

            c = float(manifold.metric.c)
            lor = Lorentz(c)
            il = ball_to_lorentz(init, c) if init is not None else None
            ml, info = frechet_mean(ball_to_lorentz(points, c), lor, weights, tol=tol, max_iter=max_iter,
                                    init=il, return_info=True)
            mean = lorentz_to_ball(ml, c)
            return (mean, info) if return_info else mean
        else:
            tol_ = default_tol(x.dtype) if tol is None else float(tol)
            xd, wd = x.detach(), wf.detach()
            start = initf.detach() if initf is not None else _generic_init(manifold, xd, wd)
            mean, it, gn, conv = _gen.karcher_mean(manifold, xd, wd, start, tol_, max_iter)
            alg = "Riemannian gradient descent (Barzilai-Borwein steps, Armijo safeguard)"
            if _needs_grad(x, wf):
                md = mean

                def adjoint(xa, wa, gbar, nx, nw):
                    return _gen.implicit_adjoint(manifold, md, xa, wa, gbar, nx, nw)
                mean = _Implicit.apply(mean, x, wf, adjoint)
        if tol is None:
            tol = tol_
    return finish_mean(mean, it, gn, conv, groups, point_shape, alg, tol, max_iter, return_info)
