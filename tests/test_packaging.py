"""The package imports as ``riemlearn`` with its subpackages and ships its type marker."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import riemlearn

ROOT = Path(__file__).resolve().parent.parent


def test_subpackages_import():
    for sub in ("manifolds", "optim", "layers", "stats"):
        mod = importlib.import_module(f"riemlearn.{sub}")
        assert Path(mod.__file__).parent.name == sub


def test_version_and_py_typed():
    assert riemlearn.__version__.count(".") == 2
    assert (Path(riemlearn.__file__).parent / "py.typed").is_file()


def test_setup_cfg_lists_every_package():
    """Every folder with an __init__.py outside tests/examples/benchmarks is shipped."""
    cfg = (ROOT / "setup.cfg").read_text()
    listed = {line.strip() for line in cfg.splitlines() if line.strip().startswith("riemlearn")}
    found = {"riemlearn"}
    for init in ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        top = rel.parts[0]
        if top in {"tests", "examples", "benchmarks", "build"} or top.startswith("."):
            continue
        found.add("riemlearn." + ".".join(rel.parts))
    assert found <= listed, f"packages missing from setup.cfg: {sorted(found - listed)}"


def test_import_from_outside_checkout(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import riemlearn.manifolds as m; print(m.Manifold.__module__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "riemlearn.manifolds.base"
