"""k-means on any Riemannian manifold, with k-means++ seeding (scikit-learn estimator).

Lloyd's algorithm with geodesic distances: assign every point to its nearest centre, replace
each centre by the Fréchet mean of its points (:func:`~riemlearn.stats.frechet_mean.frechet_mean`,
all clusters in one batched call: points are gathered into a ``(k, max cluster size, ...)``
tensor padded with zero-weight copies), repeat until no label changes or the centres move less
than ``tol``. Seeding is k-means++ (Arthur & Vassilvitskii 2007) with squared geodesic
distances. An emptied cluster is re-seeded at the point farthest from its centre.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ._sklearn import BaseEstimator, as_tensor, check_is_fitted, check_sample_weight, to_output
from .frechet_mean import frechet_mean

__all__ = ["RiemannianKMeans"]

try:
    from sklearn.base import ClusterMixin
except ImportError:  # pragma: no cover - scikit-learn absent: BaseEstimator explains

    class ClusterMixin:  # type: ignore[no-redef]
        pass


def _resolve_manifold(manifold: Any) -> Manifold:
    if manifold is None:
        from ..manifolds import SPD

        return SPD(metric="affine_invariant")
    if isinstance(manifold, str):
        from ..manifolds import SPD

        return SPD(metric=manifold)
    if not isinstance(manifold, Manifold):
        raise ValueError(f"manifold must be a riemlearn Manifold, an SPD metric name or None, "
                         f"got {type(manifold).__name__}")
    return manifold


def _dist_matrix(m: Manifold, x: Tensor, c: Tensor) -> Tensor:
    """Geodesic distances ``(N, k)`` between points ``(N, *ps)`` and centres ``(k, *ps)``."""
    n_pts, k = x.shape[0], c.shape[0]
    ps = tuple(x.shape[1:])
    xb = x.unsqueeze(1).expand((n_pts, k) + ps)
    cb = c.unsqueeze(0).expand((n_pts, k) + ps)
    return m.dist(cb, xb)


def _kmeanspp(m: Manifold, x: Tensor, w: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """k-means++ seeding: each new centre drawn with probability ∝ wᵢ · D(xᵢ)²."""
    n_pts = x.shape[0]
    first = int(torch.multinomial(w.cpu(), 1, generator=gen))
    idx = [first]
    d2 = m.dist(x[first].expand_as(x), x) ** 2
    for _ in range(1, k):
        p = (w * d2).clamp_min(0).cpu()
        if not bool(p.sum() > 0):  # all mass on chosen centres: pick any unchosen point
            p = torch.ones(n_pts, dtype=p.dtype)
            p[idx] = 0
        nxt = int(torch.multinomial(p, 1, generator=gen))
        idx.append(nxt)
        d2 = torch.minimum(d2, m.dist(x[nxt].expand_as(x), x) ** 2)
    return x[idx].clone()


def _cluster_means(m: Manifold, x: Tensor, w: Tensor, labels: Tensor, k: int, centres: Tensor,
                   mean_tol: float | None) -> Tensor:
    """Weighted Fréchet mean of every cluster in one batched call (padded, zero weights)."""
    counts = torch.bincount(labels, minlength=k)
    size = int(counts.max())
    order = torch.argsort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(x.shape[0], device=x.device) - starts[labels[order]]
    slot = torch.zeros((k, size), dtype=torch.long, device=x.device)
    valid = torch.zeros((k, size), dtype=torch.bool, device=x.device)
    slot[labels[order], rank] = order
    valid[labels[order], rank] = True
    # padding repeats each cluster's first point with weight 0
    first = slot[:, :1].expand(k, size)
    slot = torch.where(valid, slot, first)
    pts = x[slot]
    wts = torch.where(valid, w[slot], torch.zeros((), dtype=w.dtype, device=w.device))
    nonempty = counts > 0
    wts = torch.where(nonempty[:, None], wts, torch.ones_like(wts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = frechet_mean(pts, m, wts, tol=mean_tol)
    nd = m.ndim
    return torch.where(nonempty.reshape((k,) + (1,) * nd), means, centres)


class RiemannianKMeans(ClusterMixin, BaseEstimator):
    """k-means clustering of manifold-valued data (SPD matrices by default).

    Parameters
    ----------
    n_clusters : int, default 8
    manifold : Manifold, str or None, default None
        The space and metric; a string is an SPD metric name; ``None`` is
        ``SPD(metric="affine_invariant")``.
    n_init : int, default 4
        Runs from different k-means++ seeds; the run with the lowest inertia is kept.
    max_iter : int, default 100
        Lloyd iterations per run.
    tol : float, default 1e-6
        Stop when no label changes or every centre moves less than ``tol`` (geodesic distance).
    random_state : int, numpy RandomState or None
    mean_tol : float or None, default None
        Tolerance of the Fréchet means (``None``: the library default).

    Attributes
    ----------
    cluster_centers_ : ndarray or Tensor, shape (n_clusters, *point_shape)
    labels_ : ndarray or Tensor, shape (n_samples,)
    inertia_ : float
        ``Σ wᵢ d²(xᵢ, centre of xᵢ)``.
    n_iter_ : int
        Lloyd iterations of the kept run.

    Examples
    --------
    >>> import numpy as np
    >>> from riemlearn.stats.kmeans import RiemannianKMeans
    >>> rng = np.random.default_rng(0)
    >>> a = np.stack([np.diag(rng.uniform(1, 2, 3)) for _ in range(10)])
    >>> b = np.stack([np.diag(rng.uniform(20, 40, 3)) for _ in range(10)])
    >>> km = RiemannianKMeans(n_clusters=2, random_state=0).fit(np.concatenate([a, b]))
    >>> len(set(km.labels_[:10])), len(set(km.labels_[10:])), bool(km.labels_[0] != km.labels_[10])
    (1, 1, True)
    """

    def __init__(self, n_clusters: int = 8, manifold: Any = None, n_init: int = 4, max_iter: int = 100,
                 tol: float = 1e-6, random_state: Any = None, mean_tol: float | None = None) -> None:
        self.n_clusters = n_clusters
        self.manifold = manifold
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.mean_tol = mean_tol

    # -- helpers --------------------------------------------------------------------------------
    def _check_X(self, X: Any, m: Manifold) -> tuple[Tensor, bool]:
        t, was_numpy = as_tensor(X, "X")
        if t.dim() != m.ndim + 1:
            raise ValueError(f"X must have shape (n_samples, *point_shape) with {m.ndim} point "
                             f"dimension(s), got {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError("X has no samples")
        problem = m.shape_problem(t)
        if problem is not None:
            raise ValueError(f"X {problem}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError("X contains NaN/inf")
        bad = ~m.belongs(t)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise ValueError(f"X[{i}] is not a point of {m!r} ({m.violation_description()} too large)")
        return t, was_numpy

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        if rs is None:
            return int(np.random.randint(2**31 - 1))
        return int(rs)

    # -- estimator API ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> RiemannianKMeans:
        """Cluster ``X`` of shape ``(n_samples, *point_shape)``."""
        m = _resolve_manifold(self.manifold)
        if not isinstance(self.n_clusters, (int, np.integer)) or self.n_clusters < 1:
            raise ValueError(f"n_clusters must be a positive int, got {self.n_clusters!r}")
        if not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ValueError(f"n_init must be a positive int, got {self.n_init!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")
        x, was_numpy = self._check_X(X, m)
        n_pts, k = x.shape[0], int(self.n_clusters)
        if n_pts < k:
            raise ValueError(f"n_samples={n_pts} should be >= n_clusters={k}")
        w = check_sample_weight(sample_weight, n_pts, x)
        w = torch.ones(n_pts, dtype=x.dtype, device=x.device) if w is None else w
        gen = torch.Generator().manual_seed(self._seed())
        best = None
        with torch.no_grad():
            for _ in range(int(self.n_init)):
                run = self._lloyd(m, x, w, k, gen)
                if best is None or run[2] < best[2]:
                    best = run
        centres, labels, inertia, n_iter = best
        self.manifold_ = m
        self.cluster_centers_ = to_output(centres, was_numpy)
        self.labels_ = to_output(labels, was_numpy)
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        return self

    def _lloyd(self, m: Manifold, x: Tensor, w: Tensor, k: int, gen: torch.Generator):
        centres = _kmeanspp(m, x, w, k, gen)
        labels = torch.argmin(_dist_matrix(m, x, centres), dim=1)
        n_iter = 0
        for n_iter in range(1, int(self.max_iter) + 1):  # noqa: B007
            counts = torch.bincount(labels, minlength=k)
            if bool((counts == 0).any()):  # re-seed empty clusters at the farthest points
                d = _dist_matrix(m, x, centres).gather(1, labels[:, None]).squeeze(1)
                for j in torch.nonzero(counts == 0).reshape(-1).tolist():
                    far = int(torch.argmax(d))
                    centres[j] = x[far]
                    labels[far] = j
                    d[far] = -1
            new = _cluster_means(m, x, w, labels, k, centres, self.mean_tol)
            shift = m.dist(centres, new)
            centres = new
            d = _dist_matrix(m, x, centres)
            new_labels = torch.argmin(d, dim=1)
            stable = bool((new_labels == labels).all())
            labels = new_labels
            if stable or float(shift.max()) <= self.tol:
                break
        dmin = _dist_matrix(m, x, centres).gather(1, labels[:, None]).squeeze(1)
        inertia = float((w * dmin * dmin).sum())
        return centres, labels, inertia, n_iter

    def predict(self, X: Any) -> Any:
        """Index of the nearest centre for every point ``(n_samples,)``."""
        check_is_fitted(self, "cluster_centers_")
        x, was_numpy = self._check_X(X, self.manifold_)
        c = torch.as_tensor(self.cluster_centers_, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            labels = torch.argmin(_dist_matrix(self.manifold_, x, c), dim=1)
        return to_output(labels, was_numpy)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """``fit(X)`` then return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X: Any) -> Any:
        """Geodesic distances ``(n_samples, n_clusters)`` to the centres."""
        check_is_fitted(self, "cluster_centers_")
        x, was_numpy = self._check_X(X, self.manifold_)
        c = torch.as_tensor(self.cluster_centers_, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            return to_output(_dist_matrix(self.manifold_, x, c), was_numpy)
