"""TangentSpace and Recenter: pyRiemann agreement, isometry, Karcher condition, round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD
from riemlearn.stats.covariance import Covariances
from riemlearn.stats.datasets import make_eeg
from riemlearn.stats.frechet_mean import frechet_mean
from riemlearn.stats.recentering import Recenter, recenter
from riemlearn.stats.tangent_space import TangentSpace, from_tangent, to_tangent

pytest.importorskip("sklearn")

METRICS = ["affine_invariant", "log_euclidean", "log_cholesky"]


@pytest.fixture(scope="module")
def covs():
    X, y = make_eeg(40, 4, 128, 2, random_state=2, as_numpy=True)
    return Covariances("oas").fit_transform(X), y


def test_matches_pyriemann_affine_invariant(covs):
    C, _ = covs
    pytest.importorskip("pyriemann")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyriemann.tangentspace import TangentSpace as PyrTS
    ours = TangentSpace().fit(C)
    ref = PyrTS(metric="riemann").fit(C)
    np.testing.assert_allclose(ours.reference_, ref.reference_, atol=1e-7, rtol=1e-7)
    np.testing.assert_allclose(ours.transform(C), ref.transform(C), atol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_isometry_roundtrip_and_karcher_condition(covs, metric):
    C, _ = covs
    ts = TangentSpace(metric=metric).fit(C)
    T = ts.transform(C)
    m = SPD(metric=metric)
    ref = torch.from_numpy(ts.reference_)
    d = m.dist(ref.expand(len(C), -1, -1), torch.from_numpy(C)).numpy()
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), d, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ts.inverse_transform(T), C, rtol=1e-9, atol=1e-10)
    # at the Fréchet mean the mean of the log maps (the Riemannian gradient) vanishes
    assert np.abs(T.mean(0)).max() < 1e-7


def test_generic_path_matches_fast_path(covs):
    from riemlearn.manifolds.spd_affine_invariant import AffineInvariant

    C, _ = covs
    t = torch.from_numpy(C[:5])
    P = torch.from_numpy(C[5])
    fast = to_tangent(t, P, "affine_invariant")
    # the definition through the metric object: identity coordinates of Γ_{P→I} Log_P(C)
    m = SPD(metric=AffineInvariant())
    Pb, eye = P.expand_as(t), torch.eye(4, dtype=t.dtype).expand_as(t)
    generic = m.metric.identity_coords(m.metric.transport(Pb, eye, m.log(Pb, t)))
    iu = torch.triu_indices(4, 4)
    w = torch.where(iu[0] == iu[1], 1.0, 2.0).to(t.dtype).sqrt()
    torch.testing.assert_close(fast, generic[..., iu[0], iu[1]] * w)
    torch.testing.assert_close(from_tangent(fast, P), t)


def test_tsupdate_and_torch_io(covs):
    C, _ = covs
    t = torch.from_numpy(C).float()
    ts = TangentSpace(tsupdate=True).fit(t[:20])
    out = ts.transform(t[20:])
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (20, 10)
    assert float(out.double().mean(0).abs().max()) < 1e-4  # reference re-estimated on t[20:]
    with pytest.raises(ValueError, match="features"):
        ts.inverse_transform(np.zeros((3, 7)))


def test_recenter_domains(covs):
    C, _ = covs
    g = np.repeat(["a", "b"], 20)
    shifted = C.copy()
    A = np.diag([1.0, 2.0, 3.0, 0.5])
    shifted[g == "b"] = A @ C[g == "b"] @ A  # session drift: a congruence
    m = SPD(4)
    for rescale in (False, True):
        rc = Recenter(rescale=rescale).fit(shifted, groups=g)
        Z = torch.from_numpy(rc.transform(shifted, groups=g))
        for k in ("a", "b"):
            sel = torch.from_numpy(g == k)
            mean = frechet_mean(Z[sel], m)
            torch.testing.assert_close(mean, torch.eye(4, dtype=mean.dtype), atol=1e-7, rtol=0)
            if rescale:
                disp = (m.dist(torch.eye(4, dtype=Z.dtype).expand(20, 4, 4), Z[sel]) ** 2).mean()
                assert abs(float(disp) - 1.0) < 1e-6
    # affine invariance: the drift is undone up to a rotation (same spectra, same geometry)
    rc = Recenter().fit(shifted, groups=g)
    Z = rc.transform(shifted, groups=g)
    Z0 = Recenter().fit_transform(C, groups=g)
    np.testing.assert_allclose(np.linalg.eigvalsh(Z), np.linalg.eigvalsh(Z0), atol=1e-7)
    # a new domain is re-centered by its own mean; no groups → one new domain
    Znew = rc.transform(shifted[g == "b"], groups=np.repeat("c", 20))
    np.testing.assert_allclose(Znew, Z[g == "b"], atol=1e-7)
    np.testing.assert_allclose(rc.transform(shifted[g == "b"]), Z[g == "b"], atol=1e-7)


def test_recenter_log_euclidean_function(covs):
    C, _ = covs
    t = torch.from_numpy(C)
    out = recenter(t, t[0], "log_euclidean")
    torch.testing.assert_close(out[0], torch.eye(4, dtype=t.dtype))


def test_recenter_in_a_pipeline_with_groups():
    from riemlearn.stats import MDM
    from sklearn.pipeline import Pipeline

    X, y = make_eeg(80, 4, 128, 2, random_state=0, class_sep=1.0, as_numpy=True)
    g = np.repeat([0, 1], 40)
    X[g == 1] *= np.array([1.0, 2.0, 3.0, 0.5])[None, :, None]  # second session: gain drift
    pipe = Pipeline([("cov", Covariances("oas")), ("recenter", Recenter()), ("mdm", MDM())])
    pipe.fit(X[:60], y[:60], recenter__groups=g[:60])  # session 0 and part of session 1
    assert pipe.score(X[60:], y[60:]) > 0.7  # the rest of session 1 as one new domain


def test_cached_whitener_matches_and_follows_reference(covs):
    C, _ = covs
    ts = TangentSpace().fit(C[:20])
    expected = to_tangent(torch.from_numpy(C[20:]), torch.from_numpy(ts.reference_)).numpy()
    np.testing.assert_allclose(ts.transform(C[20:]), expected, rtol=0, atol=1e-12)
    ts.reference_ = C[0].copy()  # replaced by hand: the cached P^{-1/2} must not be used
    np.testing.assert_allclose(ts.transform(C[:1]), 0.0, atol=1e-10)
