"""Riemannian trust regions with truncated CG (Steihaug–Toint), batched."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..manifolds.tolerance import eps as dtype_eps
from .problem import Geometry, Problem, sel
from .result import OptimizeResult, Solver

__all__ = ["TrustRegions"]


class TrustRegions(Solver):
    """Riemannian trust-region method (Absil, Baker & Gallivan 2007).

    Each iteration approximately minimizes the quadratic model
    ``m(η) = f + ⟨g, η⟩ + ½⟨η, Hess f(x)[η]⟩`` over ``‖η‖ ≤ Δ`` by truncated conjugate gradient
    (Steihaug–Toint: stop on negative curvature or at the boundary, or when the residual drops
    below ``‖r₀‖ min(‖r₀‖^θ, κ)``), retracts, and accepts if the actual/predicted decrease
    ratio ρ exceeds ``rho_prime``; Δ shrinks by 4 if ρ < 1/4 and doubles (up to ``max_radius``)
    if ρ > 3/4 and tCG stopped at the boundary. Every problem of a batch has its own Δ and tCG
    state. Hessian-vector products come from :meth:`Problem.cost_grad_hess`.

    Parameters
    ----------
    max_radius : float, optional
        Δ̄ (default ``sqrt(numel of one problem's point)``); the initial radius is Δ̄/8 unless
        ``initial_radius`` is given.
    initial_radius : float, optional
    rho_prime : float
        Acceptance threshold (default 0.1).
    kappa, theta : float
        tCG residual stopping rule (default 0.1 and 1: superlinear convergence).
    max_inner_iterations : int, optional
        tCG iteration cap (default: numel of one problem's point).
    rho_regularization : float
        Guards ρ against round-off near convergence (Manopt's default 1e3).
    **kwargs
        Stopping rules and display, see :class:`~riemlearn.optim.result.Solver`.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> from riemlearn.optim import Problem
    >>> pb = Problem(Euclidean(2), lambda x: ((x - 1) ** 4).sum() + (x ** 2).sum())
    >>> res = TrustRegions().solve(pb, torch.zeros(2, dtype=torch.float64))
    >>> res.stop_reason, bool(res.grad_norm < 1e-6)
    ('gradient norm', True)
    """

    name = "TrustRegions"

    def __init__(self, max_radius: float | None = None, initial_radius: float | None = None,
                 rho_prime: float = 0.1, kappa: float = 0.1, theta: float = 1.0,
                 min_inner_iterations: int = 1, max_inner_iterations: int | None = None,
                 rho_regularization: float = 1e3, **kwargs: Any) -> None:
        kwargs.setdefault("min_step_size", 0.0)
        super().__init__(**kwargs)
        if not 0 <= rho_prime < 0.25:
            raise ValueError(f"rho_prime must be in [0, 1/4), got {rho_prime}")
        self.max_radius = max_radius
        self.initial_radius = initial_radius
        self.rho_prime = rho_prime
        self.kappa = kappa
        self.theta = theta
        self.min_inner = int(min_inner_iterations)
        self.max_inner = max_inner_iterations
        self.rho_regularization = rho_regularization

    def solve(self, problem: Problem, x0: Tensor) -> OptimizeResult:
        """Minimize ``problem`` from ``x0`` (shape ``(*batch, *point_shape)``)."""
        m = problem.manifold
        geom, _, _ = self._start(problem, x0)
        x = x0.detach()
        per_problem = max(1, x[(0,) * geom.k].numel()) if geom.k else x.numel()
        dbar = self.max_radius if self.max_radius is not None else math.sqrt(per_problem)
        d0 = self.initial_radius if self.initial_radius is not None else dbar / 8
        max_inner = self.max_inner if self.max_inner is not None else per_problem
        f, g, hess = problem.cost_grad_hess(x)
        gn = geom.norm(x, g)
        radius = torch.full_like(f, d0)
        done = self._check(0, f, gn)
        k = 0
        tiny = dtype_eps(x.dtype)
        while not done:
            k += 1
            act = self._active()
            if geom.k == 0:  # one problem: scalar bookkeeping in Python floats
                eta, heta, boundary, inner_its = self._tcg_single(geom, x, g, hess, radius,
                                                                  max_inner)
            else:
                eta, heta, boundary, inner_its = self._tcg(geom, x, g, hess, radius, act,
                                                           max_inner)
            xp = m.retract(x, eta)
            fp = problem.cost(xp)
            num = f - fp
            den = -geom.inner(x, g, eta) - 0.5 * geom.inner(x, eta, heta)
            reg = torch.clamp(f.abs(), min=1.0) * tiny * self.rho_regularization
            num, den = num + reg, den + reg
            model_ok = den >= 0
            rho = num / den
            shrink = ~(rho >= 0.25) | ~model_ok
            grow = (rho > 0.75) & boundary & ~shrink
            radius = sel(act & shrink, radius / 4, radius)
            radius = sel(act & grow, torch.clamp(2 * radius, max=dbar), radius)
            accept = act & model_ok & (rho > self.rho_prime)
            fold = f
            sel(accept, geom.norm(x, eta), torch.zeros_like(f))
            if bool(accept.any()):
                x = geom.where(accept, xp, x)
                f2, g2, hess = problem.cost_grad_hess(x)
                f = sel(accept, f2, f)
                g = geom.where(accept, g2, g)
                gn = geom.norm(x, g)
            done = self._check(k, f, gn, None, fold, radius=radius, rho=rho,
                               inner=inner_its, accepted=accept)
            if not done and not bool((radius[self._active()] > 0).all()):
                done = True
        return self._finish(x, f, gn)

    def _tcg_single(self, geom: Geometry, x: Tensor, g: Tensor, hess: Callable[[Tensor], Tensor],
                    radius: Tensor, max_inner: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:meth:`_tcg` for one (unbatched) problem, with the scalar recurrences in floats.

        Same iterates as :meth:`_tcg`; avoids the per-problem masking of the batched version,
        which dominates the cost of an inner iteration on small problems.
        """
        m = geom.m

        def inner(u: Tensor, v: Tensor) -> float:
            return float(geom.inner(x, u, v))

        eta = torch.zeros_like(g)
        heta = torch.zeros_like(g)
        r = g
        rr = inner(r, r)
        norm_r0 = math.sqrt(rr)
        delta = -r
        e_pe, e_pd, d_pd, model = 0.0, 0.0, rr, 0.0
        boundary, its = False, 0
        d2 = float(radius) ** 2
        target = norm_r0 * min(norm_r0**self.theta, self.kappa)
        for j in range(max_inner):
            hd = hess(delta)
            dhd = inner(delta, hd)
            alpha = rr / dhd if dhd > 0 else math.nan
            e_pe_new = e_pe + 2 * alpha * e_pd + alpha * alpha * d_pd
            if not dhd > 0 or e_pe_new >= d2:  # negative curvature or outside: to the boundary
                disc = max(e_pd * e_pd + d_pd * (d2 - e_pe), 0.0)
                tau = (-e_pd + math.sqrt(disc)) / d_pd if d_pd > 0 else 0.0
                eta = torch.add(eta, delta, alpha=tau)
                heta = torch.add(heta, hd, alpha=tau)
                boundary = True
                its += 1
                break
            new_eta = torch.add(eta, delta, alpha=alpha)
            new_heta = torch.add(heta, hd, alpha=alpha)
            new_model = inner(new_eta, torch.add(g, new_heta, alpha=0.5))
            its += 1
            if new_model >= model:  # the model got worse: keep the previous iterate
                break
            eta, heta, model, e_pe = new_eta, new_heta, new_model, e_pe_new
            r = torch.add(r, hd, alpha=alpha)
            rr_new = inner(r, r)
            if math.sqrt(rr_new) <= target and j + 1 >= self.min_inner:
                break
            beta = rr_new / rr
            delta = m.project_tangent(x, (beta * delta).sub_(r))
            e_pd = beta * (e_pd + alpha * d_pd)
            d_pd = rr_new + beta * beta * d_pd
            rr = rr_new
        dev = g.device
        return (eta, heta, torch.tensor(boundary, device=dev),
                torch.tensor(its, dtype=torch.long, device=dev))

    def _tcg(self, geom: Geometry, x: Tensor, g: Tensor, hess: Callable[[Tensor], Tensor],
             radius: Tensor, active: Tensor, max_inner: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Steihaug–Toint truncated CG from η = 0 (no preconditioner), per problem."""
        m = geom.m
        eta = torch.zeros_like(g)
        heta = torch.zeros_like(g)
        r = g
        rr = geom.inner(x, r, r)
        norm_r0 = rr.sqrt()
        delta = -r
        e_pe = torch.zeros_like(rr)
        e_pd = torch.zeros_like(rr)
        d_pd = rr.clone()
        model = torch.zeros_like(rr)
        run = active.clone()
        boundary = torch.zeros_like(active)
        its = torch.zeros_like(rr, dtype=torch.long)
        d2 = radius * radius
        target = norm_r0 * torch.minimum(norm_r0**self.theta, torch.full_like(norm_r0, self.kappa))
        for j in range(max_inner):
            if not bool(run.any()):
                break
            hd = hess(delta)
            dhd = geom.inner(x, delta, hd)
            alpha = rr / dhd
            e_pe_new = e_pe + 2 * alpha * e_pd + alpha * alpha * d_pd
            out = run & ((dhd <= 0) | (e_pe_new >= d2))
            if bool(out.any()):
                disc = (e_pd * e_pd + d_pd * (d2 - e_pe)).clamp_min(0)
                tau = (-e_pd + disc.sqrt()) / d_pd
                tau = sel(out, tau, torch.zeros_like(tau))
                eta = eta + geom.scale(tau, delta)
                heta = heta + geom.scale(tau, hd)
                boundary = boundary | out
                its = its + out.long()
                run = run & ~out
            a = sel(run, alpha, torch.zeros_like(alpha))
            new_eta = eta + geom.scale(a, delta)
            new_heta = heta + geom.scale(a, hd)
            new_model = geom.inner(x, new_eta, g) + 0.5 * geom.inner(x, new_eta, new_heta)
            worse = run & (new_model >= model)
            run = run & ~worse
            its = its + worse.long()
            eta = geom.where(run, new_eta, eta)
            heta = geom.where(run, new_heta, heta)
            model = sel(run, new_model, model)
            e_pe = sel(run, e_pe_new, e_pe)
            its = its + run.long()
            r = geom.where(run, r + geom.scale(a, hd), r)
            rr_new = geom.inner(x, r, r)
            small = run & (rr_new.sqrt() <= target) & (j + 1 >= self.min_inner)
            run = run & ~small
            beta = rr_new / rr
            beta = sel(run, beta, torch.zeros_like(beta))
            new_delta = m.project_tangent(x, -r + geom.scale(beta, delta))
            e_pd = sel(run, beta * (e_pd + a * d_pd), e_pd)
            d_pd = sel(run, rr_new + beta * beta * d_pd, d_pd)
            delta = geom.where(run, new_delta, delta)
            rr = sel(run, rr_new, rr)
        return eta, heta, boundary, its
