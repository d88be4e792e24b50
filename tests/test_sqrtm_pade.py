"""Padé matrix square root with Newton–Schulz Lyapunov backward (Song et al. 2022)."""

from __future__ import annotations

import math

import pytest
import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spectral import solve_lyapunov, sqrtm
from riemlearn.manifolds.sqrtm_pade import lyapunov_newton_schulz, pade_sqrt_coefficients, sqrtm_pade

F64 = torch.float64


def _rel(a, b):
    return float((torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b)).max())


def test_pade_coefficients_approximate_sqrt():
    assert pade_sqrt_coefficients(1) == ((1.0, -0.75), (1.0, -0.25))
    errs = []
    for m in (2, 4, 8):
        p, q = pade_sqrt_coefficients(m)
        z = 0.5
        val = sum(c * z**k for k, c in enumerate(p)) / sum(c * z**k for k, c in enumerate(q))
        errs.append(abs(val - math.sqrt(1 - z)))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-12
    with pytest.raises(ValueError):
        pade_sqrt_coefficients(0)


@pytest.mark.parametrize(("cond", "tol"), [(1.0, 1e-11), (3.0, 1e-9), (10.0, 1e-6)])
def test_forward_matches_eigh_sqrt(gen, cond, tol):
    x = SPD(6).random_point(4, generator=gen, dtype=F64, cond=cond) * 7.0
    assert _rel(sqrtm_pade(x), sqrtm(x)) < tol
    assert _rel(sqrtm_pade(x, degree=16), sqrtm(x)) < tol / 10


def test_float32_and_shapes(gen):
    x = SPD(5).random_point(2, 3, generator=gen, dtype=torch.float32, cond=4.0)
    r = sqrtm_pade(x)
    assert r.dtype == torch.float32 and r.shape == x.shape
    assert _rel(r.double(), sqrtm(x.double())) < 1e-5


def test_backward_matches_exact_gradient(gen):
    x = SPD(5).random_point(3, generator=gen, dtype=F64, cond=3.0)
    g = torch.randn(3, 5, 5, generator=gen, dtype=F64)
    xa = x.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad((sqrtm_pade(xa) * g).sum(), xa)
    xb = x.clone().requires_grad_(True)
    (gb,) = torch.autograd.grad((sqrtm(xb) * g).sum(), xb)
    assert _rel(ga, gb) < 1e-9


def test_gradcheck_small_condition(gen):
    x = SPD(3).random_point(2, generator=gen, dtype=F64, cond=2.0)
    assert torch.autograd.gradcheck(lambda a: sqrtm_pade((a + a.mT) / 2, degree=16),
                                    (x.clone().requires_grad_(),))


def test_newton_schulz_lyapunov(gen):
    s = SPD(4).random_point(3, generator=gen, dtype=F64, cond=20.0)
    c = torch.randn(3, 4, 4, generator=gen, dtype=F64)
    assert _rel(lyapunov_newton_schulz(s, c, iters=25), solve_lyapunov(s, c)) < 1e-10


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        sqrtm_pade(torch.ones(2, 3))
    with pytest.raises(ValueError, match="floating"):
        sqrtm_pade(torch.eye(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=">= 1"):
        sqrtm_pade(torch.eye(2), degree=0)
