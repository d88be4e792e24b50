"""Batched Armijo line searches: backtracking and adaptive (one step size per problem)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .problem import Geometry, Problem, sel

__all__ = ["BackTrackingLineSearch", "AdaptiveLineSearch"]


class BackTrackingLineSearch:
    """Armijo backtracking with an initial step from the previous cost decrease.

    The first trial step is ``initial_step / ‖d‖`` at the first iteration, then
    ``optimism · 2 (f₀ − f_prev) / ⟨grad, d⟩`` (Nocedal & Wright, eq. 3.60); it is contracted by
    ``contraction`` until ``f(R_x(α d)) ≤ f₀ + sufficient_decrease · α ⟨grad, d⟩``. A problem
    with no decrease after ``max_iterations`` contractions keeps its point (step 0).

    With ``nonmonotone = η > 0`` the test compares with the Zhang–Hager reference ``C`` instead
    of ``f₀`` (a running weighted average of past costs, ``Q ← ηQ + 1``, ``C ← (ηQ₋C + f)/Q``;
    Zhang & Hager, SIAM J. Optim. 14, 2004); the Barzilai–Borwein search relies on it. With
    conjugate gradient it sometimes goes past the point where a monotone test stalls on the
    cost's round-off (both stop on step size), at the price of more iterations, but not
    reliably: on random dominant-subspace problems it reached ‖grad‖ 1e-7 in about half the
    cases where the monotone search stopped near 1e-6.
    """

    def __init__(self, contraction: float = 0.5, sufficient_decrease: float = 1e-4,
                 max_iterations: int = 25, initial_step: float = 1.0,
                 optimism: float = 2.0, nonmonotone: float = 0.0) -> None:
        if not 0 < contraction < 1:
            raise ValueError(f"contraction must be in (0, 1), got {contraction}")
        if not 0 < sufficient_decrease < 1:
            raise ValueError(f"sufficient_decrease must be in (0, 1), got {sufficient_decrease}")
        if not 0 <= nonmonotone < 1:
            raise ValueError(f"nonmonotone must be in [0, 1), got {nonmonotone}")
        self.contraction = contraction
        self.sufficient_decrease = sufficient_decrease
        self.max_iterations = int(max_iterations)
        self.initial_step = initial_step
        self.optimism = optimism
        self.eta = float(nonmonotone)
        self.reset()

    def reset(self) -> None:
        self._old_f0: Tensor | None = None
        self._c: Any = None  # Zhang–Hager reference cost and weight (floats or per-problem)
        self._q: Any = None

    def _reference(self, f0: Tensor, active: Tensor) -> Tensor:
        """The cost the Armijo test compares with: ``f₀``, or the nonmonotone ``C``."""
        if self.eta == 0.0:
            return f0
        if self._c is None:
            self._c, self._q = f0.detach().clone(), torch.ones_like(f0)
        return sel(active, self._c, f0)

    def _update_reference(self, newf: Tensor, keep: Tensor) -> None:
        if self.eta == 0.0:
            return
        q = self.eta * self._q + 1.0
        c = (self.eta * self._q * self._c + newf.detach()) / q
        self._c, self._q = sel(keep, c, self._c), sel(keep, q, self._q)

    def _reference_f(self, f0v: float) -> float:
        if self.eta == 0.0:
            return f0v
        if self._c is None:
            self._c, self._q = f0v, 1.0
        return max(self._c, f0v)

    def _update_reference_f(self, fv: float) -> None:
        if self.eta != 0.0:
            q = self.eta * self._q + 1.0
            self._c, self._q = (self.eta * self._q * self._c + fv) / q, q

    def _initial(self, f0: Tensor, df0: Tensor, norm_d: Tensor) -> Tensor:
        first = self.initial_step / norm_d
        if self._old_f0 is None:
            return first
        alpha = self.optimism * 2 * (f0 - self._old_f0) / df0
        ok = torch.isfinite(alpha) & (alpha > 0)
        return sel(ok, alpha, first)

    def _remember(self, alpha: Tensor, contractions: Tensor) -> None:
        pass

    # Hooks of searches whose first trial needs the geometry (Barzilai–Borwein): the first trial
    # step per problem, and what the search keeps of an accepted step.
    def _first_step(self, m: Any, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor, df0: Tensor,
                    norm_d: Tensor) -> Tensor:
        return self._initial(f0, df0, norm_d)

    def _accepted(self, geom: Geometry, x: Tensor, d: Tensor, alpha: Tensor, keep: Tensor) -> None:
        pass

    def search(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
               df0: Tensor, active: Tensor, with_grad: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(step norm, new point, new cost)`` per problem (inactive ones unchanged).

        With ``with_grad`` the first trial point is evaluated with its gradient; if every
        active problem accepts it, that gradient is left in ``self.new_grad`` (else ``None``),
        saving the caller one cost evaluation per iteration. For one (unbatched) problem every
        trial keeps its cost's autograd graph and ``self.new_grad`` is the gradient at the
        accepted point (``None`` only when no trial decreased the cost).
        """
        if f0.dim() == 0:
            return self._search_single(problem, geom, x, d, f0, float(df0), with_grad)
        m = problem.manifold
        norm_d = geom.norm(x, d)
        alpha = self._first_step(m, geom, x, d, f0, df0, norm_d)
        alpha = sel(active & (norm_d > 0), alpha, torch.zeros_like(alpha))
        newx = m.retract(x, geom.scale(alpha, d))
        self.new_grad: Tensor | None = None
        if with_grad:
            newf, grad = problem.cost_grad(newx)
        else:
            newf, grad = problem.cost(newx), None
        count = torch.zeros_like(alpha, dtype=torch.long)
        ref = self._reference(f0, active)
        for _ in range(self.max_iterations):
            bad = active & ~(newf <= ref + self.sufficient_decrease * alpha * df0)
            if not bool(bad.any()):
                break
            alpha = sel(bad, alpha * self.contraction, alpha)
            count = count + bad.long()
            tx = m.retract(x, geom.scale(alpha, d))
            tf = problem.cost(tx)
            newx = geom.where(bad, tx, newx)
            newf = sel(bad, tf, newf)
        # accepted: the Armijo test, or a decrease after the last contraction
        armijo = newf <= ref + self.sufficient_decrease * alpha * df0
        fail = ~(armijo | (newf <= f0)) | ~active
        if grad is not None and not bool((active & ((count > 0) | fail)).any()):
            self.new_grad = grad
        alpha = sel(fail, torch.zeros_like(alpha), alpha)
        newx = geom.where(fail, x, newx)
        newf = sel(fail, f0, newf)
        self._update_reference(newf, active & ~fail)
        self._accepted(geom, x, d, alpha, active & ~fail)
        self._old_f0 = f0.clone() if self._old_f0 is None else sel(active, f0, self._old_f0)
        self._remember(alpha, count)
        return alpha * norm_d, newx, newf

    # -- one problem: the same search with the step sizes and costs in Python floats ----------
    def _initial_f(self, f0: float, df0: float, norm_d: float) -> float:
        first = self.initial_step / norm_d
        if self._old_f0 is None:
            return first
        alpha = self.optimism * 2 * (f0 - float(self._old_f0)) / df0 if df0 != 0 else math.nan
        return alpha if math.isfinite(alpha) and alpha > 0 else first

    def _remember_f(self, alpha: float, contractions: int) -> None:
        pass

    def _first_step_f(self, m: Any, geom: Geometry, x: Tensor, d: Tensor, f0: float, df0: float,
                      norm_d: float) -> float:
        return self._initial_f(f0, df0, norm_d)

    def _accepted_f(self, x: Tensor, d: Tensor, alpha: float) -> None:
        pass

    def _search_single(self, problem: Problem, geom: Geometry, x: Tensor, d: Tensor, f0: Tensor,
                       df0: float, with_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`search` for one (unbatched) problem: no masking, no tensor scalars."""
        m = problem.manifold
        f0v = float(f0)
        norm_d = float(geom.norm(x, d))
        alpha = self._first_step_f(m, geom, x, d, f0v, df0, norm_d) if norm_d > 0 else 0.0
        # With ``with_grad`` every trial keeps its cost's autograd graph; the backward pass runs
        # only at the accepted point.
        evaluate = problem.cost_deferred_grad if with_grad else (lambda z: (problem.cost(z), None))
        newx = m.retract(x, alpha * d)
        self.new_grad = None
        newf, grad = evaluate(newx)
        fv = float(newf)
        count = 0
        ref = self._reference_f(f0v)
        for _ in range(self.max_iterations):
            if fv <= ref + self.sufficient_decrease * alpha * df0:
                break
            alpha *= self.contraction
            count += 1
            newx = m.retract(x, alpha * d)
            newf, grad = evaluate(newx)
            fv = float(newf)
        if not (fv <= ref + self.sufficient_decrease * alpha * df0 or fv <= f0v):
            alpha, newx, newf = 0.0, x, f0  # no acceptable step: keep the point
        else:
            if grad is not None:
                self.new_grad = grad()
            self._update_reference_f(fv)
            self._accepted_f(x, d, alpha)
        self._old_f0 = f0v
        self._remember_f(alpha, count)
        return torch.scalar_tensor(alpha * norm_d, dtype=f0.dtype, device=f0.device), newx, newf


class AdaptiveLineSearch(BackTrackingLineSearch):
    """Armijo backtracking whose first trial reuses the last accepted step.

    The next first trial is the accepted step if exactly one contraction was needed, else
    twice the accepted step (per problem). Defaults follow Manopt/pymanopt
    (``sufficient_decrease=0.5``, ``max_iterations=10``).
    """

    def __init__(self, contraction: float = 0.5, sufficient_decrease: float = 0.5,
                 max_iterations: int = 10, initial_step: float = 1.0, nonmonotone: float = 0.0) -> None:
        super().__init__(contraction, sufficient_decrease, max_iterations, initial_step,
                         nonmonotone=nonmonotone)

    def reset(self) -> None:
        super().reset()
        self._old_alpha: Tensor | None = None

    def _initial(self, f0: Tensor, df0: Tensor, norm_d: Tensor) -> Tensor:
        first = self.initial_step / norm_d
        if self._old_alpha is None:
            return first
        ok = torch.isfinite(self._old_alpha) & (self._old_alpha > 0)
        return sel(ok, self._old_alpha, first)

    def _initial_f(self, f0: float, df0: float, norm_d: float) -> float:
        old = None if self._old_alpha is None else float(self._old_alpha)
        if old is not None and math.isfinite(old) and old > 0:
            return old
        return self.initial_step / norm_d

    def _remember_f(self, alpha: float, contractions: int) -> None:
        nxt = alpha if contractions == 1 else 2 * alpha
        if self._old_alpha is None or alpha > 0:
            self._old_alpha = nxt

    def _remember(self, alpha: Tensor, contractions: Tensor) -> None:
        nxt = sel(contractions == 1, alpha, 2 * alpha)
        if self._old_alpha is None:
            self._old_alpha = nxt
        else:
            self._old_alpha = sel(alpha > 0, nxt, self._old_alpha)
