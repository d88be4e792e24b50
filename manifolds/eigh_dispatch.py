"""Which eigensolver runs: the path choice behind :func:`riemlearn.manifolds.spectral.eigh`.

Automatic choice (``"auto"``, the default), by device, dtype, size ``n`` and batch:

* CPU: ``torch.linalg.eigh`` (LAPACK) with the batch dealt out in pieces to torch's OpenMP
  threads (:mod:`riemlearn.manifolds.eigh_cpu_threads`; the results of single-threaded LAPACK,
  2× faster on 2 cores for 1024×32×32). Other non-CUDA devices: ``torch.linalg.eigh``.
* CUDA, at most ``CUDA_HOST_MAX_BATCH`` (2) matrices of ``n <= 32``, or twice as many of
  ``n <= CUDA_HOST_MAX_N`` (64): LAPACK on the host and back. One ``torch.linalg.eigh`` call on
  CUDA synchronizes with the host (it reads its error flags) and took 0.14-0.27 ms for one
  matrix of n = 8...22 on an H100 host (0.87 ms at n = 64, 3.2 ms for 4×64×64, where the
  Jacobi path took 3.4 ms); the round trip to LAPACK took 0.07-0.13 ms (0.42 ms at n = 64,
  1.6 ms for 4×64×64), but 0.31 against 0.28 ms for 4×22×22. Fréchet means, batch-norm
  statistics and Newton directions decompose one matrix per group.
* CUDA, ``n <= CUDA_TORCH_MAX_N`` (32): ``torch.linalg.eigh`` — cuSOLVER's batched Jacobi
  path, the fastest there is (1000×22×22 in 0.5 ms on an H100) — cut into chunks of at most
  ``CUDA_EIGH_MAX_BATCH[dtype]`` matrices, because one call on a very large batch fails.
* CUDA, ``n > 32`` and a batch of at least ``CUDA_JACOBI_MIN_BATCH`` matrices (and
  ``n <= CUDA_JACOBI_MAX_N``): the batched Jacobi solver of
  :mod:`riemlearn.manifolds.eigh_jacobi`. Above 32 cuSOLVER leaves its batched path and
  ``torch.linalg.eigh`` of 1000×64×64 takes ~0.8 s on an H100, no faster than one CPU core.
  With Triton installed and ``n <= 64`` (padded to a power of two), the scalar method runs
  as one fused kernel, one program per matrix (:mod:`riemlearn.manifolds.eigh_triton`; its
  kernels are compiled and probed on two tiny matrices at first use, and a failure switches
  them off with one warning);
  otherwise block Jacobi with blocks of at most 16 (``jacobi_block(n)``), whose
  ``2k × 2k ≤ 32`` subproblems go back to cuSOLVER's fast batched path.

Measured facts behind the constants (H100, PyTorch 2.11 cu130, ``benchmarks/gpu_spectral.py
--probe-chunks``): one ``torch.linalg.eigh`` call succeeded on 8192, 16384 and 32768 matrices
of 22×22 and 32×32 in both dtypes and failed from 65536 on (``CUSOLVER_STATUS_INTERNAL_ERROR``,
or out of memory at 131072 float64); chunks of 8192 (a 4× margin) ran 100000×22×22 in 40 ms
(float32) / 61 ms (float64). ``torch.linalg.eigh`` of 1000×64×64 took 0.81 s (float32) /
0.75 s (float64); the torch block-Jacobi path 47 / 53 ms; the fused two-sided kernel 9.8 ms
(float32, plain precision) and 29 ms (float64); the default fused path (one-sided float32, +
float64 refinement for float64 input) 2.9 / 5.5 ms, and logm forward+backward 3.2 / 7.0 ms,
with float32 errors 18-90× below cuSOLVER's float32 ``eigh`` (benchmarks/RESULTS.md).
``CUDA_JACOBI_MIN_BATCH``,
``CUDA_JACOBI_MAX_N`` and ``CUDA_JACOBI_BLOCK`` are plain module constants: change them at
start-up if your hardware differs.

Forcing a path (tests, reproducibility): :func:`spectral_backend` is a context manager (and
decorator) that sets the choice for the current thread or task only (a
:class:`contextvars.ContextVar`: no global state is touched, threads do not see each
other's setting). Results of one path are deterministic for a given input, device and
torch build, and Jacobi results do not depend on the other matrices of the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import Tensor

from . import eigh_triton
from .base import plain_float_tensor
from .eigh_cpu_threads import eigh_cpu, eigvalsh_cpu
from .eigh_jacobi import ENGINES, eigh_jacobi, eigvalsh_jacobi

__all__ = [
    "spectral_backend",
    "current_backend",
    "choose_path",
    "auto_path",
    "jacobi_block",
    "eigh",
    "eigvalsh",
    "BACKENDS",
    "CUDA_EIGH_MAX_BATCH",
    "CUDA_TORCH_MAX_N",
    "CUDA_HOST_MAX_BATCH",
    "CUDA_HOST_MAX_N",
    "CUDA_JACOBI_MIN_BATCH",
    "CUDA_JACOBI_MAX_N",
    "CUDA_JACOBI_BLOCK",
    "JACOBI_MIXED",
    "fused_applies",
]

BACKENDS = ("auto", "torch", "jacobi")

#: Largest batch given to one ``torch.linalg.eigh`` call on CUDA, per dtype (H100: 32768 was
#: the largest single call that succeeded for n = 22 and 32, 65536 failed; 8192 keeps a margin).
CUDA_EIGH_MAX_BATCH: dict[torch.dtype, int] = {torch.float32: 8192, torch.float64: 8192}
#: Largest ``n`` for which cuSOLVER's batched (fast) path is used by ``torch.linalg.eigh``.
CUDA_TORCH_MAX_N = 32
#: At most this many matrices of ``n <= 32`` (twice as many up to ``CUDA_HOST_MAX_N``) go from
#: CUDA to host LAPACK (see above).
CUDA_HOST_MAX_BATCH = 2
CUDA_HOST_MAX_N = 64
#: Smallest batch for which Jacobi replaces ``torch.linalg.eigh`` on CUDA for ``n > 32``.
CUDA_JACOBI_MIN_BATCH = 2
#: Largest ``n`` sent to Jacobi automatically (a round costs O(n²) per pair of blocks).
CUDA_JACOBI_MAX_N = 512
#: Block size of the CUDA Jacobi path; ``None``: :func:`jacobi_block` (at most 16).
CUDA_JACOBI_BLOCK: int | None = None
#: Mixed-precision Jacobi per input dtype (float32 sweeps, then float64 Ogita–Aishima refinement,
#: float64 sweeps for what it leaves; on the fused engine float32 input runs the one-sided
#: float32 stage alone, which already beats ``eigh``). Plain float32 two-sided Jacobi is 3–30×
#: less accurate than ``torch.linalg.eigh`` at n = 64 (roundoff of its many rotations); the
#: mixed mode matches or beats it (tests/test_eigh_engine.py). For float64 inputs it puts all
#: sweeps in float32: 1000×64×64 on an H100 took 5.5 ms mixed against 29–37 ms plain.
JACOBI_MIXED: dict[torch.dtype, bool] = {torch.float32: True, torch.float64: True}


@dataclass(frozen=True)
class _Config:
    backend: str = "auto"
    chunk_size: int | None = None
    block: int | None = None
    sweeps: int | None = None
    mixed: bool | None = None
    engine: str = "auto"


_DEFAULT = _Config()  # frozen dataclass: an immutable default
_CONFIG: ContextVar[_Config] = ContextVar("riemlearn_spectral_backend", default=_DEFAULT)


@contextmanager
def spectral_backend(
    backend: str = "auto",
    *,
    chunk_size: int | None = None,
    jacobi_block: int | None = None,
    jacobi_sweeps: int | None = None,
    jacobi_mixed: bool | None = None,
    jacobi_engine: str = "auto",
) -> Iterator[None]:
    """Force the eigensolver used by every spectral function inside the ``with`` block.

    Parameters
    ----------
    backend : {"auto", "torch", "jacobi"}
        ``"torch"``: ``torch.linalg.eigh`` on every device (chunked on CUDA); ``"jacobi"``:
        :func:`~riemlearn.manifolds.eigh_jacobi.eigh_jacobi` on every device; ``"auto"``: the
        automatic choice described in this module.
    chunk_size : int, optional
        Cut batches into chunks of at most this many matrices for ``torch.linalg.eigh`` (on
        any device; default: ``CUDA_EIGH_MAX_BATCH`` on CUDA, no chunking elsewhere).
    jacobi_block : int, optional
        Block size of the Jacobi path (1: scalar Jacobi). Default: 1 when ``backend="jacobi"``
        is forced, :func:`jacobi_block` on the automatic CUDA path.
    jacobi_sweeps : int, optional
        Run exactly this many Jacobi sweeps (no convergence test, no host synchronization).
    jacobi_mixed : bool, optional
        Mixed-precision Jacobi (float32 sweeps, float64 finish); default ``JACOBI_MIXED[dtype]``.
    jacobi_engine : {"auto", "torch", "triton"}, default "auto"
        Who runs the scalar Jacobi sweeps (see :func:`~riemlearn.manifolds.eigh_jacobi.eigh_jacobi`):
        ``"auto"`` uses the fused Triton kernel on CUDA when Triton is installed.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.eigh_dispatch import eigh, spectral_backend, current_backend
    >>> x = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    >>> with spectral_backend("jacobi"):
    ...     print(current_backend())
    ...     w, v = eigh(x)
    jacobi
    >>> torch.allclose(w, torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64))
    True
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    for name, val in (("chunk_size", chunk_size), ("jacobi_block", jacobi_block)):
        if val is not None and (not isinstance(val, int) or val < 1):
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if jacobi_sweeps is not None and (not isinstance(jacobi_sweeps, int) or jacobi_sweeps < 0):
        raise ValueError(f"jacobi_sweeps must be a non-negative int, got {jacobi_sweeps!r}")
    if jacobi_engine not in ENGINES:
        raise ValueError(f"jacobi_engine must be one of {ENGINES}, got {jacobi_engine!r}")
    cfg = _Config(backend, chunk_size, jacobi_block, jacobi_sweeps, jacobi_mixed, jacobi_engine)
    token = _CONFIG.set(cfg)
    try:
        yield
    finally:
        _CONFIG.reset(token)


def current_backend() -> str:
    """The backend in force here (``"auto"`` unless inside :func:`spectral_backend`)."""
    return _CONFIG.get().backend


def jacobi_block(n: int, max_block: int = 16) -> int:
    """Block size for ``n``: the fewest (even) blocks of at most ``max_block`` indices.

    Subproblems are ``2k × 2k`` with ``2k <= 2 max_block`` (32: cuSOLVER's batched path).

    Examples
    --------
    >>> [jacobi_block(n) for n in (33, 64, 93, 128)]
    [9, 16, 16, 16]
    """
    nb = max(2, -(-n // max_block))
    nb += nb % 2
    return -(-n // nb)


def auto_path(device_type: str, dtype: torch.dtype, n: int, batch: int) -> str:
    """The automatic choice, ``"torch"``, ``"jacobi"`` or ``"host"``, for ``batch`` ``n × n`` matrices.

    Examples
    --------
    >>> import torch
    >>> auto_path("cuda", torch.float32, 64, 1000), auto_path("cpu", torch.float32, 64, 1000)
    ('jacobi', 'torch')
    >>> auto_path("cuda", torch.float64, 22, 1)
    'host'
    """
    if device_type != "cuda" or dtype not in (torch.float32, torch.float64):
        return "torch"
    if n <= CUDA_HOST_MAX_N and batch <= CUDA_HOST_MAX_BATCH * (1 if n <= CUDA_TORCH_MAX_N else 2):
        return "host"
    if CUDA_TORCH_MAX_N < n <= CUDA_JACOBI_MAX_N and batch >= CUDA_JACOBI_MIN_BATCH:
        return "jacobi"
    return "torch"


def choose_path(x: Tensor) -> str:
    """``"torch"``, ``"jacobi"`` or ``"host"``: the path :func:`eigh` takes for ``x`` ``(*batch, n, n)``."""
    cfg = _CONFIG.get()
    if cfg.backend != "auto":
        return cfg.backend
    n = x.shape[-1]
    path = auto_path(x.device.type, x.dtype, n, x.numel() // max(n * n, 1))
    if path == "host" and (torch.cuda.is_current_stream_capturing() or not plain_float_tensor(x)):
        return "torch"  # a graph capture cannot copy to the host; subclasses/fake tensors stay put
    return path


def _host_eigh(x: Tensor, vectors: bool) -> tuple[Tensor, Tensor | None]:
    """LAPACK on a host copy of a few small CUDA matrices, results copied back."""
    h = x.cpu()
    if vectors:
        w, v = torch.linalg.eigh(h)
        return w.to(x.device), v.to(x.device)
    return torch.linalg.eigvalsh(h).to(x.device), None


def _chunk_limit(x: Tensor, cfg: _Config) -> int | None:
    if cfg.chunk_size is not None:
        return cfg.chunk_size
    if x.device.type == "cuda":
        return CUDA_EIGH_MAX_BATCH.get(x.dtype, min(CUDA_EIGH_MAX_BATCH.values()))
    return None


def _torch_eigh(x: Tensor, limit: int | None, vectors: bool) -> tuple[Tensor, Tensor | None]:
    """``torch.linalg.eigh`` / ``eigvalsh`` in batch chunks of at most ``limit`` matrices."""
    n = x.shape[-1]
    b = x.numel() // max(n * n, 1)
    if limit is None or b <= limit:
        if vectors:
            return torch.linalg.eigh(x)
        return torch.linalg.eigvalsh(x), None
    flat = x.reshape(b, n, n)
    w = x.new_empty(b, n)
    v = x.new_empty(b, n, n) if vectors else None
    for start in range(0, b, limit):  # chunks of the batch, not single matrices
        stop = min(start + limit, b)
        if v is not None:
            torch.linalg.eigh(flat[start:stop], out=(w[start:stop], v[start:stop]))
        else:
            torch.linalg.eigvalsh(flat[start:stop], out=w[start:stop])
    w = w.reshape(x.shape[:-1])
    return w, (v.reshape(x.shape) if v is not None else None)


def fused_applies(x: Tensor) -> bool:
    """Would the fused Triton Jacobi kernel run on ``x``? (CUDA, Triton installed, padded n <= 64.)"""
    return x.device.type == "cuda" and eigh_triton.usable(x)


def _jacobi_kwargs(x: Tensor, cfg: _Config) -> dict:
    if cfg.block is not None:
        block = cfg.block
    elif cfg.backend == "jacobi" or (cfg.engine != "torch" and fused_applies(x)):
        block = 1
    else:
        block = CUDA_JACOBI_BLOCK or jacobi_block(x.shape[-1])
    limit = _chunk_limit(x, cfg)

    def sub_eigh(s: Tensor) -> tuple[Tensor, Tensor]:
        w, v = _torch_eigh(s, limit, True)
        assert v is not None
        return w, v

    mixed = JACOBI_MIXED.get(x.dtype, False) if cfg.mixed is None else cfg.mixed
    return {"block": block, "sweeps": cfg.sweeps, "sub_eigh": sub_eigh, "mixed": mixed, "engine": cfg.engine}


def eigh(x: Tensor) -> tuple[Tensor, Tensor]:
    """Eigendecomposition of symmetric ``(*batch, n, n)`` by the chosen path; ascending ``w``.

    No autograd (the input is detached): the spectral functions carry their own backward.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> w, v = eigh(x)
    >>> torch.allclose(v @ torch.diag(w) @ v.mT, x)
    True
    """
    x = x.detach()
    cfg = _CONFIG.get()
    if cfg is _DEFAULT and x.device.type == "cpu":  # LAPACK, the batch split over threads
        return eigh_cpu(x)
    path = choose_path(x)
    if path == "jacobi":
        return eigh_jacobi(x, **_jacobi_kwargs(x, cfg))
    if path == "host":
        w, v = _host_eigh(x, True)
    else:
        w, v = _torch_eigh(x, _chunk_limit(x, cfg), True)
    assert v is not None
    return w, v


def eigvalsh(x: Tensor) -> Tensor:
    """Ascending eigenvalues ``(*batch, n)`` of symmetric ``(*batch, n, n)`` by the chosen path."""
    x = x.detach()
    cfg = _CONFIG.get()
    if cfg is _DEFAULT and x.device.type == "cpu":
        return eigvalsh_cpu(x)
    path = choose_path(x)
    if path == "jacobi":
        return eigvalsh_jacobi(x, **_jacobi_kwargs(x, cfg))
    if path == "host":
        return _host_eigh(x, False)[0]
    return _torch_eigh(x, _chunk_limit(x, cfg), False)[0]
