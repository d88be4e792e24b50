"""Spectral functions of symmetric matrices with a stable (Daleckii–Krein) backward.

``f(X) = V diag(f(λ)) Vᵀ`` for ``X = V diag(λ) Vᵀ``. Autograd through ``torch.linalg.eigh``
divides by ``λi − λj`` and gives NaN at repeated eigenvalues (identity, diagonal ties); every
peer library inherits that. Here the backward is written in Loewner form::

    ∂L/∂X = V (F ∘ (Vᵀ Ḡ V)) Vᵀ,   F_ij = f[λi, λj] = (f(λi) − f(λj)) / (λi − λj),  F_ii = f'(λi)

with each divided difference evaluated by a cancellation-free formula (``log1p``/``expm1``) or,
for a general ``f``, replaced by the derivative at the midpoint when ``|λi − λj|`` is below
:func:`~riemlearn.manifolds.tolerance.tie_threshold` (relative). Double backward (Hessian-vector
products) uses second divided differences ``f[λi, λj, λk]``.

Several functions of one matrix share one eigendecomposition (:func:`sym_functions`). Every
``eigh`` goes through :func:`eigh`, the single dispatch point for the eigensolver.

All functions take ``(*batch, n, n)`` and symmetrize their input (``(X + Xᵀ)/2``), so the
gradient is the gradient of ``f(sym(X))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import eigh_dispatch as _dispatch
from .base import full_precision_products, plain_float_tensor
from .expm_polynomial import expm_sym_polynomial
from .spectral_fns import Clamp, Custom, Exp, Log, Power, SpectralFn
from .tolerance import tie_threshold

__all__ = [
    "sym",
    "eigh",
    "eigvalsh",
    "sym_functions",
    "sym_apply",
    "logm",
    "expm",
    "sqrtm",
    "invsqrtm",
    "sqrtm_invsqrtm",
    "powm",
    "clampm",
    "solve_lyapunov",
    "SpectralFn",
    "Log",
    "Exp",
    "Power",
    "Clamp",
    "Custom",
]


def sym(x: Tensor) -> Tensor:
    """Symmetric part ``(X + Xᵀ) / 2`` of ``(*batch, n, n)``."""
    return (x + x.mT) * 0.5


def eigh(x: Tensor) -> tuple[Tensor, Tensor]:
    """Eigendecomposition ``X = V diag(w) Vᵀ`` of symmetric ``(*batch, n, n)``, ascending ``w``.

    The one place riemlearn calls an eigensolver (no autograd through it: the spectral functions
    carry their own backward). Empty batches are returned as empty results. The solver is
    chosen by :mod:`~riemlearn.manifolds.eigh_dispatch` (forced with ``spectral_backend``).
    """
    if x.numel() == 0:
        n = x.shape[-1]
        return x.new_empty(x.shape[:-1]), x.new_empty(x.shape[:-2] + (n, n))
    return _dispatch.eigh(x.detach())


def eigvalsh(x: Tensor) -> Tensor:
    """Ascending eigenvalues of symmetric ``(*batch, n, n)`` (no eigenvectors: 2-3x cheaper).

    Not differentiable (detached input), for distances and checks that need the spectrum only.
    """
    if x.numel() == 0:
        return x.new_empty(x.shape[:-1])
    return _dispatch.eigvalsh(x.detach())


def _reconstruct(v: Tensor, fw: Tensor, spare: Tensor | None = None) -> Tensor:
    """``V diag(fw) Vᵀ``; ``spare`` (same shape as ``v``, optional) takes ``V diag(fw)``."""
    vf = v * fw.unsqueeze(-2) if spare is None else torch.mul(v, fw.unsqueeze(-2), out=spare)
    return vf @ v.mT


def _half_sandwich(v: Tensor, k: Tensor, spare: Tensor | None = None) -> Tensor:
    """``V K Vᵀ / 2`` with the ½ folded into the last GEMM (``baddbmm`` alpha).

    ``k`` is overwritten by the result; ``spare`` (same shape, optional) takes ``V K``.
    """
    n = v.shape[-1]
    b = math.prod(v.shape[:-2])
    vk = torch.matmul(v, k) if spare is None else torch.matmul(v, k, out=spare)
    out = k.reshape(b, n, n)
    torch.baddbmm(out, vk.reshape(b, n, n), v.mT.reshape(b, n, n), beta=0.0, alpha=0.5, out=out)
    return out.reshape(v.shape)


def _loewner_apply(v: Tensor, loewner: Sequence[Tensor], grads: Sequence[Tensor | None]) -> Tensor:
    """``V (Σ_k F_k ∘ Vᵀ sym(Ḡ_k) V) Vᵀ`` — the adjoint of the Fréchet derivatives.

    Written for speed at small n, where elementwise passes cost as much as a GEMM:
    ``Vᵀ sym(Ḡ) V = sym(Vᵀ Ḡ V)`` is symmetrized after the product and its ½ is folded into
    the final GEMM, so each gradient costs four GEMMs and two elementwise passes.
    """
    acc: Tensor | None = None
    spare: Tensor | None = None  # full-size buffers are reused: fresh ones cost page faults
    for f1, g in zip(loewner, grads, strict=True):
        if g is None:
            continue
        t = torch.matmul(v.mT, g.to(v.dtype))
        h = torch.matmul(t, v) if spare is None else torch.matmul(t, v, out=spare)
        term = torch.add(h, h.mT, out=t).mul_(f1)
        if acc is None:
            acc, spare = term, h
        else:
            acc.add_(term)
            spare = h
    if acc is None:
        return torch.zeros_like(v)
    return _half_sandwich(v, acc, spare)


def _eigh_sym(x: Tensor, compute_dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """``eigh(sym(x))`` in ``compute_dtype``: the ½ of ``sym`` is applied to the eigenvalues.

    Also returns the buffer that held ``X + Xᵀ``, free for reuse (fresh large CPU buffers cost
    page faults, as much as an elementwise pass at n = 32).
    """
    xd = x.detach().to(compute_dtype)
    s = xd + xd.mT
    w, v = eigh(s)
    return w * 0.5, v, s


class _SpectralFunctions(torch.autograd.Function):
    """``(f_1(X), ..., f_k(X))`` from one ``eigh``; Daleckii–Krein backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, fns: tuple[SpectralFn, ...], compute_dtype: Any) -> Any:
        w, v, spare = _eigh_sym(x, compute_dtype)
        outs = tuple(_reconstruct(v, fn.value(w), spare).to(x.dtype) for fn in fns)
        ctx.set_materialize_grads(False)  # unused outputs cost nothing in backward
        ctx.fns = fns
        ctx.in_dtype = x.dtype
        ctx.save_for_backward(x, w, v)
        return outs

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> Any:
        x, w, v = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: keep the backward differentiable
            gx = _DaleckiiKrein.apply(x, w, v, ctx.fns, *grads)
            return gx, None, None
        thr = tie_threshold(w.dtype)
        live_fns = [fn for fn, g in zip(ctx.fns, grads, strict=True) if g is not None]
        loewner = [fn.first_divided_difference(w, thr) for fn in live_fns]
        live = [g for g in grads if g is not None]
        return _loewner_apply(v, loewner, live).to(ctx.in_dtype), None, None


class _DaleckiiKrein(torch.autograd.Function):
    """The backward map ``Ḡ ↦ Σ_k Df_k(X)[sym Ḡ_k]`` as a differentiable function of ``X, Ḡ``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, v: Tensor, fns: tuple, *grads: Tensor) -> Tensor:
        thr = tie_threshold(w.dtype)
        loewner = [fn.first_divided_difference(w, thr) for fn in fns]
        ctx.fns = fns
        ctx.in_dtype = x.dtype
        ctx.has_grad = [g is not None for g in grads]
        ctx.save_for_backward(w, v, *[g if g is not None else torch.empty(0) for g in grads])
        ctx.loewner = loewner
        return _loewner_apply(v, loewner, grads).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, z: Tensor) -> Any:
        w, v, *grads = ctx.saved_tensors
        thr = tie_threshold(w.dtype)
        zh = v.mT @ sym(z.to(v.dtype)) @ v
        out_grads = []
        acc = torch.zeros_like(zh)
        for fn, f1, g, has in zip(ctx.fns, ctx.loewner, grads, ctx.has_grad, strict=True):
            if not has:
                out_grads.append(None)
                continue
            # w.r.t. Ḡ_k: the same self-adjoint Loewner map applied to z.
            out_grads.append((v @ (f1 * zh) @ v.mT).to(g.dtype))
            # w.r.t. X: second divided differences (Bhatia, Matrix Analysis, V.3).
            gh = v.mT @ sym(g.to(v.dtype)) @ v
            f2 = fn.second_divided_difference(w, thr)
            acc = acc + torch.einsum("...ijk,...ik,...ij->...kj", f2, gh, zh)
            acc = acc + torch.einsum("...ijk,...ij,...kj->...ik", f2, zh, gh)
        gx = sym(v @ acc @ v.mT).to(ctx.in_dtype)
        return (gx, None, None, None, *out_grads)


def _as_fn(fn: SpectralFn | str) -> SpectralFn:
    if isinstance(fn, SpectralFn):
        return fn
    table: dict[str, SpectralFn] = {
        "log": Log(),
        "exp": Exp(),
        "sqrt": Power(0.5),
        "invsqrt": Power(-0.5),
        "inv": Power(-1.0),
    }
    if fn not in table:
        raise ValueError(f"unknown spectral function {fn!r}; use one of {sorted(table)} or a SpectralFn")
    return table[fn]


def _check_square(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (*batch, n, n), got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating point, got {x.dtype}")


def sym_functions(
    x: Tensor,
    fns: Sequence[SpectralFn | str],
    *,
    compute_dtype: torch.dtype | None = None,
) -> tuple[Tensor, ...]:
    """Several spectral functions of the same matrices from one eigendecomposition.

    Parameters
    ----------
    x : Tensor, shape (*batch, n, n)
        Symmetric matrices (the symmetric part is used).
    fns : sequence of SpectralFn or str
        ``"log"``, ``"exp"``, ``"sqrt"``, ``"invsqrt"``, ``"inv"`` or :class:`SpectralFn` objects
        (:class:`Power`, :class:`Clamp`, :class:`Custom`, ...).
    compute_dtype : torch.dtype, optional
        Dtype of the eigendecomposition and backward (e.g. ``torch.float64`` for float32 input
        that is ill-conditioned); results are returned in ``x.dtype``.

    Returns
    -------
    tuple of Tensor, each (*batch, n, n)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.spectral import sym_functions
    >>> x = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    >>> s, isq = sym_functions(x, ["sqrt", "invsqrt"])
    >>> torch.allclose(s @ isq, torch.eye(2, dtype=torch.float64))
    True
    """
    _check_square(x)
    specs = tuple(_as_fn(f) for f in fns)
    cdt = compute_dtype or x.dtype
    return _SpectralFunctions.apply(x, specs, cdt)


def sym_apply(
    x: Tensor,
    f: Callable[[Tensor], Tensor] | SpectralFn,
    df: Callable[[Tensor], Tensor] | None = None,
    d2f: Callable[[Tensor], Tensor] | None = None,
    *,
    compute_dtype: torch.dtype | None = None,
) -> Tensor:
    """General spectral function ``V diag(f(λ)) Vᵀ`` with a stable backward.

    ``f`` acts elementwise on eigenvalues; ``df`` / ``d2f`` (its derivatives) default to autograd.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.spectral import sym_apply
    >>> x = torch.eye(3, dtype=torch.float64) * 2
    >>> torch.allclose(sym_apply(x, torch.square), x @ x)
    True
    """
    fn = f if isinstance(f, SpectralFn) else Custom(f, df, d2f)
    return sym_functions(x, [fn], compute_dtype=compute_dtype)[0]


def logm(x: Tensor, *, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Matrix logarithm of SPD ``(*batch, n, n)``."""
    return sym_functions(x, ["log"], compute_dtype=compute_dtype)[0]


def expm(x: Tensor, *, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Matrix exponential of symmetric ``(*batch, n, n)``.

    Without autograd the forward is a shifted, scaled Taylor polynomial (matrix products, no
    ``eigh``; :mod:`~riemlearn.manifolds.expm_polynomial`, same accuracy); with autograd, or
    where that does not apply, ``V diag(e^λ) Vᵀ`` from one ``eigh`` with the Daleckii–Krein
    backward.
    """
    _check_square(x)
    if _polynomial_ok(x):
        out = expm_sym_polynomial(sym(x.to(compute_dtype or x.dtype)))
        if out is not None:
            return out.to(x.dtype)
    return sym_functions(x, ["exp"], compute_dtype=compute_dtype)[0]


def _polynomial_ok(x: Tensor) -> bool:
    """Plain eager float32/float64 tensor with no backward graph to build (the polynomial has
    one host synchronization: not under ``vmap``, ``torch.compile`` or fake tensors), and
    float32 products at full precision (``torch.get_float32_matmul_precision() == "highest"``,
    which also governs ``torch.backends.cuda.matmul.allow_tf32``)."""
    if not plain_float_tensor(x) or (x.requires_grad and torch.is_grad_enabled()):
        return False
    if not full_precision_products(x.dtype):
        return False  # TF32 / bfloat16 products would cost the polynomial its accuracy
    return not torch.compiler.is_compiling()


def sqrtm(x: Tensor, *, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Principal square root of SPD ``(*batch, n, n)``."""
    return sym_functions(x, ["sqrt"], compute_dtype=compute_dtype)[0]


def invsqrtm(x: Tensor, *, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Inverse principal square root of SPD ``(*batch, n, n)``."""
    return sym_functions(x, ["invsqrt"], compute_dtype=compute_dtype)[0]


def sqrtm_invsqrtm(x: Tensor, *, compute_dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """``(X^{1/2}, X^{-1/2})`` from one eigendecomposition."""
    s, i = sym_functions(x, ["sqrt", "invsqrt"], compute_dtype=compute_dtype)
    return s, i


def powm(x: Tensor, t: float, *, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Matrix power ``X^t`` of SPD ``(*batch, n, n)`` for real ``t``."""
    if isinstance(t, Tensor):
        if t.numel() != 1:
            raise ValueError("powm: t must be a scalar")
        t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"powm: t must be finite, got {t}")
    return sym_functions(x, [Power(float(t))], compute_dtype=compute_dtype)[0]


def clampm(x: Tensor, eps: float, *, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Eigenvalue clamp ``V diag(max(λ, eps)) Vᵀ`` (the ReEig nonlinearity)."""
    return sym_functions(x, [Clamp(float(eps))], compute_dtype=compute_dtype)[0]


# -- Lyapunov / Sylvester --------------------------------------------------------------------
def _lyap_from_eig(w: Tensor, u: Tensor, v: Tensor) -> Tensor:
    vh = u.mT @ v @ u
    return u @ (vh / (w.unsqueeze(-1) + w.unsqueeze(-2))) @ u.mT


class _Lyapunov(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, p: Tensor, v: Tensor) -> Tensor:
        w, u = eigh(sym(p.detach()))
        sol = _lyap_from_eig(w, u, v.detach())
        ctx.save_for_backward(p, v, w, u, sol)
        return sol

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        p, v, w, u, sol = ctx.saved_tensors
        # L solves P L + L P = V; the operator is self-adjoint, so Ḡ_V = lyap(P, Ḡ) and
        # Ḡ_P = −(Ḡ_V Lᵀ + Lᵀ Ḡ_V). No eigenvector derivative, hence no tie problem.
        if torch.is_grad_enabled():  # double backward: recompute differentiably
            sol = solve_lyapunov(p, v)
            gv = solve_lyapunov(p, g)
        else:
            gv = _lyap_from_eig(w, u, g)
        gp = -(gv @ sol.mT + sol.mT @ gv)
        return sym(gp), gv


def solve_lyapunov(p: Tensor, v: Tensor) -> Tensor:
    """Solve ``P L + L P = V`` for SPD ``P``, batched ``(*batch, n, n)``.

    Through the eigendecomposition of ``P``: ``L = U ((Uᵀ V U) / (wi + wj)) Uᵀ``. Differentiable
    in ``P`` and ``V`` (double backward included).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.spectral import solve_lyapunov
    >>> p = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    >>> v = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    >>> sol = solve_lyapunov(p, v)
    >>> torch.allclose(p @ sol + sol @ p, v)
    True
    """
    _check_square(p, "p")
    _check_square(v, "v")
    return _Lyapunov.apply(p, v)
