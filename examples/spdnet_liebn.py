"""SPDNet with and without LieBN on synthetic EEG covariances (and on EEGBCI with --data PATH).

Trains ``SPDNet(n, [h1, h2], 2)`` with :class:`riemlearn.optim.RiemannianAdam` — the BiMap
weights (Stiefel) and the batch-norm biases (SPD) are ManifoldParameters, so no param groups
are needed — and prints, per model, the held-out accuracy, the CPU time per epoch
(``time.process_time``, robust on a shared machine) and NaN counts.
After training, the batch-norm running statistics are recomputed exactly with the final weights
(:func:`riemlearn.layers.refit_batchnorm_stats`); eval-mode accuracy is reported before and
after, next to the accuracy with batch statistics.

    python examples/spdnet_liebn.py                 # synthetic data, ~20 s on one CPU core
    python examples/spdnet_liebn.py --seeds 10      # the 10-seed NaN/accuracy study
    python examples/spdnet_liebn.py --data ../shared/data/eegbci --subject 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from riemlearn.layers import SPDNet, refit_batchnorm_stats
from riemlearn.optim import RiemannianAdam
from riemlearn.stats import covariances, make_eeg


def synthetic(seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard-ish 2-class problem: 16-channel EEG, class in the band power of mixed sources."""
    x, y = make_eeg(n_trials=300, n_channels=16, n_times=256, n_classes=2, random_state=seed,
                    class_sep=0.6, jitter=0.6)
    return covariances(x, estimator="oas").to(dtype), y


def eegbci(path: str, subject: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    from riemlearn.stats import load_eegbci

    x, y = load_eegbci(subject=subject, data_dir=path)
    return covariances(x, estimator="oas").to(dtype), y


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).double().mean())


def run(x: torch.Tensor, y: torch.Tensor, bn: str | None, seed: int, epochs: int, lr: float,
        batch: int, hidden: list[int]) -> dict:
    g = torch.Generator().manual_seed(seed)
    n_tr = int(0.7 * len(y))
    perm = torch.randperm(len(y), generator=g)
    tr, te = perm[:n_tr], perm[n_tr:]
    model = SPDNet(x.shape[-1], hidden, int(y.max()) + 1, bn=bn, dtype=x.dtype, generator=g)
    opt = RiemannianAdam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    nan_steps, times = 0, []
    for _ in range(epochs):
        model.train()
        order = tr[torch.randperm(len(tr), generator=g)]
        t0 = time.process_time()
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            if len(idx) < 2:
                continue
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                nan_steps += 1
                continue
            loss.backward()
            opt.step()
        times.append(time.process_time() - t0)
    out = {"epoch_s": statistics.median(times), "nan_steps": nan_steps}
    nan_params = sum(int((~torch.isfinite(p)).sum()) for p in model.parameters())
    out["nan_params"] = nan_params
    if bn is None:
        out["acc"] = accuracy(model.eval(), x[te], y[te])
        return out
    out["acc_running"] = accuracy(model.eval(), x[te], y[te])
    out["acc_batch"] = accuracy(model.train(), x[te], y[te])  # batch statistics of the test set
    refit_batchnorm_stats(model, x[tr])
    out["acc"] = accuracy(model.eval(), x[te], y[te])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="EEGBCI folder (default: synthetic data)")
    p.add_argument("--subject", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch", type=int, default=30)
    p.add_argument("--float32", action="store_true")
    p.add_argument("--bn", nargs="*", default=[None, "liebn-aim"],
                   help="batch norms to compare (none, aim, liebn-aim, liebn-lem, liebn-lcm, bw)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.float32 else torch.float64
    bns = [None if b in (None, "none") else b for b in args.bn]
    for bn in bns:
        rows = []
        for seed in range(args.seeds):
            if args.data:
                x, y = eegbci(args.data, args.subject, dtype)
                hidden = [16, 8]
            else:
                x, y = synthetic(seed, dtype)
                hidden = [12, 8]
            rows.append(run(x, y, bn, seed, args.epochs, args.lr, args.batch, hidden))
        accs = [r["acc"] for r in rows]
        nans = sum(r["nan_steps"] + r["nan_params"] for r in rows)
        epoch_ms = statistics.median(r["epoch_s"] for r in rows) * 1e3
        line = (f"SPDNet bn={bn!s:10} seeds={args.seeds} acc={statistics.mean(accs):.3f}"
                f" (min {min(accs):.3f}) epoch={epoch_ms:.0f} ms CPU"
                f" NaN={nans}")
        if bn is not None:
            line += (f" | eval running-stats acc={statistics.mean(r['acc_running'] for r in rows):.3f}"
                     f" batch-stats acc={statistics.mean(r['acc_batch'] for r in rows):.3f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
