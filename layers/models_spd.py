"""SPD network models: SPDNet (Huang & Van Gool 2017) with a choice of Riemannian batch norm,
and TSMNet (Kobler et al. 2022).

Every manifold-valued parameter (BiMap weights on Stiefel, batch-norm biases and metric
parameters on SPD) is a :class:`~riemlearn.optim.ManifoldParameter`, so
``RiemannianAdam(model.parameters(), lr=...)`` trains the whole model with no user wiring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .batchnorm import RiemannianBatchNorm
from .batchnorm_spd import DomainSpecificSPDBatchNorm, SPDBatchNorm
from .bwbn import BWBatchNorm
from .liebn import LieBatchNorm
from .spd import BiMap, CovariancePool, LogEig, ReEig

__all__ = ["SPDNet", "TSMNet", "make_spd_batchnorm", "BN_CHOICES"]

BN_CHOICES = (None, "aim", "liebn-aim", "liebn-lem", "liebn-lcm", "bw")


def make_spd_batchnorm(kind: str | None, n: int, **kwargs: Any) -> RiemannianBatchNorm | None:
    """The batch norm named ``kind`` (one of :data:`BN_CHOICES`) for ``n × n`` matrices.

    ``"aim"``: :class:`SPDBatchNorm`; ``"liebn-aim" | "liebn-lem" | "liebn-lcm"``:
    :class:`LieBatchNorm` with that metric; ``"bw"``: :class:`BWBatchNorm`; ``None``: no layer.
    """
    if kind is None:
        return None
    if kind == "aim":
        return SPDBatchNorm(n, **kwargs)
    if kind in ("liebn-aim", "liebn-lem", "liebn-lcm"):
        return LieBatchNorm(n, metric=kind.split("-")[1], **kwargs)
    if kind == "bw":
        return BWBatchNorm(n, **kwargs)
    raise ValueError(f"bn must be one of {BN_CHOICES}, got {kind!r}")


class SPDNet(nn.Module):
    """SPDNet: ``[BiMap → BN → ReEig]* → BiMap → BN → LogEig → Linear``.

    Parameters
    ----------
    in_size : int
        Size ``n`` of the input SPD matrices ``(batch, n, n)``.
    hidden_sizes : sequence of int
        Output sizes of the BiMap layers, e.g. ``[20, 16, 8]`` (non-increasing).
    n_classes : int
        Number of outputs of the final linear layer.
    bn : {None, "aim", "liebn-aim", "liebn-lem", "liebn-lcm", "bw"}
        Batch norm after every BiMap (default None).
    bn_kwargs : dict, optional
        Passed to every batch norm (``momentum``, ``theta``, ``dispersion``, ...).
    reeig_eps : float
        ReEig threshold (default 1e-4).
    dtype, device, generator :
        Of the parameters; ``generator`` seeds the BiMap and linear initialisation.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import SPDNet
    >>> from riemlearn.manifolds import SPD
    >>> net = SPDNet(6, [4, 3], n_classes=2, bn="liebn-aim", dtype=torch.float64)
    >>> x = SPD(6).random_point(5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> net(x).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        in_size: int,
        hidden_sizes: Sequence[int],
        n_classes: int,
        *,
        bn: str | None = None,
        bn_kwargs: dict | None = None,
        reeig_eps: float = 1e-4,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [int(in_size)] + [int(s) for s in hidden_sizes]
        if len(sizes) < 2:
            raise ValueError("hidden_sizes must name at least one BiMap output size")
        if bn not in BN_CHOICES:
            raise ValueError(f"bn must be one of {BN_CHOICES}, got {bn!r}")
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        bkw = {"dtype": dtype, "device": device, **(bn_kwargs or {})}
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(BiMap(a, b, dtype=dtype, device=device, generator=generator))
            norm = make_spd_batchnorm(bn, b, **bkw)
            if norm is not None:
                layers.append(norm)
            if i < len(sizes) - 2:
                layers.append(ReEig(reeig_eps))
        self.features = nn.Sequential(*layers)
        self.logeig = LogEig(vectorize=True)
        d = sizes[-1] * (sizes[-1] + 1) // 2
        self.classifier = nn.Linear(d, n_classes, dtype=dtype, device=device)
        if generator is not None:
            with torch.no_grad():
                bound = 1.0 / d**0.5
                w = torch.rand(self.classifier.weight.shape, generator=generator, dtype=torch.float64)
                self.classifier.weight.copy_((2 * w - 1) * bound)
                self.classifier.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(batch, n_classes)`` of SPD inputs ``(batch, in_size, in_size)``."""
        return self.classifier(self.logeig(self.features(x)))


class TSMNet(nn.Module):
    """TSMNet (Kobler et al. 2022): temporal and spatial convolutions, covariance pooling,
    BiMap → ReEig, domain-specific SPD batch norm, LogEig, linear.

    Parameters
    ----------
    n_chans : int
        EEG channels of the input ``(batch, n_chans, n_times)``.
    n_classes : int
        Outputs.
    n_temp_filters, temp_kernel_length : int
        Temporal convolution (default 4 filters of length 25, reflect-padded "same").
    n_spatiotemp_filters : int
        Spatial convolution across all channels (default 40): the covariance size.
    n_bimap_filters : int
        BiMap output size (default 20).
    num_domains : int
        Domains of the domain-specific batch norm (default 1).
    shrinkage : float
        Covariance shrinkage towards the scaled identity (default 0).
    reeig_eps : float
        ReEig threshold (default 1e-4).
    bn_kwargs : dict, optional
        Passed to :class:`DomainSpecificSPDBatchNorm` (default: bias fixed at the identity,
        learned dispersion scale, as in the paper).
    dtype, device :
        Of the parameters.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import TSMNet
    >>> net = TSMNet(8, 2, n_spatiotemp_filters=10, n_bimap_filters=6, dtype=torch.float64)
    >>> net(torch.randn(4, 8, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        n_chans: int,
        n_classes: int,
        *,
        n_temp_filters: int = 4,
        temp_kernel_length: int = 25,
        n_spatiotemp_filters: int = 40,
        n_bimap_filters: int = 20,
        num_domains: int = 1,
        shrinkage: float = 0.0,
        reeig_eps: float = 1e-4,
        bn_kwargs: dict | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.temporal = nn.Conv2d(1, n_temp_filters, (1, temp_kernel_length), padding="same",
                                  padding_mode="reflect", **kw)
        self.spatial = nn.Conv2d(n_temp_filters, n_spatiotemp_filters, (n_chans, 1), **kw)
        self.covpool = CovariancePool(shrinkage=shrinkage)
        self.bimap = BiMap(n_spatiotemp_filters, n_bimap_filters, generator=generator, **kw)
        self.reeig = ReEig(reeig_eps)
        bkw = {"learn_bias": False, **kw, **(bn_kwargs or {})}
        self.bn = DomainSpecificSPDBatchNorm(n_bimap_filters, num_domains, **bkw)
        self.logeig = LogEig(vectorize=True)
        self.classifier = nn.Linear(n_bimap_filters * (n_bimap_filters + 1) // 2, n_classes, **kw)

    def forward(self, x: Tensor, domains: Tensor | int | None = None) -> Tensor:
        """Logits ``(batch, n_classes)`` of ``x (batch, n_chans, n_times)`` with domain ids ``(batch,)``."""
        if x.dim() != 3:
            raise ValueError(f"x must have shape (batch, n_chans, n_times), got {tuple(x.shape)}")
        h = self.spatial(self.temporal(x.unsqueeze(1))).flatten(2)
        c = self.reeig(self.bimap(self.covpool(h)))
        return self.classifier(self.logeig(self.bn(c, domains)))
