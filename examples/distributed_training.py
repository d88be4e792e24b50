"""riemlearn on several processes: a sharded Fréchet mean, SPDNet with synchronized batch norm
under DistributedDataParallel, and decentralized PCA on the Stiefel manifold.

Run it with ``torchrun`` (PyTorch's launcher; nothing riemlearn-specific):

One machine, N processes (CPU: gloo; with GPUs: one process per GPU, NCCL)::

    torchrun --standalone --nproc_per_node 2 examples/distributed_training.py

A cluster of K machines with N processes each: run the same command on every machine, with a
rendezvous endpoint that all of them reach (any free port on the first machine)::

    torchrun --nnodes K --nproc_per_node N --rdzv-id myjob --rdzv-backend c10d \
             --rdzv-endpoint HOST0:29500 examples/distributed_training.py

or with a static rendezvous, numbering the machines yourself (``--node_rank 0 … K-1``)::

    torchrun --nnodes K --node_rank R --nproc_per_node N --master_addr HOST0 --master_port 29500 \
             examples/distributed_training.py

Without ``torchrun`` (plain ``python examples/distributed_training.py``) the script starts
2 local gloo processes itself with :func:`riemlearn.distributed.spawn_local`.

What each rank does:

1. holds its own shard of 600 SPD covariance matrices and computes the affine-invariant
   Fréchet mean of *all* of them (:func:`riemlearn.distributed.frechet_mean`: one all-reduce
   of the gradient and of each Hessian–vector product per Newton iteration); rank 0 checks it
   against the single-process mean;
2. trains an SPDNet (BiMap weights on the Stiefel manifold, AIM batch norm made synchronous by
   :func:`~riemlearn.distributed.convert_sync_batchnorm`) wrapped in
   ``DistributedDataParallel`` with :class:`~riemlearn.optim.RiemannianAdam`; DDP averages the
   gradients before the Riemannian step, so the parameters stay identical on every rank
   (checked); rank 0 saves a checkpoint (``model.module.state_dict()``, optimizer state);
3. runs decentralized Riemannian CG for PCA (:func:`~riemlearn.distributed.decentralized_cg`):
   each rank sees only its own data and talks only to its ring neighbours, and all reach the
   top-3 eigenspace of the pooled covariance.
"""

from __future__ import annotations

import os
import tempfile

import torch
import torch.distributed as dist
import torch.nn.functional as F
from riemlearn.distributed import convert_sync_batchnorm, decentralized_cg, frechet_mean, spawn_local
from riemlearn.layers import SPDNet
from riemlearn.manifolds import SPD
from riemlearn.optim import RiemannianAdam
from torch.nn.parallel import DistributedDataParallel as DDP

DT = torch.float64


def log(rank: int, *msg) -> None:
    if rank == 0:
        print(*msg, flush=True)


def synthetic(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of SPD matrices (class 1 has a larger leading eigenvalue)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = SPD(size).random_point(n, generator=g, dtype=DT)
    boost = torch.ones(size, dtype=DT)
    boost[0] = 3.0
    d = torch.where(y[:, None] == 1, boost, torch.ones(size, dtype=DT))
    return d.sqrt()[:, :, None] * x * d.sqrt()[:, None, :], y


def main(rank: int, world: int, ckpt_dir: str, device: str = "cpu") -> None:
    torch.set_num_threads(1)
    # 1. sharded Fréchet mean --------------------------------------------------------------
    x_all, y_all = synthetic(600, 8, seed=0)
    x_all, y_all = x_all.to(device), y_all.to(device)
    mine = torch.arange(600)[rank::world]  # this rank's shard
    with torch.no_grad():
        mean = frechet_mean(x_all[mine], SPD(8))
    if rank == 0:
        from riemlearn.stats import frechet_mean as single

        err = float((mean - single(x_all, SPD(8))).abs().max())
        print(f"[1] Fréchet mean of 600 points on {world} ranks: max |distributed - single| = {err:.1e}")

    # 2. SPDNet + synchronized batch norm + DDP + RiemannianAdam ----------------------------
    model = SPDNet(8, [6, 4], 2, bn="aim", dtype=DT, generator=torch.Generator().manual_seed(0)).to(device)
    model = DDP(convert_sync_batchnorm(model))  # DDP broadcasts rank 0's parameters
    opt = RiemannianAdam(model.parameters(), lr=0.02)
    xs, ys = x_all[mine], y_all[mine]
    for epoch in range(10):
        for b in range(0, len(xs), 25):
            opt.zero_grad()
            loss = F.cross_entropy(model(xs[b:b + 25]), ys[b:b + 25])
            loss.backward()  # DDP all-reduces (averages) the gradients here
            opt.step()  # identical Riemannian step on every rank
        if epoch % 3 == 0 or epoch == 9:
            log(rank, f"[2] epoch {epoch}: loss on rank 0's last batch {loss.item():.3f}")
    w = model.module.features[0].weight.detach().contiguous()
    w0 = w.clone()
    dist.broadcast(w0, 0)
    same = torch.tensor([float(torch.equal(w, w0))], device=device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    feas = float((w.mT @ w - torch.eye(w.shape[-1], dtype=DT, device=device)).norm())
    log(rank, f"[2] BiMap weight identical on all ranks: {bool(same.item())}; ‖WᵀW − I‖ = {feas:.1e}")
    if rank == 0:
        path = os.path.join(ckpt_dir, "spdnet.pt")
        torch.save({"model": model.module.state_dict(), "optim": opt.state_dict()}, path)
        print(f"[2] checkpoint written to {path} (load with model.load_state_dict / opt.load_state_dict)")
    dist.barrier()

    # 3. decentralized PCA over a ring --------------------------------------------------------
    g = torch.Generator().manual_seed(1 + rank)  # each rank's private data
    z = torch.randn(200, 20, generator=g, dtype=DT) * torch.linspace(3.0, 0.2, 20, dtype=DT)
    a = (z.T @ z / (200 * world)).to(device)
    x0 = torch.linalg.qr(torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=DT))[0]
    res = decentralized_cg(lambda x: -0.5 * (x * (a @ x)).sum(), x0.to(device), step=0.05, max_iter=1000,
                           tol=1e-8)
    pooled = a.clone()
    dist.all_reduce(pooled)  # only to check the answer: the algorithm itself never pools
    u = torch.linalg.eigh(pooled)[1][:, -3:]
    gap = float((res.x @ res.x.T - u @ u.T).norm())
    log(rank, f"[3] decentralized PCA: {res.iterations} iterations, projector distance to the "
              f"centralized solution {gap:.1e}, consensus error {res.consensus_error:.1e}, "
              f"‖XᵀX − I‖ {res.feasibility:.1e}")


def torchrun_entry() -> None:
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    device = "cpu"
    if backend == "nccl":  # one GPU per process
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    try:
        main(dist.get_rank(), dist.get_world_size(), tempfile.gettempdir(), device)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
        torchrun_entry()
    else:
        spawn_local(main, 2, (tempfile.gettempdir(),), timeout=600)
