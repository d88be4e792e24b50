"""Triton kernel: whole parallel-order Jacobi eigensolver of one matrix per program.

Imported only when Triton is installed (:mod:`riemlearn.manifolds.eigh_triton` guards it).
One program holds one padded ``M × M`` matrix ``A`` and its rotation accumulator ``U`` in
registers for the whole solve; a round applies the ``M/2`` disjoint rotations of the
round-robin schedule with three in-register gathers (partner rows of ``A``, partner columns of
``A``, partner rows of ``U``) instead of the permuted copies the torch version makes in global
memory, and the sweep loop stops per matrix on the same test as
:func:`riemlearn.manifolds.eigh_jacobi.eigh_jacobi`. Nothing leaves the chip between the first
load and the last store, which is what makes n = 33–64 fast on a GPU: cuSOLVER's batched path
ends at 32.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _rotation(num, den, small, F32: tl.constexpr):
    """Rutishauser's ``t = sign(ζ) / (|ζ| + √(1 + ζ²))``, ``ζ = num / (2 den)``, and ``c = 1/√(1 + t²)``.

    ``t = 0`` where ``den == 0`` or ``small``. Float32 uses correctly rounded division and
    square root (the defaults are approximate, and rotations with ``c² + s² ≠ 1`` by a few
    ulps spoil the orthogonality of the result).
    """
    one = tl.zeros_like(num) + 1.0
    if F32:
        zeta = tl.div_rn(num, tl.where(den == 0, one, den + den))
        root = tl.sqrt_rn(one + zeta * zeta)
        t = tl.where(zeta >= 0, tl.div_rn(one, zeta + root), tl.div_rn(one, zeta - root))
        t = tl.where(small | (den == 0), 0.0, t)
        c = tl.div_rn(one, tl.sqrt_rn(one + t * t))
    else:
        zeta = num / tl.where(den == 0, one, den + den)
        root = tl.sqrt(one + zeta * zeta)
        t = tl.where(zeta >= 0, one / (zeta + root), one / (zeta - root))
        t = tl.where(small | (den == 0), 0.0, t)
        c = one / tl.sqrt(one + t * t)
    return t, c


@triton.jit
def jacobi_kernel(
    a_ptr,
    u_ptr,
    w_ptr,
    sweeps_ptr,
    norm_ptr,
    partner_ptr,
    isp_ptr,
    tol,
    sqrt_tol,
    skip_eps,
    max_sweeps,
    M: tl.constexpr,
    ROUNDS: tl.constexpr,
    VECTORS: tl.constexpr,
    F32: tl.constexpr,
):
    """Sweeps on ``A`` (and ``U``) of program ``pid``; writes ``diag(A)``, ``U`` and the sweep count.

    ``norm[pid]`` is ``‖A‖_F`` of the unpadded matrix: the padding must not loosen the test.

    ``partner[r, i]``: the index paired with ``i`` in round ``r``; ``isp[r, i]``: 1 where ``i`` is
    the first index ``p`` of its pair. The rotation of a pair is computed once, on its ``p``
    row, and gathered to the ``q`` row, so both rows use bitwise the same ``(c, s)``. A
    rotation is skipped when ``|a_pq| <= skip_eps sqrt(|a_pp a_qq|)`` (already negligible).
    ``tol < 0`` disables the stopping test (exactly ``max_sweeps`` sweeps).
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, M)
    rows = offs[:, None]
    cols = offs[None, :]
    tile = pid * M * M + rows * M + cols
    a = tl.load(a_ptr + tile)
    if VECTORS:
        u = tl.load(u_ptr + tile)
    eye = rows == cols
    zero = tl.zeros((M, M), dtype=a.dtype)
    norm = tl.load(norm_ptr + pid)
    off = tl.sqrt(tl.sum(tl.sum(tl.where(eye, zero, a * a), axis=1), axis=0))
    prev = off * 2.0 + 1.0
    done = off <= tol * norm
    sweep = 0
    while (sweep < max_sweeps) & (done == 0):
        for r in range(ROUNDS):
            prt = tl.load(partner_ptr + r * M + offs)
            isp = tl.load(isp_ptr + r * M + offs) != 0
            d = tl.sum(tl.where(eye, a, zero), axis=1)
            apq = tl.sum(tl.where(cols == prt[:, None], a, zero), axis=1)
            dq = tl.gather(d, prt, 0)
            small = tl.abs(apq) <= skip_eps * tl.sqrt(tl.abs(d * dq))
            t, c = _rotation(dq - d, apq, small, F32)
            s = t * c
            c = tl.where(isp, c, tl.gather(c, prt, 0))
            s = tl.where(isp, -s, tl.gather(s, prt, 0))
            idx_r = prt[:, None] + rows * 0 + cols * 0
            a = c[:, None] * a + s[:, None] * tl.gather(a, idx_r, 0)
            idx_c = prt[None, :] + rows * 0 + cols * 0
            a = a * c[None, :] + tl.gather(a, idx_c, 1) * s[None, :]
            if VECTORS:
                u = c[:, None] * u + s[:, None] * tl.gather(u, idx_r, 0)
        a = (a + tl.trans(a)) * 0.5  # roundoff asymmetry of the row/column updates
        off = tl.sqrt(tl.sum(tl.sum(tl.where(eye, zero, a * a), axis=1), axis=0))
        done = (off <= tol * norm) | ((off > 0.9 * prev) & (off <= sqrt_tol * norm))
        prev = off
        sweep += 1
    tl.store(w_ptr + pid * M + offs, tl.sum(tl.where(eye, a, zero), axis=1))
    if VECTORS:
        tl.store(u_ptr + tile, u)
    tl.store(sweeps_ptr + pid, sweep)


@triton.jit
def onesided_kernel(
    g_ptr,
    sweeps_ptr,
    partner_ptr,
    isp_ptr,
    tol,
    sqrt_tol,
    skip_eps,
    max_sweeps,
    M: tl.constexpr,
    ROUNDS: tl.constexpr,
    F32: tl.constexpr,
):
    """One-sided (Hestenes) Jacobi on the columns of ``G`` of program ``pid``, in place.

    Each pair of columns ``(g_p, g_q)`` is rotated to orthogonality:
    ``ζ = (‖g_q‖² − ‖g_p‖²) / (2 g_p·g_q)``, ``t = sign(ζ) / (|ζ| + √(1 + ζ²))``,
    ``g_p ← c g_p − s g_q``, ``g_q ← s g_p + c g_q``. With ``G = L`` from ``X = L Lᵀ`` the
    final columns are ``U Σ`` with ``X = U Σ² Uᵀ``: no rotation accumulator is needed, and a
    round costs one in-register gather of the partner columns. A sweep's largest cosine
    ``|g_p·g_q| / (‖g_p‖ ‖g_q‖)`` is the stopping measure (``<= tol``, or the roundoff floor:
    a sweep below ``sqrt_tol`` that gains less than 10 %; the caller keeps ``sqrt_tol`` near
    the floor, since this measure is not monotone early on); ``tol < 0``: exactly ``max_sweeps``.
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, M)
    rows = offs[:, None]
    cols = offs[None, :]
    tile = pid * M * M + rows * M + cols
    g = tl.load(g_ptr + tile)
    prev = tl.max(tl.sum(g * g, axis=0), axis=0) * 0.0 + 2.0  # above any cosine
    done = prev < 0
    sweep = 0
    while (sweep < max_sweeps) & (done == 0):
        worst = prev * 0.0
        for r in range(ROUNDS):
            prt = tl.load(partner_ptr + r * M + offs)
            isp = tl.load(isp_ptr + r * M + offs) != 0
            gp = tl.gather(g, prt[None, :] + rows * 0 + cols * 0, 1)
            alpha = tl.sum(g * g, axis=0)
            gamma = tl.sum(g * gp, axis=0)
            beta = tl.gather(alpha, prt, 0)
            one = tl.zeros_like(alpha) + 1.0
            scale = tl.sqrt(alpha * beta)
            small = tl.abs(gamma) <= skip_eps * scale
            cosine = tl.where(scale > 0, tl.abs(gamma) / tl.where(scale > 0, scale, one), 0.0)
            worst = tl.maximum(worst, tl.max(cosine, axis=0))
            t, c = _rotation(beta - alpha, gamma, small, F32)
            s = t * c
            c = tl.where(isp, c, tl.gather(c, prt, 0))
            s = tl.where(isp, -s, tl.gather(s, prt, 0))
            g = g * c[None, :] + gp * s[None, :]
        done = (worst <= tol) | ((worst > 0.9 * prev) & (worst <= sqrt_tol))
        prev = worst
        sweep += 1
    tl.store(g_ptr + tile, g)
    tl.store(sweeps_ptr + pid, sweep)
