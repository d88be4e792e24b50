"""Grassmann gyro structure: exact matrix exponential, gyrogroup identities, gyro-centring."""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds import grassmann_gyro as G
from riemlearn.manifolds.grassmann import Grassmann

D = torch.float64


def _proj(x):
    return x @ x.mT


def _karcher(m, xs, iters=200, tol=1e-14):
    """Riemannian gradient descent for the Fréchet (Karcher) mean of ``xs`` (k, n, p)."""
    mean = xs[0]
    for _ in range(iters):
        step = m.log(mean.expand_as(xs), xs).mean(0)
        mean = m.exp(mean, step)
        if float(step.norm()) < tol:
            break
    return mean


def _cluster(m, gen, k=12, spread=0.4):
    center = m.random_point(generator=gen, dtype=D)
    u = m.random_tangent(center.expand(k, *center.shape), gen)
    u = spread * u / u.norm(dim=(-2, -1), keepdim=True)
    return m.exp(center.expand_as(u), u)


@pytest.mark.parametrize(("n", "p"), [(5, 2), (6, 3), (4, 1)])
def test_closed_form_is_the_matrix_exponential(n, p, gen):
    m = Grassmann(n, p)
    x = m.random_point(4, generator=gen, dtype=D)
    t = G.transvection(x)
    torch.testing.assert_close(t, torch.linalg.matrix_exp(G.generator(x)), rtol=0, atol=1e-13)
    torch.testing.assert_close(t.mT @ t, torch.eye(n, dtype=D).expand_as(t), rtol=0, atol=1e-13)
    e = G.identity(n, p, 4, dtype=D)
    torch.testing.assert_close(_proj(t @ e), _proj(x), rtol=0, atol=1e-13)  # carries I to span(X)
    torch.testing.assert_close(t @ e, G.canonical_basis(x), rtol=0, atol=1e-13)
    omega = G.generator(x)
    torch.testing.assert_close(omega, -omega.mT)
    assert float(omega[..., :p, :p].abs().max()) == 0 and float(omega[..., p:, p:].abs().max()) == 0


@pytest.mark.parametrize(("n", "p"), [(5, 2), (6, 3)])
def test_gyrogroup_identities_any_basis(n, p, gen):
    m = Grassmann(n, p)
    x, y, z = (m.random_point(5, generator=gen, dtype=D) for _ in range(3))
    e = G.identity(n, p, 5, dtype=D)
    torch.testing.assert_close(G.gyro_add(e, y), y, rtol=0, atol=1e-14)  # left identity (as bases)
    torch.testing.assert_close(_proj(G.gyro_add(G.gyro_inv(x), x)), _proj(e), rtol=0, atol=1e-12)
    torch.testing.assert_close(G.gyro_add(G.gyro_inv(x), G.gyro_add(x, y)), y, rtol=0, atol=1e-12)
    torch.testing.assert_close(_proj(G.gyro_add(x, e)), _proj(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(_proj(G.gyro_scalar(2.0, x)), _proj(G.gyro_add(x, x)), rtol=0, atol=1e-12)
    torch.testing.assert_close(_proj(G.gyro_scalar(1.0, x)), _proj(x), rtol=0, atol=1e-12)
    # canonical bases: the identities hold as matrices
    xc = G.canonical_basis(x)
    torch.testing.assert_close(G.gyro_add(G.gyro_inv(xc), xc), e, rtol=0, atol=1e-12)
    torch.testing.assert_close(G.gyro_scalar(2.0, xc), G.gyro_add(xc, xc), rtol=0, atol=1e-12)
    torch.testing.assert_close(G.gyro_scalar(1.0, xc), xc, rtol=0, atol=1e-12)
    # left gyrotranslations are isometries; ⊙ scales the distance to the identity
    tol = {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(m.dist(G.gyro_add(x, y), G.gyro_add(x, z)), m.dist(y, z), **tol)
    torch.testing.assert_close(m.dist(e, G.gyro_scalar(0.3, x)), 0.3 * m.dist(e, x), **tol)
    # the result does not depend on the basis chosen for X
    q = torch.linalg.qr(torch.randn(5, p, p, generator=gen, dtype=D))[0]
    torch.testing.assert_close(G.gyro_add(x @ q, y), G.gyro_add(x, y), rtol=0, atol=1e-12)


def _cayley_add(x, y):
    """The Cayley approximation of expm(Ω) (as in the public GyroBN code): for contrast."""
    omega = G.generator(x)
    eye = torch.eye(omega.shape[-1], dtype=omega.dtype).expand_as(omega)
    return torch.linalg.solve(eye - omega / 2, eye + omega / 2) @ y


def test_gyro_centring_sends_the_karcher_mean_to_the_identity(gen):
    m = Grassmann(6, 2)
    xs = _cluster(m, gen)
    mean = _karcher(m, xs)
    # the mean is a critical point of the sum of squared distances
    assert float(m.log(mean.expand_as(xs), xs).mean(0).norm()) < 1e-12
    centred = G.gyro_add(G.gyro_inv(mean).expand_as(xs), xs)
    e = m.identity(dtype=D)
    new_mean = _karcher(m, centred)
    assert float(m.dist(new_mean, e)) <= 1e-8
    # distances to the mean are preserved
    torch.testing.assert_close(m.dist(centred, e.expand_as(centred)), m.dist(xs, mean.expand_as(xs)))
    # a Cayley transform in place of expm misses the identity by far more (the known bug)
    cayley = _cayley_add(G.gyro_inv(mean).expand_as(xs), xs)
    assert float(m.dist(_karcher(m, cayley), e)) > 1e-4, float(m.dist(_karcher(m, cayley), e))
    print(f"centred mean to identity: expm {float(m.dist(new_mean, e)):.2e}, "
          f"Cayley {float(m.dist(_karcher(m, cayley), e)):.2e}")


def test_gradients_are_finite_and_correct(gen):
    m = Grassmann(4, 2)
    x = m.random_point(generator=gen, dtype=D)
    y = m.random_point(generator=gen, dtype=D)
    xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: G.gyro_add(m.project_point(a), y), (xg,))
    assert torch.autograd.gradcheck(lambda b: G.gyro_add(x, b), (yg,))
    assert torch.autograd.gradcheck(lambda a: G.gyro_scalar(0.7, m.project_point(a)), (xg,))
    # at the identity (all principal angles zero) the spectral backward stays finite
    e = m.identity(dtype=D).requires_grad_(True)
    (g,) = torch.autograd.grad(G.gyro_add(e, y).sum() + G.gyro_inv(e).sum(), e)
    assert torch.isfinite(g).all()
