"""Decentralized Riemannian conjugate gradient on the Stiefel manifold (DRCGD).

``A`` agents on a communication graph minimize ``f(X) = Σ_a f_a(X)`` over
``St(n, p) = {X : XᵀX = I}``; agent ``a`` knows only its own ``f_a`` and talks only to its
neighbours in the graph. After Chen, Ye, Wang, Huang, Dai, Tsang & Liu, "Decentralized
Riemannian Conjugate Gradient Method on the Stiefel Manifold" (ICLR 2024): every agent keeps an
iterate ``X_a`` and a conjugate direction ``η_a`` and, per iteration, with ``W`` a symmetric
doubly-stochastic mixing matrix (``t`` rounds of mixing = ``W^t``)::

    X_a ← R_{X_a}( P_{X_a}(Σ_b W_ab X_b − X_a) + α η_a )           consensus + CG step
    g_a ← P_{X_a}(y_a)                                               Riemannian gradient
    η_a ← −g_a + β_a P_{X_a}(Σ_b W_ab η_b),  β_a = ‖g_a‖² / ‖g_a^old‖²   (Fletcher–Reeves)

with ``P_X`` the projection onto the tangent space at ``X`` (the vector transport of the
embedded metric), ``R`` a retraction, and a restart ``η_a = −g_a`` whenever ``η_a`` is not a
descent direction. Differences from the paper, on purpose:

* **feasibility is enforced**: the paper's update is retraction-free (its iterates leave the
  manifold and are only shown to stay close); here every step is a retraction, so
  ``‖X_aᵀX_a − I‖`` stays at round-off (it is reported);
* **gradient tracking** (``tracking=True``, default; Chen et al. 2021's DRGTA uses the same
  tracker): ``y_a`` follows the network average of the Euclidean gradients,
  ``y_a ← Σ_b W_ab y_b + ∇f_a(X_a^new) − ∇f_a(X_a^old)``, so a *constant* step converges to a
  stationary point of the global cost (without tracking, ``y_a = ∇f_a`` and a constant step
  stops in a neighbourhood; use a decaying ``step``).

Communication: per iteration ``t`` neighbour exchanges of one packed tensor ``[X, η, y]`` with
``torch.distributed`` point-to-point ``isend``/``irecv``. Only the optional stopping test
(``tol``) and the final report use a global all-reduce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ..manifolds.stiefel import Stiefel
from ._comm import Comm

__all__ = ["ring_mixing_matrix", "decentralized_cg", "DecentralizedResult"]


def ring_mixing_matrix(n_agents: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Symmetric doubly-stochastic mixing matrix of a ring (weight 1/3 to self and each neighbour).

    Two agents: all weights 1/2; one agent: ``[[1]]``.

    Examples
    --------
    >>> ring_mixing_matrix(4)[0]
    tensor([0.3333, 0.3333, 0.0000, 0.3333], dtype=torch.float64)
    """
    a = int(n_agents)
    if a < 1:
        raise ValueError(f"n_agents must be >= 1, got {n_agents}")
    if a <= 2:
        return torch.full((a, a), 1.0 / a, dtype=dtype)
    w = torch.zeros(a, a, dtype=dtype)
    idx = torch.arange(a)
    for off in (0, 1, -1):
        w[idx, (idx + off) % a] = 1.0 / 3.0
    return w


def check_mixing_matrix(w: Tensor, n_agents: int) -> Tensor:
    """``ValueError`` unless ``w`` is a symmetric, non-negative, doubly-stochastic ``A×A`` matrix."""
    w = torch.as_tensor(w, dtype=torch.float64)
    if tuple(w.shape) != (n_agents, n_agents):
        raise ValueError(f"mixing must have shape ({n_agents}, {n_agents}) (one row per rank), "
                         f"got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("mixing must be finite and non-negative")
    if not torch.allclose(w, w.T, atol=1e-12):
        raise ValueError("mixing must be symmetric (an undirected graph)")
    if not torch.allclose(w.sum(1), torch.ones(n_agents, dtype=w.dtype), atol=1e-12):
        raise ValueError(f"mixing rows must sum to 1, got {w.sum(1).tolist()}")
    return w


@dataclass
class DecentralizedResult:
    """Outcome of :func:`decentralized_cg` on one agent.

    Attributes
    ----------
    x : Tensor, shape (n, p)
        This agent's final iterate (on the Stiefel manifold).
    iterations : int
    consensus_error : float
        ``sqrt(mean_a ‖X_a − X̄‖²)`` over all agents (``X̄`` the Euclidean average).
    grad_norm : float
        ``‖P_{X̄ₚ}(Σ_a ∇f_a(X_a))‖`` with ``X̄ₚ`` the polar projection of ``X̄`` — the global
        Riemannian gradient norm at consensus.
    feasibility : float
        ``max_a ‖X_aᵀ X_a − I‖_F``.
    converged : bool
        Whether the stopping test passed (``False`` when ``tol`` is None).
    """

    x: Tensor
    iterations: int
    consensus_error: float
    grad_norm: float
    feasibility: float
    converged: bool


class _Neighbours:
    """``W``-mixing over a process group with point-to-point messages (row ``rank`` of ``W``)."""

    def __init__(self, w: Tensor, comm: Comm) -> None:
        self.comm = comm
        row = w[comm.rank]
        self.self_weight = float(row[comm.rank])
        self.peers = [(j, float(row[j])) for j in range(w.shape[0]) if j != comm.rank and row[j] != 0]

    def _global(self, j: int) -> int:
        return dist.get_global_rank(self.comm.group, j) if self.comm.group is not dist.group.WORLD else j

    def __call__(self, t: Tensor) -> Tensor:
        if not self.peers:
            return t
        t = t.contiguous()
        bufs = [torch.empty_like(t) for _ in self.peers]
        reqs = []
        for (j, _), buf in zip(self.peers, bufs, strict=True):
            reqs.append(dist.isend(t, self._global(j), group=self.comm.group))
            reqs.append(dist.irecv(buf, self._global(j), group=self.comm.group))
        for r in reqs:
            r.wait()
        out = self.self_weight * t
        for (_, wj), buf in zip(self.peers, bufs, strict=True):
            out = out + wj * buf
        return out


def _egrad(cost: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(cost(xr), xr)
    return g


def decentralized_cg(
    cost: Callable[[Tensor], Tensor],
    x0: Tensor,
    *,
    step: float | Callable[[int], float] = 0.1,
    mixing: Tensor | None = None,
    consensus_steps: int = 1,
    tracking: bool = True,
    max_iter: int = 500,
    tol: float | None = None,
    check_every: int = 10,
    retraction: str = "polar",
    egrad: Callable[[Tensor], Tensor] | None = None,
    process_group: Any = None,
) -> DecentralizedResult:
    """Decentralized Riemannian conjugate gradient on ``St(n, p)`` (call on every rank).

    Parameters
    ----------
    cost : callable
        This agent's local cost ``f_a(X)`` for ``X (n, p)``, a scalar tensor (differentiable by
        autograd unless ``egrad`` is given). The global cost is ``Σ_a f_a``.
    x0 : Tensor, shape (n, p)
        Starting point (projected onto the manifold; usually the same on every rank).
    step : float or callable
        Step size ``α`` (or ``step(k)`` for iteration ``k``). With tracking, the method
        minimizes the network *average* ``(1/A) Σ_a f_a`` with this step; ``α ≈ 0.25 / L``, with
        ``L`` the Lipschitz constant of the average gradient, is a safe start (PCA: ``L`` = the
        largest eigenvalue of the average local covariance); too large a step oscillates.
    mixing : Tensor, shape (A, A), optional
        Symmetric doubly-stochastic mixing matrix of the graph (``A`` = number of ranks;
        ``W_ab ≠ 0`` iff ``a``, ``b`` are neighbours). Default: :func:`ring_mixing_matrix`.
    consensus_steps : int
        Mixing rounds ``t`` per iteration (``W^t``), default 1.
    tracking : bool
        Track the average gradient (exact convergence with a constant step), default True.
    max_iter : int
        Iterations.
    tol : float, optional
        Stop when consensus error and global Riemannian gradient norm are both ``<= tol``
        (tested every ``check_every`` iterations with one all-reduce).
    retraction : {"polar", "qr", "cayley"}
        Retraction of the Stiefel manifold (embedded metric).
    egrad : callable, optional
        Euclidean gradient of ``cost`` (instead of autograd).
    process_group : ProcessGroup, optional
        The agents (default: the world group; one process = one agent, plain Riemannian CG).

    Returns
    -------
    DecentralizedResult
    """
    comm = Comm(process_group)
    if not isinstance(x0, Tensor) or x0.dim() != 2 or x0.shape[0] < x0.shape[1]:
        raise ValueError(f"x0 must be a tensor (n, p) with n >= p, got "
                         f"{tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__}")
    if int(consensus_steps) < 1 or int(max_iter) < 0 or int(check_every) < 1:
        raise ValueError("consensus_steps and check_every must be >= 1 and max_iter >= 0")
    a = comm.world_size
    w = ring_mixing_matrix(a) if mixing is None else check_mixing_matrix(mixing, a)
    mix1 = _Neighbours(w, comm) if comm.active else (lambda t: t)

    def mix(t: Tensor) -> Tensor:
        for _ in range(int(consensus_steps)):
            t = mix1(t)
        return t

    man = Stiefel(x0.shape[0], x0.shape[1], metric="embedded", retraction=retraction)
    grad_fn = egrad if egrad is not None else (lambda x: _egrad(cost, x))
    step_fn = step if callable(step) else (lambda k: float(step))

    def check(x: Tensor, e: Tensor) -> bool:
        cons, gn, _ = _report(man, x[0], e[0], comm)
        return cons <= tol and gn <= tol

    x, e, it, converged = _drcg(lambda xb: grad_fn(xb[0])[None], x0.detach()[None], man, mix, step_fn,
                                tracking, int(max_iter), check if tol is not None else None, int(check_every))
    cons, gn, feas = _report(man, x[0], e[0], comm)
    return DecentralizedResult(x[0], it, cons, gn, feas, converged)


def _drcg(grad_fn, x0: Tensor, man: Stiefel, mix, step_fn, tracking: bool, max_iter: int, check,
          check_every: int) -> tuple[Tensor, Tensor, int, bool]:
    """The iteration for ``A`` agents stacked along dim 0 (``x0 (A, n, p)``; ``A = 1`` per rank);
    ``mix`` mixes a stacked ``(A, k, n, p)`` tensor over the agents."""
    x = man.project_point(x0)
    e = grad_fn(x)
    y = e.clone()
    g = man.project_tangent(x, y)
    eta = -g
    gg = (g * g).sum((-2, -1))
    it, converged = 0, False
    for k in range(max_iter):
        packed = mix(torch.stack([x, eta, y], dim=1))
        mx, meta, my = packed[:, 0], packed[:, 1], packed[:, 2]
        x_new = man.retract(x, man.project_tangent(x, mx - x) + step_fn(k) * eta)
        e_new = grad_fn(x_new)
        y = my + e_new - e if tracking else e_new
        g = man.project_tangent(x_new, y)
        gg_new = (g * g).sum((-2, -1))
        beta = gg_new / gg.clamp_min(torch.finfo(gg.dtype).tiny)
        eta = -g + beta[:, None, None] * man.project_tangent(x_new, meta)
        descent = (eta * g).sum((-2, -1)) < 0  # else restart with the negative gradient
        eta = torch.where(descent[:, None, None], eta, -g)
        x, e, gg = x_new, e_new, gg_new
        it = k + 1
        if check is not None and it % check_every == 0 and check(x, e):
            converged = True
            break
    return x, e, it, converged


def simulate(costs, x0: Tensor, mixing: Tensor, **kw):
    """Run the iteration for ``A`` agents in one process (dense mixing); returns stacked iterates."""
    a = mixing.shape[0]
    man = Stiefel(x0.shape[-2], x0.shape[-1], metric="embedded", retraction=kw.get("retraction", "polar"))
    w = mixing.to(x0.dtype)

    def grad_fn(xb):
        return torch.stack([_egrad(c, xi) for c, xi in zip(costs, xb, strict=True)])

    def mix(t):
        for _ in range(kw.get("consensus_steps", 1)):
            t = torch.einsum("ab,b...->a...", w, t)
        return t
    step = kw.get("step", 0.1)
    step_fn = step if callable(step) else (lambda k: float(step))
    return _drcg(grad_fn, x0.expand((a,) + x0.shape).clone(), man, mix, step_fn, kw.get("tracking", True),
                 kw.get("max_iter", 500), None, 1)


def _report(man: Stiefel, x: Tensor, e: Tensor, comm: Comm) -> tuple[float, float, float]:
    """Consensus error, global Riemannian gradient norm at the averaged point, feasibility."""
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    feas = (x.mT @ x - eye).norm().reshape(1)
    xs, es = comm.sum_many(x, e)
    a = comm.world_size
    xbar = xs / a
    (sq,) = comm.sum_many(((x - xbar) ** 2).sum().reshape(1))
    cons = (sq / a).sqrt()
    gn = man.project_tangent(man.project_point(xbar), es).norm()
    if comm.active:
        dist.all_reduce(feas, op=dist.ReduceOp.MAX, group=comm.group)
    return float(cons), float(gn), float(feas)
