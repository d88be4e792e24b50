"""The eigh-free matrix exponential of symmetric matrices (shifted, scaled Taylor polynomial)."""

from __future__ import annotations

import math

import mpmath
import pytest
import scipy.linalg
import torch
from riemlearn.manifolds import expm_polynomial as ep
from riemlearn.manifolds import spectral


def _sym_batch(gen, batch, n, radius, shift=0.0, dtype=torch.float64):
    """Symmetric matrices with spectral radius ``radius`` about ``shift``·(random sign)."""
    a = torch.randn(batch, n, n, generator=gen, dtype=torch.float64)
    a = a + a.mT
    a = a / torch.linalg.matrix_norm(a, 2).clamp_min(1e-300)[:, None, None] * radius
    c = shift * torch.randn(batch, 1, 1, generator=gen, dtype=torch.float64)
    return (a + c * torch.eye(n, dtype=torch.float64)).to(dtype)


def _eig_expm(a):
    w, v = torch.linalg.eigh(a.double())
    return (v * w.exp().unsqueeze(-2)) @ v.mT


def _rel_err(out, ref):
    return ((out.double() - ref).norm(dim=(-2, -1)) / ref.norm(dim=(-2, -1))).max().item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("radius", [0.0, 1e-9, 1e-3, 0.5, 2.0, 7.0, 30.0])
@pytest.mark.parametrize("n", [1, 3, 22])
def test_matches_eigendecomposition_route(gen, dtype, radius, n):
    shift = 0.0 if dtype == torch.float32 and radius > 7 else 3.0
    a = _sym_batch(gen, 16, n, radius, shift, dtype)
    out = ep.expm_sym_polynomial(a)
    assert out is not None and out.dtype == dtype and out.shape == a.shape
    eps = torch.finfo(dtype).eps
    # the exponential's own conditioning: O(u·ρ) relative, ρ = spectral radius about the centre
    assert _rel_err(out, _eig_expm(a)) <= 20 * eps * max(1.0, radius)


def test_matches_mpmath_and_scipy(gen):
    a = _sym_batch(gen, 4, 6, 5.0, 2.0)
    out = ep.expm_sym_polynomial(a)
    mpmath.mp.dps = 40
    for i in range(a.shape[0]):
        exact = mpmath.expm(mpmath.matrix(a[i].tolist()))
        ref = torch.tensor([[float(exact[r, c]) for c in range(6)] for r in range(6)], dtype=torch.float64)
        assert _rel_err(out[i], ref) < 2.2e-16 * 5 * 10
        # scipy's Padé expm is itself ~1e-13 off mpmath here
        assert _rel_err(out[i], torch.from_numpy(scipy.linalg.expm(a[i].numpy()))) < 1e-12


def test_batch_dims_and_noncontiguous_input(gen):
    a = _sym_batch(gen, 6, 4, 1.5).reshape(2, 3, 4, 4)
    out = ep.expm_sym_polynomial(a.mT)  # symmetric, non-contiguous view
    assert out.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out, _eig_expm(a), rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_theta_bounds_the_taylor_remainder(dtype):
    u = torch.finfo(dtype).eps / 2
    thetas = [ep.taylor_theta(m, u) for m in range(1, 31)]
    assert all(b >= a for a, b in zip(thetas, thetas[1:], strict=False))  # higher degree, larger θ
    for m, theta in enumerate(thetas, start=1):
        tail = math.exp(theta) * sum(theta**k / math.factorial(k) for k in range(m + 1, m + 40))
        assert tail <= u * (1 + 1e-9)
        if theta < 1.5:  # not at the cap: θ is the largest such value (to bisection accuracy)
            t2 = theta * (1 + 1e-6)
            assert math.exp(t2) * sum(t2**k / math.factorial(k) for k in range(m + 1, m + 40)) > u


@pytest.mark.parametrize("rho", [1e-12, 0.3, 1.0, 5.0, 1e3])
def test_chosen_plan_scales_into_the_theta_range(rho):
    u = 2.0**-53
    m, q, s = ep._choose(rho, u)
    assert rho / 2**s <= ep.taylor_theta(m, u)
    assert 1 <= q <= m


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_declines_non_finite_input(bad):
    a = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    a[1, 0, 2] = a[1, 2, 0] = bad
    assert ep.expm_sym_polynomial(a) is None


def test_declines_empty_and_overflowing_input():
    assert ep.expm_sym_polynomial(torch.empty(0, 3, 3, dtype=torch.float64)) is None
    # λ_max ≈ 705.1 (e^λ finite), but the Gershgorin bound e^{μ+ρ} = e^715 overflows float64
    big = torch.tensor([[705.0, 10.0], [10.0, -5.0]], dtype=torch.float64)
    assert ep.expm_sym_polynomial(big) is None
    assert ep.expm_sym_polynomial(torch.diag(torch.tensor([90.0, 1.0]))) is None  # float32
    # e^μ underflows where e^{λ_max} does not (0 and e^-700)
    wide = torch.diag(torch.tensor([-1500.0, 0.0], dtype=torch.float64))
    deep = torch.diag(torch.tensor([-750.0, -700.0], dtype=torch.float64))
    for x in (wide, deep):
        assert ep.expm_sym_polynomial(x) is None
        torch.testing.assert_close(spectral.expm(x), torch.diag(torch.diagonal(x).exp()), rtol=1e-13, atol=0)
    # the eigh route still answers
    out = spectral.expm(big)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _eig_expm(big), rtol=1e-12, atol=0)


def test_spectral_expm_routes(gen, monkeypatch):
    a = _sym_batch(gen, 8, 5, 2.0, 1.0)
    calls = []
    real = spectral.expm_sym_polynomial
    monkeypatch.setattr(spectral, "expm_sym_polynomial", lambda x: calls.append(1) or real(x))
    fwd = spectral.expm(a)
    assert calls == [1]
    ag = a.clone().requires_grad_(True)
    out = spectral.expm(ag)  # autograd: eigh route with the Daleckii–Krein backward
    assert calls == [1] and out.grad_fn is not None
    torch.testing.assert_close(out.detach(), fwd, rtol=1e-13, atol=0)
    out.sum().backward()
    assert torch.isfinite(ag.grad).all()
    with torch.no_grad():
        spectral.expm(ag)
    assert calls == [1, 1]
    with torch.inference_mode():
        torch.testing.assert_close(spectral.expm(a), fwd, rtol=0, atol=0)
    assert calls == [1, 1, 1]


def test_spectral_expm_compute_dtype_and_nan(gen):
    a = _sym_batch(gen, 8, 5, 3.0, 1.0, torch.float32)
    out = spectral.expm(a, compute_dtype=torch.float64)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), _eig_expm(a), rtol=1e-6, atol=0)
    bad = a.clone()
    bad[0, 0, 0] = float("nan")
    assert ep.expm_sym_polynomial(bad) is None  # declined: the eigh route answers as before

    def outcome(f):
        try:
            r = f()
            return ("value", torch.isnan(r).flatten(1).all(1).tolist())
        except RuntimeError as exc:
            return ("error", type(exc))

    assert outcome(lambda: spectral.expm(bad)) == outcome(lambda: spectral.sym_functions(bad, ["exp"])[0])


def test_float32_takes_the_eigh_route_below_highest_matmul_precision(gen, monkeypatch):
    a = _sym_batch(gen, 4, 5, 2.0, 1.0, torch.float32)
    calls = []
    real = spectral.expm_sym_polynomial
    monkeypatch.setattr(spectral, "expm_sym_polynomial", lambda x: calls.append(1) or real(x))
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # what allow_tf32 = True sets
        out = spectral.expm(a)
        assert calls == []
        spectral.expm(a.double())  # float64 products are unaffected
        assert calls == [1]
    finally:
        torch.set_float32_matmul_precision(old)
    assert _rel_err(out, _eig_expm(a)) < 1e-5
