"""Euclidean space ``R^shape`` with the flat metric."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Manifold, Metric, as_shape, expand_scalar, randn

__all__ = ["Euclidean", "FlatMetric"]


class FlatMetric(Metric):
    """The Euclidean (Frobenius) metric on points with ``ndim`` trailing dimensions."""

    name = "flat"

    def __init__(self, ndim: int = 1) -> None:
        self.ndim = int(ndim)

    def _params(self) -> tuple:
        return (self.ndim,)

    def _sum(self, t: Tensor) -> Tensor:
        return t.sum(dim=tuple(range(-self.ndim, 0))) if self.ndim else t

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return self._sum(u * v)

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        return x + u

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        return y - x

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return self.norm(x, y - x)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return v.expand(torch.broadcast_shapes(v.shape, y.shape)).clone()

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        return egrad

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        return ehess

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        return x + expand_scalar(t, self.ndim, x) * (y - x)

    # The additive group is a (trivial) gyrogroup: gyrations are the identity.
    has_gyro = True

    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        return x + y

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        return expand_scalar(r, self.ndim, x) * x

    def gyro_inv(self, x: Tensor) -> Tensor:
        return -x


class Euclidean(Manifold):
    """Euclidean space of tensors of a given shape.

    Parameters
    ----------
    *shape : int
        Point shape; ``Euclidean(3)`` is ``R³``, ``Euclidean(2, 3)`` holds 2×3 matrices. With no
        shape, ``ndim`` trailing dimensions of any size form a point.
    ndim : int, optional
        Number of point dimensions when ``shape`` is not given (default 1; 0 makes every entry
        a point, as optimizers use for unconstrained parameters).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> m = Euclidean(3)
    >>> x, y = torch.zeros(3), torch.ones(3)
    >>> float(m.dist(x, y)) ** 2
    3.0000...
    """

    name = "euclidean"

    def __init__(self, *shape: int, ndim: int | None = None) -> None:
        self._shape = tuple(int(s) for s in shape) if shape else None
        if self._shape is not None:
            if ndim is not None and ndim != len(self._shape):
                raise ValueError(f"ndim={ndim} contradicts shape {self._shape}")
            ndim = len(self._shape)
        self.ndim = 1 if ndim is None else int(ndim)
        if self.ndim < 0:
            raise ValueError(f"ndim must be >= 0, got {ndim}")
        super().__init__(FlatMetric(self.ndim))

    def _params(self) -> tuple:
        return (self._shape, self.ndim)

    def __repr__(self) -> str:
        if self._shape is not None:
            return f"Euclidean({', '.join(map(str, self._shape))})"
        return f"Euclidean(ndim={self.ndim})"

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    def project_point(self, x: Tensor) -> Tensor:
        return x

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        return u

    def point_violation(self, x: Tensor) -> Tensor:
        bad = ~torch.isfinite(x)
        return torch.where(self.metric._sum(bad.to(x.dtype)) > 0, torch.inf, 0.0).to(x.dtype)

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        return self.point_violation(u)

    def violation_description(self) -> str:
        return "count of non-finite entries"

    def random_point(self, *batch: int, generator=None, dtype=None, device=None) -> Tensor:
        if self._shape is None:
            raise ValueError(f"{self!r} has no fixed shape; give one to draw random points")
        shape = as_shape(batch) + self._shape
        return randn(shape, generator, dtype, device)

    def identity(self, *batch: int, dtype=None, device=None) -> Tensor:
        if self._shape is None:
            raise ValueError(f"{self!r} has no fixed shape")
        return torch.zeros(as_shape(batch) + self._shape, dtype=dtype, device=device)
