"""Base classes: :class:`Metric` (the geometry) and :class:`Manifold` (the space).

A :class:`Manifold` owns what does not depend on the metric (projections, membership, random
points, validation) and holds one :class:`Metric` that owns every metric operation (inner, norm,
dist, exp, log, retract, transport, egrad_to_rgrad, ehess_to_rhess, geodesic and, where one
exists, the gyro structure). The manifold forwards those calls to its metric, so every operation
answers to the same metric. Both are immutable plain Python objects holding no tensors.

Shapes are batch-first: a point is ``(*batch, *point_shape)`` where ``point_shape`` has
``ndim`` trailing dimensions; per-point results (inner, norm, dist, belongs) are ``(*batch,)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .tolerance import as_float_dtype, atol

__all__ = ["Metric", "Manifold", "safe_sqrt", "batch_shape_of", "expand_scalar", "randn", "as_shape"]


def randn(
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Standard normal draws on the generator's device, then moved to ``device``.

    Drawing where the generator lives keeps results reproducible for a given seed whatever the
    target device.
    """
    dtype = dtype or torch.get_default_dtype()
    gdev = generator.device if generator is not None else (device or "cpu")
    out = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=gdev)
    return out.to(device) if device is not None else out


class _SafeSqrt(torch.autograd.Function):
    """``sqrt`` whose derivative at 0 is 0 instead of inf (so ``dist(x, x)`` has finite grads)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = torch.sqrt(x.clamp_min(0))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.where(y > 0, g / (2 * y).clamp_min(torch.finfo(y.dtype).tiny), 0.0)


def safe_sqrt(x: Tensor) -> Tensor:
    """Square root of a non-negative tensor with a zero (not infinite) gradient at 0."""
    return _SafeSqrt.apply(x)


def full_precision_products(dtype: torch.dtype) -> bool:
    """Are matrix products in ``dtype`` computed at its own precision? float64 always; float32
    only at ``torch.get_float32_matmul_precision() == "highest"`` (which also governs
    ``torch.backends.cuda.matmul.allow_tf32``: lower settings round through TF32/bfloat16)."""
    if dtype == torch.float64:
        return True
    return dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest"


def plain_float_tensor(x: Tensor) -> bool:
    """A plain eager float32/float64 ``torch.Tensor``: not a subclass (fake tensors, parameters)
    and not functorch-wrapped (``vmap``, ``grad``). The fast paths that read values on the host
    or write with ``out=`` (CPU ``eigh`` split, polynomial ``expm``) take only these."""
    if type(x) is not torch.Tensor or x.dtype not in (torch.float32, torch.float64):
        return False
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return not (wrapped is not None and wrapped(x))


def batch_shape_of(x: Tensor, ndim: int) -> torch.Size:
    """Leading (batch) dimensions of ``x`` for points with ``ndim`` trailing dimensions."""
    return x.shape[: x.dim() - ndim]


def expand_scalar(t: Tensor | float, ndim: int, ref: Tensor) -> Tensor:
    """Turn a per-point scalar ``(*batch,)`` (or a float) into ``(*batch, 1, ..., 1)``."""
    t = torch.as_tensor(t, dtype=ref.dtype, device=ref.device)
    return t.reshape(t.shape + (1,) * ndim)


class Metric(ABC):
    """A Riemannian metric as a set of pure functions on tensors.

    Subclasses implement at least :meth:`inner`, :meth:`exp` and :meth:`egrad_to_rgrad`;
    everything with a sensible generic form (norm, dist, geodesic, retract) is derived here and
    may be overridden by a closed form. An operation a metric does not provide raises
    :class:`NotImplementedError`.

    Attributes
    ----------
    ndim : int
        Number of trailing dimensions of a point (1 for vectors, 2 for matrices).
    """

    ndim: int = 1
    name: str = "metric"

    # -- identity: immutable value objects ---------------------------------------------------
    def _params(self) -> tuple:
        """Values that identify this metric (used by ``==``, ``hash`` and ``repr``)."""
        return ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        args = ", ".join(repr(p) for p in self._params())
        return f"{type(self).__name__}({args})"

    def _unsupported(self, op: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} does not provide {op}")

    # -- core -------------------------------------------------------------------------------
    @abstractmethod
    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Inner product ``⟨u, v⟩_x``; shape ``(*batch,)``."""

    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        """Norm ``‖u‖_x``; shape ``(*batch,)``."""
        return safe_sqrt(self.inner(x, u, u))

    @abstractmethod
    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        """Riemannian exponential map at ``x`` applied to ``u``."""

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        """Riemannian logarithm: the tangent vector at ``x`` pointing to ``y``."""
        raise self._unsupported("log")

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance; shape ``(*batch,)``."""
        return self.norm(x, self.log(x, y))

    def retract(self, x: Tensor, u: Tensor) -> Tensor:
        """A retraction (first order at least); the exponential map unless overridden."""
        return self.exp(x, u)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        """Move ``v ∈ T_x`` to ``T_y`` (parallel transport where the metric has a closed form)."""
        raise self._unsupported("transport")

    @abstractmethod
    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        """Riemannian gradient from the Euclidean gradient of an extension of the cost."""

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        """Riemannian Hessian-vector product from the Euclidean gradient and ``D egrad(x)[u]``."""
        raise self._unsupported("ehess_to_rhess")

    def ehess_to_rhess_at(self, x: Tensor, egrad: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        """``(ehess, u) -> ehess_to_rhess(x, egrad, ehess, u)`` at a fixed point and gradient.

        The solvers' Hessian operator (many products per point); a metric may precompute what
        does not depend on ``u`` (e.g. ``sym(xᵀ egrad)`` on Stiefel).
        """
        return lambda ehess, u: self.ehess_to_rhess(x, egrad, ehess, u)

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        """Point at time ``t`` on the geodesic from ``x`` (t=0) to ``y`` (t=1).

        ``t`` is a float or a tensor broadcastable to ``(*batch,)``.
        """
        return self.exp(x, expand_scalar(t, self.ndim, x) * self.log(x, y))

    # -- gyro structure (where one exists) --------------------------------------------------
    has_gyro: bool = False

    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro addition ``x ⊕ y``."""
        raise self._unsupported("gyro_add")

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        """Gyro scalar multiplication ``r ⊙ x``."""
        raise self._unsupported("gyro_scalar")

    def gyro_inv(self, x: Tensor) -> Tensor:
        """Gyro inverse ``⊖x``."""
        raise self._unsupported("gyro_inv")


class Manifold(ABC):
    """A smooth manifold with one Riemannian metric.

    Parameters
    ----------
    metric : Metric
        The metric answering every metric operation of this manifold.
    """

    ndim: int = 1
    name: str = "manifold"

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    @property
    def metric(self) -> Metric:
        """The :class:`Metric` behind every metric operation."""
        return self._metric

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Point shape if fixed by the constructor, else ``None`` (any size)."""
        return None

    # -- identity ---------------------------------------------------------------------------
    def _params(self) -> tuple:
        return (self._metric,)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        args = ", ".join(repr(p) for p in self._params())
        return f"{type(self).__name__}({args})"

    def _unsupported(self, op: str) -> NotImplementedError:
        return NotImplementedError(f"{self!r} does not provide {op}")

    # -- metric operations, all forwarded to the one metric ----------------------------------
    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Inner product ``⟨u, v⟩_x`` of the metric; shape ``(*batch,)``."""
        return self._metric.inner(x, u, v)

    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        """Norm of a tangent vector; shape ``(*batch,)``."""
        return self._metric.norm(x, u)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance; shape ``(*batch,)``."""
        return self._metric.dist(x, y)

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        """Exponential map."""
        return self._metric.exp(x, u)

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        """Logarithm map."""
        return self._metric.log(x, y)

    def retract(self, x: Tensor, u: Tensor) -> Tensor:
        """Retraction."""
        return self._metric.retract(x, u)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        """Transport of ``v ∈ T_x`` to ``T_y``."""
        return self._metric.transport(x, y, v)

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        """Riemannian gradient from a Euclidean gradient."""
        return self._metric.egrad_to_rgrad(x, egrad)

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        """Riemannian Hessian-vector product from Euclidean gradient and Hessian-vector product."""
        return self._metric.ehess_to_rhess(x, egrad, ehess, u)

    def ehess_to_rhess_at(self, x: Tensor, egrad: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        """``(ehess, u) -> ehess_to_rhess(x, egrad, ehess, u)`` (see :meth:`Metric.ehess_to_rhess_at`)."""
        if type(self).ehess_to_rhess is not Manifold.ehess_to_rhess:  # forwarded by a subclass
            return lambda ehess, u: self.ehess_to_rhess(x, egrad, ehess, u)
        return self._metric.ehess_to_rhess_at(x, egrad)

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        """Point at time ``t`` on the geodesic from ``x`` to ``y``."""
        return self._metric.geodesic(x, y, t)

    @property
    def has_gyro(self) -> bool:
        """Whether the metric carries a gyrovector structure."""
        return self._metric.has_gyro

    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro addition ``x ⊕ y``."""
        return self._metric.gyro_add(x, y)

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        """Gyro scalar multiplication ``r ⊙ x``."""
        return self._metric.gyro_scalar(r, x)

    def gyro_inv(self, x: Tensor) -> Tensor:
        """Gyro inverse ``⊖x``."""
        return self._metric.gyro_inv(x)

    # -- space-specific operations -----------------------------------------------------------
    @abstractmethod
    def project_point(self, x: Tensor) -> Tensor:
        """Closest point (or a canonical retraction) of an ambient array onto the manifold."""

    @abstractmethod
    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        """Orthogonal projection of an ambient vector onto ``T_x`` (embedding inner product)."""

    @abstractmethod
    def point_violation(self, x: Tensor) -> Tensor:
        """How far ``x`` is from the manifold, ``(*batch,)`` (0 on it); used by ``belongs``."""

    @abstractmethod
    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        """How far ``u`` is from ``T_x``, ``(*batch,)``, relative to ``‖u‖`` where that helps."""

    def violation_description(self) -> str:
        """Words naming the quantity :meth:`point_violation` measures (used in errors)."""
        return "distance from the manifold"

    @abstractmethod
    def random_point(
        self,
        *batch: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Random points of shape ``(*batch, *point_shape)``."""

    def random_tangent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Random tangent vector at ``x`` (Gaussian in the ambient space, projected)."""
        return self.project_tangent(x, randn(x.shape, generator, x.dtype, x.device))

    def zero_tangent(self, x: Tensor) -> Tensor:
        """The zero tangent vector at ``x``."""
        return torch.zeros_like(x)

    def identity(self, *batch: int, dtype: torch.dtype | None = None, device=None) -> Tensor:
        """The distinguished point (identity / origin), where the space has one."""
        raise self._unsupported("identity")

    def origin(self, *batch: int, dtype: torch.dtype | None = None, device=None) -> Tensor:
        """Alias of :meth:`identity`."""
        return self.identity(*batch, dtype=dtype, device=device)

    # -- membership and validation -----------------------------------------------------------
    def batch_shape(self, x: Tensor) -> torch.Size:
        """Batch dimensions of a point tensor."""
        return batch_shape_of(x, self.ndim)

    def shape_problem(self, x: Tensor) -> str | None:
        """Why ``x`` cannot hold points of this manifold (``None`` if its shape is fine)."""
        if not isinstance(x, Tensor):
            return f"expected a torch.Tensor, got {type(x).__name__}"
        if x.dim() < self.ndim:
            return f"has {x.dim()} dimensions, points of {self!r} need at least {self.ndim}"
        if self.shape is not None and tuple(x.shape[x.dim() - self.ndim :]) != tuple(self.shape):
            want = ", ".join(str(s) for s in self.shape)
            return f"has shape {tuple(x.shape)}, points of {self!r} have shape (*batch, {want})"
        if not x.dtype.is_floating_point and not x.dtype.is_complex:
            return f"has dtype {x.dtype}, expected a floating-point tensor"
        return None

    def belongs(self, x: Tensor, atol: float | None = None) -> Tensor:
        """Boolean tensor ``(*batch,)``: is each point on the manifold (within ``atol``)?"""
        problem = self.shape_problem(x)
        if problem is not None:
            raise ValueError(f"x {problem}")
        tol = _tol(x, atol)
        return self.point_violation(x) <= tol

    def is_tangent(self, x: Tensor, u: Tensor, atol: float | None = None) -> Tensor:
        """Boolean tensor ``(*batch,)``: is each ``u`` tangent at ``x`` (within ``atol``)?"""
        for name, t in (("x", x), ("u", u)):
            problem = self.shape_problem(t)
            if problem is not None:
                raise ValueError(f"{name} {problem}")
        tol = _tol(x, atol)
        return self.tangent_violation(x, u) <= tol

    def check_point(self, x: Tensor, name: str = "x", atol: float | None = None) -> None:
        """Raise :class:`ValueError` saying what is wrong if ``x`` is not a batch of points."""
        _check_shape_finite(self, x, name)
        viol = self.point_violation(x)
        _raise_if_violated(viol, _tol(x, atol), f"{name} is off {self!r}",
                           self.violation_description())

    def check_tangent(self, x: Tensor, u: Tensor, name: str = "u", atol: float | None = None) -> None:
        """Raise :class:`ValueError` if ``u`` is not a batch of tangent vectors at ``x``."""
        self.check_point(x, "x", atol)
        _check_shape_finite(self, u, name)
        if u.shape[u.dim() - self.ndim :] != x.shape[x.dim() - self.ndim :]:
            raise ValueError(f"{name} has shape {tuple(u.shape)}, incompatible with x {tuple(x.shape)}")
        viol = self.tangent_violation(x, u)
        _raise_if_violated(viol, _tol(x, atol), f"{name} is not tangent to {self!r} at x",
                           "distance from the tangent space")


def _tol(x: Tensor, given: float | None) -> float:
    return atol(as_float_dtype(x.dtype)) if given is None else given


def _check_shape_finite(manifold: Manifold, x: Tensor, name: str) -> None:
    problem = manifold.shape_problem(x)
    if problem is not None:
        raise ValueError(f"{name} {problem}")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf entries")


def _raise_if_violated(viol: Tensor, tol: float, head: str, what: str) -> None:
    if viol.numel() == 0:
        return
    worst = viol.detach().reshape(-1)
    if not bool(torch.isfinite(worst).all()):
        raise ValueError(f"{head}: {what} is not finite")
    k = int(torch.argmax(worst))
    value = float(worst[k])
    if value > tol:
        where = ""
        if viol.dim() > 0:
            idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(k), viol.shape))
            where = f" at batch index {idx}"
        raise ValueError(f"{head}: {what} = {value:.3g}{where} (tolerance {tol:.1g})")


def as_shape(batch: Sequence[int] | tuple) -> tuple[int, ...]:
    """Accept ``random_point(2, 3)`` and ``random_point((2, 3))`` alike."""
    if len(batch) == 1 and isinstance(batch[0], (tuple, list, torch.Size)):
        return tuple(batch[0])
    return tuple(int(b) for b in batch)
