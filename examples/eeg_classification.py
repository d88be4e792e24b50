"""EEG covariance classification end to end: MDM, tangent space + logistic regression, SPDNet.

On an embedded default (the library's deterministic synthetic EEG generator, ``make_eeg``) the
script estimates one covariance matrix per trial, cross-validates three classifiers with the same
stratified folds, prints a table (accuracy, fit time per fold) and saves a figure: trials and
class means projected to a 2-D tangent plane at the Fréchet mean, and the cross-validated
confusion matrix of every model.

    python examples/eeg_classification.py                       # synthetic EEG, ~15-30 s on CPU
    python examples/eeg_classification.py --out fig.png         # where the figure goes
    python examples/eeg_classification.py --fast                # a few seconds (used by the tests)
    python examples/eeg_classification.py --edf ../shared/data/eegbci/S001/S001R{06,10,14}.edf
    python examples/eeg_classification.py --subject 1 --data-dir ../shared/data/eegbci

With ``--edf`` (or ``--subject``) the EEGBCI motor-imagery recordings are epoched 1-2 s after
the cues and band-passed (7-35 Hz) by :func:`riemlearn.stats.load_eegbci` (needs ``mne``;
``--subject`` without ``--data-dir`` lets MNE fetch the files).

Models
------
* **MDM**: minimum distance to the affine-invariant Fréchet mean of each class.
* **TS + LR**: log map at the Fréchet mean of the training trials (isometric vectorization),
  then an L2-regularized logistic regression (scikit-learn).
* **SPDNet + LieBN**: ``BiMap (12 → 8) → LieBN → LogEig → Linear`` (deeper with ``--edf``), trained with
  Riemannian Adam (BiMap weights on the Stiefel manifold, batch-norm biases on SPD); the
  batch-norm running statistics are refitted exactly on the training trials before testing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from functools import partial

import numpy as np
import torch
from riemlearn.layers import SPDNet, refit_batchnorm_stats
from riemlearn.manifolds import SPD
from riemlearn.optim import RiemannianAdam
from riemlearn.stats import MDM, Covariances, TangentSpace, frechet_mean, make_eeg, tangent_space


# ----------------------------------------------------------------------------- progress bar
class _TextBar:
    """A minimal stand-in for tqdm (used when tqdm is not installed)."""

    def __init__(self, total: int, desc: str, width: int = 30) -> None:
        self.total, self.desc, self.width, self.n, self.post = total, desc, width, 0, ""
        self._t0 = time.perf_counter()

    def update(self, k: int = 1) -> None:
        self.n += k
        self._draw()

    def set_postfix_str(self, s: str) -> None:
        self.post = s

    def _draw(self) -> None:
        filled = int(self.width * self.n / max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r{self.desc}: [{bar}] {self.n}/{self.total} "
                         f"{time.perf_counter() - self._t0:5.1f}s {self.post}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def progress(total: int, desc: str, enabled: bool = True):
    """tqdm when available (and wanted), else a simple text bar."""
    if not enabled:
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextBar(total, desc)
    return tqdm(total=total, desc=desc, leave=True, file=sys.stderr)


class _Silent:
    def update(self, k: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- data
def synthetic_data(seed: int, fast: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Deterministic 3-class synthetic EEG (class in the band power of mixed sources)."""
    n_trials, n_channels = (90, 8) if fast else (240, 12)
    X, y = make_eeg(n_trials=n_trials, n_channels=n_channels, n_times=256, n_classes=3,
                    random_state=seed, class_sep=0.5, jitter=0.6, as_numpy=True)
    desc = (f"synthetic EEG (make_eeg, seed {seed}): {n_trials} trials, {n_channels} channels, "
            f"256 samples, 3 classes")
    return X, y, desc


def eegbci_data(paths: list[str] | None, subject: int | None = None,
                data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """EEGBCI epochs from EDF files, or of one subject (runs 6, 10, 14: both fists vs both feet;
    read from ``data_dir`` or fetched by MNE)."""
    from riemlearn.stats import load_eegbci

    if paths:
        X, y = load_eegbci(paths, as_numpy=True)
        source = f"EEGBCI EDF ({len(paths)} files)"
    else:
        X, y = load_eegbci(subject=subject, data_dir=data_dir, as_numpy=True)
        source = f"EEGBCI subject {subject} (runs 6, 10, 14)"
    desc = (f"{source}: {X.shape[0]} trials, {X.shape[1]} channels, "
            f"{X.shape[2]} samples, {len(np.unique(y))} classes")
    return X, y, desc


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


# ----------------------------------------------------------------------------- models
def fit_predict_mdm(C_tr, y_tr, C_te):
    return MDM(metric="affine_invariant").fit(C_tr, y_tr).predict(C_te)


def fit_predict_ts_lr(C_tr, y_tr, C_te):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(TangentSpace(metric="affine_invariant"), LogisticRegression(C=1.0, max_iter=1000))
    return clf.fit(C_tr, y_tr).predict(C_te)


def train_spdnet(C_tr: torch.Tensor, y_tr: torch.Tensor, n_classes: int, *, epochs: int, seed: int,
                 hidden: list[int], batch: int = 32, lr: float = 5e-2, bn: str | None = "liebn-aim",
                 on_epoch=None) -> tuple[SPDNet, list[float]]:
    """Train an SPDNet (LieBN with the affine-invariant metric by default) by Riemannian Adam;
    returns the model (eval mode, running statistics refitted) and the mean loss per epoch."""
    g = torch.Generator().manual_seed(seed)
    model = SPDNet(C_tr.shape[-1], hidden, n_classes, bn=bn, dtype=C_tr.dtype, generator=g)
    opt = RiemannianAdam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y_tr), generator=g)
        total, count = 0.0, 0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            if len(idx) < 2:  # batch norm needs at least two trials
                continue
            opt.zero_grad()
            loss = loss_fn(model(C_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        losses.append(total / max(count, 1))
        if on_epoch is not None:
            on_epoch(losses[-1])
    if bn is not None:
        refit_batchnorm_stats(model, C_tr)  # exact running statistics with the final weights
    model.eval()
    return model, losses


def fit_predict_spdnet(C_tr, y_tr, C_te, *, n_classes, epochs, seed, hidden, bar):
    def on_epoch(loss: float) -> None:
        bar.set_postfix_str(f"loss {loss:.3f}")
        bar.update(1)

    Ct, yt = torch.as_tensor(C_tr), torch.as_tensor(y_tr, dtype=torch.long)
    model, _ = train_spdnet(Ct, yt, n_classes, epochs=epochs, seed=seed, hidden=hidden,
                            on_epoch=on_epoch)
    with torch.no_grad():
        return model(torch.as_tensor(C_te)).argmax(-1).numpy()


# ----------------------------------------------------------------------------- evaluation
def cross_validate(C: np.ndarray, y: np.ndarray, folds, *, epochs: int, seed: int, hidden: list[int],
                   show_progress: bool) -> dict[str, dict]:
    """Out-of-fold predictions and fit times of the three models on the same folds."""
    n_classes = int(y.max()) + 1
    results: dict[str, dict] = {}
    models = {
        "MDM (affine-invariant)": fit_predict_mdm,
        "Tangent space + LogReg": fit_predict_ts_lr,
        "SPDNet + LieBN (R-Adam)": None,
    }
    for name, fit_predict in models.items():
        bar = None
        if fit_predict is None:  # the network: progress bar over folds x epochs
            bar = progress(len(folds) * epochs, "SPDNet+LieBN training (folds x epochs)", show_progress)
            fit_predict = partial(fit_predict_spdnet, n_classes=n_classes, epochs=epochs, seed=seed,
                                  hidden=hidden, bar=bar)
        pred = np.empty_like(y)
        accs, times = [], []
        for tr, te in folds:
            t0 = time.perf_counter()
            pred[te] = fit_predict(C[tr], y[tr], C[te])
            times.append(time.perf_counter() - t0)
            accs.append(float((pred[te] == y[te]).mean()))
        if bar is not None:
            bar.close()
        results[name] = {"pred": pred, "accs": np.array(accs), "times": np.array(times)}
    return results


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(cm, (y, pred), 1)
    return cm


def print_table(results: dict[str, dict], n_classes: int) -> None:
    head = f"{'model':<26} {'accuracy (mean ± sd over folds)':>32} {'fit time / fold':>16}"
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        acc = f"{r['accs'].mean():.3f} ± {r['accs'].std():.3f}"
        print(f"{name:<26} {acc:>32} {r['times'].mean():>14.3f} s")
    print(f"(chance level {1 / n_classes:.3f})")


def class_plane(v_means: torch.Tensor, v_trials: torch.Tensor) -> torch.Tensor:
    """Orthonormal (d, 2) basis: the principal plane of the class means (completed, when there are
    only two classes, by the main direction of the trials orthogonal to the mean difference)."""
    centred = v_means - v_means.mean(0)
    vt = torch.linalg.svd(centred, full_matrices=False)[2]
    if len(v_means) > 2:
        return vt[:2].T
    first = vt[0]
    dev = v_trials - v_trials.mean(0)
    dev = dev - (dev @ first)[:, None] * first
    second = torch.linalg.svd(dev, full_matrices=False)[2][0]
    return torch.stack([first, second], 1)


def save_figure(C: np.ndarray, y: np.ndarray, results: dict[str, dict], out: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spd = SPD(C.shape[-1])
    Ct = torch.as_tensor(C)
    n_classes = int(y.max()) + 1
    # Tangent space at the Fréchet mean of all trials (isometric vech coordinates), and the 2-D
    # plane of that tangent space that best fits the class means (their principal plane).
    grand = frechet_mean(Ct, spd)
    means = torch.stack([frechet_mean(Ct[torch.as_tensor(y == k)], spd) for k in range(n_classes)])
    v_trials = tangent_space(Ct, grand, spd, vectorize=True)
    v_means = tangent_space(means, grand, spd, vectorize=True)
    basis = class_plane(v_means, v_trials)
    scores, mean_scores = (v_trials @ basis).numpy(), (v_means @ basis).numpy()
    dev = v_trials - v_trials.mean(0)
    share = float((dev @ basis).pow(2).sum() / dev.pow(2).sum())

    n_models = len(results)
    fig, axes = plt.subplots(1, 1 + n_models, figsize=(4.2 * (1 + n_models), 4.2))
    colors = plt.get_cmap("tab10")
    ax = axes[0]
    for k in range(n_classes):
        ax.scatter(scores[y == k, 0], scores[y == k, 1], s=12, alpha=0.45, color=colors(k),
                   label=f"class {k} trials")
        ax.scatter(*mean_scores[k], s=260, marker="*", color=colors(k), edgecolor="black",
                   linewidth=1.2, zorder=5, label=f"class {k} Fréchet mean")
    ax.scatter(0, 0, s=80, marker="+", color="black", zorder=6, label="Fréchet mean of all trials")
    ax.set_xlabel("tangent coordinate 1 (class-mean plane)")
    ax.set_ylabel("tangent coordinate 2")
    ax.set_title("Trials and class means at the Fréchet mean (AIM):\n"
                 f"plane of the class means, fitted in-sample ({100 * share:.0f}% of trial variance)",
                 fontsize=10)
    ax.legend(fontsize=6.5, loc="best")
    for ax, (name, r) in zip(axes[1:], results.items(), strict=True):
        cm = confusion(y, r["pred"], n_classes)
        ax.imshow(cm, cmap="Blues")
        for i in range(n_classes):
            for j in range(n_classes):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xticks(range(n_classes))
        ax.set_yticks(range(n_classes))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"{name}\nCV accuracy {r['accs'].mean():.3f}", fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: Iterable[str] | None = None) -> dict[str, dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--edf", nargs="+", default=None, metavar="PATH",
                   help="EEGBCI EDF files to classify instead of the synthetic default (needs mne)")
    p.add_argument("--subject", type=int, default=None,
                   help="EEGBCI subject (1-109) instead of --edf: read from --data-dir, else fetched by MNE "
                        "(which may download it)")
    p.add_argument("--data-dir", default=None, help="folder holding EEGBCI EDF files (with --subject)")
    p.add_argument("--out", default="eeg_classification.png", help="figure path (PNG)")
    p.add_argument("--fast", action="store_true", help="small data, 3 folds, few epochs (tests)")
    p.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 5)")
    p.add_argument("--epochs", type=int, default=None, help="SPDNet epochs (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the matrices are small, so one thread is fastest "
                        "and does not compete with other work; 0 keeps torch's default)")
    p.add_argument("--no-progress", action="store_true", help="hide the training progress bar")
    args = p.parse_args(None if argv is None else list(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    folds_k = args.folds or (3 if args.fast else 5)
    epochs = args.epochs or (5 if args.fast else 20)

    t_start = time.perf_counter()
    if args.edf or args.subject is not None:
        X, y, desc = eegbci_data(args.edf, args.subject, args.data_dir)
        hidden = [16, 8]
    else:
        X, y, desc = synthetic_data(args.seed, args.fast)
        hidden = [6] if args.fast else [8]
    y = np.unique(y, return_inverse=True)[1]  # labels 0..K-1
    print(desc)
    C = Covariances("oas").fit_transform(X.astype(np.float64))
    print(f"covariances: {C.shape} (OAS shrinkage), {folds_k}-fold stratified cross-validation")
    folds = stratified_folds(y, folds_k, args.seed)
    results = cross_validate(C, y, folds, epochs=epochs, seed=args.seed, hidden=hidden,
                             show_progress=not args.no_progress)
    print()
    print_table(results, int(y.max()) + 1)
    save_figure(C, y, results, args.out, desc)
    print(f"\nfigure written to {os.path.abspath(args.out)}")
    print(f"total time {time.perf_counter() - t_start:.1f} s")
    return results


if __name__ == "__main__":
    main()
