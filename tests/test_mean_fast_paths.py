"""Fast paths of the affine-invariant mean and ``TangentSpace.fit_transform``.

``inverse_wsum``/``_wsum`` against explicit sums; the mean with eigenvector refinement
(``eigh_from_guess``) and float32 Hessian products against the same mean with both disabled and
an independently recomputed gradient (``torch.linalg.eigh``); ``capture_aim_states``; the
reuse of the solver's eigenvectors by ``fit_transform``; the implicit backward from a state
that carries only an eigenvector guess.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD
from riemlearn.stats import Covariances, TangentSpace, make_eeg
from riemlearn.stats import _mean_spd as S
from riemlearn.stats.frechet_mean import capture_aim_states, frechet_mean

TS = importlib.import_module("riemlearn.stats.tangent_space")  # stats.tangent_space is shadowed
F64 = torch.float64


def _spread(gen, n_pts, n, scale=5.0):
    """``exp(Zᵢ)`` with symmetric ``‖Zᵢ‖_F = scale`` (widely spread points)."""
    z = torch.randn(n_pts, n, n, generator=gen, dtype=F64)
    z = z + z.mT
    return torch.linalg.matrix_exp(z / torch.linalg.matrix_norm(z)[:, None, None] * scale)


def _wishart(gen, n_pts, n, dof):
    a = torch.randn(n_pts, n, dof, generator=gen, dtype=F64)
    return a @ a.mT / dof


def _logm(y):
    lam, q = torch.linalg.eigh((y + y.mT) / 2)
    return (q * torch.log(lam).unsqueeze(-2)) @ q.mT


def _grad_norm(m, x, w=None):
    """‖Σ wᵢ log(M^{-1/2} Xᵢ M^{-1/2})‖_F per group, by torch.linalg.eigh; m (*G, n, n), x (*G, N, n, n)."""
    lam, q = torch.linalg.eigh(m)
    h = ((q * lam.rsqrt().unsqueeze(-2)) @ q.mT).unsqueeze(-3)
    logs = _logm(h @ x @ h)
    w = torch.full(x.shape[:-2], 1.0 / x.shape[-3], dtype=F64) if w is None else w
    return torch.linalg.matrix_norm((w[..., None, None] * logs).sum(-3))


def _rel(a, b):
    return (torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b)).max().item()


@pytest.fixture
def refine_calls(monkeypatch):
    """Counts the calls of ``eigh_from_guess`` by the mean solver and by ``TangentSpace``."""
    calls = {"mean": 0, "ts": 0}

    def spy(key, real):
        def wrapped(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(S, "eigh_from_guess", spy("mean", S.eigh_from_guess))
    monkeypatch.setattr(TS, "eigh_from_guess", spy("ts", TS.eigh_from_guess))
    return calls


def test_inverse_wsum_and_wsum(gen):
    x = _wishart(gen, 2 * 7, 6, 12).reshape(2, 7, 6, 6)
    w = torch.rand(2, 7, generator=gen, dtype=F64)
    w[0, 3] = 0.0
    ref = (w[..., None, None] * torch.linalg.inv(x)).sum(-3)
    got = S.inverse_wsum(torch.linalg.cholesky(x), w)
    assert got.shape == (2, 6, 6)
    assert _rel(got, ref) <= 1e-12
    assert _rel(S._wsum(w, x), (w[..., None, None] * x).sum(-3)) <= 1e-14
    assert S._hess_dtype(x) == torch.float32 and S._hess_dtype(x.float()) == torch.float32


@pytest.mark.parametrize("n", [8, 22])
@pytest.mark.parametrize("kind", ["random", "spread"])
def test_aim_mean_fast_paths_match_reference(gen, monkeypatch, refine_calls, n, kind):
    x = SPD(n).random_point(200, generator=gen, dtype=F64) if kind == "random" else _spread(gen, 200, n)
    monkeypatch.setattr(S, "REFINE_MAX_STEP", 1.0)  # refine after steps of any size (spread: 1e-2)
    m, info = frechet_mean(x, SPD(n), tol=1e-10, return_info=True)
    assert refine_calls["mean"] >= 1  # the refinement path ran
    assert info.grad_norm.item() <= 1e-10 and bool(info.converged)
    assert _grad_norm(m, x).item() <= 2e-10
    with monkeypatch.context() as mp:
        mp.setattr(S, "REFINE_MAX_N", 0)
        m_lapack = frechet_mean(x, SPD(n), tol=1e-10)
    with monkeypatch.context() as mp:
        mp.setattr(S, "_hess_dtype", lambda t: t.dtype)
        m_hess64 = frechet_mean(x, SPD(n), tol=1e-10)
    assert _rel(m, m_lapack) <= 1e-11
    assert _rel(m, m_hess64) <= 1e-11


@pytest.mark.parametrize("n", [8, 22])
def test_aim_mean_grouped(gen, monkeypatch, refine_calls, n):
    monkeypatch.setattr(S, "REFINE_MAX_STEP", 1.0)  # refine after steps of any size
    x = torch.stack([_spread(gen, 100, n, 4.0), _wishart(gen, 100, n, n + 3),
                     SPD(n).random_point(100, generator=gen, dtype=F64)])
    w = torch.rand(3, 100, generator=gen, dtype=F64) + 0.1
    m, info = frechet_mean(x, SPD(n), w, tol=1e-10, return_info=True)
    assert m.shape == (3, n, n) and refine_calls["mean"] >= 1
    assert bool((info.grad_norm <= 1e-10).all())
    assert (_grad_norm(m, x, w / w.sum(-1, keepdim=True)) <= 2e-10).all()
    with monkeypatch.context() as mp:
        mp.setattr(S, "REFINE_MAX_N", 0)
        mp.setattr(S, "_hess_dtype", lambda t: t.dtype)
        m_ref = frechet_mean(x, SPD(n), w, tol=1e-10)
    assert _rel(m, m_ref) <= 1e-11
    for g in range(3):  # groups are independent problems
        assert _rel(m[g], frechet_mean(x[g], SPD(n), w[g], tol=1e-10)) <= 1e-11


def test_refinement_used_only_for_small_n(gen, refine_calls):
    frechet_mean(_spread(gen, 60, 24), SPD(24), tol=1e-10)
    assert refine_calls["mean"] >= 1
    refine_calls["mean"] = 0
    x = _spread(gen, 60, 30)
    m = frechet_mean(x, SPD(30), tol=1e-10)
    assert refine_calls["mean"] == 0
    assert _grad_norm(m, x).item() <= 2e-10


def test_capture_aim_states(gen):
    n = 8
    x = _spread(gen, 50, n)
    xg = _wishart(gen, 3 * 40, n, n + 3).reshape(3, 40, n, n)
    with capture_aim_states() as states:
        frechet_mean(x, SPD(n))
        mg = frechet_mean(xg, SPD(n))
        frechet_mean(x, SPD(n, metric="log_euclidean"))  # closed form: no state
    assert len(states) == 2
    for (state, pts), shape in zip(states, [(1, 50, n, n), (3, 40, n, n)], strict=True):
        assert pts.shape == shape
        assert state.vectors_guess().shape == shape
    # the guess diagonalizes the whitened points Yᵢ = C⁻¹ Xᵢ C⁻ᵀ of the state's frame
    state, pts = states[1]
    assert _rel(state.c @ state.c.mT, mg) <= 1e-6
    y = state.ci.unsqueeze(-3) @ pts @ state.ci.mT.unsqueeze(-3)
    v = state.vectors_guess()
    d = v.mT @ y @ v
    off = torch.linalg.matrix_norm(d - torch.diag_embed(d.diagonal(dim1=-2, dim2=-1)))
    assert (off / torch.linalg.matrix_norm(y)).max().item() <= 1e-2


def _eeg_covs(n, n_trials=80, seed=0):
    X, y = make_eeg(n_trials, n, 256, 2, sfreq=128.0, random_state=seed, as_numpy=True)
    return Covariances("oas").fit_transform(X), y


@pytest.mark.parametrize("n", [8, 22, 30])
def test_tangent_space_fit_transform(refine_calls, n):
    C, _ = _eeg_covs(n)
    sw = np.random.default_rng(n).uniform(0.2, 2.0, len(C))
    for inp, kw in ((C, {}), (torch.as_tensor(C), {}), (C, {"sample_weight": sw})):
        refine_calls["ts"] = 0
        a = TangentSpace().fit_transform(inp, **kw)
        assert refine_calls["ts"] == 1  # the solver's eigenvectors were reused
        b = TangentSpace().fit(inp, **kw).transform(inp)
        assert type(a) is type(b) is type(inp)
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == (len(C), n * (n + 1) // 2)
        assert np.abs(a - b).max() <= 1e-12
        # independent check: ‖T_i‖ = ‖log(P^{-1/2} C_i P^{-1/2})‖_F and Σ w_i T_i = 0 at the mean
        ts = TangentSpace().fit(inp, **kw)
        ref = torch.as_tensor(np.asarray(ts.reference_), dtype=F64)
        w = torch.as_tensor(kw.get("sample_weight", np.ones(len(C))), dtype=F64)
        w = w / w.sum()
        ct = torch.as_tensor(C, dtype=F64)
        lam, q = torch.linalg.eigh(ref)
        h = (q * lam.rsqrt()) @ q.mT
        norms = torch.linalg.matrix_norm(_logm(h @ ct @ h)).numpy()
        assert np.abs(np.linalg.norm(a, axis=1) - norms).max() <= 1e-11
        assert np.abs((w.numpy()[:, None] * a).sum(0)).max() <= 1e-9


def test_tangent_space_log_euclidean_and_pipeline(refine_calls):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    C, y = _eeg_covs(8, n_trials=100, seed=3)
    a, b = (TangentSpace(metric="log_euclidean").fit_transform(C),
            TangentSpace(metric="log_euclidean").fit(C).transform(C))
    assert refine_calls["ts"] == 0 and np.abs(a - b).max() <= 1e-12

    pipe = make_pipeline(TangentSpace(), LogisticRegression(max_iter=1000)).fit(C, y)
    assert refine_calls["ts"] == 1  # Pipeline.fit calls TangentSpace.fit_transform
    pred = pipe.predict(C)
    assert pred.shape == y.shape and set(np.unique(pred)) <= set(np.unique(y))
    feats = TangentSpace().fit(C).transform(C)
    lr = LogisticRegression(max_iter=1000).fit(feats, y)
    np.testing.assert_allclose(pipe[-1].coef_, lr.coef_, rtol=0, atol=1e-6)
    assert (pred == lr.predict(feats)).all()
    assert pipe.score(C, y) > 0.7  # separable synthetic classes


_STALE_CASES = {  # (data, tol) candidates whose last Newton step is certified without a pass
    8: [("wishart", 1e-8), ("spread", 1e-8), ("wishart", 1e-6), ("spread", 1e-6)],
    22: [("spread", 1e-8), ("spread", 1e-6), ("wishart", 1e-8), ("wishart", 1e-6)],
}


@pytest.mark.parametrize("n", [8, 22])
def test_backward_from_stale_state(monkeypatch, refine_calls, n):
    for kind, tol in _STALE_CASES[n]:
        g = torch.Generator().manual_seed(1234)
        x = _wishart(g, 200, n, n + 2) if kind == "wishart" else _spread(g, 200, n)
        with capture_aim_states() as states:
            frechet_mean(x, SPD(n), tol=tol)
        if states[0][0].lam is None and states[0][0].guess is not None:
            break
    else:
        pytest.fail("no candidate ends with a stale state carrying an eigenvector guess")
    r = torch.randn(n, n, generator=torch.Generator().manual_seed(7), dtype=F64)
    r = r + r.mT

    def grad(xx):
        xx = xx.clone().requires_grad_()
        with capture_aim_states() as st:
            m = frechet_mean(xx, SPD(n), tol=tol)
        f = (m * r).sum() + (m @ m).diagonal().sum()
        state = st[0][0]
        kept = (state.lam is None, state.guess is not None)
        gx = torch.autograd.grad(f, xx)[0]
        assert state.lam is not None  # the backward computed the eigenpairs
        return m.detach(), gx, kept

    calls0 = refine_calls["mean"]
    m, gx, kept = grad(x)
    assert kept == (True, True)
    calls_fwd = refine_calls["mean"]
    assert calls_fwd > calls0
    with monkeypatch.context() as mp:
        mp.setattr(S, "REFINE_MAX_N", 0)
        m0, gx0, kept0 = grad(x)
    assert kept0 == (True, False)  # stale without a guess: LAPACK in the backward
    assert refine_calls["mean"] == calls_fwd
    assert _rel(m, m0) <= 1e-12
    assert (torch.linalg.vector_norm(gx - gx0) / torch.linalg.vector_norm(gx0)).item() <= 1e-9
    assert torch.allclose(gx, gx.mT)
    # independent: central difference of f along Lᵢ Sᵢ Lᵢᵀ (Xᵢ = Lᵢ Lᵢᵀ, Sᵢ symmetric: a relative
    # perturbation, so that ill-conditioned points stay well inside the cone), means solved tightly
    s = torch.randn(x.shape, generator=torch.Generator().manual_seed(8), dtype=F64)
    chol = torch.linalg.cholesky(x)
    dx = 0.5 * chol @ (s + s.mT) @ chol.mT
    h = 1e-4

    def f(xx):
        m = frechet_mean(xx, SPD(n), tol=1e-12)
        return ((m * r).sum() + (m @ m).diagonal().sum()).item()

    fd = (f(x + h * dx) - f(x - h * dx)) / (2 * h)
    assert abs((gx * dx).sum().item() - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hessian_products_match_formula_and_stay_positive(gen, dtype):
    """``Hess[H] = Σ wᵢ Vᵢ (gᵢ ∘ Vᵢᵀ H Vᵢ) Vᵢᵀ`` against the explicit formula; on asymmetric input
    (CG's round-off drift) the operator acts on the symmetric part and stays positive."""
    g, n_pts, n = 2, 30, 6
    x = torch.stack([_wishart(gen, n_pts, n, n + 2), _spread(gen, n_pts, n, 3.0)])
    lam, v = torch.linalg.eigh(x)
    ll = torch.log(lam)
    w = torch.rand(g, n_pts, generator=gen, dtype=F64)
    w = w / w.sum(-1, keepdim=True)
    hess = S._Hessian(v, S._coth_weights(ll, w, dtype))
    gw = S._coth_weights(ll, w)
    h = torch.randn(g, n, n, generator=gen, dtype=F64)
    hs = (h + h.mT) / 2
    ref = (v @ (gw * (v.mT @ hs.unsqueeze(-3) @ v)) @ v.mT).sum(-3)
    tol = 1e-13 if dtype == torch.float64 else 1e-5
    got = hess(h)
    assert (torch.linalg.matrix_norm(got - ref) / torch.linalg.matrix_norm(ref)).max() <= tol
    assert torch.equal(got, got.mT)
    # ⟨H, Hess[H]⟩ = ⟨sym H, Hess[sym H]⟩ ≥ ‖sym H‖² (Hess ≥ I) even for an antisymmetric-heavy H
    k = torch.randn(g, n, n, generator=gen, dtype=F64)
    skew = hs * 1e-3 + (k - k.mT)
    quad = (skew * hess(skew)).sum((-2, -1))
    sym_sq = (((skew + skew.mT) / 2) ** 2).sum((-2, -1))
    assert (quad >= sym_sq * (1 - 1e-4)).all()


@pytest.mark.parametrize("n", [6, 22])
def test_log_path_bound_holds(gen, n):
    """The λ-ratio-free certificate: ``‖G(C e^D Cᵀ) − (G − Hess[D])‖ ≤ _log_path_bound`` for random
    steps of every size on concentrated and widely spread points (gradients recomputed with eigh)."""
    for x in (_wishart(gen, 60, n, n + 2), _spread(gen, 60, n, 6.0)):
        x = x.unsqueeze(0)
        w = torch.full((1, 60), 1 / 60, dtype=F64)
        c, ci = S.ah_frame(x, w)
        _, grad, ll, lam, v = S._whitened_pass(x, w, ci)
        hess = S._Hessian(v, S._coth_weights(ll, w))
        for scale in (0.3, 1e-2, 1e-4):
            d = torch.randn(1, n, n, generator=gen, dtype=F64)
            d = (d + d.mT) * (scale / torch.linalg.matrix_norm(d + d.mT))
            mu, u = torch.linalg.eigh(d)
            _, ci2 = S._move(c, ci, mu, u, torch.ones(1, dtype=F64))
            g2 = _logm(ci2 @ x @ ci2.mT)[0].mul(w[0, :, None, None]).sum(0)
            first = u.mT @ (grad - hess(d)) @ u  # the first-order gradient, in the new frame
            bound = S._log_path_bound(S._hess_norm_bound(ll, w), torch.linalg.vector_norm(mu, dim=-1), n)
            assert float(torch.linalg.matrix_norm(g2 - first[0])) <= float(bound)


@pytest.mark.parametrize("n", [8, 22, 64])
def test_float32_hessian_error_within_its_model(gen, n):
    """Float32 products stay well inside the error model that the certificate adds
    (``_hess_error_from``: 8 n eps32 ‖Hess‖ ‖D‖), on concentrated and spread points."""
    for x in (_wishart(gen, 100, n, n + 2), _spread(gen, 100, n, 6.0)):
        x = x.unsqueeze(0)
        w = torch.full((1, 100), 0.01, dtype=F64)
        _, _, ll, _, v = S._whitened_pass(x, w, torch.eye(n, dtype=F64).unsqueeze(0))
        h64 = S._Hessian(v, S._coth_weights(ll, w))
        h32 = S._Hessian(v, S._coth_weights(ll, w, torch.float32))
        hn = S._hess_norm_bound(ll, w)
        for _ in range(3):
            d = torch.randn(1, n, n, generator=gen, dtype=F64)
            d = d + d.mT
            err = torch.linalg.matrix_norm(h32(d) - h64(d))
            model = S._hess_error_from(hn, torch.linalg.matrix_norm(d), n, torch.float32)
            assert float(err) <= 0.1 * float(model)


def test_estimator_mean_tolerance():
    """MDM / TangentSpace means to 1e-8 by default (pyRiemann's), to ``tol`` when given."""
    from riemlearn.stats import MDM
    from riemlearn.stats.frechet_mean import ESTIMATOR_TOL

    X, y = make_eeg(120, 8, 200, 3, random_state=3, class_sep=0.5, as_numpy=True)
    C = torch.as_tensor(Covariances("oas").fit_transform(X))
    yt = torch.as_tensor(y)
    for tol in (None, 1e-12):
        want = ESTIMATOR_TOL if tol is None else tol
        mdm = MDM(tol=tol).fit(C, y)
        for k in range(3):
            assert _grad_norm(mdm.covmeans_[k], C[yt == k]).item() <= 2 * want
        ts = TangentSpace(tol=tol).fit(C)
        assert _grad_norm(ts.reference_, C).item() <= 2 * want
    assert (MDM().fit(C, y).predict(C) == MDM(tol=1e-12).fit(C, y).predict(C)).all()
    assert MDM(tol=1e-9).get_params()["tol"] == 1e-9
