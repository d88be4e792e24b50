"""Batched CPU eigendecomposition split over torch's intra-op threads.

``torch.linalg.eigh`` on the CPU walks a batch one matrix after the other: LAPACK's ``syevd``
runs on each small matrix in turn, and the intra-op threads only help *inside* one matrix,
which does not pay at the sizes of this field (measured on a 2-core Xeon, torch 2.13 + MKL:
1024×32×32 float64 takes ~70 ms with 1 thread and with 2). Here the batch is cut into one
chunk per thread; each chunk is decomposed by the same LAPACK routine with MKL limited to one
thread *for the calling thread only* (``mkl_set_num_threads_local``, thread-local: no global
torch/MKL setting is touched; the calling thread's own settings are lowered to one thread
for the duration of the call and restored). On 2 cores this runs 1024×32×32 float64 in ~35 ms. Results are
bit-identical to single-threaded ``torch.linalg.eigh``: every matrix is decomposed by the same
routine, only the thread that does it changes (multithreaded MKL may round differently for
larger ``n``).

Why MKL must be single-threaded per chunk: a second thread that calls MKL with its own
OpenMP team makes the teams compete for the cores, and one ``eigh`` of 1024×32×32 then takes
~170 ms instead of 70. Where the thread-local switch is not available (a torch build without
MKL), or with one intra-op thread, or for small batches, the plain serial call runs.

The number of threads is ``torch.get_num_threads()``: ``torch.set_num_threads(1)`` turns
the split off. The calling thread decomposes the first chunk itself and short-lived threads
the others (~0.1 ms to start). Not a persistent pool: a live thread that has used OpenMP
stays counted by libgomp, which then throttles every team's spin-wait (more managed threads
than cores), and the caller's own multithreaded MKL calls slow down 2.4× afterwards
(1024×32×32 ``eigh`` with 2 threads: 70 → 170 ms, measured); a thread that has exited
leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import threading

import torch
from torch import Tensor

__all__ = ["eigh_cpu", "eigvalsh_cpu", "cpu_chunks", "MIN_CHUNK_WORK", "available"]

#: Least work per chunk, in units of ``n³`` summed over the chunk's matrices (~1-2 ms of
#: LAPACK time at n = 22-32): below it starting a thread (0.1-0.3 ms) costs more than it
#: saves. Measured, 2-core Xeon, 2 threads, float64: 30×16×16 (123k) and 4×64×64 (1M) lose
#: 5-30 % when split; 288×22×22 (3.1M) gains 1.8×, 30×93×93 1.7×, 1024×32×32 2.0×.
MIN_CHUNK_WORK = 600_000



def _find_mkl_local():
    """MKL's ``MKL_Set_Num_Threads_Local`` (linked into torch), or ``None``.

    The lower-case ``mkl_set_num_threads_local`` symbol is the Fortran entry (argument by
    reference); the C macro of that name maps to this by-value function.
    """
    if not torch.backends.mkl.is_available():
        return None
    libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"):
        path = os.path.join(libdir, name)
        if not os.path.exists(path):
            continue
        try:
            fn = ctypes.CDLL(path).MKL_Set_Num_Threads_Local  # the by-value C entry
        except (OSError, AttributeError):
            return None
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


def _find_omp_set():
    """``omp_set_num_threads`` of the OpenMP runtime torch loaded, or ``None``."""
    if not torch.backends.openmp.is_available():
        return None
    libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
    names = [n for n in sorted(os.listdir(libdir)) if n.startswith(("libgomp", "libiomp"))]
    for name in names + ["libgomp.so.1"]:
        try:
            lib = ctypes.CDLL(os.path.join(libdir, name) if name in names else name)
            fn = lib.omp_set_num_threads
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        return fn
    return None


_MKL_LOCAL = _find_mkl_local()
_OMP_SET = _find_omp_set()


def available() -> bool:
    """Can batches be split over threads here (MKL's and OpenMP's per-thread switches found)?"""
    return _MKL_LOCAL is not None and _OMP_SET is not None


def _serial_worker() -> None:
    """Make this (new) worker thread run MKL and OpenMP single-threaded.

    torch sets a thread's OpenMP thread count lazily (to its global count) at the thread's
    first parallel op or ``get_num_threads`` call, so that init is triggered first.
    """
    torch.get_num_threads()  # torch's lazy per-thread init, which would undo the setting below
    if _OMP_SET is not None:
        _OMP_SET(1)
    if _MKL_LOCAL is not None:
        _MKL_LOCAL(1)


def cpu_chunks(batch: int, n: int) -> int:
    """How many chunks a CPU batch of ``batch`` matrices ``n × n`` is cut into (1: serial).

    Examples
    --------
    >>> import torch
    >>> cpu_chunks(1, 64)
    1
    """
    threads = torch.get_num_threads()
    if _MKL_LOCAL is None or _OMP_SET is None or threads < 2 or batch < 2:
        return 1
    by_work = (batch * n**3) // MIN_CHUNK_WORK
    return int(max(1, min(threads, batch, by_work)))


def _run_chunks(x: Tensor, vectors: bool) -> tuple[Tensor, Tensor | None] | None:
    n = x.shape[-1]
    b = x.numel() // max(n * n, 1)
    k = cpu_chunks(b, n) if x.dtype in (torch.float32, torch.float64) else 1
    if k < 2 or x.requires_grad or x.device.type != "cpu":
        return None
    flat = x.reshape(b, n, n)
    w = x.new_empty(b, n)
    # eigenvectors in LAPACK's column-major layout, as torch.linalg.eigh returns them
    v = x.new_empty(b, n, n).mT if vectors else None
    bounds = [(i * b) // k for i in range(k + 1)]

    def work(i: int) -> None:
        lo, hi = bounds[i], bounds[i + 1]
        if v is not None:
            torch.linalg.eigh(flat[lo:hi], out=(w[lo:hi], v[lo:hi]))
        else:
            torch.linalg.eigvalsh(flat[lo:hi], out=w[lo:hi])

    failed = threading.Event()

    def guarded(i: int) -> None:
        try:
            work(i)
        except Exception:  # reported by the serial re-run below, with its batch index
            failed.set()

    def worker(i: int) -> None:
        _serial_worker()
        guarded(i)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(1, k)]
    for t in threads:
        t.start()
    assert _MKL_LOCAL is not None and _OMP_SET is not None
    # This thread single-threaded too while the workers run (its OpenMP helper thread would
    # compete with them for the cores); its own settings are restored below.
    omp_before = torch.get_num_threads()
    mkl_before = _MKL_LOCAL(1)
    _OMP_SET(1)
    try:
        guarded(0)
    finally:
        _OMP_SET(omp_before)
        _MKL_LOCAL(mkl_before)
        for t in threads:
            t.join()
    if failed.is_set():
        return None  # the caller's serial call raises torch's own error for the whole batch
    w = w.reshape(x.shape[:-1])
    return w, (v.reshape(x.shape) if v is not None else None)


def eigh_cpu(x: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.linalg.eigh(x)`` for CPU ``(*batch, n, n)``, the batch split over threads.

    Examples
    --------
    >>> import torch
    >>> x = torch.eye(3, dtype=torch.float64).expand(200, 3, 3) * 2.0
    >>> w, v = eigh_cpu(x)
    >>> bool((w == 2.0).all()), tuple(v.shape)
    (True, (200, 3, 3))
    """
    out = _run_chunks(x, True)
    if out is None:
        return torch.linalg.eigh(x)
    w, v = out
    assert v is not None
    return w, v


def eigvalsh_cpu(x: Tensor) -> Tensor:
    """``torch.linalg.eigvalsh(x)`` for CPU ``(*batch, n, n)``, the batch split over threads."""
    out = _run_chunks(x, False)
    return torch.linalg.eigvalsh(x) if out is None else out[0]
