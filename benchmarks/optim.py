"""Riemannian optimizers and solvers: riemlearn vs geoopt 0.5.1 and pymanopt 2.2.1.

(a) One optimizer step (RiemannianAdam / RiemannianSGD with momentum) on SPD(32)×64
    (affine-invariant), Stiefel(256, 64) and the Poincaré ball 10000×10, riemlearn vs geoopt,
    same inputs, same process, paired timings (median ratio). Plus the stacked fast path:
    64 separate SPD(32) parameters updated together vs one by one.
(b) Time to gradient norm 1e-6 and final cost, riemlearn vs pymanopt (numpy backend with
    analytic gradient/Hessian, pytorch backend with autograd), for steepest descent, conjugate
    gradient and trust regions on the Brockett cost on Stiefel(200, 10) (embedded metric, QR
    retraction, as pymanopt) and the dominant invariant subspace on Grassmann(1000, 10).
    riemlearn uses autograd (like pymanopt-pytorch) and, in a second row, the same analytic
    derivatives as the numpy peer. CG uses projection vector transport in both libraries; TR
    uses pymanopt's maximal radius sqrt(p) (its ``typical_dist``) in both. ``riemlearn`` rows
    run riemlearn's defaults: SD with Barzilai–Borwein steps and a nonmonotone Armijo search,
    CG with a Wolfe / approximate-Wolfe line search (pymanopt has neither); ``riemlearn-armijo``
    rows run the Armijo searches of pymanopt (like for like: backtracking for SD, adaptive for
    CG); ``riemlearn-LBFGS`` is riemlearn's L-BFGS (no peer has it).
(c) ``--device cuda`` runs (a) and (b) with riemlearn tensors on the GPU (peers stay on CPU);
    large and batched problems: ``benchmarks/optim_large.py``.

Solver timings are reported as wall time and as process CPU time (``time.process_time``, one
thread): on a shared, loaded machine the CPU time is the robust figure; ratios use it.

Run: ``python benchmarks/optim.py --threads 1`` (or through ``benchmarks/run.py optim``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, parse_args, time_ratio  # noqa: E402
from riemlearn.manifolds import SPD, Grassmann, PoincareBall, Stiefel  # noqa: E402
from riemlearn.optim import (  # noqa: E402
    LBFGS,
    ConjugateGradient,
    Problem,
    RiemannianAdam,
    RiemannianSGD,
    SteepestDescent,
    TrustRegions,
)

warnings.filterwarnings("ignore")
D = torch.float64


# -- (a) optimizer steps ------------------------------------------------------------------------
def _step_pair(ours_m, geo_m, x, grad, opt, device, repeat):
    import geoopt

    p_ours = torch.nn.Parameter(x.clone().to(device))
    p_geo = geoopt.ManifoldParameter(x.clone(), manifold=geo_m)
    p_ours.grad = grad.clone().to(device)
    p_geo.grad = grad.clone()
    if opt == "adam":
        o1 = RiemannianAdam([{"params": [p_ours], "manifold": ours_m}], lr=1e-4)
        o2 = geoopt.optim.RiemannianAdam([p_geo], lr=1e-4)
    else:
        o1 = RiemannianSGD([{"params": [p_ours], "manifold": ours_m}], lr=1e-4, momentum=0.9)
        o2 = geoopt.optim.RiemannianSGD([p_geo], lr=1e-4, momentum=0.9)

    def ours():
        o1.step()
        if device != "cpu":
            torch.cuda.synchronize()

    ratio, t = time_ratio(ours, o2.step, repeat=repeat)
    c_ours, c_geo = _cpu_pair(ours, o2.step, repeat)
    return t, t / ratio, ratio, c_ours, c_geo


def _cpu_pair(fn, ref, repeat, calls=10):
    """Median process CPU time per call of ``fn`` and ``ref`` (alternating samples)."""
    a, b = [], []
    for _ in range(repeat):
        c0 = time.process_time()
        for _ in range(calls):
            fn()
        c1 = time.process_time()
        for _ in range(calls):
            ref()
        c2 = time.process_time()
        a.append((c1 - c0) / calls)
        b.append((c2 - c1) / calls)
    return statistics.median(a), statistics.median(b)


def part_a(device: str, repeat: int, quick: bool) -> list[Table]:
    import geoopt

    g = torch.Generator().manual_seed(0)
    tab = Table(f"(a) one optimizer step vs geoopt ({device})",
                ["space", "dtype", "optimizer", "riemlearn ms", "geoopt ms", "riemlearn/geoopt (wall)",
                 "riemlearn CPU ms", "geoopt CPU ms", "riemlearn/geoopt (CPU)"])
    nb = 16 if quick else 64
    spd = SPD(32)
    xs = spd.random_point(nb, generator=g, dtype=D)
    gs = torch.randn(nb, 32, 32, generator=g, dtype=D)
    gs = (gs + gs.mT) / 2
    st = Stiefel(256, 64)
    xst = st.random_point(generator=g, dtype=D)
    gst = torch.randn(256, 64, generator=g, dtype=D)
    nball = 2000 if quick else 10000
    ball = PoincareBall(1.0)
    xb = 0.5 * torch.nn.functional.normalize(torch.randn(nball, 10, generator=g, dtype=D), dim=-1) \
        * torch.rand(nball, 1, generator=g, dtype=D)
    gb = torch.randn(nball, 10, generator=g, dtype=D)
    cases = [
        (f"SPD(32)x{nb} AIM", spd, geoopt.SymmetricPositiveDefinite(), xs, gs),
        ("Stiefel(256,64) canonical", st, geoopt.CanonicalStiefel(), xst, gst),
        ("Stiefel(256,64) embedded", Stiefel(256, 64, metric="embedded"), geoopt.EuclideanStiefel(),
         xst, gst),
        (f"PoincareBall {nball}x10", ball, geoopt.PoincareBall(c=1.0), xb, gb),
    ]
    for name, om, gm, x, gr in cases:
        for dtype in (D, torch.float32):
            if dtype == torch.float32 and name.startswith("SPD"):
                continue
            if dtype == torch.float32 and name.startswith("Poincare"):
                gm = geoopt.PoincareBall(c=torch.tensor(1.0, dtype=torch.float32))
            for opt in ("adam", "sgd"):
                t, tg, r, c1, c2 = _step_pair(om, gm, x.to(dtype), gr.to(dtype), opt, device, repeat)
                tab.add(name, str(dtype).replace("torch.", ""), opt, 1e3 * t, 1e3 * tg, r,
                        1e3 * c1, 1e3 * c2, c1 / c2)
    # fast path: many parameters of one manifold, stacked vs one by one
    fp = Table(f"(a') stacked fast path: {nb} separate SPD(32) parameters, RiemannianAdam step",
               ["stacked", "ms", "ratio to per-parameter loop (wall)", "CPU ms", "ratio (CPU)"])
    ps1 = [torch.nn.Parameter(xs[i].clone().to(device)) for i in range(nb)]
    ps2 = [torch.nn.Parameter(xs[i].clone().to(device)) for i in range(nb)]
    for p, q, gi in zip(ps1, ps2, gs, strict=True):
        p.grad = gi.clone().to(device)
        q.grad = gi.clone().to(device)
    o_st = RiemannianAdam([{"params": ps1, "manifold": spd}], lr=1e-4, stacked=True)
    o_lp = RiemannianAdam([{"params": ps2, "manifold": spd}], lr=1e-4, stacked=False)
    r, t = time_ratio(o_st.step, o_lp.step, repeat=repeat)
    c_st, c_lp = _cpu_pair(o_st.step, o_lp.step, repeat, calls=3)
    fp.add("no (loop)", 1e3 * t / r, 1.0, 1e3 * c_lp, 1.0)
    fp.add("yes", 1e3 * t, r, 1e3 * c_st, c_st / c_lp)
    return [tab, fp]


# -- (b) solvers vs pymanopt ----------------------------------------------------------------------
def _brockett(n, p, g):
    a = torch.randn(n, n, generator=g, dtype=D)
    a = (a + a.T) / 2
    w = torch.arange(p, 0, -1, dtype=D)
    return a, w


def _problems(quick: bool, g, device: str = "cpu"):
    # analytic derivatives as ``c * (A @ x)``: ``c * A @ x`` would scale the n×n matrix first
    # (before 2026-11-23 it did, for riemlearn-analytic and pymanopt-numpy alike)
    n1, p1 = (100, 5) if quick else (200, 10)
    n2, p2 = (300, 5) if quick else (1000, 10)
    a1, w1 = _brockett(n1, p1, g)
    a2 = torch.randn(n2, n2, generator=g, dtype=D)
    a2 = (a2 + a2.T) / 2
    a1n, w1n, a2n = a1.numpy(), w1.numpy(), a2.numpy()
    a1d, w1d, a2d = a1.to(device), w1.to(device), a2.to(device)
    st = Stiefel(n1, p1, metric="embedded", retraction="qr")
    gr = Grassmann(n2, p2)
    out = []
    out.append(dict(
        name=f"Stiefel({n1},{p1}) Brockett", ours=st, x0=st.random_point(generator=g, dtype=D),
        cost_cpu=lambda x: ((x.T @ a1 @ x).diagonal(dim1=-2, dim2=-1) * w1).sum(),
        cost=lambda x: ((x.T @ a1d @ x).diagonal(dim1=-2, dim2=-1) * w1d).sum(),
        egrad=lambda x: 2 * (a1d @ x) * w1d, ehess=lambda x, u: 2 * (a1d @ u) * w1d,
        np_cost=lambda x: float(((x.T @ a1n @ x).diagonal() * w1n).sum()),
        np_egrad=lambda x: 2 * (a1n @ x) * w1n, np_ehess=lambda x, u: 2 * (a1n @ u) * w1n,
        pym=("Stiefel", n1, p1)))
    out.append(dict(
        name=f"Grassmann({n2},{p2}) dominant subspace", ours=gr,
        x0=gr.random_point(generator=g, dtype=D),
        cost_cpu=lambda x: -(x * (a2 @ x)).sum(),
        cost=lambda x: -(x * (a2d @ x)).sum(),
        egrad=lambda x: -2 * (a2d @ x), ehess=lambda x, u: -2 * (a2d @ u),
        np_cost=lambda x: float(-(x * (a2n @ x)).sum()),
        np_egrad=lambda x: -2 * (a2n @ x), np_ehess=lambda x, u: -2 * (a2n @ u),
        pym=("Grassmann", n2, p2)))
    return out


def _pymanopt_solver(kind, max_iterations, max_time):
    import pymanopt

    kw = dict(verbosity=0, max_iterations=max_iterations, max_time=max_time, min_gradient_norm=1e-6)
    if kind == "SD":
        return pymanopt.optimizers.SteepestDescent(**kw)
    if kind == "CG":
        return pymanopt.optimizers.ConjugateGradient(**kw)
    return pymanopt.optimizers.TrustRegions(**kw)


def _ours_solver(kind, max_iterations, max_time, p=None, variant=""):
    kw = dict(max_iterations=max_iterations, max_time=max_time, min_grad_norm=1e-6, log=False)
    if kind == "SD":  # our default Barzilai-Borwein steps (no peer has them); or Armijo as pymanopt
        return SteepestDescent(line_search="backtracking" if variant == "armijo" else "bb", **kw)
    if kind == "CG" and variant == "LBFGS":  # no peer has Riemannian L-BFGS
        return LBFGS(transport="projection", **kw)
    if kind == "CG":  # projection transport, as pymanopt on Stiefel/Grassmann; our default Wolfe
        # search, or the adaptive Armijo search of pymanopt (like for like)
        return ConjugateGradient(transport="projection",
                                 line_search="adaptive" if variant == "armijo" else "wolfe", **kw)
    # pymanopt's default maximal radius is the manifold's typical distance, sqrt(p) on
    # Stiefel(n, p) and Grassmann(n, p) (initial radius 1/8 of it); ours defaults to
    # sqrt(n p): use pymanopt's so that both run the same trust-region iterations.
    return TrustRegions(max_radius=None if p is None else math.sqrt(p), **kw)


def part_b(device: str, repeat: int, quick: bool) -> list[Table]:
    import pymanopt

    g = torch.Generator().manual_seed(1)
    tab = Table(f"(b) time to gradient norm 1e-6 vs pymanopt (riemlearn on {device})",
                ["problem", "solver", "library", "wall s", "CPU s", "final cost", "grad norm",
                 "iterations", "stop", "CPU time / riemlearn-autograd CPU time"])
    max_it, max_time = (1000, 30.0) if quick else (3000, 120.0)
    for spec in _problems(quick, g, device):
        kind_m, n, p = spec["pym"]
        pm = getattr(pymanopt.manifolds, kind_m)(n, p)
        np_cost, np_egrad, np_ehess = spec["np_cost"], spec["np_egrad"], spec["np_ehess"]
        torch_cost = spec["cost"]

        @pymanopt.function.numpy(pm)
        def c_np(x, f=np_cost):
            return f(x)

        @pymanopt.function.numpy(pm)
        def g_np(x, f=np_egrad):
            return f(x)

        @pymanopt.function.numpy(pm)
        def h_np(x, u, f=np_ehess):
            return f(x, u)

        @pymanopt.function.pytorch(pm)
        def c_pt(x, f=spec["cost_cpu"]):
            return f(x)

        prob_np = pymanopt.Problem(pm, c_np, euclidean_gradient=g_np, euclidean_hessian=h_np)
        prob_pt = pymanopt.Problem(pm, c_pt)
        x0 = spec["x0"]
        ours_pb = Problem(spec["ours"], torch_cost)
        ours_an = Problem(spec["ours"], torch_cost, egrad=spec["egrad"], ehess=spec["ehess"])
        x0_dev = x0.to(device)
        for kind in ("SD", "CG", "TR"):
            rows = {}
            libs = ("riemlearn", "riemlearn-analytic", "pymanopt-numpy", "pymanopt-pytorch")
            extra = {"SD": ("riemlearn-armijo",), "CG": ("riemlearn-armijo", "riemlearn-LBFGS")}
            for lib in libs + extra.get(kind, ()):
                times, cpus, res = [], [], None
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    c0 = time.process_time()
                    if lib.startswith("riemlearn"):
                        pb_ours = ours_an if lib == "riemlearn-analytic" else ours_pb
                        variant = lib.split("-", 1)[1] if lib.count("-") else ""
                        r = _ours_solver(kind, max_it, max_time, p, variant).solve(pb_ours, x0_dev)
                        if device != "cpu":
                            torch.cuda.synchronize()
                        res = (float(r.cost), float(r.grad_norm), int(r.iterations), r.stop_reason)
                    else:
                        pb = prob_np if lib == "pymanopt-numpy" else prob_pt
                        r = _pymanopt_solver(kind, max_it, max_time).run(pb, initial_point=x0.numpy())
                        res = (float(r.cost), float(r.gradient_norm), int(r.iterations),
                               str(r.stopping_criterion).split(".")[0][:40])
                    times.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
                    if times[-1] > 20:
                        break  # slow run: one is enough
                rows[lib] = (statistics.median(times), statistics.median(cpus), res)
            c_ours = rows["riemlearn"][1]
            for lib, (t, c, (f, gn, it, stop)) in rows.items():
                tab.add(spec["name"], kind, lib, t, c, f"{f:.12g}", f"{gn:.2e}", it, stop, c / c_ours)
    return [tab]


def pymanopt_procrustes(c, x0, ref, k: int, min_gradient_norm: float = 1e-6) -> float:
    """Solve the first ``k`` Procrustes problems ``min ‖X − Cᵢ‖²`` one by one with pymanopt's
    trust regions (numpy backend, analytic derivatives); the largest error against ``ref``."""
    import pymanopt

    pm = pymanopt.manifolds.Stiefel(*c.shape[-2:])
    err = 0.0
    for i in range(k):
        ci = c[i].numpy()

        @pymanopt.function.numpy(pm)
        def cost(x, ci=ci):
            return float(((x - ci) ** 2).sum())

        @pymanopt.function.numpy(pm)
        def egrad(x, ci=ci):
            return 2 * (x - ci)

        @pymanopt.function.numpy(pm)
        def ehess(x, u):
            return 2 * u

        res = pymanopt.optimizers.TrustRegions(verbosity=0, min_gradient_norm=min_gradient_norm).run(
            pymanopt.Problem(pm, cost, euclidean_gradient=egrad, euclidean_hessian=ehess),
            initial_point=x0[i].numpy())
        err = max(err, float(abs(res.point - ref[i].numpy()).max()))
    return err


def procrustes_problems(nprob: int, n: int, p: int, seed: int):
    """``(C, Stiefel(n, p), X₀, solutions)`` of ``nprob`` problems ``min ‖X − Cᵢ‖²`` (the polar
    factor ``U Vᵀ`` of ``Cᵢ`` is the solution)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(nprob, n, p, generator=g, dtype=D)
    m = Stiefel(n, p, metric="embedded")
    x0 = m.random_point(nprob, generator=g, dtype=D)
    svd = torch.linalg.svd(c, full_matrices=False)
    return c, m, x0, svd.U @ svd.Vh


def part_batched(device: str, quick: bool) -> list[Table]:
    """1000 independent Procrustes problems ``min ‖X − C_i‖`` on Stiefel(10, 3), solved at once."""
    nprob = 200 if quick else 1000
    n, p = 10, 3
    c, m, x0, ref = procrustes_problems(nprob, n, p, seed=2)
    tab = Table(f"(b') {nprob} Procrustes problems on Stiefel({n},{p}), trust regions, to grad norm 1e-6",
                ["how", "CPU s (all problems)", "max error vs SVD closed form", "ratio to batched"])
    cd, x0d = c.to(device), x0.to(device)
    c0 = time.process_time()
    r = TrustRegions(log=False).solve(Problem(m, lambda x: ((x - cd) ** 2).sum((-1, -2))), x0d)
    t_b = time.process_time() - c0
    tab.add("riemlearn, one batched solve", t_b, float((r.point.cpu() - ref).abs().max()), 1.0)
    k = 20
    c0 = time.process_time()
    err = 0.0
    for i in range(k):
        ri = TrustRegions(log=False).solve(Problem(m, lambda x, i=i: ((x - cd[i]) ** 2).sum()), x0d[i])
        err = max(err, float((ri.point.cpu() - ref[i]).abs().max()))
    t_l = (time.process_time() - c0) * nprob / k
    tab.add(f"riemlearn, loop of single solves (extrapolated from {k})", t_l, err, t_l / t_b)
    c0 = time.process_time()
    err = pymanopt_procrustes(c, x0, ref, k)
    t_p = (time.process_time() - c0) * nprob / k
    tab.add(f"pymanopt-numpy, loop (extrapolated from {k})", t_p, err, t_p / t_b)
    return [tab]


def main(argv: list[str] | None = None) -> list[Table]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--part", default="abp", help="a: steps, b: solvers, p: batched problems")
    known, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest,
                      device_help="where riemlearn's tensors live (peers: CPU always)")
    tables: list[Table] = []
    if "a" in known.part:
        tables += part_a(args.device, args.repeat, args.quick)
    if "b" in known.part:
        tables += part_b(args.device, max(1, min(args.repeat, 3)), args.quick)
    if "p" in known.part:
        tables += part_batched(args.device, args.quick)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(t.markdown() for t in tables))
    return tables


if __name__ == "__main__":
    for t in main():
        print()
        print(t.markdown())
