"""Interoperability with geoopt and pymanopt (optional extra ``riemlearn[interop]``).

* :func:`to_geoopt` wraps a riemlearn manifold as a ``geoopt.Manifold`` so geoopt's optimizers
  run on any riemlearn manifold and metric.
* :func:`from_geoopt` maps a geoopt manifold to its riemlearn equivalent where one clearly exists
  (Euclidean, Sphere, canonical Stiefel, SPD affine-invariant, Poincaré ball), else wraps it
  (:class:`GeooptAdapter`) so riemlearn's optimizers drive it with geoopt's own methods; the
  optimizers call it for geoopt ``ManifoldParameter``s.
* :func:`to_pymanopt` wraps a riemlearn manifold as a ``pymanopt`` manifold (numpy arrays in and
  out, float64), so pymanopt's solvers run on riemlearn spaces (e.g. SPD under Bures–Wasserstein).

geoopt and pymanopt are imported lazily; without them these functions raise an ImportError
saying what to install.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
from torch import Tensor

from ..manifolds import Euclidean, Manifold, Metric

__all__ = ["to_geoopt", "from_geoopt", "to_pymanopt", "GeooptAdapter", "intrinsic_dimension"]


def _require(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"this function needs the optional package {name!r}: "
                          f"pip install 'riemlearn[interop]' (or pip install {name})") from err


def _keep(t: Tensor, ndim: int, keepdim: bool) -> Tensor:
    return t.reshape(tuple(t.shape) + (1,) * ndim) if keepdim else t


_GEOOPT_CLASS: Any = None


def _geoopt_class() -> Any:
    global _GEOOPT_CLASS
    if _GEOOPT_CLASS is not None:
        return _GEOOPT_CLASS
    geoopt = _require("geoopt")

    class GeooptManifold(geoopt.Manifold):
        """A geoopt manifold delegating every operation to a riemlearn manifold."""

        reversible = False

        def __init__(self, manifold: Manifold) -> None:
            super().__init__()
            self.manifold = manifold
            self.ndim = manifold.ndim
            self.name = f"riemlearn {manifold!r}"

        def __reduce__(self) -> tuple:
            return (to_geoopt, (self.manifold,))

        def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
            v = self.manifold.point_violation(x)
            ok = bool((v <= atol).all())
            return ok, None if ok else f"violation {float(v.max()):.3g} > {atol}"

        def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
            v = self.manifold.tangent_violation(x, u)
            ok = bool((v <= atol).all())
            return ok, None if ok else f"violation {float(v.max()):.3g} > {atol}"

        def retr(self, x, u):
            return self.manifold.retract(x, u)

        def expmap(self, x, u):
            return self.manifold.exp(x, u)

        def logmap(self, x, y):
            return self.manifold.log(x, y)

        def dist(self, x, y, *, keepdim=False):
            return _keep(self.manifold.dist(x, y), self.ndim, keepdim)

        def inner(self, x, u, v=None, *, keepdim=False):
            return _keep(self.manifold.inner(x, u, u if v is None else v), self.ndim, keepdim)

        def component_inner(self, x, u, v=None):
            return self.inner(x, u, v, keepdim=True)

        def norm(self, x, u, *, keepdim=False):
            return _keep(self.manifold.norm(x, u), self.ndim, keepdim)

        def proju(self, x, u):
            return self.manifold.project_tangent(x, u)

        def projx(self, x):
            return self.manifold.project_point(x)

        def egrad2rgrad(self, x, u):
            return self.manifold.egrad_to_rgrad(x, u)

        def transp(self, x, y, v):
            return self.manifold.transport(x, y, v)

        def random(self, *size, dtype=None, device=None, **kwargs):
            shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
            batch = shape[: len(shape) - self.ndim]
            return self.manifold.random_point(*batch, dtype=dtype, device=device)

        def extra_repr(self) -> str:
            return repr(self.manifold)

    GeooptManifold.__module__ = __name__
    GeooptManifold.__qualname__ = "GeooptManifold"
    _GEOOPT_CLASS = GeooptManifold
    return GeooptManifold


def __getattr__(name: str) -> Any:
    if name == "GeooptManifold":
        return _geoopt_class()
    raise AttributeError(name)


def to_geoopt(manifold: Manifold) -> Any:
    """A ``geoopt.Manifold`` delegating to ``manifold`` (any riemlearn manifold and metric).

    Examples
    --------
    >>> import torch, geoopt
    >>> from riemlearn.manifolds import Euclidean
    >>> gm = to_geoopt(Euclidean(3))
    >>> p = geoopt.ManifoldParameter(torch.zeros(3), manifold=gm)
    >>> isinstance(gm, geoopt.Manifold)
    True
    """
    if not isinstance(manifold, Manifold):
        raise ValueError(f"manifold must be a riemlearn Manifold, got {type(manifold).__name__}")
    return _geoopt_class()(manifold)


class GeooptMetric(Metric):
    """The metric operations of a geoopt manifold, as a riemlearn :class:`Metric`."""

    name = "geoopt"

    def __init__(self, gm: Any) -> None:
        self.gm = gm
        self.ndim = int(gm.ndim)

    def _params(self) -> tuple:
        return (id(self.gm),)

    def inner(self, x, u, v):
        return self.gm.inner(x, u, v)

    def norm(self, x, u):
        return self.gm.norm(x, u)

    def exp(self, x, u):
        return self.gm.expmap(x, u)

    def log(self, x, y):
        return self.gm.logmap(x, y)

    def dist(self, x, y):
        return self.gm.dist(x, y)

    def retract(self, x, u):
        return self.gm.retr(x, u)

    def transport(self, x, y, v):
        return self.gm.transp(x, y, v)

    def egrad_to_rgrad(self, x, egrad):
        return self.gm.egrad2rgrad(x, egrad)


class GeooptAdapter(Manifold):
    """A geoopt manifold without a riemlearn equivalent, driven through its own methods."""

    name = "geoopt"

    def __init__(self, gm: Any) -> None:
        self.gm = gm
        self.ndim = int(gm.ndim)
        super().__init__(GeooptMetric(gm))

    def _params(self) -> tuple:
        return (id(self.gm),)

    def __repr__(self) -> str:
        return f"GeooptAdapter({self.gm!r})"

    def project_point(self, x):
        return self.gm.projx(x)

    def project_tangent(self, x, u):
        return self.gm.proju(x, u)

    def _size(self, t: Tensor) -> Tensor:
        dims = tuple(range(t.dim() - self.ndim, t.dim()))
        return t.pow(2).sum(dim=dims).sqrt() if dims else t.abs()

    def point_violation(self, x):
        return self._size(self.gm.projx(x) - x)

    def tangent_violation(self, x, u):
        return self._size(self.gm.proju(x, u) - u)

    def random_point(self, *batch, generator=None, dtype=None, device=None):
        raise self._unsupported("random_point (use geoopt's own sampling)")


def from_geoopt(gm: Any) -> Manifold:
    """The riemlearn manifold for a geoopt manifold (an equivalent, or a :class:`GeooptAdapter`).

    Mapped: ``Euclidean(ndim)`` → ``Euclidean(ndim=ndim)``, ``Sphere`` → ``Sphere(n)``,
    ``CanonicalStiefel`` → ``Stiefel(n, p, metric="canonical")``, ``SymmetricPositiveDefinite``
    (affine-invariant) → ``SPD(n)``, ``PoincareBall(c)`` (fixed curvature) → ``PoincareBall(c)``;
    a manifold made by :func:`to_geoopt` returns the wrapped one. Shapes that geoopt leaves
    free (n, p) are read at call time by the optimizers, so the mapping is done lazily per
    parameter: manifolds whose riemlearn class needs a size get a :class:`GeooptAdapter`
    unless the size is known.
    """
    geoopt = _require("geoopt")
    if isinstance(gm, _geoopt_class()):
        return gm.manifold
    if isinstance(gm, Manifold):
        return gm
    name = type(gm).__name__
    if name == "Euclidean":
        return Euclidean(ndim=int(gm.ndim))
    mod = importlib.import_module("riemlearn.manifolds")
    if name == "PoincareBall" and hasattr(mod, "PoincareBall"):
        c = gm.c
        if not (isinstance(c, Tensor) and c.requires_grad):
            return mod.PoincareBall(float(c))
    del geoopt
    return GeooptAdapter(gm)


def from_geoopt_param(p: Tensor) -> Manifold:
    """Map the manifold of a geoopt parameter using its shape where the riemlearn class needs it."""
    gm = p.manifold  # type: ignore[attr-defined]
    name = type(gm).__name__
    mod = importlib.import_module("riemlearn.manifolds")
    try:
        if name == "Sphere" and hasattr(mod, "Sphere") and getattr(gm, "projector", None) is None:
            return mod.Sphere(int(p.shape[-1]))
        if name == "CanonicalStiefel" and hasattr(mod, "Stiefel"):
            return mod.Stiefel(int(p.shape[-2]), int(p.shape[-1]), metric="canonical")
        if name == "SymmetricPositiveDefinite" and hasattr(mod, "SPD"):
            if str(getattr(gm, "default_metric", "AIM")).upper().endswith("AIM"):
                return mod.SPD(int(p.shape[-1]))
    except (TypeError, ValueError):
        pass
    return from_geoopt(gm)


# -- pymanopt ---------------------------------------------------------------------------------
_DIMENSIONS = {
    "Sphere": lambda m, s: s[-1] - 1,
    "Stiefel": lambda m, s: s[-2] * s[-1] - s[-1] * (s[-1] + 1) // 2,
    "Grassmann": lambda m, s: s[-1] * (s[-2] - s[-1]),
    "SPD": lambda m, s: s[-1] * (s[-1] + 1) // 2,
    "Euclidean": lambda m, s: 1,
    "PoincareBall": lambda m, s: s[-1],
    "Lorentz": lambda m, s: s[-1] - 1,
}


def intrinsic_dimension(manifold: Manifold, shape: tuple[int, ...]) -> int:
    """Dimension of ``manifold`` for points of ``shape`` (batch included, as a product).

    Uses ``manifold.dim`` if the manifold has one, else the known formula of its class.
    """
    shape = tuple(int(s) for s in shape)
    nd = manifold.ndim
    batch = math.prod(shape[: len(shape) - nd]) if len(shape) > nd else 1
    point = shape[len(shape) - nd:]
    if hasattr(manifold, "dim") and isinstance(manifold.dim, int):
        return batch * int(manifold.dim)
    name = type(manifold).__name__
    if name == "Euclidean":
        return math.prod(shape)
    if name in _DIMENSIONS:
        return batch * int(_DIMENSIONS[name](manifold, point))
    raise ValueError(f"cannot tell the dimension of {manifold!r}; pass dimension=")


def to_pymanopt(manifold: Manifold, shape: tuple[int, ...] | None = None,
                dimension: int | None = None) -> Any:
    """A ``pymanopt`` manifold delegating to ``manifold`` (numpy float64 arrays in and out).

    Parameters
    ----------
    manifold : Manifold
        Any riemlearn manifold/metric.
    shape : tuple of int, optional
        Shape of a point as pymanopt sees it (batch dimensions make a product manifold);
        defaults to ``manifold.shape``.
    dimension : int, optional
        Manifold dimension (default from :func:`intrinsic_dimension`).

    Examples
    --------
    >>> from riemlearn.manifolds import Euclidean
    >>> pm = to_pymanopt(Euclidean(3))
    >>> pm.dim, pm.random_point().shape
    (3, (3,))
    """
    pymanopt = _require("pymanopt")
    import numpy as np

    if not isinstance(manifold, Manifold):
        raise ValueError(f"manifold must be a riemlearn Manifold, got {type(manifold).__name__}")
    shape = tuple(shape) if shape is not None else manifold.shape
    if shape is None:
        raise ValueError(f"{manifold!r} has no fixed shape; pass shape=")
    dim = int(dimension) if dimension is not None else intrinsic_dimension(manifold, shape)
    batch = shape[: len(shape) - manifold.ndim]
    m = manifold

    def t(a: Any) -> Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64))

    def n(a: Tensor) -> Any:
        return a.detach().numpy()

    class RiemlearnPymanopt(pymanopt.manifolds.manifold.Manifold):
        def __init__(self) -> None:
            super().__init__(f"riemlearn {manifold!r}", dim)

        @property
        def typical_dist(self) -> float:
            return math.sqrt(dim)

        def inner_product(self, point, u, v):
            return float(m.inner(t(point), t(u), t(v)).sum())

        def norm(self, point, u):
            return math.sqrt(max(self.inner_product(point, u, u), 0.0))

        def projection(self, point, vector):
            return n(m.project_tangent(t(point), t(vector)))

        to_tangent_space = projection

        def random_point(self):
            return n(m.random_point(*batch, dtype=torch.float64))

        def random_tangent_vector(self, point):
            u = m.random_tangent(t(point))
            return n(u / m.norm(t(point), u).pow(2).sum().sqrt())

        def zero_vector(self, point):
            return np.zeros_like(np.asarray(point, dtype=np.float64))

        def dist(self, a, b):
            return float(m.dist(t(a), t(b)).pow(2).sum().sqrt())

        def euclidean_to_riemannian_gradient(self, point, egrad):
            return n(m.egrad_to_rgrad(t(point), t(egrad)))

        def euclidean_to_riemannian_hessian(self, point, egrad, ehess, u):
            return n(m.ehess_to_rhess(t(point), t(egrad), t(ehess), t(u)))

        def retraction(self, point, u):
            return n(m.retract(t(point), t(u)))

        def exp(self, point, u):
            return n(m.exp(t(point), t(u)))

        def log(self, a, b):
            return n(m.log(t(a), t(b)))

        def transport(self, a, b, u):
            return n(m.transport(t(a), t(b), t(u)))

    return RiemlearnPymanopt()
