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

:func:`eigh_from_guess` is the lean form for a CPU batch whose eigenvectors are known
approximately (the points of a Fréchet mean after a Newton step: the old eigenvectors, rotated
by the step, are within ~0.2 of the new ones): columns instead of rows, no cluster test, and
matrices it cannot finish (a pair of eigenvalues closer than its coupling) go to LAPACK. On
one core a step costs four products and four elementwise passes; for 1000 matrices of n = 22,
five steps take about half a LAPACK ``eigh`` (n = 64: more than one, so callers use it for
small ``n`` only).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["refine_eigh", "refine_eigh_columns", "eigh_from_guess", "REFINE_CHUNK"]


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


def _oa_steps(a: Tensor, u: Tensor, work: Tensor, tol: float, max_steps: int,
              limit: float) -> tuple[Tensor, Tensor]:
    """Steps of :func:`refine_eigh_columns` in place on rows ``u`` (``X̂ = uᵀ``), with ``work``
    ``(3, b, n, n)`` scratch; returns ``(w, converged)``."""
    xtx, av, s = work.unbind(0)
    conv = torch.zeros(a.shape[0], dtype=torch.bool, device=a.device)
    w = a.new_empty(a.shape[:-1])
    for _ in range(max_steps):
        torch.bmm(u, u.mT, out=xtx)  # X̂ᵀX̂
        torch.bmm(a, u.mT, out=av)  # A X̂
        torch.bmm(u, av, out=s)  # X̂ᵀ A X̂
        dg = xtx.diagonal(dim1=-2, dim2=-1)
        w = s.diagonal(dim1=-2, dim2=-1) / dg
        e = s.addcmul_(xtx, w.unsqueeze(-2), value=-1.0)  # sᵢⱼ + λ̃ⱼ rᵢⱼ off the diagonal
        e.div_(torch.sub(w.unsqueeze(-2), w.unsqueeze(-1), out=av))
        e.diagonal(dim1=-2, dim2=-1).copy_((1.0 - dg) * 0.5)
        emax = torch.abs(e, out=av).amax((-2, -1))
        u.add_(torch.bmm(e.mT, u, out=av))  # X̂ + X̂ Ẽ, as rows
        conv = emax <= tol
        if bool((conv | ~(emax <= limit)).all()):
            break
    return w, conv


def refine_eigh_columns(a: Tensor, v: Tensor, tol: float, max_steps: int = 8,
                        limit: float = 0.25) -> tuple[Tensor, Tensor, Tensor]:
    """Ogita–Aishima steps without cluster test on columns ``v``; returns ``(w, v, converged)``.

    ``a (b, n, n)`` symmetric, ``v (b, n, n)`` approximate eigenvectors as columns. A step is
    ``X̂ ← X̂ + X̂ Ẽ`` with ``ẽᵢⱼ = (sᵢⱼ − λ̃ⱼ (X̂ᵀX̂)ᵢⱼ) / (λ̃ⱼ − λ̃ᵢ)`` off the diagonal (the
    module's formula, ``R = I − X̂ᵀX̂``) and ``ẽᵢᵢ = rᵢᵢ / 2``. A matrix has converged after the
    step whose ``max |ẽᵢⱼ| <= tol`` (then the new error is ``O(tol²)``: ``tol = √eps`` gives
    full precision); it has failed once ``max |ẽᵢⱼ| > limit`` or is not finite (outside the
    quadratic basin, or a near-tie). Stops when every matrix converged or failed, or after
    ``max_steps`` (one host read per step). Every matrix takes the batch's steps (a converged
    one only moves at round-off level). ``w``: Rayleigh quotients of the last step, in the
    order of the columns (unsorted); ``v`` comes back column-major (``v.mT`` contiguous).

    The steps write into three scratch buffers allocated once: a fresh multi-megabyte tensor
    per operation costs its page faults again (on CPU, as much as the arithmetic at n = 22).
    """
    u = v.mT.contiguous()
    w, conv = _oa_steps(a, u, a.new_empty((3,) + a.shape), tol, max_steps, limit)
    return w, u.mT, conv


#: Matrices refined at a time by :func:`eigh_from_guess`: its scratch is four chunks, reused
#: chunk after chunk (bounded memory, and pages touched once per call rather than per chunk).
REFINE_CHUNK = 2048


def eigh_from_guess(a: Tensor, v0: Tensor, mixed: bool = False, max_steps: int = 8) -> tuple[Tensor, Tensor]:
    """Eigenpairs of symmetric ``a (*batch, n, n)`` from approximate eigenvectors ``v0``.

    :func:`refine_eigh_columns` to full precision, then LAPACK (through
    :func:`riemlearn.manifolds.spectral.eigh`) for the matrices it did not finish. Eigenvalues
    come in the order of ``v0``'s columns where refined (ascending where not): callers take
    ``amin``/``amax``, not the ends. ``mixed`` (float64 input, a guess far from converged):
    the first, large corrections in float32 (products twice as fast, half the memory traffic)
    until their corrections are below 1e-3, then float64 steps. One scratch of four buffers of
    :data:`REFINE_CHUNK` matrices serves both stages and every chunk.
    """
    from .spectral import eigh

    batch, n = a.shape[:-2], a.shape[-1]
    af, vf = a.reshape(-1, n, n), v0.reshape(-1, n, n)
    b = af.shape[0]
    size = max(1, min(b, REFINE_CHUNK))
    ws = af.new_empty((4, size, n, n))
    rows = ws[0] if b <= size else af.new_empty(af.shape)  # the refined Vᵀ, all matrices
    w = af.new_empty(af.shape[:-1])
    ok = torch.empty(b, dtype=torch.bool, device=af.device)
    f = ws[1:].reshape(-1).view(torch.float32)  # the float64 scratch seen as 6 float32 buffers
    for s0 in range(0, b, size):
        ac, gc = af[s0:s0 + size], vf[s0:s0 + size]
        m = ac.shape[0]
        u = rows[s0:s0 + m]
        if mixed and a.dtype == torch.float64:
            k = ac.numel()
            a32, u32 = f[:k].view(ac.shape), f[k:2 * k].view(ac.shape)
            a32.copy_(ac)
            u32.copy_(gc.mT)
            _oa_steps(a32, u32, f[2 * k:5 * k].view((3,) + ac.shape), 1e-3, max_steps, 0.25)
            u.copy_(u32)
        else:
            u.copy_(gc.mT)
        w[s0:s0 + m], ok[s0:s0 + m] = _oa_steps(ac, u, ws[1:, :m], torch.finfo(a.dtype).eps ** 0.5,
                                                max_steps, 0.25)
    v = rows.mT
    if not bool(ok.all()):
        idx = (~ok).nonzero().squeeze(-1)
        wi, vi = eigh(af.index_select(0, idx))
        w, v = w.index_copy(0, idx, wi), v.index_copy(0, idx, vi)
    return w.reshape(*batch, n), v.reshape(*batch, n, n)
