"""Grassmann network layers (GrNet, Huang, Wu & Van Gool, AAAI 2018).

Subspaces are orthonormal bases ``(*batch, n, p)`` (or multi-channel ``(batch, C, n, p)``);
projection matrices ``X Xᵀ`` are ``(*batch, n, n)``. A GrNet block is
``FRMap → ReOrth → ProjMap → ProjPool → OrthMap``; the output stage is ``ProjMap`` followed by
a Euclidean classifier.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..manifolds.spectral import eigh, sym
from ..manifolds.tolerance import tie_threshold
from .spd import _stiefel_weight

__all__ = ["FRMap", "ReOrth", "OrthMap", "ProjMap", "ProjPool", "top_eigenvectors"]


def _check_basis_input(x: Tensor, n: int | None, name: str = "input") -> None:
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (*batch, n, p), got {tuple(x.shape)}")
    if n is not None and x.shape[-2] != n:
        raise ValueError(f"{name} has {x.shape[-2]} rows, expected {n}")


class FRMap(nn.Module):
    """Full-rank mapping ``X ↦ Wᵀ X`` with ``W`` (``n_in × n_out``) on the Stiefel manifold.

    GrNet's weights are full-rank matrices; as in the reference implementation they are kept
    semi-orthogonal (a :class:`~riemlearn.optim.ManifoldParameter` on ``Stiefel(n_in, n_out)``,
    found by the Riemannian optimizers with no wiring). The output is not orthonormal: follow with
    :class:`ReOrth`. With channels, input ``(batch, in_channels, n, p)`` (or ``(*batch, n, p)``
    for one input channel) gives ``(batch, out_channels, m, p)``; output channel ``o`` sums
    ``W_{o,c}ᵀ X_c`` over input channels.

    Parameters
    ----------
    in_features, out_features : int
        ``n_in >= n_out``.
    in_channels, out_channels : int
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> layer = FRMap(6, 4, out_channels=3, dtype=torch.float64)
    >>> layer(torch.eye(6, 2, dtype=torch.float64).expand(5, 6, 2)).shape
    torch.Size([5, 3, 4, 2])
    """

    def __init__(self, in_features: int, out_features: int, in_channels: int = 1, out_channels: int = 1, *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.manifold, self.weight = _stiefel_weight("FRMap", in_features, out_features, in_channels,
                                                     out_channels, dtype, device, generator)
        self.in_features, self.out_features = in_features, out_features
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> Tensor:
        _check_basis_input(x, self.in_features)
        w = self.weight.to(x.dtype)
        if self.in_channels == 1:
            if x.dim() >= 3 and x.shape[-3] == 1 and self.out_channels > 1:
                x = x.squeeze(-3)
            y = w[:, 0].mT @ x.unsqueeze(-3)  # (*batch, C_out, m, p)
            return y.squeeze(-3) if self.out_channels == 1 else y
        if x.dim() < 3 or x.shape[-3] != self.in_channels:
            raise ValueError(f"FRMap expects (batch, {self.in_channels}, n, p), got {tuple(x.shape)}")
        return (w.mT @ x.unsqueeze(-4)).sum(-3)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, channels {self.in_channels}->{self.out_channels}"


class ReOrth(nn.Module):
    """Re-orthonormalisation by QR: ``Y = QR ↦ Q`` with ``diag(R) > 0`` (unique, smooth).

    Needs full column rank (as GrNet's FRMap outputs have almost surely).
    """

    def forward(self, x: Tensor) -> Tensor:
        _check_basis_input(x, None)
        if x.shape[-2] < x.shape[-1]:
            raise ValueError(f"ReOrth needs n >= p, got {tuple(x.shape[-2:])}")
        q, r = torch.linalg.qr(x)
        d = torch.diagonal(r, dim1=-2, dim2=-1)
        sign = torch.where(d < 0, -1.0, 1.0).to(x.dtype)
        return q * sign.unsqueeze(-2)


class ProjMap(nn.Module):
    """Projection mapping ``X ↦ X Xᵀ`` (``(*batch, n, p) → (*batch, n, n)``)."""

    def forward(self, x: Tensor) -> Tensor:
        _check_basis_input(x, None)
        return x @ x.mT


class ProjPool(nn.Module):
    """Average pooling of projection matrices over groups of ``kernel_size`` channels.

    ``(batch, C, n, n) → (batch, C / kernel_size, n, n)``: the mean of projection matrices (the
    extrinsic mean, GrNet's ProjPooling across projection matrices); follow with
    :class:`OrthMap` to return to the Grassmannian.

    Parameters
    ----------
    kernel_size : int
        Channels per group (must divide ``C``).
    """

    def __init__(self, kernel_size: int = 2) -> None:
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.kernel_size = int(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"input must have shape (*batch, C, n, n), got {tuple(x.shape)}")
        c = x.shape[-3]
        if c % self.kernel_size:
            raise ValueError(f"kernel_size {self.kernel_size} does not divide the {c} channels")
        n = x.shape[-1]
        return x.reshape(*x.shape[:-3], c // self.kernel_size, self.kernel_size, n, n).mean(-3)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class _TopEigenvectors(torch.autograd.Function):
    """Top-``p`` eigenvectors with the backward of the spanned subspace (see top_eigenvectors)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: int) -> Tensor:
        w, v = eigh(sym(x))
        w, v = w.flip(-1), v.flip(-1)  # descending
        ctx.save_for_backward(w, v)
        ctx.p = p
        return v[..., :p].contiguous()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        w, v = ctx.saved_tensors
        p = ctx.p
        u, vp = v[..., :p], v[..., p:]
        gap = w[..., :p].unsqueeze(-2) - w[..., p:].unsqueeze(-1)  # (n-p, p): λ_j − λ_i > 0
        scale = w.abs().amax(-1, keepdim=True).unsqueeze(-1).clamp_min(1.0)
        floor = tie_threshold(w.dtype) * scale
        gap = torch.where(gap.abs() < floor, floor, gap)
        k = (vp.mT @ g) / gap
        gx = vp @ k @ u.mT
        return sym(gx), None


def top_eigenvectors(x: Tensor, p: int) -> Tensor:
    """Orthonormal eigenvectors of the ``p`` largest eigenvalues of symmetric ``(*batch, n, n)``.

    Returns ``(*batch, n, p)``, columns in descending eigenvalue order. The backward is the
    derivative of the spanned **subspace** (Daleckii–Krein form restricted to pairs across the
    cut): ``X̄ = sym(V_⊥ ((V_⊥ᵀ G) ⊘ (λ_j − λ_i)) Uᵀ)``, ``j`` over the top ``p``, ``i`` over the
    rest. Pairs inside the top block (rotations of the basis within the subspace) are dropped,
    so the backward never divides by gaps inside the block and stays finite at ties there (e.g.
    ``X`` a projection matrix); it is the exact gradient of any loss that depends on the output
    only through its span (``ProjMap``, Grassmann distances, the GrNet head). At a tie *across*
    the cut (``λ_p = λ_{p+1}``) the subspace itself is not unique and not differentiable; the gap
    is then floored at ``tie_threshold(dtype)·max(1, |λ|max)`` so the backward is finite but only
    a bounded surrogate.
    """
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must have shape (*batch, n, n), got {tuple(x.shape)}")
    if not 1 <= p <= x.shape[-1]:
        raise ValueError(f"p must lie in [1, {x.shape[-1]}], got {p}")
    return _TopEigenvectors.apply(x, int(p))


class OrthMap(nn.Module):
    """Orthonormal mapping: the top-``p`` eigenvectors of a symmetric matrix (GrNet OrthMap).

    ``(*batch, n, n) → (*batch, n, p)``; backward as in :func:`top_eigenvectors` (subspace
    derivative: finite at ties within the top block, exact for basis-invariant losses).

    Parameters
    ----------
    p : int
        Subspace dimension.
    """

    def __init__(self, p: int) -> None:
        super().__init__()
        if p < 1:
            raise ValueError(f"p must be >= 1, got {p}")
        self.p = int(p)

    def forward(self, x: Tensor) -> Tensor:
        return top_eigenvectors(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
