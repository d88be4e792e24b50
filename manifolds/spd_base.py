"""Shared machinery of the SPD metrics: compute dtype, power deformation, Fréchet derivatives.

Every SPD metric derives from :class:`SPDMetric`. A subclass writes the undeformed operations
(``_inner1``, ``_exp1``, ``_log1``, ...) for ``θ = 1``; this base class adds

* the **compute dtype**: float32 (and half) inputs are computed in float64 internally and the
  results returned in the input dtype (``compute_dtype="auto"``, the default). This is what keeps
  float32 distances accurate at condition numbers around 1e8; pass ``compute_dtype=None`` to
  compute in the input dtype (faster, much less accurate for ill-conditioned inputs);
* the **power deformation** ``θ``: the metric pulled back by ``φ(P) = P^θ`` and scaled by
  ``1/θ²`` (Thanwerdas & Pennec 2019; Chen et al., LieBN 2024), so that ``φ`` is an isometry onto
  the undeformed metric scaled by ``1/θ²``. Every operation is transported through ``φ`` with the
  Daleckii–Krein Fréchet derivative ``Dφ`` (one eigendecomposition, stable at ties);
* the **gyro inner product and distance** of Nguyen & Yang (2023):
  ``⟨P, Q⟩_gyro = ⟨Log_I P, Log_I Q⟩_I`` and ``d_gyro(P, Q) = ‖⊖P ⊕ Q‖_gyro``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .base import Metric, as_shape, safe_sqrt
from .spectral import Power, SpectralFn, _DaleckiiKrein, eigh, powm, sym
from .tolerance import tie_threshold

__all__ = ["SPDMetric", "frechet", "frechet2", "trace", "fro_inner", "resolve_compute_dtype"]


def trace(a: Tensor) -> Tensor:
    """Trace of ``(*batch, n, n)``, shape ``(*batch,)``."""
    return torch.diagonal(a, dim1=-2, dim2=-1).sum(-1)


def fro_inner(a: Tensor, b: Tensor) -> Tensor:
    """Frobenius inner product ``tr(aᵀb)``, shape ``(*batch,)``."""
    return (a * b).sum((-2, -1))


def frechet(
    x: Tensor,
    fn: SpectralFn,
    h: Tensor,
    *,
    eig: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Fréchet derivative ``Df(X)[H]`` of a spectral function, differentiable in ``X`` and ``H``.

    ``Df(X)[H] = V (F ∘ VᵀHV) Vᵀ`` with the Loewner matrix ``F_ij = f[λi, λj]`` (Daleckii–Krein),
    evaluated without cancellation and finite at repeated eigenvalues. The map is self-adjoint for
    the Frobenius inner product.

    Parameters
    ----------
    x : Tensor, shape (*batch, n, n)
        Symmetric matrices (eigenvalues in the domain of ``f``).
    fn : SpectralFn
        The scalar function (e.g. ``Log()``, ``Exp()``, ``Power(t)``).
    h : Tensor, shape (*batch, n, n)
        Direction (its symmetric part is used).
    eig : (w, v), optional
        A precomputed eigendecomposition of ``x`` (ascending ``w``), to save one ``eigh``.

    Returns
    -------
    Tensor, shape (*batch, n, n)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.spectral import Log
    >>> from riemlearn.manifolds.spd_base import frechet
    >>> x = torch.diag(torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> frechet(x, Log(), torch.eye(2, dtype=torch.float64)).diagonal()
    tensor([1.0000, 0.5000], dtype=torch.float64)
    """
    if eig is None:
        w, v = eigh(sym(x.detach()))
    else:
        w, v = eig
    if not (torch.is_grad_enabled() and (x.requires_grad or h.requires_grad)):
        # No autograd: the Loewner matrix of a point shared by a batch of directions is built
        # once (not per direction), and ½ of sym(VᵀHV) = Vᵀ sym(H) V is folded into it.
        f1 = fn.first_divided_difference(w, tie_threshold(w.dtype)) * 0.5
        hh = v.mT @ h.to(v.dtype) @ v
        return (v @ (hh + hh.mT).mul_(f1) @ v.mT).to(x.dtype)
    shape = torch.broadcast_shapes(x.shape, h.shape)
    if x.shape != shape:
        x = x.expand(shape)
        w = w.expand(shape[:-1])
        v = v.expand(shape)
    return _DaleckiiKrein.apply(x, w, v, (fn,), h)


def frechet2(x: Tensor, fn: SpectralFn, a: Tensor, b: Tensor) -> Tensor:
    """Second Fréchet derivative ``D²f(X)[A, B]`` (no autograd; used by Hessians).

    In the eigenbasis of ``X``: ``M_ij = Σ_k f[λi, λk, λj] (A_ik B_kj + B_ik A_kj)``
    (Bhatia, *Matrix Analysis*, V.3).
    """
    w, v = eigh(sym(x.detach()))
    f2 = fn.second_divided_difference(w, tie_threshold(w.dtype))
    ah = v.mT @ sym(a) @ v
    bh = v.mT @ sym(b) @ v
    m = torch.einsum("...ikj,...ik,...kj->...ij", f2, ah, bh)
    return v @ (m + m.mT) @ v.mT


def resolve_compute_dtype(spec: Any, dtype: torch.dtype) -> torch.dtype:
    """The dtype operations run in for inputs of ``dtype`` under the policy ``spec``."""
    if spec is None:
        return dtype
    if spec == "auto":
        return torch.float64 if dtype in (torch.float32, torch.float16, torch.bfloat16) else dtype
    return spec


class SPDMetric(Metric):
    """Base class of the SPD metrics (points ``(*batch, n, n)``, ``ndim = 2``).

    Parameters
    ----------
    theta : float
        Power deformation: the metric is pulled back by ``P ↦ P^θ`` and scaled by ``1/θ²``.
        ``θ = 1`` is the undeformed metric; ``θ`` must be finite and non-zero.
    alpha, beta : float
        O(n)-invariant weighting ``α⟨A, B⟩ + β tr(A) tr(B)`` of the inner product (where the
        metric supports it). Requires ``α > 0`` and ``β > −α/n``.
    compute_dtype : "auto", None or torch.dtype
        ``"auto"`` (default): float32/half inputs are computed in float64 and returned in their
        own dtype; ``None``: compute in the input dtype; a dtype: always compute in it.
    """

    ndim = 2
    supports_alpha_beta = True

    def __init__(
        self,
        theta: float = 1.0,
        alpha: float = 1.0,
        beta: float = 0.0,
        *,
        compute_dtype: torch.dtype | str | None = "auto",
    ) -> None:
        theta, alpha, beta = float(theta), float(alpha), float(beta)
        if not math.isfinite(theta) or theta == 0.0:
            raise ValueError(f"theta must be finite and non-zero, got {theta}")
        if not math.isfinite(alpha) or alpha <= 0.0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not math.isfinite(beta) or beta <= -alpha:
            raise ValueError(f"beta must be > -alpha/n (and so > -alpha = {-alpha}), got {beta}")
        if not self.supports_alpha_beta and (alpha != 1.0 or beta != 0.0):
            raise ValueError(f"{type(self).__name__} has no (alpha, beta) family")
        if compute_dtype not in (None, "auto") and not isinstance(compute_dtype, torch.dtype):
            raise ValueError(f"compute_dtype must be 'auto', None or a torch.dtype, got {compute_dtype!r}")
        self.theta, self.alpha, self.beta = theta, alpha, beta
        self.compute_dtype = compute_dtype

    def _params(self) -> tuple:
        return (self.theta, self.alpha, self.beta, self.compute_dtype)

    def __repr__(self) -> str:
        parts = []
        if self.theta != 1.0:
            parts.append(f"theta={self.theta}")
        if self.alpha != 1.0 or self.beta != 0.0:
            parts.append(f"alpha={self.alpha}, beta={self.beta}")
        if self.compute_dtype != "auto":
            parts.append(f"compute_dtype={self.compute_dtype}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- (alpha, beta) ----------------------------------------------------------------------
    def check_n(self, n: int) -> None:
        """Raise ``ValueError`` unless ``β > −α/n`` (the weighting is positive definite)."""
        if self.alpha + n * self.beta <= 0.0:
            raise ValueError(f"beta must be > -alpha/n = {-self.alpha / n:.6g} for n={n}, got {self.beta}")

    def _ab_inner(self, a: Tensor, b: Tensor) -> Tensor:
        """``α⟨a, b⟩ + β tr a tr b`` (Frobenius-based), shape ``(*batch,)``."""
        out = fro_inner(a, b)
        if self.alpha != 1.0:
            out = self.alpha * out
        if self.beta != 0.0:
            self.check_n(a.shape[-1])
            out = out + self.beta * trace(a) * trace(b)
        return out

    def _ab_inv(self, a: Tensor, x: Tensor | None = None) -> Tensor:
        """Inverse of ``a ↦ α a + β tr(x⁻¹a) x`` (``x = I`` when ``None``)."""
        if self.beta != 0.0:
            n = a.shape[-1]
            self.check_n(n)
            c = self.beta / (self.alpha + n * self.beta)
            if x is None:
                tr = trace(a)[..., None, None]
                a = a - c * tr * torch.eye(n, dtype=a.dtype, device=a.device)
            else:
                tr = trace(torch.linalg.solve(x, a))[..., None, None]
                a = a - c * tr * x
        return a / self.alpha if self.alpha != 1.0 else a

    # -- compute dtype ------------------------------------------------------------------------
    def _run(self, op: Callable[..., Tensor], *ts: Any) -> Tensor:
        ref = next(t for t in ts if isinstance(t, Tensor))
        dt = ref.dtype
        cdt = resolve_compute_dtype(self.compute_dtype, dt)
        if cdt == dt:
            return op(*ts)
        args = [t.to(cdt) if isinstance(t, Tensor) and t.is_floating_point() else t for t in ts]
        return op(*args).to(dt)

    # -- power deformation ----------------------------------------------------------------------
    def _phi(self, x: Tensor) -> Tensor:
        return powm(x, self.theta)

    def _dphi(self, x: Tensor, u: Tensor) -> Tensor:
        return frechet(x, Power(self.theta), u)

    def _dphi_inv(self, p: Tensor, w: Tensor) -> Tensor:
        """``(Dφ_x)⁻¹[w] = Dφ⁻¹_p[w]`` at ``p = φ(x)``."""
        return frechet(p, Power(1.0 / self.theta), w)

    def _phi_inv(self, p: Tensor) -> Tensor:
        return powm(p, 1.0 / self.theta)

    # -- undeformed operations (subclasses) -----------------------------------------------------
    def _inner1(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        raise NotImplementedError

    def _exp1(self, x: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError

    def _log1(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def _dist1(self, x: Tensor, y: Tensor) -> Tensor:
        u = self._log1(x, y)
        return safe_sqrt(self._inner1(x, u, u))

    def _retract1(self, x: Tensor, u: Tensor) -> Tensor:
        return self._exp1(x, u)

    def _transport1(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        raise NotImplementedError

    def _rgrad1(self, x: Tensor, g: Tensor) -> Tensor:
        raise NotImplementedError

    def _rhess1(self, x: Tensor, g: Tensor, h: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError

    def _geodesic1(self, x: Tensor, y: Tensor, t: Tensor) -> Tensor:
        return self._exp1(x, t * self._log1(x, y))

    def _gyro_add1(self, x: Tensor, y: Tensor) -> Tensor:
        raise self._unsupported("gyro_add")

    def _gyro_scalar1(self, r: Tensor, x: Tensor) -> Tensor:
        raise self._unsupported("gyro_scalar")

    def _gyro_inv1(self, x: Tensor) -> Tensor:
        raise self._unsupported("gyro_inv")

    # -- public operations ----------------------------------------------------------------------
    def _deformed(self) -> bool:
        return self.theta != 1.0

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Inner product ``⟨u, v⟩_x``; ``x, u, v`` of shape ``(*batch, n, n)`` → ``(*batch,)``."""
        return self._run(self._inner, x, u, v)

    def _inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        if not self._deformed():
            return self._inner1(x, u, v)
        p = self._phi(x)
        return self._inner1(p, self._dphi(x, u), self._dphi(x, v)) / self.theta**2

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        """Riemannian exponential ``Exp_x(u)``, shape ``(*batch, n, n)``."""
        return self._run(self._exp, x, u)

    def _exp(self, x: Tensor, u: Tensor) -> Tensor:
        if not self._deformed():
            return self._exp1(x, u)
        return self._phi_inv(self._exp1(self._phi(x), self._dphi(x, u)))

    def retract(self, x: Tensor, u: Tensor) -> Tensor:
        """Retraction (second order for every SPD metric here)."""
        return self._run(self._retract, x, u)

    def _retract(self, x: Tensor, u: Tensor) -> Tensor:
        if not self._deformed():
            return self._retract1(x, u)
        return self._phi_inv(self._retract1(self._phi(x), self._dphi(x, u)))

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        """Riemannian logarithm ``Log_x(y)``, shape ``(*batch, n, n)``."""
        return self._run(self._log, x, y)

    def _log(self, x: Tensor, y: Tensor) -> Tensor:
        if not self._deformed():
            return self._log1(x, y)
        p = self._phi(x)
        return self._dphi_inv(p, self._log1(p, self._phi(y)))

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance, shape ``(*batch,)``."""
        return self._run(self._dist, x, y)

    def _dist(self, x: Tensor, y: Tensor) -> Tensor:
        if not self._deformed():
            return self._dist1(x, y)
        return self._dist1(self._phi(x), self._phi(y)) / abs(self.theta)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        """Parallel transport of ``v ∈ T_x`` along the geodesic to ``T_y``."""
        return self._run(self._transport, x, y, v)

    def _transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        if not self._deformed():
            return self._transport1(x, y, v)
        p, q = self._phi(x), self._phi(y)
        return self._dphi_inv(q, self._transport1(p, q, self._dphi(x, v)))

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        """Riemannian gradient ``G_x⁻¹ sym(egrad)`` from a Euclidean gradient."""
        return self._run(self._rgrad, x, egrad)

    def _rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        g = sym(egrad)
        if not self._deformed():
            return self._rgrad1(x, g)
        p = self._phi(x)
        return self.theta**2 * self._dphi_inv(p, self._rgrad1(p, self._dphi_inv(p, g)))

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        """Riemannian Hessian-vector product ``Hess f(x)[u]``.

        ``egrad`` is the Euclidean gradient at ``x`` and ``ehess = D egrad(x)[u]``.
        """
        return self._run(self._rhess, x, egrad, ehess, u)

    def _rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        g, h = sym(egrad), sym(ehess)
        if not self._deformed():
            return self._rhess1(x, g, h, u)
        # f̃ = f∘ψ with ψ = φ⁻¹ on the undeformed metric; Hess_θ = θ² Dψ Hess₁ f̃ Dφ.
        p = self._phi(x)
        psi = Power(1.0 / self.theta)
        w = self._dphi(x, u)
        gt = frechet(p, psi, g)
        ht = frechet2(p, psi, w, g) + frechet(p, psi, h)
        return self.theta**2 * frechet(p, psi, self._rhess1(p, gt, ht, w))

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        """Point at time ``t`` of the geodesic from ``x`` (t=0) to ``y`` (t=1)."""
        return self._run(self._geodesic, x, y, t)

    def _geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        tt = tt.reshape(tt.shape + (1, 1))
        if not self._deformed():
            return self._geodesic1(x, y, tt)
        return self._phi_inv(self._geodesic1(self._phi(x), self._phi(y), tt))

    def identity(
        self,
        *batch: int,
        n: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Identity matrices ``(*batch, n, n)`` (the gyro identity of every SPD metric here)."""
        eye = torch.eye(n, dtype=dtype, device=device)
        return eye.expand(as_shape(batch) + (n, n)).clone()

    # -- gyro -----------------------------------------------------------------------------------
    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro addition ``x ⊕ y`` (the structure transported through ``P ↦ P^θ``)."""
        return self._run(self._gyro_add, x, y)

    def _gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        if not self._deformed():
            return self._gyro_add1(x, y)
        return self._phi_inv(self._gyro_add1(self._phi(x), self._phi(y)))

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        """Gyro scalar multiplication ``r ⊙ x``; ``r`` a float or ``(*batch,)``."""
        return self._run(self._gyro_scalar, r, x)

    def _gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        rr = torch.as_tensor(r, dtype=x.dtype, device=x.device)
        rr = rr.reshape(rr.shape + (1, 1))
        if not self._deformed():
            return self._gyro_scalar1(rr, x)
        return self._phi_inv(self._gyro_scalar1(rr, self._phi(x)))

    def gyro_inv(self, x: Tensor) -> Tensor:
        """Gyro inverse ``⊖x``."""
        return self._run(self._gyro_inv, x)

    def _gyro_inv(self, x: Tensor) -> Tensor:
        if not self._deformed():
            return self._gyro_inv1(x)
        return self._phi_inv(self._gyro_inv1(self._phi(x)))

    def gyro_inner(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro inner product ``⟨Log_I x, Log_I y⟩_I`` (Nguyen & Yang 2023), ``(*batch,)``."""
        if not self.has_gyro:
            raise self._unsupported("gyro_inner")
        e = self.identity(n=x.shape[-1], dtype=x.dtype, device=x.device)
        return self.inner(e, self.log(e, x), self.log(e, y))

    def gyro_norm(self, x: Tensor) -> Tensor:
        """Gyro norm ``‖x‖ = ‖Log_I x‖_I = d(I, x)``, shape ``(*batch,)``."""
        if not self.has_gyro:
            raise self._unsupported("gyro_norm")
        e = self.identity(n=x.shape[-1], dtype=x.dtype, device=x.device)
        return self.dist(e, x)

    def gyro_dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Gyro distance ``‖⊖x ⊕ y‖`` (Nguyen & Yang 2023), shape ``(*batch,)``."""
        return self.gyro_norm(self.gyro_add(self.gyro_inv(x), y))

    # -- coordinates at the identity (tangent-space mapping) ------------------------------------
    def identity_coords(self, a: Tensor) -> Tensor:
        """Map ``a ∈ T_I`` to a matrix whose vech is an isometry from ``(T_I, g_I)``.

        For ``g_I(a, b) = α⟨a, b⟩ + β tr a tr b`` this is ``√α (a + γ tr(a) I)`` with
        ``α(2γ + nγ²) = β``.
        """
        n = a.shape[-1]
        if self.beta == 0.0:
            return a * math.sqrt(self.alpha) if self.alpha != 1.0 else a
        self.check_n(n)
        gam = (math.sqrt(1.0 + n * self.beta / self.alpha) - 1.0) / n
        eye = torch.eye(n, dtype=a.dtype, device=a.device)
        return math.sqrt(self.alpha) * (a + gam * trace(a)[..., None, None] * eye)

    def identity_coords_inv(self, c: Tensor) -> Tensor:
        """Inverse of :meth:`identity_coords`."""
        n = c.shape[-1]
        c = c / math.sqrt(self.alpha) if self.alpha != 1.0 else c
        if self.beta == 0.0:
            return c
        gam = (math.sqrt(1.0 + n * self.beta / self.alpha) - 1.0) / n
        eye = torch.eye(n, dtype=c.dtype, device=c.device)
        return c - gam / (1.0 + n * gam) * trace(c)[..., None, None] * eye
