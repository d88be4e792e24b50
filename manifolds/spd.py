"""The manifold of symmetric positive definite matrices, ``SPD(n, metric=...)``.

The manifold owns what does not depend on the metric: membership and validation (symmetry,
positive definiteness with the smallest eigenvalue reported), projections, random points with a
controllable condition number, the identity. Every metric operation is answered by the one
metric object (:class:`~riemlearn.manifolds.spd_affine_invariant.AffineInvariant`,
:class:`~riemlearn.manifolds.spd_log_euclidean.LogEuclidean`,
:class:`~riemlearn.manifolds.spd_log_cholesky.LogCholesky`, ``BuresWasserstein``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Manifold, Metric, _check_shape_finite, as_shape, randn
from .spd_affine_invariant import AffineInvariant
from .spd_base import SPDMetric
from .spd_log_cholesky import LogCholesky
from .spd_log_euclidean import LogEuclidean
from .spectral import clampm, eigh, sym
from .tolerance import as_float_dtype, atol, eps

__all__ = ["SPD", "resolve_spd_metric", "METRIC_NAMES"]

METRIC_NAMES = ("affine_invariant", "log_euclidean", "log_cholesky", "bures_wasserstein")


def resolve_spd_metric(metric: str | Metric) -> Metric:
    """Metric object for a name in :data:`METRIC_NAMES` or a :class:`Metric` instance."""
    if isinstance(metric, Metric):
        if metric.ndim != 2:
            raise ValueError(f"metric {metric!r} has ndim={metric.ndim}; SPD metrics need ndim=2")
        return metric
    if metric == "affine_invariant":
        return AffineInvariant()
    if metric == "log_euclidean":
        return LogEuclidean()
    if metric == "log_cholesky":
        return LogCholesky()
    if metric == "bures_wasserstein":
        from .spd_bures_wasserstein import BuresWasserstein  # lazy: written separately

        return BuresWasserstein()
    raise ValueError(f"unknown SPD metric {metric!r}; use one of {METRIC_NAMES} or a Metric instance")


class SPD(Manifold):
    """Symmetric positive definite ``n × n`` matrices with a chosen Riemannian metric.

    Parameters
    ----------
    n : int, optional
        Matrix size; ``None`` accepts any size (then :meth:`random_point` and :meth:`identity`
        need ``n``).
    metric : str or Metric, default "affine_invariant"
        ``"affine_invariant"``, ``"log_euclidean"``, ``"log_cholesky"``, ``"bures_wasserstein"``
        or a metric instance (e.g. ``AffineInvariant(theta=0.5)``).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> m = SPD(3)
    >>> x = m.random_point(2, generator=torch.Generator().manual_seed(0), dtype=torch.float64, cond=100)
    >>> x.shape
    torch.Size([2, 3, 3])
    >>> bool(m.belongs(x).all())
    True
    >>> m.dist(x, x).abs().max() < 1e-6
    tensor(True)
    """

    ndim = 2
    name = "spd"

    def __init__(self, n: int | None = None, metric: str | Metric = "affine_invariant") -> None:
        if n is not None:
            n = int(n)
            if n < 1:
                raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        resolved = resolve_spd_metric(metric)
        if n is not None and isinstance(resolved, SPDMetric):
            resolved.check_n(n)
        super().__init__(resolved)

    def _params(self) -> tuple:
        return (self.n, self._metric)

    def __repr__(self) -> str:
        return f"SPD({self.n}, metric={self._metric!r})"

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.n is None else (self.n, self.n)

    def _size(self, n: int | None) -> int:
        n = self.n if n is None else int(n)
        if n is None:
            raise ValueError(f"{self!r} has no fixed size; pass n=")
        return n

    # -- membership --------------------------------------------------------------------------
    def shape_problem(self, x: Tensor) -> str | None:
        problem = super().shape_problem(x)
        if problem is None and x.shape[-1] != x.shape[-2]:
            return f"has shape {tuple(x.shape)}, which is not square (*batch, n, n)"
        return problem

    @staticmethod
    def _scale(x: Tensor) -> Tensor:
        return x.detach().abs().amax((-2, -1)).clamp_min(torch.finfo(as_float_dtype(x.dtype)).tiny)

    def asymmetry(self, x: Tensor) -> Tensor:
        """``max |x − xᵀ| / max |x|``, shape ``(*batch,)``."""
        xd = x.detach()
        return (xd - xd.mT).abs().amax((-2, -1)) / self._scale(xd)

    def min_eigenvalue(self, x: Tensor) -> Tensor:
        """Smallest eigenvalue of the symmetric part, shape ``(*batch,)``."""
        w, _ = eigh(sym(x.detach()))
        return w[..., 0]

    def point_violation(self, x: Tensor) -> Tensor:
        """Relative asymmetry; ``inf`` where the symmetric part is not positive definite."""
        asym = self.asymmetry(x)
        pd = self.min_eigenvalue(x) > 0
        return torch.where(pd, asym, torch.full_like(asym, math.inf))

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        ud = u.detach()
        return (ud - ud.mT).abs().amax((-2, -1)) / self._scale(ud)

    def violation_description(self) -> str:
        return "relative asymmetry max|x − xᵀ|/max|x| (inf when not positive definite)"

    def check_point(self, x: Tensor, name: str = "x", atol: float | None = None) -> None:
        """Raise ``ValueError`` if ``x`` is not a batch of SPD matrices.

        The message names the problem: wrong shape or not square, NaN/inf entries, not
        symmetric (with the relative asymmetry), not positive definite (with the smallest
        eigenvalue).
        """
        _check_shape_finite(self, x, name)
        tol = _atol(x, atol)
        asym = self.asymmetry(x)
        if asym.numel() and float(asym.max()) > tol:
            k = _where(asym)
            raise ValueError(
                f"{name} is off {self!r}: not symmetric, max|x − xᵀ|/max|x| = {float(asym.max()):.3g}"
                f"{k} (tolerance {tol:.1g})"
            )
        lmin = self.min_eigenvalue(x)
        if lmin.numel() and float(lmin.min()) <= 0:
            k = _where(-lmin)
            raise ValueError(
                f"{name} is off {self!r}: not positive definite, smallest eigenvalue = "
                f"{float(lmin.min()):.3g}{k}"
            )

    # -- projections -------------------------------------------------------------------------
    def project_point(self, x: Tensor, min_eig: float | None = None) -> Tensor:
        """Symmetrize and clamp eigenvalues at ``min_eig`` (default ``√eps(dtype)``)."""
        floor = math.sqrt(eps(x.dtype)) if min_eig is None else float(min_eig)
        return clampm(sym(x), floor)

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        """Symmetric part of ``u`` (the tangent space is Sym(n))."""
        return sym(u)

    # -- random points -----------------------------------------------------------------------
    def random_point(
        self,
        *batch: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        cond: float | None = None,
        n: int | None = None,
    ) -> Tensor:
        """Random SPD matrices ``V diag(λ) Vᵀ`` with Haar-random orthogonal ``V``.

        Without ``cond`` the eigenvalues are ``exp(U(−1, 1))``. With ``cond`` they are
        log-uniform in ``[1, cond]`` with both endpoints attained, so the condition number is
        ``cond`` (built in float64, then cast: in float32 a ``cond`` beyond ~1e6 is not
        preserved by rounding).
        """
        n = self._size(n)
        shape = as_shape(batch)
        dt = dtype or torch.get_default_dtype()
        f64 = torch.float64
        q, r = torch.linalg.qr(randn(shape + (n, n), generator, f64))
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
        gdev = generator.device if generator is not None else "cpu"
        uni = torch.rand(shape + (n,), generator=generator, dtype=f64, device=gdev)
        if cond is None:
            lam = torch.exp(2 * uni - 1)
        else:
            if not cond >= 1:
                raise ValueError(f"cond must be >= 1, got {cond}")
            if n >= 2:
                uni[..., 0] = 0.0
                uni[..., 1] = 1.0
            else:
                uni.zero_()
            lam = torch.exp(uni * math.log(cond))
        x = sym((q * lam.unsqueeze(-2)) @ q.mT)
        return x.to(device=device if device is not None else x.device, dtype=dt)

    def random_tangent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Symmetric Gaussian tangent vector at ``x``, shape ``(*batch, n, n)``."""
        return sym(randn(x.shape, generator, x.dtype, x.device))

    def identity(
        self,
        *batch: int,
        n: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Identity matrices ``(*batch, n, n)``."""
        n = self._size(n)
        return torch.eye(n, dtype=dtype, device=device).expand(as_shape(batch) + (n, n)).clone()

    # -- gyro inner product / distance (forwarded) -------------------------------------------
    def gyro_inner(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro inner product of the metric (Nguyen & Yang 2023), ``(*batch,)``."""
        fn = getattr(self._metric, "gyro_inner", None)
        if fn is None:
            raise self._unsupported("gyro_inner")
        return fn(x, y)

    def gyro_dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro distance ``‖⊖x ⊕ y‖`` of the metric, ``(*batch,)``."""
        fn = getattr(self._metric, "gyro_dist", None)
        if fn is None:
            raise self._unsupported("gyro_dist")
        return fn(x, y)


def _atol(x: Tensor, given: float | None) -> float:
    return atol(as_float_dtype(x.dtype)) if given is None else given


def _where(values: Tensor) -> str:
    if values.dim() == 0:
        return ""
    k = int(torch.argmax(values.reshape(-1)))
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(k), values.shape))
    return f" at batch index {idx}"
