"""Riemannian nonlinear conjugate gradient (batched), β rules FR, PR+, HS, HZ, DY, LS."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor

from ..manifolds import Euclidean
from .bb_line_search import BarzilaiBorweinLineSearch
from .problem import Problem, sel, transporter
from .result import OptimizeResult, Solver
from .steepest_descent import make_line_search

__all__ = ["ConjugateGradient"]

BETA_RULES = ("FR", "PR+", "HS", "HZ", "DY", "LS")
#: Restart (d = −grad) when cos∠(−grad, d) is below this: HS/PR+ directions after inexact line
#: searches can come out nearly orthogonal to the gradient (seen: cos ~ 1e-11 on a 3-D
#: quadratic), and a line search along them gains nothing.
_MIN_COS = 1e-6


class ConjugateGradient(Solver):
    """Riemannian conjugate gradient (Absil, Mahony & Sepulchre 2008, §8.3; Sato 2021).

    Directions ``d ← −grad f(x₊) + β T_{x→x₊}(d)`` with the previous gradient and direction moved
    by the metric's ``transport``. β rules (``y = g₊ − T(g)``): ``"FR"`` Fletcher–Reeves,
    ``"PR+"`` Polak–Ribière clipped at 0, ``"HS"`` Hestenes–Stiefel (clipped at 0), ``"HZ"``
    Hager–Zhang, ``"DY"`` Dai–Yuan, ``"LS"`` Liu–Storey (clipped at 0). Restarts (``d = −g``)
    when the direction is not a descent direction (cosine with ``−g`` below 1e-6), when a
    step along a conjugate direction falls below ``min_step_size`` (the solver stops on the step
    size only after a steepest-descent step), when ``|⟨g₊, T(g)⟩| ≥ orth_value ‖g₊‖²``
    (Powell) and every ``restart_every`` iterations if set; all per problem.

    Parameters
    ----------
    beta_rule : str
        One of ``FR, PR+, HS, HZ, DY, LS`` (default ``"HS"``, as pymanopt).
    orth_value : float
        Powell restart threshold (default inf: off).
    restart_every : int, optional
        Periodic restart.
    line_search : {"wolfe", "adaptive", "backtracking"} or object
        Line search. Default ``"wolfe"``: :class:`WolfeLineSearch` with the solver's transport
        (Hager–Zhang's approximate-Wolfe test lets CG reach gradient norms far below the
        point where an Armijo test stops seeing the cost decrease: on a Brockett cost with
        ``|f| ~ 1e4``, 1e-9 instead of a stall near 1e-4). ``"adaptive"`` is the Armijo search
        of Manopt/pymanopt.
    transport : {"metric", "projection"}
        Vector transport of the previous gradient and direction: the metric's ``transport``
        (default) or projection onto the new tangent space (cheaper; what Manopt/pymanopt use
        on Stiefel and Grassmann).
    **kwargs
        Stopping rules and display, see :class:`~riemlearn.optim.result.Solver`.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> from riemlearn.optim import Problem
    >>> a = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
    >>> pb = Problem(Euclidean(2), lambda x: 0.5 * x @ a @ x - x.sum())
    >>> res = ConjugateGradient(beta_rule="FR").solve(pb, torch.zeros(2, dtype=torch.float64))
    >>> [round(v, 4) for v in res.point.tolist()]
    [1.0, 0.1]
    """

    name = "ConjugateGradient"

    def __init__(self, beta_rule: str = "HS", orth_value: float = float("inf"),
                 restart_every: int | None = None, line_search: Any = "wolfe",
                 transport: str = "metric", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        transporter(Euclidean(), transport)  # validates the name
        self.transport = transport
        rule = beta_rule.upper().replace("PRP+", "PR+")
        if rule not in BETA_RULES:
            raise ValueError(f"beta_rule must be one of {BETA_RULES}, got {beta_rule!r}")
        self.beta_rule = rule
        self.orth_value = orth_value
        self.restart_every = restart_every
        self.line_search = make_line_search(line_search, transport)
        if isinstance(self.line_search, BarzilaiBorweinLineSearch):
            raise ValueError("the Barzilai–Borwein search is for steepest descent (its steps assume "
                             "d = −grad); use 'adaptive' or 'backtracking' with conjugate gradient")

    def solve(self, problem: Problem, x0: Tensor) -> OptimizeResult:
        """Minimize ``problem`` from ``x0`` (shape ``(*batch, *point_shape)``)."""
        m = problem.manifold
        move = transporter(m, self.transport)
        geom, _, _ = self._start(problem, x0)
        ls = copy.deepcopy(self.line_search)
        ls.reset()
        x = x0.detach()
        if geom.k == 0:
            return self._solve_single(problem, geom, ls, move, x)
        f, g = problem.cost_grad(x)
        gg = geom.inner(x, g, g)
        gn = gg.sqrt()
        d = -g
        sd = torch.ones_like(gn, dtype=torch.bool)  # per problem: d is −grad this iteration
        done = self._check(0, f, gn)
        k = 0
        while not done:
            k += 1
            act = self._active()
            df0 = geom.inner(x, g, d)
            bad = ~(df0 < -_MIN_COS * (gg * geom.inner(x, d, d)).sqrt())
            sd = sd | bad
            d = geom.where(bad, -g, d)
            df0 = sel(bad, -gg, df0)
            step, newx, newf = ls.search(problem, geom, x, d, f, df0, act, with_grad=True)
            if ls.new_grad is not None:
                nf, ng = newf, ls.new_grad
            else:
                nf, ng = problem.cost_grad(newx)
            ngg = geom.inner(newx, ng, ng)
            tg = move(x, newx, g)
            td = self._transported_d(ls, move, x, newx, d)
            beta = self._beta(geom, newx, ng, ngg, tg, td, gg, g, d, x)
            orth = geom.inner(newx, ng, tg).abs() >= self.orth_value * ngg
            restart = orth | ~torch.isfinite(beta)
            if self.restart_every is not None and k % int(self.restart_every) == 0:
                restart = torch.ones_like(restart)
            # A step below min_step_size along a conjugate direction: restart rather than stop.
            short = act & ~sd & (step <= self.min_step_size)
            beta = sel(restart | short, torch.zeros_like(beta), beta)
            sd = beta == 0
            nd = -ng + geom.scale(beta, td)
            fold = f
            x = geom.where(act, newx, x)
            f = sel(act, nf, f)
            g = geom.where(act, ng, g)
            d = geom.where(act, nd, d)
            gg = sel(act, ngg, gg)
            gn = gg.clamp_min(0).sqrt()
            done = self._check(k, f, gn, step, fold, keep_going=short, beta=beta)
        return self._finish(x, f, gn)

    def _solve_single(self, problem: Problem, geom: Any, ls: Any, move: Any,
                      x: Tensor) -> OptimizeResult:
        """:meth:`solve` for one (unbatched) problem: the same iterates without masking."""
        f, g = problem.cost_grad(x)
        gg = geom.inner(x, g, g)
        ggv = float(gg)
        d = -g
        sd = True  # d is −grad this iteration
        done = self._check(0, f, gg.sqrt())
        k = 0
        act = torch.ones((), dtype=torch.bool, device=x.device)
        fast_check = not self.record and self.verbosity < 2
        while not done:
            k += 1
            df0 = float(geom.inner(x, g, d))
            if not df0 < -_MIN_COS * math.sqrt(ggv * float(geom.inner(x, d, d))):  # restart
                d, df0, sd = -g, -ggv, True
            step, newx, nf = ls.search(problem, geom, x, d, f, torch.tensor(df0, dtype=f.dtype), act,
                                       with_grad=True)
            ng = ls.new_grad if ls.new_grad is not None else problem.cost_grad(newx)[1]
            ngg = geom.inner(newx, ng, ng)
            nggv = float(ngg)
            tg = move(x, newx, g)
            td = self._transported_d(ls, move, x, newx, d)
            beta = float(self._beta(geom, newx, ng, ngg, tg, td, gg, g, d, x))
            restart = not math.isfinite(beta)
            if self.orth_value != math.inf:
                restart = restart or abs(float(geom.inner(newx, ng, tg))) >= self.orth_value * nggv
            if self.restart_every is not None and k % int(self.restart_every) == 0:
                restart = True
            short = not sd and float(step) <= self.min_step_size  # restart rather than stop
            restart = restart or short
            if restart:
                beta = 0.0
            sd = beta == 0.0
            d = (beta * td).sub_(ng)
            fold = f
            x, f, g, gg, ggv = newx, nf, ng, ngg, nggv
            gnv = math.sqrt(max(ggv, 0.0))
            if fast_check:
                done = self._check_single(k, f, gnv, step, fold, short)
            else:
                done = self._check(k, f, torch.tensor(gnv, dtype=f.dtype, device=f.device), step,
                                   fold, keep_going=torch.tensor(short, device=f.device),
                                   beta=torch.tensor(beta, dtype=f.dtype, device=f.device))
        return self._finish(x, f, gg.clamp_min(0).sqrt())

    def _transported_d(self, ls: Any, move: Any, x: Tensor, newx: Tensor, d: Tensor) -> Tensor:
        """``T_{x→x₊}(d)``: the Wolfe search already computed it (for the slope at ``x₊``)."""
        td = getattr(ls, "new_td", None)
        if td is not None and getattr(ls, "transport", None) == self.transport:
            return td
        return move(x, newx, d)

    def _beta(self, geom, x1, g1, g1g1, tg, td, gg, g0, d0, x0) -> Tensor:
        rule = self.beta_rule
        if rule == "FR":
            return g1g1 / gg
        y = g1 - tg
        if rule == "PR+":
            return (geom.inner(x1, g1, y) / gg).clamp_min(0)
        dy = geom.inner(x1, td, y)
        if rule == "HS":
            return (geom.inner(x1, g1, y) / dy).clamp_min(0)
        if rule == "DY":
            return g1g1 / dy
        if rule == "LS":
            return (geom.inner(x1, g1, y) / -geom.inner(x0, g0, d0)).clamp_min(0)
        # Hager–Zhang (2005) with the lower bound η of their CG_DESCENT.
        yy = geom.inner(x1, y, y)
        w = y - geom.scale(2 * yy / dy, td)
        beta = geom.inner(x1, w, g1) / dy
        dn = geom.norm(x1, td)
        eta = -1 / (dn * torch.clamp(gg.sqrt(), max=0.01))
        return torch.maximum(beta, eta)
