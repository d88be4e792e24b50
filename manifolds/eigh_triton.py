"""Fused Triton engine for the scalar parallel-order Jacobi sweeps (CUDA, ``n <= 64``).

:func:`jacobi_sweeps` runs the sweeps of :func:`riemlearn.manifolds.eigh_jacobi.eigh_jacobi`
(``block=1``: Rutishauser rotations, round-robin order, per-matrix stopping test
``‖off(A)‖_F <= tol ‖A‖_F`` or roundoff floor) in one kernel launch, one program per matrix,
the matrix and its rotation accumulator held on chip for the whole solve (see
:mod:`riemlearn.manifolds._jacobi_triton_kernel`). The torch implementation does the same
arithmetic as a few dozen batched kernels per round, each reading and writing the whole batch
in global memory; on an H100 the fused kernel is an order of magnitude faster at n = 64
(``benchmarks/gpu_spectral.py``).

Sizes are padded to a power of two ``M`` (a Triton block shape), registers bound the tile:
``M <= MAX_M`` (64). Triton is optional: :func:`available` says whether the engine can run
on a tensor (Triton importable and the tensor on CUDA, or on the CPU under Triton's
interpreter, ``TRITON_INTERPRET=1`` set before Triton is imported: the test suite checks the
kernel that way without a GPU).
"""

from __future__ import annotations

import functools
import math
import os
import warnings

import torch
from torch import Tensor

__all__ = [
    "available", "usable", "disable", "interpreting", "jacobi_sweeps", "onesided_eigh", "padded_size",
    "MAX_M", "SHIFT",
]

#: Largest padded size handled by the fused kernel (its tile lives in registers).
MAX_M = 64


@functools.lru_cache(maxsize=1)
def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install: the engine is simply unavailable
        return False
    return True


def interpreting() -> bool:
    """Is Triton's CPU interpreter on? (``TRITON_INTERPRET=1`` set before Triton was imported.)"""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


_DISABLED: list[str] = []  # why the engine was switched off in this process, if it was


def disable(err: BaseException) -> None:
    """Switch the engine off for this process after a compile/launch failure (warns once)."""
    if not _DISABLED:
        _DISABLED.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
        warnings.warn(
            "riemlearn: the fused Triton Jacobi kernel failed on this machine "
            f"({_DISABLED[0]}); the torch eigensolver paths are used instead",
            RuntimeWarning,
            stacklevel=3,
        )


def available(x: Tensor) -> bool:
    """Can the fused engine run on ``x``? (Triton importable; CUDA tensor, or CPU under the interpreter.)"""
    if x.dtype not in (torch.float32, torch.float64) or not _triton_importable() or _DISABLED:
        return False
    return x.device.type == "cuda" or (x.device.type == "cpu" and interpreting())


_PROBED: dict[tuple[int, torch.dtype, str], bool] = {}


def usable(x: Tensor) -> bool:
    """:func:`available`, and both kernels compiled and ran here for ``x``'s padded size and dtype.

    The first call per (size, dtype, device) runs both kernels on two tiny matrices (the compile
    a first real call would pay anyway); a failure (e.g. a Triton build that cannot compile
    them) switches the engine off with one warning, so the dispatch picks the torch paths.
    """
    if not available(x) or x.shape[-1] < 1:
        return False
    m = padded_size(x.shape[-1])
    if m > MAX_M:
        return False
    key = (m, x.dtype, str(x.device))
    ok = _PROBED.get(key)
    if ok is None:
        a = torch.diag_embed(torch.arange(1, 2 * m + 1, dtype=x.dtype, device=x.device).view(2, m))
        a = a + 0.5 * torch.ones(m, m, dtype=x.dtype, device=x.device)
        norm = torch.linalg.matrix_norm(a)
        try:
            onesided_eigh(a, norm, 1e-5, 2)
            jacobi_sweeps(a, torch.eye(m, dtype=x.dtype, device=x.device).expand(2, m, m), norm, 1e-5, 2)
            ok = True
        except torch.OutOfMemoryError:
            raise
        except Exception as err:  # compile/launch failure: the torch paths take over
            disable(err)
            ok = False
        _PROBED[key] = ok
    return ok and not _DISABLED


def padded_size(n: int) -> int:
    """The power of two ``M >= max(n, 2)`` the kernel works on."""
    return 1 << max(1, (n - 1).bit_length())


@functools.lru_cache(maxsize=1)
def _kernel():
    from ._jacobi_triton_kernel import jacobi_kernel

    return jacobi_kernel  # an interpreted function under TRITON_INTERPRET=1


_TABLES: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}


def _tables(m: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``partner`` and ``isp`` tables ``(m − 1, m)`` int32 of the round-robin schedule."""
    key = (m, str(device))
    hit = _TABLES.get(key)
    if hit is None:
        from .eigh_jacobi import jacobi_schedule

        rounds = jacobi_schedule(m)
        partner = torch.empty(len(rounds), m, dtype=torch.int32)
        isp = torch.zeros(len(rounds), m, dtype=torch.int32)
        for r, pairs in enumerate(rounds):
            for p, q in pairs:
                partner[r, p], partner[r, q] = q, p
                isp[r, p] = 1
        hit = (partner.to(device), isp.to(device))
        _TABLES[key] = hit
    return hit


def _num_warps(m: int, dtype: torch.dtype = torch.float32) -> int:
    """Warps per program. Measured on an H100 (1000 matrices, two-sided kernel, M = 64, plain
    precision): float32 11.4 / 9.8 / 10.1 ms with 2 / 4 / 8 warps, float64 141 / 37 / 29 ms."""
    if m <= 8:
        return 1
    if m <= 16:
        return 2
    return 8 if dtype == torch.float64 else 4


def jacobi_sweeps(
    a: Tensor,
    u: Tensor | None,
    norm: Tensor,
    tol: float,
    max_sweeps: int,
    fixed: bool = False,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Jacobi sweeps on a padded batch; returns ``(diag(A_final), U_final, sweeps)``.

    Parameters
    ----------
    a : Tensor, shape (b, M, M)
        Symmetric, ``M`` a power of two ``<= MAX_M``; not modified.
    u : Tensor, shape (b, M, M), optional
        Rotation accumulator (rows), updated as ``U <- L U`` for each rotation ``L``; ``None``:
        eigenvalues only.
    norm : Tensor, shape (b,)
        ``‖A‖_F`` of the unpadded matrices (the stopping test's scale).
    tol : float
        Per-matrix stopping test ``‖off(A)‖_F <= tol ‖A‖_F`` (and the roundoff-floor test).
    max_sweeps : int
        Cap on the sweeps; with ``fixed=True``, exactly this many (no test).

    Returns
    -------
    w : Tensor, shape (b, M)
        Diagonal of the final ``A`` (unsorted).
    u : Tensor, shape (b, M, M) or None
        The updated accumulator.
    sweeps : Tensor, shape (b,), int32
        Sweeps run per matrix.
    """
    b, m, _ = a.shape
    if m > MAX_M or m != padded_size(m):
        raise ValueError(f"padded size must be a power of two <= {MAX_M}, got {m}")
    work = a.contiguous().clone()
    vec = u.contiguous().clone() if u is not None else work  # dummy pointer when no vectors
    w = torch.empty(b, m, dtype=a.dtype, device=a.device)
    sweeps = torch.empty(b, dtype=torch.int32, device=a.device)
    if b == 0:
        return w, (vec if u is not None else None), sweeps
    partner, isp = _tables(m, a.device)
    eps = torch.finfo(a.dtype).eps
    t = -1.0 if fixed else float(tol)
    st = -1.0 if fixed else math.sqrt(float(tol))
    kernel = _kernel()
    scale = norm.to(a.dtype).contiguous()
    kernel[(b,)](
        work, vec, w, sweeps, scale, partner, isp, t, st, eps, int(max_sweeps),
        M=m, ROUNDS=m - 1, VECTORS=u is not None, F32=a.dtype == torch.float32,
        num_warps=_num_warps(m, a.dtype),
    )
    return w, (vec if u is not None else None), sweeps


@functools.lru_cache(maxsize=1)
def _onesided_kernel():
    from ._jacobi_triton_kernel import onesided_kernel

    return onesided_kernel


#: Shift ``X + SHIFT ‖X‖_F I`` that makes any symmetric ``X`` positive definite with condition
#: number at most ``(SHIFT + 1) / (SHIFT − 1)`` (9 here) before the Cholesky factorization.
SHIFT = 1.25


def onesided_eigh(
    x: Tensor, norm: Tensor, tol: float, max_sweeps: int, fixed: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Eigendecomposition of symmetric ``(b, M, M)`` by one-sided Jacobi on a Cholesky factor.

    ``X + σI = L Lᵀ`` with ``σ = M eps ‖X‖_F`` (``norm``) where that factorization succeeds
    (positive definite ``X``), else ``σ = SHIFT ‖X‖_F``; the fused kernel rotates the
    columns of ``L`` until pairwise orthogonal (largest cosine ``<= tol``), which leaves
    ``L V = U Σ`` with ``X + σI = U Σ² Uᵀ``: eigenvectors are the normalized columns and
    eigenvalues ``Σ² − σ``. Accuracy is absolute (``~ tol ‖X‖``), as for the two-sided method;
    the factorization's roundoff is relative to ``‖X + σI‖``, so indefinite matrices (large
    shift) get up to ``1 + SHIFT`` times the reconstruction error of positive definite ones.
    The mixed-precision solver refines float64 results in float64.

    Returns
    -------
    w : Tensor, shape (b, M)
        Eigenvalues (unsorted).
    u : Tensor, shape (b, M, M)
        Eigenvectors as columns, matching ``w``.
    sweeps : Tensor, shape (b,), int32
        Sweeps run per matrix.
    """
    b, m, _ = x.shape
    if m > MAX_M or m != padded_size(m):
        raise ValueError(f"padded size must be a power of two <= {MAX_M}, got {m}")
    tiny, eye = torch.finfo(x.dtype).tiny, torch.eye(m, dtype=x.dtype, device=x.device)
    norm = norm.to(x.dtype)
    # Positive definite input (every SPD use) is factored nearly as is: the exact shift
    # m·eps·‖X‖ only guards against roundoff, and the small shift keeps the reconstruction error
    # at eps‖X‖ (the large shift makes it eps·(1 + SHIFT)‖X‖). Matrices whose factorization fails
    # (indefinite, singular) take the large shift, which cannot fail for finite input.
    shift = (m * torch.finfo(x.dtype).eps * norm).clamp_min(tiny)
    g, info = torch.linalg.cholesky_ex(x + shift.view(-1, 1, 1) * eye)
    if bool((info != 0).any()):
        idx = (info != 0).nonzero().squeeze(-1)
        big = (SHIFT * norm.index_select(0, idx)).clamp_min(tiny)
        gi, info = torch.linalg.cholesky_ex(x.index_select(0, idx) + big.view(-1, 1, 1) * eye)
        if bool((info != 0).any()):  # condition <= 9: only non-finite input gets here
            raise ValueError("one-sided Jacobi: the shifted matrix is not positive definite "
                             "(non-finite input?)")
        g, shift = g.index_copy(0, idx, gi), shift.index_copy(0, idx, big)
    g = g.contiguous()
    sweeps = torch.empty(b, dtype=torch.int32, device=x.device)
    if b:
        partner, isp = _tables(m, x.device)
        t = -1.0 if fixed else float(tol)
        # The largest cosine of a sweep is not monotone in early sweeps (unlike the two-sided
        # off-norm), so the roundoff-floor test only applies near the floor itself.
        floor = 10.0 * m * torch.finfo(x.dtype).eps
        st = -1.0 if fixed else min(math.sqrt(float(tol)), max(floor, float(tol)))
        _onesided_kernel()[(b,)](
            g, sweeps, partner, isp, t, st, torch.finfo(x.dtype).eps, int(max_sweeps),
            M=m, ROUNDS=m - 1, F32=x.dtype == torch.float32, num_warps=_num_warps(m, x.dtype),
        )
    sig2 = (g * g).sum(-2)
    u = g / sig2.sqrt().clamp_min(torch.finfo(x.dtype).tiny).unsqueeze(-2)
    return sig2 - shift.unsqueeze(-1), u, sweeps
