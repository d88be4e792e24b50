"""Code run inside the gloo processes of tests/test_distributed.py (importable by the children).

Every ``*_case`` function builds its inputs deterministically, so the parent process can rebuild
them and compute the single-process answers. One spawn runs everything (process start-up is
the expensive part).
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from riemlearn.distributed import (
    convert_sync_batchnorm,
    decentralized_cg,
    frechet_mean,
)
from riemlearn.layers import SPDNet, refit_batchnorm_stats
from riemlearn.layers.models_spd import make_spd_batchnorm
from riemlearn.manifolds import SPD, Euclidean, Grassmann, PoincareBall, Sphere
from riemlearn.optim import RiemannianAdam

DT = torch.float64
N_PTS = 31
CUTS = {1: [0, 31], 2: [0, 12, 31], 3: [0, 7, 20, 31]}  # uneven shards


def shard(x: torch.Tensor, rank: int, world: int, dim: int) -> torch.Tensor:
    c = CUTS[world]
    return x.narrow(dim, c[rank], c[rank + 1] - c[rank])


# -- Fréchet means -----------------------------------------------------------------------------
def mean_cases():
    """(name, manifold, points (2, 31, ...), weights or None)."""
    out = []
    for i, (name, m) in enumerate([
        ("spd-ai", SPD(4)), ("spd-le", SPD(4, metric="log_euclidean")),
        ("spd-lc", SPD(4, metric="log_cholesky")), ("spd-bw", SPD(4, metric="bures_wasserstein")),
        ("sphere", Sphere(5)), ("grassmann", Grassmann(5, 2)), ("poincare", PoincareBall(n=3)),
        ("euclidean", Euclidean(3)),
    ]):
        g = torch.Generator().manual_seed(100 + i)
        if name == "sphere":  # concentrated: a unique mean
            z = 0.3 * torch.randn(2, N_PTS, 5, generator=g, dtype=DT)
            z[..., 0] += 1
            x = m.project_point(z)
        else:
            x = m.random_point(2, N_PTS, generator=g, dtype=DT)
        w = torch.rand(N_PTS, generator=g, dtype=DT) + 0.1 if name in ("spd-ai", "sphere") else None
        out.append((name, m, x, w))
    return out


MEAN_KW = {"tol": 1e-13, "max_iter": 500}


def means_part(rank: int, world: int, res: dict) -> None:
    for name, m, x, w in mean_cases():
        with torch.no_grad():
            res[f"mean/{name}"] = frechet_mean(shard(x, rank, world, 1), m,
                                               None if w is None else shard(w, rank, world, 0), **MEAN_KW)
    # differentiable closed form: loss / world on every rank = the single-process loss
    _, m, x, _ = mean_cases()[1]
    xl = shard(x, rank, world, 1).clone().requires_grad_(True)
    mean = frechet_mean(xl, m)
    (mean * le_cotangent()).sum().div(world).backward()
    res["le_grad"] = xl.grad
    # iterative means are not differentiable: every rank raises the same error
    try:
        frechet_mean(shard(x, rank, world, 1).clone().requires_grad_(True), SPD(4))
        res["grad_iterative"] = "no error"
    except NotImplementedError as exc:
        res["grad_iterative"] = str(exc)
    # bad input on one rank: every rank raises (no hang)
    xb = shard(x, rank, world, 1).clone()
    if rank == world - 1:
        xb[0, 0, 0, 0] = float("nan")
    try:
        frechet_mean(xb, SPD(4))
        res["bad_input"] = "no error"
    except ValueError as exc:
        res["bad_input"] = str(exc)


def le_cotangent() -> torch.Tensor:
    return torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(7), dtype=DT)


# -- synchronized batch norm ------------------------------------------------------------------
BN_KINDS = ("aim", "liebn-aim", "liebn-lem", "liebn-lcm", "bw")


def bn_inputs():
    g = torch.Generator().manual_seed(11)
    x = SPD(4).random_point(N_PTS, generator=g, dtype=DT)
    c = torch.randn(N_PTS, 4, 4, generator=g, dtype=DT)
    return x, c


def bn_layer(kind: str):
    return make_spd_batchnorm(kind, 4, dtype=DT)


def syncbn_part(rank: int, world: int, res: dict) -> None:
    x, c = bn_inputs()
    for kind in BN_KINDS:
        layer = convert_sync_batchnorm(bn_layer(kind))
        res[f"bn/{kind}/type"] = type(layer).__name__
        xl = shard(x, rank, world, 0).clone().requires_grad_(True)
        with torch.no_grad():
            layer.bias.copy_(SPD(4).random_point(generator=torch.Generator().manual_seed(3), dtype=DT))
        for step in range(2):  # the second step is warm-started at the running mean
            out = layer(xl)
            if step == 0:
                (out * shard(c, rank, world, 0)).sum().backward()
        res[f"bn/{kind}/out"] = out.detach()
        res[f"bn/{kind}/xgrad"] = xl.grad
        bg = layer.bias.grad.clone()
        dist.all_reduce(bg)
        res[f"bn/{kind}/biasgrad"] = bg
        res[f"bn/{kind}/running"] = (layer.running_mean.clone(), layer.running_var.clone())
    # exact refit of the running statistics on the union of all ranks' data
    layer = convert_sync_batchnorm(bn_layer("aim"))
    refit_batchnorm_stats(layer, shard(x, rank, world, 0))
    res["bn/refit"] = (layer.running_mean.clone(), layer.running_var.clone())


# -- DistributedDataParallel with a Riemannian optimizer ------------------------------------------
DDP_BATCH = 12  # divisible by 2 and 3: equal shards, so the average of local means is the global mean


def ddp_data():
    g = torch.Generator().manual_seed(21)
    x = SPD(6).random_point(4, DDP_BATCH, generator=g, dtype=DT)
    y = torch.randint(0, 2, (4, DDP_BATCH), generator=g)
    return x, y


def ddp_model(seed: int = 0) -> SPDNet:
    return SPDNet(6, [4], 2, bn="aim", dtype=DT, generator=torch.Generator().manual_seed(seed))


def ddp_run(model, opt, x, y, steps, rank, world):
    k = DDP_BATCH // world
    for s in steps:
        opt.zero_grad()
        loss = F.cross_entropy(model(x[s, rank * k:(rank + 1) * k]), y[s, rank * k:(rank + 1) * k])
        loss.backward()
        opt.step()


def ddp_part(rank: int, world: int, res: dict, outdir: str) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    x, y = ddp_data()
    model = DDP(convert_sync_batchnorm(ddp_model(0)))
    opt = RiemannianAdam(model.parameters(), lr=0.05)
    ddp_run(model, opt, x, y, [0, 1], rank, world)
    ckpt = os.path.join(outdir, "ckpt.pt")
    if rank == 0:
        torch.save({"model": model.module.state_dict(), "optim": opt.state_dict()}, ckpt)
    dist.barrier()
    ddp_run(model, opt, x, y, [2, 3], rank, world)
    res["ddp/params"] = {n: p.detach().clone() for n, p in model.module.named_parameters()}
    res["ddp/buffers"] = {n: b.clone() for n, b in model.module.named_buffers()}
    # resume from the checkpoint into a fresh model and optimizer
    fresh = ddp_model(seed=99)
    state = torch.load(ckpt, weights_only=True)
    fresh.load_state_dict(state["model"])
    model2 = DDP(convert_sync_batchnorm(fresh))
    opt2 = RiemannianAdam(model2.parameters(), lr=0.05)
    opt2.load_state_dict(state["optim"])
    ddp_run(model2, opt2, x, y, [2, 3], rank, world)
    res["ddp/resumed"] = {n: p.detach().clone() for n, p in model2.module.named_parameters()}


# -- decentralized PCA ---------------------------------------------------------------------------
PCA_N, PCA_P = 12, 3


def pca_covariances(world: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(31)
    scales = torch.linspace(3.0, 0.3, PCA_N, dtype=DT)
    z = torch.randn(world, 40, PCA_N, generator=g, dtype=DT) * scales
    return z.mT @ z / (world * 40)


def pca_x0() -> torch.Tensor:
    return torch.linalg.qr(torch.randn(PCA_N, PCA_P, generator=torch.Generator().manual_seed(5), dtype=DT))[0]


def pca_part(rank: int, world: int, res: dict) -> None:
    a = pca_covariances(world)[rank]
    out = decentralized_cg(lambda x: -0.5 * (x * (a @ x)).sum(), pca_x0(), step=0.1, max_iter=400,
                           tol=1e-9, check_every=10)
    res["pca"] = out


def subgroup_part(rank: int, world: int, res: dict) -> None:
    """Ranks 0 and 2 as a process group of 2 (group rank ≠ global rank for rank 2)."""
    sub = dist.new_group([0, 2])
    if rank not in (0, 2):
        return
    r = 0 if rank == 0 else 1
    _, m, x, w = mean_cases()[4]  # sphere, weighted: Karcher iterations + the broadcast fallback
    with torch.no_grad():
        res["sub/mean"] = frechet_mean(shard(x, r, 2, 1), m, shard(w, r, 2, 0), process_group=sub, **MEAN_KW)
    a = pca_covariances(2)[r]
    res["sub/pca"] = decentralized_cg(lambda z: -0.5 * (z * (a @ z)).sum(), pca_x0(), step=0.1,
                                      max_iter=400, tol=1e-9, process_group=sub)


def worker(rank: int, world: int, outdir: str) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)
    res: dict = {}
    means_part(rank, world, res)
    syncbn_part(rank, world, res)
    ddp_part(rank, world, res, outdir)
    pca_part(rank, world, res)
    subgroup_part(rank, world, res)
    torch.save(res, os.path.join(outdir, f"rank{rank}.pt"))
