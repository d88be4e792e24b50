"""SPDNet and TSMNet training: riemlearn vs spd_learn, same architecture and data.

Models (identical layer by layer on both sides):

- SPDNet 93→30: BiMap(93, 30) → SPD batch norm (AIM, dispersion) → LogEig → Linear;
- SPDNet 20→16→8: BiMap → BN → ReEig → BiMap → BN → LogEig → Linear;
- SPDNet 20→16→8 with LieBN (AIM, LCM) on both sides (spd_learn: ``SPDBatchNormLie``);
- TSMNet: temporal conv (4×25) → spatial conv (40) → covariance → BiMap(40, 20) → ReEig →
  SPD batch norm (bias fixed, learned dispersion scale) → LogEig → Linear.

riemlearn: :class:`riemlearn.layers.SPDNet` / :class:`~riemlearn.layers.TSMNet` trained with
``RiemannianAdam`` (Stiefel BiMap weights); spd_learn 0.2.1: its ``BiMap`` (orthogonal
parametrization), ``SPDBatchNormMeanVar`` (one Karcher step per batch), ``ReEig``, ``LogEig``
trained with ``torch.optim.Adam``. Data: ``make_eeg`` trials (OAS covariances for SPDNet, raw
signals for TSMNet), 2 classes, 300 trials (210 train / 90 test), batch 30 (7 steps per epoch).

Reported: median time of one training step and of one epoch, test accuracy after ``--epochs``
epochs (riemlearn after :func:`~riemlearn.layers.refit_batchnorm_stats`; spd_learn with its
running statistics, as it ships, and with test-batch statistics), and the number of seeds
(out of ``--seeds``) whose training produced a NaN loss or parameter. On ``--device cpu`` the
time is CPU time (``time.process_time``: the box is shared, and CPU time of a single-threaded
process is not inflated by other processes the way wall time is) with 1 thread, and wall time
with more (CPU time would add the threads up; run on a quiet machine). On ``--device cuda`` (data,
models and optimizer state of both libraries on the GPU) CPU time would miss the GPU's work, so
the time is wall time (``time.perf_counter``) read after ``torch.cuda.synchronize()``; the table
title says which clock was used.

Run: ``python benchmarks/layers.py [--threads 1] [--seeds 10] [--epochs 10] [--quick]
[--markdown PATH]``; on a GPU machine add ``--device cuda``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, machine_description, parse_args  # noqa: E402
from riemlearn.layers import SPDNet, TSMNet, refit_batchnorm_stats  # noqa: E402
from riemlearn.optim import RiemannianAdam  # noqa: E402
from riemlearn.stats import covariances, make_eeg  # noqa: E402


class _SLSPDNet(nn.Module):
    """spd_learn layers assembled into the same SPDNet (channel dim 1 as spd_learn expects)."""

    def __init__(self, sizes: list[int], n_classes: int, dtype: torch.dtype, bn: str = "aim") -> None:
        super().__init__()
        from spd_learn.modules import BiMap, LogEig, ReEig, SPDBatchNormLie, SPDBatchNormMeanVar

        def norm(b: int) -> nn.Module:
            if bn == "aim":
                return SPDBatchNormMeanVar(b, dtype=dtype)
            return SPDBatchNormLie(b, metric=bn.split("-")[1].upper(), dtype=dtype)

        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers += [BiMap(a, b, dtype=dtype), norm(b)]
            if i < len(sizes) - 2:
                layers.append(ReEig(1e-4))
        self.features = nn.Sequential(*layers)
        self.logeig = LogEig(upper=True)
        self.classifier = nn.Linear(sizes[-1] * (sizes[-1] + 1) // 2, n_classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.logeig(self.features(x[:, None])).flatten(1))


def _data(kind: str, seed: int, n_chans: int, dtype: torch.dtype):
    x, y = make_eeg(n_trials=300, n_channels=n_chans, n_times=256, n_classes=2, random_state=seed,
                    class_sep=0.6, jitter=0.6)
    if kind == "spdnet":
        x = covariances(x, estimator="oas")
    return x.to(dtype), y


def _build(lib: str, arch: str, sizes: list[int], n_chans: int, dtype: torch.dtype, seed: int,
           bn: str, device: str):
    torch.manual_seed(seed)  # scripts may touch the global RNG; spd_learn initializes from it
    g = torch.Generator().manual_seed(seed)
    if arch == "spdnet":
        if lib == "riemlearn":
            m = SPDNet(sizes[0], sizes[1:], 2, bn=bn, dtype=dtype, generator=g)
        else:
            m = _SLSPDNet(sizes, 2, dtype, bn)
    else:
        if lib == "riemlearn":
            m = TSMNet(n_chans, 2, dtype=dtype, generator=g)
        else:
            from spd_learn.models import TSMNet as SLTSMNet

            m = SLTSMNet(n_chans=n_chans, n_outputs=2).to(dtype)
    m = m.to(device)  # initialized on CPU (same weights on every device), then moved
    opt = (RiemannianAdam if lib == "riemlearn" else torch.optim.Adam)(m.parameters(), lr=1e-2)
    return m, opt


def _acc(m: nn.Module, x: torch.Tensor, y: torch.Tensor, train_mode: bool = False) -> float:
    m.train(train_mode)
    with torch.no_grad():
        out = float((m(x).argmax(-1) == y).double().mean())
    m.train(True)
    return out


def _clock(device: str):
    """CPU time on CPU with 1 thread, else wall time; on CUDA read after a synchronize."""
    if device != "cuda":
        return time.process_time if torch.get_num_threads() == 1 else time.perf_counter

    def clock() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    return clock


def train(lib: str, arch: str, sizes: list[int], n_chans: int, dtype: torch.dtype, seed: int,
          epochs: int, bn: str = "aim", device: str = "cpu") -> dict:
    x, y = _data(arch, seed, n_chans, dtype)
    x, y = x.to(device), y.to(device)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    tr, te = perm[:210].to(device), perm[210:].to(device)
    m, opt = _build(lib, arch, sizes, n_chans, dtype, seed, bn, device)
    loss_fn = nn.CrossEntropyLoss()
    clock = _clock(device)
    step_t, epoch_t = [], []
    bad = torch.zeros((), dtype=torch.bool, device=device)  # any non-finite loss (no per-step sync)
    for _ in range(epochs):
        order = tr[torch.randperm(len(tr), generator=g).to(device)]
        t0 = clock()
        for i in range(0, len(order), 30):
            idx = order[i:i + 30]
            s0 = clock()
            opt.zero_grad()
            loss = loss_fn(m(x[idx]), y[idx])
            bad |= ~torch.isfinite(loss.detach())
            loss.backward()
            opt.step()
            step_t.append(clock() - s0)
        epoch_t.append(clock() - t0)
    nan = bool(bad.cpu()) or any(not bool(torch.isfinite(p).all().cpu()) for p in m.parameters())
    res = {"step": statistics.median(step_t), "epoch": statistics.median(epoch_t), "nan": nan}
    res["acc_batch"] = _acc(m, x[te], y[te], train_mode=True) if not nan else float("nan")
    if lib == "riemlearn":
        res["acc_running"] = _acc(m, x[te], y[te]) if not nan else float("nan")
        refit_batchnorm_stats(m, x[tr])
    res["acc"] = _acc(m, x[te], y[te]) if not nan else float("nan")
    return res


def main(argv: list[str] | None = None) -> list[Table]:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--seeds", type=int, default=10)
    extra.add_argument("--epochs", type=int, default=10)
    ex, rest = extra.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest,
                      device_help="where data, models and optimizer state of both libraries live")
    device = args.device
    seeds = min(2, ex.seeds) if args.quick else ex.seeds
    epochs = min(2, ex.epochs) if args.quick else ex.epochs
    warnings.filterwarnings("ignore")
    configs = [("SPDNet 93→30, AIM BN", "spdnet", [93, 30], 93, torch.float64, "aim"),
               ("SPDNet 20→16→8, AIM BN", "spdnet", [20, 16, 8], 20, torch.float64, "aim"),
               ("TSMNet 16ch (40→20)", "tsmnet", [], 16, torch.float32, "aim"),
               ("SPDNet 20→16→8, LieBN-AIM", "spdnet", [20, 16, 8], 20, torch.float64, "liebn-aim"),
               ("SPDNet 20→16→8, LieBN-LCM", "spdnet", [20, 16, 8], 20, torch.float64, "liebn-lcm")]
    print(machine_description())
    if device == "cuda":
        where = f"GPU ({torch.cuda.get_device_name()}), wall time after torch.cuda.synchronize()"
    else:
        clock_name = "CPU time (process_time)" if torch.get_num_threads() == 1 else "wall time"
        where = f"CPU, {clock_name}, {torch.get_num_threads()} thread(s)"
    table = Table(f"SPD network training, batch 30, {epochs} epochs, {seeds} seeds, {where}",
                  ["model", "library", "step (ms)", "epoch (ms)", "epoch speed-up", "acc (eval)",
                   "acc (running stats)", "acc (batch stats)", "NaN seeds"])
    for label, arch, sizes, n_chans, dtype, bn in configs:
        res = {}
        for lib in ("spd_learn", "riemlearn"):  # interleaved per seed below
            res[lib] = []
        for seed in range(seeds):
            for lib in ("spd_learn", "riemlearn"):
                res[lib].append(train(lib, arch, sizes, n_chans, dtype, seed, epochs, bn, device))
        ref_epoch = statistics.median(r["epoch"] for r in res["spd_learn"])
        for lib in ("spd_learn", "riemlearn"):
            rs = res[lib]
            ok = [r for r in rs if not r["nan"]]
            mean = (lambda k, ok=ok: statistics.mean(r[k] for r in ok) if ok else float("nan"))
            ep = statistics.median(r["epoch"] for r in rs)
            table.add(label, lib, statistics.median(r["step"] for r in rs) * 1e3, ep * 1e3,
                      ref_epoch / ep, mean("acc"),
                      mean("acc_running") if lib == "riemlearn" else mean("acc"),
                      mean("acc_batch"), f"{sum(r['nan'] for r in rs)}/{len(rs)}")
    if args.markdown:
        Path(args.markdown).write_text(table.markdown())
    return [table]


if __name__ == "__main__":
    for t in main():
        print(t.markdown())
