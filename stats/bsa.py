"""Barycentric subspace analysis (Pennec, "Barycentric subspace analysis on manifolds",
Annals of Statistics 46(6A), 2018).

The **exponential barycentric subspace** of ``k+1`` reference points is
``EBS(x₀, …, x_k) = {x : Σ λⱼ Log_x(xⱼ) = 0 for some λ with Σ λⱼ = 1}`` (weights may be negative);
its closure is the affine span ``Aff(x₀, …, x_k)``. In Euclidean space it is the affine span of the
points; on the sphere ``S ∩ span(x₀, …, x_k)`` (a great subsphere); on the hyperboloid
``H ∩ span_Minkowski(x₀, …, x_k)``. On these three spaces the closest point of the subspace is in
closed form (normalized (Minkowski-)orthogonal projection onto the span; computed in the frame of
:class:`~riemlearn.stats.pga.ConstantCurvatureFrame` centred at ``x₀``, where the subspace is the
geodesic subspace through ``x₀`` spanned by the frame coordinates of ``x₁, …, x_k``).
On other manifolds (SPD, Grassmann, …) a point of the EBS is parametrized by its barycentric
weights, ``x(λ)`` solves ``Σ λⱼ Log_x(xⱼ) = 0`` (the fixed point ``x ← Exp_x(Σ λⱼ Log_x xⱼ)``, 15
iterations unrolled from ``x₀`` under autograd: it converges locally, exactly in one step on flat
spaces), and the projection minimizes ``d²(y, x(λ))`` over ``λ`` for all data points at once (a
batch of problems) with riemlearn's :class:`~riemlearn.optim.TrustRegions` — a local method
started from the tangent-space least-squares weights at ``x₀``, meant for data and references
within the region where that fixed point converges.

A flag ``EBS(x₀) ⊂ EBS(x₀, x₁) ⊂ … ⊂ EBS(x₀, …, x_k)`` is scored by the **accumulated unexplained
variances** ``AUV = Σ_{l=0}^{k} σ²_out(EBS(x₀..x_l))``, ``σ²_out(S) = Σ wᵢ d²(yᵢ, π_S yᵢ)``
(``l = 0`` is the variance about ``x₀``). In Euclidean space the AUV-optimal flag is PCA's.

* ``method="forward"``: ``x₀`` = Fréchet mean, then each ``x_l`` minimizes ``σ²_out(EBS(x₀..x_l))``
  with the previous points fixed. Euclidean/sphere/hyperbolic: conjugate gradient on the manifold
  from several starts ``Exp_{x₀}(s·a)`` (``a`` the principal axes of the residual logs and their
  bisectors). Other manifolds: the best of the candidates ``Exp_{x₀}(±s·e)`` along the two leading
  residual principal directions (no further refinement: every evaluation is a batch of
  projections by optimization, seconds for tens of SPD 3×3 or Grassmann(5, 2) points).
* ``method="joint"``: all ``k+1`` references minimize the AUV together (started from forward),
  on the product manifold, with :class:`~riemlearn.optim.ConjugateGradient` (Euclidean space,
  sphere and hyperbolic space only).

After fitting on the closed-form spaces the references are re-placed at ``Exp_{x₀}(s eₗ)`` (``eₗ`` the
Gram–Schmidt directions of the flag, ``s`` the RMS distance of the data to ``x₀``, at most 1): the
flag, the projections and the AUV are unchanged, and barycentric coordinates are well
conditioned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.spectral import eigh
from ._sklearn import (
    BaseEstimator,
    TransformerMixin,
    check_is_fitted,
    check_sample_weight,
    to_output,
)
from .frechet_mean import frechet_mean
from .pga import ConstantCurvatureFrame, _starts
from .tangent_pca import _check_n_components, check_points_input, check_scores, resolve_manifold

__all__ = ["BSA", "ebs_project", "ebs_residuals", "accumulated_unexplained_variance",
           "barycentric_coordinates", "exponential_barycenter"]

_CLOSED = ("Euclidean", "Sphere", "Lorentz", "PoincareBall")


def _is_closed(m: Manifold) -> bool:
    return type(m).__name__ in _CLOSED


def _nested_basis(z: Tensor) -> Tensor:
    """Orthonormal columns ``(m, k)`` spanning the nested spans of the rows of ``z (k, m)``.

    The Q factor of ``zᵀ``: its first ``j`` columns span the first ``j`` rows of ``z``.
    """
    if z.shape[0] == 0:
        return z.new_zeros(z.shape[-1], 0)
    return torch.linalg.qr(z.mT)[0]


def _frame_span(m: Manifold, refs: Tensor) -> tuple[ConstantCurvatureFrame, Tensor]:
    frame = ConstantCurvatureFrame(m, refs[0])
    _, zr = frame.coords(refs[1:])
    return frame, _nested_basis(zr)


def ebs_residuals(points: Tensor, references: Tensor, manifold: Manifold) -> Tensor:
    """Residual distances ``d(yᵢ, π_l yᵢ)`` to every level of the flag, ``(k+1, N)``.

    Row ``l`` is for ``EBS(x₀, …, x_l)`` (row 0: ``d(yᵢ, x₀)``, the point itself). Closed form on
    Euclidean space, the sphere and hyperbolic space (differentiable in the points and the
    references); projection by optimization elsewhere.
    """
    k = references.shape[0] - 1
    if _is_closed(manifold):
        frame, v = _frame_span(manifold, references)
        t, z = frame.coords(points)
        # level 0 is the point x₀ itself (on the sphere S ∩ span(x₀) would also hold −x₀)
        rows = [manifold.dist(references[0].expand_as(points), points)]
        rows += [frame.subspace(t, z, v[:, :l])[1] for l in range(1, k + 1)]
        return torch.stack(rows)
    rows = [manifold.dist(references[0].expand_as(points), points)]
    for l in range(1, k + 1):
        proj, _ = _project_generic(points, references[: l + 1], manifold)
        rows.append(manifold.dist(proj, points))
    return torch.stack(rows)


def accumulated_unexplained_variance(points: Tensor, references: Tensor, manifold: Manifold,
                                     weights: Tensor | None = None) -> Tensor:
    """``AUV = Σ_l Σᵢ wᵢ d²(yᵢ, π_l yᵢ)`` of the flag of the references (weights sum to one).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> from riemlearn.stats.bsa import accumulated_unexplained_variance
    >>> y = torch.tensor([[0.0, 1.0], [0.0, -1.0], [2.0, 0.0], [-2.0, 0.0]])
    >>> refs = torch.tensor([[0.0, 0.0], [1.0, 0.0]])   # mean, then the x axis
    >>> float(accumulated_unexplained_variance(y, refs, Euclidean(2)))  # 2.5 + 0.5
    3.0
    """
    n = points.shape[0]
    w = torch.full((n,), 1.0 / n, dtype=points.dtype, device=points.device) if weights is None else weights
    d = ebs_residuals(points, references, manifold)
    return (w * d * d).sum()


def ebs_project(points: Tensor, references: Tensor, manifold: Manifold) -> Tensor:
    """Closest points of ``EBS(x₀, …, x_k)`` (its closure) to ``points (N, *point_shape)``."""
    if _is_closed(manifold):
        frame, v = _frame_span(manifold, references)
        t, z = frame.coords(points)
        return frame.project(t, z, v)
    return _project_generic(points, references, manifold)[0]


def barycentric_coordinates(points: Tensor, references: Tensor, manifold: Manifold) -> Tensor:
    """Weights ``λ (N, k+1)``, ``Σ λⱼ = 1``, with ``Σ λⱼ Log_x(xⱼ) = 0`` at points ``x`` of the EBS.

    ``λ`` spans the (numerical) null space of the metric Gram matrix of the logs (its eigenvector
    of smallest eigenvalue). Points of the closure that are not in the EBS (barycentric weights
    at infinity) get very large weights.
    """
    n, k1 = points.shape[0], references.shape[0]
    shape = (n, k1) + tuple(points.shape[1:])
    base = points.unsqueeze(1).expand(shape)
    logs = manifold.log(base, references.unsqueeze(0).expand(shape))
    g = manifold.inner(base.unsqueeze(2).expand((n, k1, k1) + shape[2:]),
                       logs.unsqueeze(2).expand((n, k1, k1) + shape[2:]),
                       logs.unsqueeze(1).expand((n, k1, k1) + shape[2:]))
    _, vecs = eigh(0.5 * (g + g.mT))
    lam = vecs[..., 0]
    s = lam.sum(-1, keepdim=True)
    tiny = torch.finfo(lam.dtype).eps
    s = torch.where(s.abs() < tiny, torch.where(s < 0, -tiny, tiny), s)
    return lam / s


def exponential_barycenter(references: Tensor, weights: Tensor, manifold: Manifold, *,
                           n_iter: int = 30, init: Tensor | None = None) -> Tensor:
    """``x`` with ``Σ λⱼ Log_x(xⱼ) = 0`` for weights ``(..., k+1)`` summing to one (signs free).

    Fixed point ``x ← Exp_x(Σ λⱼ Log_x xⱼ)`` unrolled ``n_iter`` times from ``init`` (default
    ``x₀``); differentiable by autograd. Converges locally (exactly in one step on flat spaces).
    """
    nd = manifold.ndim
    pshape = tuple(references.shape[1:])
    bshape = tuple(weights.shape[:-1])
    k1 = references.shape[0]
    x = references[0].expand(bshape + pshape) if init is None else init
    wb = weights.reshape(weights.shape + (1,) * nd)
    for _ in range(n_iter):
        xe = x.unsqueeze(-nd - 1).expand(bshape + (k1,) + pshape)
        u = (wb * manifold.log(xe, references.expand(bshape + (k1,) + pshape))).sum(-nd - 1)
        x = manifold.exp(x, u)
    return x


def _ebs_field(m: Manifold, x: Tensor, refs: Tensor, lam: Tensor) -> Tensor:
    """``Σ λⱼ Log_x(xⱼ)`` for ``x (N, *point_shape)``, ``lam (N, k+1)``."""
    nd = m.ndim
    shape = (x.shape[0], refs.shape[0]) + tuple(refs.shape[1:])
    logs = m.log(x.unsqueeze(1).expand(shape), refs.unsqueeze(0).expand(shape))
    return (lam.reshape(lam.shape + (1,) * nd) * logs).sum(1)


def solve_barycenter(references: Tensor, weights: Tensor, manifold: Manifold, *,
                     max_iter: int = 100) -> Tensor:
    """Points ``x (N, *point_shape)`` of ``EBS(references)`` with barycentric weights ``(N, k+1)``.

    Sphere / hyperbolic / Euclidean: ``x = Exp_{x₀}(Σ aᵢ vᵢ)`` on the geodesic subspace (``vᵢ`` the
    orthonormal frame directions of the references), and ``½‖Σ λⱼ Log_x(xⱼ)‖²`` is minimized over
    ``a ∈ R^k`` per point by trust regions from the first-order guess ``a = Vᵀ Σ λⱼ Log_{x₀}(xⱼ)``
    (a root is found where the weights are in reach; far extrapolations may have none).
    Other manifolds: the fixed point of :func:`exponential_barycenter` (100 iterations).
    """
    from ..manifolds import Euclidean
    from ..optim import Problem, TrustRegions

    w = weights / weights.sum(-1, keepdim=True)
    if not _is_closed(manifold):
        with torch.no_grad():
            return exponential_barycenter(references, w, manifold, n_iter=max_iter)
    refs = references.detach()
    frame, v = _frame_span(manifold, refs)
    x0 = refs[0]
    a0 = (w @ frame.log_coords(*frame.coords(refs))) @ v
    n = w.shape[0]
    scales = (1.0, 1.5, 0.6, 2.0)  # multi-start along the first-order guess; best root kept
    starts = torch.cat([c * a0 for c in scales], 0)
    ws = w.repeat(len(scales), 1)

    def point(a: Tensor) -> Tensor:
        return manifold.exp(x0.expand((a.shape[0],) + tuple(x0.shape)), frame.tangent(a @ v.mT))

    def cost(a: Tensor) -> Tensor:
        x = point(a)
        f = _ebs_field(manifold, x, refs, ws)
        return 0.5 * manifold.inner(x, f, f)

    res = TrustRegions(max_iterations=max_iter, min_grad_norm=1e-12, log=False).solve(
        Problem(Euclidean(v.shape[1]), cost), starts)
    with torch.no_grad():
        best = cost(res.point).reshape(len(scales), n).argmin(0)
        a = res.point.reshape(len(scales), n, -1)[best, torch.arange(n, device=best.device)]
        return point(a)


def _project_generic(points: Tensor, refs: Tensor, m: Manifold, n_iter: int = 15,
                     max_iter: int = 30) -> tuple[Tensor, Tensor]:
    """Projection onto ``EBS(refs)`` by optimizing the barycentric weights per point."""
    from ..manifolds import Euclidean
    from ..optim import Problem, TrustRegions

    n, k = points.shape[0], refs.shape[0] - 1
    x0 = refs[0].detach()
    r = refs.detach()
    with torch.no_grad():  # tangent least squares at x0 for the start
        ly = m.log(x0.expand_as(points), points).reshape(n, -1)
        lr = m.log(x0.expand_as(r[1:]), r[1:])
        basis_g = m.inner(x0.expand((k, k) + tuple(x0.shape)), lr.unsqueeze(1).expand((k, k) + lr.shape[1:]),
                          lr.unsqueeze(0).expand((k, k) + lr.shape[1:]))
        rhs = m.inner(x0.expand((n, k) + tuple(x0.shape)),
                      ly.reshape((n, 1) + tuple(x0.shape)).expand((n, k) + tuple(x0.shape)),
                      lr.unsqueeze(0).expand((n, k) + lr.shape[1:]))
        mu0 = torch.linalg.lstsq(basis_g, rhs.mT).solution.mT  # (n, k)

    def lam(mu: Tensor) -> Tensor:
        return torch.cat((1 - mu.sum(-1, keepdim=True), mu), dim=-1)

    def cost(mu: Tensor) -> Tensor:
        x = exponential_barycenter(r, lam(mu), m, n_iter=n_iter)
        d = m.dist(x, points)
        return 0.5 * d * d

    res = TrustRegions(max_iterations=max_iter, min_grad_norm=1e-9, log=False).solve(
        Problem(Euclidean(k), cost), mu0)
    mu = res.point.detach()
    # envelope theorem: the value's gradient w.r.t. the references at the optimal weights
    x = exponential_barycenter(refs, lam(mu), m, n_iter=n_iter)
    return x, lam(mu)


def _fit_closed(m: Manifold, y: Tensor, w: Tensor, k: int, method: str, max_iter: int
                ) -> tuple[Tensor, dict]:
    from ..optim import ConjugateGradient, Problem

    with torch.no_grad():
        x0 = m.project_point(frechet_mean(y, m, w))  # guard: stay on M
    frame = ConstantCurvatureFrame(m, x0)
    t, z = frame.coords(y)
    logs = frame.log_coords(t, z)
    refs = [x0]
    v = z.new_zeros(frame.dim, 0)
    info: dict = {"iterations": []}
    solver = ConjugateGradient(max_iterations=max_iter, min_grad_norm=1e-10, log=False)
    for _ in range(k):
        # start points: Exp_{x0}(s·a) for the multi-start directions a of the residual logs
        comp = _complement_of(v, frame.dim, z)
        lc = (w.sqrt()[:, None] * logs) @ comp
        dirs = _starts(lc) @ comp.mT  # (S, m)
        s = float((w * (logs * logs).sum(-1)).sum().sqrt())
        s = min(max(s, 1e-3), 1.0)
        starts = m.exp(x0.expand((dirs.shape[0],) + tuple(x0.shape)), frame.tangent(s * dirs))

        def cost(xl: Tensor, v: Tensor = v) -> Tensor:
            _, zl = frame.coords(xl)  # (S, m)
            u = zl - (zl @ v) @ v.mT
            u = u - (u @ v) @ v.mT
            u = u / torch.sqrt((u * u).sum(-1, keepdim=True)).clamp_min(torch.finfo(u.dtype).tiny)
            vv = torch.cat((v.expand(u.shape[:-1] + v.shape), u.unsqueeze(-1)), dim=-1)
            _, dres, _ = frame.subspace(t, z, vv)
            return (w * dres * dres).sum(-1)

        res = solver.solve(Problem(m, cost), starts)
        best = int(torch.argmin(cost(res.point)))
        xl = res.point[best].detach()
        info["iterations"].append(int(res.iterations.reshape(-1)[best]))
        refs.append(xl)
        _, zl = frame.coords(xl)
        v = _nested_basis(torch.cat((v.mT, zl[None]), 0))
    refs_t = torch.stack(refs)
    if method == "joint" and k > 0:
        def auv(r: Tensor) -> Tensor:
            return accumulated_unexplained_variance(y, r, m, w)

        res = ConjugateGradient(max_iterations=max_iter, min_grad_norm=1e-10, log=False).solve(
            Problem(m, auv), refs_t)
        if float(auv(res.point)) <= float(auv(refs_t)):
            refs_t = res.point.detach()
        info["joint_iterations"] = int(res.iterations)
    return _canonical(m, refs_t, y, w), info


def _canonical(m: Manifold, refs: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """Same flag, well-spread references: ``x_l = Exp_{x₀}(s e_l)`` with ``e_l`` the Gram–Schmidt
    directions of ``x₁..x_l`` at ``x₀`` and ``s`` the RMS distance of the data to ``x₀`` (at most
    1). The flag, hence every projection and the AUV, is unchanged; barycentric coordinates are
    better conditioned than with references that drifted far along their subspaces."""
    with torch.no_grad():
        frame, v = _frame_span(m, refs)
        t, z = frame.coords(y)
        logs = frame.log_coords(t, z)
        s = min(max(float((w * (logs * logs).sum(-1)).sum().sqrt()), 1e-3), 1.0)
        k = v.shape[1]
        new = m.exp(refs[0].expand((k,) + tuple(refs.shape[1:])), frame.tangent(s * v.mT))
        return torch.cat((refs[:1], new), 0)


def _complement_of(v: Tensor, m: int, like: Tensor) -> Tensor:
    from .pga import _complement

    return _complement(v, m, like)


def _fit_generic(m: Manifold, y: Tensor, w: Tensor, k: int) -> tuple[Tensor, dict]:
    """Forward BSA on any manifold with exp/log: ``x₀`` = Fréchet mean; each new reference is the
    best (smallest unexplained variance, projections by optimization) of the candidates
    ``Exp_{x₀}(±s·e)`` along the two leading principal directions ``e`` of the residual logs at
    ``x₀`` (orthogonal to the previous references' logs), ``s`` the RMS distance to ``x₀`` (≤ 1).
    The position is not refined further (every cost evaluation is a batch of projections)."""
    from .tangent_pca import tangent_basis

    with torch.no_grad():
        x0 = m.project_point(frechet_mean(y, m, w))
        refs = x0[None]
        basis, coords = tangent_basis(x0, m)
        n = y.shape[0]
        logs = m.log(x0.expand_as(y), y).reshape(n, -1) @ coords.mT  # (n, d) orthonormal coords
        s = min(max(float((w * (logs * logs).sum(-1)).sum().sqrt()), 1e-3), 1.0)
        info: dict = {"candidates": []}
        for _ in range(k):
            if refs.shape[0] > 1:
                prev = m.log(x0.expand_as(refs[1:]), refs[1:]).reshape(refs.shape[0] - 1, -1) @ coords.mT
                v = _nested_basis(prev)
            else:
                v = logs.new_zeros(logs.shape[1], 0)
            lc = w.sqrt()[:, None] * (logs - (logs @ v) @ v.mT)
            _, _, vt = torch.linalg.svd(lc, full_matrices=False)
            e = vt[: min(2, vt.shape[0] - v.shape[1])]
            dirs = torch.cat((e, -e), 0) * s
            cand = m.exp(x0.expand((dirs.shape[0],) + tuple(x0.shape)), _tangent_from_coords(dirs, basis))
            vals = []
            for c in cand:
                proj, _ = _project_generic(y, torch.cat((refs, c[None]), 0), m)
                d = m.dist(proj, y)
                vals.append(float((w * d * d).sum()))
            info["candidates"].append(vals)
            refs = torch.cat((refs, cand[int(np.argmin(vals))][None]), 0)
    return refs, info


def _tangent_from_coords(c: Tensor, basis: Tensor) -> Tensor:
    return (c @ basis.reshape(basis.shape[0], -1)).reshape(c.shape[:-1] + tuple(basis.shape[1:]))


class BSA(TransformerMixin, BaseEstimator):
    """Barycentric subspace analysis: a flag of exponential barycentric subspaces.

    Parameters
    ----------
    n_components : int, default 1
        Dimension ``k`` of the largest subspace (``k+1`` reference points).
    manifold : Manifold, str or None, default None
        ``None`` is ``SPD(metric="affine_invariant")``; a string is an SPD metric name.
    method : {"forward", "joint"}, default "forward"
        Greedy forward construction, or joint minimization of the AUV over all references
        (Euclidean space, sphere and hyperbolic space).
    max_iter : int, default 200
        Iterations of each manifold optimization (Euclidean space, sphere, hyperbolic space).

    Attributes
    ----------
    references_ : ndarray or Tensor, shape (n_components + 1, *point_shape)
        ``x₀, …, x_k``; ``x₀`` is the Fréchet mean for ``method="forward"``.
    unexplained_variance_ : ndarray or Tensor, shape (n_components + 1,)
        ``σ²_out(EBS(x₀..x_l))`` for ``l = 0..k`` (weights normalized to one).
    auv_ : float
        Accumulated unexplained variance (sum of ``unexplained_variance_``).
    total_variance_ : float
        ``unexplained_variance_[0]``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Sphere
    >>> from riemlearn.stats.bsa import BSA
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(40, 4, generator=g, dtype=torch.float64) * torch.tensor([1.0, 1.0, 0.7, 0.0],
    ...                                                                         dtype=torch.float64)
    >>> X = Sphere(4).project_point(X + torch.tensor([2.0, 0, 0, 0], dtype=torch.float64))
    >>> bsa = BSA(2, Sphere(4)).fit(X)      # the data lie on the great 2-sphere x₃ = 0
    >>> bsa.references_.shape, float(bsa.unexplained_variance_[2]) < 1e-20
    (torch.Size([3, 4]), True)
    >>> bsa.transform(X).shape                 # barycentric coordinates
    torch.Size([40, 3])
    """

    def __init__(self, n_components: int = 1, manifold: Any = None, method: str = "forward",
                 max_iter: int = 200) -> None:
        self.n_components = n_components
        self.manifold = manifold
        self.method = method
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BSA:
        """Fit the references on points ``X`` of shape ``(n_samples, *point_shape)``."""
        m = resolve_manifold(self.manifold)
        if self.method not in ("forward", "joint"):
            raise ValueError(f"method must be 'forward' or 'joint', got {self.method!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")
        x, was_numpy = check_points_input(X, m, min_points=2)
        n_pts = x.shape[0]
        dim = _manifold_dim(m, x[0])
        k = _check_n_components(self.n_components, min(n_pts - 1, dim))
        w = check_sample_weight(sample_weight, n_pts, x)
        w = torch.full((n_pts,), 1.0 / n_pts, dtype=x.dtype, device=x.device) if w is None else w / w.sum()
        if _is_closed(m):
            refs, info = _fit_closed(m, x, w, k, self.method, int(self.max_iter))
        else:
            if self.method == "joint":
                raise ValueError(f"method='joint' is available on Euclidean, Sphere, Lorentz and "
                                 f"PoincareBall, not {m!r}; use method='forward'")
            refs, info = _fit_generic(m, x, w, k)
        with torch.no_grad():
            d = ebs_residuals(x, refs, m)
            unexpl = (w * d * d).sum(-1)
        self.manifold_ = m
        self.n_components_ = k
        self._refs = refs
        self.references_ = to_output(refs, was_numpy)
        self.unexplained_variance_ = to_output(unexpl, was_numpy)
        self.auv_ = float(unexpl.sum())
        self.total_variance_ = float(unexpl[0])
        self.n_iter_ = info
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        return self

    def _points(self, X: Any) -> tuple[Tensor, bool]:
        check_is_fitted(self, "references_")
        x, was_numpy = check_points_input(X, self.manifold_)
        if tuple(x.shape[1:]) != tuple(self._refs.shape[1:]):
            raise ValueError(f"X has points of shape {tuple(x.shape[1:])}, the estimator was fitted "
                             f"on {tuple(self._refs.shape[1:])}")
        return x.to(self._refs), was_numpy

    def project(self, X: Any) -> Any:
        """Closest points ``(n_samples, *point_shape)`` of ``EBS(x₀, …, x_k)``."""
        x, was_numpy = self._points(X)
        with torch.no_grad():
            return to_output(ebs_project(x, self._refs, self.manifold_), was_numpy)

    def transform(self, X: Any) -> Any:
        """Barycentric coordinates ``(n_samples, n_components + 1)`` of the projections."""
        x, was_numpy = self._points(X)
        with torch.no_grad():
            if _is_closed(self.manifold_):
                lam = barycentric_coordinates(ebs_project(x, self._refs, self.manifold_), self._refs,
                                              self.manifold_)
            else:
                _, lam = _project_generic(x, self._refs, self.manifold_)
        return to_output(lam, was_numpy)

    def inverse_transform(self, X: Any) -> Any:
        """Points with barycentric coordinates ``X (n_samples, n_components + 1)`` (the exponential
        barycentres of the references, by fixed-point iteration)."""
        check_is_fitted(self, "references_")
        lam, was_numpy = check_scores(X, self._refs.shape[0])
        lam = lam.to(self._refs)
        lam = lam / lam.sum(-1, keepdim=True)
        out = solve_barycenter(self._refs, lam, self.manifold_)
        return to_output(out, was_numpy)

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean squared distance of ``X`` to ``EBS(x₀, …, x_k)``."""
        x, _ = self._points(X)
        with torch.no_grad():
            d = self.manifold_.dist(ebs_project(x, self._refs, self.manifold_), x)
        return -float((d * d).mean())


def _manifold_dim(m: Manifold, point: Tensor) -> int:
    name = type(m).__name__
    if name == "Euclidean":
        return int(point.numel())
    if name in ("Sphere", "Lorentz"):
        return int(point.shape[-1]) - 1
    if name == "PoincareBall":
        return int(point.shape[-1])
    from .tangent_pca import tangent_basis

    return int(tangent_basis(point, m)[0].shape[0])

