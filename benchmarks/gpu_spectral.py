"""GPU spectral engine: torch.linalg.eigh vs MAGMA vs riemlearn's eigensolver paths (issue 9).

For each batch × size and dtype: one batched eigendecomposition by ``torch.linalg.eigh``
(cuSOLVER on CUDA, LAPACK on CPU), by ``torch.linalg.eigh`` with the MAGMA backend (CUDA
only; ``torch.backends.cuda.preferred_linalg_library`` is set and restored inside this
script), by riemlearn's automatic path (``spectral.eigh``: on CUDA for 32 < n <= 64 with Triton,
the fused one-sided Jacobi kernel in float32, + float64 Ogita–Aishima refinement for float64
input), and by the
Jacobi variants forced (scalar ``block=1`` plain precision: the fused two-sided kernel on CUDA
with Triton, torch elsewhere; the torch block path; the block path with the other precision
mode, ``eigh_dispatch.JACOBI_MIXED`` toggled, with its accuracy); then ``spectral.logm`` forward and
forward+backward (loss ``<G, logm(X)>``) on the automatic path and on the ``"torch"`` path, and
the accuracy of the automatic path against float64 LAPACK on a subset (eigenvalue error
relative to ``‖X‖_F``, ``‖VᵀV − I‖_max``). Further tables time the affine-invariant Fréchet
mean (``stats.frechet_mean``) of ``N`` SPD matrices on both paths, the eigensolver-free
``matfun_iterative.logm_iterative`` against ``spectral.logm``, and the float32 accuracy of
``torch.linalg.eigh`` and of the automatic path on harder spectra (condition 1e6, a near-tie,
exact ties) against float64 LAPACK on the float32-rounded input.

Sizes: ``--device cuda`` (the target) uses the issue's table: 1000×{22, 32, 33, 64},
256×128×128, 100000×22×22, mean of 1000 64×64. ``--device cpu`` uses smaller batches
(Jacobi is not meant for CPUs; the CPU default path stays ``torch.linalg.eigh``).

Run: ``python benchmarks/gpu_spectral.py --device cuda --record --probe-chunks`` on a GPU
machine (writes the section ``gpu_spectral (<GPU name>)`` of RESULTS.md; ``--probe-chunks``
adds which single-call batch sizes ``torch.linalg.eigh`` survives, the basis of
``eigh_dispatch.CUDA_EIGH_MAX_BATCH``), or ``python benchmarks/run.py gpu_spectral`` for the
CPU mode.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, machine_description, parse_args, time_ratio, timeit  # noqa: E402
from riemlearn.manifolds import SPD, spectral  # noqa: E402
from riemlearn.manifolds.eigh_dispatch import (  # noqa: E402
    JACOBI_MIXED,
    choose_path,
    fused_applies,
    jacobi_block,
    spectral_backend,
)
from riemlearn.manifolds.matfun_iterative import logm_iterative  # noqa: E402
from riemlearn.stats.frechet_mean import frechet_mean  # noqa: E402

CUDA_SIZES = [(1000, 22), (1000, 32), (1000, 33), (1000, 64), (256, 128), (100000, 22)]
CPU_SIZES = [(100, 22), (100, 32), (100, 33), (100, 64), (8, 128), (20000, 22)]
CUDA_MEAN, CPU_MEAN = (1000, 64), (100, 32)


def _spd(batch: int, n: int, dtype: torch.dtype, device: str, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, n, 2 * n, generator=gen, dtype=torch.float64)
    x = a @ a.mT / (2 * n) + 0.1 * torch.eye(n, dtype=torch.float64)
    return x.to(device=device, dtype=dtype)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def _magma():
    """MAGMA as torch's preferred CUDA linear-algebra backend, restored on exit (benchmark only)."""
    prev = torch.backends.cuda.preferred_linalg_library()
    torch.backends.cuda.preferred_linalg_library("magma")
    try:
        yield
    finally:
        torch.backends.cuda.preferred_linalg_library(prev)


def _ms(fn, device: str, repeat: int) -> str | float:
    def run():
        fn()
        _sync(device)

    try:
        return timeit(run, repeat=repeat, warmup=1) * 1e3
    except RuntimeError as err:  # e.g. CUSOLVER_STATUS_INTERNAL_ERROR on huge batches
        torch.cuda.empty_cache() if device == "cuda" else None
        return f"error: {str(err).splitlines()[0][:60]}"


def _accuracy(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor, k: int = 64) -> tuple[float, float]:
    xs, ws, vs = (t[:k].double().cpu() for t in (x, w, v))
    ref = torch.linalg.eigh(xs)[0]
    norm = torch.linalg.matrix_norm(xs)
    ew = ((ws - ref).abs().amax(-1) / norm).max().item()
    orth = (vs.mT @ vs - torch.eye(xs.shape[-1], dtype=torch.float64)).abs().max().item()
    return ew, orth


def bench_sizes(device: str, sizes, repeat: int) -> Table:
    table = Table(
        f"eigh and logm on {device}: median ms ({torch.get_num_threads()} CPU thread(s))",
        ["batch×n", "dtype", "auto path", "eigh torch", "eigh MAGMA", "eigh auto", "Jacobi k=1 plain",
         "Jacobi block", "Jacobi block, other precision (eig/orth err)", "logm fwd auto",
         "logm fwd+bwd auto", "logm fwd+bwd torch", "fwd+bwd speedup (paired)",
         "eig err", "orth err"],
    )
    print(f"\n{table.title}")
    for batch, n in sizes:
        for dtype in (torch.float32, torch.float64):
            table.add(*_size_row(batch, n, dtype, device, repeat))
    return table


def _size_row(batch: int, n: int, dtype: torch.dtype, device: str, repeat: int) -> list:
    x = _spd(batch, n, dtype, device, seed=n)
    g = _spd(batch, n, dtype, device, seed=n + 1)
    big = batch * n * n > 2e7
    path = choose_path(x)
    blk = jacobi_block(n)
    t_torch = _ms(lambda: torch.linalg.eigh(x), device, repeat)
    t_magma: str | float = "-"
    if device == "cuda" and not big:
        with _magma():
            t_magma = _ms(lambda: torch.linalg.eigh(x), device, repeat)
    t_auto = _ms(lambda: spectral.eigh(x), device, repeat)
    t_j1: str | float = "-"
    if (n > 32 or device == "cuda") and not big:
        with spectral_backend("jacobi", jacobi_block=1, jacobi_mixed=False):  # fused kernel on CUDA
            t_j1 = _ms(lambda: spectral.eigh(x), device, repeat)
    t_jb, t_jo = "-", "-"
    if n > 32:
        mixed = JACOBI_MIXED[dtype]
        with spectral_backend("jacobi", jacobi_block=blk):
            t_jb = f"{_fmt_ms(_ms(lambda: spectral.eigh(x), device, repeat))} (k={blk})"
        with spectral_backend("jacobi", jacobi_block=blk, jacobi_mixed=not mixed):
            t_jo = _ms(lambda: spectral.eigh(x), device, repeat)
            ewo, ortho = _accuracy(x, *spectral.eigh(x))
        t_jo = f"{_fmt_ms(t_jo)} ({'mixed' if not mixed else 'plain'}: {ewo:.0e}/{ortho:.0e})"
    xg = x.clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            spectral.logm(x)

    def fwd_bwd():
        xg.grad = None
        (spectral.logm(xg) * g).sum().backward()

    t_f = _ms(fwd, device, repeat)
    t_fb = _ms(fwd_bwd, device, repeat)
    with spectral_backend("torch"):
        t_fb_torch = _ms(fwd_bwd, device, repeat)
    speed = _paired_speedup(fwd_bwd, device, repeat) if isinstance(t_fb_torch, float) else "-"
    ew, orth = _accuracy(x, *spectral.eigh(x))
    dname = str(dtype).replace("torch.", "")
    if path == "jacobi":
        fused = fused_applies(x) and choose_path(x) == "jacobi"
        label = "jacobi (fused, mixed)" if fused else f"jacobi (k={blk})"
    else:
        label = path
    return [f"{batch}×{n}", dname, label, t_torch, t_magma, t_auto, t_j1, t_jb, t_jo, t_f, t_fb, t_fb_torch,
            speed, f"{ew:.1e}", f"{orth:.1e}"]


def _paired_speedup(fn, device: str, repeat: int) -> float:
    """Median of paired ``time(fn on the "torch" path) / time(fn on the automatic path)``."""

    def auto():
        fn()
        _sync(device)

    def forced():
        with spectral_backend("torch"):
            fn()
        _sync(device)

    ratio, _ = time_ratio(auto, forced, repeat=repeat, warmup=1)
    return 1.0 / ratio


def _fmt_ms(v: str | float) -> str:
    return f"{v:.3g}" if isinstance(v, float) else v


def bench_mean(device: str, size: tuple[int, int], repeat: int) -> Table:
    count, n = size
    table = Table(
        f"AIM Fréchet mean of {count} {n}×{n} SPD matrices on {device} (stats.frechet_mean): median ms",
        ["dtype", "auto path", "torch path", "speedup", "max |mean_auto − mean_torch| / ‖mean‖"],
    )
    print(f"\n{table.title}")
    manifold = SPD(n)
    for dtype in (torch.float32, torch.float64):
        table.add(*_mean_row(count, n, dtype, device, manifold, repeat))
    return table


def bench_iterative(device: str, size: tuple[int, int], repeat: int) -> Table:
    batch, n = size
    table = Table(
        f"eigensolver-free logm (matfun_iterative.logm_iterative) vs spectral.logm, {batch}×{n}×{n}"
        f" on {device}: median ms",
        ["dtype", "iterative fwd", "iterative fwd+bwd", "spectral fwd+bwd (auto)", "max rel. error"],
    )
    print(f"\n{table.title}")
    for dtype in (torch.float32, torch.float64):
        table.add(*_iterative_row(batch, n, dtype, device, repeat))
    return table


def _iterative_row(batch: int, n: int, dtype: torch.dtype, device: str, repeat: int) -> list:
    x = _spd(batch, n, dtype, device, seed=3)  # condition ~ 1e2: inside MAX_COND for both dtypes
    g = _spd(batch, n, dtype, device, seed=4)
    xg = x.clone().requires_grad_(True)

    def fwd_bwd(f):
        xg.grad = None
        (f(xg) * g).sum().backward()

    t_f = _ms(lambda: logm_iterative(x), device, repeat)
    t_it = _ms(lambda: fwd_bwd(logm_iterative), device, repeat)
    t_sp = _ms(lambda: fwd_bwd(spectral.logm), device, repeat)
    ref = spectral.logm(x.double())
    err = torch.linalg.matrix_norm(logm_iterative(x).double() - ref) / torch.linalg.matrix_norm(ref)
    return [str(dtype).replace("torch.", ""), t_f, t_it, t_sp, f"{err.max().item():.1e}"]


def _mean_row(count: int, n: int, dtype: torch.dtype, device: str, manifold, repeat: int) -> list:
    x = _spd(count, n, dtype, device, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_auto = _ms(lambda: frechet_mean(x, manifold), device, repeat)
        m_auto = frechet_mean(x, manifold)
        with spectral_backend("torch"):
            t_torch = _ms(lambda: frechet_mean(x, manifold), device, repeat)
            m_torch = frechet_mean(x, manifold)
    diff = ((m_auto - m_torch).abs().max() / torch.linalg.matrix_norm(m_torch)).item()
    speed = t_torch / t_auto if isinstance(t_auto, float) and isinstance(t_torch, float) else "-"
    return [str(dtype).replace("torch.", ""), t_auto, t_torch, speed, f"{diff:.1e}"]


def _spectra(n: int, count: int):
    """``(name, float64 matrices)``: Wishart, condition 1e6, a 1e-6 near-tie, exact ties."""
    gen = torch.Generator().manual_seed(n)

    def rotate(lam):
        q, _ = torch.linalg.qr(torch.randn(count, n, n, generator=gen, dtype=torch.float64))
        return (q * lam) @ q.mT

    a = torch.randn(count, n, 2 * n, generator=gen, dtype=torch.float64)
    yield "Wishart", a @ a.mT / (2 * n) + 0.1 * torch.eye(n, dtype=torch.float64)
    yield "condition 1e6", rotate(torch.logspace(-6, 0, n, dtype=torch.float64))
    lam = torch.linspace(1, 2, n, dtype=torch.float64)
    lam[n // 2] = lam[n // 2 - 1] * (1 + 1e-6)
    yield "near-tie 1e-6", rotate(lam)
    lam = torch.ones(n, dtype=torch.float64)
    lam[: n // 3] = 3.0
    yield "exact ties", rotate(lam)


def _errors(x64: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> str:
    """eigenvalue error / ‖X‖_F, max |VᵀV − I|, ‖V diag(w) Vᵀ − X‖_F / ‖X‖_F (worst matrix)."""
    w, v = w.double().cpu(), v.double().cpu()
    norm = torch.linalg.matrix_norm(x64)
    ew = ((w - torch.linalg.eigvalsh(x64)).abs().amax(-1) / norm).max().item()
    orth = (v.mT @ v - torch.eye(x64.shape[-1], dtype=torch.float64)).abs().max().item()
    rec = (torch.linalg.matrix_norm((v * w.unsqueeze(-2)) @ v.mT - x64) / norm).max().item()
    return f"{ew:.1e} / {orth:.1e} / {rec:.1e}"


def bench_spectra(device: str, sizes=(33, 48, 64)) -> Table:
    """float32 accuracy of ``torch.linalg.eigh`` and of the automatic path on harder spectra."""
    count = 500 if device == "cuda" else 50
    table = Table(
        f"float32 accuracy on {device}, {count} matrices per case, worst matrix: eig err / orth err / "
        "reconstruction err against float64 LAPACK",
        ["n", "spectrum", "auto path", "torch.linalg.eigh", "riemlearn auto"],
    )
    print(f"\n{table.title}")
    for n in sizes:
        for name, x in _spectra(n, count):
            xc = x.to(device=device, dtype=torch.float32)
            x64 = xc.double().cpu()  # the reference sees the float32-rounded input
            table.add(n, name, choose_path(xc), _errors(x64, *torch.linalg.eigh(xc)),
                      _errors(x64, *spectral.eigh(xc)))
    return table


SMALL_SHAPES = ((1, 8), (1, 22), (2, 22), (4, 22), (4, 32), (1, 64), (2, 64), (4, 64), (8, 22))


def bench_small(device: str, repeat: int, shapes=SMALL_SHAPES) -> Table:
    """A few small matrices (one per group of a batched mean or batch norm): every path."""
    table = Table(f"eigh of a few small matrices on {device}: median ms per path",
                  ["batch×n", "dtype", "auto path", "auto", "torch", "jacobi"])
    print(f"\n{table.title}")
    for dtype in (torch.float64, torch.float32):
        for batch, n in shapes:
            x = _spd(batch, n, dtype, device, seed=n)
            row = [f"{batch}×{n}", str(dtype).replace("torch.", ""), choose_path(x),
                   _fmt_ms(_ms(lambda x=x: spectral.eigh(x), device, repeat))]
            for backend in ("torch", "jacobi"):
                with spectral_backend(backend):
                    row.append(_fmt_ms(_ms(lambda x=x: spectral.eigh(x), device, repeat)))
            table.add(*row)
    return table


def probe_chunks(device: str, sizes=(22, 32), batches=(8192, 16384, 32768, 65536, 100000, 131072)) -> Table:
    """Does one ``torch.linalg.eigh`` call succeed on ``batch × n × n``? (for CUDA_EIGH_MAX_BATCH)"""
    table = Table(f"one torch.linalg.eigh call on {device}: ok or error", ["n", "dtype", *map(str, batches)])
    print(f"\n{table.title}")
    for n in sizes:
        for dtype in (torch.float32, torch.float64):
            row = []
            for batch in batches:
                x = _spd(batch, n, dtype, device, seed=batch)
                try:
                    w, _ = torch.linalg.eigh(x)
                    _sync(device)
                    row.append("ok" if bool(torch.isfinite(w).all()) else "non-finite")
                except RuntimeError as err:
                    row.append(str(err).splitlines()[0][:40])
                del x
            table.add(n, str(dtype).replace("torch.", ""), *row)
    return table


def main(argv=None) -> list[Table]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--record", action="store_true", help="write the tables into RESULTS.md")
    pre.add_argument("--probe-chunks", action="store_true", help="also probe single-call eigh batch limits")
    known, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest, device_help="cpu, or cuda (the target)")
    device = args.device
    sizes = CUDA_SIZES if device == "cuda" else CPU_SIZES
    mean = CUDA_MEAN if device == "cuda" else CPU_MEAN
    if args.quick:
        sizes = [(max(4, b // 10), n) for b, n in sizes]
        mean = (max(8, mean[0] // 10), mean[1])
    if device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}, TF32 matmul: {torch.backends.cuda.matmul.allow_tf32}")
    tables = [bench_sizes(device, sizes, args.repeat), bench_mean(device, mean, args.repeat),
              bench_iterative(device, (1000, 64) if device == "cuda" else (100, 32), args.repeat),
              bench_spectra(device), bench_small(device, args.repeat)]
    if known.probe_chunks:
        tables.append(probe_chunks(device))
    md = "\n".join(t.markdown() for t in tables)
    if args.markdown:
        Path(args.markdown).write_text(md)
    if known.record:
        from run import RESULTS, update_section  # benchmarks/run.py

        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        host = machine_description()
        body = f"Machine: {name}; host {host}. Run: {stamp}, `--repeat {args.repeat}`.\n\n{md}"
        RESULTS.write_text(update_section(RESULTS.read_text(), f"gpu_spectral ({name})", body))
        print(f"updated {RESULTS.name}: gpu_spectral ({name})")
    return tables


if __name__ == "__main__":
    main()
