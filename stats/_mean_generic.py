"""Karcher mean on any manifold with ``exp``/``log``, and the generic implicit backward (private).

Riemannian gradient descent on ``f(M) = ½ Σ wᵢ d²(M, Xᵢ)`` (gradient ``−Σ wᵢ log_M Xᵢ``): the first
step is the unit step (Newton's step for concentrated data), later trial steps are
Barzilai–Borwein steps (previous gradient moved by the metric's transport), all safeguarded by
Armijo backtracking per group. Points ``(G, N, *point_shape)``,
weights ``(G, N)`` summing to one.

The implicit backward solves the adjoint of the first-order condition
``F(M, X) = Σ wᵢ log_M(Xᵢ) = 0`` by conjugate gradient: ``J = D_ξ F(exp_M(P ξ), X)|_{ξ=0}``
is (minus) the Riemannian Hessian, self-adjoint in the metric; its transpose (one autograd
vector-Jacobian product per CG step, the graph of ``F`` built once) is self-adjoint in the inner
product ``⟨a, b⟩ = ⟨a, egrad_to_rgrad(M, b)⟩``. Memory does not depend on the iteration count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.tolerance import eps

__all__ = ["karcher_mean", "implicit_adjoint"]


def _expand_w(w: Tensor, ndim: int) -> Tensor:
    return w.reshape(w.shape + (1,) * ndim)


def _field(m: Manifold, mean: Tensor, x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """``(Σ wᵢ log_M Xᵢ, ½ Σ wᵢ ‖log_M Xᵢ‖²)``."""
    nd = m.ndim
    mb = mean.unsqueeze(-nd - 1).expand_as(x)
    logs = m.log(mb, x)
    sq = m.inner(mb, logs, logs)
    return (_expand_w(w, nd) * logs).sum(-nd - 1), 0.5 * (w * sq).sum(-1)


def karcher_mean(m: Manifold, x: Tensor, w: Tensor, init: Tensor, tol: float, max_iter: int,
                 reduce: Callable[..., tuple[Tensor, ...]] | None = None
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Riemannian gradient descent with Armijo steps; ``(mean, iterations, grad_norm, converged)``.

    ``reduce(*sums) -> sums``, if given, is applied to the sums over points (tangent sum and
    cost) of every pass: ``riemlearn.distributed`` passes an all-reduce over ranks holding shards.
    """
    def field(at: Tensor) -> tuple[Tensor, Tensor]:
        out = _field(m, at, x, w)
        return out if reduce is None else reduce(*out)

    mean = init
    g, cost = field(mean)
    gn2 = m.inner(mean, g, g)
    groups = w.shape[:-1]
    iters = torch.zeros(groups, dtype=torch.long, device=x.device)
    t_prev = torch.ones(groups, dtype=x.dtype, device=x.device)
    small = 64 * eps(x.dtype)
    nd = m.ndim
    for _ in range(max_iter):
        gn = gn2.clamp_min(0).sqrt()
        active = gn > tol
        if not bool(active.any()):
            break
        t = t_prev.clone()
        for _bt in range(50):
            # Re-project: long steps (BB allows t up to 1e3) amplify rounding off the manifold.
            cand = m.project_point(m.exp(mean, _expand_w(t, nd) * g))
            g2, cost2 = field(cand)
            gn2_new = m.inner(cand, g2, g2)
            ok = cost2 <= cost - 1e-4 * t * gn2
            tiny = t * gn2 <= small * (1 + cost.abs())
            ok = ok | (tiny & (gn2_new <= gn2)) | ~active
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        # Barzilai-Borwein trial step for the next iteration: t·‖Γg‖² / (‖Γg‖² − ⟨Γg, g'⟩).
        tg = _transport(m, mean, cand, g)
        a = m.inner(cand, tg, tg)
        den = a - m.inner(cand, tg, g2)
        t_bb = torch.where(den > 0, t * a / den.clamp_min(torch.finfo(x.dtype).tiny), t)
        keep = active.reshape(active.shape + (1,) * nd)
        mean = torch.where(keep, cand, mean)
        g = torch.where(keep, g2, g)
        cost = torch.where(active, cost2, cost)
        gn2 = torch.where(active, gn2_new, gn2)
        t_prev = torch.where(active, t_bb.clamp(1e-3, 1e3), t_prev)
        iters = iters + active.long()
    gn = gn2.clamp_min(0).sqrt()
    return mean, iters, gn, gn <= tol


def _transport(m: Manifold, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
    try:
        return m.transport(x, y, v)
    except NotImplementedError:
        return m.project_tangent(y, v)


def _cg_metric(apply, b: Tensor, dot, rtol: float, maxiter: int) -> Tensor:
    """CG for an operator self-adjoint and positive in the inner product ``dot`` (batched)."""
    xk = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = dot(r, r)
    stop = rs * rtol**2
    tiny = torch.finfo(b.dtype).tiny
    for _ in range(maxiter):
        active = rs > stop
        if not bool(active.any()):
            break
        ap = apply(p)
        pap = dot(p, ap)
        alpha = torch.where(active, rs / pap.clamp_min(tiny), 0.0)
        xk = xk + _bc(alpha, b) * p
        r = r - _bc(alpha, b) * ap
        rn = dot(r, r)
        beta = torch.where(active, rn / rs.clamp_min(tiny), 0.0)
        p = r + _bc(beta, b) * p
        rs = torch.where(active, rn, rs)
    return xk


def _bc(s: Tensor, like: Tensor) -> Tensor:
    return s.reshape(s.shape + (1,) * (like.dim() - s.dim()))


def implicit_adjoint(m: Manifold, mean: Tensor, x: Tensor, w: Tensor, gbar: Tensor,
                     need_x: bool, need_w: bool) -> tuple[Tensor | None, Tensor | None]:
    """Gradients w.r.t. points and weights of the mean, by the implicit function theorem."""
    nd = m.ndim
    mean = mean.detach()
    with torch.enable_grad():
        xi = torch.zeros_like(mean, requires_grad=True)
        proj = m.project_tangent(mean, xi)
        # Pᵀ Ḡ: the cotangent seen by tangent moves
        (v,) = torch.autograd.grad(proj, xi, gbar, retain_graph=True)
        moved = m.exp(mean, proj)
        f, _ = _field(m, moved, x.detach(), w.detach())

        def apply(lam: Tensor) -> Tensor:  # (−J)ᵀ λ
            (out,) = torch.autograd.grad(f, xi, lam, retain_graph=True)
            return -out

        def dot(a: Tensor, b: Tensor) -> Tensor:
            rb = m.egrad_to_rgrad(mean, b)
            return (a * rb).sum(dim=tuple(range(-nd, 0)))

        lam = _cg_metric(apply, v, dot, rtol=1e3 * eps(mean.dtype), maxiter=500)
        xr = x.detach().requires_grad_(need_x)
        wr = w.detach().requires_grad_(need_w)
        f2, _ = _field(m, mean, xr, wr)
        inputs = [t for t, need in ((xr, need_x), (wr, need_w)) if need]
        grads = torch.autograd.grad(f2, inputs, lam, allow_unused=True)
    it = iter(grads)
    gx = next(it) if need_x else None
    gw = next(it) if need_w else None
    return gx, gw
