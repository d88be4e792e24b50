"""RiemannianKMeans: planted clusters on SPD and the sphere, estimator API, numpy/torch I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD, Sphere
from riemlearn.stats.frechet_mean import frechet_mean
from riemlearn.stats.kmeans import RiemannianKMeans
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

D = torch.float64


def _planted_spd(gen, k=3, per=12, n=3):
    m = SPD(n)
    centres = m.random_point(k, generator=gen, dtype=D, cond=5.0)
    centres = centres * torch.tensor([1.0, 30.0, 900.0], dtype=D)[:k, None, None]  # far apart
    base = centres.repeat_interleave(per, 0)
    x = m.exp(base, 0.15 * m.random_tangent(base, generator=gen))
    return x, torch.arange(k).repeat_interleave(per)


def test_recovers_planted_spd_clusters_numpy_and_torch(gen):
    x, truth = _planted_spd(gen)
    km = RiemannianKMeans(n_clusters=3, random_state=0)
    labels = km.fit_predict(x.numpy())
    assert isinstance(labels, np.ndarray) and isinstance(km.cluster_centers_, np.ndarray)
    assert adjusted_rand_score(truth.numpy(), labels) == 1.0
    # centres are the Fréchet means of their clusters; inertia is the weighted sum of d²
    m = SPD()
    xs = torch.from_numpy(km.cluster_centers_)
    for j in range(3):
        ref = frechet_mean(x[torch.from_numpy(labels) == j], m)
        torch.testing.assert_close(xs[j], ref, rtol=1e-8, atol=1e-8)
    d = m.dist(xs[torch.from_numpy(labels)], x)
    assert km.inertia_ == pytest.approx(float((d * d).sum()), rel=1e-10)
    # torch in -> torch out, same clustering; predict agrees with labels_
    kt = RiemannianKMeans(n_clusters=3, random_state=0).fit(x)
    assert isinstance(kt.labels_, torch.Tensor) and isinstance(kt.cluster_centers_, torch.Tensor)
    assert adjusted_rand_score(truth.numpy(), kt.labels_.numpy()) == 1.0
    assert torch.equal(kt.predict(x), kt.labels_)
    assert kt.transform(x).shape == (36, 3)


def test_sphere_and_weights_and_reproducibility(gen):
    m = Sphere(3)
    poles = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=D)
    base = poles.repeat_interleave(10, 0)
    x = m.exp(base, 0.2 * m.random_tangent(base, generator=gen))
    km = RiemannianKMeans(n_clusters=3, manifold=m, random_state=3, n_init=2)
    labels = km.fit_predict(x)
    truth = np.repeat(np.arange(3), 10)
    assert adjusted_rand_score(truth, labels.numpy()) == 1.0
    again = RiemannianKMeans(n_clusters=3, manifold=m, random_state=3, n_init=2).fit(x)
    assert torch.equal(again.labels_, km.labels_)
    # sample weights move the centre towards the heavy point
    w = torch.ones(30, dtype=D)
    w[0] = 50.0
    kw = RiemannianKMeans(n_clusters=3, manifold=m, random_state=3).fit(x, sample_weight=w)
    j = int(kw.labels_[0])
    assert float(m.dist(kw.cluster_centers_[j], x[0])) < float(m.dist(km.cluster_centers_[j], x[0]))


def test_estimator_api_and_errors(gen):
    x, _ = _planted_spd(gen, k=2, per=4)
    km = RiemannianKMeans(n_clusters=2, manifold="log_euclidean", random_state=1)
    params = clone(km).get_params()
    assert params["n_clusters"] == 2 and params["manifold"] == "log_euclidean"
    with pytest.raises(ValueError, match="n_samples"):
        RiemannianKMeans(n_clusters=20).fit(x)
    with pytest.raises(ValueError, match="not a point"):
        RiemannianKMeans(n_clusters=2).fit(-x)
    with pytest.raises(ValueError, match="shape"):
        RiemannianKMeans(n_clusters=2).fit(x[0])
    with pytest.raises(ValueError, match="n_clusters"):
        RiemannianKMeans(n_clusters=0).fit(x)
