"""Ogita–Aishima refinement from column eigenvector guesses (``refine_eigh_columns``,
``eigh_from_guess``) and its LAPACK fallback.

References: ``torch.linalg.eigh`` / ``eigvalsh`` (LAPACK). Guesses are LAPACK's eigenvectors
rotated by a seeded orthogonal perturbation ``exp(s·K)`` (``K`` antisymmetric).
"""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds.eigh_refine import eigh_from_guess, refine_eigh_columns

F64, F32 = torch.float64, torch.float32


def _spd(gen, b, n, dtype=F64):
    a = torch.randn(b, n, 2 * n, generator=gen, dtype=F64)
    return (a @ a.mT / (2 * n) + 0.1 * torch.eye(n, dtype=F64)).to(dtype)


def _rotation(gen, b, n, scale):
    """Orthogonal ``exp(scale·K)``, ``K`` a random antisymmetric matrix (float64)."""
    z = torch.randn(b, n, n, generator=gen, dtype=F64)
    return torch.linalg.matrix_exp(scale * (z - z.mT))


def _guess(gen, a, scale):
    """LAPACK eigenvectors of ``a`` (in float64) rotated by a random orthogonal perturbation."""
    lam, q = torch.linalg.eigh(a.to(F64))
    return lam, (q @ _rotation(gen, a.shape[0], a.shape[-1], scale)).to(a.dtype)


def _errors(a, w, v):
    """(max relative eigenvalue error (sorted), orthogonality, relative reconstruction), in float64."""
    a, w, v = a.to(F64), w.to(F64), v.to(F64)
    norm = torch.linalg.matrix_norm(a)
    ew = ((w.sort(-1).values - torch.linalg.eigvalsh(a)).abs().amax(-1) / norm).max().item()
    orth = (v.mT @ v - torch.eye(a.shape[-1], dtype=F64)).abs().max().item()
    rec = (torch.linalg.matrix_norm((v * w.unsqueeze(-2)) @ v.mT - a) / norm).max().item()
    return ew, orth, rec


@pytest.mark.parametrize("n", [5, 12, 22])
@pytest.mark.parametrize("mixed", [False, True])
def test_float64_from_rotated_guess(gen, n, mixed):
    a = _spd(gen, 40, n)
    _, v0 = _guess(gen, a, 1e-2)
    w, v = eigh_from_guess(a, v0, mixed=mixed)
    assert w.shape == (40, n) and v.shape == (40, n, n) and w.dtype == v.dtype == F64
    ew, orth, rec = _errors(a, w, v)
    assert ew <= 1e-13
    assert orth <= 1e-12
    assert rec <= 1e-12
    # the refinement only moves the guess by about the perturbation (it is not a fresh basis)
    assert (v - v0).abs().max().item() < 0.5


@pytest.mark.parametrize("n", [5, 12, 22])
def test_float32_from_rotated_guess(gen, n):
    a = _spd(gen, 40, n, F32)
    _, v0 = _guess(gen, a, 1e-2)
    e32 = torch.finfo(F32).eps
    for mixed in (False, True):  # mixed has no effect on float32 input
        w, v = eigh_from_guess(a, v0, mixed=mixed)
        assert w.dtype == v.dtype == F32
        ew, orth, rec = _errors(a, w, v)
        assert ew <= 1e-5
        # float32 orthogonality of a converged refinement is ~ eps · spread/gap (gaps down to
        # ~1e-3 of the spread here): looser than LAPACK's, still ~1e-5
        assert orth <= 50 * n * e32
        assert rec <= 50 * n * e32


def test_keeps_guess_column_order(gen):
    n = 12
    a = _spd(gen, 30, n)
    lam, v0 = _guess(gen, a, 1e-3)
    perm = torch.randperm(n, generator=gen)
    assert not torch.equal(perm, torch.arange(n))
    _, _, ok = refine_eigh_columns(a, v0[..., perm], torch.finfo(F64).eps ** 0.5)
    assert bool(ok.all())  # every matrix refined: no LAPACK (sorted) fallback involved
    w, v = eigh_from_guess(a, v0[..., perm])
    norm = torch.linalg.matrix_norm(a).unsqueeze(-1)
    assert ((w - lam[..., perm]).abs() / norm).max().item() <= 1e-13
    # the columns match the permuted LAPACK eigenvectors up to sign
    q = torch.linalg.eigh(a)[1][..., perm]
    assert ((v * q).sum(-2).abs() - 1).abs().max().item() <= 1e-10
    # and A v_j = w_j v_j column by column
    assert (torch.linalg.vector_norm(a @ v - v * w.unsqueeze(-2), dim=-2) / norm).max().item() <= 1e-13


def test_quadratic_convergence(gen):
    n, b = 12, 20
    q0, _ = torch.linalg.qr(torch.randn(b, n, n, generator=gen, dtype=F64))
    lam = torch.arange(1.0, n + 1.0, dtype=F64)  # gaps 1, spread n - 1
    a = (q0 * lam) @ q0.mT
    a = (a + a.mT) / 2
    _, q = torch.linalg.eigh(a)
    v0 = q @ _rotation(gen, b, n, 1e-3)
    c = n - 1.0  # spread / gap: the constant of e_{k+1} ~ C e_k^2

    def err(v):  # per matrix: distance of the columns to LAPACK's, signs aligned
        return (v - q * torch.sign((v * q).sum(-2, keepdim=True))).abs().amax((-2, -1))

    errs = [err(v0)]
    for k in (1, 2, 3):
        w, v, ok = refine_eigh_columns(a, v0, 0.0, max_steps=k)
        assert not bool(ok.any())  # tol = 0: never declared converged
        errs.append(err(v))
    e0, e1, e2, e3 = errs
    assert bool(((e0 > 1e-3) & (e0 < 1e-1)).all())  # a real perturbation to start from
    assert bool((e1 <= c * e0 ** 2).all())  # a linear rate would need e1 / e0 < c e0 ~ 0.05
    assert bool((e2 <= c * e1 ** 2 + 1e-13).all())
    assert bool((e3 <= c * e2 ** 2 + 1e-13).all())
    assert e3.max().item() <= 1e-12
    # Rayleigh quotients of the previous step's columns: at LAPACK precision by now, in the
    # guess's (here ascending) order
    assert (w - lam).abs().max().item() <= 1e-13 * n


def _repeated(gen, b, n=5):
    """Symmetric matrices with the exactly repeated eigenvalue 1 (multiplicity 3)."""
    q, _ = torch.linalg.qr(torch.randn(b, n, n, generator=gen, dtype=F64))
    d = torch.tensor([1.0, 1.0, 1.0, 2.0, 3.0], dtype=F64)
    a = (q * d) @ q.mT
    return (a + a.mT) / 2


def test_fallback_repeated_and_far_guesses(gen):
    n, tol = 5, torch.finfo(F64).eps ** 0.5
    good = _spd(gen, 4, n)
    rep = _repeated(gen, 3, n)
    a = torch.cat([good[:2], rep, good[2:]])
    _, v0 = _guess(gen, a, 1e-2)
    v0[5:] = torch.linalg.qr(torch.randn(2, n, n, generator=gen, dtype=F64))[0]  # far-off guesses
    _, _, ok = refine_eigh_columns(a, v0, tol)
    assert ok.tolist() == [True, True, False, False, False, False, False]
    # the repeated matrices fail even from LAPACK's exact eigenvectors (a 0/0 coupling)
    assert not bool(refine_eigh_columns(rep, torch.linalg.eigh(rep)[1], tol)[2].any())

    w, v = eigh_from_guess(a, v0)
    ew, orth, rec = _errors(a, w, v)
    assert ew <= 1e-13 and orth <= 1e-12 and rec <= 1e-12
    assert torch.isfinite(w).all() and torch.isfinite(v).all()
    # matrices sent to LAPACK come back sorted ascending, the refined ones in the guess's order
    bad = ~ok
    assert bool((w[bad].diff(dim=-1) >= 0).all())
    # the well-behaved neighbours: refined, column j near LAPACK's eigenvector j
    assert (w[:2] - torch.linalg.eigvalsh(a[:2])).abs().max().item() <= 1e-13 * 10
    assert ((v[:2] * torch.linalg.eigh(a[:2])[1]).sum(-2).abs() - 1).abs().max().item() <= 1e-10
    # the whole batch as one call equals the matrices one by one (no cross-talk)
    for i in range(a.shape[0]):
        wi, vi = eigh_from_guess(a[i:i + 1], v0[i:i + 1])
        assert torch.allclose(wi[0].sort().values, w[i].sort().values, rtol=0, atol=1e-13)


def test_mixed_batch_all_far_goes_to_lapack(gen):
    n = 12
    a = _spd(gen, 6, n)
    v0 = torch.linalg.qr(torch.randn(6, n, n, generator=gen, dtype=F64))[0]
    for mixed in (False, True):
        w, v = eigh_from_guess(a, v0, mixed=mixed)
        ew, orth, rec = _errors(a, w, v)
        assert ew <= 1e-13 and orth <= 1e-12 and rec <= 1e-12


def test_leading_batch_dims(gen):
    n = 6
    a = _spd(gen, 6, n).reshape(2, 3, n, n)
    _, v0 = _guess(gen, a.reshape(6, n, n), 1e-2)
    v0 = v0.reshape(2, 3, n, n).clone()
    v0[1, 2] = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))[0]  # one fallback
    w, v = eigh_from_guess(a, v0)
    assert w.shape == (2, 3, n) and v.shape == (2, 3, n, n)
    ew, orth, rec = _errors(a.reshape(6, n, n), w.reshape(6, n), v.reshape(6, n, n))
    assert ew <= 1e-13 and orth <= 1e-12 and rec <= 1e-12
    # each entry of the batch corresponds to its own matrix
    assert torch.allclose(w.sort(-1).values, torch.linalg.eigvalsh(a), rtol=0, atol=1e-13)


@pytest.mark.parametrize("mixed", [False, True])
def test_chunks_give_the_unchunked_result(gen, monkeypatch, mixed):
    """A batch refined in chunks of 3 (last one short, one far guess for the fallback) equals
    the batch refined at once (to round-off: a chunk stops when its own matrices converged)."""
    import riemlearn.manifolds.eigh_refine as R

    a = _spd(gen, 10, 7)
    v0 = _guess(gen, a, 1e-2)[1]
    v0[4] = _rotation(gen, 1, 7, 3.0)[0]  # far: LAPACK
    w1, v1 = eigh_from_guess(a, v0, mixed=mixed)
    monkeypatch.setattr(R, "REFINE_CHUNK", 3)
    w2, v2 = eigh_from_guess(a, v0, mixed=mixed)
    torch.testing.assert_close(w2, w1, rtol=0, atol=1e-13)
    torch.testing.assert_close(v2, v1, rtol=0, atol=1e-12)
    ew, orth, rec = _errors(a, w2, v2)
    assert ew <= 1e-13 and orth <= 1e-12 and rec <= 1e-12
