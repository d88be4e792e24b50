"""An optimization problem on a manifold: cost, Riemannian gradient and Hessian by autograd."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..manifolds import Manifold

__all__ = ["Problem"]


class Problem:
    """Minimize ``cost(x)`` over ``x`` on ``manifold``.

    The Euclidean gradient comes from autograd (or ``egrad``) and is turned into the Riemannian
    gradient by the metric's ``egrad_to_rgrad``; Hessian-vector products come from autograd's
    double backward (or ``ehess``) through the metric's ``ehess_to_rhess``.

    **Batched problems.** If ``cost`` returns a tensor of shape ``(*pbatch,)`` (instead of a
    scalar), where ``pbatch`` is a prefix of the batch dimensions of ``x``, each entry is an
    independent problem: solvers keep a step size / conjugate direction / trust radius per
    problem and freeze the problems that have converged. Manifold batch dimensions beyond
    ``pbatch`` belong to one problem (a product of copies of the manifold).

    Parameters
    ----------
    manifold : Manifold
        The search space.
    cost : callable
        ``cost(x)`` with ``x`` of shape ``(*batch, *point_shape)``, returning a scalar or
        ``(*pbatch,)`` costs; must be differentiable by autograd unless ``egrad`` is given
        (and twice, for trust regions, unless ``ehess`` is given).
    egrad : callable, optional
        ``egrad(x)``: Euclidean gradient of the (summed) cost, same shape as ``x``.
    ehess : callable, optional
        ``ehess(x, u)``: Euclidean Hessian-vector product, same shape as ``x``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> p = Problem(Euclidean(2), lambda x: ((x - 1) ** 2).sum())
    >>> f, g = p.cost_grad(torch.zeros(2))
    >>> float(f), g.tolist()
    (2.0, [-2.0, -2.0])
    """

    def __init__(self, manifold: Manifold, cost: Callable[[Tensor], Tensor],
                 egrad: Callable[[Tensor], Tensor] | None = None,
                 ehess: Callable[[Tensor, Tensor], Tensor] | None = None) -> None:
        if not isinstance(manifold, Manifold):
            raise ValueError(f"manifold must be a riemlearn Manifold, got {type(manifold).__name__}")
        if not callable(cost):
            raise ValueError("cost must be callable")
        self.manifold = manifold
        self._cost = cost
        self._egrad = egrad
        self._ehess = ehess

    def cost(self, x: Tensor) -> Tensor:
        """Cost without gradient tracking; scalar or ``(*pbatch,)``."""
        with torch.no_grad():
            return self._cost(x)

    def _egrad_of(self, x: Tensor, create_graph: bool) -> tuple[Tensor, Tensor, Tensor]:
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self._cost(xg)
            if f.requires_grad:
                eg = _vjp(f, xg, torch.ones_like(f), retain=create_graph, create=create_graph)
            else:
                eg = None
        if eg is None:
            eg = torch.zeros_like(x)
        return f.detach(), eg, xg

    def cost_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Cost and Riemannian gradient at ``x``."""
        if self._egrad is not None:
            f = self.cost(x)
            eg = self._egrad(x)
        else:
            f, eg, _ = self._egrad_of(x, False)
        return f, self.manifold.egrad_to_rgrad(x, eg)

    def cost_deferred_grad(self, x: Tensor) -> tuple[Tensor, Callable[[], Tensor]]:
        """Cost at ``x`` and a function that returns the Riemannian gradient at ``x`` on demand.

        The autograd graph of the cost is kept until the function is called (at most once), so
        a line search can evaluate trial points at the price of a cost and pay for the backward
        pass only at the point it accepts.
        """
        m = self.manifold
        if self._egrad is not None:
            egrad = self._egrad
            return self.cost(x), lambda: m.egrad_to_rgrad(x, egrad(x))
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self._cost(xg)

        def grad() -> Tensor:
            eg = None
            if f.requires_grad:
                with torch.enable_grad():
                    eg = _vjp(f, xg, torch.ones_like(f), retain=False)
            if eg is None:
                eg = torch.zeros_like(x)
            return m.egrad_to_rgrad(x, eg)

        return f.detach(), grad

    def cost_grad_hess(self, x: Tensor) -> tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]:
        """Cost, Riemannian gradient and the Riemannian Hessian operator ``u -> Hess f(x)[u]``.

        The autograd graph of the gradient is built once and reused by every product.
        """
        m = self.manifold
        if self._egrad is not None and self._ehess is not None:
            f = self.cost(x)
            eg = self._egrad(x)
            ehess = self._ehess
            rhess = m.ehess_to_rhess_at(x, eg)

            def op(u: Tensor) -> Tensor:
                return rhess(ehess(x, u), u)

            return f, m.egrad_to_rgrad(x, eg), op
        f, eg, xg = self._egrad_of(x, True)
        egd = eg.detach()
        rhess = m.ehess_to_rhess_at(x, egd)

        def op_autograd(u: Tensor) -> Tensor:
            if eg.requires_grad:
                with torch.enable_grad():
                    eh = _vjp(eg, xg, u)
                if eh is None:
                    eh = torch.zeros_like(u)
            else:
                eh = torch.zeros_like(u)
            return rhess(eh, u)

        return f, m.egrad_to_rgrad(x, egd), op_autograd


def _vjp(out: Tensor, inp: Tensor, v: Tensor, retain: bool = True,
         create: bool = False) -> Tensor | None:
    """``torch.autograd.grad(out, inp, v, retain_graph=retain, create_graph=create,
    allow_unused=True)[0]``.

    Calls the autograd engine directly when it is available: the Python wrapper's argument
    checks cost about a fifth of a small Hessian-vector product and are redundant here (``v``
    has the shape, dtype and device of ``out`` by construction).
    """
    if _ENGINE is not None and v.shape == out.shape and v.dtype == out.dtype:
        try:
            return _ENGINE.run_backward((out,), (v,), retain, create, (inp,), True, False)[0]
        except TypeError:  # engine signature changed: use the public API
            pass
    return torch.autograd.grad(out, inp, grad_outputs=v, retain_graph=retain, create_graph=create,
                               allow_unused=True)[0]


_ENGINE = getattr(getattr(torch.autograd, "Variable", None), "_execution_engine", None)


def transporter(manifold: Manifold, kind: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """Vector transport ``(x, y, v) -> T_{x→y} v``: the metric's (``"metric"``) or projection
    onto ``T_y`` (``"projection"``, the cheap vector transport of embedded manifolds)."""
    if kind == "metric":
        return manifold.transport
    if kind == "projection":
        return lambda x, y, v: manifold.project_tangent(y, v)
    raise ValueError(f"transport must be 'metric' or 'projection', got {kind!r}")


def sel(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``torch.where(mask, a, b)`` for per-problem tensors; a plain branch for one problem."""
    if mask.dim() == 0:
        return a if bool(mask) else b
    return torch.where(mask, a, b)


class Geometry:
    """Per-problem inner products and broadcasting for a batch of problems ``(*pbatch,)``."""

    def __init__(self, manifold: Manifold, x: Tensor, pbatch: tuple[int, ...]) -> None:
        self.m = manifold
        self.k = len(pbatch)
        self.pbatch = pbatch
        nb = x.dim() - manifold.ndim
        if nb < self.k or tuple(x.shape[: self.k]) != tuple(pbatch):
            raise ValueError(f"cost returned shape {tuple(pbatch)}, which is not a prefix of the "
                             f"batch shape {tuple(x.shape[:nb])} of x")
        self.reduce = tuple(range(self.k, nb))

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        ip = self.m.inner(x, u, v)
        return ip.sum(dim=self.reduce) if self.reduce else ip

    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        return self.inner(x, u, u).clamp_min(0).sqrt()

    def bc(self, t: Tensor, like: Tensor) -> Tensor:
        """Reshape a per-problem tensor to broadcast against ``like``."""
        if t.dim() == 0:
            return t
        return t.reshape(tuple(t.shape) + (1,) * (like.dim() - t.dim()))

    def scale(self, t: Tensor, u: Tensor) -> Tensor:
        return self.bc(t, u) * u

    def where(self, mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
        if mask.dim() == 0:  # a single problem: no masking needed
            return a if bool(mask) else b
        return torch.where(self.bc(mask, a), a, b)
