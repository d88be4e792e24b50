"""Models on Grassmann and hyperbolic spaces: :class:`GrNet` and :class:`HyperbolicClassifier`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..manifolds import mobius
from .grassmann import FRMap, OrthMap, ProjMap, ProjPool, ReOrth
from .hyperbolic import PoincareGyroBN, PoincareLinear, PoincareMLR
from .spd import vech

__all__ = ["GrNet", "HyperbolicClassifier"]


class GrNet(nn.Module):
    """GrNet (Huang, Wu & Van Gool, AAAI 2018) for inputs on ``Gr(n, p)``.

    Each block is ``FRMap(→ d, channels) → ReOrth → ProjMap → ProjPool(pool) → OrthMap(p)``;
    the head is ``ProjMap → vech (√2 off-diagonals) → Linear``. All FRMap weights are Stiefel
    :class:`~riemlearn.optim.ManifoldParameter`, so ``RiemannianSGD/Adam(model.parameters())``
    needs no wiring.

    Parameters
    ----------
    n, p : int
        Input subspaces: bases ``(batch, n, p)``.
    n_classes : int
    dims : sequence of int
        Output sizes of the FRMaps (each ``>= p``, non-increasing from ``n``), default ``(n,)``.
    channels : int
        FRMap filters per block (default 4).
    pool : int
        Channels averaged by each ProjPool (must divide ``channels``; default 2).
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Grassmann
    >>> net = GrNet(8, 2, 3, dims=(6,), dtype=torch.float64)
    >>> x = Grassmann(8, 2).random_point(5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> net(x).shape
    torch.Size([5, 3])
    """

    def __init__(self, n: int, p: int, n_classes: int, dims: Sequence[int] | None = None, *,
                 channels: int = 4, pool: int = 2, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        dims = tuple(dims) if dims is not None else (n,)
        if not dims:
            raise ValueError("dims must not be empty")
        if channels % pool:
            raise ValueError(f"pool {pool} must divide channels {channels}")
        layers: list[nn.Module] = []
        d_in, c_in = n, 1
        for d in dims:
            if not p <= d <= d_in:
                raise ValueError(f"dims must be non-increasing and >= p={p}, got {dims} from n={n}")
            layers += [FRMap(d_in, d, c_in, channels, dtype=dtype, device=device, generator=generator),
                       ReOrth(), ProjMap(), ProjPool(pool), OrthMap(p)]
            d_in, c_in = d, channels // pool
        self.features = nn.Sequential(*layers)
        self.proj = ProjMap()
        self.out_channels, self.out_dim = c_in, d_in
        self.classifier = nn.Linear(c_in * d_in * (d_in + 1) // 2, n_classes, dtype=dtype, device=device)
        self.n, self.p = n, p

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-2:] != (self.n, self.p):
            raise ValueError(f"input must have shape (batch, {self.n}, {self.p}), got {tuple(x.shape)}")
        z = self.proj(self.features(x))  # (batch, C, d, d)
        return self.classifier(vech(z).flatten(1))


class HyperbolicClassifier(nn.Module):
    """A small classifier on the Poincaré ball with one (optionally learnable) curvature.

    ``[exp_0] → (PoincareLinear → [PoincareGyroBN])* → PoincareMLR``. The curvature is one
    ``nn.Parameter`` shared by all layers when ``learn_curvature`` (its value is the curvature
    used); otherwise a fixed float.

    Parameters
    ----------
    in_features : int
    n_classes : int
    hidden : sequence of int
        Widths of the Poincaré linear layers (default ``(16,)``).
    c : float
        (Initial) curvature.
    learn_curvature : bool
    batchnorm : bool
        Insert a :class:`PoincareGyroBN` after each linear layer (default True).
    euclidean_input : bool
        Map Euclidean inputs to the ball with ``exp_0`` first (default True); else inputs are
        ball points.
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> net = HyperbolicClassifier(4, 3, hidden=(8,), dtype=torch.float64)
    >>> net(torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))).shape
    torch.Size([6, 3])
    """

    def __init__(self, in_features: int, n_classes: int, hidden: Sequence[int] = (16,), *, c: float = 1.0,
                 learn_curvature: bool = False, batchnorm: bool = True, euclidean_input: bool = True,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if learn_curvature:
            self.c = nn.Parameter(torch.tensor(float(c), dtype=dtype, device=device))
            cv: float | nn.Parameter = self.c
        else:
            self.c = cv = float(c)
        kw = dict(dtype=dtype, device=device)
        layers: list[nn.Module] = []
        d = in_features
        for h in hidden:
            layers.append(PoincareLinear(d, h, cv, generator=generator, **kw))
            if batchnorm:
                layers.append(PoincareGyroBN(h, cv, **kw))
            d = h
        self.body = nn.Sequential(*layers)
        self.mlr = PoincareMLR(d, n_classes, cv, generator=generator, **kw)
        self.in_features, self.euclidean_input = in_features, euclidean_input

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"input must have shape (batch, {self.in_features}), got {tuple(x.shape)}")
        if self.euclidean_input:
            x = mobius.expmap0(x, self.mlr.curvature(x))
        return self.mlr(self.body(x))
