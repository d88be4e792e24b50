"""Ogita–Aishima refinement and the mixed-precision Jacobi finish built on it (CPU, torch engine).

References: ``torch.linalg.eigh`` in float64 (LAPACK). Perturbed bases are made from LAPACK's
eigenvectors plus seeded noise, so the convergence rate is measured, not assumed.
"""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds import eigh_jacobi as J
from riemlearn.manifolds.eigh_refine import refine_eigh

F64 = torch.float64


def _spd(gen, b=6, n=20):
    a = torch.randn(b, n, 2 * n, generator=gen, dtype=F64)
    return a @ a.mT / (2 * n) + 0.1 * torch.eye(n, dtype=F64)


def _errors(x, w, v):
    norm = torch.linalg.matrix_norm(x)
    ew = ((w - torch.linalg.eigvalsh(x)).abs().amax(-1) / norm).max().item()
    orth = (v.mT @ v - torch.eye(x.shape[-1], dtype=F64)).abs().max().item()
    rec = (torch.linalg.matrix_norm((v * w.unsqueeze(-2)) @ v.mT - x) / norm).max().item()
    return ew, orth, rec


@pytest.fixture
def refine_calls(monkeypatch) -> dict:
    """Records the ``converged`` flags of the solver's call to ``refine_eigh``."""
    calls: dict = {}
    real = J.refine_eigh

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["converged"] = out[2].clone()
        return out

    monkeypatch.setattr(J, "refine_eigh", spy)
    return calls


def test_refinement_converges_quadratically(gen):
    x = _spd(gen)
    w0, v0 = torch.linalg.eigh(x)
    u = v0.mT + 1e-5 * torch.randn(v0.shape, generator=gen, dtype=F64)  # rows, error ~1e-5
    norm = torch.linalg.matrix_norm(x)
    errs = []
    for steps in (0, 1, 2):
        w, _, _ = refine_eigh(x, u, norm, 0.0, max_steps=steps, check=False)
        errs.append(((w.sort(-1).values - w0).abs().amax(-1) / norm).max().item())
    assert errs[1] < 1e-3 * errs[0] and errs[2] < 1e-14  # error roughly squares each step
    w, u2, ok = refine_eigh(x, u, norm, 1e-13, max_steps=4)
    assert bool(ok.all())
    order = w.argsort(-1)
    v = torch.take_along_dim(u2, order.unsqueeze(-1), dim=-2).mT
    ew, orth, rec = _errors(x, w.sort(-1).values, v)
    assert ew < 1e-14 and orth < 1e-13 and rec < 1e-13


def test_refinement_keeps_exact_ties_and_reports_failure(gen):
    q, _ = torch.linalg.qr(torch.randn(2, 8, 8, generator=gen, dtype=F64))
    lam = torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0], dtype=F64)
    x = (q * lam) @ q.mT
    x = (x + x.mT) / 2
    u = q.mT + 1e-6 * torch.randn(2, 8, 8, generator=gen, dtype=F64)
    w, _, ok = refine_eigh(x, u, torch.linalg.matrix_norm(x), 1e-13, max_steps=4)
    assert bool(ok.all()) and torch.allclose(w.sort(-1).values, lam.expand(2, 8), atol=1e-13)
    bad = torch.randn(2, 8, 8, generator=gen, dtype=F64)  # not a basis near the eigenvectors
    _, _, ok = refine_eigh(x, bad, torch.linalg.matrix_norm(x), 1e-13, max_steps=2)
    assert not bool(ok.any())


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_mixed_jacobi_with_fallback_matches_lapack(gen, dtype, refine_calls):
    n = 16
    q, _ = torch.linalg.qr(torch.randn(4, n, n, generator=gen, dtype=F64))
    x = (q * torch.logspace(0, 6, n, dtype=F64)) @ q.mT  # cond 1e6: the refinement's δ swallows
    x = (x + x.mT) / 2  # the small eigenvalues, so the float64 sweeps must finish them
    w, v = J.eigh_jacobi(x.to(dtype), mixed=True, engine="torch")
    ew, orth, rec = _errors(x.to(dtype).double(), w.double(), v.double())
    tol = 1e-14 if dtype == F64 else 2e-7
    assert ew < tol and orth < 10 * tol and rec < 10 * tol
    assert "converged" in refine_calls  # the refinement ran (and the fallback repaired what it left)


def test_mixed_jacobi_resolves_a_near_tie(gen, refine_calls):
    """EEG-like spectrum (condition 1e3) with one pair 1e-4 apart (relative), which the float32
    stage cannot separate: refinement (and float64 sweeps for what it leaves) still resolve it."""
    n = 24
    q, _ = torch.linalg.qr(torch.randn(3, n, n, generator=gen, dtype=F64))
    lam = torch.logspace(0, 3, n, dtype=F64)
    lam[5] = lam[4] * (1 + 1e-4)
    x = (q * lam) @ q.mT
    x = (x + x.mT) / 2
    w, v = J.eigh_jacobi(x, mixed=True, engine="torch")
    assert "converged" in refine_calls
    ew, orth, rec = _errors(x, w, v)
    assert ew < 1e-14 and orth < 1e-13 and rec < 1e-13
    gap = (w[:, 5] - w[:, 4]) / lam[4]  # the planted near-tie is resolved
    assert torch.allclose(gap, torch.full_like(gap, 1e-4), rtol=1e-6)
