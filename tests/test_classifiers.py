"""MDM / FgMDM: agreement with pyRiemann, batched class means, numpy/torch, pipelines, errors."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD
from riemlearn.stats.classifiers import MDM, FgMDM, class_means, distances_to_means
from riemlearn.stats.covariance import Covariances
from riemlearn.stats.datasets import make_eeg
from riemlearn.stats.frechet_mean import frechet_mean

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def data():
    X, y = make_eeg(72, 5, 128, 3, sfreq=128.0, random_state=0, class_sep=0.8, as_numpy=True)
    keep = np.r_[np.nonzero(y == 0)[0][:14], np.nonzero(y != 0)[0]]  # unequal class sizes
    X, y = X[keep], y[keep]
    return Covariances("oas").fit_transform(X), y


def _pyriemann():
    pytest.importorskip("pyriemann")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyriemann.classification as pc
    return pc


@pytest.mark.parametrize("metric,peer", [("affine_invariant", "riemann"), ("log_euclidean", "logeuclid")])
def test_mdm_matches_pyriemann(data, metric, peer):
    C, y = data
    ours = MDM(metric=metric).fit(C, y)
    ref = _pyriemann().MDM(metric=peer).fit(C, y)
    # pyRiemann's Karcher mean stops at tol 1e-8 (on the step), ours converges further.
    np.testing.assert_allclose(ours.covmeans_, ref.covmeans_, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(ours.transform(C), ref.transform(C), atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(C), ref.predict_proba(C), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(C), ref.predict(C))


@pytest.mark.parametrize("metric", ["affine_invariant", "log_euclidean", "log_cholesky", "bures_wasserstein"])
def test_batched_class_means_and_distances(data, metric):
    C, y = data
    t = torch.from_numpy(C)
    m = SPD(metric=metric)
    means = class_means(t, torch.from_numpy(y), 3, m)
    for k in range(3):
        alone = frechet_mean(t[torch.from_numpy(y == k)], m)
        torch.testing.assert_close(means[k], alone, atol=1e-7, rtol=1e-7)
    d2 = distances_to_means(t, means, m.metric)
    ref = m.dist(t[:, None], means[None]) ** 2
    torch.testing.assert_close(d2, ref, atol=1e-8, rtol=1e-7)


def test_sample_weight_equals_duplication(data):
    C, y = data
    w = np.ones(len(y))
    w[:5] = 2.0
    a = MDM().fit(C, y, sample_weight=w)
    b = MDM().fit(np.concatenate([C, C[:5]]), np.concatenate([y, y[:5]]))
    np.testing.assert_allclose(a.covmeans_, b.covmeans_, atol=1e-9)


def test_numpy_and_torch_in_out(data):
    C, y = data
    clf = MDM().fit(C, y)
    assert isinstance(clf.covmeans_, np.ndarray)
    p = clf.predict(C)
    assert isinstance(p, np.ndarray) and p.dtype == y.dtype
    t = torch.from_numpy(C).float()
    clf_t = MDM().fit(t, torch.from_numpy(y))
    assert isinstance(clf_t.covmeans_, torch.Tensor) and clf_t.covmeans_.dtype == torch.float32
    pt = clf_t.predict(t)
    assert isinstance(pt, torch.Tensor)
    assert (pt.numpy() == p).mean() > 0.95
    proba = clf_t.predict_proba(t)
    assert proba.dtype == torch.float32
    torch.testing.assert_close(proba.sum(1), torch.ones(len(y)))
    # fitted on tensors, used on numpy (and back): the fitted means follow the input
    np.testing.assert_array_equal(clf_t.predict(C), pt.numpy())
    # string labels come back as strings
    names = np.array(["feet", "left", "right"])[y]
    assert set(MDM().fit(C, names).predict(C)) <= set(names)


def test_pipelines_and_cross_validation():
    from riemlearn.stats.tangent_space import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    X, y = make_eeg(60, 4, 128, 2, random_state=1, class_sep=1.0, as_numpy=True)
    for pipe in (make_pipeline(Covariances("oas"), MDM()),
                 make_pipeline(Covariances("oas"), FgMDM()),
                 make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression())):
        assert cross_val_score(pipe, X, y, cv=3).mean() > 0.75
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    assert cross_val_score(make_pipeline(Covariances("lwf"), MDM()), Xt, yt, cv=3).mean() > 0.75


def test_fgmdm(data):
    C, y = data
    clf = FgMDM().fit(C, y)
    d = C.shape[-1] * (C.shape[-1] + 1) // 2
    P = clf.projector_
    assert P.shape == (d, d)
    np.testing.assert_allclose(P @ P, P, atol=1e-10)  # an orthogonal projector
    assert np.linalg.matrix_rank(P, tol=1e-8) == 2  # n_classes - 1 discriminant directions
    assert clf.score(C, y) > 0.6
    assert clf.predict_proba(C).shape == (len(y), 3)


def test_bad_input_errors(data):
    C, y = data
    bad = C.copy()
    bad[4] = -np.eye(C.shape[-1])
    with pytest.raises(ValueError, match=r"not positive definite.*trial 4 with smallest eigenvalue -1"):
        MDM().fit(bad, y)
    nan = C.copy()
    nan[7, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN/inf.*trial 7"):
        MDM().fit(nan, y)
    with pytest.raises(ValueError, match=r"shape \(n_matrices, n_channels, n_channels\)"):
        MDM().fit(C[:, :, :-1], y)
    with pytest.raises(ValueError, match="1 class"):
        MDM().fit(C, np.zeros(len(y)))
    with pytest.raises(ValueError, match="labels but X has"):
        MDM().fit(C, y[:-1])
    with pytest.raises(ValueError, match="metric"):
        MDM(metric="nope").fit(C, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MDM().predict(C)
    clf = MDM().fit(C, y)
    with pytest.raises(ValueError, match="channels"):
        clf.predict(C[:, :-1, :-1])


API_CHECKS = (
    "check_parameters_default_constructible", "check_no_attributes_set_in_init",
    "check_get_params_invariance", "check_set_params", "check_estimator_cloneable",
    "check_estimator_repr", "check_estimators_unfitted", "check_transformers_unfitted",
    "check_mixin_order", "check_valid_tag_types", "check_estimator_tags_renamed",
    "check_do_not_raise_errors_in_init_or_set_params",
)


def _estimators():
    from riemlearn.stats import Covariances, Recenter, Shrinkage, TangentSpace

    return [Covariances("oas", regularize=1e-6), Shrinkage(0.2), MDM(metric="log_euclidean"), FgMDM(),
            TangentSpace(), Recenter(rescale=True)]


def test_sklearn_data_free_api_checks():
    # scikit-learn's data-based checks feed 2-D arrays; these estimators need (n, c, c) SPD or
    # (n, c, t) trials (tag three_d_array), so check_estimator runs only the data-free checks.
    import sklearn.utils.estimator_checks as ec

    for est in _estimators():
        for name in API_CHECKS:
            getattr(ec, name)(type(est).__name__, est)
        report = ec.check_estimator(est, on_fail=None)
        assert all(r["status"] != "failed" for r in report)


def test_fit_returns_self_clone_and_pickle(data):
    from sklearn.base import clone

    C, y = data
    for est in (MDM(metric="log_euclidean"), FgMDM()):
        fitted = clone(est).fit(C, y)
        assert fitted.fit(C, y) is fitted  # fit returns self
        assert clone(fitted).get_params() == est.get_params() and not hasattr(clone(fitted), "classes_")
        again = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_array_equal(again.predict(C), fitted.predict(C))


def test_cached_inverse_cholesky_matches_and_follows_means(data):
    C, y = data
    clf = MDM().fit(C, y)
    ref = distances_to_means(torch.from_numpy(C), torch.from_numpy(clf.covmeans_),
                             SPD(metric="affine_invariant").metric).sqrt().numpy()
    np.testing.assert_allclose(clf.transform(C), ref, rtol=1e-12, atol=1e-12)
    clf.covmeans_ = np.stack([C[0]] * len(clf.classes_))  # replaced by hand: cache not used
    np.testing.assert_allclose(clf.transform(C[:1]), 0.0, atol=1e-6)
