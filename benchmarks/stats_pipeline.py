"""EEG covariance pipelines, riemlearn vs pyRiemann, end to end (covariances + fit + predict).

Data: ``make_eeg`` — 576 trials × 22 channels × 250 samples (1 s at 250 Hz), 4 classes (the
size of BCI Competition IV 2a), split in two stratified halves (fit on one, predict the other).
Pipelines, identical on both sides except for the library:

- OAS covariances;
- MDM (affine-invariant class means, nearest mean);
- tangent space at the affine-invariant mean + scikit-learn ``LogisticRegression``.

Both libraries get the same numpy arrays (riemlearn converts to torch at its boundary and back),
the timings are medians over ``--repeat`` runs in one process, one thread by default.

Run: ``python benchmarks/stats_pipeline.py [--threads 1] [--repeat 5] [--quick] [--device cuda]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, default_settle, machine_description, parse_args  # noqa: E402
from riemlearn.stats import MDM, Covariances, TangentSpace, make_eeg  # noqa: E402


def _pyriemann():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyriemann.classification import MDM as PMDM
        from pyriemann.estimation import Covariances as PCov
        from pyriemann.tangentspace import TangentSpace as PTS
    return PCov, PMDM, PTS


def run_pipelines(lib: str, Xtr, ytr, Xte, yte, device: str | None = None) -> dict:
    """One end-to-end run; returns stage timings, accuracies and predictions."""
    from sklearn.linear_model import LogisticRegression

    if lib == "riemlearn":
        Cov, Mdm, Ts = Covariances, MDM, TangentSpace
        if device is not None:  # tensors on the device in, tensors out
            Xtr = torch.as_tensor(Xtr, device=device)
            Xte = torch.as_tensor(Xte, device=device)
    else:
        PCov, PMDM, PTS = _pyriemann()
        Cov, Mdm = PCov, PMDM
        Ts = lambda: PTS(metric="riemann")  # noqa: E731
    out: dict = {}
    t0 = time.perf_counter()
    cov = Cov(estimator="oas")
    Ctr, Cte = cov.fit_transform(Xtr), cov.transform(Xte)
    t1 = time.perf_counter()
    mdm = Mdm().fit(Ctr, ytr)
    t2 = time.perf_counter()
    p_mdm = mdm.predict(Cte)
    t3 = time.perf_counter()
    ts = Ts()
    lr = LogisticRegression(max_iter=1000)
    Ttr = ts.fit_transform(Ctr)  # what a scikit-learn Pipeline calls
    lr.fit(_np(Ttr), ytr)
    t4 = time.perf_counter()
    p_ts = lr.predict(_np(ts.transform(Cte)))
    t5 = time.perf_counter()
    if device is not None and device.startswith("cuda"):
        torch.cuda.synchronize()
    out.update(cov=t1 - t0, mdm_fit=t2 - t1, mdm_predict=t3 - t2, ts_fit=t4 - t3, ts_predict=t5 - t4,
               total=t5 - t0, p_mdm=_np(p_mdm), p_ts=_np(p_ts))
    out["acc_mdm"] = float((out["p_mdm"] == yte).mean())
    out["acc_ts"] = float((out["p_ts"] == yte).mean())
    return out


def _np(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def main(argv=None) -> list[Table]:
    argv = list(sys.argv[1:] if argv is None else argv)
    device = None
    if "--device" in argv:  # extra option on top of the shared harness options
        i = argv.index("--device")
        device = argv[i + 1]
        del argv[i : i + 2]
    if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device} requested but CUDA is not available")
    args = parse_args(__doc__.splitlines()[0], argv)
    n_trials = 144 if args.quick else 576
    X, y = make_eeg(n_trials, 22, 250, 4, sfreq=250.0, random_state=42, class_sep=0.35, as_numpy=True)
    from sklearn.model_selection import StratifiedKFold

    tr, te = next(StratifiedKFold(2, shuffle=True, random_state=0).split(X, y))
    data = (X[tr], y[tr], X[te], y[te])
    print(f"# {machine_description()}; torch threads {torch.get_num_threads()}")
    print(f"# data: {n_trials} trials x 22 channels x 250 samples, 4 classes; "
          f"fit {len(tr)}, predict {len(te)}")

    libs = ("riemlearn", "pyriemann")
    all_runs: dict = {lib: [] for lib in libs}
    settle = default_settle()
    for rep in range(args.repeat + 1):  # interleaved, so that machine load hits both alike
        for lib in libs:
            time.sleep(settle)  # the other side's thread pools stop busy-waiting first
            out = run_pipelines(lib, *data)
            if rep:  # the first round is a warm-up
                all_runs[lib].append(out)
    results = {}
    for lib, runs in all_runs.items():
        results[lib] = {k: float(np.median([r[k] for r in runs])) for k in
                        ("cov", "mdm_fit", "mdm_predict", "ts_fit", "ts_predict", "total")}
        results[lib].update({k: runs[-1][k] for k in ("acc_mdm", "acc_ts", "p_mdm", "p_ts")})
    r, p = results["riemlearn"], results["pyriemann"]
    table = Table(
        f"EEG pipeline, {n_trials}x22x250, 4 classes, fit {len(tr)} / predict {len(te)} "
        f"({torch.get_num_threads()} thread(s), median of {args.repeat})",
        ["stage", "riemlearn (s)", "pyriemann (s)", "speed-up"],
    )
    for stage in ("cov", "mdm_fit", "mdm_predict", "ts_fit", "ts_predict", "total"):
        table.add(stage, r[stage], p[stage], p[stage] / r[stage])
    acc = Table("Accuracy on the held-out half (chance 0.25)",
                ["pipeline", "riemlearn", "pyriemann", "same predictions"])
    acc.add("OAS + MDM", r["acc_mdm"], p["acc_mdm"], f"{float((r['p_mdm'] == p['p_mdm']).mean()):.1%}")
    acc.add("OAS + TS + LR", r["acc_ts"], p["acc_ts"], f"{float((r['p_ts'] == p['p_ts']).mean()):.1%}")
    print(f"end-to-end speed-up: {p['total'] / r['total']:.2f}x")
    tables = [table, acc]
    if device:
        run_pipelines("riemlearn", *data, device=device)  # warm-up
        runs = [run_pipelines("riemlearn", *data, device=device) for _ in range(args.repeat)]
        dev = Table(f"riemlearn on {device}", ["stage", "seconds", "vs pyriemann CPU"])
        for stage in ("cov", "mdm_fit", "mdm_predict", "ts_fit", "ts_predict", "total"):
            t = float(np.median([x[stage] for x in runs]))
            dev.add(stage, t, p[stage] / t)
        tables.append(dev)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(t.markdown() for t in tables))
    return tables


if __name__ == "__main__":
    main()
