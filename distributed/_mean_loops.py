"""The iterations of :mod:`riemlearn.stats.frechet_mean` with all-reduced sums over points (private).

Each loop is the single-process loop of ``stats/_mean_spd.py`` / ``stats/_mean_generic.py``,
step for step, built from the same pieces (whitened pass, Hessian operator, CG, frame move,
perturbative final check, tangent field); the only change is that every sum over points goes
through ``comm.sum_many`` (one all-reduce per pass). Shapes: points ``(G, N_r, *point_shape)``,
weights ``(G, N_r)`` normalized over all ranks.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.spectral import eigh, sqrtm, sqrtm_invsqrtm, sym
from ..manifolds.tolerance import eps
from ..stats import _mean_generic as _gen
from ..stats import _mean_spd as _spd
from ._comm import Comm

__all__ = ["spd_init", "aim_mean", "bw_mean", "karcher_mean"]


def spd_init(kind: str, x: Tensor, w: Tensor, comm: Comm) -> Tensor:
    """``A # H`` (affine-invariant, as ``_mean_spd.ah_init``) or the arithmetic mean (BW)."""
    if kind == "bw":
        (a,) = comm.sum_many(_spd._wsum(w, x))
        return a
    chol, info = torch.linalg.cholesky_ex(sym(x))
    bad = (info > 0).any().to(x.dtype).reshape(1)
    a, hs, bad = comm.sum_many(_spd._wsum(w, x), _spd._wsum(w, torch.cholesky_inverse(chol)), bad)
    if bool(bad.item() > 0):
        raise ValueError("points are not positive definite (Cholesky fails on some rank)")
    h = torch.linalg.inv(hs)
    ra, ria = sqrtm_invsqrtm(a)
    return sym(ra @ sqrtm(sym(ria @ h @ ria)) @ ra)


def _pass(x: Tensor, w: Tensor, ci: Tensor, comm: Comm):
    cost, grad, ll, lam, v = _spd._whitened_pass(x, w, ci)
    cost, grad = comm.sum_many(cost, grad)
    return cost, grad, ll, lam, v


class _ReducedHessian(_spd._Hessian):
    def __init__(self, v: Tensor, gw: Tensor, comm: Comm) -> None:
        super().__init__(v, gw)
        self.comm = comm

    def __call__(self, h: Tensor) -> Tensor:
        (out,) = self.comm.sum_many(super().__call__(h))
        return out


def aim_mean(x: Tensor, w: Tensor, init: Tensor | None, tol: float, max_iter: int, norm_scale: float,
             ab: tuple[float, float], comm: Comm) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_mean_spd.aim_mean`` with all-reduced cost, gradient and Hessian–vector products."""
    if init is None:
        init = spd_init("ai", x, w, comm)
    init = init.expand(x.shape[:-3] + x.shape[-2:])
    alpha, beta = ab
    c = torch.linalg.cholesky(sym(init))
    ci = torch.linalg.solve_triangular(c, torch.eye(c.shape[-1], dtype=c.dtype, device=c.device),
                                       upper=False)
    cost, grad, ll, lam, v = _pass(x, w, ci, comm)
    groups = x.shape[:-3]
    iters = torch.zeros(groups, dtype=torch.long, device=x.device)
    small_dec = 64 * eps(x.dtype)

    def gnorm(g: Tensor) -> Tensor:
        out = alpha * (g * g).sum((-2, -1))
        if beta != 0.0:
            out = out + beta * g.diagonal(dim1=-2, dim2=-1).sum(-1) ** 2
        return out.clamp_min(0).sqrt() * norm_scale

    gn = gnorm(grad)
    for _ in range(max_iter):
        active = gn > tol
        if not bool(active.any()):
            break
        g0 = gn / norm_scale
        stop = torch.maximum(0.01 * torch.clamp(g0, max=0.5) * g0,
                             torch.full_like(g0, 0.1 * tol / norm_scale))
        gw = _spd._coth_weights(ll, w)
        n = gw.shape[-1]
        (hbar,) = comm.sum_many(gw.sum((-3, -2, -1)) / (n * n))  # CG starts at G / (tr Hess / dim)
        hess = _ReducedHessian(v, gw, comm)
        d = _spd._cg(hess, grad, stop, maxiter=50, x0=grad / hbar[..., None, None])
        d = torch.where(active[..., None, None], d, torch.zeros_like(d))
        slope = (grad * d).sum((-2, -1))
        mu, u = eigh(sym(d))
        t = torch.ones_like(gn)
        iters = iters + active.long()
        small_step = bool((mu.abs().amax(-1) <= 1e-4).all())
        if small_step:
            est, err = comm.sum_many(*_spd._perturbed_grad(hess, lam, ll, w, mu, u))
            gn_est = gnorm(est)
            done = (gn_est + err * norm_scale <= tol) | ~active
            if bool(done.all()):
                c, ci = _spd._move(c, ci, mu, u, torch.where(active, t, torch.zeros_like(t)))
                gn = torch.where(active, gn_est, gn)
                break
        for _bt in range(40):
            c2, ci2 = _spd._move(c, ci, mu, u, t)
            cost2, grad2, ll2, lam2, v2 = _pass(x, w, ci2, comm)
            ok = cost2 <= cost - 1e-4 * t * slope
            tiny = slope * t <= small_dec * (1 + cost.abs())
            ok = ok | (tiny & (gnorm(grad2) <= gn)) | ~active
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        c, ci, cost, grad, ll, lam, v = c2, ci2, cost2, grad2, ll2, lam2, v2
        gn = gnorm(grad)
    return sym(c @ c.mT), iters, gn, gn <= tol


def bw_mean(x: Tensor, w: Tensor, init: Tensor | None, tol: float, max_iter: int, comm: Comm
            ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_mean_spd.bw_mean`` with the sum of square roots all-reduced."""
    (scale2,) = comm.sum_many((w * x.diagonal(dim1=-2, dim2=-1).sum(-1)).sum(-1))
    tol_t = tol * torch.sqrt(scale2)
    s = sym(spd_init("bw", x, w, comm) if init is None else init.expand(x.shape[:-3] + x.shape[-2:]))
    groups = x.shape[:-3]
    iters = torch.zeros(groups, dtype=torch.long, device=x.device)
    gn = torch.full(groups, float("inf"), dtype=x.dtype, device=x.device)
    for k in range(max_iter + 1):
        a, ai = sqrtm_invsqrtm(s)
        (r,) = comm.sum_many(_spd._wsum(w, sqrtm(sym(a.unsqueeze(-3) @ x @ a.unsqueeze(-3)))))
        t_bar = sym(ai @ r @ ai)
        gn = _spd.bw_grad_norm(s, t_bar)
        active = gn > tol_t
        if not bool(active.any()) or k == max_iter:
            break
        s = torch.where(active[..., None, None], sym(ai @ (r @ r) @ ai), s)
        iters = iters + active.long()
    return s, iters, gn, gn <= tol_t


def karcher_mean(m: Manifold, x: Tensor, w: Tensor, init: Tensor, tol: float, max_iter: int, comm: Comm
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_mean_generic.karcher_mean`` with the tangent sum ``Σ wᵢ log_M Xᵢ`` and cost all-reduced."""
    def field(mean: Tensor) -> tuple[Tensor, Tensor]:
        return comm.sum_many(*_gen._field(m, mean, x, w))

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
            cand = m.project_point(m.exp(mean, _gen._expand_w(t, nd) * g))
            g2, cost2 = field(cand)
            gn2_new = m.inner(cand, g2, g2)
            ok = cost2 <= cost - 1e-4 * t * gn2
            tiny = t * gn2 <= small * (1 + cost.abs())
            ok = ok | (tiny & (gn2_new <= gn2)) | ~active
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        tg = _gen._transport(m, mean, cand, g)
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
