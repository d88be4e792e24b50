"""Every example script runs to completion with fast settings, and the notebooks execute.

The fast runs of the scripts share one subprocess (each executed as ``__main__`` with its own
argv; imports are paid once) with a timeout; the runs on ../shared/data get a subprocess each.
Figures go to a temp folder. Notebooks are executed with nbclient (skipped cleanly when
nbclient, nbformat, ipykernel or matplotlib are missing) with a per-notebook time budget.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted((EXAMPLES / "notebooks").glob("*.ipynb"))
SCRIPT_TIMEOUT = 120  # seconds per script (generous: a loaded 2-core CI box)
NOTEBOOK_BUDGET = 90  # seconds per notebook

needs_mpl = pytest.mark.skipif(
    __import__("importlib").util.find_spec("matplotlib") is None, reason="matplotlib not installed")


def run_script(name: str, *args: str, tmp_path: Path) -> str:
    """Run one example in its own subprocess (used for the data-dependent runs)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


# The fast runs share ONE subprocess (torch/sklearn/matplotlib are imported once, which is most
# of a fast run's cost): each script is executed as __main__ with its own argv, stdout captured,
# exceptions and exit codes recorded per script.
_RUNNER = """
import contextlib, io, json, runpy, sys, time, traceback
jobs, results = json.loads(sys.argv[1]), {}
for key, script, args in jobs:
    out, t0, rc = io.StringIO(), time.perf_counter(), 0
    sys.argv = [script, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        rc = 1
        out.write(traceback.format_exc())
    results[key] = {"rc": rc, "out": out.getvalue(), "sec": time.perf_counter() - t0}
print(json.dumps(results))
"""

FAST_RUNS = {
    "eeg": ("eeg_classification.py", ["--fast", "--out", "eeg.png"]),
    "optim": ("manifold_optimization.py", ["--fast"]),
    "poincare": ("poincare_embedding.py", ["--fast", "--out", "ball.png"]),
    "sphere": ("sphere_means_bsa.py", ["--fast", "--out", "s.png"]),
    "sw": ("spd_sliced_wasserstein.py", ["--fast", "--out", "sw.png"]),
    "quickstart": ("quickstart.py", []),
    "spdnet_liebn": ("spdnet_liebn.py", ["--epochs", "1", "--bn", "liebn-aim"]),
}


NEEDS_MPL = {"eeg", "poincare", "sphere", "sw"}
HAS_MPL = __import__("importlib").util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    """{key: (result, folder)} of every fast example run (those drawing figures only with matplotlib)."""
    import json

    folder = tmp_path_factory.mktemp("examples")
    jobs = [(k, str(EXAMPLES / script), args) for k, (script, args) in FAST_RUNS.items()
            if HAS_MPL or k not in NEEDS_MPL]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(jobs)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT * 3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: (r, folder) for k, r in results.items()}


def fast_output(fast_runs, key: str) -> tuple[str, Path]:
    if key not in fast_runs:
        pytest.skip("matplotlib is not installed")
    result, folder = fast_runs[key]
    assert result["rc"] == 0, f"{FAST_RUNS[key][0]} failed:\n{result['out'][-3000:]}"
    return result["out"], folder


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_eeg_classification_fast(fast_runs):
    out, tmp_path = fast_output(fast_runs, "eeg")
    accs = {m: float(a) for m, a in re.findall(r"^(MDM|Tangent space|SPDNet)\S*.*?(\d\.\d{3}) ±", out, re.M)}
    assert set(accs) == {"MDM", "Tangent space", "SPDNet"}, out
    # 3 balanced classes: chance is 1/3; the class shows in the band power, so all beat it
    assert min(accs.values()) > 0.45, out
    assert_png(tmp_path / "eeg.png")


@needs_mpl
@pytest.mark.data
def test_eeg_classification_edf(tmp_path, data_dir):
    pytest.importorskip("mne")
    folder = data_dir / "eegbci" / "S001"
    edfs = [str(folder / f"S001R{r:02d}.edf") for r in (6, 10, 14)]
    if not all(Path(p).is_file() for p in edfs):
        pytest.skip("EEGBCI S001 runs 6, 10, 14 are absent")
    out = run_script("eeg_classification.py", "--fast", "--edf", *edfs, "--out", "edf.png",
                     tmp_path=tmp_path)
    assert "EEGBCI EDF (3 files): 45 trials, 64 channels" in out
    mdm = float(re.search(r"^MDM.*?(\d\.\d{3}) ±", out, re.M).group(1))
    assert mdm > 0.6, out  # imagery of fists vs feet, subject 1: well above chance (0.5)
    assert_png(tmp_path / "edf.png")


def test_manifold_optimization_fast(fast_runs):
    out, _ = fast_output(fast_runs, "optim")
    rows = re.findall(r"^(.{26}) (conjugate gradient|trust regions)\s+\d+\s+\S+\s+\S+\s+(\S+)\s+(\S+)",
                      out, re.M)
    assert len(rows) == 6, out
    for problem, solver, gap, grad in rows:
        assert float(gap) < 1e-8 and float(grad) < 1e-6, (problem, solver, gap, grad)


def test_poincare_embedding_fast(fast_runs):
    out, tmp_path = fast_output(fast_runs, "poincare")
    rank, mean_ap = map(float, re.search(r"mean rank ([\d.]+), MAP ([\d.]+)", out).groups())
    # 31-node binary tree: a random embedding has mean rank ~ (unrelated nodes) / 2 ~ 10
    assert rank < 4.0 and mean_ap > 0.6, out
    assert_png(tmp_path / "ball.png")


@needs_mpl
@pytest.mark.data
def test_poincare_embedding_mammals_runs(tmp_path, data_dir):
    csv = data_dir / "wordnet_mammals" / "mammal_closure.csv"
    if not csv.is_file():
        pytest.skip("mammal closure CSV absent")
    out = run_script("poincare_embedding.py", "--data", str(csv), "--dim", "5", "--epochs", "1",
                     tmp_path=tmp_path)
    assert "1180 nodes, 6540 closure pairs" in out
    rank = float(re.search(r"mean rank ([\d.]+)", out).group(1))
    assert rank < 200, out  # one epoch already orders far better than random (~560)


def test_sphere_means_bsa_fast(fast_runs):
    out, tmp_path = fast_output(fast_runs, "sphere")
    grad = float(re.search(r"gradient norm (\S+)", out).group(1))
    assert grad < 1e-8, out
    res = {k: float(v) for k, v in re.findall(
        r"^(tangent PCA|exact PGA|BSA forward|BSA joint)\s+([\d.]+)\s+[\d.]+%$", out, re.M)}
    assert {"tangent PCA", "exact PGA", "BSA forward", "BSA joint"} <= set(res), out
    var = float(re.search(r"Fréchet variance ([\d.]+)", out).group(1))
    assert all(r < 0.2 * var for r in res.values())  # three clusters near one great circle
    # BSA joint minimizes the residual over all great circles (tangent PCA's passes the mean)
    assert res["BSA joint"] <= min(res.values()) + 1e-9, res
    assert_png(tmp_path / "s.png")


def test_spd_sliced_wasserstein_fast(fast_runs):
    out, tmp_path = fast_output(fast_runs, "sw")
    found = re.search(r"between-session SW₂: ([\d.]+) before, ([\d.]+) after", out)
    before, after = map(float, found.groups())
    assert after < 0.6 * before, out  # re-centering removes most of the session shift
    assert_png(tmp_path / "sw.png")


def test_quickstart(fast_runs):
    out, _ = fast_output(fast_runs, "quickstart")
    assert "Brockett" in out


def test_spdnet_liebn_short(fast_runs):
    out, _ = fast_output(fast_runs, "spdnet_liebn")
    assert "SPDNet bn=liebn-aim" in out and "NaN=0" in out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=NOTEBOOK_BUDGET, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on any failing cell
    elapsed = time.perf_counter() - t0
    assert elapsed < NOTEBOOK_BUDGET, f"{path.name} took {elapsed:.0f} s (budget {NOTEBOOK_BUDGET} s)"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_with_outputs(path):
    """Notebooks are documentation: stored executed, with figures, small, error-free."""
    import json

    nb = json.loads(path.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no figure"
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")
    assert path.stat().st_size < 1_000_000


def test_poincare_rank_and_map_match_brute_force():
    """The vectorized reconstruction metrics of the embedding example equal a direct count."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("poincare_embedding", EXAMPLES / "poincare_embedding.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names, _, pairs = mod.generated_tree(2, 3)
    ball = mod.PoincareBall(c=1.0, n=2)
    pts = ball.random_point(len(names), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n = len(pts)
    rel = mod.related_matrix(n, pairs)
    d = ball.dist(pts[:, None].expand(n, n, -1), pts[None].expand(n, n, -1)).tolist()
    ranks, aps = [], []
    for u in range(n):
        unrelated = [w for w in range(n) if w != u and not rel[u, w]]
        ranks += [1 + sum(d[u][w] < d[u][v] for w in unrelated) for v in range(n) if rel[u, v]]
        order = sorted((w for w in range(n) if w != u), key=lambda w: d[u][w])
        hits, prec = 0, []
        for i, w in enumerate(order):
            if rel[u, w]:
                hits += 1
                prec.append(hits / (i + 1))
        aps.append(sum(prec) / len(prec))
    mean_rank, mean_ap = mod.rank_and_map(pts, ball, pairs)
    assert abs(mean_rank - sum(ranks) / len(ranks)) < 1e-12
    assert abs(mean_ap - sum(aps) / len(aps)) < 1e-12
