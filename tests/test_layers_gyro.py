"""Gyro layers: SPD gyro MLR/FC (AI, LE, LC), Grassmann gyro MLR/FC and Grassmann GyroBN."""

from __future__ import annotations

import pytest
import torch
from riemlearn.layers import GrassmannGyroBN, GrassmannGyroFC, GrassmannGyroMLR, SPDGyroFC, SPDGyroMLR
from riemlearn.layers.gyro_grassmann import grassmann_log_identity
from riemlearn.layers.gyro_spd import unvech
from riemlearn.layers.spd import vech
from riemlearn.manifolds import SPD, Grassmann
from riemlearn.manifolds.grassmann_gyro import gyro_add, gyro_inv, identity
from riemlearn.manifolds.spectral import logm, powm
from riemlearn.optim import ManifoldParameter, RiemannianAdam
from riemlearn.stats import frechet_mean

F64 = torch.float64
METRICS = ["affine_invariant", "log_euclidean", "log_cholesky"]


def _spd(gen, *batch, n=3, dtype=F64):
    return SPD(n).random_point(*batch, generator=gen, dtype=dtype)


def _proj(x):
    return x @ x.mT


def test_unvech_inverts_vech(gen):
    s = torch.randn(2, 4, 4, generator=gen, dtype=F64)
    s = s + s.mT
    torch.testing.assert_close(unvech(vech(s), 4), s)


def test_spd_gyro_mlr_closed_forms(gen):
    x = _spd(gen, 5)
    p = _spd(gen, 2)
    pi = powm(p, -0.5)[None]
    for met, ref_z in [("log_euclidean", lambda: logm(x)[:, None] - logm(p)[None]),
                       ("affine_invariant", lambda: logm(pi @ x[:, None] @ pi))]:
        mlr = SPDGyroMLR(3, 2, met, dtype=F64, generator=gen)
        assert isinstance(mlr.points, ManifoldParameter) and mlr.points.manifold == SPD(3, metric=met)
        with torch.no_grad():
            mlr.points.copy_(p)
        ref = (ref_z() * mlr.normals).sum((-2, -1))
        torch.testing.assert_close(mlr(x), ref)


@pytest.mark.parametrize("metric", METRICS)
def test_spd_gyro_fc_mlr_shapes_dtypes_gradcheck(gen, metric):
    for dtype in (F64, torch.float32):
        fc = SPDGyroFC(3, 2, metric, dtype=dtype, generator=gen)
        y = fc(_spd(gen, 4, dtype=dtype))
        assert y.shape == (4, 2, 2) and y.dtype == dtype and bool(SPD(2).belongs(y).all())
    fc = SPDGyroFC(3, 2, metric, dtype=F64, generator=gen)
    with torch.no_grad():
        fc.mlr.points.copy_(_spd(gen, 3))
    # output coordinates at the identity equal the logits: ‖Log_I Y‖_I² = Σ v²
    x = _spd(gen, 4)
    v = fc.mlr(x)
    y = fc(x)
    met = SPD(2, metric=metric).metric
    e = torch.eye(2, dtype=F64).expand_as(y)
    torch.testing.assert_close(met.norm(e, met.log(e, y)) ** 2, (v * v).sum(-1))
    xs = _spd(gen, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: fc(a), (xs,))
    out = fc(xs).sum()
    out.backward()
    assert bool(torch.isfinite(fc.mlr.points.grad).all())


def test_spd_gyro_errors():
    with pytest.raises(ValueError, match="gyro"):
        SPDGyroMLR(3, 2, "bures_wasserstein")
    with pytest.raises(ValueError, match="shape"):
        SPDGyroMLR(3, 2)(torch.eye(4))


def _spd_data(gen, centres, n_per, sigma):
    man = SPD(centres.shape[-1])
    y = torch.arange(2 * n_per) % 2
    c = centres[y]
    return man.exp(c, man.random_tangent(c, generator=gen) * sigma), y


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_spd_gyro_net_learns(dtype):
    gen = torch.Generator().manual_seed(0)
    centres = SPD(4).random_point(2, generator=gen, dtype=dtype)
    x, y = _spd_data(gen, centres, 32, 0.3)
    xt, yt = _spd_data(gen, centres, 32, 0.3)
    net = torch.nn.Sequential(SPDGyroFC(4, 3, "affine_invariant", dtype=dtype, generator=gen),
                              SPDGyroMLR(3, 2, "log_cholesky", dtype=dtype, generator=gen))
    # lr 0.02: at 0.05 the logits (hence the FC output's log-spectrum) grow fast enough that some
    # float32 seeds reach condition numbers beyond 1/eps within 30 steps (see SPDGyroFC notes)
    opt = RiemannianAdam(net.parameters(), lr=0.02)
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        assert bool(torch.isfinite(loss))
    assert bool(SPD(4).belongs(net[0].mlr.points.data).all())
    with torch.no_grad():
        acc = (net(xt).argmax(-1) == yt).double().mean().item()
    assert acc >= 0.85, acc


# -- Grassmann --------------------------------------------------------------------------------


def _near(gen, centre, m, sigma, dtype=F64):
    man = Grassmann(*centre.shape[-2:])
    c = centre.expand(m, *centre.shape[-2:])
    return man.exp(c, man.project_tangent(c, torch.randn(c.shape, generator=gen, dtype=dtype)) * sigma)


def test_grassmann_gyro_mlr_closed_form_and_basis_invariance(gen):
    man = Grassmann(5, 2)
    mlr = GrassmannGyroMLR(5, 2, 3, dtype=F64, generator=gen)
    assert isinstance(mlr.points, ManifoldParameter) and mlr.points.manifold == man
    x = _near(gen, man.identity(dtype=F64), 4, 0.3)
    # at P = I: logits = tr(Aᵀ B_X)
    ref = (grassmann_log_identity(x).unsqueeze(-3) * mlr.normals).sum((-2, -1))
    torch.testing.assert_close(mlr(x), ref)
    with torch.no_grad():
        mlr.points.copy_(_near(gen, man.identity(dtype=F64), 3, 0.4))
    z = gyro_add(gyro_inv(mlr.points[1]), x)
    torch.testing.assert_close(mlr(x)[:, 1], (grassmann_log_identity(z) * mlr.normals[1]).sum((-2, -1)))
    q = torch.linalg.qr(torch.randn(2, 2, generator=gen, dtype=F64))[0]
    torch.testing.assert_close(mlr(x @ q), mlr(x))  # depends on the subspace only
    xs = x[:2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: mlr(a), (xs,))


def test_grassmann_gyro_fc(gen):
    fc = GrassmannGyroFC(5, 2, 4, 2, dtype=F64, generator=gen)
    x = _near(gen, Grassmann(5, 2).identity(dtype=F64), 3, 0.3)
    y = fc(x)
    assert y.shape == (3, 4, 2) and bool(Grassmann(4, 2).belongs(y).all())
    torch.testing.assert_close(grassmann_log_identity(y).flatten(-2), fc.mlr(x))
    xs = x[:2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: fc(a), (xs,))


def _gr_mean(x):
    return frechet_mean(x, Grassmann(*x.shape[-2:]), tol=1e-13, max_iter=500)


def test_grassmann_gyrobn_statistics(gen):
    man = Grassmann(5, 2)
    centre = man.random_point(generator=gen, dtype=F64)
    x = _near(gen, centre, 12, 0.25)
    mu = _gr_mean(x)
    # centring with the exact gyro structure sends the Fréchet mean to the identity (1e-8)
    centred = gyro_add(gyro_inv(mu), x)
    i52 = identity(5, 2, dtype=F64)
    assert float((_proj(_gr_mean(centred)) - _proj(i52)).abs().max().detach()) < 1e-8
    # default: centring and bias only (isometries): output mean = bias, dispersion unchanged
    bnd = GrassmannGyroBN(5, 2, tol=1e-13, max_iter=500, dtype=F64)
    assert bnd.scale is None
    bd = _near(gen, i52, 1, 0.4)[0]
    with torch.no_grad():
        bnd.bias.copy_(bd)
    yd = bnd(x)
    assert float((_proj(_gr_mean(yd)) - _proj(bd)).abs().max().detach()) < 1e-8
    torch.testing.assert_close((man.dist(bd, yd) ** 2).mean(), (man.dist(mu, x) ** 2).mean())
    bn = GrassmannGyroBN(5, 2, tol=1e-13, max_iter=500, scaling=True, normalize_dispersion=True, dtype=F64)
    assert isinstance(bn.bias, ManifoldParameter) and bn.bias.manifold == man
    with torch.no_grad():  # keep the normalized batch well inside the injectivity radius
        bn.scale.fill_(0.3)
    y0 = bn(x)  # bias = identity: output mean = identity
    assert float((_proj(_gr_mean(y0)) - _proj(i52)).abs().max().detach()) < 1e-8
    b = _near(gen, i52, 1, 0.5)[0]
    with torch.no_grad():
        bn.bias.copy_(b)
        bn.scale.fill_(0.4)
    y = bn(x)
    assert float((_proj(_gr_mean(y)) - _proj(b)).abs().max().detach()) < 1e-8
    var = (man.dist(mu, x) ** 2).mean()
    disp = (man.dist(b, y) ** 2).mean()
    torch.testing.assert_close(disp, 0.16 * var / (var + bn.eps), atol=1e-8, rtol=0)
    # running statistics after two steps, and eval mode with them
    e = i52
    r1 = man.exp(e, 0.1 * man.log(e, mu))
    r2 = man.exp(r1, 0.1 * man.log(r1, mu))
    torch.testing.assert_close(_proj(bn.running_mean), _proj(r2))
    torch.testing.assert_close(bn.running_var, 0.81 + 0.19 * var)
    bn.eval()
    ye = bn(x)
    fac = 0.4 / torch.sqrt(bn.running_var + bn.eps)
    from riemlearn.manifolds.grassmann_gyro import gyro_scalar

    ref = gyro_add(b, gyro_scalar(fac, gyro_add(gyro_inv(bn.running_mean), x)))
    torch.testing.assert_close(_proj(ye), _proj(ref))


def test_grassmann_gyrobn_grad_state_dict(gen):
    bn = GrassmannGyroBN(3, 1, tol=1e-14, max_iter=500, scaling=True, normalize_dispersion=True, dtype=F64)
    with torch.no_grad():
        bn.scale.fill_(0.5)
    x = _near(gen, Grassmann(3, 1).random_point(generator=gen, dtype=F64), 3, 0.3).requires_grad_(True)
    t = torch.randn(3, 3, 1, generator=gen, dtype=F64)
    (bn(x) * t).sum().backward()
    for g in (x.grad, bn.bias.grad, bn.scale.grad):
        assert g is not None and bool(torch.isfinite(g).all())
    xs = x.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: (bn(a) * t).sum(), (xs,), atol=1e-6)
    bn2 = GrassmannGyroBN(3, 1, scaling=True, normalize_dispersion=True, dtype=F64)
    bn2.load_state_dict(bn.state_dict())
    bn.eval()
    bn2.eval()
    torch.testing.assert_close(bn2(x.detach()), bn(x.detach()))


@pytest.mark.parametrize(("dtype", "bn"), [(F64, True), (torch.float32, False)])
def test_grassmann_gyro_mlr_learns(dtype, bn):
    gen = torch.Generator().manual_seed(0)
    man = Grassmann(8, 2)
    centres = man.random_point(2, generator=gen, dtype=dtype)
    y = torch.arange(48) % 2
    x = torch.cat([_near(gen, centres[k], 48, 0.08, dtype) for k in range(2)])[torch.arange(48) + 48 * y]
    net = GrassmannGyroMLR(8, 2, 2, dtype=dtype, generator=gen)
    if bn:  # GyroBN centring first (eval mode below uses its running mean)
        net = torch.nn.Sequential(GrassmannGyroBN(8, 2, dtype=dtype), net)
    opt = RiemannianAdam(net.parameters(), lr=0.05)
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[:32]), y[:32])
        loss.backward()
        opt.step()
        assert bool(torch.isfinite(loss))
    net.eval()
    with torch.no_grad():
        acc = (net(x[32:]).argmax(-1) == y[32:]).double().mean().item()
    assert acc >= 0.85, acc


@pytest.mark.cuda
def test_gyro_cuda():
    gen = torch.Generator().manual_seed(0)
    fc = SPDGyroFC(3, 2, "log_cholesky", dtype=torch.float32, generator=gen).cuda()
    y = fc(SPD(3).random_point(4, generator=gen, dtype=torch.float32).cuda())
    assert y.device.type == "cuda"
    bn = GrassmannGyroBN(5, 2, dtype=F64).cuda()
    x = Grassmann(5, 2).random_point(6, generator=gen, dtype=F64).cuda()
    out = bn(x)
    out.sum().backward()
    assert out.device.type == "cuda" and bool(torch.isfinite(bn.bias.grad).all())
