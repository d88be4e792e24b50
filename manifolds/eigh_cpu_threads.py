"""Batched CPU eigendecomposition split over torch's intra-op (OpenMP) threads.

``torch.linalg.eigh`` on the CPU walks a batch one matrix after the other: LAPACK's ``syevd``
runs on each small matrix in turn, and the intra-op threads only help *inside* one matrix,
which does not pay at the sizes of this field (measured on a 2-core Xeon, torch 2.13 + MKL:
1024×32×32 float64 takes ~70 ms with 1 thread and with 2). Here the batch is dealt out in
pieces to the threads of torch's own OpenMP team: an OpenMP parallel region is opened
through the runtime's ``GOMP_parallel`` entry point (what ``#pragma omp parallel`` compiles
to; libgomp and LLVM's libomp both provide it) with a Python callback as its body, and every
thread of the team takes pieces from a shared counter and decomposes them with
``torch.linalg.eigh`` (which releases the GIL). Inside the region torch's ``parallel_for`` and
MKL run single-threaded, as they do in any nested region. On 2 cores: 1024×32×32 float64
in ~35 ms (70 serial), 288×22×22 in ~5.7 ms (10.4), 100×12×12 in 0.9 ms (1.1).

Why torch's own team and not extra Python threads: after any parallel op, the team's helper
threads busy-wait for the next region (libgomp spins for milliseconds), so an extra thread
would fight a spinning helper for the core (measured: 288×22×22 split over a Python thread
took 8-11 ms right after a parallel op, against 5.8 here); here the spinning helper is the
thread that does the work.

Results are those of ``torch.linalg.eigh`` run single-threaded: each matrix is decomposed by
the same LAPACK routine, only the thread that does it changes (bit-identical up to n = 64 in
tests; from n ≈ 80 on, MKL inside a parallel region takes a differently blocked path that
differs by a few ulp). The number of threads is ``torch.get_num_threads()``;
``torch.set_num_threads(1)`` turns the split off (DataLoader workers run with one thread).
Without an OpenMP runtime that exports ``GOMP_parallel`` (a torch build with another parallel
backend), or for small batches, the plain call runs. Like every OpenMP op of torch, the split
hangs in a process forked after its parent used OpenMP (a limitation of libgomp).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading

import torch
from torch import Tensor

from .base import plain_float_tensor

__all__ = ["eigh_cpu", "eigvalsh_cpu", "cpu_threads_for", "MIN_WORK", "PER_MATRIX", "LARGE_MATRIX",
           "PIECE_WORK", "PIECES_PER_THREAD", "available"]

#: Least total work, in ``n³`` units summed over the batch, for the split: below it opening
#: the region (~50 µs with the Python callbacks) costs more than it saves. Measured (2-core
#: Xeon, float64, serial → split): 30×16×16 0.47 → 0.34-0.45 ms, 100×12×12 1.15 → 0.81,
#: 16×32×32 1.08 → 0.83, 4×64×64 0.88 → 0.83; 2×64×64 (one matrix per thread) 0.42 → 0.50.
MIN_WORK = 100_000
#: Fixed cost of one small ``eigh`` call in ``n³`` units (~2 µs: 1000×4×4 takes 1.9 ms serially).
PER_MATRIX = 1_000
#: From this ``n³`` on (n = 100) one matrix per thread pays (2×256×256: 9.1 → 5.9 ms); below
#: it a batch needs two matrices per thread (2×64×64 one per thread: 0.42 → 0.50 ms).
LARGE_MATRIX = 1_000_000
#: Work per piece (n³ units, ~0.2-0.5 ms of LAPACK), at most ``PIECES_PER_THREAD`` pieces per
#: thread: pieces are taken from a shared counter, so a thread that is slow to join (another
#: process on its core) takes fewer of them; few pieces keep the GIL hand-offs between the
#: threads' Python loops rare (512 pieces of 1024×32×32 cost 43 ms against 36 for 16).
PIECE_WORK = 100_000
PIECES_PER_THREAD = 8

_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _openmp_runtime_paths() -> list[str]:
    """Paths of the OpenMP runtime loaded in this process (Linux), then torch's bundled one."""
    names = ("libgomp", "libiomp5", "libomp")
    found: list[str] = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(" ", 1)[-1].strip()
                if os.path.basename(path).startswith(names) and path not in found:
                    found.append(path)
    except OSError:
        pass
    libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
    if os.path.isdir(libdir):
        found += [os.path.join(libdir, f) for f in sorted(os.listdir(libdir)) if f.startswith(names)]
    return found


def _find_gomp_parallel():
    """``GOMP_parallel(fn, data, num_threads, flags)`` of torch's OpenMP runtime, or ``None``."""
    if not torch.backends.openmp.is_available() or "OpenMP" not in torch.__config__.parallel_info():
        return None
    for path in _openmp_runtime_paths():
        try:
            fn = ctypes.CDLL(path).GOMP_parallel
        except (OSError, AttributeError):
            continue
        fn.argtypes = [_CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        fn.restype = None
        return fn
    return None


_GOMP_PARALLEL = _find_gomp_parallel()
# depth of the thread-local torch dispatch / function mode stacks (private API: looked up once,
# whatever this torch version has)
_MODE_STACK_DEPTHS = [f for name in ("_len_torch_dispatch_stack", "_len_torch_function_stack")
                      if (f := getattr(torch._C, name, None)) is not None]


def available() -> bool:
    """Can batches be split over torch's OpenMP threads here?"""
    return _GOMP_PARALLEL is not None


def cpu_threads_for(batch: int, n: int) -> int:
    """How many threads a CPU batch of ``batch`` matrices ``n × n`` is split over (1: serial).

    Examples
    --------
    >>> cpu_threads_for(1, 64)
    1
    """
    threads = torch.get_num_threads()
    if _GOMP_PARALLEL is None or threads < 2 or batch < 2 or batch * (n**3 + PER_MATRIX) < MIN_WORK:
        return 1
    if batch < 2 * threads and n**3 < LARGE_MATRIX:  # one small matrix per thread: no gain
        return 1
    return min(threads, batch)


def _splittable(x: Tensor) -> bool:
    """Plain CPU float tensors only: not under autograd, not a subclass (fake tensors...), not
    functorch-wrapped (``vmap``, ``grad``: ``out=`` is not supported there, torch's own batching
    rule is used instead), and no torch function/dispatch mode active (modes are thread-local:
    the team's other threads would run outside them)."""
    if not plain_float_tensor(x) or x.device.type != "cpu" or x.requires_grad:
        return False
    return not any(depth() for depth in _MODE_STACK_DEPTHS)


def _run_split(x: Tensor, vectors: bool) -> tuple[Tensor, Tensor | None] | None:
    n = x.shape[-1]
    b = x.numel() // max(n * n, 1)
    k = cpu_threads_for(b, n) if _splittable(x) else 1
    if k < 2:
        return None
    flat = x.reshape(b, n, n)
    w = x.new_empty(b, n)
    # eigenvectors in LAPACK's column-major layout, as torch.linalg.eigh returns them
    v = x.new_empty(b, n, n).mT if vectors else None
    pieces = int(min(b, PIECES_PER_THREAD * k, max(k, -(-b * (n**3 + PER_MATRIX) // PIECE_WORK))))
    bounds = [(i * b) // pieces for i in range(pieces + 1)]
    tickets = itertools.count()
    lock = threading.Lock()  # next() is atomic under the GIL; free-threaded builds have none
    errors: list[BaseException] = []

    def take() -> int:
        with lock:
            return next(tickets)

    # thread-local modes of the caller (inference tensors may only be written in inference mode)
    inference = torch.is_inference_mode_enabled()

    def body(_data) -> None:  # runs on every thread of the team, the caller's included
        try:
            with torch.inference_mode(inference), torch.no_grad():
                _drain()
        except BaseException as exc:  # nothing may escape a C callback
            errors.append(exc)

    def _drain() -> None:
        while (i := take()) < pieces:
            lo, hi = bounds[i], bounds[i + 1]
            if v is not None:
                torch.linalg.eigh(flat[lo:hi], out=(w[lo:hi], v[lo:hi]))
            else:
                torch.linalg.eigvalsh(flat[lo:hi], out=w[lo:hi])

    callback = _CALLBACK(body)  # kept alive by this frame until the region has ended
    assert _GOMP_PARALLEL is not None
    _GOMP_PARALLEL(callback, None, k, 0)  # returns when every thread of the team is done
    if errors:
        for exc in errors:
            if not isinstance(exc, Exception):
                raise exc  # KeyboardInterrupt and the like, from whichever thread got it
        return None  # the caller's serial call raises torch's own error for the whole batch
    w = w.reshape(x.shape[:-1])
    return w, (v.reshape(x.shape) if v is not None else None)


def eigh_cpu(x: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.linalg.eigh(x)`` for CPU ``(*batch, n, n)``, the batch split over threads.

    Examples
    --------
    >>> import torch
    >>> x = torch.eye(3, dtype=torch.float64).expand(20000, 3, 3) * 2.0
    >>> w, v = eigh_cpu(x)
    >>> bool((w == 2.0).all()), tuple(v.shape)
    (True, (20000, 3, 3))
    """
    out = _run_split(x, True)
    if out is None:
        return torch.linalg.eigh(x)
    w, v = out
    assert v is not None
    return w, v


def eigvalsh_cpu(x: Tensor) -> Tensor:
    """``torch.linalg.eigvalsh(x)`` for CPU ``(*batch, n, n)``, the batch split over threads."""
    out = _run_split(x, False)
    return torch.linalg.eigvalsh(x) if out is None else out[0]
