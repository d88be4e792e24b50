"""Scaling past one process with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

* :func:`frechet_mean` — Fréchet means of points sharded over ranks (all-reduced sums);
* :class:`SyncRiemannianBatchNorm` / :func:`convert_sync_batchnorm` — SPD batch norms whose
  statistics are those of the global batch;
* :func:`decentralized_cg` — decentralized Riemannian conjugate gradient on the Stiefel manifold
  (neighbour-only communication), with :func:`ring_mixing_matrix`;
* :func:`spawn_local` — run a function on ``N`` local processes (tests, notebooks).

``DistributedDataParallel`` works with riemlearn's optimizers and manifold parameters as is:
wrap the model, build ``RiemannianAdam(ddp.parameters())``; DDP averages the Euclidean
gradients before the Riemannian step, so every rank takes the same step.

Launch with ``torchrun --nproc_per_node N script.py`` on one machine, or on a cluster with
``torchrun --nnodes K --nproc_per_node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT script.py``.
"""

from .decentralized import DecentralizedResult, decentralized_cg, ring_mixing_matrix
from .frechet_mean import frechet_mean
from .launch import free_port, spawn_local
from .sync_batchnorm import (
    SyncBWBatchNorm,
    SyncLieBatchNorm,
    SyncRiemannianBatchNorm,
    SyncSPDBatchNorm,
    convert_sync_batchnorm,
)

__all__ = ["frechet_mean", "spawn_local", "free_port", "SyncRiemannianBatchNorm", "SyncSPDBatchNorm",
           "SyncLieBatchNorm", "SyncBWBatchNorm", "convert_sync_batchnorm", "decentralized_cg",
           "DecentralizedResult", "ring_mixing_matrix"]
