"""Log-Euclidean metric: the pullback of the Euclidean metric on Sym(n) by the matrix logarithm.

``⟨u, v⟩_x = α⟨D log_x[u], D log_x[v]⟩ + β tr(D log_x[u]) tr(D log_x[v])`` (Arsigny et al.
2007; the (α, β) family of Thanwerdas & Pennec). The differential ``D log_x`` and its inverse
``D exp_{log x}`` are Daleckii–Krein (Loewner) maps from one eigendecomposition, finite at
repeated eigenvalues (so exp/log/inner have finite gradients at the identity). Then

* ``Exp_x(u) = expm(log x + D log_x[u])``, ``Log_x(y) = D exp_{log x}[log y − log x]``,
* ``d(x, y) = ‖log y − log x‖`` (weighted), geodesics ``expm((1−t) log x + t log y)``,
* parallel transport ``D exp_{log y}[D log_x[v]]`` (the space is flat).

Power deformation leaves this metric unchanged (``log P^θ = θ log P``), which the tests use.
"""

from __future__ import annotations

from torch import Tensor

from .base import safe_sqrt
from .spd_base import SPDMetric, frechet, frechet2, fro_inner, trace
from .spectral import Exp, Log, eigh, expm, logm, sym

__all__ = ["LogEuclidean", "dlogm", "dexpm_at_log", "le_exp", "le_log", "le_dist", "le_transport"]


def dlogm(x: Tensor, u: Tensor) -> Tensor:
    """``D log_x[u]`` (Daleckii–Krein), differentiable in ``x`` and ``u``."""
    return frechet(x, Log(), u)


def dexpm_at_log(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """``(log x, D exp_{log x}[w])`` from one eigendecomposition of ``x``."""
    lam, v = eigh(sym(x.detach()))
    s = logm(x)
    return s, frechet(s, Exp(), w, eig=(lam.log(), v))


def le_exp(x: Tensor, u: Tensor) -> Tensor:
    """``Exp_x(u) = expm(log x + D log_x[u])``."""
    return expm(logm(x) + dlogm(x, u))


def le_log(x: Tensor, y: Tensor) -> Tensor:
    """``Log_x(y) = D exp_{log x}[log y − log x]``."""
    lam, v = eigh(sym(x.detach()))
    s = logm(x)
    return sym(frechet(s, Exp(), logm(y) - s, eig=(lam.log(), v)))


def le_dist(x: Tensor, y: Tensor, alpha: float = 1.0, beta: float = 0.0) -> Tensor:
    """``√(α‖log y − log x‖² + β tr(log y − log x)²)``, shape ``(*batch,)``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.spd_log_euclidean import le_dist
    >>> x = torch.eye(2, dtype=torch.float64)
    >>> round(float(le_dist(x, torch.e ** 2 * x)) ** 2, 10)
    8.0
    """
    d = logm(y) - logm(x)
    d2 = alpha * fro_inner(d, d)
    if beta != 0.0:
        d2 = d2 + beta * trace(d) ** 2
    return safe_sqrt(d2)


def le_transport(x: Tensor, y: Tensor, v: Tensor) -> Tensor:
    """Parallel transport ``D exp_{log y}[D log_x[v]]``."""
    _, out = dexpm_at_log(y, dlogm(x, v))
    return sym(out)


class LogEuclidean(SPDMetric):
    """Log-Euclidean metric with O(n)-invariant ``(α, β)`` weighting (and ``θ``, a no-op).

    Parameters
    ----------
    theta : float, default 1.0
        Power deformation; the log-Euclidean metric is invariant under it (kept for a uniform
        interface and tested as such).
    alpha, beta : float, default 1.0, 0.0
        ``α⟨·,·⟩ + β tr·tr`` on ``D log_x[·]``; ``α > 0``, ``β > −α/n``.
    compute_dtype : "auto", None or torch.dtype
        ``"auto"`` computes float32 inputs in float64 (see :class:`SPDMetric`).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> m = SPD(3, metric="log_euclidean")
    >>> x = m.random_point(generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> u = m.random_tangent(x, generator=torch.Generator().manual_seed(1))
    >>> torch.allclose(m.dist(x, m.exp(x, u)), m.norm(x, u))
    True
    """

    name = "log_euclidean"
    has_gyro = True

    def _inner1(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        a = dlogm(x, u)
        b = a if v is u else dlogm(x, v)
        return self._ab_inner(a, b)

    def _exp1(self, x: Tensor, u: Tensor) -> Tensor:
        return le_exp(x, u)

    def _log1(self, x: Tensor, y: Tensor) -> Tensor:
        return le_log(x, y)

    def _dist1(self, x: Tensor, y: Tensor) -> Tensor:
        if self.beta != 0.0:
            self.check_n(x.shape[-1])
        return le_dist(x, y, self.alpha, self.beta)

    def _transport1(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return le_transport(x, y, v)

    def _geodesic1(self, x: Tensor, y: Tensor, t: Tensor) -> Tensor:
        s = logm(x)
        return expm(s + t * (logm(y) - s))

    def _rgrad1(self, x: Tensor, g: Tensor) -> Tensor:
        # G_x = D log_x* Q D log_x, so grad = D exp Q⁻¹ D exp [G] (D log_x self-adjoint).
        lam, v = eigh(sym(x.detach()))
        s = logm(x)
        eig = (lam.log(), v)
        inner = self._ab_inv(frechet(s, Exp(), g, eig=eig))
        return sym(frechet(s, Exp(), inner, eig=eig))

    def _rhess1(self, x: Tensor, g: Tensor, h: Tensor, u: Tensor) -> Tensor:
        # Pullback of a flat metric: Hess f(x)[u] = D exp_S Q⁻¹ [D exp_S H + D² exp_S[W, G]],
        # S = log x, W = D log_x[u] (f̃ = f∘exp has ∇f̃ = D exp_S[G]).
        lam, v = eigh(sym(x.detach()))
        s = logm(x)
        eig = (lam.log(), v)
        w = dlogm(x, u)
        eh = frechet(s, Exp(), h, eig=eig) + frechet2(s, Exp(), w, g)
        return sym(frechet(s, Exp(), self._ab_inv(eh), eig=eig))

    # Gyrogroup (abelian): P ⊕ Q = expm(log P + log Q), r ⊙ P = expm(r log P), ⊖P = P⁻¹.
    def _gyro_add1(self, x: Tensor, y: Tensor) -> Tensor:
        return expm(logm(x) + logm(y))

    def _gyro_scalar1(self, r: Tensor, x: Tensor) -> Tensor:
        return expm(r * logm(x))

    def _gyro_inv1(self, x: Tensor) -> Tensor:
        return expm(-logm(x))
