"""Every axiom on every case of ``axioms.cases.CASES``, float64 and float32, three batch shapes."""

from __future__ import annotations

import math

import pytest
import torch

from axioms.cases import CASES, Case

BATCHES = [(), (3,), (2, 3)]
DTYPES = [torch.float64, torch.float32]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rtol(case: Case, dtype: torch.dtype) -> float:
    return case.rtol64 if dtype == torch.float64 else case.rtol32


def _close(a, b, case, dtype, scale=1.0):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    tol = _rtol(case, dtype) * max(scale, 1.0)
    err = float((a - b).abs().max()) if a.numel() else 0.0
    ref = float(b.abs().max()) if b.numel() else 0.0
    assert err <= tol * max(1.0, ref), f"max error {err:.3g} > {tol:.3g}·max(1, {ref:.3g})"


def _supports(case: Case, op: str) -> bool:
    return op not in case.unsupported


def _points(case: Case, batch, dtype, seed=0):
    m = case.make()
    g = _gen(seed)
    x = m.random_point(*batch, generator=g, dtype=dtype)
    u = m.random_tangent(x, generator=g)
    v = m.random_tangent(x, generator=g)
    # Unit-ish tangent vectors scaled into the injectivity radius of the case.
    nu = m.norm(x, u).clamp_min(1e-12)
    u = u / nu.reshape(nu.shape + (1,) * m.ndim) * case.tangent_scale * 0.7
    return m, x, u, v


def _other_point(case: Case, m, x, batch, dtype, seed):
    """An unrelated second point (near ``x`` when the case asks for ``near_pairs``)."""
    if not case.near_pairs:
        return m.random_point(*batch, generator=_gen(seed), dtype=dtype)
    w = m.random_tangent(x, generator=_gen(seed))
    nw = m.norm(x, w).clamp_min(1e-12)
    return m.exp(x, w / nw.reshape(nw.shape + (1,) * m.ndim) * case.tangent_scale * 0.9)


ids = [c.id for c in CASES]
params = pytest.mark.parametrize("case", CASES, ids=ids)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
batches = pytest.mark.parametrize("batch", BATCHES, ids=["b0", "b3", "b2x3"])


@params
@dtypes
@batches
def test_random_points_and_tangents_belong(case, dtype, batch):
    m, x, u, v = _points(case, batch, dtype)
    assert x.dtype == dtype and u.dtype == dtype
    assert tuple(m.batch_shape(x)) == batch
    assert m.belongs(x).shape == batch and bool(m.belongs(x).all())
    assert bool(m.is_tangent(x, u).all()) and bool(m.is_tangent(x, v).all())


@params
@dtypes
def test_projections_idempotent(case, dtype):
    m, x, u, v = _points(case, (3,), dtype)
    amb = x + 0.1 * torch.randn(x.shape, generator=_gen(5), dtype=dtype)
    p = m.project_point(amb)
    assert bool(m.belongs(p).all())
    _close(m.project_point(p), p, case, dtype)
    _close(m.project_point(x), x, case, dtype)
    w = torch.randn(x.shape, generator=_gen(6), dtype=dtype)
    pt = m.project_tangent(x, w)
    assert bool(m.is_tangent(x, pt).all())
    _close(m.project_tangent(x, pt), pt, case, dtype)


@params
@dtypes
@batches
def test_inner_symmetric_positive(case, dtype, batch):
    m, x, u, v = _points(case, batch, dtype)
    assert m.inner(x, u, v).shape == batch
    _close(m.inner(x, u, v), m.inner(x, v, u), case, dtype)
    assert bool((m.inner(x, u, u) > 0).all())
    _close(m.norm(x, u) ** 2, m.inner(x, u, u), case, dtype)


@params
@dtypes
@batches
def test_exp_log_identities(case, dtype, batch):
    m, x, u, v = _points(case, batch, dtype)
    if not _supports(case, "exp"):
        with pytest.raises(NotImplementedError):
            m.exp(x, u)
        return
    _close(m.exp(x, m.zero_tangent(x)), x, case, dtype)
    y = m.exp(x, u)
    assert y.dtype == dtype and bool(m.belongs(y).all())
    if not _supports(case, "log"):
        with pytest.raises(NotImplementedError):
            m.log(x, y)
        return
    _close(m.log(x, x), torch.zeros_like(x), case, dtype)
    _close(m.log(x, y), u, case, dtype, scale=10)
    assert bool(m.is_tangent(x, m.log(x, y)).all())


@params
@dtypes
@batches
def test_dist_axioms(case, dtype, batch):
    m, x, u, v = _points(case, batch, dtype)
    if not _supports(case, "dist"):
        with pytest.raises(NotImplementedError):
            m.dist(x, x)
        return
    y = _other_point(case, m, x, batch, dtype, 9)
    d = m.dist(x, y)
    assert d.shape == batch and bool((d >= 0).all())
    _close(d, m.dist(y, x), case, dtype, scale=10)
    _close(m.dist(x, x), torch.zeros(batch, dtype=dtype), case, dtype, scale=100)
    if _supports(case, "log"):
        _close(d, m.norm(x, m.log(x, y)), case, dtype, scale=10)
    if _supports(case, "exp"):
        _close(m.dist(x, m.exp(x, u)), m.norm(x, u), case, dtype, scale=10)


@params
@dtypes
def test_geodesic_endpoints(case, dtype):
    m, x, u, v = _points(case, (3,), dtype)
    if not _supports(case, "geodesic"):
        with pytest.raises(NotImplementedError):
            m.geodesic(x, x, 0.5)
        return
    y = m.exp(x, u) if _supports(case, "exp") else m.random_point(3, generator=_gen(3), dtype=dtype)
    _close(m.geodesic(x, y, 0.0), x, case, dtype, scale=10)
    _close(m.geodesic(x, y, 1.0), y, case, dtype, scale=10)
    mid = m.geodesic(x, y, 0.5)
    assert bool(m.belongs(mid).all())
    if _supports(case, "dist"):
        _close(m.dist(x, mid), 0.5 * m.dist(x, y), case, dtype, scale=10)


@params
@dtypes
def test_retraction_first_order(case, dtype):
    m, x, u, v = _points(case, (3,), dtype)
    if not _supports(case, "retract"):
        with pytest.raises(NotImplementedError):
            m.retract(x, u)
        return
    assert bool(m.belongs(m.retract(x, u)).all())
    _close(m.retract(x, m.zero_tangent(x)), x, case, dtype)
    if dtype != torch.float64:
        return
    errs = []
    for t in (1e-2, 1e-3):
        r = m.retract(x, t * u)
        errs.append(float((r - x - t * u).abs().max()))
    # ‖R_x(tu) − x − tu‖ = O(t²): dividing t by 10 divides the error by ~100.
    assert errs[1] <= errs[0] / 30 + 1e-13, errs


@params
@dtypes
def test_transport(case, dtype):
    m, x, u, v = _points(case, (3,), dtype)
    y = m.random_point(3, generator=_gen(4), dtype=dtype)
    if _supports(case, "exp"):
        y = m.exp(x, u)
    if not _supports(case, "transport"):
        with pytest.raises(NotImplementedError):
            m.transport(x, y, v)
        return
    tv = m.transport(x, y, v)
    tu = m.transport(x, y, u)
    assert tv.dtype == dtype and bool(m.is_tangent(y, tv).all())
    if case.isometric_transport:
        _close(m.inner(y, tu, tv), m.inner(x, u, v), case, dtype, scale=10)
    _close(m.transport(x, x, v), v, case, dtype, scale=10)


def _cost(m, x, a):
    return (a * x).sum() + 0.25 * (x * x).sum() ** 2


@params
def test_riemannian_gradient_taylor(case):
    dtype = torch.float64
    m, x, u, v = _points(case, (2,), dtype)
    if not _supports(case, "egrad_to_rgrad"):
        with pytest.raises(NotImplementedError):
            m.egrad_to_rgrad(x, x)
        return
    a = torch.randn(x.shape, generator=_gen(11), dtype=dtype)
    xg = x.clone().requires_grad_(True)
    (eg,) = torch.autograd.grad(_cost(m, xg, a), xg)
    rg = m.egrad_to_rgrad(x, eg)
    assert bool(m.is_tangent(x, rg).all())
    step = m.exp if _supports(case, "exp") else m.retract
    f0 = float(_cost(m, x, a))
    slope = float(m.inner(x, rg, u).sum())
    errs = []
    for t in (1e-2, 1e-3):
        errs.append(abs(float(_cost(m, step(x, t * u), a)) - f0 - t * slope))
    # First-order model error must shrink like t² (slope 2 on log-log).
    assert errs[1] <= errs[0] / 30 + 1e-12, errs
    order = math.log10(errs[0] / max(errs[1], 1e-300))
    assert order > 1.5 or errs[0] < 1e-12, order


@params
def test_batched_equals_per_point(case):
    dtype = torch.float64
    m, x, u, v = _points(case, (2, 3), dtype)
    y = _other_point(case, m, x, (2, 3), dtype, 8)
    ops = [("inner", lambda a, b, c: m.inner(a, b, c), (x, u, v))]
    if _supports(case, "exp"):
        ops.append(("exp", lambda a, b: m.exp(a, b), (x, u)))
    if _supports(case, "log"):
        ops.append(("log", lambda a, b: m.log(a, b), (x, y)))
    if _supports(case, "dist"):
        ops.append(("dist", lambda a, b: m.dist(a, b), (x, y)))
    if _supports(case, "transport"):
        ops.append(("transport", lambda a, b, c: m.transport(a, b, c), (x, y, v)))
    for name, fn, args in ops:
        full = fn(*args)
        for i in range(2):
            for j in range(3):
                one = fn(*(a[i, j] for a in args))
                _close(one, full[i, j], case, dtype), name


@params
def test_gradcheck_float64(case):
    m, x, u, v = _points(case, (2,), torch.float64)
    y = m.exp(x, u) if _supports(case, "exp") else m.random_point(2, generator=_gen(2), dtype=torch.float64)
    checks = []
    if _supports(case, "exp"):
        checks.append((lambda uu: m.exp(x, uu), (u.clone().requires_grad_(),)))
    if _supports(case, "log"):
        checks.append((lambda yy: m.log(x, m.project_point(yy)), (y.clone().requires_grad_(),)))
    if _supports(case, "dist"):
        checks.append((lambda yy: m.dist(x, m.project_point(yy)), (y.clone().requires_grad_(),)))
    for fn, args in checks:
        assert torch.autograd.gradcheck(fn, args, atol=1e-6, rtol=1e-5)


@params
def test_unsupported_ops_raise(case):
    m, x, u, v = _points(case, (), torch.float64)
    calls = {
        "exp": lambda: m.exp(x, u),
        "log": lambda: m.log(x, x),
        "dist": lambda: m.dist(x, x),
        "transport": lambda: m.transport(x, x, u),
        "retract": lambda: m.retract(x, u),
        "geodesic": lambda: m.geodesic(x, x, 0.5),
        "egrad_to_rgrad": lambda: m.egrad_to_rgrad(x, u),
        "gyro": lambda: m.gyro_inv(x),
    }
    assert set(case.unsupported) <= set(calls), case.unsupported
    for op, call in calls.items():
        if op in case.unsupported:
            with pytest.raises(NotImplementedError):
                call()
        else:
            out = call()
            assert torch.isfinite(out).all(), op
    assert m.has_gyro == ("gyro" not in case.unsupported)


@params
@dtypes
def test_gyro_axioms(case, dtype):
    if not _supports(case, "gyro"):
        return  # test_unsupported_ops_raise already asserts NotImplementedError for gyro ops
    m, x, u, v = _points(case, (3,), dtype)
    y = m.exp(x, u) if _supports(case, "exp") else m.random_point(3, generator=_gen(7), dtype=dtype)
    e = m.identity(3, dtype=dtype)
    _close(m.gyro_add(e, x), x, case, dtype, scale=10)  # left identity
    _close(m.gyro_add(m.gyro_inv(x), x), e, case, dtype, scale=10)  # left inverse
    _close(m.gyro_add(m.gyro_inv(x), m.gyro_add(x, y)), y, case, dtype, scale=100)  # cancellation
    _close(m.gyro_scalar(1.0, x), x, case, dtype, scale=10)
    _close(m.gyro_scalar(2.0, x), m.gyro_add(x, x), case, dtype, scale=100)


@params
def test_check_point_errors(case):
    m, x, u, v = _points(case, (3,), torch.float64)
    m.check_point(x)
    m.check_tangent(x, u)
    bad = x.clone()
    bad.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.check_point(bad)
    with pytest.raises(ValueError, match="shape|dimension"):
        wrong = torch.zeros(7) if m.ndim > 1 else torch.zeros(())
        m.check_point(wrong.to(torch.float64))
    if case.off_manifold is not None:
        with pytest.raises(ValueError, match="off"):
            m.check_point(case.off_manifold(x))
        assert not bool(m.belongs(case.off_manifold(x)).any())
