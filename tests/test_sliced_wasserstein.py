"""Sliced-Wasserstein on SPD matrices: exact 1-D OT, closed cases, kernel as an SVM Gram matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD
from riemlearn.manifolds.spectral import expm, logm, sym
from riemlearn.stats.sliced_wasserstein import (
    random_symmetric_directions,
    spd_sliced_wasserstein,
    spd_sliced_wasserstein_kernel,
    wasserstein_1d,
)
from scipy.stats import wasserstein_distance

D = torch.float64


def test_wasserstein_1d_matches_scipy(gen):
    u = torch.randn(7, generator=gen, dtype=D)
    v = torch.randn(11, generator=gen, dtype=D) + 0.5
    a = torch.rand(7, generator=gen, dtype=D)
    b = torch.rand(11, generator=gen, dtype=D)
    ref = wasserstein_distance(u.numpy(), v.numpy(), a.numpy(), b.numpy())
    assert float(wasserstein_1d(u, v, a, b, p=1)) == pytest.approx(ref, rel=1e-12)
    # p = 2, equal sizes: sorted differences; unequal: same via duplication of samples
    x = torch.randn(6, generator=gen, dtype=D)
    y = torch.randn(3, generator=gen, dtype=D)
    ref2 = float(((torch.sort(x)[0] - torch.sort(y.repeat_interleave(2))[0]) ** 2).mean())
    assert float(wasserstein_1d(x, y, p=2)) == pytest.approx(ref2, rel=1e-12)


def test_directions_are_unit_symmetric(gen):
    a = random_symmetric_directions(4, 50, gen)
    assert torch.allclose(a, a.mT) and torch.allclose(a.norm(dim=(-2, -1)), torch.ones(50, dtype=D))


def test_one_by_one_matrices_reduce_to_wasserstein_of_logs(gen):
    x = torch.rand(9, 1, 1, generator=gen, dtype=D) + 0.1
    y = torch.rand(5, 1, 1, generator=gen, dtype=D) * 3 + 0.1
    sw = spd_sliced_wasserstein(x, y, 10, generator=gen, p=1)  # directions are ±1
    ref = wasserstein_distance(x.log().flatten().numpy(), y.log().flatten().numpy())
    assert float(sw) == pytest.approx(ref, rel=1e-12)


def test_log_translation_is_exact_per_direction(gen):
    m = SPD(3)
    x = m.random_point(20, generator=gen, dtype=D)
    b = sym(torch.randn(3, 3, generator=gen, dtype=D))
    y = expm(logm(x) + b)
    a = random_symmetric_directions(3, 30, gen)
    for p in (1.0, 2.0):
        sw = spd_sliced_wasserstein(x, y, directions=a, p=p)
        ref = (a * b).sum((-2, -1)).abs().pow(p).mean().pow(1 / p)
        assert float(sw) == pytest.approx(float(ref), rel=1e-10)
    # symmetric, zero on identical sets, batched over leading dims
    xs = torch.stack([x, y])
    ys = torch.stack([y, y])
    d = spd_sliced_wasserstein(xs, ys, directions=a)
    assert float(d[1]) == 0.0
    assert float(d[0]) == pytest.approx(float(spd_sliced_wasserstein(y, x, directions=a)), rel=1e-12)


def test_kernel_is_psd_and_separates_classes_in_an_svm(gen):
    from sklearn.svm import SVC

    m = SPD(3)
    c0 = m.random_point(generator=gen, dtype=D)
    c1 = m.exp(c0, 0.8 * m.random_tangent(c0, generator=gen))

    def sample(c, k):
        base = c.expand(k, 15, 3, 3).contiguous()
        return m.exp(base, 0.4 * m.random_tangent(base, generator=gen))

    train = torch.cat([sample(c0, 6), sample(c1, 6)]).numpy()
    test = torch.cat([sample(c0, 4), sample(c1, 4)]).numpy()
    y_train, y_test = np.repeat([0, 1], 6), np.repeat([0, 1], 4)
    k_train = spd_sliced_wasserstein_kernel(train, n_projections=100,
                                            generator=torch.Generator().manual_seed(5))
    assert isinstance(k_train, np.ndarray) and k_train.shape == (12, 12)
    assert np.allclose(k_train, k_train.T) and np.linalg.eigvalsh(k_train).min() > -1e-10
    k_test = spd_sliced_wasserstein_kernel(test, train, n_projections=100,
                                           generator=torch.Generator().manual_seed(5))
    clf = SVC(kernel="precomputed").fit(k_train, y_train)
    assert (clf.predict(k_test) == y_test).all()
    # distributions of different sizes (padded path) agree with the pairwise function
    dists = [torch.from_numpy(train[0]), torch.from_numpy(train[7][:9])]
    dm = spd_sliced_wasserstein_kernel(dists, n_projections=40, generator=torch.Generator().manual_seed(2),
                                       return_distance=True)
    a = random_symmetric_directions(3, 40, torch.Generator().manual_seed(2))
    ref = spd_sliced_wasserstein(dists[0], dists[1], directions=a)
    assert float(dm[0, 1]) == pytest.approx(float(ref), rel=1e-10) and float(dm[0, 0]) == 0.0


def test_bad_input(gen):
    x = SPD(3).random_point(4, generator=gen, dtype=D)
    with pytest.raises(ValueError, match="p must be"):
        spd_sliced_wasserstein(x, x, 5, p=0.5)
    with pytest.raises(ValueError, match="different sizes"):
        spd_sliced_wasserstein(x, SPD(2).random_point(4, generator=gen, dtype=D), 5)
    with pytest.raises(ValueError, match="NaN"):
        spd_sliced_wasserstein(x, torch.full_like(x, float("nan")), 5)
