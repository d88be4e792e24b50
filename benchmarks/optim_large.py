"""Solvers at large size (issue #5, table (c)): riemlearn on the GPU and on the CPU vs pymanopt-numpy.

Same problems as ``optim.py`` table (b), larger, plus a batch of independent problems:

* Brockett cost ``tr(Xᵀ A X N)`` on Stiefel(n, p) (embedded metric, QR retraction), ``A``
  symmetric Gaussian, ``N = diag(p, …, 1)``;
* dominant invariant subspace ``−tr(Xᵀ A X)`` on Grassmann(n, p);
* ``m`` Procrustes problems ``min ‖X − Cᵢ‖²`` on Stiefel(10, 3), solved as one batched problem
  (pymanopt has no batched solver: its figure is a loop over a sample, extrapolated).

Trust regions and conjugate gradient to gradient norm 1e-6, with the analytic Euclidean gradient
and Hessian on every side (the numpy peer gets the same functions), pymanopt's maximal radius
``sqrt(p)``. riemlearn runs the same float64 problem on ``--device`` (the GPU) and on the CPU;
pymanopt runs on the CPU. Wall times, one run each (large problems), with the CPU thread count
of ``--threads`` for both CPU libraries (torch threads and, through ``OMP_NUM_THREADS`` set by the
caller, numpy's BLAS).

Run on a GPU machine: ``OMP_NUM_THREADS=16 python benchmarks/optim_large.py --device cuda
--threads 16 [--markdown PATH]``; ``--quick`` for a smoke test of the script on any machine.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, parse_args  # noqa: E402
from riemlearn.manifolds import Grassmann, Stiefel  # noqa: E402
from riemlearn.optim import ConjugateGradient, Problem, TrustRegions  # noqa: E402

from optim import procrustes_problems, pymanopt_procrustes  # noqa: E402

warnings.filterwarnings("ignore")
D = torch.float64
MAX_TIME = 40.0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _specs(quick: bool, g: torch.Generator) -> list[dict]:
    (ns, ps), (ng, pg) = ((300, 10), (600, 10)) if quick else ((1000, 20), (4000, 20))
    a1 = torch.randn(ns, ns, generator=g, dtype=D)
    a1 = (a1 + a1.T) / 2
    w1 = torch.arange(ps, 0, -1, dtype=D)
    a2 = torch.randn(ng, ng, generator=g, dtype=D)
    a2 = (a2 + a2.T) / 2
    st, gr = Stiefel(ns, ps, metric="embedded", retraction="qr"), Grassmann(ng, pg)
    return [
        dict(name=f"Stiefel({ns},{ps}) Brockett", m=st, pym=("Stiefel", ns, ps), a=a1, w=w1,
             x0=st.random_point(generator=g, dtype=D), p=ps),
        dict(name=f"Grassmann({ng},{pg}) dominant subspace", m=gr, pym=("Grassmann", ng, pg), a=a2,
             w=None, x0=gr.random_point(generator=g, dtype=D), p=pg),
    ]


def _ours(spec: dict, kind: str, device: str) -> tuple[float, tuple]:
    a = spec["a"].to(device)
    w = spec["w"].to(device) if spec["w"] is not None else None
    if w is not None:
        pb = Problem(spec["m"], lambda x: ((x.mT @ a @ x).diagonal(dim1=-2, dim2=-1) * w).sum(),
                     egrad=lambda x: 2 * (a @ x) * w, ehess=lambda x, u: 2 * (a @ u) * w)
    else:
        pb = Problem(spec["m"], lambda x: -(x * (a @ x)).sum(), egrad=lambda x: -2 * (a @ x),
                     ehess=lambda x, u: -2 * (a @ u))
    kw = dict(max_iterations=5000, max_time=MAX_TIME, min_grad_norm=1e-6, log=False)
    solver = (TrustRegions(max_radius=math.sqrt(spec["p"]), **kw) if kind == "TR"
              else ConjugateGradient(transport="projection", **kw))
    x0 = spec["x0"].to(device)
    _sync(device)
    t0 = time.perf_counter()
    r = solver.solve(pb, x0)
    _sync(device)
    t = time.perf_counter() - t0
    return t, (float(r.cost), float(r.grad_norm), int(r.iterations), r.stop_reason)


def _pymanopt(spec: dict, kind: str) -> tuple[float, tuple]:
    import pymanopt

    an = spec["a"].numpy()
    wn = spec["w"].numpy() if spec["w"] is not None else None
    pm = getattr(pymanopt.manifolds, spec["pym"][0])(*spec["pym"][1:])
    if wn is not None:
        @pymanopt.function.numpy(pm)
        def cost(x):
            return float(((x.T @ an @ x).diagonal() * wn).sum())

        @pymanopt.function.numpy(pm)
        def egrad(x):
            return 2 * (an @ x) * wn

        @pymanopt.function.numpy(pm)
        def ehess(x, u):
            return 2 * (an @ u) * wn
    else:
        @pymanopt.function.numpy(pm)
        def cost(x):
            return float(-(x * (an @ x)).sum())

        @pymanopt.function.numpy(pm)
        def egrad(x):
            return -2 * (an @ x)

        @pymanopt.function.numpy(pm)
        def ehess(x, u):
            return -2 * (an @ u)
    prob = pymanopt.Problem(pm, cost, euclidean_gradient=egrad, euclidean_hessian=ehess)
    kw = dict(verbosity=0, max_iterations=5000, max_time=MAX_TIME, min_gradient_norm=1e-6)
    opt = (pymanopt.optimizers.TrustRegions(**kw) if kind == "TR"
           else pymanopt.optimizers.ConjugateGradient(**kw))
    t0 = time.perf_counter()
    r = opt.run(prob, initial_point=spec["x0"].numpy())
    t = time.perf_counter() - t0
    return t, (float(r.cost), float(r.gradient_norm), int(r.iterations),
               str(r.stopping_criterion).split(".")[0][:40])


def part_c(device: str, quick: bool) -> Table:
    g = torch.Generator().manual_seed(3)
    tab = Table(f"(c) large problems, trust regions / CG to gradient norm 1e-6 (riemlearn on {device} "
                f"and cpu, pymanopt-numpy on cpu, {torch.get_num_threads()} CPU thread(s))",
                ["problem", "solver", "runner", "wall s", "final cost", "grad norm", "iterations",
                 "stop", "pymanopt-numpy time / this time"])
    for spec in _specs(quick, g):
        for kind in ("TR", "CG"):
            rows = [(f"riemlearn ({device})", *_ours(spec, kind, device))]
            if device != "cpu":
                rows.append(("riemlearn (cpu)", *_ours(spec, kind, "cpu")))
            rows.append(("pymanopt-numpy (cpu)", *_pymanopt(spec, kind)))
            t_ref = rows[-1][1]
            for runner, t, (f, gn, it, stop) in rows:
                tab.add(spec["name"], kind, runner, t, f"{f:.12g}", f"{gn:.2e}", it, stop, t_ref / t)
    return tab


def part_batched(device: str, quick: bool) -> Table:
    """``m`` Procrustes problems on Stiefel(10, 3) as one batched trust-region solve."""
    m_pb, n, p = (2000, 10, 3) if quick else (100000, 10, 3)
    c, st, x0, ref = procrustes_problems(m_pb, n, p, seed=4)
    tab = Table(f"(c') {m_pb} Procrustes problems on Stiefel({n},{p}), trust regions, grad norm 1e-6",
                ["runner", "wall s (all problems)", "max error vs SVD closed form", "worst grad norm",
                 "pymanopt-numpy time / this time"])
    rows = []
    for dev in dict.fromkeys((device, "cpu")):
        cd = c.to(dev)
        pb = Problem(st, lambda x, cd=cd: ((x - cd) ** 2).sum((-1, -2)),
                     egrad=lambda x, cd=cd: 2 * (x - cd), ehess=lambda x, u: 2 * u)
        _sync(dev)
        t0 = time.perf_counter()
        r = TrustRegions(log=False, min_grad_norm=1e-6).solve(pb, x0.to(dev))
        _sync(dev)
        t = time.perf_counter() - t0
        rows.append((f"riemlearn ({dev}), one batched solve", t,
                     float((r.point.cpu() - ref).abs().max()), float(r.grad_norm.max())))
    k = 50
    t0 = time.perf_counter()
    err = pymanopt_procrustes(c, x0, ref, k)
    t_p = (time.perf_counter() - t0) * m_pb / k
    for runner, t, e, gn in rows:
        tab.add(runner, t, e, gn, t_p / t)
    tab.add(f"pymanopt-numpy, loop (extrapolated from {k})", t_p, err, float("nan"), 1.0)
    return tab


def main(argv: list[str] | None = None) -> list[Table]:
    args = parse_args(__doc__.splitlines()[0], argv,
                      device_help="where riemlearn's tensors live (also run on CPU; pymanopt: CPU)")
    tables = [part_c(args.device, args.quick), part_batched(args.device, args.quick)]
    for t in tables:
        print(t.markdown())
    if args.markdown:
        Path(args.markdown).write_text("\n".join(t.markdown() for t in tables))
    return tables


if __name__ == "__main__":
    main()
