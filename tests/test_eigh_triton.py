"""Fused Triton Jacobi engine: checked on the CPU by Triton's interpreter, on CUDA when present.

The interpreter must be switched on before Triton is imported (``TRITON_INTERPRET=1``), so the
CPU checks run in a fresh Python process. References: ``torch.linalg.eigh`` in float64 and the
torch engine of the same method. Skipped when Triton is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from riemlearn.manifolds import eigh_dispatch as D
from riemlearn.manifolds import eigh_triton as T
from riemlearn.manifolds.eigh_jacobi import eigh_jacobi

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton not installed")

_SCRIPT = textwrap.dedent(
    r"""
    import json, torch
    from torch.autograd import gradcheck
    from riemlearn.manifolds import spectral as S
    from riemlearn.manifolds.eigh_dispatch import spectral_backend
    from riemlearn.manifolds.eigh_jacobi import eigh_jacobi, eigvalsh_jacobi
    from riemlearn.manifolds.eigh_triton import jacobi_sweeps

    F64 = torch.float64
    gen = torch.Generator().manual_seed(0)

    def spectrum(w):
        q, _ = torch.linalg.qr(torch.randn(2, w.shape[-1], w.shape[-1], generator=gen, dtype=F64))
        x = (q * w) @ q.mT
        return (x + x.mT) / 2

    def errors(x, w, v):
        xd, wd, vd = x.double(), w.double(), v.double()
        norm = torch.linalg.matrix_norm(xd)
        ref = torch.linalg.eigvalsh(xd)
        ew = ((wd - ref).abs().amax(-1) / norm).max().item()
        rec = (torch.linalg.matrix_norm((vd * wd.unsqueeze(-2)) @ vd.mT - xd) / norm).max().item()
        orth = (vd.mT @ vd - torch.eye(x.shape[-1], dtype=F64)).abs().max().item()
        return [ew, rec, orth]

    out = {}
    a = torch.randn(3, 7, 7, generator=gen, dtype=F64)
    sym7 = (a + a.mT) / 2  # indefinite, odd size (padded to 8)
    cases = {
        "sym7": sym7,
        "spd16_cond1e6": spectrum(torch.logspace(0, 6, 16, dtype=F64)),
        "ties12": spectrum(torch.tensor([1.0] * 5 + [2.0] * 4 + [3.0, 4.0, 5.0], dtype=F64)),
        "identity5": torch.eye(5, dtype=F64).expand(2, 5, 5),
    }
    # SPD and indefinite in one batch: the one-sided path's two Cholesky shifts side by side
    a16 = torch.randn(2, 16, 16, generator=gen, dtype=F64)
    cases["spd_and_sym16"] = torch.cat([cases["spd16_cond1e6"], (a16 + a16.mT) / 2])
    for name, x in cases.items():
        out[name] = errors(x, *eigh_jacobi(x, engine="triton"))
        wt, _ = eigh_jacobi(x, engine="torch")
        diff = (eigvalsh_jacobi(x, engine="triton") - wt).abs().amax(-1) / torch.linalg.matrix_norm(x)
        out[name + "_vs_torch_engine"] = diff.max().item()
    # mixed mode on the fused engine: float64 in, one-sided Jacobi (float32) + float64 refinement;
    # float32 in, one-sided Jacobi alone + Rayleigh quotients. LAPACK in float32 for scale.
    for name in ("sym7", "spd16_cond1e6", "ties12", "spd_and_sym16"):
        x = cases[name]
        out[name + "_mixed64"] = errors(x, *eigh_jacobi(x, engine="triton", mixed=True))
        out[name + "_mixed32"] = errors(x.float(), *eigh_jacobi(x.float(), engine="triton", mixed=True))
        out[name + "_lapack32"] = errors(x.float(), *torch.linalg.eigh(x.float()))
    # matrices of size 1e±30: float32 norms and Cholesky factors would over/underflow unbalanced
    for s in (1e30, 1e-30):
        for dt in (torch.float32, F64):
            xs = (cases["ties12"] * s).to(dt)
            out[f"scaled{s:g}_{dt}"] = errors(xs, *eigh_jacobi(xs, engine="triton", mixed=True))
    x32 = cases["spd16_cond1e6"].float() / 1e3
    out["f32_mixed"] = errors(x32, *eigh_jacobi(x32, engine="triton", mixed=True))
    out["f32_plain"] = errors(x32, *eigh_jacobi(x32, engine="triton", mixed=False))
    # exactly k sweeps, and the per-matrix sweep count of the stopping test
    m = 8
    big = torch.zeros(3, m, m, dtype=F64)
    big[:, :7, :7] = sym7
    big.diagonal(dim1=-2, dim2=-1)[:, 7:] = 2 * torch.linalg.matrix_norm(sym7)[:, None]
    eye = torch.eye(m, dtype=F64).expand(3, m, m)
    norm = torch.linalg.matrix_norm(sym7)
    _, _, fixed = jacobi_sweeps(big, eye, norm, 1e-14, 2, fixed=True)
    _, _, tested = jacobi_sweeps(big, eye, norm, 4 * 7 * 2.2e-16, 30)
    out["fixed_sweeps"] = fixed.tolist()
    out["tested_sweeps"] = tested.tolist()
    # the Daleckii-Krein backward on the fused path
    xs = spectrum(torch.tensor([0.5, 1.0, 1.7, 3.0], dtype=F64)).requires_grad_(True)
    with spectral_backend("jacobi", jacobi_engine="triton"):
        out["gradcheck_logm"] = bool(gradcheck(S.logm, (xs,), eps=1e-6, atol=1e-7))
    from riemlearn.manifolds.eigh_triton import usable

    sizes = ((40, F64), (5, torch.float32), (65, F64))
    out["usable"] = [usable(torch.zeros(1, n, n, dtype=dt)) for n, dt in sizes]
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def interpreted() -> dict:
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-c", _SCRIPT]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_triton
@pytest.mark.parametrize("name", ["sym7", "spd16_cond1e6", "ties12", "identity5"])
def test_interpreted_kernel_matches_lapack(interpreted, name):
    ew, rec, orth = interpreted[name]
    assert ew < 1e-14 and rec < 1e-13 and orth < 1e-13
    assert interpreted[name + "_vs_torch_engine"] < 1e-12  # same method, same arithmetic


@needs_triton
@pytest.mark.parametrize("name", ["sym7", "spd16_cond1e6", "ties12", "spd_and_sym16"])
def test_interpreted_mixed_onesided_path(interpreted, name):
    ew, rec, orth = interpreted[name + "_mixed64"]
    assert ew < 1e-14 and rec < 1e-13 and orth < 1e-13
    # float32 in and out: float32 roundoff only, as LAPACK's float32 eigh (orthogonality better)
    ew, rec, orth = interpreted[name + "_mixed32"]
    ew_l, rec_l, orth_l = interpreted[name + "_lapack32"]
    # indefinite matrices are factored with the shift 1.25‖X‖ (SPD ones nearly unshifted), which
    # multiplies the factorization's roundoff, and so the reconstruction error, by up to 2.25
    factor = 3 * 2.25 if name in ("sym7", "spd_and_sym16") else 3
    assert ew < 3e-7 and orth < 1e-6 and rec < max(1e-6, factor * rec_l)


@needs_triton
@pytest.mark.parametrize("scale", ["1e+30", "1e-30"])
def test_interpreted_extreme_scales(interpreted, scale):
    ew, rec, orth = interpreted[f"scaled{scale}_torch.float32"]
    assert ew < 3e-7 and rec < 2e-6 and orth < 1e-6
    ew, rec, orth = interpreted[f"scaled{scale}_torch.float64"]
    assert ew < 1e-14 and rec < 1e-13 and orth < 1e-13


@needs_triton
def test_interpreted_float32_mixed_beats_plain(interpreted):
    ew, rec, orth = interpreted["f32_mixed"]
    assert ew < 1e-6 and rec < 2e-6 and orth < 2e-6
    # the one-sided basis is orthogonal to its cosine tolerance; two-sided sweeps accumulate roundoff
    assert orth < interpreted["f32_plain"][2]


@needs_triton
def test_interpreted_sweep_control(interpreted):
    assert interpreted["fixed_sweeps"] == [2, 2, 2]
    assert all(3 <= s < 30 for s in interpreted["tested_sweeps"])


@needs_triton
def test_interpreted_gradient_through_fused_path(interpreted):
    assert interpreted["gradcheck_logm"] is True


@needs_triton
def test_interpreted_compile_probe(interpreted):
    assert interpreted["usable"] == [True, True, False]  # n = 65 pads to 128 > MAX_M


def test_compile_probe_failure_disables_engine(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated PTX assembly failure")

    monkeypatch.setattr(T, "available", lambda x: True)
    monkeypatch.setattr(T, "onesided_eigh", broken)
    monkeypatch.setattr(T, "_PROBED", {})
    monkeypatch.setattr(T, "_DISABLED", [])
    x = torch.zeros(3, 40, 40, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="simulated PTX assembly failure"):
        assert not T.usable(x)
    assert T._PROBED == {(64, torch.float64, "cpu"): False} and T._DISABLED
    assert not T.usable(x)  # cached: no second probe, no second warning


def test_engine_validation():
    x = torch.eye(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="engine"):
        eigh_jacobi(x, engine="cuda")
    with pytest.raises(ValueError, match="block=1"):
        eigh_jacobi(x, engine="triton", block=2)
    with pytest.raises(ValueError, match="n <= 64"):
        eigh_jacobi(torch.eye(65, dtype=torch.float64), engine="triton")
    if not T.interpreting():  # a CPU tensor is refused unless Triton's interpreter is on
        with pytest.raises(ValueError, match="CUDA"):
            eigh_jacobi(x, engine="triton")
    with pytest.raises(ValueError, match="jacobi_engine"):
        with D.spectral_backend("jacobi", jacobi_engine="fast"):
            pass
    assert [T.padded_size(n) for n in (1, 2, 3, 33, 64)] == [2, 2, 4, 64, 64]
    assert not D.fused_applies(x)  # CPU tensors never take the fused path automatically


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [33, 64])
def test_cuda_fused_engine(dtype, n):
    if not T.available(torch.empty(0, device="cuda")):
        pytest.skip("Triton not installed")
    gen = torch.Generator().manual_seed(n)
    a = torch.randn(200, n, n, generator=gen, dtype=torch.float64)
    x = (a + a.mT) / 2
    xc = x.to("cuda", dtype)
    assert D.fused_applies(xc) and D.choose_path(xc) == "jacobi"
    w, v = D.eigh(xc)
    xd, wd, vd = x.to(dtype).double(), w.double().cpu(), v.double().cpu()
    norm = torch.linalg.matrix_norm(xd)
    ew = ((wd - torch.linalg.eigvalsh(xd)).abs().amax(-1) / norm).max()
    orth = (vd.mT @ vd - torch.eye(n, dtype=torch.float64)).abs().max()
    tol = 2e-6 if dtype == torch.float32 else 1e-13
    assert ew < tol and orth < 5 * tol
