"""Hyperbolic layers: Poincaré linear and MLR (HNN++ / Ganea), Lorentz linear, Poincaré GyroBN.

Every layer works at curvature ``-c`` and can learn ``c``. The curvature is a plain
:class:`torch.nn.Parameter` (or, fixed, a Python float) owned by the layer and passed unchanged to
the functional core (:mod:`riemlearn.manifolds.mobius`, :mod:`~riemlearn.manifolds.poincare`,
:mod:`~riemlearn.manifolds.lorentz`): **the parameter's value is the curvature used** (no
softplus, no exp re-parametrisation, the initial value is exact). Positivity is not enforced by
a transform; a forward pass with ``c <= 0`` raises ``ValueError`` (one host sync per call when
``c`` is learnable). Several layers can share one curvature: pass the same ``nn.Parameter`` as
``c`` to each.

Ball-valued parameters (gyroplane offsets, batch-norm biases) are
:class:`~riemlearn.optim.ManifoldParameter` on ``PoincareBall(c)`` when ``c`` is fixed. With a
learnable curvature the ball itself moves, so they are stored as tangent vectors at the origin
(Euclidean parameters) and mapped by ``exp_0`` at the current ``c``.

References: Ganea, Bécigneul & Hofmann (NeurIPS 2018) hyperbolic MLR; Shimizu, Mukuta & Harada
(ICLR 2021) HNN++ (unidirectional MLR and Poincaré FC); Chen et al. (ACL 2022) fully hyperbolic
networks (Lorentz linear); Lou et al. (ICML 2020) / Chen et al. (2025) Riemannian/gyro batch norm.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..manifolds import PoincareBall, mobius, poincare
from ..optim import ManifoldParameter

__all__ = ["PoincareLinear", "PoincareMLR", "LorentzLinear", "PoincareGyroBN", "hnnpp_logits"]


def _check_c(c: float | nn.Parameter) -> None:
    if isinstance(c, nn.Parameter):
        if c.numel() != 1:
            raise ValueError(f"curvature parameter c must be a scalar, got shape {tuple(c.shape)}")
        val = float(c.detach())
    else:
        val = float(c)
    if not (math.isfinite(val) and val > 0):
        raise ValueError(f"curvature c must be positive and finite, got {val}")


class _Curved(nn.Module):
    """Owns the curvature: a float, or an ``nn.Parameter`` whose value is the curvature used."""

    def _init_curvature(self, c: float | nn.Parameter, learn_curvature: bool, dtype, device) -> None:
        _check_c(c)
        if isinstance(c, nn.Parameter):  # shared with other layers
            self.c = c
        elif learn_curvature:
            self.c = nn.Parameter(torch.tensor(float(c), dtype=dtype, device=device))
        else:
            self.c = float(c)

    @property
    def learn_curvature(self) -> bool:
        return isinstance(self.c, Tensor)

    def curvature(self, ref: Tensor) -> Tensor | float:
        """The curvature as passed to the functional core (tensor in ``ref``'s dtype if learnable)."""
        if isinstance(self.c, Tensor):
            if not bool(self.c.detach() > 0):
                raise ValueError(f"curvature parameter c must stay positive, got {float(self.c.detach())}")
            return self.c.to(ref.dtype).reshape(())
        return self.c

    def _c_repr(self) -> str:
        if isinstance(self.c, Tensor):
            return f"c={float(self.c.detach()):.4g} (learnable)"
        return f"c={self.c}"

    def _ball_param(self, value: Tensor, n: int) -> nn.Parameter:
        """A ball-valued parameter stored at the origin-tangent (learnable c) or on the ball."""
        if self.learn_curvature:
            return nn.Parameter(value)
        return ManifoldParameter(value, manifold=PoincareBall(float(self.c), n=n))

    def _ball_point(self, p: Tensor, c: Tensor | float) -> Tensor:
        return mobius.expmap0(p, c) if self.learn_curvature else p


def hnnpp_logits(x: Tensor, z: Tensor, r: Tensor, c: Tensor | float) -> Tensor:
    """Unidirectional hyperbolic MLR of HNN++ (Shimizu et al. 2021, eq. 9).

    ``v_k(x) = (2‖z_k‖/√c) asinh(λ_x ⟨√c x, z_k/‖z_k‖⟩ cosh(2√c r_k) − (λ_x − 1) sinh(2√c r_k))``
    with ``λ_x = 2/(1 − c‖x‖²)``: the signed distance of ``x`` to the gyroplane with normal
    ``z_k`` at (signed) distance ``r_k`` from the origin, times ``‖z_k‖`` (the conformal norm of
    the normal).

    Parameters
    ----------
    x : Tensor, shape (*batch, n)
        Ball points.
    z : Tensor, shape (n, K)
        Normals (Euclidean).
    r : Tensor, shape (K,)
        Offsets.
    c : float or Tensor
        Curvature.

    Returns
    -------
    Tensor, shape (*batch, K)
    """
    cc = mobius.curvature(c, x)
    sc = torch.sqrt(cc)
    lam = 2 / mobius.one_minus_cnorm2(x, c)
    zn = z.norm(dim=0).clamp_min(torch.finfo(x.dtype).tiny)
    arg = lam * sc * (x @ z) / zn * torch.cosh(2 * sc * r) - (lam - 1) * torch.sinh(2 * sc * r)
    return 2 * zn / sc * torch.asinh(arg)


def _check_ball_input(x: Tensor, n: int, name: str = "input") -> None:
    if x.dim() < 1 or x.shape[-1] != n:
        raise ValueError(f"{name} must have shape (*batch, {n}), got {tuple(x.shape)}")


class PoincareMLR(_Curved):
    """Hyperbolic multinomial logistic regression on the Poincaré ball.

    ``form="hnn++"`` (default): logits of :func:`hnnpp_logits` with Euclidean normals ``z_k``
    and scalar offsets ``r_k`` (Shimizu et al. 2021; ``n + 1`` parameters per class).
    ``form="ganea"``: ``λ_{p_k}‖a_k‖ d_signed(x, H_{a_k, p_k})`` with gyroplane offsets ``p_k``
    on the ball (Ganea et al. 2018; ``2n`` parameters per class).

    Parameters
    ----------
    in_features : int
        Ball dimension ``n``.
    n_classes : int
        Number of classes ``K``.
    c : float or nn.Parameter
        Curvature (value used as is); pass an ``nn.Parameter`` to share one with other layers.
    learn_curvature : bool
        Own a new learnable curvature initialised at ``c``.
    form : {"hnn++", "ganea"}
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> mlr = PoincareMLR(3, 4, dtype=torch.float64)
    >>> mlr(torch.zeros(5, 3, dtype=torch.float64)).shape
    torch.Size([5, 4])
    """

    def __init__(self, in_features: int, n_classes: int, c: float | nn.Parameter = 1.0, *,
                 learn_curvature: bool = False, form: str = "hnn++", dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_features < 1 or n_classes < 1:
            raise ValueError(f"in_features and n_classes must be >= 1, got {in_features}, {n_classes}")
        if form not in ("hnn++", "ganea"):
            raise ValueError(f"form must be 'hnn++' or 'ganea', got {form!r}")
        self._init_curvature(c, learn_curvature, dtype, device)
        self.in_features, self.n_classes, self.form = in_features, n_classes, form
        std = (2.0 * in_features * n_classes) ** -0.5
        w = torch.randn(in_features, n_classes, generator=generator, dtype=dtype) * std
        if form == "hnn++":
            self.z = nn.Parameter(w.to(device))
            self.r = nn.Parameter(torch.zeros(n_classes, dtype=dtype, device=device))
        else:
            self.a = nn.Parameter(w.T.contiguous().to(device))
            self.p = self._ball_param(torch.zeros(n_classes, in_features, dtype=dtype, device=device),
                                      in_features)

    def forward(self, x: Tensor) -> Tensor:
        _check_ball_input(x, self.in_features)
        c = self.curvature(x)
        if self.form == "hnn++":
            return hnnpp_logits(x, self.z.to(x.dtype), self.r.to(x.dtype), c)
        p = self._ball_point(self.p.to(x.dtype), c)  # (K, n)
        a = self.a.to(x.dtype)
        d = mobius.dist_to_gyroplane(x.unsqueeze(-2), p, a, c)  # (*batch, K)
        lam = (2 / mobius.one_minus_cnorm2(p, c)).squeeze(-1)
        return lam * a.norm(dim=-1) * d

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.n_classes}, form={self.form}, {self._c_repr()}"


class PoincareLinear(_Curved):
    """Poincaré fully-connected layer of HNN++ (Shimizu et al. 2021, eq. 10).

    ``y = w / (1 + √(1 + c‖w‖²))`` with ``w = sinh(√c v(x))/√c`` and ``v(x)`` the ``m``
    HNN++ MLR logits (:func:`hnnpp_logits`): the output's signed distances to the coordinate
    gyroplanes through the origin equal ``v(x)``. The bias is the offsets ``r``. Results within
    a few ulps of the boundary are pulled inside (:func:`riemlearn.manifolds.mobius.keep_inside`);
    ``sinh`` overflows once ``√c v`` exceeds ~88 (float32) / ~710 (float64).

    Parameters
    ----------
    in_features, out_features : int
    c : float or nn.Parameter
        Curvature (value used as is).
    learn_curvature : bool
    bias : bool
        Learn the offsets ``r`` (else zero).
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> layer = PoincareLinear(3, 2, dtype=torch.float64)
    >>> y = layer(torch.full((4, 3), 0.2, dtype=torch.float64))
    >>> y.shape, bool((y.norm(dim=-1) < 1).all())
    (torch.Size([4, 2]), True)
    """

    def __init__(self, in_features: int, out_features: int, c: float | nn.Parameter = 1.0, *,
                 learn_curvature: bool = False, bias: bool = True, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        self._init_curvature(c, learn_curvature, dtype, device)
        self.in_features, self.out_features = in_features, out_features
        std = (2.0 * in_features * out_features) ** -0.5
        w = torch.randn(in_features, out_features, generator=generator, dtype=dtype) * std
        self.z = nn.Parameter(w.to(device))
        r = torch.zeros(out_features, dtype=dtype, device=device)
        if bias:
            self.r = nn.Parameter(r)
        else:
            self.register_buffer("r", r)

    def forward(self, x: Tensor) -> Tensor:
        _check_ball_input(x, self.in_features)
        c = self.curvature(x)
        v = hnnpp_logits(x, self.z.to(x.dtype), self.r.to(x.dtype), c)
        cc = mobius.curvature(c, v)
        sc = torch.sqrt(cc)
        w = torch.sinh(sc * v) / sc
        y = w / (1 + torch.sqrt(1 + cc * (w * w).sum(-1, keepdim=True)))
        return mobius.keep_inside(y, c)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, {self._c_repr()}"


class LorentzLinear(_Curved):
    """Lorentz linear layer of fully hyperbolic networks (Chen et al. 2022).

    Points are ``(*batch, n+1)`` on the hyperboloid ``−x₀² + ‖x_s‖² = −1/c`` (time first).
    ``z = W x + b`` maps the whole point (``(m+1) × (n+1)`` weight); the output time is
    ``t = λ σ(z₀) + 1.1/√c`` with learnable ``λ = exp(log_scale)`` (``normalize=True``, as in
    the reference implementation: bounds the output's distance from the origin), or
    ``t = √(‖z_s‖² + 1/c)`` (``normalize=False``); the space part is ``z_s`` rescaled so that the
    output lies exactly on the hyperboloid.

    Parameters
    ----------
    in_features, out_features : int
        Hyperboloid dimensions ``n`` and ``m`` (tensors carry ``n + 1`` / ``m + 1`` coordinates).
    c : float or nn.Parameter
    learn_curvature : bool
    bias : bool
    normalize : bool
        Bounded time coordinate (default True).
    scale : float
        Initial ``λ`` (default 10).
    dtype, device, generator : optional

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Lorentz
    >>> layer = LorentzLinear(3, 2, dtype=torch.float64)
    >>> x = Lorentz(1.0, n=3).origin(4, dtype=torch.float64)
    >>> y = layer(x)
    >>> y.shape, bool(Lorentz(1.0, n=2).belongs(y).all())
    (torch.Size([4, 3]), True)
    """

    def __init__(self, in_features: int, out_features: int, c: float | nn.Parameter = 1.0, *,
                 learn_curvature: bool = False, bias: bool = True, normalize: bool = True,
                 scale: float = 10.0, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self._init_curvature(c, learn_curvature, dtype, device)
        self.in_features, self.out_features, self.normalize = in_features, out_features, normalize
        bound = 1.0 / math.sqrt(in_features + 1)
        w = (torch.rand(out_features + 1, in_features + 1, generator=generator, dtype=dtype) * 2 - 1) * bound
        self.weight = nn.Parameter(w.to(device))
        self.bias = nn.Parameter(torch.zeros(out_features + 1, dtype=dtype, device=device)) if bias else None
        if normalize:
            self.log_scale = nn.Parameter(torch.tensor(math.log(scale), dtype=dtype, device=device))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features + 1:
            raise ValueError(f"input must have shape (*batch, {self.in_features + 1}), got {tuple(x.shape)}")
        c = self.curvature(x)
        z = x @ self.weight.to(x.dtype).T
        if self.bias is not None:
            z = z + self.bias.to(x.dtype)
        zs = z[..., 1:]
        cc = mobius.curvature(c, z)
        s2 = (zs * zs).sum(-1, keepdim=True)
        if not self.normalize:
            return torch.cat((torch.sqrt(s2 + 1 / cc), zs), -1)
        t = torch.exp(self.log_scale.to(x.dtype)) * torch.sigmoid(z[..., :1]) + 1.1 / torch.sqrt(cc)
        factor = torch.sqrt((t * t - 1 / cc) / s2.clamp_min(torch.finfo(x.dtype).tiny))
        return torch.cat((t, zs * factor), -1)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, normalize={self.normalize}, {self._c_repr()}"


def _ball_frechet_mean(x: Tensor, c: Tensor | float, init: Tensor | None = None,
                       tol: float | None = None, max_iter: int = 100) -> Tensor:
    """Fréchet mean of ``(N, n)`` ball points at curvature ``c`` (differentiable in ``x`` and ``c``).

    Computed at curvature 1 on ``√c x`` (the map is a homothety: ``d_c = d_1(√c·, √c·)/√c``).
    """
    from ..stats.frechet_mean import frechet_mean

    sc = torch.sqrt(mobius.curvature(c, x))
    i1 = None if init is None else mobius.keep_inside(sc * init, 1.0)
    return frechet_mean(sc * x, PoincareBall(1.0), init=i1, tol=tol, max_iter=max_iter) / sc


class PoincareGyroBN(_Curved):
    """Gyro batch normalization on the Poincaré ball (Riemannian BN, Lou et al. 2020; GyroBN).

    Train mode, for a batch ``x_i`` (``(N, n)``; extra leading axes are folded into the batch):
    ``μ`` = Fréchet mean (:func:`riemlearn.stats.frechet_mean`), ``σ² = mean d²(μ, x_i)``, and
    ``y_i = b ⊕ ((s/√(σ² + eps)) ⊙ ((⊖μ) ⊕ x_i))``. Left gyro-translation by ``⊖μ`` is an
    isometry carrying ``μ`` to the origin, so the centred batch has Fréchet mean exactly 0;
    scaling at the origin keeps it there and multiplies the dispersion by ``s²/(σ² + eps)``;
    translating by the bias ``b`` makes the output's Fréchet mean ``b``. The running mean
    moves along the geodesic towards ``μ`` by ``momentum``, the running variance linearly;
    eval mode uses them.

    Parameters
    ----------
    n : int
        Ball dimension.
    c : float or nn.Parameter
    learn_curvature : bool
    momentum : float
        Running-statistics momentum (default 0.1).
    eps : float
        Added to ``σ²`` (default 1e-6).
    max_iter : int
        Iteration cap of the Fréchet mean (default 50).
    tol : float, optional
        Gradient-norm tolerance of the Fréchet mean (default: that of
        :func:`~riemlearn.stats.frechet_mean`, 1e-10 in float64).
    dtype, device : optional

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import PoincareBall
    >>> bn = PoincareGyroBN(2, dtype=torch.float64)
    >>> x = PoincareBall(1.0, n=2).random_point(8, generator=torch.Generator().manual_seed(0),
    ...                                          dtype=torch.float64) * 0.5
    >>> bn(x).shape
    torch.Size([8, 2])
    """

    def __init__(self, n: int, c: float | nn.Parameter = 1.0, *, learn_curvature: bool = False,
                 momentum: float = 0.1, eps: float = 1e-6, max_iter: int = 50,
                 tol: float | None = None,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
        if not eps >= 0:
            raise ValueError(f"eps must be non-negative, got {eps}")
        self._init_curvature(c, learn_curvature, dtype, device)
        self.n, self.momentum, self.eps, self.max_iter = n, float(momentum), float(eps), int(max_iter)
        self.tol = tol
        self.bias = self._ball_param(torch.zeros(n, dtype=dtype, device=device), n)
        self.scale = nn.Parameter(torch.ones((), dtype=dtype, device=device))
        self.register_buffer("running_mean", torch.zeros(n, dtype=dtype, device=device))
        self.register_buffer("running_var", torch.ones((), dtype=dtype, device=device))

    def forward(self, x: Tensor) -> Tensor:
        _check_ball_input(x, self.n)
        c = self.curvature(x)
        shape = x.shape
        xf = x.reshape(-1, self.n)
        if self.training:
            if xf.shape[0] < 2:
                raise ValueError("PoincareGyroBN needs at least 2 points per batch in train mode")
            init = self.running_mean.to(x.dtype).detach()
            mu = _ball_frechet_mean(xf, c, init=init, tol=self.tol, max_iter=self.max_iter)
            var = (poincare.dist(mu, xf, c) ** 2).mean()
            with torch.no_grad():
                m = self.momentum
                rm = self.running_mean.to(x.dtype)
                step = poincare.log(rm, mu.detach(), c.detach() if isinstance(c, Tensor) else c)
                new = poincare.exp(rm, m * step, c.detach() if isinstance(c, Tensor) else c)
                self.running_mean.copy_(new)
                self.running_var.mul_(1 - m).add_(m * var.detach().to(self.running_var.dtype))
        else:
            mu = mobius.keep_inside(self.running_mean.to(x.dtype), c)
            var = self.running_var.to(x.dtype)
        centred = mobius.gyro_add(-mu, xf, c)
        factor = self.scale.to(x.dtype) / torch.sqrt(var + self.eps)
        scaled = mobius.gyro_scalar(factor, centred, c)
        b = self._ball_point(self.bias.to(x.dtype), c)
        return mobius.gyro_add(b, scaled, c).reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.n}, momentum={self.momentum}, eps={self.eps}, {self._c_repr()}"
