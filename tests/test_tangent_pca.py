"""TangentPCA: equals scikit-learn PCA on Euclidean data; variance bookkeeping on SPD (AIM);
metric-orthonormal coordinates; numpy/torch I/O; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD, Euclidean, Grassmann, Lorentz, Sphere
from riemlearn.stats.tangent_pca import TangentPCA, tangent_basis
from riemlearn.stats.tangent_space import to_tangent
from sklearn.decomposition import PCA

F64 = torch.float64


def test_euclidean_equals_sklearn_pca():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)) @ np.diag([4.0, 2.5, 1.5, 1.0, 0.3, 0.1]) + 3.0
    ours = TangentPCA(n_components=4, manifold=Euclidean(6)).fit(X)
    ref = PCA(n_components=4).fit(X)
    assert isinstance(ours.components_, np.ndarray)
    # same directions up to sign, same scores up to sign, same reconstructions
    cos = np.abs((ours.components_ * ref.components_).sum(1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-12)
    signs = np.sign((ours.components_ * ref.components_).sum(1))
    np.testing.assert_allclose(ours.transform(X) * signs, ref.transform(X), atol=1e-12)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)),
                               ref.inverse_transform(ref.transform(X)), atol=1e-12)
    # population (÷N) vs sample (÷(N−1)) variances
    np.testing.assert_allclose(ours.explained_variance_ * 40 / 39, ref.explained_variance_, rtol=1e-12)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-12)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-12)
    np.testing.assert_allclose(ours.reference_, X.mean(0), atol=1e-12)


def test_spd_aim_variance_sums_to_frechet_variance(gen):
    m = SPD(4)
    X = m.random_point(30, generator=gen, dtype=F64)
    full = TangentPCA(manifold=m).fit(X)
    assert full.n_components_ == 10
    mean = full.reference_
    d = m.dist(mean.expand_as(X), X)
    total = float((d * d).mean())
    assert abs(float(full.explained_variance_.sum()) - total) < 1e-10 * total
    assert abs(float(full.explained_variance_ratio_.sum()) - 1.0) < 1e-12
    assert bool((full.explained_variance_[:-1] >= full.explained_variance_[1:]).all())
    # the spectrum equals the PCA spectrum of the whitened vech coordinates (√2 off-diagonals)
    v = to_tangent(X, mean)  # vech(logm(P^-1/2 X P^-1/2)), off-diagonals × √2
    lam = torch.linalg.eigvalsh(v.mT @ v / X.shape[0]).flip(0)
    torch.testing.assert_close(full.explained_variance_, lam, rtol=1e-10, atol=1e-13)
    # full reconstruction is exact; 2 components reconstruct the projection of the logs
    torch.testing.assert_close(full.inverse_transform(full.transform(X)), X, rtol=1e-9, atol=1e-10)
    two = TangentPCA(2, m).fit(X)
    assert two.transform(X).shape == (30, 2)
    comps = two.components_
    g = m.inner(mean.expand(2, 2, 4, 4), comps.unsqueeze(1).expand(2, 2, 4, 4),
                comps.unsqueeze(0).expand(2, 2, 4, 4))
    torch.testing.assert_close(g, torch.eye(2, dtype=F64), atol=1e-10, rtol=0)


@pytest.mark.parametrize("m", [SPD(3, metric="log_cholesky"), SPD(3, metric="bures_wasserstein"),
                               Sphere(4), Grassmann(5, 2), Lorentz(0.5, n=3)],
                         ids=lambda m: repr(m)[:24])
def test_tangent_basis_orthonormal_and_isometric(m, gen):
    X = m.random_point(6, generator=gen, dtype=F64)
    if isinstance(m, Sphere):  # keep the data in a hemisphere
        X = m.project_point(X + 2.0 * torch.tensor([1.0, 0, 0, 0], dtype=F64))
    if isinstance(m, Lorentz):
        X = m.project_point(0.3 * X)
    ref = X[0]
    basis, coords = tangent_basis(ref, m)
    k = basis.shape[0]
    rb = ref.expand_as(basis)
    g = m.inner(rb.unsqueeze(1).expand((k,) + rb.shape), basis.unsqueeze(1).expand((k,) + rb.shape),
                basis.unsqueeze(0).expand((k,) + rb.shape))
    torch.testing.assert_close(g, torch.eye(k, dtype=F64), atol=1e-9, rtol=0)
    u = m.log(ref.expand_as(X), X)
    c = u.reshape(6, -1) @ coords.mT
    torch.testing.assert_close(c.norm(dim=-1), m.norm(ref.expand_as(u), u), atol=1e-9, rtol=1e-9)
    pca = TangentPCA(manifold=m).fit(X)
    assert float(m.dist(pca.inverse_transform(pca.transform(X)), X).max()) < 1e-7


def test_torch_in_torch_out_and_given_reference(gen):
    m = Sphere(5)
    pole = torch.tensor([1.0, 0, 0, 0, 0], dtype=F64)
    X = m.project_point(pole + 0.3 * torch.randn(25, 5, generator=gen, dtype=F64))
    pca = TangentPCA(2, m, reference=pole).fit(X)
    assert isinstance(pca.transform(X), torch.Tensor)
    torch.testing.assert_close(pca.reference_, pole)
    # components are tangent at the pole; weights act like repetition
    assert float(pca.components_[:, 0].abs().max()) < 1e-12
    w = torch.ones(25, dtype=F64)
    w[0] = 3.0
    rep = torch.cat([X, X[:1], X[:1]])
    a = TangentPCA(2, m, reference=pole).fit(X, sample_weight=w)
    b = TangentPCA(2, m, reference=pole).fit(rep)
    torch.testing.assert_close(a.explained_variance_, b.explained_variance_)


def test_bad_input(gen):
    m = SPD(3)
    X = m.random_point(5, generator=gen, dtype=F64)
    with pytest.raises(ValueError, match="n_components"):
        TangentPCA(7, m).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        TangentPCA(0, m).fit(X)
    bad = X.clone()
    bad[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        TangentPCA(2, m).fit(bad)
    notpd = X.clone()
    notpd[2] = -notpd[2]
    with pytest.raises(ValueError, match=r"X\[2\]"):
        TangentPCA(2, m).fit(notpd)
    with pytest.raises(ValueError, match="shape"):
        TangentPCA(2, m).fit(X[:, :2])
    with pytest.raises(ValueError, match="manifold"):
        TangentPCA(2, manifold=3).fit(X)
    pca = TangentPCA(2, m).fit(X)
    with pytest.raises(ValueError, match="shape"):
        pca.inverse_transform(torch.zeros(4, 3, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        pca.transform(SPD(4).random_point(2, generator=gen, dtype=F64))


@pytest.mark.cuda
def test_cuda_matches_cpu(gen):
    from riemlearn.stats import BSA, PGA

    m = Sphere(4)
    X = m.project_point(torch.tensor([1.0, 0, 0, 0], dtype=F64)
                        + 0.4 * torch.randn(30, 4, generator=gen, dtype=F64))
    for est in (TangentPCA(2, m), PGA(2, m), BSA(2, m)):
        cpu = est.fit(X).transform(X)
        gpu = type(est)(**est.get_params()).fit(X.cuda()).transform(X.cuda())
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu().abs(), cpu.abs(), atol=1e-7, rtol=1e-7)
