"""Spectral matrix functions: values, tie-robust gradients, double backward, API contract.

References are independent of riemlearn: scipy.linalg matrix functions for values, the
block-triangular identity ``f([[X, E], [0, X]]) = [[f(X), Df(X)[E]], [0, f(X)]]`` (scipy on the
non-symmetric 2n×2n matrix) for Fréchet derivatives, and exact closed-form Loewner matrices
built from *known* eigenpairs (``X = Q diag(λ) Qᵀ`` with ``Q`` chosen here) at ties.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla
import torch
from riemlearn.manifolds import spectral
from riemlearn.manifolds.spectral import (
    Custom,
    Power,
    clampm,
    expm,
    invsqrtm,
    logm,
    powm,
    solve_lyapunov,
    sqrtm,
    sqrtm_invsqrtm,
    sym_apply,
    sym_functions,
)
from torch.autograd import gradcheck, gradgradcheck

F64 = torch.float64

# name -> (riemlearn function, scipy reference on a (possibly non-symmetric) matrix)
FUNCS = {
    "logm": (logm, sla.logm),
    "expm": (expm, sla.expm),
    "sqrtm": (sqrtm, sla.sqrtm),
    "invsqrtm": (invsqrtm, lambda m: sla.fractional_matrix_power(m, -0.5)),
    "powm0.3": (lambda x: powm(x, 0.3), lambda m: sla.fractional_matrix_power(m, 0.3)),
}

# Closed forms for the Loewner matrix f[a, b] at known eigenvalues (float64, numpy).
SCALAR = {
    "logm": (np.log, lambda a: 1.0 / a),
    "expm": (np.exp, np.exp),
    "sqrtm": (np.sqrt, lambda a: 0.5 / np.sqrt(a)),
    "invsqrtm": (lambda a: a**-0.5, lambda a: -0.5 * a**-1.5),
    "powm0.3": (lambda a: a**0.3, lambda a: 0.3 * a**-0.7),
}


def _orth(n: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    return q


def _spd(n: int, gen: torch.Generator, cond: float = 10.0, batch: tuple = ()) -> torch.Tensor:
    qs = torch.stack([_orth(n, gen) for _ in range(math.prod(batch))]).reshape(*batch, n, n)
    lam = torch.logspace(0, math.log10(cond), n, dtype=F64)
    return (qs * lam.unsqueeze(-2)) @ qs.mT


def _sym_rand(n: int, gen: torch.Generator, batch: tuple = ()) -> torch.Tensor:
    a = torch.randn(*batch, n, n, generator=gen, dtype=F64)
    return a + a.mT


def _loewner_exact(name: str, lam: np.ndarray) -> np.ndarray:
    f, df = SCALAR[name]
    a, b = lam[:, None], lam[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (f(a) - f(b)) / (a - b)
    return np.where(a == b, df(a + 0 * b), q)


def _grad(fn, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad((fn(x) * g).sum(), x)
    return gx


def _frechet_block(ref, x: np.ndarray, e: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    m = np.block([[x, e], [np.zeros_like(x), x]])
    return np.real(ref(m))[:n, n:]


def _relerr(a: torch.Tensor, b) -> float:
    b = torch.as_tensor(b, dtype=F64)
    return float((a.to(F64) - b).abs().max() / b.abs().max())


# -- values -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("kind", ["random", "cond1e8", "tied"])
def test_values_match_scipy(name, kind, gen):
    n = 5
    if kind == "random":
        x = _spd(n, gen, cond=30.0)
    elif kind == "cond1e8":
        x = _spd(n, gen, cond=1e8)
    else:
        q = _orth(n, gen)
        x = q @ torch.diag(torch.tensor([0.5, 0.5, 2.0, 2.0, 2.0], dtype=F64)) @ q.T
    if name == "expm":
        x = x / x.norm() * 3.0  # keep exp well scaled
    ours, ref = FUNCS[name]
    expect = np.real(ref(x.numpy()))
    # cond 1e8: eigh resolves the smallest eigenvalue to ~eps·‖X‖, i.e. 1e-8 relative.
    tol = 1e-6 if kind == "cond1e8" else 1e-11
    assert _relerr(ours(x), expect) < tol


def test_clampm_matches_definition(gen):
    q = _orth(5, gen)
    lam = torch.tensor([-1.0, 1e-5, 0.3, 0.3, 2.0], dtype=F64)
    x = q @ torch.diag(lam) @ q.T
    expect = q @ torch.diag(lam.clamp_min(0.1)) @ q.T
    assert _relerr(clampm(x, 0.1), expect) < 1e-13


# -- gradients at ties --------------------------------------------------------------------
def _tie_cases(gen):
    q = _orth(4, gen)
    return {
        "identity": (torch.eye(4, dtype=F64) * 1.5, torch.eye(4, dtype=F64), np.full(4, 1.5)),
        "diag_ties": (torch.diag(torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=F64)), torch.eye(4, dtype=F64),
                      np.array([1.0, 1.0, 3.0, 3.0])),
        "rotated_ties": (q @ torch.diag(torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=F64)) @ q.T, q,
                         np.array([1.0, 1.0, 3.0, 3.0])),
    }


@pytest.mark.parametrize("name", list(FUNCS))
def test_grad_at_ties_float64_exact(name, gen):
    g = _sym_rand(4, gen)
    for case, (x, q, lam) in _tie_cases(gen).items():
        qn = q.numpy()
        expect = qn @ (_loewner_exact(name, lam) * (qn.T @ g.numpy() @ qn)) @ qn.T
        got = _grad(FUNCS[name][0], x, g)
        assert torch.isfinite(got).all(), case
        assert _relerr(got, expect) < 1e-12, case


@pytest.mark.parametrize("name", list(FUNCS))
def test_grad_at_ties_float32(name, gen):
    g = _sym_rand(4, gen)
    q = _orth(4, gen)
    near = q @ torch.diag(torch.tensor([1.0, 1.0 + 1e-7, 3.0, 3.0 + 1e-7], dtype=F64)) @ q.T
    cases = {k: v[0] for k, v in _tie_cases(gen).items()} | {"near_ties": near}
    for case, x in cases.items():
        x32 = x.float()
        got = _grad(FUNCS[name][0], x32, g.float())
        assert got.dtype == torch.float32
        assert torch.isfinite(got).all(), case
        # reference at the float32-rounded input, in float64, via the block identity
        expect = _frechet_block(FUNCS[name][1], x32.double().numpy(), g.float().double().numpy())
        assert _relerr(got, expect) < 1e-6, case


@pytest.mark.parametrize("name", list(FUNCS))
def test_grad_random_matches_block_frechet(name, gen):
    x = _spd(4, gen, cond=20.0)
    g = _sym_rand(4, gen)
    expect = _frechet_block(FUNCS[name][1], x.numpy(), g.numpy())
    assert _relerr(_grad(FUNCS[name][0], x, g), expect) < 1e-9


def test_nonsymmetric_cotangent_gives_symmetric_gradient(gen):
    x = _spd(4, gen)
    g = torch.randn(4, 4, generator=gen, dtype=F64)
    gx = _grad(logm, x, g)
    assert torch.allclose(gx, gx.mT, atol=1e-14)
    assert torch.allclose(gx, _grad(logm, x, (g + g.mT) / 2), atol=1e-14)


# -- gradcheck / gradgradcheck ------------------------------------------------------------
ALL_FNS = {
    **{k: v[0] for k, v in FUNCS.items()},
    "powm-1": lambda x: powm(x, -1.0),
    "powm2": lambda x: powm(x, 2.0),
    "clampm": lambda x: clampm(x, 0.7),
    "custom_autograd": lambda x: sym_apply(x, torch.tanh),
    "custom_given": lambda x: sym_apply(x, lambda w: w**3, lambda w: 3 * w**2, lambda w: 6 * w),
    "sqrt_invsqrt_pair": lambda x: torch.stack(sqrtm_invsqrtm(x)),
    "unused_output": lambda x: sym_functions(x, ["sqrt", "log"])[1],
}


def _check_inputs(gen):
    return {
        "random": _spd(3, gen, cond=5.0, batch=(2,)),
        "identity": torch.eye(3, dtype=F64).expand(2, 3, 3).clone(),
        "diag_ties": torch.diag(torch.tensor([0.5, 1.5, 1.5], dtype=F64)),
    }


@pytest.mark.parametrize("name", list(ALL_FNS))
def test_gradcheck_and_gradgradcheck(name, gen):
    fn = ALL_FNS[name]
    for case, x in _check_inputs(gen).items():
        if name == "expm":
            x = x * 0.5
        xi = x.clone().requires_grad_(True)
        assert gradcheck(fn, (xi,), atol=1e-7, rtol=1e-5), case
        assert gradgradcheck(fn, (xi,), atol=1e-6, rtol=1e-4), case


def test_solve_lyapunov_values_and_checks(gen):
    p = _spd(3, gen, cond=5.0, batch=(2,))
    v = _sym_rand(3, gen, batch=(2,))
    sol = solve_lyapunov(p, v)
    for i in range(2):
        expect = sla.solve_continuous_lyapunov(p[i].numpy(), v[i].numpy())
        assert _relerr(sol[i], expect) < 1e-12
    pt = torch.eye(3, dtype=F64).expand(2, 3, 3).clone()  # tied P
    for pp in (p, pt):
        args = (pp.clone().requires_grad_(True), v.clone().requires_grad_(True))
        assert gradcheck(solve_lyapunov, args)
        assert gradgradcheck(solve_lyapunov, args)


# -- compute dtype, eigh sharing, errors, shapes ------------------------------------------
def test_compute_dtype_float64_more_accurate(gen):
    x = _spd(6, gen, cond=1e8)
    x32 = x.float()
    expect = torch.as_tensor(np.real(sla.logm(x32.double().numpy())))
    lo = logm(x32)
    hi = logm(x32, compute_dtype=F64)
    assert hi.dtype == torch.float32
    err_hi = _relerr(hi, expect)
    err_lo = _relerr(lo, expect) if torch.isfinite(lo).all() else math.inf
    assert err_hi < 1e-6
    assert err_hi < err_lo / 10
    gx = _grad(lambda t: logm(t, compute_dtype=F64), x32, torch.eye(6))
    assert gx.dtype == torch.float32 and torch.isfinite(gx).all()


def test_sym_functions_share_one_eigh(gen, monkeypatch):
    calls = []
    real = spectral.eigh

    def counting(x):
        calls.append(x.shape)
        return real(x)

    monkeypatch.setattr(spectral, "eigh", counting)
    x = _spd(4, gen, batch=(3,)).requires_grad_(True)
    s, i, lg = sym_functions(x, ["sqrt", "invsqrt", "log"])
    (s.sum() + i.sum() + lg.sum()).backward()
    assert len(calls) == 1
    calls.clear()
    s2, i2 = sqrtm_invsqrtm(x.detach())
    assert len(calls) == 1
    assert torch.allclose(s2 @ i2, torch.eye(4, dtype=F64).expand(3, 4, 4), atol=1e-12)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, 2, dtype=torch.int64), [[1.0, 0.0], [0.0, 1.0]]],
)
def test_bad_input_raises(bad):
    with pytest.raises(ValueError, match="x"):
        logm(bad)


def test_bad_arguments_raise():
    x = torch.eye(2, dtype=F64)
    with pytest.raises(ValueError, match="unknown spectral function"):
        sym_functions(x, ["cbrt"])
    with pytest.raises(ValueError, match="finite"):
        powm(x, float("nan"))
    with pytest.raises(ValueError, match="p must"):
        solve_lyapunov(torch.zeros(2, 3), x)


def test_empty_batch():
    x = torch.zeros(0, 3, 3, dtype=F64, requires_grad=True)
    out = logm(x)
    assert out.shape == (0, 3, 3)
    out.sum().backward()
    assert x.grad.shape == (0, 3, 3)


@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_batch_shapes_match_per_matrix(batch, gen):
    x = _spd(3, gen, batch=batch) if batch else _spd(3, gen)
    g = _sym_rand(3, gen, batch=batch)
    outs = sym_functions(x, ["log", Power(0.3), Custom(torch.exp)])
    gx = _grad(lambda t: sym_functions(t, ["log", Power(0.3)])[1], x, g)
    flat_x, flat_g, flat_gx = x.reshape(-1, 3, 3), g.reshape(-1, 3, 3), gx.reshape(-1, 3, 3)
    for k in range(flat_x.shape[0]):
        assert torch.allclose(outs[0].reshape(-1, 3, 3)[k], logm(flat_x[k]), atol=1e-13)
        assert torch.allclose(outs[2].reshape(-1, 3, 3)[k], expm(flat_x[k]), atol=1e-12)
        assert torch.allclose(flat_gx[k], _grad(lambda t: powm(t, 0.3), flat_x[k], flat_g[k]), atol=1e-13)
    assert all(o.shape == (*batch, 3, 3) for o in outs)


@pytest.mark.cuda
def test_cuda_matches_cpu(gen):
    x = torch.cat([_spd(4, gen, batch=(3,)), torch.eye(4, dtype=F64).expand(2, 4, 4)])
    g = _sym_rand(4, gen, batch=(5,))
    for fn in (logm, expm, sqrtm, invsqrtm, lambda t: powm(t, 0.3)):
        ref_y, ref_g = fn(x), _grad(fn, x, g)
        y, gx = fn(x.cuda()), _grad(fn, x.cuda(), g.cuda())
        assert y.device.type == "cuda" and torch.isfinite(gx).all()
        assert torch.allclose(y.cpu(), ref_y, atol=1e-12)
        assert torch.allclose(gx.cpu(), ref_g, atol=1e-12)


def test_eigvalsh_matches_known_spectrum(gen):
    q = _orth(4, gen)
    lam = torch.tensor([0.5, 1.0, 1.0, 7.0], dtype=F64)
    x = (q @ torch.diag(lam) @ q.T).expand(2, 4, 4)
    assert torch.allclose(spectral.eigvalsh(x), lam.expand(2, 4), atol=1e-13)
    assert spectral.eigvalsh(torch.zeros(0, 4, 4)).shape == (0, 4)
