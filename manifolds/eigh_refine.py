"""Matmul-only refinement of an approximate symmetric eigendecomposition (Ogita–Aishima).

Given symmetric ``A`` and approximate orthonormal eigenvectors ``X̂`` (here the rows of ``U``,
``X̂ = Uᵀ``), one step of Ogita & Aishima's iteration (*Iterative refinement for symmetric
eigenvalue decomposition*, Japan J. Indust. Appl. Math. 35, 2018, Algorithm 1) is

    R = I − X̂ᵀX̂,   S = X̂ᵀ A X̂,   λ̃ᵢ = sᵢᵢ / (1 − rᵢᵢ),
    ẽᵢⱼ = (sᵢⱼ + λ̃ⱼ rᵢⱼ) / (λ̃ⱼ − λ̃ᵢ)  if |λ̃ᵢ − λ̃ⱼ| > δ,  else rᵢⱼ / 2,
    X̂ ← X̂ + X̂ Ẽ,    δ = 2 (‖S − diag(λ̃)‖ + ‖A‖ ‖R‖),

four batched matrix products and elementwise work. It converges quadratically when the
eigenvector error is small against the eigenvalue gaps; pairs closer than ``δ`` (clusters,
ties) are only re-orthogonalized, which is all an exactly repeated eigenvalue needs. Here
``‖·‖`` are Frobenius norms (upper bounds of the spectral norms: a larger, safer ``δ``).

The mixed-precision Jacobi solver uses it to finish float32 sweeps in float64: a few matrix
products replace the float64 sweeps, which on a GPU cost as much as all the float32 ones.
Every matrix whose test fails after ``max_steps`` is reported, and the caller finishes it
by float64 Jacobi sweeps (:func:`riemlearn.manifolds.eigh_jacobi.eigh_jacobi`).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["refine_eigh"]


def _residuals(a: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(R, S, ‖off(S)‖_F, ‖R‖_F)`` for rows ``u`` of approximate eigenvectors."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    r = eye - u @ u.mT
    s = (u @ a) @ u.mT
    s = (s + s.mT) * 0.5
    off = torch.linalg.matrix_norm(s - torch.diag_embed(s.diagonal(dim1=-2, dim2=-1)))
    return r, s, off, torch.linalg.matrix_norm(r)


def refine_eigh(
    a: Tensor, u: Tensor, norm: Tensor, tol: float, max_steps: int = 3, check: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Ogita–Aishima steps on ``(b, m, m)`` ``a`` from rows ``u``; returns ``(w, u, converged)``.

    Parameters
    ----------
    a : Tensor, shape (b, m, m)
        Symmetric matrices (float64 in practice).
    u : Tensor, shape (b, m, m)
        Approximate eigenvectors as rows, nearly orthonormal (error well below 1).
    norm : Tensor, shape (b,)
        Scale of the test (``‖A‖_F`` of the unpadded matrices).
    tol : float
        Converged when ``‖off(U A Uᵀ)‖_F <= tol · norm`` and ``‖I − U Uᵀ‖_F <= tol``.
    max_steps : int, default 3
        Most refinement steps. Converged matrices are frozen (results do not depend on the
        rest of the batch).
    check : bool, default True
        Stop early once every matrix converged or stalled (from the fourth step on, its
        residual ``‖off(S)‖ + ‖A‖ ‖R‖`` shrank by less than 10 % over two steps: outside the
        quadratic basin, left to the caller's fallback); one host synchronization per step. False: exactly
        ``max_steps`` steps, no synchronization.

    Returns
    -------
    w : Tensor, shape (b, m)
        Rayleigh quotients ``λ̃`` of the returned rows (unsorted).
    u : Tensor, shape (b, m, m)
        Refined rows.
    converged : Tensor, shape (b,), bool
        Which matrices passed the test.
    """
    norm = norm.to(a.dtype)
    done = torch.zeros(a.shape[0], dtype=torch.bool, device=a.device)
    stalled = torch.zeros_like(done)
    w = a.new_empty(a.shape[:-1])
    hist: list[Tensor] = []
    for step in range(max_steps + 1):
        r, s, off, orth = _residuals(a, u)
        lam = s.diagonal(dim1=-2, dim2=-1) / (1.0 - r.diagonal(dim1=-2, dim2=-1))
        now = (off <= tol * norm) & (orth <= tol)
        w = torch.where(done.unsqueeze(-1), w, lam)  # frozen once converged
        done = done | now
        hist.append(off + norm * orth)
        if step >= 4:  # not shrinking over two steps (one bump is normal near clusters): fallback
            stalled = stalled | (hist[-1] > 0.9 * hist[-3])
        if step == max_steps or (check and bool((done | stalled).all())):
            break
        delta = 2.0 * (off + norm * orth)
        gap = lam.unsqueeze(-2) - lam.unsqueeze(-1)  # gap[i, j] = λ̃ⱼ − λ̃ᵢ
        apart = gap.abs() > delta.view(-1, 1, 1)
        e = torch.where(apart, (s + lam.unsqueeze(-2) * r) / torch.where(apart, gap, 1.0), 0.5 * r)
        u = torch.where(done.view(-1, 1, 1), u, u + e.mT @ u)  # X̂ + X̂ Ẽ with X̂ = Uᵀ
    return w, u, done
