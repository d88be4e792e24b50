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
from .problem import Geometry, sel, transporter

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

    # -- hooks of the Armijo search ---------------------------------------------------------------
    def _first_step(self, m: Any, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor, df0: Tensor,
                    norm_d: Tensor) -> Tensor:
        self._k += 1
        first = self.initial_step / norm_d
        if self._prev is None:
            return first
        ss, sy, yy = self._quotients(m, geom, x, d)
        return self._bb(ss, sy, yy, self._prev[2], first)

    def _accepted(self, geom: Geometry, x: Tensor, d: Tensor, alpha: Tensor, keep: Tensor) -> None:
        if self._prev is None:
            self._prev = (x, d, alpha)
        else:  # a problem that kept its point keeps its last (s, y) pair
            xp, dp, ap = self._prev
            self._prev = (geom.where(keep, x, xp), geom.where(keep, d, dp), sel(keep, alpha, ap))

    def _first_step_f(self, m: Any, geom: Geometry, x: Tensor, d: Tensor, f0: float, df0: float,
                      norm_d: float) -> float:
        self._k += 1
        first = self.initial_step / norm_d
        if self._prev is None:
            return first
        ss, sy, yy = (float(t) for t in self._quotients(m, geom, x, d))
        bb = (ss / sy if self._k % 2 == 1 else sy / yy) if sy > 0 and yy > 0 else math.nan
        alpha = bb if math.isfinite(bb) and bb > 0 else (self._prev[2] if self._prev[2] > 0 else first)
        return min(max(alpha, self.min_step), self.max_step)

    def _accepted_f(self, x: Tensor, d: Tensor, alpha: float) -> None:
        self._prev = (x, d, alpha)
