"""Barzilai–Borwein step sizes with a nonmonotone Armijo search (batched, one step per problem).

Riemannian Barzilai–Borwein gradient method (Iannazzo & Porcelli, IMA J. Numer. Anal. 38,
2018; on the Stiefel manifold Wen & Yin, Math. Program. 142, 2013): the trial step along
``d = −grad f(x)`` comes from the last two iterates. With ``T`` a vector transport to the
current point, ``s = T(α₋ d₋)`` (the last step) and ``y = g − T(g₋)`` (the change of gradient),
the trial step alternates between ``BB1 = ⟨s, s⟩ / ⟨s, y⟩`` and ``BB2 = ⟨s, y⟩ / ⟨y, y⟩``.
The step is accepted when the cost satisfies the nonmonotone Armijo condition of Zhang & Hager
(SIAM J. Optim. 14, 2004), ``f(R_x(α d)) ≤ C + δ α ⟨g, d⟩``, with ``C`` a running weighted
average of past costs (``Q ← ηQ + 1``, ``C ← (ηQ₋ C + f) / Q``); otherwise ``α ← σα``.

Where the BB quotient is not positive (``⟨s, y⟩ ≤ 0``: negative curvature along ``s``) the
previous accepted step is tried again; the step is kept in ``[min_step, max_step]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .line_search import BackTrackingLineSearch
from .problem import Geometry, Problem, sel, transporter

__all__ = ["BarzilaiBorweinLineSearch"]


class BarzilaiBorweinLineSearch(BackTrackingLineSearch):
    """Barzilai–Borwein trial steps, nonmonotone (Zhang–Hager) Armijo backtracking.

    Parameters
    ----------
    transport : {"metric", "projection"}, default "metric"
        Vector transport of the last step and gradient to the current point.
    contraction : float, default 0.5
        Backtracking factor ``σ``.
    sufficient_decrease : float, default 1e-4
        Armijo constant ``δ``.
    eta : float, default 0.85
        Weight of the past in the reference cost ``C`` (``0``: monotone Armijo).
    max_iterations : int, default 25
        Contractions before a problem keeps its point (step 0).
    initial_step : float, default 1.0
        First trial step length ``‖α d‖`` (before any BB quotient exists).
    min_step, max_step : float
        Bounds on the BB step ``α``.
    """

    def __init__(self, transport: str = "metric", contraction: float = 0.5,
                 sufficient_decrease: float = 1e-4, eta: float = 0.85, max_iterations: int = 25,
                 initial_step: float = 1.0, min_step: float = 1e-10, max_step: float = 1e10) -> None:
        if not 0 <= eta < 1:
            raise ValueError(f"eta must be in [0, 1), got {eta}")
        if not 0 < min_step <= max_step:
            raise ValueError(f"need 0 < min_step <= max_step, got {min_step}, {max_step}")
        from ..manifolds import Euclidean

        transporter(Euclidean(), transport)  # validates the name
        self.transport = transport
        self.min_step, self.max_step = min_step, max_step
        super().__init__(contraction, sufficient_decrease, max_iterations, initial_step, nonmonotone=eta)

    def reset(self) -> None:
        super().reset()
        self._prev: tuple[Tensor, Tensor, Any] | None = None  # (x, d, α) of the last search
        self._k = 0
        self.new_grad: Tensor | None = None

    # -- BB quotients ---------------------------------------------------------------------------
    def _quotients(self, m: Any, geom: Geometry, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(⟨s,s⟩, ⟨s,y⟩, ⟨y,y⟩)`` per problem, from the last search's ``(x₋, d₋, α₋)``."""
        xp, dp, ap = self._prev
        td = transporter(m, self.transport)(xp, x, dp)  # T(d₋) = −T(g₋)
        y = td - d  # g − T(g₋) with g = −d
        a = ap if isinstance(ap, float) else geom.bc(ap, td)
        s = a * td
        return geom.inner(x, s, s), geom.inner(x, s, y), geom.inner(x, y, y)

    def _bb(self, ss: Tensor, sy: Tensor, yy: Tensor, fallback: Tensor, first: Tensor) -> Tensor:
        bb = ss / sy if self._k % 2 == 1 else sy / yy
        ok = torch.isfinite(bb) & (sy > 0)
        alpha = torch.where(ok, bb, torch.where(fallback > 0, fallback, first))
        return alpha.clamp(self.min_step, self.max_step)

    # -- batched search -----------------------------------------------------------------------
    def search(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
               df0: Tensor, active: Tensor, with_grad: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """``(step norm, new point, new cost)`` per problem, as the other line searches."""
        if f0.dim() == 0:
            return self._search_single(problem, geom, x, d, f0, float(df0), with_grad)
        m = problem.manifold
        self._k += 1
        norm_d = geom.norm(x, d)
        first = self.initial_step / norm_d
        if self._prev is None:
            alpha = first
        else:
            ss, sy, yy = self._quotients(m, geom, x, d)
            alpha = self._bb(ss, sy, yy, self._prev[2], first)
        alpha = sel(active & (norm_d > 0), alpha, torch.zeros_like(alpha))
        ref = self._reference(f0, active)
        newx = m.retract(x, geom.scale(alpha, d))
        self.new_grad = None
        newf, grad = problem.cost_grad(newx) if with_grad else (problem.cost(newx), None)
        count = torch.zeros_like(alpha, dtype=torch.long)
        for _ in range(self.max_iterations):
            bad = active & ~(newf <= ref + self.sufficient_decrease * alpha * df0)
            if not bool(bad.any()):
                break
            alpha = sel(bad, alpha * self.contraction, alpha)
            count = count + bad.long()
            tx = m.retract(x, geom.scale(alpha, d))
            newx = geom.where(bad, tx, newx)
            newf = sel(bad, problem.cost(tx), newf)
        # Accepted: the nonmonotone Armijo condition, or at least a decrease after the last
        # contraction (as the monotone backtracking search).
        armijo = newf <= ref + self.sufficient_decrease * alpha * df0
        fail = ~(armijo | (newf <= f0)) | ~active
        if grad is not None and not bool((active & ((count > 0) | fail)).any()):
            self.new_grad = grad
        alpha = sel(fail, torch.zeros_like(alpha), alpha)
        newx = geom.where(fail, x, newx)
        newf = sel(fail, f0, newf)
        keep = active & ~fail
        self._update_reference(newf, keep)
        if self._prev is None:
            self._prev = (x, d, alpha)
        else:
            xp, dp, ap = self._prev
            self._prev = (geom.where(keep, x, xp), geom.where(keep, d, dp), sel(keep, alpha, ap))
        return alpha * norm_d, newx, newf

    # -- one problem: Python floats, no masks ------------------------------------------------------
    def _search_single(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
                       df0: float, with_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
        m = problem.manifold
        self._k += 1
        f0v = float(f0)
        norm_d = float(geom.norm(x, d))
        first = self.initial_step / norm_d if norm_d > 0 else 0.0
        alpha = first
        if self._prev is not None and norm_d > 0:
            ss, sy, yy = (float(t) for t in self._quotients(m, geom, x, d))
            bb = (ss / sy if self._k % 2 == 1 else sy / yy) if sy > 0 and yy > 0 else math.nan
            alpha = bb if math.isfinite(bb) and bb > 0 else (self._prev[2] if self._prev[2] > 0 else first)
            alpha = min(max(alpha, self.min_step), self.max_step)
        ref = self._reference_f(f0v)
        evaluate = problem.cost_deferred_grad if with_grad else (lambda z: (problem.cost(z), None))
        newx = m.retract(x, alpha * d)
        self.new_grad = None
        newf, grad = evaluate(newx)
        fv = float(newf)
        for _ in range(self.max_iterations):
            if fv <= ref + self.sufficient_decrease * alpha * df0:
                break
            alpha *= self.contraction
            newx = m.retract(x, alpha * d)
            newf, grad = evaluate(newx)
            fv = float(newf)
        armijo = fv <= ref + self.sufficient_decrease * alpha * df0
        if norm_d == 0 or not (armijo or fv <= f0v):  # no acceptable step: keep the point
            alpha, newx, newf, fv = 0.0, x, f0, f0v
        else:
            if grad is not None:
                self.new_grad = grad()
            self._update_reference_f(fv)
            self._prev = (x, d, alpha)
        return torch.scalar_tensor(alpha * norm_d, dtype=f0.dtype, device=f0.device), newx, newf
