"""Spectral matrix functions: riemlearn vs autograd-through-eigh vs geoopt vs pyriemann.

Workload: a batch of 1024 SPD matrices 32×32 (float32 and float64). For logm, sqrtm, invsqrtm and
expm we time the forward and the forward+backward (loss ``<G, f(X)>`` with a fixed random ``G``)
and report each as a ratio to one bare ``torch.linalg.eigh`` of the same batch, timed back to
back in the same process (median of paired ratios). We also count non-finite gradient entries on
tie inputs (a batch of identities, and diagonal matrices with pairwise-equal eigenvalues).

Peers: geoopt 0.5.1 ``geoopt.linalg.sym_logm/sym_sqrtm/sym_inv_sqrtm1/sym_expm`` and pyriemann
0.12 ``pyriemann.utils.base.logm/sqrtm/invsqrtm/expm``, which accept torch tensors (array API)
and differentiate through ``torch.linalg.eigh`` by autograd, so all are timed on torch tensors.

Run: ``python benchmarks/spectral.py --threads 1`` (see ``benchmarks/run.py``).
"""

from __future__ import annotations

import sys
import warnings
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, parse_args, time_ratio  # noqa: E402
from riemlearn.manifolds import spectral  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _autograd(f):
    def run(x):
        w, v = torch.linalg.eigh(x)
        return (v * f(w).unsqueeze(-2)) @ v.mT

    return run


def load_revision(rev: str):
    """riemlearn's spectral module as it was at git revision ``rev`` (for before/after rows)."""
    import subprocess
    import types

    root = Path(__file__).resolve().parent.parent

    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, check=True, capture_output=True,
                              text=True).stdout

    def load(name: str, src: str) -> types.ModuleType:
        mod = types.ModuleType(f"riemlearn.manifolds._bench_{name}")
        mod.__package__ = "riemlearn.manifolds"
        sys.modules[mod.__name__] = mod
        exec(compile(src, f"{rev}:{name}.py", "exec"), mod.__dict__)
        return mod

    load("spectral_fns", show("manifolds/spectral_fns.py"))
    load("eigh_dispatch", show("manifolds/eigh_dispatch.py"))  # the eigensolver path of then
    src = show("manifolds/spectral.py")
    src = src.replace("from .spectral_fns import", "from ._bench_spectral_fns import")
    src = src.replace("from . import eigh_dispatch as", "from . import _bench_eigh_dispatch as")
    return load("spectral", src)


def implementations(before: str | None = None):
    impls = {
        "riemlearn": {
            "logm": spectral.logm,
            "sqrtm": spectral.sqrtm,
            "invsqrtm": spectral.invsqrtm,
            "expm": spectral.expm,
        },
        "autograd eigh": {
            "logm": _autograd(torch.log),
            "sqrtm": _autograd(torch.sqrt),
            "invsqrtm": _autograd(torch.rsqrt),
            "expm": _autograd(torch.exp),
        },
    }
    if before:
        old = load_revision(before)
        impls[f"riemlearn@{before[:7]}"] = {k: getattr(old, k) for k in ("logm", "sqrtm", "invsqrtm", "expm")}
    try:
        import geoopt.linalg as gl

        impls["geoopt"] = {
            "logm": gl.sym_logm,
            "sqrtm": gl.sym_sqrtm,
            "invsqrtm": gl.sym_inv_sqrtm1,
            "expm": gl.sym_expm,
        }
    except ImportError:  # pragma: no cover
        print("geoopt not installed: skipped")
    try:
        from pyriemann.utils import base as pb

        impls["pyriemann"] = {"logm": pb.logm, "sqrtm": pb.sqrtm, "invsqrtm": pb.invsqrtm, "expm": pb.expm}
    except ImportError:  # pragma: no cover
        print("pyriemann not installed: skipped")
    return impls


def spd_batch(batch: int, n: int, dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(batch, n, 2 * n, generator=gen, dtype=torch.float64)
    x = a @ a.mT / (2 * n) + 0.1 * torch.eye(n, dtype=torch.float64)
    return x.to(dtype)


def tie_batch(batch: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    eye = torch.eye(n, dtype=dtype).expand(batch // 2, n, n)
    diag = torch.diag_embed(torch.arange(n, dtype=dtype).div(2, rounding_mode="floor") + 1.0)
    return torch.cat([eye, diag.expand(batch - batch // 2, n, n)]).contiguous()


def nonfinite_grads(f, x: torch.Tensor, g: torch.Tensor) -> int:
    x = x.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad((f(x) * g).sum(), x)
    return int((~torch.isfinite(gx)).sum())


def bench_one(f, x0: torch.Tensor, g: torch.Tensor, repeat: int) -> tuple[float, float, float]:
    """(forward ratio, forward+backward ratio, forward+backward seconds) against one bare eigh."""
    xg = x0.clone().requires_grad_(True)

    def bare_eigh():
        torch.linalg.eigh(x0)

    def fwd():
        with torch.no_grad():
            f(x0)

    def fwd_bwd():
        xg.grad = None
        (f(xg) * g).sum().backward()

    r_fwd, _ = time_ratio(fwd, bare_eigh, repeat=repeat)
    r_fb, t_fb = time_ratio(fwd_bwd, bare_eigh, repeat=repeat)
    return r_fwd, r_fb, t_fb


def main(argv=None) -> list[Table]:
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--before", default=None, help="also time riemlearn at this git revision")
    pre.add_argument("--impls", default=None, help="comma-separated name prefixes of implementations to run")
    known, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest)
    batch, n = (128, 32) if args.quick else (1024, 32)
    gen = torch.Generator().manual_seed(0)
    impls = implementations(known.before)
    if known.impls:
        keep = [p.strip() for p in known.impls.split(",")]
        impls = {k: v for k, v in impls.items() if any(k.startswith(p) for p in keep)}
    tables = []
    for dtype in (torch.float32, torch.float64):
        x0 = spd_batch(batch, n, dtype, gen)
        g = torch.randn(batch, n, n, generator=gen, dtype=torch.float64).to(dtype)
        g = g + g.mT
        ties = tie_batch(batch, n, dtype)

        dname = str(dtype).replace("torch.", "")
        table = Table(
            f"{batch}×{n}×{n} {dname}, {torch.get_num_threads()} thread(s): time / one bare eigh",
            ["function", "implementation", "forward", "forward+backward", "fwd+bwd ms", "non-finite grads at ties"],  # noqa: E501
        )
        print(f"\n{table.title}")
        # riemlearn's own eigh (the dispatch: on CPU the batch split over the intra-op
        # threads), so the spectral functions' overhead over it can be read off too
        r_eigh, _ = time_ratio(partial(spectral.eigh, x0), partial(torch.linalg.eigh, x0), repeat=args.repeat)
        table.add("eigh", "riemlearn (dispatch)", r_eigh, "–", "–", "–")
        for fname in ("logm", "sqrtm", "invsqrtm", "expm"):
            for iname, fns in impls.items():
                r_fwd, r_fb, t_fb = bench_one(fns[fname], x0, g, args.repeat)
                bad = nonfinite_grads(fns[fname], ties, g)
                table.add(fname, iname, r_fwd, r_fb, t_fb * 1e3, f"{bad} / {ties.numel()}")
        tables.append(table)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(t.markdown() for t in tables))
    return tables


if __name__ == "__main__":
    main()
