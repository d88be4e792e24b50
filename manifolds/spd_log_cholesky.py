"""Log-Cholesky metric (Lin 2019): closed forms through the Cholesky factor.

With ``x = L Lᵀ`` (``L`` lower triangular, positive diagonal), the map
``Φ(x) = ⌊L⌋ + log 𝔻(L)`` (strictly lower part plus the log of the diagonal) is an isometry onto
lower-triangular matrices with the Frobenius metric. Hence, with
``DΦ_x[u] = ⌊X⌋ + 𝔻(L)⁻¹𝔻(X)``, ``X = L (L⁻¹ u L⁻ᵀ)_½`` (``(A)_½ = ⌊A⌋ + ½𝔻(A)``):

* ``⟨u, v⟩_x = ⟨DΦ_x[u], DΦ_x[v]⟩``, ``d(x, y) = ‖Φ(x) − Φ(y)‖``,
* ``Exp_x(u) = Φ⁻¹(Φ(x) + DΦ_x[u])``, ``Log_x(y) = DΦ_x⁻¹[Φ(y) − Φ(x)]``,
* parallel transport ``DΦ_y⁻¹ DΦ_x`` (Lin 2019, Prop. 7), geodesics ``Φ⁻¹((1−t)Φ(x) + tΦ(y))``,
* gyrogroup ``Φ(P ⊕ Q) = Φ(P) + Φ(Q)``, i.e. ``(⌊L⌋ + ⌊K⌋ + 𝔻(L)𝔻(K))(·)ᵀ``.

``torch.linalg.cholesky`` is not a spectral function and is differentiable everywhere on SPD.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import safe_sqrt
from .spd_base import SPDMetric, fro_inner
from .spectral import sym

__all__ = ["LogCholesky", "cholesky_log", "cholesky_exp", "lc_dphi", "lc_dphi_inv", "lc_dist"]


def _diag(a: Tensor) -> Tensor:
    return torch.diagonal(a, dim1=-2, dim2=-1)


def _strict(a: Tensor) -> Tensor:
    return torch.tril(a, -1)


def _chol(x: Tensor) -> Tensor:
    """Cholesky factor of ``sym(x)``.

    ``torch.linalg.cholesky`` reads only the lower triangle, so without autograd the explicit
    symmetrization (a full extra pass) is skipped; when ``x`` is tracked, ``sym`` keeps the
    derivative in every direction (the lower triangle alone would see only half of them).
    """
    if x.requires_grad and torch.is_grad_enabled():
        x = sym(x)
    return torch.linalg.cholesky(x)


def _tri_inv_congruence(c: Tensor, u: Tensor) -> Tensor:
    """``L⁻¹ u L⁻ᵀ`` (not symmetrized). A point ``L`` shared by a batch of ``u`` is inverted
    once and applied with two matrix products (as pyriemann does); otherwise two batched
    triangular solves."""
    if c.shape[:-2] != u.shape[:-2] and c[..., 0, 0].numel() < u[..., 0, 0].numel():
        eye = torch.eye(c.shape[-1], dtype=c.dtype, device=c.device)
        ci = torch.linalg.solve_triangular(c, eye, upper=False)
        return ci @ u @ ci.mT
    a = torch.linalg.solve_triangular(c, u, upper=False)
    return torch.linalg.solve_triangular(c, a.mT, upper=False)


def _set_diag(a: Tensor, d: Tensor) -> Tensor:
    """Overwrite the diagonal of the fresh intermediate ``a`` (one in-place pass, exact)."""
    _diag(a).copy_(d)
    return a


def _half(a: Tensor) -> Tensor:
    """``(sym a)_½ = ⌊sym a⌋ + ½𝔻(a)`` (lower triangular)."""
    h = torch.tril(a + a.mT) * 0.5
    _diag(h).mul_(0.5)
    return h


def cholesky_log(x: Tensor) -> Tensor:
    """``Φ(x) = ⌊L⌋ + diag(log diag L)`` for ``x = L Lᵀ`` (lower triangular ``(*batch, n, n)``)."""
    c = _chol(x)
    return _strict(c) + torch.diag_embed(torch.log(_diag(c)))


def cholesky_exp(z: Tensor) -> Tensor:
    """``Φ⁻¹(z)``: ``L = ⌊z⌋ + diag(exp diag z)``, returns ``L Lᵀ``."""
    c = _strict(z) + torch.diag_embed(torch.exp(_diag(z)))
    return sym(c @ c.mT)


def _dphi_from_chol(c: Tensor, u: Tensor) -> Tensor:
    # (c h) is lower triangular with diagonal 𝔻(c)𝔻(h), so DΦ = ⌊c h⌋ + 𝔻(h).
    h = _half(_tri_inv_congruence(c, u))
    return _set_diag(c @ h, _diag(h))


def _dphi_inv_from_chol(c: Tensor, z: Tensor) -> Tensor:
    x = _strict(z) + torch.diag_embed(_diag(c) * _diag(z))
    p = x @ c.mT
    return p + p.mT


def lc_dphi(x: Tensor, u: Tensor) -> Tensor:
    """``DΦ_x[u]`` (lower triangular)."""
    return _dphi_from_chol(_chol(x), u)


def lc_dphi_inv(x: Tensor, z: Tensor) -> Tensor:
    """``DΦ_x⁻¹[z]`` for lower-triangular ``z`` (symmetric result)."""
    return _dphi_inv_from_chol(_chol(x), z)


def lc_dist(x: Tensor, y: Tensor) -> Tensor:
    """``‖Φ(x) − Φ(y)‖_F``, shape ``(*batch,)``.

    ``√(‖⌊L − K⌋‖² + ‖log(diag L / diag K)‖²)`` for ``sym(x) = L Lᵀ``, ``sym(y) = K Kᵀ``.
    """
    cx = _chol(x)
    cy = _chol(y)
    d = _set_diag(cx - cy, torch.log(_diag(cx) / _diag(cy)))  # ⌊L − K⌋ + log 𝔻(L)/𝔻(K)
    if torch.is_grad_enabled() and d.requires_grad:
        return safe_sqrt(d.square().sum((-2, -1)))  # zero, not NaN, gradient at x = y
    return torch.linalg.vector_norm(d, dim=(-2, -1))  # one pass


def _safe_norm(d: Tensor) -> Tensor:
    return safe_sqrt(fro_inner(d, d))


class LogCholesky(SPDMetric):
    """Log-Cholesky metric of Lin (2019), with power deformation ``θ``.

    Parameters
    ----------
    theta : float, default 1.0
        Power deformation (pullback by ``P ↦ P^θ``, scaled by ``1/θ²``).
    compute_dtype : "auto", None or torch.dtype
        ``"auto"`` computes float32 inputs in float64 (see :class:`SPDMetric`).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> m = SPD(3, metric="log_cholesky")
    >>> x = m.random_point(generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> u = m.random_tangent(x, generator=torch.Generator().manual_seed(1))
    >>> torch.allclose(m.log(x, m.exp(x, u)), u)
    True
    """

    name = "log_cholesky"
    has_gyro = True
    supports_alpha_beta = False

    def __init__(self, theta: float = 1.0, *, compute_dtype: torch.dtype | str | None = "auto") -> None:
        super().__init__(theta, compute_dtype=compute_dtype)

    def _params(self) -> tuple:
        return (self.theta, self.compute_dtype)

    def _inner1(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        c = _chol(x)
        a = _dphi_from_chol(c, u)
        b = a if v is u else _dphi_from_chol(c, v)
        return fro_inner(a, b)

    def _exp1(self, x: Tensor, u: Tensor) -> Tensor:
        # Φ⁻¹(Φ(x) + DΦ_x[u]): factor ⌊L + L h⌋ + 𝔻(L) exp 𝔻(h), h = (L⁻¹ u L⁻ᵀ)_½.
        c = _chol(x)
        h = _half(_tri_inv_congruence(c, u))
        k = _set_diag(c + c @ h, _diag(c) * torch.exp(_diag(h)))
        return k @ k.mT  # symmetric to roundoff (no extra symmetrization pass)

    def _log1(self, x: Tensor, y: Tensor) -> Tensor:
        # DΦ_x⁻¹[Φ(y) − Φ(x)] = P + Pᵀ, P = X Lᵀ, X = ⌊K − L⌋ + 𝔻(L) log(𝔻(K)/𝔻(L)).
        c = _chol(x)
        k = _chol(y)
        dc = _diag(c)
        xx = _set_diag(k - c, dc * torch.log(_diag(k) / dc))
        p = xx @ c.mT
        return p + p.mT

    def _dist1(self, x: Tensor, y: Tensor) -> Tensor:
        return lc_dist(x, y)

    def _transport1(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return lc_dphi_inv(y, lc_dphi(x, v))

    def _geodesic1(self, x: Tensor, y: Tensor, t: Tensor) -> Tensor:
        a = cholesky_log(x)
        return cholesky_exp(a + t * (cholesky_log(y) - a))

    def _rgrad1(self, x: Tensor, g: Tensor) -> Tensor:
        # grad = DΦ⁻¹ (DΦ⁻¹)* G with (DΦ⁻¹)*G = 2⌊GL⌋ + 2𝔻(L)𝔻(GL).
        c = _chol(x)
        gl = g @ c
        z = 2 * _strict(gl) + 2 * torch.diag_embed(_diag(c) * _diag(gl))
        return _dphi_inv_from_chol(c, z)

    def _rhess1(self, x: Tensor, g: Tensor, h: Tensor, u: Tensor) -> Tensor:
        # Flat pullback: Hess = DΦ⁻¹ [D(∇f̃)[DΦ u]], with ∇f̃ = 2⌊GL⌋ + 2𝔻(L)𝔻(GL) and
        # dL = Ẋ = ⌊w⌋ + 𝔻(L)𝔻(w), w = DΦ u, dG = H.
        c = _chol(x)
        w = _dphi_from_chol(c, u)
        xd = _strict(w) + torch.diag_embed(_diag(c) * _diag(w))
        gl = g @ c
        dgl = h @ c + g @ xd
        e = 2 * _strict(dgl) + 2 * torch.diag_embed(_diag(xd) * _diag(gl) + _diag(c) * _diag(dgl))
        return _dphi_inv_from_chol(c, e)

    def _gyro_add1(self, x: Tensor, y: Tensor) -> Tensor:
        return cholesky_exp(cholesky_log(x) + cholesky_log(y))

    def _gyro_scalar1(self, r: Tensor, x: Tensor) -> Tensor:
        return cholesky_exp(r * cholesky_log(x))

    def _gyro_inv1(self, x: Tensor) -> Tensor:
        return cholesky_exp(-cholesky_log(x))

    def identity_coords(self, a: Tensor) -> Tensor:
        """``DΦ_I[a] = ⌊a⌋ + ½𝔻(a)``, symmetrized and scaled so that vech is an isometry."""
        z = _strict(a) + 0.5 * torch.diag_embed(_diag(a))
        # ‖z‖² = Σ_{i>j} z_ij² + Σ z_ii²; vech weighs off-diagonals by √2, so divide them by √2.
        off = z - torch.diag_embed(_diag(z))
        return torch.diag_embed(_diag(z)) + (off + off.mT) / math.sqrt(2.0)

    def identity_coords_inv(self, c: Tensor) -> Tensor:
        """Inverse of :meth:`identity_coords`."""
        d = _diag(c)
        return sym(c - torch.diag_embed(d)) * math.sqrt(2.0) + torch.diag_embed(2 * d)
