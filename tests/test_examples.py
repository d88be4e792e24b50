"""Every example script runs to completion with fast settings, and the notebooks execute.

Scripts run in a subprocess (as a user would run them) with a timeout; figures go to a temp
folder. Notebooks are executed with nbclient (skipped cleanly when nbclient, nbformat, ipykernel
or matplotlib are missing) with a per-notebook time budget.
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
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@needs_mpl
def test_eeg_classification_fast(tmp_path):
    out = run_script("eeg_classification.py", "--fast", "--out", "fig.png", tmp_path=tmp_path)
    accs = {m: float(a) for m, a in re.findall(r"^(MDM|Tangent space|SPDNet)\S*.*?(\d\.\d{3}) ±", out, re.M)}
    assert set(accs) == {"MDM", "Tangent space", "SPDNet"}, out
    # 3 balanced classes: chance is 1/3; the class shows in the band power, so all beat it
    assert min(accs.values()) > 0.45, out
    assert_png(tmp_path / "fig.png")


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


def test_manifold_optimization_fast(tmp_path):
    out = run_script("manifold_optimization.py", "--fast", tmp_path=tmp_path)
    rows = re.findall(r"^(.{26}) (conjugate gradient|trust regions)\s+\d+\s+\S+\s+\S+\s+(\S+)\s+(\S+)",
                      out, re.M)
    assert len(rows) == 6, out
    for problem, solver, gap, grad in rows:
        assert float(gap) < 1e-8 and float(grad) < 1e-6, (problem, solver, gap, grad)


@needs_mpl
def test_poincare_embedding_fast(tmp_path):
    out = run_script("poincare_embedding.py", "--fast", "--out", "ball.png", tmp_path=tmp_path)
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


@needs_mpl
def test_sphere_means_bsa_fast(tmp_path):
    out = run_script("sphere_means_bsa.py", "--fast", "--out", "s.png", tmp_path=tmp_path)
    grad = float(re.search(r"gradient norm (\S+)", out).group(1))
    assert grad < 1e-8, out
    res = dict(re.findall(r"^(tangent PCA|exact PGA|BSA) .*?\s([\d.]+)\s+[\d.]+%$", out, re.M))
    assert {"tangent PCA", "exact PGA"} <= set(res), out
    var = float(re.search(r"Fréchet variance ([\d.]+)", out).group(1))
    assert all(float(r) < var for r in res.values())  # a 1-D subspace explains something
    assert_png(tmp_path / "s.png")


@needs_mpl
def test_spd_sliced_wasserstein_fast(tmp_path):
    out = run_script("spd_sliced_wasserstein.py", "--fast", "--out", "sw.png", tmp_path=tmp_path)
    found = re.search(r"between-session SW₂: ([\d.]+) before, ([\d.]+) after", out)
    before, after = map(float, found.groups())
    assert after < 0.6 * before, out  # re-centering removes most of the session shift
    assert_png(tmp_path / "sw.png")


def test_quickstart(tmp_path):
    out = run_script("quickstart.py", tmp_path=tmp_path)
    assert "Brockett" in out


def test_spdnet_liebn_short(tmp_path):
    out = run_script("spdnet_liebn.py", "--epochs", "1", "--bn", "liebn-aim", tmp_path=tmp_path)
    assert "SPDNet bn=liebn-aim" in out and "NaN=0" in out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=NOTEBOOK_BUDGET, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on any failing cell
    elapsed = time.perf_counter() - t0
    assert elapsed < NOTEBOOK_BUDGET, f"{path.name} took {elapsed:.0f} s (budget {NOTEBOOK_BUDGET} s)"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
