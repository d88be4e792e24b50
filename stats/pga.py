"""Principal geodesic analysis (PGA): exact on the sphere and hyperbolic space, linearized elsewhere.

PGA (Fletcher et al., IEEE TMI 2004) looks for geodesic subspaces ``S_V = Exp_μ(span V)``
through the Fréchet mean ``μ`` that explain the data best; components are found one at a time,
``v_j`` maximizing the variance of the data projected onto ``S_{v_1..v_j}`` among unit vectors
orthogonal to ``v_1..v_{j-1}``. *Linearized* PGA replaces the projection by the projection of
``Log_μ x`` onto ``span V`` (i.e. tangent PCA); *exact* PGA (Sommer et al., "Manifold valued
statistics, exact principal geodesic analysis and the effect of linear approximations", ECCV
2010) uses the true closest point on ``S_V``.

Where it is exact (closed forms, no inner optimization): on the sphere ``S^{n-1} ⊂ R^n`` a geodesic
subspace through ``μ`` is the great subsphere ``S ∩ span(μ, V)`` and the closest point of it to
``x`` is the normalized orthogonal projection of ``x`` onto ``span(μ, V)``; on the hyperboloid
(:class:`~riemlearn.manifolds.Lorentz`, and :class:`~riemlearn.manifolds.PoincareBall` through
it) it is ``H ∩ span(μ, V)`` and the closest point is the normalized Minkowski-orthogonal
projection. In a frame that sends ``μ`` to the pole (a Householder reflection on the sphere, a
Lorentz boost on the hyperboloid) a point reads ``(t, z)`` with ``z ∈ R^m`` (``m = dim M``), and with
``β = Vᵀz``, ``r = z − Vβ``:

================  ==================================  =====================================
                  distance of the projection to μ     residual distance ``d(x, π(x))``
sphere            ``atan2(|β|, t)``                   ``atan2(|r|, √(t² + |β|²))``
hyperboloid (-1)  ``asinh(|β| / √(1 + |r|²))``        ``asinh(|r|)``
================  ==================================  =====================================

(hyperbolic distances are divided by ``√c`` for curvature ``-c``). Exact PGA optimizes each new
direction ``v_j = C a`` (``C`` an orthonormal basis of the complement of the previous directions,
``a`` on a sphere) with riemlearn's :class:`~riemlearn.optim.TrustRegions`, started from the
linearized direction. ``criterion="variance"`` maximizes the projected variance (Fletcher's and
Sommer's definition); ``criterion="residual"`` minimizes the mean squared residual (geodesic
PCA through the mean); on curved spaces the two differ. Euclidean space: both are PCA.

Every other manifold (SPD, Grassmann, Stiefel, ...) gets linearized PGA, i.e.
:class:`~riemlearn.stats.tangent_pca.TangentPCA` at the Fréchet mean; ``method="exact"`` raises
there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.base import Manifold, safe_sqrt
from ..manifolds.spectral import eigh
from ._sklearn import (
    BaseEstimator,
    TransformerMixin,
    check_is_fitted,
    check_sample_weight,
    to_output,
)
from .frechet_mean import frechet_mean
from .tangent_pca import (
    TangentPCA,
    check_points_input,
    check_scores,
    points_from_scores,
    resolve_manifold,
)

__all__ = ["PGA", "ConstantCurvatureFrame", "frame_for"]


def _norm(v: Tensor) -> Tensor:
    return safe_sqrt((v * v).sum(-1))


class ConstantCurvatureFrame:
    """Coordinates ``(t, z)`` of points of a sphere or hyperboloid in a frame centred at ``base``.

    Parameters
    ----------
    manifold : Sphere, Lorentz or PoincareBall
    base : Tensor, shape (*point_shape)

    Attributes
    ----------
    kind : str
        ``"sphere"`` or ``"hyperbolic"``.
    dim : int
        ``m``, the dimension of the manifold (length of ``z``).
    """

    def __init__(self, manifold: Manifold, base: Tensor) -> None:
        name = type(manifold).__name__
        self.manifold, self.name = manifold, name
        if name == "Euclidean":  # flat: (0, x − base) (used by barycentric subspace analysis)
            self.kind, self.scale, self.shape = "flat", 1.0, tuple(base.shape)
        elif name == "Sphere":
            self.kind, self.scale = "sphere", 1.0
            mu = base
            e0 = torch.zeros_like(mu)
            e0[0] = 1.0
            sgn = 1.0 if float(mu[0].detach()) >= 0 else -1.0
            w = mu + sgn * e0
            eye = torch.eye(mu.shape[0], dtype=mu.dtype, device=mu.device)
            self.h = eye - 2 * torch.outer(w, w) / (w @ w)  # Householder: h μ = ∓e0
            self.mu = mu
        elif name in ("Lorentz", "PoincareBall"):
            from ..manifolds.hyperbolic_conversions import ball_to_lorentz

            self.kind = "hyperbolic"
            self.c = float(manifold.metric.c)
            self.scale = 1.0 / math.sqrt(self.c)
            x = ball_to_lorentz(base, self.c) if name == "PoincareBall" else base
            y = math.sqrt(self.c) * x  # unit hyperboloid
            y0, ys = torch.sqrt(1 + (y[1:] * y[1:]).sum()), y[1:]
            n = ys.shape[0]
            b = torch.empty(n + 1, n + 1, dtype=y.dtype, device=y.device)
            b[0, 0] = y0
            b[0, 1:] = -ys
            b[1:, 0] = -ys
            b[1:, 1:] = torch.eye(n, dtype=y.dtype, device=y.device) + torch.outer(ys, ys) / (1 + y0)
            self.boost, self.lorentz_base = b, x
        else:
            raise ValueError(f"no closed-form geodesic subspaces on {manifold!r}")
        self.base = base
        if self.kind == "flat":
            self.dim = int(base.numel())
        else:
            self.dim = base.shape[-1] - 1 if name != "PoincareBall" else base.shape[-1]

    def coords(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(t, z)``: ``(*batch,)`` and ``(*batch, m)``."""
        if self.kind == "flat":
            z = (x - self.base).reshape(x.shape[: x.dim() - len(self.shape)] + (-1,))
            return z.new_zeros(z.shape[:-1]), z
        if self.kind == "sphere":
            hx = x @ self.h.mT
            return (x * self.mu).sum(-1), hx[..., 1:]
        if self.name == "PoincareBall":
            from ..manifolds.hyperbolic_conversions import ball_to_lorentz

            x = ball_to_lorentz(x, self.c)
        y = math.sqrt(self.c) * x
        z = (y @ self.boost.mT)[..., 1:]
        return torch.sqrt(1 + (z * z).sum(-1)), z

    def tangent(self, v: Tensor) -> Tensor:
        """Tangent vectors at ``base`` (ambient representation) from frame coordinates ``(*batch, m)``."""
        if self.kind == "flat":
            return v.reshape(v.shape[:-1] + self.shape)
        if self.kind == "sphere":
            return v @ self.h[1:]
        u = torch.cat((torch.zeros_like(v[..., :1]), v), dim=-1)
        j = torch.ones(u.shape[-1], dtype=u.dtype, device=u.device)
        j[0] = -1.0
        u = (u @ (j[:, None] * self.boost * j[None, :]).mT)  # boost⁻¹ = J B J
        if self.name == "Lorentz":
            return u
        x = self.lorentz_base  # differential of lorentz_to_ball: p = x_s / (1 + √c x0)
        den = 1 + math.sqrt(self.c) * x[0]
        return u[..., 1:] / den - x[1:] * math.sqrt(self.c) * u[..., :1] / den ** 2

    def log_coords(self, t: Tensor, z: Tensor) -> Tensor:
        """Frame coordinates of ``Log_base(x)``: ``z/|z| · d(base, x)``."""
        if self.kind == "flat":
            return z
        nz = _norm(z)
        d = torch.atan2(nz, t) if self.kind == "sphere" else torch.asinh(nz) * self.scale
        return z * (d / torch.where(nz > 0, nz, torch.ones_like(nz))).unsqueeze(-1)

    def subspace(self, t: Tensor, z: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Projection onto the geodesic subspace spanned by orthonormal ``v (m, k)``.

        Returns ``(d(base, π x), d(x, π x), scores)`` with scores ``(*batch, k)``, the frame
        coordinates (on ``v``) of ``Log_base(π x)``.
        """
        beta = z @ v
        r = z - beta @ v.mT
        nb, nr = _norm(beta), _norm(r)
        if self.kind == "flat":
            return nb, nr, beta
        if self.kind == "sphere":
            dproj = torch.atan2(nb, t)
            dres = torch.atan2(nr, safe_sqrt(t * t + nb * nb))
        else:
            dproj = torch.asinh(nb / torch.sqrt(1 + nr * nr)) * self.scale
            dres = torch.asinh(nr) * self.scale
        scores = beta * (dproj / torch.where(nb > 0, nb, torch.ones_like(nb))).unsqueeze(-1)
        return dproj, dres, scores


    def project(self, t: Tensor, z: Tensor, v: Tensor) -> Tensor:
        """Closest point ``π x`` of the geodesic subspace through ``base`` spanned by ``v (m, k)``.

        Sphere: the normalized ``(t, Vβ)``; hyperboloid: ``(t, Vβ)/√(t² − |β|²)`` with
        ``t² − |β|² = 1 + |r|²`` (no cancellation); flat: ``base + Vβ``.
        """
        beta = z @ v
        w = beta @ v.mT
        if self.kind == "flat":
            return self.base + w.reshape(w.shape[:-1] + self.shape)
        if self.kind == "sphere":
            p = t.unsqueeze(-1) * self.mu + w @ self.h[1:]
            return p / safe_sqrt((p * p).sum(-1)).unsqueeze(-1)
        r = z - w
        ws = w / torch.sqrt(1 + (r * r).sum(-1, keepdim=True))
        u = torch.cat((torch.sqrt(1 + (ws * ws).sum(-1, keepdim=True)), ws), dim=-1)
        j = torch.ones(u.shape[-1], dtype=u.dtype, device=u.device)
        j[0] = -1.0
        x = (u @ (j[:, None] * self.boost * j[None, :]).mT) / math.sqrt(self.c)
        if self.name == "Lorentz":
            return x
        from ..manifolds.hyperbolic_conversions import lorentz_to_ball

        return lorentz_to_ball(x, self.c)


def frame_for(manifold: Manifold, base: Tensor) -> ConstantCurvatureFrame | None:
    """A :class:`ConstantCurvatureFrame` on spheres and hyperbolic spaces, else ``None``."""
    if type(manifold).__name__ in ("Sphere", "Lorentz", "PoincareBall"):
        return ConstantCurvatureFrame(manifold, base)
    return None


def _complement(v: Tensor, m: int, like: Tensor) -> Tensor:
    """Orthonormal basis ``(m, m − j)`` of the orthogonal complement of the columns of ``v``."""
    eye = torch.eye(m, dtype=like.dtype, device=like.device)
    if v.shape[1] == 0:
        return eye
    _, vecs = eigh(eye - v @ v.mT)
    return vecs[:, v.shape[1]:]


def _fit_exact(frame: ConstantCurvatureFrame, t: Tensor, z: Tensor, w: Tensor, k: int,
               criterion: str, max_iter: int) -> Tensor:
    """Greedy exact PGA directions ``(m, k)`` in frame coordinates."""
    from ..manifolds import Sphere
    from ..optim import Problem, TrustRegions

    m_dim = z.shape[-1]
    logs = frame.log_coords(t, z)
    v = z.new_zeros(m_dim, 0)
    solver = TrustRegions(max_iterations=max_iter, min_grad_norm=1e-10, log=False)
    for _ in range(k):
        comp = _complement(v, m_dim, z)
        if comp.shape[1] == 1:
            v = torch.cat((v, comp), dim=1)
            continue
        a0 = _starts((w.sqrt()[:, None] * logs) @ comp)

        def cost(a: Tensor, comp: Tensor = comp, v: Tensor = v) -> Tensor:
            vv = torch.cat((v.expand(a.shape[:-1] + v.shape), (a @ comp.mT).unsqueeze(-1)), dim=-1)
            dproj, dres, _ = frame.subspace(t, z, vv)
            if criterion == "variance":
                return -(w * dproj * dproj).sum(-1)
            return (w * dres * dres).sum(-1)

        res = solver.solve(Problem(Sphere(comp.shape[1]), cost), a0)
        fin = cost(res.point)
        a = res.point[int(torch.argmin(fin))]
        v = torch.cat((v, (comp @ a)[:, None]), dim=1)
    return v


def _starts(lc: Tensor) -> Tensor:
    """Multi-start directions ``(S, p)``: the principal axes of the (restricted) logs and the
    bisectors of the top three (the linearized direction comes first)."""
    _, _, vt = torch.linalg.svd(lc, full_matrices=True)
    axes = vt[: min(vt.shape[0], 6)]
    extra = []
    top = min(axes.shape[0], 3)
    for i in range(top):
        for j in range(i + 1, top):
            extra += [(axes[i] + axes[j]) / math.sqrt(2), (axes[i] - axes[j]) / math.sqrt(2)]
    return torch.cat([axes] + ([torch.stack(extra)] if extra else []), dim=0)


def _flip(v: Tensor) -> Tensor:
    idx = v.abs().argmax(dim=0, keepdim=True)
    s = torch.sign(v.gather(0, idx))
    return v * torch.where(s == 0, torch.ones_like(s), s)


class PGA(TransformerMixin, BaseEstimator):
    """Principal geodesic analysis: exact on spheres and hyperbolic spaces, linearized elsewhere.

    Parameters
    ----------
    n_components : int or None, default None
        Number of principal geodesic directions (``None``: ``min(n_samples, dim M)``).
    manifold : Manifold, str or None, default None
        ``None`` is ``SPD(metric="affine_invariant")``; a string is an SPD metric name.
    method : {"auto", "exact", "linearized"}, default "auto"
        ``"auto"``: exact on :class:`~riemlearn.manifolds.Sphere`,
        :class:`~riemlearn.manifolds.Lorentz` and :class:`~riemlearn.manifolds.PoincareBall`,
        linearized (tangent PCA at the Fréchet mean) elsewhere.
    criterion : {"variance", "residual"}, default "variance"
        Exact PGA: maximize the projected variance or minimize the residual variance.
    max_iter : int, default 100
        Trust-region iterations per direction (exact PGA).

    Attributes
    ----------
    mean_ : ndarray or Tensor, shape (*point_shape)
        Fréchet mean.
    components_ : ndarray or Tensor, shape (n_components, *point_shape)
        Orthonormal tangent vectors at ``mean_``.
    projected_variance_ : ndarray or Tensor, shape (n_components,)
        ``j``-th entry: ``Σ wᵢ d²(μ, π_j xᵢ)`` for the geodesic subspace of the first ``j+1``
        components, with ``π_j`` the exact closest-point projection on spheres and hyperbolic
        spaces for both methods (so exact and linearized directions can be compared); off those
        spaces, the tangent PCA variances.
    residual_variance_ : ndarray or Tensor, shape (n_components,)
        ``Σ wᵢ d²(xᵢ, π_j xᵢ)`` (closest point of the geodesic subspace; for linearized PGA off
        spheres/hyperbolic spaces, the reconstruction ``Exp_μ`` of the projected log).
    explained_variance_ : ndarray or Tensor, shape (n_components,)
        Increments of ``projected_variance_``.
    total_variance_ : float
        Fréchet variance ``Σ wᵢ d²(μ, xᵢ)``.
    method_ : str
        ``"exact"`` or ``"linearized"``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Sphere
    >>> from riemlearn.stats.pga import PGA
    >>> g = torch.Generator().manual_seed(0)
    >>> ang = torch.rand(30, generator=g, dtype=torch.float64) * 2 - 1
    >>> X = torch.stack([torch.cos(ang), torch.sin(ang), torch.zeros(30, dtype=torch.float64)], -1)
    >>> pga = PGA(1, Sphere(3)).fit(X)
    >>> pga.method_, float(pga.residual_variance_[0]) < 1e-20
    ('exact', True)
    """

    def __init__(self, n_components: int | None = None, manifold: Any = None, method: str = "auto",
                 criterion: str = "variance", max_iter: int = 100) -> None:
        self.n_components = n_components
        self.manifold = manifold
        self.method = method
        self.criterion = criterion
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> PGA:
        """Fit on points ``X`` of shape ``(n_samples, *point_shape)``."""
        m = resolve_manifold(self.manifold)
        if self.method not in ("auto", "exact", "linearized"):
            raise ValueError(f"method must be 'auto', 'exact' or 'linearized', got {self.method!r}")
        if self.criterion not in ("variance", "residual"):
            raise ValueError(f"criterion must be 'variance' or 'residual', got {self.criterion!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")
        x, was_numpy = check_points_input(X, m)
        n_pts = x.shape[0]
        w = check_sample_weight(sample_weight, n_pts, x)
        w = torch.full((n_pts,), 1.0 / n_pts, dtype=x.dtype, device=x.device) if w is None else w / w.sum()
        closed = type(m).__name__ in ("Sphere", "Lorentz", "PoincareBall")
        if self.method == "exact" and not closed:
            raise ValueError(f"method='exact' is available on Sphere, Lorentz and PoincareBall, not {m!r}; "
                             "use method='linearized' (tangent PCA)")
        exact = closed and self.method != "linearized"
        self.manifold_ = m
        self.method_ = "exact" if exact else "linearized"
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        self._frame = None
        if not closed:
            self._tpca = TangentPCA(self.n_components, m).fit(x, sample_weight=w)
            k = self._tpca.n_components_
            mean = self._tpca._ref
            comps = self._tpca._comp_t
            proj = torch.cumsum(self._tpca.explained_variance_, 0)
            scores = self._tpca.transform(x)
            masked = (scores[:, None, :] * _mask(k, x)).reshape(n_pts * k, k)
            recon = self._tpca.inverse_transform(masked).reshape((n_pts, k) + tuple(x.shape[1:]))
            d = m.dist(recon, x.unsqueeze(1).expand_as(recon))
            resid = (w[:, None] * d * d).sum(0)
            total = torch.tensor(self._tpca.total_variance_, dtype=x.dtype, device=x.device)
        else:
            with torch.no_grad():
                mean = m.project_point(frechet_mean(x, m, w))  # guard: stay on M
            frame = ConstantCurvatureFrame(m, mean)
            t, z = frame.coords(x)
            limit = min(n_pts, frame.dim)
            k = _n_comp(self.n_components, limit)
            logs = frame.log_coords(t, z)
            total = (w * (logs * logs).sum(-1)).sum()
            if exact:
                v = _fit_exact(frame, t, z, w, k, self.criterion, int(self.max_iter)).detach()
            else:
                _, _, vt = torch.linalg.svd(w.sqrt()[:, None] * logs, full_matrices=False)
                v = vt[:k].mT
            v = _flip(v)
            proj, resid = [], []
            with torch.no_grad():
                for j in range(1, k + 1):
                    dp, dr, _ = frame.subspace(t, z, v[:, :j])
                    proj.append((w * dp * dp).sum())
                    resid.append((w * dr * dr).sum())
            proj, resid = torch.stack(proj), torch.stack(resid)
            comps = frame.tangent(v.mT)
            self._frame, self._v = frame, v
        self.n_components_ = k
        self._mean, self._comps = mean, comps
        self.mean_ = to_output(mean, was_numpy)
        self.components_ = to_output(comps, was_numpy)
        self.projected_variance_ = to_output(proj, was_numpy)
        self.residual_variance_ = to_output(resid, was_numpy)
        self.explained_variance_ = to_output(torch.diff(proj, prepend=proj.new_zeros(1)), was_numpy)
        self.total_variance_ = float(total)
        return self

    def transform(self, X: Any) -> Any:
        """Scores ``(n_samples, n_components)``.

        Exact PGA: coordinates of ``Log_μ`` of the projection onto the ``n_components``-dimensional
        geodesic subspace; linearized PGA: coordinates of the projection of ``Log_μ x``.
        """
        check_is_fitted(self, "components_")
        x, was_numpy = check_points_input(X, self.manifold_)
        if tuple(x.shape[1:]) != tuple(self._mean.shape):
            raise ValueError(f"X has points of shape {tuple(x.shape[1:])}, the estimator was fitted "
                             f"on {tuple(self._mean.shape)}")
        with torch.no_grad():
            if self._frame is None:
                return to_output(self._tpca.transform(x), was_numpy)
            x = x.to(self._mean)
            t, z = self._frame.coords(x)
            if self.method_ == "exact":
                out = self._frame.subspace(t, z, self._v)[2]
            else:
                out = self._frame.log_coords(t, z) @ self._v
        return to_output(out, was_numpy)

    def inverse_transform(self, X: Any) -> Any:
        """Points ``Exp_μ(Σ_j s_j components_j)`` from scores ``(n_samples, n_components)``."""
        check_is_fitted(self, "components_")
        s, was_numpy = check_scores(X, self.n_components_)
        pts = points_from_scores(self.manifold_, self._mean.to(s), self._comps.to(s), s)
        return to_output(pts, was_numpy)


def _mask(k: int, like: Tensor) -> Tensor:
    """``(k, k)`` lower-triangular ones: row ``j`` keeps the first ``j+1`` scores."""
    return torch.tril(torch.ones(k, k, dtype=like.dtype, device=like.device))


def _n_comp(n_components: Any, limit: int) -> int:
    from .tangent_pca import _check_n_components

    return _check_n_components(n_components, limit)
