"""Affine-invariant SPD batch normalization (Brooks et al. 2019; Kobler et al. 2022) and its
domain-specific form (TSMNet, Kobler et al. 2022).

Centring is the parallel transport of the affine-invariant metric from the batch mean ``M`` to
the identity, ``X ↦ M^{-1/2} X M^{-1/2}``; the tangent vector is its matrix logarithm; biasing
is the transport from the identity to ``B``, ``V ↦ B^{1/2} expm(V) B^{1/2}``. Both are isometries,
so in train mode the output's Fréchet mean is ``B`` and its dispersion ``s² σ²/(σ² + eps)``.
All eigenvalue functions go through :mod:`riemlearn.manifolds.spectral` (Daleckii–Krein
backward): gradients stay finite and correct at the identity bias and at tied eigenvalues,
where the Brooks-style backward zeroes the tied terms.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..manifolds import SPD
from ..manifolds.spd_affine_invariant import AffineInvariant
from ..manifolds.spectral import eigvalsh, expm, invsqrtm, logm, sqrtm, sym
from ._dispersion_power import dispersion_power
from .batchnorm import RiemannianBatchNorm

__all__ = ["SPDBatchNorm", "DomainSpecificSPDBatchNorm"]


def _cong(a: Tensor, x: Tensor) -> Tensor:
    """``a X a`` for ``a (C, n, n)`` and ``x (C, N, n, n)``."""
    return sym(a.unsqueeze(1) @ x @ a.unsqueeze(1))


class SPDBatchNorm(RiemannianBatchNorm):
    """Riemannian batch norm under the affine-invariant metric (Brooks 2019 / Kobler 2022).

    ``Y = B^{1/2} (M^{-1/2} X M^{-1/2})^{s/√(σ²+eps)} B^{1/2}`` with the batch Fréchet mean ``M``
    and dispersion ``σ² = mean d²(M, X)`` in train mode, running statistics in eval mode (see
    :class:`~riemlearn.layers.batchnorm.RiemannianBatchNorm` for momentum, warm start and the
    exact refit with :func:`~riemlearn.layers.refit_batchnorm_stats`). The bias is a
    :class:`~riemlearn.optim.ManifoldParameter` on ``SPD(n)`` (affine-invariant).

    Parameters
    ----------
    n : int
        Matrix size.
    num_channels : int, optional
        ``C`` for ``(batch, C, n, n)`` inputs (statistics per channel).
    dispersion : bool
        Kobler et al.'s dispersion normalization with a learnable scale (default True);
        False gives Brooks et al.'s mean-only batch norm.
    **kwargs
        ``momentum``, ``eps``, ``learn_bias``, ``learn_scale``, ``track_running_stats``,
        ``max_iter``, ``tol``, ``dtype``, ``device`` (see the base class).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import SPDBatchNorm
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats import frechet_mean
    >>> x = SPD(3).random_point(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> bn = SPDBatchNorm(3, eps=0.0, dtype=torch.float64)
    >>> y = bn(x)
    >>> torch.allclose(frechet_mean(y, SPD(3)), torch.eye(3, dtype=torch.float64))
    True
    """

    def __init__(self, n: int, num_channels: int | None = None, *, dispersion: bool = True,
                 **kwargs) -> None:
        self._manifold = SPD(n, AffineInvariant())
        super().__init__(n, num_channels, dispersion=dispersion, **kwargs)

    @property
    def manifold(self) -> SPD:
        return self._manifold

    def _center(self, x: Tensor, mean: Tensor) -> Tensor:
        return logm(_cong(invsqrtm(mean), x))

    def _sqnorm(self, v: Tensor) -> Tensor:
        return v.square().sum((-2, -1))

    def _decenter(self, v: Tensor, bias: Tensor) -> Tensor:
        return _cong(sqrtm(bias), expm(v))

    def _forward_grouped(self, xg: Tensor, rm: Tensor, rv: Tensor, nbt: Tensor) -> Tensor:
        # Same maths as the generic centre → scale → bias, with one eigendecomposition of the
        # centred points instead of two (logm then expm), see _dispersion_power.
        mean, batch = self._step_mean(xg, rm, nbt)
        z = _cong(invsqrtm(mean), xg)
        if self.dispersion:
            fixed = None if batch else rv.to(xg.dtype)
            z, var = dispersion_power(z, self.scale.to(xg.dtype), self.eps, fixed)
        elif batch and self.training and self.track_running_stats:
            var = eigvalsh(z).clamp_min(torch.finfo(z.dtype).tiny).log().square().sum(-1).mean(-1)
        if batch and self.training and self.track_running_stats:
            self._update_running(mean, var, rm, rv, nbt)
        return _cong(sqrtm(self.bias.to(xg.dtype)), z)


class DomainSpecificSPDBatchNorm(SPDBatchNorm):
    """SPD batch norm with per-domain running statistics (SPDDSMBN of TSMNet, Kobler et al. 2022).

    Bias and scale are shared; every domain has its own running mean and dispersion. In train
    mode each domain present in the batch is normalized with its own batch statistics (and its
    running statistics updated); in eval mode with its running statistics. For source-free
    adaptation to a new domain, refit its statistics on unlabeled target data with
    :func:`~riemlearn.layers.refit_batchnorm_stats` (passing the domain ids through
    ``forward``) or :meth:`set_domain_stats`: the exact Fréchet mean and dispersion, no
    momentum schedule involved (TSMNet's reference code hands the training momentum schedule's
    state to the test statistics).

    Parameters
    ----------
    n : int
        Matrix size.
    num_domains : int
        Number of domains; ``forward(x, domains)`` takes ids in ``0 .. num_domains-1``.
    num_channels : int, optional
        As in :class:`SPDBatchNorm`.
    **kwargs
        As in :class:`SPDBatchNorm`.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import DomainSpecificSPDBatchNorm
    >>> from riemlearn.manifolds import SPD
    >>> x = SPD(3).random_point(8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> bn = DomainSpecificSPDBatchNorm(3, num_domains=2, dtype=torch.float64)
    >>> bn(x, torch.tensor([0, 1] * 4)).shape
    torch.Size([8, 3, 3])
    """

    def __init__(self, n: int, num_domains: int, num_channels: int | None = None, **kwargs) -> None:
        super().__init__(n, num_channels, **kwargs)
        if int(num_domains) < 1:
            raise ValueError(f"num_domains must be >= 1, got {num_domains}")
        self.num_domains = int(num_domains)
        d = self.num_domains
        self.running_mean = self.running_mean.unsqueeze(0).repeat(d, 1, 1, 1)
        self.running_var = self.running_var.unsqueeze(0).repeat(d, 1)
        self.num_batches_tracked = torch.zeros(d, dtype=torch.long, device=self.running_var.device)

    def _domains(self, domains: Tensor | int | None, n_pts: int, device: torch.device) -> Tensor:
        if domains is None:
            return torch.zeros(n_pts, dtype=torch.long, device=device)
        if isinstance(domains, int):
            domains = torch.full((n_pts,), domains, dtype=torch.long, device=device)
        domains = torch.as_tensor(domains, device=device)
        if domains.shape != (n_pts,) or domains.dtype.is_floating_point:
            raise ValueError(f"domains must be an integer tensor of shape ({n_pts},), got "
                             f"{domains.dtype} {tuple(domains.shape)}")
        if n_pts and (int(domains.min()) < 0 or int(domains.max()) >= self.num_domains):
            raise ValueError(f"domains must lie in 0..{self.num_domains - 1}")
        return domains.long()

    def reset_running_stats(self) -> None:
        with torch.no_grad():
            eye = torch.eye(self.n, dtype=self.running_mean.dtype, device=self.running_mean.device)
            self.running_mean.copy_(eye.expand_as(self.running_mean))
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def forward(self, x: Tensor, domains: Tensor | int | None = None) -> Tensor:
        """Normalize ``x`` (``(batch, n, n)`` or ``(batch, C, n, n)``) with domain ids ``(batch,)``."""
        xg = self._groups(x)
        dom = self._domains(domains, xg.shape[1], xg.device)
        if self._collect is not None:
            self._collect.append((xg.detach(), dom))
        parts = []
        for d in torch.unique(dom).tolist():
            idx = (dom == d).nonzero().squeeze(1)
            y = self._forward_grouped(xg[:, idx], self.running_mean[d], self.running_var[d],
                                      self.num_batches_tracked[d])
            parts.append((idx, y))
        if len(parts) == 1:
            return self._ungroup(parts[0][1])
        order = torch.cat([i for i, _ in parts])
        ys = torch.cat([y for _, y in parts], dim=1)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel(), device=order.device)
        return self._ungroup(ys[:, inv])

    def set_domain_stats(self, x: Tensor, domain: int) -> None:
        """Exact running statistics of ``domain`` from its data ``x`` (e.g. unlabeled target data)."""
        if not 0 <= int(domain) < self.num_domains:
            raise ValueError(f"domain must lie in 0..{self.num_domains - 1}, got {domain}")
        mean, var = self._exact_stats(self._groups(x))
        with torch.no_grad():
            self.running_mean[domain].copy_(mean)
            self.running_var[domain].copy_(var)
            self.num_batches_tracked[domain].add_(1)

    def set_running_stats(self, x: Tensor) -> None:
        """Set the statistics of every domain to those of ``x`` (use :meth:`set_domain_stats`)."""
        for d in range(self.num_domains):
            self.set_domain_stats(x, d)

    def set_collected_stats(self) -> None:
        chunks = self._collect or []
        if not chunks:
            raise ValueError("refit_batchnorm_stats: no data reached a batch-norm layer")
        xg = torch.cat([c[0] for c in chunks], dim=1)
        dom = torch.cat([c[1] for c in chunks])
        for d in torch.unique(dom).tolist():
            self.set_domain_stats(self._ungroup(xg[:, dom == d]), d)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_domains={self.num_domains}"
