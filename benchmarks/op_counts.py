"""Operator counts: how many torch operators (and ``eigh`` calls) one call launches.

On a GPU, small batched work is bound by launching operators, not by arithmetic (an H100 spent
~3.3 ms of GPU time in a ~16 ms affine-invariant mean of 1000×22×22), so the operator count is
the figure to drive down there; it does not depend on the machine. Counted with a
``TorchDispatchMode`` (views and metadata-only operators excluded), after one warm-up call:

* ``frechet_mean`` (affine-invariant) of 1000×22×22, well-conditioned and widely spread data
  (the sets of ``stats_mean.py``);
* one training step (forward, backward, ``RiemannianAdam``) of SPDNet 20→16→8 on a batch of 30,
  with the exact AIM batch norm and without batch norm.

Run: ``python benchmarks/op_counts.py`` (CPU, a few seconds).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, parse_args  # noqa: E402
from riemlearn.layers import SPDNet  # noqa: E402
from riemlearn.manifolds import SPD  # noqa: E402
from riemlearn.optim import RiemannianAdam  # noqa: E402
from riemlearn.stats.frechet_mean import frechet_mean  # noqa: E402
from stats_mean import make  # noqa: E402

_FREE = {"view", "_unsafe_view", "t", "transpose", "expand", "unsqueeze", "squeeze", "permute",
         "select", "slice", "alias", "as_strided", "diagonal", "detach", "lift_fresh"}


class _Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name not in _FREE:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def count(fn) -> tuple[int, int, int]:
    """``(operators, eigh calls, host reads)`` of one call of ``fn`` (after a warm-up call)."""
    fn()
    with _Count() as c:
        fn()
    eigh = sum(v for k, v in c.ops.items() if "eigh" in k)
    return sum(c.ops.values()), eigh, c.ops["_local_scalar_dense"]


def _spdnet_step(bn: str | None):
    g = torch.Generator().manual_seed(0)
    net = SPDNet(20, [16, 8], 2, bn=bn, dtype=torch.float64, generator=g)
    x = make("well", 30, 20)
    y = torch.randint(0, 2, (30,), generator=g)
    opt = RiemannianAdam(net.parameters(), lr=1e-2)
    loss = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss(net(x), y).backward()
        opt.step()

    for _ in range(3):  # past the first steps (running statistics in place)
        step()
    return step


def main(argv: list[str] | None = None) -> list[Table]:
    args = parse_args(__doc__.splitlines()[0], argv)
    tab = Table("Operators launched per call (CPU, float64)",
                ["call", "operators", "eigh calls", "host reads (item)"])
    for kind in ("well", "spread"):
        x = make(kind, 1000, 22)
        tab.add(f"frechet_mean AIM 1000x22x22 {kind}", *count(lambda x=x: frechet_mean(x, SPD(22), tol=1e-9)))
    for bn, label in (("aim", "AIM batch norm"), (None, "no batch norm")):
        tab.add(f"SPDNet 20-16-8 training step, {label}", *count(_spdnet_step(bn)))
    if args.markdown:
        Path(args.markdown).write_text(tab.markdown())
    return [tab]


if __name__ == "__main__":
    for t in main():
        print(t.markdown())
