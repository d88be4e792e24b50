"""Solver results, stopping criteria and progress display shared by the deterministic solvers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .problem import Geometry, Problem

__all__ = ["OptimizeResult", "Solver"]

REASONS = ("running", "gradient norm", "step size", "cost change", "max iterations", "max time")


@dataclass
class OptimizeResult:
    """What a solver returns.

    For a batch of problems ``cost``, ``grad_norm`` and ``iterations`` have shape ``(*pbatch,)``
    and ``stop_reason`` is a list (flattened ``pbatch`` order) of strings.

    Attributes
    ----------
    point : Tensor
        The final point(s) ``(*batch, *point_shape)``.
    cost, grad_norm : Tensor
        Cost and Riemannian gradient norm at ``point``.
    iterations : Tensor
        Iterations performed (per problem).
    time : float
        Wall-clock seconds.
    stop_reason : str or list of str
        One of "gradient norm", "step size", "cost change", "max iterations", "max time".
    log : list of dict
        One entry per iteration: ``iteration``, ``time``, ``cost``, ``grad_norm`` and
        solver-specific fields (``step_size``, ``beta``, ``radius``...), tensors per problem.
    """

    point: Tensor
    cost: Tensor
    grad_norm: Tensor
    iterations: Tensor
    time: float
    stop_reason: Any
    log: list[dict] = field(default_factory=list, repr=False)

    @property
    def converged(self) -> Tensor:
        """Per problem: stopped on the gradient norm."""
        if isinstance(self.stop_reason, str):
            return torch.tensor(self.stop_reason == "gradient norm")
        flat = torch.tensor([r == "gradient norm" for r in self.stop_reason])
        return flat.reshape(self.cost.shape)


class Solver:
    """Base of the deterministic solvers: stopping rules, log and progress display.

    Parameters
    ----------
    max_iterations : int
        Stop after this many iterations.
    min_grad_norm : float
        Stop (converged) when the Riemannian gradient norm is at most this.
    min_step_size : float
        Stop when the step (norm of the tangent vector retracted) is at most this.
    min_cost_change : float, optional
        Stop when ``|f_k - f_{k+1}|`` is at most this (disabled if None).
    max_time : float
        Stop after this many seconds.
    verbosity : int
        0 silent, 1 a summary at the end, 2 a line per iteration.
    log : bool
        Record the per-iteration log.
    """

    name = "solver"

    def __init__(self, max_iterations: int = 1000, min_grad_norm: float = 1e-6,
                 min_step_size: float = 1e-10, min_cost_change: float | None = None,
                 max_time: float = math.inf, verbosity: int = 0, log: bool = True) -> None:
        if max_iterations < 0:
            raise ValueError(f"max_iterations must be >= 0, got {max_iterations}")
        if min_grad_norm < 0 or min_step_size < 0:
            raise ValueError("min_grad_norm and min_step_size must be >= 0")
        self.max_iterations = int(max_iterations)
        self.min_grad_norm = float(min_grad_norm)
        self.min_step_size = float(min_step_size)
        self.min_cost_change = min_cost_change
        self.max_time = float(max_time)
        self.verbosity = int(verbosity)
        self.record = bool(log)

    # -- shared bookkeeping ---------------------------------------------------------------
    def _start(self, problem: Problem, x0: Tensor) -> tuple[Geometry, Tensor, Tensor]:
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a Problem, got {type(problem).__name__}")
        problem.manifold.check_point(x0, "x0")
        f0 = problem.cost(x0)
        geom = Geometry(problem.manifold, x0, tuple(f0.shape))
        self._t0 = time.perf_counter()
        self._log: list[dict] = []
        self._reason = torch.zeros(f0.shape, dtype=torch.long, device=x0.device)
        self._iters = torch.zeros(f0.shape, dtype=torch.long, device=x0.device)
        self._iters_single = 0  # Python counters of the single-problem fast path (_check_single)
        self._code_single = 0
        return geom, f0, self._reason

    def _active(self) -> Tensor:
        return self._reason == 0

    def _check(self, k: int, f: Tensor, gn: Tensor, step: Tensor | None = None,
               fold: Tensor | None = None, keep_going: Tensor | None = None, **extra: Any) -> bool:
        """Update stop reasons after iteration ``k``; log; return True when all stopped.

        ``keep_going`` (per problem) exempts problems from the step-size rule this iteration.
        At ``k = 0`` a non-finite cost or gradient norm raises ``ValueError`` (no silent NaN).
        """
        if k == 0:
            _check_finite_start(f, gn)
        if f.dim() == 0 and not self.record and self.verbosity < 2:
            return self._check_single(k, f, gn, step, fold,
                                      keep_going is not None and bool(keep_going))
        act = self._active()
        if k > 0:
            self._iters = torch.where(act, self._iters + 1, self._iters)
        r = self._reason
        r = torch.where(act & (gn <= self.min_grad_norm), 1, r)
        if step is not None:
            short = act & (step <= self.min_step_size)
            if keep_going is not None:
                short = short & ~keep_going
            r = torch.where((r == 0) & short, 2, r)
        if self.min_cost_change is not None and fold is not None:
            r = torch.where((r == 0) & act & ((fold - f).abs() <= self.min_cost_change), 3, r)
        if k >= self.max_iterations:
            r = torch.where(r == 0, 4, r)
        elapsed = time.perf_counter() - self._t0
        if elapsed >= self.max_time:
            r = torch.where(r == 0, 5, r)
        self._reason = r
        if self.record:
            entry = {"iteration": k, "time": elapsed, "cost": f.clone(), "grad_norm": gn.clone()}
            if step is not None:
                entry["step_size"] = step.clone()
            entry.update({a: (b.clone() if isinstance(b, Tensor) else b) for a, b in extra.items()})
            self._log.append(entry)
        if self.verbosity >= 2:
            more = "".join(f"  {a}={_fmt(b)}" for a, b in extra.items())
            st = "" if step is None else f"  step={_fmt(step)}"
            print(f"{self.name} {k:5d}  f={_fmt(f)}  |grad|={_fmt(gn)}{st}{more}")
        return not bool((self._reason == 0).any())

    def _check_single(self, k: int, f: Tensor, gn: Tensor | float, step: Tensor | None,
                      fold: Tensor | None, keep_going: bool = False) -> bool:
        """:meth:`_check` for one problem without log or display: Python comparisons."""
        if self._code_single:
            return True
        if k > 0:
            self._iters_single += 1
        code = 0
        if float(gn) <= self.min_grad_norm:
            code = 1
        elif step is not None and float(step) <= self.min_step_size and not keep_going:
            code = 2
        elif (self.min_cost_change is not None and fold is not None
              and abs(float(fold) - float(f)) <= self.min_cost_change):
            code = 3
        elif k >= self.max_iterations:
            code = 4
        elif time.perf_counter() - self._t0 >= self.max_time:
            code = 5
        if code:
            self._reason = torch.full_like(self._reason, code)
            self._code_single = code
        return code != 0

    def _finish(self, x: Tensor, f: Tensor, gn: Tensor) -> OptimizeResult:
        elapsed = time.perf_counter() - self._t0
        if self._iters_single:
            self._iters = self._iters + self._iters_single
            self._iters_single = 0
        codes = self._reason.reshape(-1).tolist()
        reasons = [REASONS[c] for c in codes]
        reason: Any = reasons[0] if f.dim() == 0 else reasons
        res = OptimizeResult(point=x, cost=f, grad_norm=gn, iterations=self._iters, time=elapsed,
                             stop_reason=reason, log=self._log)
        if self.verbosity >= 1:
            print(f"{self.name}: {_summary(reasons)} after {int(self._iters.max())} iterations, "
                  f"{elapsed:.3g} s, f={_fmt(f)}, |grad|={_fmt(gn)}")
        return res


def _check_finite_start(f: Tensor, gn: Tensor | float) -> None:
    """Raise ``ValueError`` if the cost or the gradient norm at the starting point is not finite."""
    gn = gn if isinstance(gn, Tensor) else torch.tensor(gn)
    bad = ~(torch.isfinite(f) & torch.isfinite(gn.to(f.device)))
    if bool(bad.any()):
        where = "" if f.dim() == 0 else f" (problem {tuple(int(i) for i in torch.nonzero(bad)[0])})"
        raise ValueError(f"the cost or its gradient is not finite at the starting point{where}: "
                         f"cost {float(f.reshape(-1)[bad.reshape(-1)][0])}, gradient norm "
                         f"{float(gn.reshape(-1)[bad.reshape(-1).to(gn.device)][0])}")


def _fmt(t: Any) -> str:
    if isinstance(t, Tensor):
        if t.numel() == 1:
            return f"{float(t):.6e}"
        return f"[{float(t.min()):.3e}..{float(t.max()):.3e}]"
    return str(t)


def _summary(reasons: list[str]) -> str:
    if len(reasons) == 1:
        return f"stopped on {reasons[0]}"
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return "stopped on " + ", ".join(f"{r} ({n})" for r, n in counts.items())
