"""Fréchet means of SPD matrices: closed forms and fast iterations (private).

Every function takes points ``X`` of shape ``(G, N, n, n)`` (``G`` groups, already flattened)
and normalized weights ``w`` of shape ``(G, N)`` and works in the dtype of ``X``.

* log-Euclidean: ``exp(Σ wᵢ log Xᵢ)`` (closed form).
* log-Cholesky (Lin 2019): Cholesky factors ``Lᵢ``; the mean's factor has strictly lower part
  ``Σ wᵢ ⌊Lᵢ⌋`` and diagonal ``exp(Σ wᵢ log diag Lᵢ)`` (closed form).
* affine-invariant: a Riemannian Newton iteration in the whitened frame of the current
  estimate ``M = C Cᵀ``. One ``eigh`` per matrix per iteration, of ``Yᵢ = C⁻¹ Xᵢ C⁻ᵀ``, gives
  the gradient ``G = Σ wᵢ log Yᵢ`` and the exact Hessian of ``½ Σ wᵢ d²(M, Xᵢ)``::

      Hess[H] = Σ wᵢ Vᵢ (g(Λᵢ) ∘ (Vᵢᵀ H Vᵢ)) Vᵢᵀ,   g_jk = δ coth δ,  δ = (l_j − l_k)/2

  (the Jacobi fields of a symmetric space; ``g ≥ 1`` so the Hessian is ≥ I). The Newton
  direction comes from a few CG steps, the step length from Armijo backtracking on the variance
  (globally convergent: the cost is geodesically strongly convex), and the update
  ``C ← C U diag(e^{tμ/2})`` with ``U diag(μ) Uᵀ = D`` needs no square root of ``M``.
  The plain unit-step fixed point diverges on widely spread data; this does not.
* Bures–Wasserstein: the fixed point ``S ← S^{-1/2} (Σ wᵢ (S^{1/2} Xᵢ S^{1/2})^{1/2})² S^{-1/2}``
  of Álvarez-Esteban, del Barrio, Cuesta-Albertos & Matrán (2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..manifolds.spectral import eigh, logm, sqrtm, sqrtm_invsqrtm, sym
from ..manifolds.spectral_fns import Log
from ..manifolds.tolerance import eps, tie_threshold

__all__ = ["le_mean", "lc_mean", "AIMState", "aim_mean", "aim_adjoint", "bw_mean", "bw_grad_norm"]


def _wsum(w: Tensor, x: Tensor) -> Tensor:
    """``Σ_i w_i x_i`` over dim -3 for ``w (G, N)``, ``x (G, N, n, n)``."""
    return (w[..., None, None] * x).sum(-3)


# -- closed forms -------------------------------------------------------------------------------
def le_mean(x: Tensor, w: Tensor) -> Tensor:
    """Log-Euclidean mean ``exp(Σ wᵢ log Xᵢ)`` (differentiable by autograd)."""
    from ..manifolds.spectral import expm

    return expm(_wsum(w, logm(x)))


def lc_mean(x: Tensor, w: Tensor) -> Tensor:
    """Log-Cholesky mean (Lin 2019, Prop. 9): closed form on the Cholesky factors."""
    c = torch.linalg.cholesky(sym(x))
    strict = _wsum(w, c.tril(-1))
    logd = (w[..., None] * torch.log(c.diagonal(dim1=-2, dim2=-1))).sum(-2)
    lm = strict + torch.diag_embed(torch.exp(logd))
    return lm @ lm.mT


# -- affine-invariant ------------------------------------------------------------------------------
@dataclass
class AIMState:
    """The whitened frame at the final estimate (all that the implicit backward needs)."""

    c: Tensor  # (G, n, n), M = C Cᵀ
    ci: Tensor  # (G, n, n), C⁻¹
    lam: Tensor  # (G, N, n) eigenvalues of Yᵢ
    vec: Tensor  # (G, N, n, n) eigenvectors of Yᵢ


def _whitened_pass(x: Tensor, w: Tensor, ci: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Eigen-decompose ``Yᵢ = C⁻¹ Xᵢ C⁻ᵀ``; return cost, gradient ``G``, ``log λ``, ``λ``, ``V``."""
    y = ci.unsqueeze(-3) @ x @ ci.mT.unsqueeze(-3)
    lam, v = eigh(sym(y))
    lam = lam.clamp_min(torch.finfo(lam.dtype).tiny)
    ll = torch.log(lam)
    cost = 0.5 * (w * (ll * ll).sum(-1)).sum(-1)
    grad = ((v * (w[..., None] * ll).unsqueeze(-2)) @ v.mT).sum(-3)
    return cost, sym(grad), ll, lam, v


def _coth_weights(ll: Tensor, w: Tensor) -> Tensor:
    """``wᵢ · δ coth δ`` with ``δ = (l_j − l_k)/2``; shape (G, N, n, n)."""
    d = (ll.unsqueeze(-1) - ll.unsqueeze(-2)) * 0.5
    small = d.abs() < 1e-4
    ds = torch.where(small, torch.ones_like(d), d)
    g = torch.where(small, 1.0 + d * d / 3.0, ds / torch.tanh(ds))
    return w[..., None, None] * g


def _hess_apply(h: Tensor, v: Tensor, gw: Tensor) -> Tensor:
    """``Σ wᵢ Vᵢ (gᵢ ∘ Vᵢᵀ H Vᵢ) Vᵢᵀ`` for ``H (G, n, n)``."""
    ht = v.mT @ h.unsqueeze(-3) @ v
    return sym((v @ (gw * ht) @ v.mT).sum(-3))


def _cg(apply, b: Tensor, rtol: Tensor, maxiter: int) -> Tensor:
    """Batched conjugate gradient for SPD ``apply`` (Frobenius inner product), per-group ``rtol``."""
    xk = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum((-2, -1))
    stop = rs * rtol**2
    tiny = torch.finfo(b.dtype).tiny
    for _ in range(maxiter):
        active = rs > stop
        if not bool(active.any()):
            break
        ap = apply(p)
        alpha = torch.where(active, rs / (p * ap).sum((-2, -1)).clamp_min(tiny), 0.0)
        xk = xk + alpha[..., None, None] * p
        r = r - alpha[..., None, None] * ap
        rn = (r * r).sum((-2, -1))
        beta = torch.where(active, rn / rs.clamp_min(tiny), 0.0)
        p = r + beta[..., None, None] * p
        rs = torch.where(active, rn, rs)
    return xk


def _move(c: Tensor, ci: Tensor, d: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Frame of ``M' = C exp(t D) Cᵀ``: ``C' = C U e^{tμ/2}``, ``C'⁻¹ = e^{-tμ/2} Uᵀ C⁻¹``."""
    mu, u = eigh(sym(d))
    e = torch.exp(0.5 * t[..., None] * mu)
    return (c @ u) * e.unsqueeze(-2), (u.mT @ ci) / e.unsqueeze(-1)


def aim_mean(
    x: Tensor, w: Tensor, init: Tensor, tol: float, max_iter: int, norm_scale: float = 1.0,
    ab: tuple[float, float] = (1.0, 0.0),
) -> tuple[Tensor, Tensor, Tensor, Tensor, AIMState]:
    """Affine-invariant Karcher mean by Riemannian Newton–CG with Armijo steps.

    Returns ``(mean, iterations, grad_norm, converged, state)``; ``grad_norm`` is the metric norm
    ``sqrt(α‖G‖² + β tr(G)²) · norm_scale`` of the Riemannian gradient at the returned mean.
    """
    alpha, beta = ab
    c = torch.linalg.cholesky(sym(init))
    ci = torch.linalg.solve_triangular(c, torch.eye(c.shape[-1], dtype=c.dtype, device=c.device),
                                       upper=False)
    cost, grad, ll, lam, v = _whitened_pass(x, w, ci)
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
        gw = _coth_weights(ll, w)
        rtol = torch.clamp(gn / norm_scale, max=0.5)
        d = _cg(lambda h, v=v, gw=gw: _hess_apply(h, v, gw), grad, rtol, maxiter=50)
        d = torch.where(active[..., None, None], d, torch.zeros_like(d))
        slope = (grad * d).sum((-2, -1))  # −(directional derivative of the cost)
        t = torch.ones_like(gn)
        for _bt in range(40):
            c2, ci2 = _move(c, ci, d, t)
            cost2, grad2, ll2, lam2, v2 = _whitened_pass(x, w, ci2)
            ok = cost2 <= cost - 1e-4 * t * slope
            # Below round-off of the cost, Armijo cannot decide: accept a step that lowers ‖G‖.
            tiny = slope * t <= small_dec * (1 + cost.abs())
            ok = ok | (tiny & (gnorm(grad2) <= gn)) | ~active
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        c, ci, cost, grad, ll, lam, v = c2, ci2, cost2, grad2, ll2, lam2, v2
        iters = iters + active.long()
        gn = gnorm(grad)
    mean = sym(c @ c.mT)
    return mean, iters, gn, gn <= tol, AIMState(c, ci, lam, v)


def aim_adjoint(state: AIMState, x: Tensor, w: Tensor, gbar: Tensor, need_x: bool, need_w: bool):
    """Implicit-function backward of the affine-invariant mean (closed-form Hessian + CG).

    At the mean ``M = C Cᵀ`` the first-order condition is ``Σ wᵢ log Yᵢ = 0`` with
    ``Yᵢ = C⁻¹ Xᵢ C⁻ᵀ``. Parametrizing ``M(H) = C e^{H} Cᵀ``, ``dM = C dH Cᵀ`` and
    ``dH = Hess⁻¹ Σ wᵢ Dlog(Yᵢ)[C⁻¹ dXᵢ C⁻ᵀ] + Hess⁻¹ Σ dwᵢ log Yᵢ``. The adjoint solves
    ``Hess λ = sym(Cᵀ Ḡ C)`` once, then ``X̄ᵢ = wᵢ C⁻ᵀ Dlog(Yᵢ)[λ] C⁻¹``, ``w̄ᵢ = ⟨λ, log Yᵢ⟩``.
    """
    c, ci, lam, v = state.c, state.ci, state.lam, state.vec
    ll = torch.log(lam)
    rhs = sym(c.mT @ gbar @ c)
    gw = _coth_weights(ll, w)
    lamb = _cg(lambda h: _hess_apply(h, v, gw), rhs,
               torch.full(rhs.shape[:-2], 1e3 * eps(rhs.dtype), dtype=rhs.dtype, device=rhs.device),
               maxiter=200)
    lt = v.mT @ lamb.unsqueeze(-3) @ v  # λ in each eigenbasis (G, N, n, n)
    gx = gw_out = None
    if need_x:
        dd = Log().first_divided_difference(lam, tie_threshold(lam.dtype))
        inner = v @ (dd * lt) @ v.mT
        gx = w[..., None, None] * (ci.mT.unsqueeze(-3) @ inner @ ci.unsqueeze(-3))
        gx = sym(gx)
    if need_w:
        gw_out = (lt.diagonal(dim1=-2, dim2=-1) * ll).sum(-1)
    return gx, gw_out


# -- Bures–Wasserstein ------------------------------------------------------------------------------
def bw_grad_norm(s: Tensor, t_bar: Tensor) -> Tensor:
    """BW norm of ``Σ wᵢ log_S Xᵢ = K S + S K`` with ``K = T̄ − I``: ``sqrt(tr(K S K))``."""
    k = t_bar - torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
    return (k * (s @ k)).sum((-2, -1)).clamp_min(0).sqrt()


def bw_mean(x: Tensor, w: Tensor, init: Tensor, tol: float, max_iter: int
            ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bures–Wasserstein barycentre by the Álvarez-Esteban et al. (2016) fixed point.

    Returns ``(mean, iterations, grad_norm, converged)``; ``grad_norm`` is the BW norm of the
    Riemannian gradient at the returned mean.
    """
    s = sym(init)
    groups = x.shape[:-3]
    iters = torch.zeros(groups, dtype=torch.long, device=x.device)
    gn = torch.full(groups, float("inf"), dtype=x.dtype, device=x.device)
    for k in range(max_iter + 1):
        a, ai = sqrtm_invsqrtm(s)
        r = _wsum(w, sqrtm(sym(a.unsqueeze(-3) @ x @ a.unsqueeze(-3))))
        t_bar = sym(ai @ r @ ai)
        gn = bw_grad_norm(s, t_bar)
        active = gn > tol
        if not bool(active.any()) or k == max_iter:
            break
        s_new = sym(ai @ (r @ r) @ ai)
        s = torch.where(active[..., None, None], s_new, s)
        iters = iters + active.long()
    return s, iters, gn, gn <= tol
