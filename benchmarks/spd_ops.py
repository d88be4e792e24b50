"""SPD operations: riemlearn's SPD metrics vs pyriemann (numpy) and geoopt (AIM).

Workload: 1024 SPD matrices 22×22 (EEG-covariance sized; eigenvalues log-uniform over two
decades), float64 and float32, no autograd.

* ``dist``: 1024 pairs ``(x_i, y_i)``;
* ``log``: 1024 matrices at one reference point (tangent-space mapping);
* ``exp``: 1024 tangent vectors at one reference point;
* ``transport``: 1024 triples ``(x_i, y_i, v_i)`` (parallel transport; pyriemann has none, geoopt
  only for AIM).

Peers, same inputs in the same process: pyriemann 0.12 on numpy arrays
(``distance_<metric>``, ``log_map_<metric>`` with ``C12=True`` and ``exp_map_<metric>`` with
``Cm12=True`` for AIM so that all compute the same map) and geoopt 0.5.1
``SymmetricPositiveDefinite()`` (affine-invariant; ``dist``, ``logmap``, ``expmap``, ``transp``).
Ratios are riemlearn time / peer time (median of back-to-back paired timings; < 1 means
riemlearn is faster). riemlearn's default ``compute_dtype="auto"`` computes float32 input in
float64 (the accuracy policy); the float32 table also reports ``compute_dtype=None`` (float32
throughout, as the peers do).

``--device cuda``: riemlearn's and geoopt's tensors live on the GPU (every timed call of theirs
ends with ``torch.cuda.synchronize()``, so the times are complete GPU times), pyriemann stays on
CPU numpy (it has no GPU path), so "ratio vs pyriemann" is then riemlearn-GPU / pyriemann-CPU.
The CUDA run adds the 64-channel size 1024×64×64 (``spectral.eigh`` sends n > 32 on CUDA to the
batched Jacobi solver). Table titles name the device.

geomstats 2.8 (numpy backend; affine-invariant, log-Euclidean and Bures–Wasserstein dist, log,
exp, and the first two's parallel transport) joins the table when it imports: it needs
``numpy<2.4``, so run this file from a separate environment that has it, e.g.
``python -m venv gs && gs/bin/pip install torch==2.13.0 "numpy<2.4" geomstats==2.8.0 pyriemann
geoopt && gs/bin/pip install --no-deps -e . && gs/bin/python benchmarks/spd_ops.py``.

Run: ``python benchmarks/run.py spd_ops --threads 1`` (or this file directly); on a GPU machine
``python benchmarks/spd_ops.py --device cuda [--markdown PATH]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, device_label, parse_args, time_ratio, timeit  # noqa: E402
from riemlearn.manifolds import spd as spd_module  # noqa: E402
from riemlearn.manifolds.spd_bures_wasserstein import BuresWasserstein  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)

PEER_NAMES = {"affine_invariant": "riemann", "log_euclidean": "logeuclid", "log_cholesky": "logchol",
              "bures_wasserstein": "wasserstein"}


def _metrics(compute_dtype):
    from riemlearn.manifolds import AffineInvariant, LogCholesky, LogEuclidean

    return {
        "affine_invariant": AffineInvariant(compute_dtype=compute_dtype),
        "log_euclidean": LogEuclidean(compute_dtype=compute_dtype),
        "log_cholesky": LogCholesky(compute_dtype=compute_dtype),
        "bures_wasserstein": BuresWasserstein(compute_dtype=compute_dtype),
    }


def _synced(fn, device: str):
    """``fn`` followed by a CUDA synchronize (so a timer sees the finished GPU work)."""
    if device != "cuda":
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def _data(batch: int, n: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(0)
    m = spd_module.SPD(n)
    x = m.random_point(batch, generator=g, dtype=torch.float64, cond=100.0)
    y = m.random_point(batch, generator=g, dtype=torch.float64, cond=100.0)
    ref = m.random_point(generator=g, dtype=torch.float64, cond=100.0)
    v = torch.randn(batch, n, n, generator=g, dtype=torch.float64)
    v = 0.1 * (v + v.mT) / math.sqrt(n)
    return [t.to(dtype) for t in (x, y, ref, v)]


def _pyriemann_ops(metric_name: str):
    from pyriemann.utils import distance, tangentspace

    name = PEER_NAMES[metric_name]
    dist = getattr(distance, f"distance_{name}")
    logm = getattr(tangentspace, f"log_map_{name}")
    expm = getattr(tangentspace, f"exp_map_{name}")
    if name == "riemann":
        return {"dist": dist, "log": lambda y, r: logm(y, r, C12=True),
                "exp": lambda u, r: expm(u, r, Cm12=True)}
    return {"dist": dist, "log": logm, "exp": expm}


GEOMSTATS_METRICS = {"affine_invariant": "SPDAffineMetric", "log_euclidean": "SPDLogEuclideanMetric",
                     "bures_wasserstein": "SPDBuresWassersteinMetric"}


def _geomstats_ops(metric_name: str, n: int) -> dict | None:
    """geomstats (numpy backend) calls for one metric, or ``None`` where unavailable.

    geomstats 2.8 needs ``numpy<2.4``: it is measured from a separate environment (see the
    module docstring). Its log-Cholesky metric is not measured (no closed-form SPD class in
    2.8), nor its Bures–Wasserstein transport (a numerical scheme, like riemlearn's).
    """
    try:
        import geomstats.geometry.spd_matrices as gs_spd
    except Exception:  # noqa: BLE001 - absent, or failing to import against this numpy
        return None
    name = GEOMSTATS_METRICS.get(metric_name)
    if name is None:
        return None
    space = gs_spd.SPDMatrices(n, equip=False)
    space.equip_with_metric(getattr(gs_spd, name))
    mt = space.metric
    ops = {"dist": mt.dist, "log": lambda yn, rn: mt.log(yn, rn), "exp": lambda un, rn: mt.exp(un, rn)}
    if metric_name != "bures_wasserstein":
        ops["transport"] = lambda xn, yn, vn: mt.parallel_transport(vn, xn, end_point=yn)
    return ops


def _ops(peer, geo, x, y, ref, v, u_ref, xn, yn, refn, un):
    """op → (riemlearn call taking the metric, pyriemann call or None, geoopt call or None)."""
    return {
        "dist": (lambda m: m.dist(x, y), lambda: peer["dist"](xn, yn),
                 (lambda: geo.dist(x, y)) if geo else None),
        "log": (lambda m: m.log(ref, y), lambda: peer["log"](yn, refn),
                (lambda: geo.logmap(ref, y)) if geo else None),
        "exp": (lambda m: m.exp(ref, u_ref), lambda: peer["exp"](un, refn),
                (lambda: geo.expmap(ref, u_ref)) if geo else None),
        "transport": (lambda m: m.transport(x, y, v), None,
                      (lambda: geo.transp(x, y, v)) if geo else None),
    }


def bench(dtype: torch.dtype, repeat: int, quick: bool, device: str = "cpu", n: int = 22) -> Table:
    batch = 128 if quick else 1024
    x, y, ref, v = _data(batch, n, dtype)  # made on CPU (same values on every device)
    xn, yn, refn, vn = (t.numpy() for t in (x, y, ref, v))
    x, y, ref, v = (t.to(device) for t in (x, y, ref, v))
    f32 = dtype == torch.float32
    cols = ["metric", "op", "riemlearn ms", "pyriemann ms", "ratio vs pyriemann", "geoopt ms",
            "ratio vs geoopt"]
    if f32:
        cols += ["riemlearn f32-compute ms", "f32-compute ratio vs pyriemann"]
    with_gs = _geomstats_ops("affine_invariant", n) is not None
    if with_gs:
        cols += ["geomstats ms", "ratio vs geomstats", "max rel. diff vs geomstats"]
    where = (f"riemlearn and geoopt on {device_label(device)}, pyriemann on CPU" if device == "cuda"
             else "CPU")
    title = f"SPD operations, {batch}×{n}×{n} {str(dtype).replace('torch.', '')}, {where}"
    table = Table(title, cols)
    try:
        import geoopt

        geo = geoopt.SymmetricPositiveDefinite()
    except ImportError:  # pragma: no cover
        geo = None
    default = _metrics("auto")
    raw = _metrics(None)
    for mname, metric in default.items():
        peer = _pyriemann_ops(mname)
        u_ref = metric.log(ref, y) * 0.5  # a tangent vector at ref inside every metric's domain
        un = u_ref.cpu().numpy()
        ops = _ops(peer, geo, x, y, ref, v, u_ref, xn, yn, refn, un)
        gs_ops = _geomstats_ops(mname, n) if with_gs else None
        for op, (ours, pyr, geof) in ops.items():
            if geof is not None and mname != "affine_invariant":
                geof = None  # geoopt's SPD metric is affine-invariant only
            rep = max(3, repeat // 2) if op == "transport" and mname == "bures_wasserstein" else repeat
            fn = _synced(lambda m=metric, f=ours: f(m), device)
            if geof is not None:
                geof = _synced(geof, device)
            t_ours = timeit(fn, repeat=rep, warmup=1)
            r_pyr = t_pyr = r_geo = t_geo = float("nan")
            if pyr is not None:
                r_pyr, _ = time_ratio(fn, pyr, repeat=rep, warmup=1)
                t_pyr = timeit(pyr, repeat=rep, warmup=1)
            if geof is not None:
                r_geo, _ = time_ratio(fn, geof, repeat=rep, warmup=1)
                t_geo = timeit(geof, repeat=rep, warmup=1)
            row = [mname, op, 1e3 * t_ours, 1e3 * t_pyr, r_pyr, 1e3 * t_geo, r_geo]
            if f32:
                fn32 = _synced(lambda m=raw[mname], f=ours: f(m), device)
                t32 = timeit(fn32, repeat=rep, warmup=1)
                r32 = time_ratio(fn32, pyr, repeat=rep, warmup=1)[0] if pyr is not None else float("nan")
                row += [1e3 * t32, r32]
            if with_gs:
                row += _geomstats_cells(gs_ops, op, fn, (xn, yn, refn, un, vn), rep)
            table.add(*row)
    return table


def _geomstats_cells(gs_ops, op, fn, arrays, rep) -> list[float]:
    """``[ms, ratio, max relative difference]`` of geomstats' ``op`` (NaN where not measured)."""
    nan = float("nan")
    if gs_ops is None or op not in gs_ops:
        return [nan, nan, nan]
    xn, yn, refn, un, vn = arrays
    args = {"dist": (xn, yn), "log": (yn, refn), "exp": (un, refn), "transport": (xn, yn, vn)}[op]
    call = lambda: gs_ops[op](*args)  # noqa: E731
    theirs = torch.as_tensor(call()).double()
    ours = fn().detach().cpu().double()
    diff = float((ours - theirs).abs().max() / theirs.abs().max())
    return [1e3 * timeit(call, repeat=rep, warmup=1), time_ratio(fn, call, repeat=rep, warmup=1)[0], diff]


def main(argv=None) -> list[Table]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--sizes", type=int, nargs="+", default=None,
                     help="matrix sizes n (default: 22 on CPU, 22 64 on CUDA)")
    known, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest,
                      device_help="where riemlearn's and geoopt's tensors live (pyriemann: CPU always)")
    device = args.device
    sizes = known.sizes or ((22, 64) if device == "cuda" else (22,))
    if device == "cuda":
        print(f"device: {device_label(device)}, TF32 matmul: {torch.backends.cuda.matmul.allow_tf32}")
    tables = [bench(dt, args.repeat, args.quick, device, n) for n in sizes
              for dt in (torch.float64, torch.float32)]
    if args.markdown:
        Path(args.markdown).write_text("\n".join(t.markdown() for t in tables))
    return tables


if __name__ == "__main__":
    for t in main():
        print(t.markdown())
