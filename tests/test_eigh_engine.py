"""Eigensolver engine: Jacobi, chunked torch, path switch, eigensolver-free matrix functions.

References are ``torch.linalg.eigh`` in float64 (LAPACK) and the spectral functions on the
``"torch"`` path; test matrices are built from known eigenpairs ``Q diag(λ) Qᵀ`` where the
property needs it (conditioning, ties). CUDA tests are marked and skipped without a GPU.
"""

from __future__ import annotations

import math
import threading

import pytest
import torch
from riemlearn.manifolds import eigh_dispatch as D
from riemlearn.manifolds import matfun_iterative as M
from riemlearn.manifolds import spectral as S
from riemlearn.manifolds.eigh_jacobi import eigh_jacobi, eigvalsh_jacobi, jacobi_schedule
from torch.autograd import gradcheck, gradgradcheck

F64, F32 = torch.float64, torch.float32


def _orth(batch: tuple, n: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=gen, dtype=F64))
    return q


def _from_spectrum(w: torch.Tensor, gen: torch.Generator, batch: tuple = (3,)) -> torch.Tensor:
    q = _orth(batch, w.shape[-1], gen)
    x = (q * w.unsqueeze(-2)) @ q.mT
    return (x + x.mT) / 2


def _random_sym(batch: tuple, n: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(*batch, n, n, generator=gen, dtype=F64)
    return (a + a.mT) / 2


def _errors(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> tuple[float, float, float]:
    """(eigenvalue error vs float64 eigh, reconstruction, orthogonality), relative to ‖x‖_F."""
    xd, wd, vd = x.double(), w.double(), v.double()
    norm = torch.linalg.matrix_norm(xd).clamp_min(1e-300)
    ref = torch.linalg.eigh(xd)[0]
    ew = ((wd - ref).abs().amax(-1) / norm).max().item()
    rec = (torch.linalg.matrix_norm((vd * wd.unsqueeze(-2)) @ vd.mT - xd) / norm).max().item()
    eye = torch.eye(x.shape[-1], dtype=F64)
    orth = (vd.mT @ vd - eye).abs().max().item()
    return ew, rec, orth


# --- Jacobi eigensolver ------------------------------------------------------------------------
def test_schedule_covers_every_pair_once():
    for nb in (2, 4, 6, 10):
        pairs = [tuple(sorted(p)) for rnd in jacobi_schedule(nb) for p in rnd]
        assert len(pairs) == len(set(pairs)) == nb * (nb - 1) // 2
        for rnd in jacobi_schedule(nb):  # disjoint within a round
            assert len({i for p in rnd for i in p}) == nb
    with pytest.raises(ValueError):
        jacobi_schedule(3)


@pytest.mark.parametrize("n,block", [(2, 1), (5, 1), (16, 1), (13, 4), (24, 6), (33, 9)])
def test_jacobi_float64_matches_eigh(gen, n, block):
    x = _random_sym((2, 3), n, gen)
    w, v = eigh_jacobi(x, block=block)
    assert w.shape == (2, 3, n) and v.shape == (2, 3, n, n) and w.dtype == F64
    assert bool((w[..., 1:] >= w[..., :-1]).all())  # ascending like eigh
    ew, rec, orth = _errors(x, w, v)
    tol = 2 * n * torch.finfo(F64).eps
    assert ew < tol and rec < 4 * tol and orth < 4 * tol, (ew, rec, orth)
    assert torch.allclose(eigvalsh_jacobi(x, block=block), w, rtol=0, atol=1e-13 * float(x.abs().max()))


@pytest.mark.parametrize("block", [1, 4])
def test_jacobi_float32_same_order_as_eigh(gen, block):
    n = 20
    x = _random_sym((8,), n, gen).to(F32)
    ew, rec, orth = _errors(x, *eigh_jacobi(x, block=block))
    tw, trec, torth = _errors(x, *torch.linalg.eigh(x))
    # plain float32 Jacobi: ~1e-6 ‖X‖ eigenvalues, within 10× of torch.linalg.eigh in float32
    # (the mixed mode, test below, is what the dispatcher uses for float32)
    assert ew < 3e-6 and rec < 2e-5 and orth < 2e-5, (ew, rec, orth)
    assert ew < 10 * max(tw, 1e-7) and rec < 10 * trec and orth < 10 * torth


@pytest.mark.parametrize("block", [1, 8])
def test_jacobi_mixed_precision(gen, block):
    n = 32
    spectra = {
        "random": None,
        "ties": torch.arange(n, dtype=F64).div(3, rounding_mode="floor") + 1,
        "cond 1e6": torch.logspace(-6, 0, n, dtype=F64),
    }
    for name, w_true in spectra.items():
        x = _random_sym((4,), n, gen) if w_true is None else _from_spectrum(w_true, gen, (4,))
        # float32 in, float64 finish: at least as accurate as torch.linalg.eigh in float32
        xf = x.to(F32)
        w, v = eigh_jacobi(xf, block=block, mixed=True)
        assert w.dtype == F32 and v.dtype == F32
        ew, rec, orth = _errors(xf, w, v)
        tw, trec, torth = _errors(xf, *torch.linalg.eigh(xf))
        assert ew < max(2 * tw, 1e-7) and rec < 2 * trec and orth < 2 * torth, (name, ew, rec, orth)
        # float64 in: most sweeps in float32, full float64 accuracy
        ew, rec, orth = _errors(x, *eigh_jacobi(x, block=block, mixed=True))
        assert ew < 1e-14 and rec < 1e-13 and orth < 1e-13, (name, ew, rec, orth)


def test_jacobi_ill_conditioned_float64(gen):
    n = 12
    w_true = torch.logspace(-6, 0, n, dtype=F64)  # condition number 1e6
    x = _from_spectrum(w_true, gen)
    for block in (1, 3):
        w, v = eigh_jacobi(x, block=block)
        ew, rec, orth = _errors(x, w, v)
        assert ew < 1e-14 and rec < 1e-14 and orth < 1e-14, (block, ew, rec, orth)
        # absolute accuracy eps‖X‖ means ~1e-10 relative on the smallest eigenvalue
        assert ((w - w_true).abs() / w_true).max() < 1e-8


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_jacobi_extreme_scales(gen, scale):
    # float32 Frobenius norms and squares over/underflow at 1e±30 (14 % eigenvalue errors before
    # the power-of-two balancing); results must keep the accuracy of a unit-scale matrix
    x = _from_spectrum(torch.linspace(1.0, 3.0, 10, dtype=F64), gen) * scale
    for dtype, lim in ((F32, 1e-5), (F64, 1e-13)):
        for mixed in (False, True):
            xx = x.to(dtype)
            w, v = eigh_jacobi(xx, mixed=mixed)
            ew, rec, orth = _errors(xx, w, v)
            assert ew < lim and rec < 10 * lim and orth < 10 * lim, (dtype, mixed, ew, rec, orth)
            assert torch.isfinite(w).all()


@pytest.mark.parametrize("block", [1, 2])
def test_jacobi_repeated_eigenvalues(gen, block):
    n = 6
    ties = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 5.0], dtype=F64)
    cases = {
        "identity": torch.eye(n, dtype=F64).expand(2, n, n),
        "diagonal ties": torch.diag_embed(ties).expand(2, n, n),
        "rotated ties": _from_spectrum(ties, gen, (2,)),
        "zero": torch.zeros(2, n, n, dtype=F64),
    }
    for name, x in cases.items():
        w, v = eigh_jacobi(x, block=block)
        ew, rec, orth = _errors(x, w, v)
        assert ew < 1e-14 and rec < 1e-14 and orth < 1e-14, (name, ew, rec, orth)
    w, v = eigh_jacobi(torch.eye(n, dtype=F64), block=block)
    assert torch.equal(w, torch.ones(n, dtype=F64))
    if block == 1:  # nothing to annihilate: no rotation at all, only the schedule's permutations
        assert torch.equal(v.abs() @ v.abs().mT, torch.eye(n, dtype=F64))


def test_jacobi_shapes_edge_cases_and_errors(gen):
    w, v = eigh_jacobi(torch.empty(0, 4, 4, dtype=F64))
    assert w.shape == (0, 4) and v.shape == (0, 4, 4)
    w, v = eigh_jacobi(torch.full((3, 1, 1), 2.5, dtype=F64))
    assert torch.equal(w, torch.full((3, 1), 2.5, dtype=F64))
    assert torch.equal(v, torch.ones(3, 1, 1, dtype=F64))
    x = _random_sym((), 7, gen)  # no batch dimension
    ew, rec, orth = _errors(x, *eigh_jacobi(x))
    assert ew < 1e-14 and rec < 1e-14
    with pytest.raises(ValueError, match="shape"):
        eigh_jacobi(torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValueError, match="float32 or float64"):
        eigh_jacobi(torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="block"):
        eigh_jacobi(x, block=0)


def test_jacobi_fixed_sweeps_and_batch_independence(gen):
    x = _random_sym((6,), 10, gen)
    w1, v1 = eigh_jacobi(x, sweeps=12)
    w2, v2 = eigh_jacobi(x, sweeps=12)
    assert torch.equal(w1, w2) and torch.equal(v1, v2)  # reproducible
    ew, rec, _ = _errors(x, w1, v1)
    assert ew < 1e-14 and rec < 1e-14
    _, rec0, _ = _errors(x, *eigh_jacobi(x, sweeps=1))
    assert rec0 > 1e-6  # one sweep is not enough: the count is honoured
    # converged items are frozen: one item's result does not depend on its batch mates
    easy = torch.diag_embed(torch.arange(1.0, 11.0, dtype=F64)).unsqueeze(0)
    wb, vb = eigh_jacobi(torch.cat([easy, x]))
    ws, vs = eigh_jacobi(x)
    assert torch.allclose(wb[1:], ws, rtol=0, atol=1e-14) and torch.allclose(vb[1:], vs, rtol=0, atol=1e-13)


# --- dispatch, switch, chunking ----------------------------------------------------------------
def test_auto_path_rules():
    assert D.auto_path("cpu", F64, 64, 1000) == "torch"  # CPU default unchanged
    assert D.auto_path("cuda", F32, 22, 100000) == "torch"  # cuSOLVER batched path (chunked)
    assert D.auto_path("cuda", F32, 33, 1000) == "jacobi"
    assert D.auto_path("cuda", F64, 128, 256) == "jacobi"
    assert D.auto_path("cuda", F64, 64, 1) == "host"  # a few small matrices: host LAPACK
    assert D.auto_path("cuda", F32, 22, D.CUDA_HOST_MAX_BATCH) == "host"
    assert D.auto_path("cuda", F32, 22, D.CUDA_HOST_MAX_BATCH + 1) == "torch"
    assert D.auto_path("cuda", F32, 64, 2 * D.CUDA_HOST_MAX_BATCH) == "host"
    assert D.auto_path("cuda", F32, 64, 2 * D.CUDA_HOST_MAX_BATCH + 1) == "jacobi"
    assert D.auto_path("cuda", F64, 65, 1) == "torch"
    assert D.auto_path("cuda", torch.float16, 64, 1000) == "torch"
    assert [D.jacobi_block(n) for n in (33, 64, 93, 128)] == [9, 16, 16, 16]
    assert all(2 * D.jacobi_block(n) <= 32 for n in range(2, 300))
    assert D.choose_path(torch.zeros(4, 64, 64)) == "torch"
    x = _random_sym((3,), 40, torch.Generator().manual_seed(0))
    w, v = S.eigh(x)  # CPU default: exactly torch.linalg.eigh
    w0, v0 = torch.linalg.eigh(x)
    assert torch.equal(w, w0) and torch.equal(v, v0) and torch.equal(S.eigvalsh(x), torch.linalg.eigvalsh(x))


def test_spectral_backend_switch_scoping_and_threads():
    assert D.current_backend() == "auto"
    seen = {}
    with D.spectral_backend("jacobi"):
        assert D.choose_path(torch.zeros(2, 3, 3)) == "jacobi"
        with D.spectral_backend("torch", chunk_size=2):
            assert D.current_backend() == "torch"
        assert D.current_backend() == "jacobi"
        t = threading.Thread(target=lambda: seen.setdefault("other", D.current_backend()))
        t.start()
        t.join()
    assert seen["other"] == "auto"  # another thread does not see this thread's setting
    assert D.current_backend() == "auto"
    for bad in ({"backend": "magma"}, {"chunk_size": 0}, {"jacobi_block": -1}, {"jacobi_sweeps": -2}):
        with pytest.raises(ValueError):
            with D.spectral_backend(**bad):
                pass


def test_chunked_torch_eigh_equals_unchunked(gen):
    x = _random_sym((2, 7), 6, gen)
    w0, v0 = torch.linalg.eigh(x)
    e0 = torch.linalg.eigvalsh(x)
    with D.spectral_backend("torch", chunk_size=3):
        w1, v1 = S.eigh(x)
        e1 = S.eigvalsh(x)
    assert torch.equal(w1, w0) and torch.equal(v1, v0) and torch.equal(e1, e0)
    with D.spectral_backend("jacobi", jacobi_block=2, chunk_size=2):  # chunked sub-eigh
        ew, rec, orth = _errors(x, *S.eigh(x))
    assert ew < 1e-14 and rec < 1e-14 and orth < 1e-14


@pytest.mark.parametrize("backend,block", [("torch", None), ("jacobi", None), ("jacobi", 3)])
def test_spectral_eigh_goes_through_dispatch(gen, backend, block):
    x = _random_sym((4,), 9, gen)
    with D.spectral_backend(backend, jacobi_block=block):
        ew, rec, orth = _errors(x, *S.eigh(x))
        e = S.eigvalsh(x)
    assert ew < 1e-14 and rec < 1e-14 and orth < 1e-14
    assert (e - torch.linalg.eigvalsh(x)).abs().max() < 1e-13


def test_spectral_functions_use_the_forced_path(gen):
    # canary: zero Jacobi sweeps leave the (sorted) diagonal as "eigenvalues", so the results
    # show which solver spectral.eigh / eigvalsh / logm really called
    x = _random_sym((2,), 5, gen) + 10 * torch.eye(5, dtype=F64)
    diag = torch.sort(x.diagonal(dim1=-2, dim2=-1), dim=-1)[0]
    with D.spectral_backend("jacobi", jacobi_sweeps=0):
        assert torch.equal(S.eigh(x)[0], diag) and torch.equal(S.eigvalsh(x), diag)
        lg = S.logm(x)
    assert torch.allclose(lg, torch.diag_embed(x.diagonal(dim1=-2, dim2=-1).log()))
    assert not torch.allclose(S.eigvalsh(x), diag)  # outside the block: the real solver again


# --- spectral functions and Daleckii–Krein gradients on the forced paths ------------------------
@pytest.mark.parametrize("block", [1, 3])
def test_matrix_functions_jacobi_vs_torch(gen, block):
    x = _from_spectrum(torch.logspace(-6, 0, 10, dtype=F64), gen)  # cond 1e6
    g = _random_sym((3,), 10, gen)
    outs = {}
    for backend in ("torch", "jacobi"):
        with D.spectral_backend(backend, jacobi_block=block):
            xr = x.clone().requires_grad_(True)
            vals = [S.logm(xr), *S.sqrtm_invsqrtm(xr)]
            (grad,) = torch.autograd.grad(sum((f * g).sum() for f in vals), xr)
        outs[backend] = (vals, grad)
    for a, b in zip(outs["jacobi"][0], outs["torch"][0], strict=True):
        assert (torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b)).max() < 1e-8
    ga, gb = outs["jacobi"][1], outs["torch"][1]
    assert (torch.linalg.matrix_norm(ga - gb) / torch.linalg.matrix_norm(gb)).max() < 1e-6


def test_gradients_at_ties_on_jacobi_path(gen):
    n = 6
    ties = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 5.0], dtype=F64)
    g = _random_sym((2,), n, gen)
    for x in (torch.eye(n, dtype=F64).expand(2, n, n), _from_spectrum(ties, gen, (2,))):
        grads = {}
        for backend in ("torch", "jacobi"):
            with D.spectral_backend(backend):
                xr = x.clone().requires_grad_(True)
                (grads[backend],) = torch.autograd.grad((S.logm(xr) * g).sum(), xr)
        assert torch.isfinite(grads["jacobi"]).all()
        assert torch.allclose(grads["jacobi"], grads["torch"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("block", [1, 2])
def test_gradcheck_jacobi_path(gen, block):
    x = _from_spectrum(torch.tensor([0.5, 1.0, 2.0, 4.0, 7.0], dtype=F64), gen, (2,)).requires_grad_(True)
    with D.spectral_backend("jacobi", jacobi_block=block):
        assert gradcheck(S.logm, (x,))
        assert gradcheck(lambda a: S.sym_functions(a, ["sqrt", "invsqrt"]), (x,))
        if block == 1:
            assert gradgradcheck(S.logm, (x,))


def test_frechet_mean_on_the_jacobi_path(gen):
    from riemlearn.manifolds import SPD
    from riemlearn.stats.frechet_mean import frechet_mean

    m = SPD(6)
    x = m.random_point(12, generator=gen, dtype=F64)
    ref = frechet_mean(x, m)
    with D.spectral_backend("jacobi", jacobi_block=2):
        mean = frechet_mean(x, m)
    assert torch.allclose(mean, ref, rtol=0, atol=1e-12)


# --- eigensolver-free matrix functions -------------------------------------------------------------
def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return (torch.linalg.matrix_norm((a - b).double()) / torch.linalg.matrix_norm(b.double())).max().item()


@pytest.mark.parametrize("method", ["newton_schulz", "denman_beavers"])
@pytest.mark.parametrize("cond", [1.0, 1e3, 1e6])
def test_iterative_sqrt_invsqrt_float64(gen, method, cond):
    x = _from_spectrum(torch.logspace(0, math.log10(cond), 12, dtype=F64), gen)
    s, i = M.sqrtm_invsqrtm_iterative(x, method=method)
    rs, ri = S.sqrtm_invsqrtm(x)
    assert _rel(s, rs) < 1e-12 and _rel(i, ri) < 1e-10, (_rel(s, rs), _rel(i, ri))
    assert torch.allclose(M.sqrtm_iterative(x, method=method), s)
    assert torch.allclose(M.invsqrtm_iterative(x, method=method), i)


@pytest.mark.parametrize("cond", [1.0, 30.0, 1e3, 1e6])
def test_iterative_logm_float64(gen, cond):
    x = 3.0 * _from_spectrum(torch.logspace(0, math.log10(cond), 12, dtype=F64), gen)
    err = (torch.linalg.matrix_norm(M.logm_iterative(x) - S.logm(x)) / max(1.0, math.log(3 * cond))).max()
    assert err < 1e-12, err


def test_iterative_float32_targets(gen):
    x = _from_spectrum(torch.logspace(0, 3, 16, dtype=F64), gen).to(F32)  # at MAX_COND[float32]
    xd = x.double()
    s, i = M.sqrtm_invsqrtm_iterative(x)
    assert _rel(s, S.sqrtm(xd)) < 5e-6 and _rel(i, S.invsqrtm(xd)) < 5e-5
    assert _rel(M.logm_iterative(x), S.logm(xd)) < 2e-5


def test_iterative_gradients_match_daleckii_krein(gen):
    x = _from_spectrum(torch.logspace(0, 3, 8, dtype=F64), gen, (2,))
    g = _random_sym((2,), 8, gen)
    pairs = [(M.logm_iterative, S.logm), (M.sqrtm_iterative, S.sqrtm), (M.invsqrtm_iterative, S.invsqrtm)]
    for f, ref in pairs:
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        (ga,) = torch.autograd.grad((f(a) * g).sum(), a)
        (gb,) = torch.autograd.grad((ref(b) * g).sum(), b)
        assert _rel(ga, gb) < 1e-10


def test_iterative_guard_fallback_and_errors(gen):
    x = _from_spectrum(torch.logspace(0, 9, 8, dtype=F64), gen)  # cond 1e9 > MAX_COND
    assert float(M.condition_estimate(x).min()) > 1e8
    assert torch.allclose(M.logm_iterative(x), S.logm(x), rtol=0, atol=1e-12)  # fallback = spectral
    with pytest.raises(ValueError, match="ill-conditioned"):
        M.sqrtm_invsqrtm_iterative(x, fallback=False)
    not_pd = torch.diag(torch.tensor([1.0, -1.0, 2.0], dtype=F64))
    assert math.isinf(float(M.condition_estimate(not_pd)))
    with pytest.raises(ValueError):
        M.logm_iterative(not_pd, fallback=False)
    with pytest.raises(ValueError, match="method"):
        M.sqrtm_invsqrtm_iterative(torch.eye(3, dtype=F64), method="pade")
    with pytest.raises(ValueError, match="shape"):
        M.logm_iterative(torch.ones(3, dtype=F64))
    est = M.condition_estimate(_from_spectrum(torch.logspace(0, 4, 10, dtype=F64), gen))
    assert torch.allclose(est, torch.full_like(est, 1e4), rtol=0.05)


# --- CUDA (skipped without a GPU) -----------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [F32, F64])
def test_cuda_auto_path_large_n(dtype):
    gen = torch.Generator().manual_seed(0)
    x = _random_sym((64,), 64, gen)
    xc = x.to("cuda", dtype)
    assert D.choose_path(xc) == "jacobi"
    w, v = S.eigh(xc)
    ew, rec, orth = _errors(x.to(dtype), w.cpu(), v.cpu())
    tol = 1e-5 if dtype == F32 else 1e-13
    assert ew < tol and rec < 10 * tol and orth < 10 * tol


def test_host_path_is_host_lapack():
    # CPU stand-in for the CUDA host path: the same LAPACK results, on the input's device.
    x = _random_sym((2,), 9, torch.Generator().manual_seed(3))
    w, v = D._host_eigh(x, True)
    w0, v0 = torch.linalg.eigh(x)
    assert torch.equal(w, w0) and torch.equal(v, v0)
    assert torch.equal(D._host_eigh(x, False)[0], torch.linalg.eigvalsh(x))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape", [(22,), (2, 8), (4, 64)])
def test_cuda_host_path_small_batches(dtype, shape):
    gen = torch.Generator().manual_seed(4)
    *batch, n = shape
    x = _random_sym(tuple(batch), n, gen).to("cuda", dtype)
    assert D.choose_path(x) == "host"
    w, v = S.eigh(x)
    assert w.device == x.device and v.device == x.device and w.dtype == dtype
    w0, v0 = torch.linalg.eigh(x.cpu())
    assert torch.equal(w.cpu(), w0) and torch.equal(v.cpu(), v0)
    assert torch.equal(S.eigvalsh(x).cpu(), torch.linalg.eigvalsh(x.cpu()))
    with D.spectral_backend("torch"):
        assert D.choose_path(x) == "torch"


@pytest.mark.cuda
@pytest.mark.parametrize("block", [1, 16])
def test_cuda_jacobi_matches_cpu_eigh(block):
    gen = torch.Generator().manual_seed(1)
    x = _random_sym((32,), 48, gen)
    ew, rec, orth = _errors(x, *(t.cpu() for t in eigh_jacobi(x.cuda(), block=block)))
    assert ew < 1e-13 and rec < 1e-13 and orth < 1e-13


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [F32, F64])
def test_cuda_huge_batch_is_chunked(dtype):
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(100000, 22, 22, generator=gen, dtype=dtype).cuda()
    x = a @ a.mT / 22 + 0.1 * torch.eye(22, device="cuda", dtype=dtype)
    w, v = S.eigh(x)  # one cuSOLVER call on this batch fails (issue 9); chunks must not
    assert torch.isfinite(w).all()
    idx = torch.arange(0, 100000, 997, device="cuda")
    rec = (v[idx] * w[idx].unsqueeze(-2)) @ v[idx].mT - x[idx]
    assert rec.abs().max() < (1e-4 if dtype == F32 else 1e-12)
