"""Riemannian limited-memory BFGS (batched)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..manifolds import Euclidean
from .problem import Geometry, Problem, sel, transporter
from .result import OptimizeResult, Solver
from .wolfe_line_search import WolfeLineSearch

__all__ = ["LBFGS"]


def _move_pairs(move, x: Tensor, newx: Tensor, ss: list[Tensor], ys: list[Tensor]
                ) -> tuple[list[Tensor], list[Tensor]]:
    """Transport the stored pairs to ``newx`` with one batched call: the ``2k`` vectors are
    stacked along a new leading dimension against copies of ``x`` and ``newx`` (every manifold
    takes leading batch dimensions); ``2k`` separate calls cost ~2k times the Python overhead."""
    if not ss:
        return ss, ys
    k = len(ss)
    v = torch.stack(ss + ys)
    moved = move(x.expand(2 * k, *x.shape), newx.expand(2 * k, *newx.shape), v)
    out = list(moved.unbind(0))
    return out[:k], out[k:]


class LBFGS(Solver):
    """Riemannian L-BFGS (Huang, Gallivan & Absil, SIAM J. Optim. 25, 2015).

    The direction is the two-loop recursion over the last ``memory`` pairs
    ``(s_k, y_k) = (T(α d), grad f(x₊) − T(grad f(x)))``, all moved to the current tangent space
    by the metric's ``transport`` at every iteration, with initial scaling
    ``⟨s, y⟩/⟨y, y⟩``; a pair is stored only if ``⟨s, y⟩ > 1e-10 ‖s‖²`` (per problem), and a
    non-descent direction resets the memory of its problem to a gradient step. Step sizes come
    from a Wolfe line search (:class:`WolfeLineSearch`, with the approximate-Wolfe test of Hager
    and Zhang) whose first trial is ``α = 1`` (the first iteration starts at ``1/‖grad‖``).

    Parameters
    ----------
    memory : int
        Number of stored pairs (default 10).
    transport : {"metric", "projection"}
        Vector transport of the stored pairs (the metric's, or projection onto the new
        tangent space).
    **kwargs
        Stopping rules and display, see :class:`~riemlearn.optim.result.Solver`.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> from riemlearn.optim import Problem
    >>> pb = Problem(Euclidean(2), lambda x: (x[0] - 1) ** 2 + 10 * (x[1] - x[0] ** 2) ** 2)
    >>> res = LBFGS().solve(pb, torch.zeros(2, dtype=torch.float64))
    >>> [round(v, 5) for v in res.point.tolist()], res.stop_reason
    ([1.0, 1.0], 'gradient norm')
    """

    name = "LBFGS"

    def __init__(self, memory: int = 10, transport: str = "metric", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        transporter(Euclidean(), transport)  # validates the name
        self.transport = transport
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        self.memory = int(memory)

    def _direction(self, geom: Geometry, x: Tensor, g: Tensor, ss: list, ys: list,
                   rhos: list) -> Tensor:
        q = g
        alphas = []
        for s, y, rho in zip(reversed(ss), reversed(ys), reversed(rhos), strict=True):
            a = rho * geom.inner(x, s, q)
            q = q - geom.scale(a, y)
            alphas.append(a)
        if ss:
            sy = geom.inner(x, ss[-1], ys[-1])
            yy = geom.inner(x, ys[-1], ys[-1])
            gamma = sel(yy > 0, sy / yy, torch.ones_like(yy))
            gamma = sel(gamma > 0, gamma, torch.ones_like(gamma))
            r = geom.scale(gamma, q)
        else:
            r = q
        for s, y, rho, a in zip(ss, ys, rhos, reversed(alphas), strict=True):
            b = rho * geom.inner(x, y, r)
            r = r + geom.scale(a - b, s)
        return -r

    def solve(self, problem: Problem, x0: Tensor) -> OptimizeResult:
        """Minimize ``problem`` from ``x0`` (shape ``(*batch, *point_shape)``)."""
        m = problem.manifold
        move = transporter(m, self.transport)
        geom, _, _ = self._start(problem, x0)
        ls = WolfeLineSearch(transport=self.transport, initial="unit")
        x = x0.detach()
        f, g = problem.cost_grad(x)
        gn = geom.norm(x, g)
        ss: list[Tensor] = []
        ys: list[Tensor] = []
        rhos: list[Tensor] = []
        done = self._check(0, f, gn)
        k = 0
        while not done:
            k += 1
            act = self._active()
            d = self._direction(geom, x, g, ss, ys, rhos)
            df0 = geom.inner(x, g, d)
            bad = ~(df0 < 0)
            d = geom.where(bad, -g, d)
            df0 = sel(bad, -gn * gn, df0)
            if ss:
                rhos = [sel(bad, torch.zeros_like(r), r) for r in rhos]
            if not ss:
                ls.reset()  # a gradient step: first trial of length 1
            step, newx, newf = ls.search(problem, geom, x, d, f, df0, act)
            if ls.new_grad is not None:
                nf, ng, td = newf, ls.new_grad, ls.new_td
            else:
                (nf, ng), td = problem.cost_grad(newx), move(x, newx, d)
            moved = step > 0
            alpha = step / geom.norm(x, d).clamp_min(torch.finfo(x.dtype).tiny)
            s_new = geom.scale(alpha, td)
            y_new = ng - move(x, newx, g)
            ss, ys = _move_pairs(move, x, newx, ss, ys)
            sy = geom.inner(newx, s_new, y_new)
            keep = act & moved & (sy > 1e-10 * geom.inner(newx, s_new, s_new))
            rho = sel(keep, 1 / sy, torch.zeros_like(sy))
            ss.append(s_new)
            ys.append(y_new)
            rhos.append(rho)
            if len(ss) > self.memory:
                ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
            fold = f
            x = geom.where(act, newx, x)
            f = sel(act, nf, f)
            g = geom.where(act, ng, g)
            gn = geom.norm(x, g)
            done = self._check(k, f, gn, step, fold)
        return self._finish(x, f, gn)
