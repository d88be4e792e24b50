"""Wolfe line search with the approximate-Wolfe test of Hager & Zhang (batched, one step per problem).

Along ``φ(α) = f(R_x(α d))`` the slope is taken as ``φ'(α) ≈ ⟨grad f(y), T_{x→y} d⟩`` with
``y = R_x(α d)`` and ``T`` the solver's vector transport (Ring & Wirth, SIAM J. Optim. 22, 2012;
Sato, Riemannian Optimization and Its Applications, 2021, §4.4). A step is accepted when

* **Wolfe**: ``φ(α) ≤ φ(0) + δ α φ'(0)`` and ``φ'(α) ≥ σ φ'(0)``, or
* **approximate Wolfe** (Hager & Zhang, SIAM J. Optim. 16, 2005, and ACM TOMS 32, 2006):
  ``σ φ'(0) ≤ φ'(α) ≤ (2δ − 1) φ'(0)`` and ``φ(α) ≤ φ(0) + ε |φ(0)|``, used only where the
  Armijo decrease ``α |φ'(0)|`` is itself below ``ε |φ(0)|`` (Hager and Zhang switch to it
  near convergence; on a compact manifold whose retraction saturates, ``φ`` flattens far out
  and the approximate test alone would accept huge steps).

The second test is what lets conjugate gradient and L-BFGS go on to small gradient norms after
the cost has stopped changing in floating point (where every Armijo test fails and an Armijo
search stops on its step size). Otherwise the step is bracketed: expanded by ``expansion`` while
the cost decreases with a negative slope, then shrunk by safeguarded cubic (slopes at both ends)
or quadratic interpolation. Every gradient the search computes is at a trial point, so the
gradient at the accepted point (and the transported direction) is handed back to the solver.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .problem import Geometry, Problem, sel, transporter

__all__ = ["WolfeLineSearch"]


def _interpolate(a0: Tensor, f0: Tensor, s0: Tensor, a1: Tensor, f1: Tensor, s1: Tensor,
                 has_s1: Tensor) -> Tensor:
    """Minimizer of the cubic through ``(a0, f0, s0)``, ``(a1, f1, s1)`` (or of the quadratic
    through ``(a0, f0, s0)``, ``(a1, f1)`` where ``has_s1`` is false), kept at least a tenth of
    the interval away from both ends (bisection when the model has no interior minimizer)."""
    h = a1 - a0
    # quadratic: f0 + s0 t + c t², c = (f1 - f0 - s0 h) / h²
    c = (f1 - f0 - s0 * h) / (h * h)
    quad = a0 - s0 / (2 * c)
    # cubic (Nocedal & Wright, eq. 3.59)
    d1 = s0 + s1 - 3 * (f0 - f1) / (a0 - a1)
    rad = d1 * d1 - s0 * s1
    d2 = torch.sign(h) * rad.clamp_min(0).sqrt()
    cub = a1 - h * (s1 + d2 - d1) / (s1 - s0 + 2 * d2)
    cub = torch.where(rad >= 0, cub, quad)
    t = torch.where(has_s1, cub, quad)
    lo, hi = torch.minimum(a0, a1), torch.maximum(a0, a1)
    w = hi - lo
    mid = (a0 + a1) / 2
    t = torch.where(torch.isfinite(t), t, mid)
    return t.clamp(lo + 0.1 * w, hi - 0.1 * w)


class WolfeLineSearch:
    """Wolfe / approximate-Wolfe line search for conjugate gradient and L-BFGS.

    Parameters
    ----------
    transport : {"metric", "projection"}, default "metric"
        Vector transport of the search direction to the trial point (for the slope ``φ'(α)``).
        Conjugate gradient and L-BFGS pass their own.
    sufficient_decrease : float, default 0.1
        ``δ`` of the Armijo part (Hager–Zhang's default).
    curvature : float, default 0.9
        ``σ`` of the curvature part, ``δ < σ < 1``.
    epsilon : float, default 1e-6
        Relative cost band ``ε`` of the approximate-Wolfe test.
    max_iterations : int, default 20
        Trial points per search; after that the best point found with a decrease is kept (or
        the problem keeps its point, step 0).
    expansion : float, default 5.0
        Growth factor of the trial step while no bracket is found.
    initial : {"previous", "unit"}, default "previous"
        First trial step: ``initial_step / ‖d‖`` at the first search, then the previous accepted
        step scaled by the ratio of slopes ``α₋ φ'₋(0) / φ'(0)`` (Nocedal & Wright, §3.5), kept
        within ``[α₋/10, 10 α₋]``; or ``α = 1`` (quasi-Newton directions) after the first.
    initial_step : float, default 1.0
        Length ``‖α d‖`` of the first trial of the first search.
    """

    def __init__(self, transport: str = "metric", sufficient_decrease: float = 0.1,
                 curvature: float = 0.9, epsilon: float = 1e-6, max_iterations: int = 20,
                 expansion: float = 5.0, initial: str = "previous", initial_step: float = 1.0) -> None:
        from ..manifolds import Euclidean

        transporter(Euclidean(), transport)  # validates the name
        if not 0 < sufficient_decrease < curvature < 1:
            raise ValueError("need 0 < sufficient_decrease < curvature < 1, got "
                             f"{sufficient_decrease}, {curvature}")
        if epsilon < 0 or max_iterations < 1 or expansion <= 1:
            raise ValueError("need epsilon >= 0, max_iterations >= 1 and expansion > 1")
        if initial not in ("previous", "unit"):
            raise ValueError(f"initial must be 'previous' or 'unit', got {initial!r}")
        self.transport = transport
        self.delta, self.sigma, self.epsilon = sufficient_decrease, curvature, epsilon
        self.max_iterations, self.expansion = int(max_iterations), float(expansion)
        self.initial, self.initial_step = initial, initial_step
        self.reset()

    def reset(self) -> None:
        self._prev: Any = None  # (α, φ'(0)) of the last accepted step: floats or per problem
        self.new_grad: Tensor | None = None
        self.new_td: Tensor | None = None

    # -- tests ------------------------------------------------------------------------------
    def _wolfe(self, f0, df0, a, f, s, tol):
        """(accepted, Armijo holds, approximate-Wolfe band holds); works on floats or tensors."""
        armijo = f <= f0 + self.delta * a * df0
        # the band only where the Armijo decrease itself is below it (the cost cannot resolve
        # it): far out along a flat φ (a retraction that saturates) the Armijo test must decide
        band = (f <= f0 + tol) & (a * -df0 <= tol)
        curv = s >= self.sigma * df0
        approx = band & curv & (s <= (2 * self.delta - 1) * df0)
        return (armijo & curv) | approx, armijo, band

    def _first(self, df0: Any, norm_d: Any) -> Any:
        first = self.initial_step / norm_d
        if self._prev is None:
            return first
        if self.initial == "unit":
            return torch.ones_like(norm_d) if isinstance(norm_d, Tensor) else 1.0
        ap, dp = self._prev
        if isinstance(norm_d, Tensor):
            a = (ap * dp / df0).clamp(ap / 10, ap * 10)
            return torch.where(torch.isfinite(a) & (a > 0), a, first)
        a = min(max(ap * dp / df0, ap / 10), ap * 10) if df0 != 0 else math.nan
        return a if math.isfinite(a) and a > 0 else first

    def search(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
               df0: Tensor, active: Tensor, with_grad: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(step norm, new point, new cost)`` per problem (inactive ones unchanged).

        ``self.new_grad`` is the Riemannian gradient at the new point and ``self.new_td`` the
        direction transported there (``None`` where a problem kept its point, single problem).
        """
        if f0.dim() == 0:
            return self._search_single(problem, geom, x, d, f0, float(df0))
        return self._search_batched(problem, geom, x, d, f0, df0, active)

    # -- one problem: floats, gradients only where the cost passes the Armijo or band test -------
    def _search_single(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
                       df0: float) -> tuple[Tensor, Tensor, Tensor]:
        m = problem.manifold
        move = transporter(m, self.transport)
        f0v = float(f0)
        norm_d = float(geom.norm(x, d))
        self.new_grad = self.new_td = None
        zero = torch.scalar_tensor(0.0, dtype=f0.dtype, device=f0.device)
        if not (norm_d > 0 and df0 < 0):
            return zero, x, f0
        tol = self.epsilon * abs(f0v)
        lo = (0.0, f0v, df0, None)  # (α, φ, φ', (point, cost tensor, grad, T d) or None)
        hi: tuple | None = None
        a = self._first(df0, norm_d)
        best = None
        for _ in range(self.max_iterations):
            y = m.retract(x, a * d)
            f, grad_of = problem.cost_deferred_grad(y)
            fv = float(f)
            if not math.isfinite(fv):
                hi = (a, math.inf, math.nan)
            else:
                armijo = fv <= f0v + self.delta * a * df0
                if armijo or (fv <= f0v + tol and a * -df0 <= tol):
                    g = grad_of()
                    td = move(x, y, d)
                    s = float(geom.inner(y, g, td))
                    ok, _, _ = self._wolfe(f0v, df0, a, fv, s, tol)
                    if not math.isfinite(s):  # a NaN gradient: too far, as a NaN cost
                        hi = (a, math.inf, math.nan)
                    elif ok:
                        return self._accept_single(a, df0, norm_d, y, f, g, td)
                    else:
                        if fv < f0v and (best is None or fv < best[1]):
                            best = (a, fv, s, (y, f, g, td))
                        # past a minimizer along the line, or still descending (within the band)
                        if s >= 0:
                            hi = (a, fv, s)
                        else:
                            lo = (a, fv, s, (y, f, g, td))
                else:
                    hi = (a, fv, math.nan)
            if hi is None:
                a *= self.expansion
                continue
            ta = torch.tensor([lo[0], lo[1], lo[2], hi[0], hi[1], hi[2] if math.isfinite(hi[2]) else 0.0],
                              dtype=torch.float64)
            has_s1 = torch.tensor(math.isfinite(hi[2]) and math.isfinite(hi[1]))
            f1 = ta[4] if math.isfinite(hi[1]) else ta[1] + 1e3 * abs(lo[1]) + 1.0
            a = float(_interpolate(ta[0], ta[1], ta[2], ta[3], f1, ta[5], has_s1))
            if not abs(hi[0] - lo[0]) > 1e-14 * max(abs(lo[0]), abs(hi[0]), 1e-300):
                break
        if best is not None:  # no Wolfe point: keep the largest decrease found
            a, _, _, (y, f, g, td) = best
            return self._accept_single(a, df0, norm_d, y, f, g, td)
        return zero, x, f0

    def _accept_single(self, a: float, df0: float, norm_d: float, y: Tensor, f: Tensor, g: Tensor,
                       td: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._prev = (a, df0)
        self.new_grad, self.new_td = g, td
        return torch.scalar_tensor(a * norm_d, dtype=f.dtype, device=f.device), y, f

    # -- a batch of problems: every trial evaluates cost and gradient of the whole batch -------
    def _search_batched(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
                        df0: Tensor, active: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = problem.manifold
        move = transporter(m, self.transport)
        norm_d = geom.norm(x, d)
        live = active & (norm_d > 0) & (df0 < 0)
        tol = self.epsilon * f0.abs()
        zero = torch.zeros_like(f0)
        a = sel(live, self._first(df0, norm_d), zero)
        lo_a, lo_f, lo_s = zero, f0, df0
        hi_a, hi_f, hi_s = zero, f0, df0
        has_hi = torch.zeros_like(live)
        hi_has_s = torch.zeros_like(live)
        acc = torch.zeros_like(live)
        out_a, out_x, out_f = zero, x, f0
        out_g = out_td = torch.zeros_like(x)
        for _ in range(self.max_iterations):
            pend = live & ~acc
            if not bool(pend.any()):
                break
            y = m.retract(x, geom.scale(sel(pend, a, zero), d))
            f, g = problem.cost_grad(y)
            td = move(x, y, d)
            s = geom.inner(y, g, td)
            finite = torch.isfinite(f) & torch.isfinite(s)
            ok, armijo, band = self._wolfe(f0, df0, a, f, s, tol)
            ok = ok & finite & pend
            # a trial with a decrease is kept as the answer so far (the Wolfe point, once found)
            better = pend & finite & (f < out_f)
            take = ok | better
            out_a, out_f = sel(take, a, out_a), sel(take, f, out_f)
            out_x, out_g, out_td = (geom.where(take, y, out_x), geom.where(take, g, out_g),
                                    geom.where(take, td, out_td))
            acc = acc | ok
            rest = pend & ~ok
            to_hi = rest & (~finite | (s >= 0) | ~(armijo | band))
            to_lo = rest & ~to_hi
            hi_a, hi_f, hi_s = sel(to_hi, a, hi_a), sel(to_hi, f, hi_f), sel(to_hi, s, hi_s)
            # the single-problem path has no slope where the cost fails both tests: same model
            hi_has_s = sel(to_hi, finite & (armijo | band), hi_has_s)
            has_hi = has_hi | to_hi
            lo_a, lo_f, lo_s = sel(to_lo, a, lo_a), sel(to_lo, f, lo_f), sel(to_lo, s, lo_s)
            f1 = torch.where(torch.isfinite(hi_f), hi_f, lo_f + 1e3 * lo_f.abs() + 1)
            s1 = torch.where(hi_has_s, hi_s, zero)
            inner = _interpolate(lo_a, lo_f, lo_s, sel(has_hi, hi_a, lo_a + 1), f1, s1, hi_has_s)
            a = torch.where(has_hi, inner, a * self.expansion)
        moved = out_f < f0
        keep = live & (acc | moved)
        out_a = sel(keep, out_a, zero)
        if self._prev is None:
            self._prev = (out_a, df0)
        else:
            self._prev = (sel(keep, out_a, self._prev[0]), sel(keep, df0, self._prev[1]))
        complete = bool((~active | keep).all())
        self.new_grad = out_g if complete else None
        self.new_td = out_td if complete else None
        return out_a * norm_d, geom.where(keep, out_x, x), sel(keep, out_f, f0)
