"""Covariance estimators: agreement with scikit-learn / pyRiemann, the transformers' API."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from riemlearn.stats.covariance import ESTIMATORS, Covariances, Shrinkage, covariances, shrink

sk_cov = pytest.importorskip("sklearn.covariance")


@pytest.fixture
def trials():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5, 40))
    X[:, 1] += 0.8 * X[:, 0]
    X[:, 2] *= 3.0
    X += 0.3  # non-zero means: every estimator must center
    return X


def test_lwf_oas_match_sklearn(trials):
    t = torch.from_numpy(trials)
    for name, fn in (("lwf", sk_cov.ledoit_wolf), ("oas", sk_cov.oas)):
        C, s = covariances(t, name, return_shrinkage=True)
        for i, x in enumerate(trials):
            ref, ref_s = fn(x.T)
            np.testing.assert_allclose(C[i].numpy(), ref, rtol=1e-12, atol=1e-12)
            assert abs(float(s[i]) - ref_s) < 1e-12


def test_all_estimators_match_pyriemann(trials):
    pytest.importorskip("pyriemann")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyriemann.estimation import Covariances as PyrCov
    for est in ESTIMATORS:
        ours = Covariances(est).fit_transform(trials)
        ref = PyrCov(est).fit_transform(trials)
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12, err_msg=est)


def test_batched_shapes_dtype_and_shrink(trials):
    t = torch.from_numpy(trials).float().reshape(2, 3, 5, 40)
    C = covariances(t, "oas")
    assert C.shape == (2, 3, 5, 5) and C.dtype == torch.float32
    flat = covariances(t.reshape(6, 5, 40), "oas")
    torch.testing.assert_close(C.reshape(6, 5, 5), flat)
    S = shrink(C, 1.0)
    tr = C.diagonal(dim1=-2, dim2=-1).mean(-1)
    torch.testing.assert_close(S, tr[..., None, None] * torch.eye(5))


def test_covariances_numpy_in_numpy_out_torch_in_torch_out(trials):
    out = Covariances("lwf").fit(trials).transform(trials)
    assert isinstance(out, np.ndarray) and out.shape == (6, 5, 5)
    t = torch.from_numpy(trials).float()
    out_t = Covariances("lwf").fit_transform(t)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.double().numpy(), out, rtol=1e-4)


def test_regularize_makes_rank_deficient_estimate_pd():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 8, 5))  # n_times < n_channels: scm is singular
    C = Covariances("scm").fit_transform(X)
    assert np.linalg.eigvalsh(C).min() < 1e-10
    Cr = Covariances("scm", regularize=1e-3).fit_transform(X)
    lam = np.linalg.eigvalsh(Cr)
    assert lam.min() > 0.5e-3 * np.trace(C, axis1=1, axis2=2).min() / 8


def test_shrinkage_transformer():
    C = np.array([[[4.0, 2.0], [2.0, 2.0]]])
    out = Shrinkage(0.25).fit_transform(C)
    np.testing.assert_allclose(out, [[[3.75, 1.5], [1.5, 2.25]]])
    with pytest.raises(ValueError, match="shrinkage"):
        Shrinkage(1.5).fit(C)


def test_bad_inputs_have_clear_errors(trials):
    with pytest.raises(ValueError, match="estimator must be one of"):
        Covariances("nope").fit(trials)
    with pytest.raises(ValueError, match=r"shape \(n_trials, n_channels, n_times\)"):
        Covariances().fit_transform(trials[0])
    bad = trials.copy()
    bad[2, 1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN/inf .*trial 2"):
        Covariances().fit_transform(bad)
    with pytest.raises(ValueError, match="not symmetric"):
        Shrinkage().fit(np.array([[[1.0, 2.0], [0.0, 1.0]]]))


def test_sklearn_api_checks():
    from sklearn.base import clone
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    for est in (Covariances("oas", regularize=1e-6), Shrinkage(0.2)):
        name = type(est).__name__
        check_parameters_default_constructible(name, est)
        check_no_attributes_set_in_init(name, est)
        check_get_params_invariance(name, est)
        check_set_params(name, est)
        c = clone(est)
        assert c.get_params() == est.get_params() and c is not est
        assert pickle.loads(pickle.dumps(est)).get_params() == est.get_params()


def test_import_without_sklearn_and_clear_error():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import riemlearn.stats as s\n"
        "X, _ = s.make_eeg(4, 3, 64, random_state=0)\n"
        "assert s.covariances(X, 'oas').shape == (4, 3, 3)\n"
        "try:\n    s.MDM()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install" in out.stdout and "scikit-learn" in out.stdout
