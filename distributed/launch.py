"""Run a function on ``nprocs`` local processes joined in one ``torch.distributed`` group.

For tests, notebooks and quick experiments on one machine (loopback only). Production runs use
``torchrun`` (see :mod:`riemlearn.distributed`), which needs none of this.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["free_port", "spawn_local"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0 and ask the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, fn: Callable[..., Any], world_size: int, port: int, backend: str,
           timeout_s: float, args: tuple) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world_size)
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group(backend, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def spawn_local(fn: Callable[..., Any], nprocs: int, args: tuple = (), *, backend: str = "gloo",
                timeout: float = 120.0) -> None:
    """Call ``fn(rank, world_size, *args)`` in ``nprocs`` fresh processes of one process group.

    The processes rendezvous on ``127.0.0.1`` at a free port. ``fn`` must be importable by the
    children (a module-level function). Collectives time out after ``timeout`` seconds and the
    whole run is killed after ``timeout`` seconds of wall time, so a hang fails instead of
    blocking.

    Parameters
    ----------
    fn : callable
        ``fn(rank, world_size, *args)``; its return value is ignored (write results to files).
    nprocs : int
        Number of processes (ranks ``0 … nprocs − 1``).
    args : tuple
        Extra positional arguments (picklable).
    backend : str
        ``"gloo"`` (CPU) or ``"nccl"`` (one GPU per process).
    timeout : float
        Seconds before collectives and the whole run fail.

    Raises
    ------
    TimeoutError
        If the processes have not finished within ``timeout`` seconds (they are terminated).
    torch.multiprocessing.ProcessRaisedException
        If a process raised (its traceback is in the message).
    """
    if int(nprocs) < 1:
        raise ValueError(f"nprocs must be >= 1, got {nprocs}")
    port = free_port()
    ctx = mp.start_processes(_entry, args=(fn, int(nprocs), port, backend, float(timeout), tuple(args)),
                             nprocs=int(nprocs), join=False, start_method="spawn")
    deadline = time.monotonic() + float(timeout)
    try:
        while not ctx.join(timeout=max(0.1, min(1.0, deadline - time.monotonic()))):
            if time.monotonic() > deadline:
                raise TimeoutError(f"spawn_local: {nprocs} processes did not finish in {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)
                if p.is_alive():
                    p.kill()
