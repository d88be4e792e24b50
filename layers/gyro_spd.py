"""Gyro layers on SPD matrices under the AI, LE and LC gyro structures (Nguyen & Yang 2023/2024).

With the gyrovector structure of a metric (``P ⊕ Q``, ``⊖P``; identity ``I``) and its
Riemannian logarithm at the identity, a gyro-hyperplane is ``{X : ⟨Log_I((⊖P) ⊕ X), A⟩_I = 0}``
(``P`` SPD, ``A`` symmetric). Nguyen & Yang (ICML 2023, "Building neural networks on matrix
manifolds: a gyrovector space approach"; ICLR 2024, "Matrix manifold neural networks++") build

* :class:`SPDGyroMLR`: ``logit_k(X) = ⟨Log_I((⊖P_k) ⊕ X), A_k⟩_I`` (the signed
  pseudo-gyrodistance to hyperplane ``k`` times ``‖A_k‖_I``),
* :class:`SPDGyroFC`: ``Y = Exp_I(Σ_{(i,j)} v_{ij}(X) E_{ij})`` with ``E_{ij}`` an orthonormal
  basis of ``(T_I, g_I)`` and ``v_{ij}`` the MLR logits of ``m(m+1)/2`` hyperplanes, i.e. the
  output's coordinates at the identity are the input's signed distances to learned hyperplanes.

The metric is any SPD metric with a gyro structure (``"affine_invariant"``, ``"log_euclidean"``,
``"log_cholesky"``, including their ``θ``/``(α, β)`` variants passed as Metric objects). The
hyperplane points ``P_k`` are :class:`~riemlearn.optim.ManifoldParameter` on ``SPD(n, metric)``
(initialised at ``I``); the normals ``A_k = sym(Â_k)`` are Euclidean.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..manifolds import SPD, Metric
from ..manifolds.spectral import sym
from ..optim import ManifoldParameter

__all__ = ["SPDGyroMLR", "SPDGyroFC", "unvech"]


def unvech(v: Tensor, n: int) -> Tensor:
    """Inverse of :func:`riemlearn.layers.vech`: ``(*batch, n(n+1)/2) → (*batch, n, n)``.

    Off-diagonal entries are divided by √2, so ``‖unvech(v)‖_F = ‖v‖``.
    """
    iu = torch.triu_indices(n, n, device=v.device)
    scale = torch.where(iu[0] == iu[1], 1.0, 2.0**-0.5).to(v.dtype)
    out = v.new_zeros(*v.shape[:-1], n, n)
    out[..., iu[0], iu[1]] = v * scale
    out[..., iu[1], iu[0]] = v * scale
    return out


def _spd_manifold(n: int, metric: str | Metric) -> SPD:
    m = SPD(n, metric=metric)
    if not getattr(m.metric, "has_gyro", False):
        raise ValueError(f"metric {m.metric!r} has no gyro structure (use affine_invariant, "
                         "log_euclidean or log_cholesky)")
    return m


class SPDGyroMLR(nn.Module):
    """Gyro multinomial logistic regression on ``n × n`` SPD matrices.

    ``logit_k(X) = ⟨Log_I((⊖P_k) ⊕ X), A_k⟩_I``. Under LE this is affine in ``log X``
    (``⟨log X − log P_k, A_k⟩``); under AI ``⟨log(P_k^{-1/2} X P_k^{-1/2}), A_k⟩``; under LC the
    Cholesky-log analogue.

    Parameters
    ----------
    n : int
        Matrix size.
    n_classes : int
    metric : str or Metric
        A gyro SPD metric (default ``"affine_invariant"``).
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> mlr = SPDGyroMLR(3, 2, metric="log_euclidean", dtype=torch.float64)
    >>> mlr(torch.eye(3, dtype=torch.float64).expand(4, 3, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, n: int, n_classes: int, metric: str | Metric = "affine_invariant", *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n < 1 or n_classes < 1:
            raise ValueError(f"n and n_classes must be >= 1, got {n}, {n_classes}")
        self.n, self.n_classes = n, n_classes
        self.manifold = _spd_manifold(n, metric)
        eye = self.manifold.identity(n_classes, dtype=dtype, device=device)
        self.points = ManifoldParameter(eye, manifold=self.manifold)
        std = (n_classes * n * (n + 1) / 2) ** -0.5
        a = torch.randn(n_classes, n, n, generator=generator, dtype=dtype) * std
        self.normals = nn.Parameter(sym(a).to(device))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[-2:] != (self.n, self.n):
            raise ValueError(f"input must have shape (*batch, {self.n}, {self.n}), got {tuple(x.shape)}")
        met = self.manifold.metric
        p_inv = met.gyro_inv(self.points.to(x.dtype))  # (K, n, n)
        z = met.gyro_add(p_inv, x.unsqueeze(-3))  # (*batch, K, n, n)
        e = torch.eye(self.n, dtype=x.dtype, device=x.device)
        u = met.log(e.expand_as(z), z)
        a = sym(self.normals.to(x.dtype))
        return met.inner(e.expand_as(z), u, a.expand_as(z))

    def extra_repr(self) -> str:
        return f"SPD({self.n}) -> {self.n_classes}, metric={self.manifold.metric!r}"


class SPDGyroFC(nn.Module):
    """Gyro fully-connected layer ``SPD(n) → SPD(m)`` (Nguyen & Yang 2024).

    ``Y = Exp_I(T)`` where ``T ∈ T_I`` has orthonormal coordinates (w.r.t. ``g_I``) equal to the
    ``m(m+1)/2`` logits of an :class:`SPDGyroMLR` on the input.

    The logits are unbounded, and the output's condition number is ``exp`` of the spread of
    ``Log_I Y``'s spectrum. Under cross-entropy training they keep growing; in float32 the
    output stops being numerically SPD once that condition number passes ``1/eps ≈ 1.7e7``
    (a downstream Cholesky, e.g. a log-Cholesky layer, then raises). Measured on the two-class
    test problem (FC(4→3, AI) → MLR(LC), RiemannianAdam): at lr 0.05, 3 of 10 float32 seeds
    failed that way by step 30; at lr 0.02 none did in 25 steps (largest condition number
    7.7e4). Follow with :class:`~riemlearn.layers.ReEig`, use float64, or regularize the
    normals when training long in float32.

    Parameters
    ----------
    in_features, out_features : int
        ``n`` and ``m``.
    metric : str or Metric
        A gyro SPD metric (default ``"affine_invariant"``); used for input and output.
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> fc = SPDGyroFC(3, 2, dtype=torch.float64)
    >>> y = fc(torch.eye(3, dtype=torch.float64).expand(4, 3, 3))
    >>> y.shape, bool(SPD(2).belongs(y).all())
    (torch.Size([4, 2, 2]), True)
    """

    def __init__(self, in_features: int, out_features: int, metric: str | Metric = "affine_invariant", *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if out_features < 1:
            raise ValueError(f"out_features must be >= 1, got {out_features}")
        self.out_features = out_features
        k = out_features * (out_features + 1) // 2
        self.mlr = SPDGyroMLR(in_features, k, metric, dtype=dtype, device=device, generator=generator)
        self.out_manifold = _spd_manifold(out_features, self.mlr.manifold.metric)
        with torch.no_grad():
            # normals with std (n(n+1)/2)^(-1/2) per entry: each output coordinate has variance
            # ‖Log_I X‖²/(n(n+1)/2), so the output's squared gyro norm is about
            # ‖Log_I X‖² m(m+1)/(n(n+1)) at initialisation
            self.mlr.normals.mul_(math.sqrt(k))

    def forward(self, x: Tensor) -> Tensor:
        v = self.mlr(x)
        met = self.out_manifold.metric
        coords = unvech(v, self.out_features)
        t = met.identity_coords_inv(coords)
        e = torch.eye(self.out_features, dtype=x.dtype, device=x.device)
        return met.exp(e.expand_as(t), t)

    def extra_repr(self) -> str:
        return f"SPD({self.mlr.n}) -> SPD({self.out_features}), metric={self.mlr.manifold.metric!r}"
