"""Gyrovector structure of the Grassmannian ``Gr(n, p)`` (Nguyen & Yang, ICML 2023; GyroBN).

Points are orthonormal bases ``X`` (``(*batch, n, p)``); the identity is ``I_{n,p}`` (first ``p``
columns of ``I_n``). A tangent vector at the identity is ``U = [0; B]`` with
``B ∈ R^{(n−p)×p}``; its block-skew generator ``Ω(B) = [[0, −Bᵀ], [B, 0]]`` gives the geodesic
``exp_I(tU) = expm(tΩ) I_{n,p}``. With ``B_X`` the lower block of ``log_I(X)``:

* ``X ⊕ Y = expm(Ω(B_X)) Y`` — left translation by the transvection carrying ``I`` to ``X``
  (an isometry: ``d(X ⊕ Y, X ⊕ Z) = d(Y, Z)``, and ``X ⊕ I`` spans ``span(X)``),
* ``r ⊙ X = expm(r Ω(B_X)) I_{n,p} = exp_I(r log_I X)``,
* ``⊖X = (−1) ⊙ X``.

``expm`` is the true matrix exponential, evaluated in closed form from spectral functions of the
``p × p`` matrix ``BᵀB`` (``C = cos√·``, ``S = sinc√·``, ``A = (1 − cos√·)/·``)::

    expm(Ω(B)) = [[C, −S Bᵀ], [B S, I − B A Bᵀ]]

— exact, orthogonal to rounding, and never formed as an ``n × n`` matrix. A Cayley transform in
its place (as in the public GyroBN code) is only a second-order approximation: ``⊖X ⊕ X`` then
misses the identity by ``O(‖B‖³)``, and gyro-centring a batch no longer sends its Fréchet mean
to the identity.

Bases: ``⊕`` acts on the basis of ``Y`` (``I ⊕ Y = Y`` as matrices); ``⊙`` and ``⊖`` return the
*canonical* basis of their subspace, the one whose top ``p × p`` block is symmetric positive
definite (:func:`canonical_basis`). For canonical ``X``, ``⊖X ⊕ X = I_{n,p}`` and
``X ⊕ X = 2 ⊙ X`` hold as matrices; for any basis they hold as subspaces. Everything is defined
while ``I_{n,p}ᵀX`` is invertible (principal angles to the identity below ``π/2``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .grassmann import grassmann_exp, grassmann_log
from .spectral import sym_functions
from .stiefel import polar
from .trig_fns import COS_SQRT, SINC_SQRT, VERSIN_SQRT

__all__ = [
    "identity",
    "generator",
    "transvection",
    "gyro_add",
    "gyro_scalar",
    "gyro_inv",
    "canonical_basis",
]


def _tr(a: Tensor) -> Tensor:
    return a.transpose(-1, -2)


def identity(n: int, p: int, *batch: int, dtype=None, device=None) -> Tensor:
    """``I_{n,p}``, the first ``p`` columns of ``I_n``, ``(*batch, n, p)``."""
    e = torch.eye(n, p, dtype=dtype, device=device)
    return e.expand(tuple(batch) + (n, p)).clone()


def _log_block(x: Tensor) -> Tensor:
    """Lower block ``B`` of ``log_{I_{n,p}}(X) = [0; B]``, ``(*batch, n−p, p)``."""
    n, p = x.shape[-2], x.shape[-1]
    e = identity(n, p, dtype=x.dtype, device=x.device)
    return grassmann_log(e.expand_as(x), x)[..., p:, :]


def generator(x: Tensor) -> Tensor:
    """The block-skew generator ``Ω = [[0, −Bᵀ], [B, 0]]`` of ``X``, ``(*batch, n, n)``."""
    b = _log_block(x)
    n, p = x.shape[-2], x.shape[-1]
    omega = torch.zeros(*b.shape[:-2], n, n, dtype=x.dtype, device=x.device)
    omega[..., p:, :p] = b
    omega[..., :p, p:] = -_tr(b)
    return omega


def _apply_expm(b: Tensor, y: Tensor) -> Tensor:
    """``expm(Ω(B)) Y`` in closed form, ``(*batch, n, k)``."""
    p = b.shape[-1]
    c, s, a = sym_functions(_tr(b) @ b, [COS_SQRT, SINC_SQRT, VERSIN_SQRT])
    yt, yb = y[..., :p, :], y[..., p:, :]
    bty = _tr(b) @ yb
    top = c @ yt - s @ bty
    bottom = b @ (s @ yt) + yb - b @ (a @ bty)
    return torch.cat((top, bottom), -2)


def transvection(x: Tensor) -> Tensor:
    """``expm(Ω(B_X))``, the orthogonal ``n × n`` matrix carrying ``I_{n,p}`` to ``span(X)``."""
    n = x.shape[-2]
    eye = torch.eye(n, dtype=x.dtype, device=x.device).expand(*x.shape[:-2], n, n)
    return _apply_expm(_log_block(x), eye)


def gyro_add(x: Tensor, y: Tensor) -> Tensor:
    """``X ⊕ Y = expm(Ω(B_X)) Y``, ``(*batch, n, p)`` (keeps the basis of ``Y``).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.grassmann_gyro import gyro_add, gyro_inv, identity
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.linalg.qr(torch.randn(5, 2, dtype=torch.float64, generator=g))[0]
    >>> e = gyro_add(gyro_inv(x), x)  # spans the identity subspace
    >>> i = identity(5, 2, dtype=torch.float64)
    >>> float((e @ e.mT - i @ i.mT).abs().max()) < 1e-14
    True
    """
    x, y = torch.broadcast_tensors(x, y)
    return _apply_expm(_log_block(x), y)


def gyro_scalar(r: Tensor | float, x: Tensor) -> Tensor:
    """``r ⊙ X = exp_I(r log_I X)`` (canonical basis); ``r`` a float or ``(*batch,)`` tensor."""
    n, p = x.shape[-2], x.shape[-1]
    e = identity(n, p, dtype=x.dtype, device=x.device).expand_as(x)
    rr = torch.as_tensor(r, dtype=x.dtype, device=x.device)
    rr = rr.reshape(rr.shape + (1, 1))
    return grassmann_exp(e, rr * grassmann_log(e, x))


def gyro_inv(x: Tensor) -> Tensor:
    """``⊖X = (−1) ⊙ X`` (canonical basis)."""
    return gyro_scalar(-1.0, x)


def canonical_basis(x: Tensor) -> Tensor:
    """The basis of ``span(X)`` whose top ``p × p`` block is symmetric positive definite.

    ``X Wᵀ`` with ``W`` the orthogonal polar factor of the top block; equals
    ``exp_I(log_I X)`` (and ``1 ⊙ X``). Needs the top block to be invertible.
    """
    p = x.shape[-1]
    return x @ _tr(polar(x[..., :p, :]))
