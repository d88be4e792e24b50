"""Product manifolds ``M₁ × … × M_k`` with points stored as one flat vector ``(*batch, D)``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .base import Manifold, Metric, _check_shape_finite, _tol, safe_sqrt

__all__ = ["Product", "ProductMetric"]


class _Layout:
    """Slicing of a flat ``(*batch, D)`` tensor into factor tensors ``(*batch, *shape_i)``."""

    def __init__(self, shapes: Sequence[tuple[int, ...]]) -> None:
        self.shapes = tuple(tuple(s) for s in shapes)
        self.sizes = tuple(math.prod(s) for s in self.shapes)
        self.dim = sum(self.sizes)

    def split(self, x: Tensor) -> list[Tensor]:
        parts = torch.split(x, self.sizes, dim=-1)
        return [p.reshape(p.shape[:-1] + s) for p, s in zip(parts, self.shapes, strict=True)]

    def combine(self, parts: Sequence[Tensor]) -> Tensor:
        pairs = zip(parts, self.shapes, strict=True)
        flat = [p.reshape(p.shape[: p.dim() - len(s)] + (-1,)) for p, s in pairs]
        shape = torch.broadcast_shapes(*(f.shape[:-1] for f in flat))
        return torch.cat([f.expand(shape + f.shape[-1:]) for f in flat], dim=-1)


class ProductMetric(Metric):
    """The product metric: every operation factor by factor, inner products summed.

    Parameters
    ----------
    factors : sequence of Manifold
        Factor manifolds, each with a fixed point shape.
    """

    name = "product"
    ndim = 1

    def __init__(self, factors: Sequence[Manifold]) -> None:
        self.factors = tuple(factors)
        shapes = []
        for i, f in enumerate(self.factors):
            if not isinstance(f, Manifold):
                raise ValueError(f"factor {i} is a {type(f).__name__}, expected a Manifold")
            if f.shape is None:
                raise ValueError(f"factor {i} ({f!r}) has no fixed point shape")
            shapes.append(f.shape)
        self.layout = _Layout(shapes)

    def _params(self) -> tuple:
        return self.factors

    def _map(self, fn: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
        split = [self.layout.split(t) for t in tensors]
        return self.layout.combine([fn(f, *(s[i] for s in split)) for i, f in enumerate(self.factors)])

    def _sum(self, fn: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
        split = [self.layout.split(t) for t in tensors]
        out = [fn(f, *(s[i] for s in split)) for i, f in enumerate(self.factors)]
        return torch.stack(torch.broadcast_tensors(*out), dim=0).sum(0)

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return self._sum(lambda f, a, b, c: f.inner(a, b, c), x, u, v)

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        return self._map(lambda f, a, b: f.exp(a, b), x, u)

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        return self._map(lambda f, a, b: f.log(a, b), x, y)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return safe_sqrt(self._sum(lambda f, a, b: f.dist(a, b) ** 2, x, y))

    def retract(self, x: Tensor, u: Tensor) -> Tensor:
        return self._map(lambda f, a, b: f.retract(a, b), x, u)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return self._map(lambda f, a, b, c: f.transport(a, b, c), x, y, v)

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        return self._map(lambda f, a, b: f.egrad_to_rgrad(a, b), x, egrad)

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        return self._map(lambda f, a, b, c, d: f.ehess_to_rhess(a, b, c, d), x, egrad, ehess, u)

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        return self._map(lambda f, a, b: f.geodesic(a, b, t), x, y)

    @property
    def has_gyro(self) -> bool:  # type: ignore[override]
        return all(f.has_gyro for f in self.factors)

    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        if not self.has_gyro:
            raise self._unsupported("gyro_add")
        return self._map(lambda f, a, b: f.gyro_add(a, b), x, y)

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        if not self.has_gyro:
            raise self._unsupported("gyro_scalar")
        return self._map(lambda f, a: f.gyro_scalar(r, a), x)

    def gyro_inv(self, x: Tensor) -> Tensor:
        if not self.has_gyro:
            raise self._unsupported("gyro_inv")
        return self._map(lambda f, a: f.gyro_inv(a), x)


class Product(Manifold):
    """Cartesian product of manifolds; a point is the concatenation of flattened factor points.

    Parameters
    ----------
    *manifolds : Manifold
        Factors, each with a fixed point shape (``Sphere(3)``, ``Stiefel(4, 2)``,
        ``Euclidean(2)``; not ``Euclidean(ndim=1)``).

    Notes
    -----
    Points and tangent vectors have shape ``(*batch, D)`` with ``D = Σ prod(shape_i)``; use
    :meth:`split` / :meth:`combine` to move between the flat and per-factor forms. The metric is
    the product metric: ``dist = sqrt(Σ dist_i²)``. An operation a factor lacks raises
    ``NotImplementedError``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean, Product, Sphere
    >>> m = Product(Sphere(3), Euclidean(2))
    >>> x = m.combine([torch.tensor([0.0, 0, 1]), torch.tensor([1.0, 2.0])])
    >>> x.shape
    torch.Size([5])
    >>> [tuple(p.shape) for p in m.split(x)]
    [(3,), (2,)]
    """

    name = "product"
    ndim = 1

    def __init__(self, *manifolds: Manifold) -> None:
        if len(manifolds) == 1 and isinstance(manifolds[0], (list, tuple)):
            manifolds = tuple(manifolds[0])
        if not manifolds:
            raise ValueError("Product needs at least one factor")
        super().__init__(ProductMetric(manifolds))

    @property
    def factors(self) -> tuple[Manifold, ...]:
        return self.metric.factors  # type: ignore[attr-defined]

    def _params(self) -> tuple:
        return self.factors

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.metric.layout.dim,)  # type: ignore[attr-defined]

    def split(self, x: Tensor) -> list[Tensor]:
        """Factor tensors ``(*batch, *shape_i)`` of a flat ``(*batch, D)`` tensor."""
        return self.metric.layout.split(x)  # type: ignore[attr-defined]

    def combine(self, parts: Sequence[Tensor]) -> Tensor:
        """Flat ``(*batch, D)`` tensor from factor tensors (batch shapes broadcast)."""
        if len(parts) != len(self.factors):
            raise ValueError(f"parts has {len(parts)} tensors, {self!r} has {len(self.factors)} factors")
        return self.metric.layout.combine(parts)  # type: ignore[attr-defined]

    def _map(self, fn: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
        return self.metric._map(fn, *tensors)  # type: ignore[attr-defined]

    def project_point(self, x: Tensor) -> Tensor:
        return self._map(lambda f, a: f.project_point(a), x)

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        return self._map(lambda f, a, b: f.project_tangent(a, b), x, u)

    def _violations(self, fn: Callable[..., Tensor], *tensors: Tensor) -> list[Tensor]:
        split = [self.split(t) for t in tensors]
        return [fn(f, *(s[i] for s in split)) for i, f in enumerate(self.factors)]

    def point_violation(self, x: Tensor) -> Tensor:
        v = self._violations(lambda f, a: f.point_violation(a), x)
        return torch.stack(torch.broadcast_tensors(*v), 0).amax(0)

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        v = self._violations(lambda f, a, b: f.tangent_violation(a, b), x, u)
        return torch.stack(torch.broadcast_tensors(*v), 0).amax(0)

    def violation_description(self) -> str:
        return "largest factor violation"

    def check_point(self, x: Tensor, name: str = "x", atol: float | None = None) -> None:
        """Raise :class:`ValueError` naming the first factor whose part of ``x`` is off it."""
        _check_shape_finite(self, x, name)
        tol = _tol(x, atol)
        for i, (f, part) in enumerate(zip(self.factors, self.split(x), strict=True)):
            try:
                f.check_point(part, name=f"factor {i} ({f!r}) of {name}", atol=tol)
            except ValueError as err:
                raise ValueError(f"{name} is off {self!r}: {err}") from None

    def random_point(self, *batch: int, generator=None, dtype=None, device=None) -> Tensor:
        return self.combine(
            [f.random_point(*batch, generator=generator, dtype=dtype, device=device) for f in self.factors]
        )

    def random_tangent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        parts = self.split(x)
        pairs = zip(self.factors, parts, strict=True)
        return self.combine([f.random_tangent(p, generator=generator) for f, p in pairs])

    def identity(self, *batch: int, dtype=None, device=None) -> Tensor:
        return self.combine([f.identity(*batch, dtype=dtype, device=device) for f in self.factors])
