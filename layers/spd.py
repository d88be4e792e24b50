"""SPD network layers (SPDNet, Huang & Van Gool 2017): BiMap, ReEig, LogEig, ExpEig, PowEig, ...

Inputs are SPD matrices ``(*batch, n, n)`` or multi-channel ``(batch, channels, n, n)``. Every
eigenvalue function goes through :mod:`riemlearn.manifolds.spectral`, whose Daleckii–Krein
backward stays finite at repeated eigenvalues (the Brooks-style backward used by research code
zeroes tied terms and gives wrong gradients at the identity).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..manifolds import Stiefel
from ..manifolds.spd_vectorize import vech
from ..manifolds.spectral import clampm, expm, logm, powm, sym
from ..optim import ManifoldParameter

__all__ = ["BiMap", "ReEig", "LogEig", "ExpEig", "PowEig", "Vech", "CovariancePool"]


def _check_spd_input(x: Tensor, n: int | None, name: str = "input") -> None:
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (*batch, n, n), got {tuple(x.shape)}")
    if n is not None and x.shape[-1] != n:
        raise ValueError(f"{name} has matrices of size {x.shape[-1]}, expected {n}")


def _stiefel_weight(layer: str, in_features: int, out_features: int, in_channels: int,
                    out_channels: int, dtype: torch.dtype | None, device: torch.device | str | None,
                    generator: torch.Generator | None) -> tuple[Stiefel, ManifoldParameter]:
    """Validated sizes and a random ``(out_channels, in_channels, n_in, n_out)`` Stiefel weight
    (shared by :class:`BiMap` and the Grassmann ``FRMap``)."""
    if not 1 <= out_features <= in_features:
        raise ValueError(
            f"{layer} needs 1 <= out_features <= in_features, got {in_features} -> {out_features}"
        )
    if in_channels < 1 or out_channels < 1:
        raise ValueError("channel counts must be >= 1")
    manifold = Stiefel(in_features, out_features)
    w = manifold.random_point(out_channels, in_channels, generator=generator, dtype=dtype)
    return manifold, ManifoldParameter(w.to(device), manifold=manifold)

class BiMap(nn.Module):
    """Bilinear map ``X ↦ Wᵀ X W`` with ``W`` on the Stiefel manifold (``n_in ≥ n_out``).

    With channels, ``Y_o = Σ_c W_{o,c}ᵀ X_c W_{o,c}`` for input ``(batch, in_channels, n, n)``.
    The weight is a :class:`~riemlearn.optim.ManifoldParameter` on ``Stiefel(n_in, n_out)``, so the
    Riemannian optimizers keep it orthonormal with no user wiring. It is initialised as a random
    point of the Stiefel manifold (Haar-distributed orthonormal columns), which keeps the output
    SPD and its spectrum inside the input's.

    Parameters
    ----------
    in_features, out_features : int
        Matrix sizes ``n_in`` and ``n_out`` (``n_out <= n_in``: a wider output would be singular).
    in_channels, out_channels : int
        Channel counts; with both 1 (default) the input is ``(*batch, n_in, n_in)``.
    dtype, device, generator : optional
        Weight dtype/device and the generator for its initialisation.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import BiMap
    >>> layer = BiMap(5, 3, dtype=torch.float64)
    >>> x = torch.eye(5, dtype=torch.float64).expand(4, 5, 5)
    >>> layer(x).shape
    torch.Size([4, 3, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.manifold, self.weight = _stiefel_weight("BiMap", in_features, out_features, in_channels,
                                                     out_channels, dtype, device, generator)
        self.in_features, self.out_features = in_features, out_features
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> Tensor:
        _check_spd_input(x, self.in_features)
        w = self.weight.to(x.dtype)
        if self.in_channels == 1 and self.out_channels == 1 and (x.dim() == 2 or x.shape[-3] != 1):
            w0 = w[0, 0]
            return sym(w0.mT @ x @ w0)
        if x.dim() < 3 or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"BiMap expects (batch, {self.in_channels}, n, n) for {self.in_channels} input channels, "
                f"got {tuple(x.shape)}"
            )
        # (..., 1, C_in, n, n) against (C_out, C_in, n, m) -> sum over C_in.
        y = (w.mT @ x.unsqueeze(-4) @ w).sum(dim=-3)
        return sym(y)

    def extra_repr(self) -> str:
        ch = ""
        if self.in_channels > 1 or self.out_channels > 1:
            ch = f", channels {self.in_channels}->{self.out_channels}"
        return f"{self.in_features} -> {self.out_features}{ch}"


class ReEig(nn.Module):
    """Eigenvalue rectification ``V max(Λ, eps) Vᵀ`` (the SPDNet non-linearity).

    Parameters
    ----------
    eps : float
        Threshold (default 1e-4).
    """

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        _check_spd_input(x, None)
        return clampm(x, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class LogEig(nn.Module):
    """Matrix logarithm, mapping SPD matrices to the flat space of symmetric matrices.

    Parameters
    ----------
    vectorize : bool
        If True, return ``vech`` with √2-scaled off-diagonals, ``(*batch, n(n+1)/2)``: the
        Frobenius norm of the matrix equals the Euclidean norm of the vector.
    """

    def __init__(self, vectorize: bool = False) -> None:
        super().__init__()
        self.vectorize = vectorize

    def forward(self, x: Tensor) -> Tensor:
        _check_spd_input(x, None)
        y = logm(x)
        return vech(y) if self.vectorize else y


class ExpEig(nn.Module):
    """Matrix exponential of symmetric matrices (the inverse of :class:`LogEig`)."""

    def forward(self, x: Tensor) -> Tensor:
        _check_spd_input(x, None)
        return expm(x)


class PowEig(nn.Module):
    """Matrix power ``X^p`` of SPD matrices.

    Parameters
    ----------
    power : float
        The exponent (e.g. 0.5 for the matrix square root normalisation).
    """

    def __init__(self, power: float) -> None:
        super().__init__()
        self.power = float(power)

    def forward(self, x: Tensor) -> Tensor:
        _check_spd_input(x, None)
        return powm(x, self.power)

    def extra_repr(self) -> str:
        return f"power={self.power}"


class Vech(nn.Module):
    """Layer form of :func:`vech` (isometric flattening of symmetric matrices)."""

    def forward(self, x: Tensor) -> Tensor:
        _check_spd_input(x, None)
        return vech(x)


class CovariancePool(nn.Module):
    """Covariance pooling of feature sequences ``(*batch, channels, time) → (*batch, c, c)``.

    ``C = (1 − α) S + α (tr S / c) I`` with ``S`` the sample covariance (mean removed), which is
    SPD for any ``α > 0`` (shrinkage towards a scaled identity).

    Parameters
    ----------
    shrinkage : float
        ``α`` in ``[0, 1]`` (default 1e-3). With 0, fewer samples than channels gives a singular
        matrix.
    center : bool
        Remove the temporal mean first (default True).
    """

    def __init__(self, shrinkage: float = 1e-3, center: bool = True) -> None:
        super().__init__()
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must lie in [0, 1], got {shrinkage}")
        self.shrinkage = float(shrinkage)
        self.center = center

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ValueError(f"input must have shape (*batch, channels, time), got {tuple(x.shape)}")
        t = x.shape[-1]
        if t < 2:
            raise ValueError("need at least 2 time samples for a covariance")
        if self.center:
            x = x - x.mean(dim=-1, keepdim=True)
        s = x @ x.mT / (t - 1)
        c = x.shape[-2]
        tr = torch.diagonal(s, dim1=-2, dim2=-1).sum(-1)[..., None, None] / c
        eye = torch.eye(c, dtype=x.dtype, device=x.device)
        return (1 - self.shrinkage) * s + self.shrinkage * tr * eye

    def extra_repr(self) -> str:
        return f"shrinkage={self.shrinkage}"
