"""LieBN: Lie-group batch normalization of SPD matrices (Chen et al., ICLR 2024).

The SPD matrices carry three Lie group structures whose left translations are isometries of
the matching metric; LieBN centres a batch by the group inverse of its Fréchet mean, scales in
the Lie algebra, and biases by a group translation:

=====  =====================================================  ===================================
AIM    ``P ⊙ Q = L_P Q L_Pᵀ`` (``P = L_P L_Pᵀ`` Cholesky)     algebra coordinate ``log(·)``
LEM    ``P ⊙ Q = exp(log P + log Q)``                         ``log(·)``
LCM    ``Φ(P ⊙ Q) = Φ(P) + Φ(Q)``, ``Φ = ⌊L⌋ + log 𝔻(L)``      ``Φ(·)`` (lower triangular)
=====  =====================================================  ===================================

With the power deformation ``θ`` (metric pulled back by ``P ↦ P^θ`` and scaled by ``1/θ²``)
everything runs on ``X^θ`` and the output is raised to ``1/θ``; ``(α, β)`` weight the inner
product ``α⟨V, W⟩ + β tr V tr W`` of the AIM and LEM algebras (the Fréchet mean does not depend
on them, the dispersion does). In train mode the output's Fréchet mean under the layer's metric
is the bias ``B`` and its dispersion ``s² σ²/(σ² + eps)``. LEM is invariant under ``θ``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..manifolds import SPD
from ..manifolds.spd_affine_invariant import AffineInvariant
from ..manifolds.spd_log_cholesky import LogCholesky, cholesky_exp, cholesky_log
from ..manifolds.spd_log_euclidean import LogEuclidean
from ..manifolds.spectral import expm, logm, powm, sym
from ..stats.frechet_mean import frechet_mean
from ._dispersion_power import dispersion_power
from .batchnorm import RiemannianBatchNorm

__all__ = ["LieBatchNorm", "LIEBN_METRICS"]

LIEBN_METRICS = ("aim", "lem", "lcm")


def _trace(v: Tensor) -> Tensor:
    return torch.diagonal(v, dim1=-2, dim2=-1).sum(-1)


class LieBatchNorm(RiemannianBatchNorm):
    """LieBN (Chen et al. 2024) for the affine-invariant, log-Euclidean and log-Cholesky metrics.

    Parameters
    ----------
    n : int
        Matrix size.
    num_channels : int, optional
        ``C`` for ``(batch, C, n, n)`` inputs.
    metric : {"aim", "lem", "lcm"}
        The Lie group / metric (default ``"aim"``).
    theta : float
        Power deformation (default 1; ignored by LEM, which is invariant under it).
    alpha, beta : float
        ``(α, β)`` of the AIM and LEM metrics (LCM has none).
    **kwargs
        ``momentum``, ``dispersion``, ``eps``, ``learn_bias``, ``learn_scale``,
        ``track_running_stats``, ``max_iter``, ``tol``, ``dtype``, ``device`` (see
        :class:`~riemlearn.layers.batchnorm.RiemannianBatchNorm`).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import LieBatchNorm
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats import frechet_mean
    >>> x = SPD(3).random_point(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> bn = LieBatchNorm(3, metric="lcm", theta=0.5, dtype=torch.float64)
    >>> m = frechet_mean(bn(x), bn.manifold)
    >>> torch.allclose(m, torch.eye(3, dtype=torch.float64))
    True
    """

    def __init__(self, n: int, num_channels: int | None = None, *, metric: str = "aim",
                 theta: float = 1.0, alpha: float = 1.0, beta: float = 0.0, **kwargs) -> None:
        if metric not in LIEBN_METRICS:
            raise ValueError(f"metric must be one of {LIEBN_METRICS}, got {metric!r}")
        self.metric = metric
        self.theta, self.alpha, self.beta = float(theta), float(alpha), float(beta)
        if metric == "aim":
            met = AffineInvariant(theta, alpha, beta)
        elif metric == "lem":
            met = LogEuclidean(1.0, alpha, beta)
            self.theta = 1.0
        else:
            if alpha != 1.0 or beta != 0.0:
                raise ValueError("the log-Cholesky metric has no (alpha, beta) family")
            met = LogCholesky(theta)
        self._manifold = SPD(n, met)
        super().__init__(n, num_channels, **kwargs)
        self._cache: tuple[Tensor, Tensor] | None = None

    @property
    def manifold(self) -> SPD:
        return self._manifold

    # -- helpers ------------------------------------------------------------------------------
    def _pow(self, x: Tensor) -> Tensor:
        return x if self.theta == 1.0 else powm(x, self.theta)

    def _unpow(self, x: Tensor) -> Tensor:
        return x if self.theta == 1.0 else powm(x, 1.0 / self.theta)

    def _ab(self, v: Tensor) -> Tensor:
        out = v.square().sum((-2, -1))
        if self.alpha != 1.0:
            out = self.alpha * out
        if self.beta != 0.0:
            out = out + self.beta * _trace(v).square()
        return out

    def _batch_mean(self, x: Tensor, init: Tensor | None) -> Tensor:
        if self.metric == "lem":  # closed form, reusing log X for the centring
            lx = logm(x)
            self._cache = (x, lx)
            return expm(lx.mean(1))
        return frechet_mean(x, self.manifold, init=init, tol=self.tol, max_iter=self.max_iter)

    def _forward_grouped(self, xg: Tensor, rm: Tensor, rv: Tensor, nbt: Tensor) -> Tensor:
        if self.metric != "aim" or not self.dispersion:
            return super()._forward_grouped(xg, rm, rv, nbt)
        # AIM with dispersion: centre, scale and bias with one eigendecomposition of the centred
        # points (Z^f instead of expm(f logm Z)), see _dispersion_power.
        mean, batch = self._step_mean(xg, rm, nbt)
        c = torch.linalg.cholesky(sym(self._pow(mean))).unsqueeze(1)
        z = torch.linalg.solve_triangular(c, self._pow(xg), upper=False)
        z = torch.linalg.solve_triangular(c, z.mT, upper=False)  # L⁻¹ P L⁻ᵀ
        zf, var = dispersion_power(z, self.scale.to(xg.dtype), self.eps, None if batch else rv.to(xg.dtype),
                                   self.alpha, self.beta, self.theta)
        if batch and self.training and self.track_running_stats:
            self._update_running(mean, var, rm, rv, nbt)
        cb = torch.linalg.cholesky(sym(self._pow(self.bias.to(xg.dtype)))).unsqueeze(1)
        return self._unpow(sym(cb @ zf @ cb.mT))

    # -- LieBN steps -----------------------------------------------------------------------------
    def _center(self, x: Tensor, mean: Tensor) -> Tensor:
        if self.metric == "lem":
            cache = getattr(self, "_cache", None)
            lx = cache[1] if cache is not None and cache[0] is x else logm(x)
            self._cache = None
            return lx - logm(mean).unsqueeze(1)
        p, m = self._pow(x), self._pow(mean)
        if self.metric == "aim":
            c = torch.linalg.cholesky(sym(m)).unsqueeze(1)
            z = torch.linalg.solve_triangular(c, p, upper=False)
            z = torch.linalg.solve_triangular(c, z.mT, upper=False)  # L⁻¹ P L⁻ᵀ
            return logm(z)
        return cholesky_log(p) - cholesky_log(m).unsqueeze(1)

    def _sqnorm(self, v: Tensor) -> Tensor:
        if self.metric == "lcm":
            return v.square().sum((-2, -1)) / self.theta**2
        return self._ab(v) / self.theta**2

    def _decenter(self, v: Tensor, bias: Tensor) -> Tensor:
        if self.metric == "lem":
            return expm(v + logm(bias).unsqueeze(1))
        b = self._pow(bias)
        if self.metric == "aim":
            c = torch.linalg.cholesky(sym(b)).unsqueeze(1)
            y = sym(c @ expm(v) @ c.mT)
        else:
            y = cholesky_exp(v + cholesky_log(b).unsqueeze(1))
        return self._unpow(y)

    def extra_repr(self) -> str:
        extra = f", metric={self.metric!r}"
        if self.theta != 1.0:
            extra += f", theta={self.theta}"
        if self.alpha != 1.0 or self.beta != 0.0:
            extra += f", alpha={self.alpha}, beta={self.beta}"
        return super().extra_repr() + extra
