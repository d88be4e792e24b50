"""Newton–CG machinery of the affine-invariant Fréchet mean (private; see ``_mean_spd``).

The Hessian of ``½ Σ wᵢ d²(M, Xᵢ)`` in the whitened frame, applied as matrix products
(:class:`_Hessian`), and the batched conjugate gradient that solves with it (:func:`_cg`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..manifolds.spectral import sym

__all__: list[str] = []


def _stack_vt(v: Tensor) -> Tensor:
    """``(G, N, n, n) → (G, N·n, n)``: the ``Vᵢᵀ`` stacked (no copy when ``v`` is column-major,
    as LAPACK and :func:`eigh_from_guess` return it)."""
    g, n_pts, n, _ = v.shape
    return v.mT.contiguous().reshape(g, n_pts * n, n)


def _sum_sandwich(vt: Tensor, m: Tensor, out: Tensor | None = None) -> Tensor:
    """``Σᵢ Vᵢ Mᵢ Vᵢᵀ`` for symmetric ``Mᵢ (G, N, n, n)`` from ``vt`` = :func:`_stack_vt` ``(V)``.

    ``Mᵢ Vᵢᵀ = (Vᵢ Mᵢ)ᵀ`` stacked is tall, so the sum is one ``(n × N·n) @ (N·n × n)`` GEMM on a
    transposed view: no reordering copy.
    """
    g, n_pts, n, _ = m.shape
    qt = torch.matmul(m, vt.reshape(g, n_pts, n, n), out=out)
    return qt.reshape(g, n_pts * n, n).mT @ vt


def _coth_weights(ll: Tensor, w: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """``wᵢ · δ coth δ`` with ``δ = (l_j − l_k)/2``; shape (G, N, n, n), in ``dtype`` (default ``ll``'s)."""
    half = (0.5 * ll).to(dtype or ll.dtype)
    d = half.unsqueeze(-1) - half.unsqueeze(-2)
    t = torch.tanh(d)
    g = torch.div(d, t, out=t)  # relatively accurate down to tiny |δ|
    # exactly 0/0 at ties (the diagonal): the limit 1
    return g.nan_to_num_(nan=1.0).mul_(w.to(g.dtype)[..., None, None])


class _Hessian:
    """``H ↦ Σ wᵢ Vᵢ (gᵢ ∘ Vᵢᵀ H Vᵢ) Vᵢᵀ`` for ``H (G, n, n)`` (tall GEMMs where possible).

    The products run in ``gw``'s dtype (float32 for a float64 mean on CPU: twice the GEMM speed
    and half the memory traffic; :func:`_hess_error` bounds what that changes); ``H`` and the
    result stay in their own dtype.
    """

    def __init__(self, v: Tensor, gw: Tensor) -> None:
        g, n_pts, n, _ = v.shape
        self.gw = gw
        self.vt = _stack_vt(v).to(gw.dtype)  # Vᵢᵀ stacked
        self.v = self.vt.reshape(g, n_pts, n, n).mT
        # two work buffers, reused by every product (fresh multi-megabyte tensors cost page faults)
        self._a, self._b = torch.empty_like(gw), torch.empty_like(gw)

    def __call__(self, h: Tensor) -> Tensor:
        g, n_pts, n, _ = self.gw.shape
        # In and out symmetrized (n × n, cheap): the sandwich sum below is H ↦ Hess[H] only for
        # symmetric H (Hess[Hᵀ] otherwise, negative on the antisymmetric part), and CG's vectors
        # would otherwise collect the round-off of float32 products as antisymmetric drift.
        tall = torch.matmul(self.vt, sym(h).to(self.gw.dtype), out=self._a.view(g, n_pts * n, n))
        ht = torch.matmul(tall.view(g, n_pts, n, n), self.v, out=self._b)  # Vᵢᵀ H Vᵢ
        return sym(_sum_sandwich(self.vt, ht.mul_(self.gw), out=self._a).to(h.dtype))


def _hess_dtype(x: Tensor) -> torch.dtype:
    """Float32 Hessian products for float64 means on CPU (on CUDA float32 products may run in
    TF32, and the GPU path is measured as it is)."""
    return torch.float32 if x.dtype == torch.float64 and x.device.type == "cpu" else x.dtype


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Frobenius inner products ``(G,)`` of ``(G, n, n)`` stacks, as one batched product."""
    g = a.shape[0]
    return (a.reshape(g, 1, -1) @ b.reshape(g, -1, 1)).reshape(g)


def _cg(apply, b: Tensor, stop: Tensor, maxiter: int, x0: Tensor | None = None,
        residual: bool = False):
    """Batched CG for SPD ``apply`` (Frobenius), stop when ``‖r‖ <= stop``; ``x`` (and ``r``).

    ``b (G, n, n)``. One host read per step (is any problem still active?); with a single
    problem "any active" means "all active" and the per-problem masks are skipped.
    """
    xk = torch.zeros_like(b) if x0 is None else x0  # x0 is updated in place
    r = b.clone() if x0 is None else b - apply(x0)
    p = r.clone()
    rs = _dot(r, r)
    stop2 = stop * stop
    tiny = torch.finfo(b.dtype).tiny
    single = b.shape[0] == 1
    broken = torch.zeros_like(rs, dtype=torch.bool)
    for _ in range(maxiter):
        active = (rs > stop2) & ~broken
        if not bool(active.any()):
            break
        ap = apply(p)
        pap = _dot(p, ap)
        # Hess ≥ I, so ⟨p, Hp⟩ < ½‖p‖² means the products' round-off (float32 products on a
        # residual far below the right-hand side) dominates: that problem stops where it is.
        broken = broken | (pap < 0.5 * _dot(p, p))
        alpha = torch.where(broken, 0.0, rs / pap.clamp_min(tiny))
        if not single:
            alpha = torch.where(active, alpha, 0.0)
        a4 = alpha[:, None, None]
        xk.addcmul_(a4, p)
        r.addcmul_(a4, ap, value=-1.0)
        rn = _dot(r, r)
        beta = rn / rs.clamp_min(tiny)
        if not single:
            beta = torch.where(active, beta, 0.0)
            rn = torch.where(active, rn, rs)
        p = torch.addcmul(r, beta[:, None, None], p)
        rs = rn
    return (xk, r) if residual else xk
