"""Batched parallel-order (round-robin) Jacobi eigensolver for symmetric matrices.

The cyclic Jacobi method annihilates off-diagonal entries by plane rotations; in *parallel
order* the ``m/2`` pairs of one round are disjoint (the circle method of a round-robin
tournament), so all their rotations are applied at once, and ``m − 1`` rounds make a sweep
that touches every pair once (Brent & Luk 1985; Golub & Van Loan, *Matrix Computations*,
§8.5). Everything is vectorized over the batch: a round is a handful of batched tensor
operations, the same for every matrix, with no Python loop over batch items and no host
synchronization inside a sweep (only the optional convergence test, once per
``check_every`` sweeps, reads one boolean back).

Two variants share the schedule, the storage and the convergence test:

* ``block=1`` (scalar Jacobi): each pair ``(p, q)`` is rotated by the closed-form Rutishauser
  rotation (``t = sign(τ)/(|τ| + √(1 + τ²))``, ``τ = (a_qq − a_pp)/(2 a_pq)``), applied to
  rows with elementwise operations only (immune to reduced-precision matmul settings).
* ``block=k > 1`` (block Jacobi): the index range is cut into blocks of ``k``; a round pairs
  blocks, diagonalizes every ``2k × 2k`` diagonal block pair exactly with a batched small
  eigensolver (``torch.linalg.eigh`` by default: on CUDA, ``2k ≤ 32`` uses cuSOLVER's fast
  batched Jacobi path) and applies the ``2k × 2k`` rotations with batched matmuls. Far fewer
  rounds per sweep (``m/k − 1``) and about 3–5 sweeps.

Storage. Each round permutes the working matrix so that the pairs (or block pairs) of the
round are adjacent; the row rotation ``L = Jᵀ P`` (permutation, then rotation) acts on the
rows of ``A``, then on the rows of ``(LA)ᵀ`` (``A`` is symmetric, so ``L (LA)ᵀ = L A Lᵀ``),
and on the rows of ``U = Vᵀ`` (the eigenvector estimates, one per row). Odd sizes (or sizes
not divisible by the block) are padded with decoupled diagonal entries ``2‖A‖_F`` (above
every eigenvalue), removed after sorting.

Convergence. Per batch item: ``‖off(A)‖_F ≤ tol · ‖A‖_F`` (``tol`` default ``4 n eps``);
converged items are frozen (their rotations become the identity), so every item's result
depends on that item only (batch- and chunk-independent). ``max_sweeps`` caps the work;
``sweeps=k`` runs exactly ``k`` sweeps with no test at all (bitwise reproducible; the scalar
variant then makes no host synchronization at all, CUDA-graph friendly; the block variant's
sub-solver ``torch.linalg.eigh`` checks its error codes on the host once per round). The test
also stops an item whose off-diagonal norm, once below ``√tol ‖A‖``, shrank by less than 10 %
in a sweep (the roundoff floor).

Precision. In its own dtype the method's accuracy is set by the roundoff of its many
rotations: float64 reaches ``torch.linalg.eigh``'s (eigenvalues ~1e-15 ‖A‖, ``VᵀV − I`` and
reconstruction ~1e-14 at n = 64), float32 only ~1e-6 ‖A‖ for eigenvalues and 1e-5 for
orthogonality and reconstruction (3–30× worse than ``eigh`` in float32). ``mixed=True`` runs
the sweeps in float32 until ``‖off(A)‖ ≤ 1e-4 ‖A‖`` and finishes in float64 with Ogita–Aishima
refinement steps (matrix products only, quadratic convergence), with float64 sweeps for the
matrices it cannot finish (near-ties, ill-conditioned ones): float32 results then beat
``eigh`` in float32 and float64 results keep float64 accuracy with all sweeps in float32
(measured: ``tests/test_eigh_engine.py``, ``tests/test_eigh_refine.py``). On the fused engine
the float32 stage is one-sided Jacobi on a Cholesky factor, whose eigenvectors are orthogonal
to its cosine tolerance (no accumulated rotations): float32 inputs run it to 1e-6 and take
Rayleigh-quotient eigenvalues, with no float64 stage (H100: 18-90× smaller errors than
cuSOLVER's float32 ``eigh``, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
from torch import Tensor

from .eigh_refine import refine_eigh

__all__ = ["eigh_jacobi", "eigvalsh_jacobi", "jacobi_schedule"]

_DEVICE_CACHE: dict[tuple, tuple[Tensor, tuple[Tensor, ...]]] = {}


def jacobi_schedule(nb: int) -> list[list[tuple[int, int]]]:
    """Round-robin (circle method) rounds of disjoint pairs of ``nb`` (even) indices.

    Every unordered pair appears in exactly one of the ``nb − 1`` rounds.

    Examples
    --------
    >>> jacobi_schedule(4)
    [[(3, 0), (1, 2)], [(3, 1), (2, 0)], [(3, 2), (0, 1)]]
    """
    if nb < 2 or nb % 2:
        raise ValueError(f"nb must be even and >= 2, got {nb}")
    rounds = []
    for r in range(nb - 1):
        pairs = [(nb - 1, r)]
        for k in range(1, nb // 2):
            pairs.append(((r + k) % (nb - 1), (r - k) % (nb - 1)))
        rounds.append(pairs)
    return rounds


@lru_cache(maxsize=64)
def _transitions(nb: int, block: int) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Element permutations: from the identity order to round 0, and from round r−1 to r.

    ``trans[0]`` goes from the last round's order to round 0 (used from the second sweep on).
    """
    orders = [[b for pair in rnd for b in pair] for rnd in jacobi_schedule(nb)]

    def step(prev: list[int], new: list[int]) -> tuple[int, ...]:
        where = {lab: i for i, lab in enumerate(prev)}
        return tuple(where[lab] * block + j for lab in new for j in range(block))

    init = step(list(range(nb)), orders[0])
    trans = tuple(step(orders[r - 1], orders[r]) for r in range(len(orders)))
    return init, trans


def _indices(nb: int, block: int, device: torch.device) -> tuple[Tensor, tuple[Tensor, ...]]:
    key = (nb, block, str(device))
    hit = _DEVICE_CACHE.get(key)
    if hit is None:
        init, trans = _transitions(nb, block)
        hit = (
            torch.tensor(init, dtype=torch.long, device=device),
            tuple(torch.tensor(t, dtype=torch.long, device=device) for t in trans),
        )
        _DEVICE_CACHE[key] = hit
    return hit


def _rotation(app: Tensor, aqq: Tensor, apq: Tensor, skip: Tensor | None) -> tuple[Tensor, Tensor]:
    """Rutishauser's rotation ``(c, s)`` annihilating ``a_pq``; identity where ``a_pq = 0`` or ``skip``.

    ``t = 1/(τ + sign(τ) √(1 + τ²))`` (the smaller root); ``1 + τ²`` may overflow to inf for
    ``|τ| > 1e154`` (float64), which gives ``t = 0`` instead of ``≈ 1/(2τ)``: a rotation below
    roundoff. Few elementwise kernels (this runs once per round).
    """
    zero = apq == 0
    if skip is not None:
        zero |= skip
    tau = (aqq - app) / (apq + apq)
    t = torch.reciprocal(tau + torch.copysign(torch.sqrt(torch.addcmul(torch.ones_like(tau), tau, tau)), tau))
    t.masked_fill_(zero, 0.0)
    c = torch.rsqrt(torch.addcmul(torch.ones_like(t), t, t))
    return c, t * c


def _rotate_rows(x: Tensor, c: Tensor, s: Tensor) -> Tensor:
    """Rows ``(2k, 2k+1)`` of ``(b, m, K)`` become ``(c x0 − s x1, s x0 + c x1)``."""
    b, m, k = x.shape
    xv = x.view(b, m // 2, 2, k)
    x0, x1 = xv[:, :, 0], xv[:, :, 1]
    out = torch.empty_like(xv)
    y0, y1 = out[:, :, 0], out[:, :, 1]
    torch.mul(x0, c, out=y0)
    y0.addcmul_(x1, s, value=-1.0)
    torch.mul(x0, s, out=y1)
    y1.addcmul_(x1, c)
    return out.view(b, m, k)


def _round_scalar(
    a: Tensor, u: Tensor | None, idx: Tensor, active: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    d = a.diagonal(dim1=-2, dim2=-1)
    p, q = idx[0::2], idx[1::2]
    c, s = _rotation(d[:, p], d[:, q], a[:, p, q], None if active is None else ~active)
    c, s = c.unsqueeze(-1), s.unsqueeze(-1)
    a = _rotate_rows(a.index_select(-2, idx), c, s)
    a = _rotate_rows(a.mT.index_select(-2, idx), c, s)
    if u is not None:
        u = _rotate_rows(u.index_select(-2, idx), c, s)
    return a, u


def _round_block(
    a: Tensor, u: Tensor | None, idx: Tensor, block: int, active: Tensor | None, sub_eigh: Callable
) -> tuple[Tensor, Tensor | None]:
    b, m, _ = a.shape
    h, k2 = m // (2 * block), 2 * block
    g = a.index_select(-2, idx).view(b, h, k2, m)
    cols = idx.view(1, h, 1, k2).expand(b, h, k2, k2)
    sub = torch.take_along_dim(g, cols, dim=-1)
    sub = sub.reshape(b * h, k2, k2)
    _, q = sub_eigh(sub)
    # Keep each rotation close to the identity (the convergence condition of block Jacobi,
    # "uniformly bounded cosines"): eigenvector j goes to the slot holding the j-th smallest
    # diagonal entry, with a non-negative diagonal. A sorted, unsigned ``eigh`` would swap
    # converged entries back and forth and stall.
    rank = torch.argsort(torch.argsort(sub.diagonal(dim1=-2, dim2=-1), dim=-1), dim=-1)
    q = torch.take_along_dim(q, rank.unsqueeze(-2), dim=-1)
    sign = torch.where(q.diagonal(dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(q.dtype)
    qt = (q * sign.unsqueeze(-2)).mT.reshape(b, h, k2, k2)
    if active is not None:
        eye = torch.eye(k2, dtype=a.dtype, device=a.device)
        qt = torch.where(active.view(b, 1, 1, 1), qt, eye)
    a = (qt @ g).view(b, m, m)
    a = (qt @ a.mT.index_select(-2, idx).view(b, h, k2, m)).view(b, m, m)
    if u is not None:
        u = (qt @ u.index_select(-2, idx).view(b, h, k2, m)).view(b, m, m)
    return a, u


def _offdiag_norm(a: Tensor) -> Tensor:
    off = a.clone()
    off.diagonal(dim1=-2, dim2=-1).zero_()
    return torch.linalg.matrix_norm(off)


def _pad(x: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """``(sym(x)`` padded to ``(b, m, m)`` with decoupled diagonal ``2‖x‖_F``, ``‖x‖_F)``."""
    b, n, _ = x.shape
    a = (x + x.mT) * 0.5
    norm = torch.linalg.matrix_norm(a)
    if m == n:
        return a.contiguous(), norm
    big = torch.zeros(b, m, m, dtype=x.dtype, device=x.device)
    big[:, :n, :n] = a
    big.diagonal(dim1=-2, dim2=-1)[:, n:] = (2.0 * norm).clamp_min(torch.finfo(x.dtype).tiny).unsqueeze(-1)
    return big, norm


def _sweeps(
    a: Tensor,
    u: Tensor | None,
    norm: Tensor,
    fresh: bool,
    block: int,
    tol: float,
    max_sweeps: int,
    sweeps: int | None,
    check_every: int,
    sub_eigh: Callable,
) -> tuple[Tensor, Tensor | None, bool]:
    """Jacobi sweeps on padded ``(b, m, m)``; ``fresh``: storage still in the identity order.

    Stops per item at ``‖off(A)‖_F ≤ tol ‖A‖_F`` or when, in the end game
    (``‖off‖ ≤ √tol ‖A‖``), a sweep gains less than 10 % (the roundoff floor is reached).
    """
    b, m, _ = a.shape
    init, trans = _indices(m // block, block, a.device)
    active: Tensor | None = None
    prev: Tensor | None = None
    n_sweeps = max_sweeps if sweeps is None else sweeps
    for sweep in range(n_sweeps):
        for r, idx in enumerate(trans):
            idx = init if fresh and r == 0 else idx
            fresh = False
            if block == 1:
                a, u = _round_scalar(a, u, idx, active)
            else:
                a, u = _round_block(a, u, idx, block, active, sub_eigh)
        if sweeps is None and (sweep + 1) % check_every == 0 and sweep + 1 < n_sweeps:
            off = _offdiag_norm(a)
            done = off <= tol * norm
            if prev is not None:
                done |= (off > 0.9 * prev) & (off <= math.sqrt(tol) * norm)
            prev = off
            if bool(done.all()):  # the one host sync, once per check_every sweeps
                break
            active = (~done).unsqueeze(-1) if active is None else active & (~done).unsqueeze(-1)
    return a, u, fresh


def _engine_sweeps(
    a: Tensor,
    u: Tensor | None,
    norm: Tensor,
    fresh: bool,
    block: int,
    tol: float,
    max_sweeps: int,
    sweeps: int | None,
    check_every: int,
    sub_eigh: Callable,
    fused: bool,
) -> tuple[Tensor, Tensor | None, bool]:
    """:func:`_sweeps` (torch) or the fused Triton kernel; returns ``(diag(A), U, fresh)``."""
    if fused:
        from .eigh_triton import jacobi_sweeps

        fixed = sweeps is not None
        w, u, _ = jacobi_sweeps(a, u, norm, tol, sweeps if fixed else max_sweeps, fixed=fixed)
        return w, u, fresh  # the kernel keeps the identity order: ``fresh`` is unchanged
    a, u, fresh = _sweeps(a, u, norm, fresh, block, tol, max_sweeps, sweeps, check_every, sub_eigh)
    return a.diagonal(dim1=-2, dim2=-1), u, fresh


def _solve(
    x: Tensor,
    block: int,
    tol: float | None,
    max_sweeps: int,
    sweeps: int | None,
    check_every: int,
    sub_eigh: Callable,
    vectors: bool = True,
    mixed: bool = False,
    fused: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Core on a flat batch ``(b, n, n)``: returns the padded ``(diag(A), U)`` after the sweeps.

    ``mixed``: sweeps in float32 down to ``‖off‖ ≤ 1e-4 ‖A‖``, then the float32 basis is
    re-orthogonalized in float64 (two Newton–Schulz polar steps), ``A = U X Uᵀ`` is formed in
    float64 and the sweeps continue there (quadratic convergence: one or two sweeps).
    ``fused``: the sweeps run in the Triton kernel (``block == 1``; size padded to a power of 2).
    """
    b, n, _ = x.shape
    if fused:
        from .eigh_triton import padded_size

        m = padded_size(n)
    else:
        nb = -(-n // block)
        nb += nb % 2
        m = nb * block
    eps = torch.finfo(x.dtype).eps
    tol = 4.0 * n * eps if tol is None else tol
    if mixed and fused and x.dtype == torch.float32:
        return _onesided_float32(x.detach(), m, max_sweeps, sweeps)
    if mixed:
        lo = x.detach().to(torch.float32)
        a_lo, norm_lo = _pad(lo, m)
        fresh = True
        if fused:  # one-sided Jacobi on a Cholesky factor: a third of the two-sided work per round
            from .eigh_triton import onesided_eigh

            fixed = sweeps is not None
            n_sw = sweeps if fixed else max_sweeps
            u_lo = onesided_eigh(a_lo, norm_lo, ONESIDED_SWITCH_TOL, n_sw, fixed)[1].mT
        else:
            u_lo = torch.eye(m, dtype=lo.dtype, device=lo.device).expand(b, m, m).contiguous()
            _, u_lo, fresh = _sweeps(a_lo, u_lo, norm_lo, True, block, max(tol, MIXED_SWITCH_TOL), max_sweeps,
                                     sweeps, check_every, sub_eigh)
            assert u_lo is not None
        xd, norm = _pad(x.detach().to(torch.float64), m)
        # float32 results: go to ‖off‖ ≤ eps32 ‖A‖ (cheap here) so that the float32 rounding of
        # the output, not the stopping test, sets the error.
        tol2 = tol if x.dtype == torch.float64 else min(tol, eps)
        tol2 = max(tol2, 4.0 * n * torch.finfo(torch.float64).eps)
        w, u, ok = refine_eigh(xd, u_lo.to(torch.float64), norm, tol2, REFINE_STEPS, check=sweeps is None)
        if sweeps is None and not bool(ok.all()):
            # the rest (clusters closer than the refinement's δ, e.g. the small eigenvalues of
            # ill-conditioned matrices): float64 Jacobi sweeps from the float32 basis
            idx = (~ok).nonzero().squeeze(-1)
            ui = u_lo.index_select(0, idx).to(torch.float64)
            for _ in range(2):  # rows orthonormal to float64 roundoff
                ui = 1.5 * ui - 0.5 * ((ui @ ui.mT) @ ui)
            ai = (ui @ xd.index_select(0, idx)) @ ui.mT
            wi, ui, _ = _engine_sweeps((ai + ai.mT) * 0.5, ui, norm.index_select(0, idx), fresh, block, tol2,
                                       max_sweeps, None, check_every, sub_eigh, fused)
            assert ui is not None
            w = w.index_copy(0, idx, wi)
            u = u.index_copy(0, idx, ui)
        return w.to(x.dtype), u.to(x.dtype)
    a, norm = _pad(x.detach(), m)
    u = torch.eye(m, dtype=x.dtype, device=x.device).expand(b, m, m).contiguous() if vectors else None
    w, u, _ = _engine_sweeps(a, u, norm, True, block, tol, max_sweeps, sweeps, check_every, sub_eigh, fused)
    return w, u


def _onesided_float32(x: Tensor, m: int, max_sweeps: int, sweeps: int | None) -> tuple[Tensor, Tensor]:
    """Float32 in and out on the fused engine: the one-sided stage alone, no float64 finish.

    One-sided Jacobi accumulates no rotations: its eigenvectors are the normalized columns,
    orthogonal to the cosine tolerance, so run to ``FUSED_FLOAT32_TOL`` they are as orthogonal
    as ``eigh``'s in float32. Its eigenvalues ``Σ² − σ`` carry the shift's absolute error, so
    they are replaced by Rayleigh quotients ``uᵢᵀ X uᵢ`` (error ``~eps ‖X‖`` plus the square of
    the eigenvector error).
    """
    from .eigh_triton import onesided_eigh

    a, norm = _pad(x, m)
    fixed = sweeps is not None
    _, cols, _ = onesided_eigh(a, norm, FUSED_FLOAT32_TOL, sweeps if fixed else max_sweeps, fixed)
    w = ((a @ cols) * cols).sum(-2)
    return w, cols.mT


ENGINES = ("auto", "torch", "triton")
#: Mixed precision: the float32 sweeps stop at ``‖off(A)‖_F <= MIXED_SWITCH_TOL ‖A‖_F``, then
#: at most ``REFINE_STEPS`` float64 Ogita–Aishima steps finish (float64 sweeps for the rest).
MIXED_SWITCH_TOL = 1e-4
REFINE_STEPS = 6
#: The fused engine's float32 stage (one-sided Jacobi) stops at cosines ``<= ONESIDED_SWITCH_TOL``
#: (Triton interpreter, n = 40-64: 1e-3 saves a sweep but leaves near-ties to the float64
#: fallback more often; 1e-5 costs 1-3 more sweeps on matrices with exact ties).
ONESIDED_SWITCH_TOL = 1e-4
#: Float32 inputs on the fused engine stop the one-sided stage at cosines ``<= FUSED_FLOAT32_TOL``
#: and skip the float64 finish (H100, 1000×64×64: 1e-5 and 1e-6 both give ``VᵀV − I`` ~2e-7).
FUSED_FLOAT32_TOL = 1e-6


def _use_fused(engine: str, flat: Tensor, block: int) -> bool:
    """Run the sweeps in the fused Triton kernel? (``engine="auto"``: on CUDA when it applies.)"""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "torch":
        return False
    from . import eigh_triton

    if engine == "auto":  # usable(): Triton here, padded n <= MAX_M, kernels compiled and probed
        return block == 1 and flat.device.type == "cuda" and eigh_triton.usable(flat)
    fits = block == 1 and eigh_triton.padded_size(flat.shape[-1]) <= eigh_triton.MAX_M
    if not fits:
        raise ValueError(f"engine='triton' needs block=1 and n <= {eigh_triton.MAX_M}, "
                         f"got block={block}, n={flat.shape[-1]}")
    if not eigh_triton.available(flat):
        raise ValueError("engine='triton' needs Triton and a CUDA tensor (or TRITON_INTERPRET=1 on CPU)")
    return True


def _flatten(x: Tensor, name: str = "x") -> tuple[Tensor, tuple[int, ...]]:
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (*batch, n, n), got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")
    batch = tuple(x.shape[:-2])
    n = x.shape[-1]
    return x.reshape(-1, n, n), batch


def eigh_jacobi(
    x: Tensor,
    *,
    block: int = 1,
    tol: float | None = None,
    max_sweeps: int = 20,
    sweeps: int | None = None,
    check_every: int = 1,
    sub_eigh: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
    mixed: bool = False,
    engine: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Eigendecomposition ``X = V diag(w) Vᵀ`` by batched parallel-order Jacobi.

    Parameters
    ----------
    x : Tensor, shape (*batch, n, n)
        Symmetric matrices (the symmetric part is used), float32 or float64, any device.
    block : int, default 1
        1: scalar Jacobi with closed-form rotations (elementwise only). ``k > 1``: block
        Jacobi with ``2k × 2k`` subproblems solved by ``sub_eigh``.
    tol : float, optional
        Per-item stopping test ``‖off(A)‖_F ≤ tol ‖A‖_F``; default ``4 n eps(dtype)``.
    max_sweeps : int, default 20
        Cap on the number of sweeps when testing convergence.
    sweeps : int, optional
        Run exactly this many sweeps, without convergence test (no host synchronization).
    check_every : int, default 1
        Test convergence once every this many sweeps.
    sub_eigh : callable, optional
        Batched eigensolver for the ``(B, 2k, 2k)`` subproblems (default ``torch.linalg.eigh``).
    mixed : bool, default False
        Mixed precision: sweeps in float32 until ``‖off(A)‖ ≤ 1e-4 ‖A‖`` (the fused engine:
        one-sided Jacobi until all cosines ``≤ ONESIDED_SWITCH_TOL``), then at most
        ``REFINE_STEPS`` float64 Ogita–Aishima steps (:mod:`~riemlearn.manifolds.eigh_refine`,
        matrix products only), and float64 Jacobi sweeps for the matrices the refinement leaves
        (near-ties, ill-conditioned ones); results in ``x.dtype``. Gives float32 inputs the
        accuracy of ``torch.linalg.eigh`` (plain float32 Jacobi accumulates roundoff over its
        many rotations: ~3–30× larger errors at n = 64) and float64 inputs all sweeps at float32
        cost. With ``sweeps=k``: ``k`` float32 sweeps, then exactly ``REFINE_STEPS`` refinement
        steps and no fallback (no host synchronization in the refinement). Fused engine,
        float32 input: the one-sided float32 stage to cosines ``<= FUSED_FLOAT32_TOL`` and
        Rayleigh-quotient eigenvalues only (as accurate, see the module notes; ``tol`` does
        not apply).
    engine : {"auto", "torch", "triton"}, default "auto"
        Who runs the sweeps of the scalar method (``block=1``): ``"torch"``, batched tensor
        operations (any device); ``"triton"``, one fused kernel, one program per matrix
        (:mod:`riemlearn.manifolds.eigh_triton`: CUDA, or CPU under ``TRITON_INTERPRET=1``;
        padded size ``<= 64``); ``"auto"``, the fused kernel for CUDA tensors when Triton is
        installed and it applies, else torch. Same arithmetic, same stopping test.

    Returns
    -------
    w : Tensor, shape (*batch, n)
        Ascending eigenvalues.
    v : Tensor, shape (*batch, n, n)
        Orthonormal eigenvectors (columns), ``v[..., :, j]`` for ``w[..., j]``.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> w, v = eigh_jacobi(x)
    >>> torch.allclose(w, torch.tensor([1.0, 3.0], dtype=torch.float64))
    True
    >>> torch.allclose(v @ torch.diag(w) @ v.mT, x)
    True
    """
    return _run(x, True, block, tol, max_sweeps, sweeps, check_every, sub_eigh, mixed, engine)  # type: ignore[return-value]


def _run(
    x: Tensor,
    vectors: bool,
    block: int,
    tol: float | None,
    max_sweeps: int,
    sweeps: int | None,
    check_every: int,
    sub_eigh: Callable | None,
    mixed: bool = False,
    engine: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    flat, batch = _flatten(x)
    n = flat.shape[-1]
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if sweeps is not None and sweeps < 0:
        raise ValueError(f"sweeps must be >= 0, got {sweeps}")
    if max_sweeps < 1 or check_every < 1:
        raise ValueError(f"max_sweeps and check_every must be >= 1, got {max_sweeps}, {check_every}")
    if flat.shape[0] == 0 or n <= 1:
        w = flat.diagonal(dim1=-2, dim2=-1).detach().clone()
        v = torch.eye(n, dtype=x.dtype, device=x.device).expand_as(flat).clone()
        return w.reshape(batch + (n,)), v.reshape(batch + (n, n))
    sub = sub_eigh or torch.linalg.eigh
    fused = _use_fused(engine, flat, block)
    scale = _power_of_two_scale(flat.detach())
    flat = flat.detach() * scale[:, None, None]
    d, u = _solve(flat, block, tol, max_sweeps, sweeps, check_every, sub, vectors, mixed, fused)
    w, order = torch.sort(d / scale[:, None], dim=-1)
    w = w[:, :n].contiguous().reshape(batch + (n,))
    if u is None:
        return w, None
    rows = torch.take_along_dim(u, order[:, :n, None], dim=-2)  # (b, n, m): eigenvectors as rows
    v = rows[:, :, :n].mT.contiguous()
    return w, v.reshape(batch + (n, n))


def _power_of_two_scale(flat: Tensor) -> Tensor:
    """Per matrix ``2^k`` with ``max |2^k X|`` in ``[0.5, 1)`` (1 for zero or non-finite matrices).

    Scaling by a power of two is exact, and it keeps the Frobenius norms, Cholesky factors and
    products of the sweeps (float32 ones above all) clear of overflow and underflow: without
    it, matrices of size ``1e±30`` lost all accuracy in float32.
    """
    amax = flat.abs().amax((-2, -1))
    _, e = torch.frexp(amax)
    e = torch.where(torch.isfinite(amax), e, torch.zeros_like(e))
    # 2^-e must stay finite in the dtype (float32: |e| <= 126)
    lim = int(math.log2(torch.finfo(flat.dtype).max)) - 1
    return torch.ldexp(torch.ones_like(amax), (-e).clamp(-lim, lim))


def eigvalsh_jacobi(
    x: Tensor,
    *,
    block: int = 1,
    tol: float | None = None,
    max_sweeps: int = 20,
    sweeps: int | None = None,
    check_every: int = 1,
    sub_eigh: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
    mixed: bool = False,
    engine: str = "auto",
) -> Tensor:
    """Ascending eigenvalues ``(*batch, n)`` by Jacobi, without accumulating eigenvectors.

    Same keywords as :func:`eigh_jacobi`; about 2/3 of its work.
    """
    return _run(x, False, block, tol, max_sweeps, sweeps, check_every, sub_eigh, mixed, engine)[0]
