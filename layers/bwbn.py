"""Batch normalization under the (generalized, power-deformed) Bures–Wasserstein geometry.

Following GBWBN (Wang et al. 2025), the metric is the generalized Bures–Wasserstein metric
``GBW_A`` with a *learnable* SPD parameter ``A`` (the pullback of BW by ``X ↦ A^{-1/2} X A^{-1/2}``),
power-deformed by ``θ`` (pullback by ``X ↦ X^θ``, scaled by ``1/θ²``). Writing
``Z = A^{-1/2} X^θ A^{-1/2}`` (the plain BW frame), one step is the general Riemannian batch norm:

* ``Mz``: BW Fréchet mean of the ``Zᵢ`` (fixed point of Álvarez-Esteban et al.);
* ``uᵢ = Log_{Mz}(Zᵢ)``, dispersion ``σ² = mean ⟨uᵢ, uᵢ⟩_{Mz} / θ²``;
* ``wᵢ = Γ_{Mz→Bz}(uᵢ) · s/√(σ² + eps)`` (BW parallel transport to the bias
  ``Bz = A^{-1/2} B^θ A^{-1/2}``), ``Yᵢ = (A^{1/2} Exp_{Bz}(wᵢ) A^{1/2})^{1/θ}``.

Transport is linear and isometric, so the output batch has GBW mean ``B`` and dispersion
``s² σ²/(σ² + eps)``, to the accuracy of the numerical BW transport of non-commuting pairs
(RK4 with Richardson extrapolation, see :func:`~riemlearn.manifolds.spd_bures_wasserstein.bw_transport`;
``transport_steps`` trades time for accuracy) and while ``Exp_{Bz}`` stays a minimizing
geodesic (``I + L_{Bz}[w]`` positive definite; true for the moderate dispersions a scale near 1
gives). The metric parameter ``A`` and the bias ``B`` are
:class:`~riemlearn.optim.ManifoldParameter` s on SPD.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..manifolds import SPD
from ..manifolds.spd_affine_invariant import AffineInvariant
from ..manifolds.spd_bures_wasserstein import (
    DEFAULT_TRANSPORT_STEPS,
    BuresWasserstein,
    GeneralizedBuresWasserstein,
    bw_exp,
    bw_inner,
    bw_log,
    bw_transport,
)
from ..manifolds.spectral import powm, sqrtm_invsqrtm, sym
from ..optim import ManifoldParameter
from ..stats.frechet_mean import frechet_mean
from .batchnorm import RiemannianBatchNorm

__all__ = ["BWBatchNorm"]

_BW = SPD(metric=BuresWasserstein())


class BWBatchNorm(RiemannianBatchNorm):
    """Bures–Wasserstein batch norm with a learnable GBW metric parameter and power deformation.

    Parameters
    ----------
    n : int
        Matrix size.
    num_channels : int, optional
        ``C`` for ``(batch, C, n, n)`` inputs.
    theta : float
        Power deformation (default 1; GBWBN uses e.g. 0.5).
    learn_metric : bool
        Learn the GBW parameter ``A`` (identity at initialisation: plain BW). Default True.
    transport_steps : int
        RK4 steps of the BW parallel transport.
    **kwargs
        ``momentum``, ``dispersion``, ``eps``, ``learn_bias``, ``learn_scale``,
        ``track_running_stats``, ``max_iter``, ``tol``, ``dtype``, ``device``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import BWBatchNorm
    >>> from riemlearn.manifolds import SPD
    >>> x = SPD(3).random_point(8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> bn = BWBatchNorm(3, theta=0.5, dtype=torch.float64)
    >>> bn(x).shape
    torch.Size([8, 3, 3])
    """

    def __init__(self, n: int, num_channels: int | None = None, *, theta: float = 1.0,
                 learn_metric: bool = True, transport_steps: int = DEFAULT_TRANSPORT_STEPS,
                 **kwargs) -> None:
        theta = float(theta)
        if theta == 0.0 or theta != theta:
            raise ValueError(f"theta must be finite and non-zero, got {theta}")
        if int(transport_steps) < 1:
            raise ValueError(f"transport_steps must be >= 1, got {transport_steps}")
        self.theta = theta
        self.transport_steps = int(transport_steps)
        super().__init__(n, num_channels, **kwargs)
        eye = self.running_mean.detach().clone()
        self.metric_param = ManifoldParameter(eye, manifold=SPD(n, AffineInvariant()),
                                              requires_grad=learn_metric)

    @property
    def manifold(self) -> SPD:
        """``SPD(n)`` with the GBW metric at the *current* parameter ``A`` (first channel)."""
        a = self.metric_param.detach()[0] if hasattr(self, "metric_param") else None
        if a is None:
            return SPD(self.n, BuresWasserstein(self.theta))
        return SPD(self.n, GeneralizedBuresWasserstein(a, self.theta))

    def bias_manifold(self) -> SPD:
        return SPD(self.n, BuresWasserstein(self.theta))

    # -- frame maps -------------------------------------------------------------------------------
    def _factors(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        return sqrtm_invsqrtm(self.metric_param.to(dtype))  # (C, n, n)

    def _to_frame(self, x: Tensor, ninv: Tensor) -> Tensor:
        p = x if self.theta == 1.0 else powm(x, self.theta)
        k = ninv if x.dim() == ninv.dim() else ninv.unsqueeze(1)
        return sym(k @ p @ k)

    def _from_frame(self, z: Tensor, a: Tensor) -> Tensor:
        k = a if z.dim() == a.dim() else a.unsqueeze(1)
        y = sym(k @ z @ k)
        return y if self.theta == 1.0 else powm(y, 1.0 / self.theta)

    # -- hooks ---------------------------------------------------------------------------------
    def _batch_mean(self, x: Tensor, init: Tensor | None) -> Tensor:
        a, ninv = self._factors(x.dtype)
        z = self._to_frame(x, ninv)
        iz = self._to_frame(init, ninv) if init is not None else None
        mz = frechet_mean(z, _BW, init=iz, tol=self.tol, max_iter=self.max_iter)
        return self._from_frame(mz, a)

    def _geodesic(self, a: Tensor, b: Tensor, t: float) -> Tensor:
        s, ninv = self._factors(a.dtype)
        s, ninv = s.detach(), ninv.detach()
        za, zb = self._to_frame(a, ninv), self._to_frame(b, ninv)
        return self._from_frame(_BW.geodesic(za, zb, t), s)

    def _center(self, x: Tensor, mean: Tensor) -> tuple[Tensor, Tensor]:
        _, ninv = self._factors(x.dtype)
        z = self._to_frame(x, ninv)
        mz = self._to_frame(mean, ninv).unsqueeze(1).expand_as(z)
        return bw_log(mz, z), mz

    def _sqnorm(self, v: tuple[Tensor, Tensor]) -> Tensor:
        u, mz = v
        return bw_inner(mz, u, u) / self.theta**2

    def _scale_tangent(self, v: tuple[Tensor, Tensor], factor: Tensor) -> tuple[Tensor, Tensor]:
        u, mz = v
        return u * factor[:, None, None, None], mz

    def _decenter(self, v: tuple[Tensor, Tensor], bias: Tensor) -> Tensor:
        u, mz = v
        a, ninv = self._factors(u.dtype)
        bz = self._to_frame(bias, ninv).unsqueeze(1).expand_as(u)
        w = bw_transport(mz, bz, u, self.transport_steps)
        return self._from_frame(bw_exp(bz, w), a)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", theta={self.theta}"
