"""Fréchet means of SPD matrices: closed forms and fast iterations (private).

Every function takes points ``X`` of shape ``(G, N, n, n)`` (``G`` groups, already flattened)
and normalized weights ``w`` of shape ``(G, N)`` and works in the dtype of ``X``.

* log-Euclidean: ``exp(Σ wᵢ log Xᵢ)`` (closed form).
* log-Cholesky (Lin 2019): Cholesky factors ``Lᵢ``; the mean's factor has strictly lower part
  ``Σ wᵢ ⌊Lᵢ⌋`` and diagonal ``exp(Σ wᵢ log diag Lᵢ)`` (closed form).
* affine-invariant: a Riemannian Newton iteration in the whitened frame of the current
  estimate ``M = C Cᵀ``, started at ``A # H`` (:func:`ah_frame`). One eigendecomposition per
  matrix per iteration, of ``Yᵢ = C⁻¹ Xᵢ C⁻ᵀ``, gives the gradient ``G = Σ wᵢ log Yᵢ`` and the
  exact Hessian of ``½ Σ wᵢ d²(M, Xᵢ)`` (``_aim_newton``)::

      Hess[H] = Σ wᵢ Vᵢ (g(Λᵢ) ∘ (Vᵢᵀ H Vᵢ)) Vᵢᵀ,   g_jk = δ coth δ,  δ = (l_j − l_k)/2

  (the Jacobi fields of a symmetric space; ``g ≥ 1`` so the Hessian is ≥ I). The Newton
  direction comes from a few CG steps, the step length from Armijo backtracking on the variance
  (globally convergent: the cost is geodesically strongly convex), and the update
  ``C ← C U diag(e^{tμ/2})`` with ``U diag(μ) Uᵀ = D`` needs no square root of ``M``.
  The plain unit-step fixed point diverges on widely spread data; this does not. After a
  step the old eigenvectors, rotated by ``Uᵀ``, are refined by matrix products instead of a new
  LAPACK call (small ``n`` on CPU, :data:`REFINE_MAX_N`); the Hessian products run in float32
  where their error cannot matter (``_hess_dtype``); a last step is accepted without a new
  decomposition when its CG residual plus a bound on the rest is below tol (``_aim_certify``).
* Bures–Wasserstein: the fixed point ``S ← S^{-1/2} (Σ wᵢ (S^{1/2} Xᵢ S^{1/2})^{1/2})² S^{-1/2}``
  of Álvarez-Esteban, del Barrio, Cuesta-Albertos & Matrán (2016).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..manifolds.eigh_refine import eigh_from_guess
from ..manifolds.spectral import eigh, logm, sqrtm, sqrtm_invsqrtm, sym
from ..manifolds.spectral_fns import Log
from ..manifolds.tolerance import eps, tie_threshold
from ._aim_certify import _hess_error_from, _hess_norm_bound, _log_path_bound, _perturbed_grad, _step_bound
from ._aim_newton import _cg, _coth_weights, _hess_dtype, _Hessian, _stack_vt

__all__ = ["le_mean", "lc_mean", "AIMState", "ah_frame", "ah_frame_from_means", "ah_init", "inverse_wsum",
           "aim_mean", "aim_adjoint", "bw_mean", "bw_grad_norm"]


def _wsum(w: Tensor, x: Tensor) -> Tensor:
    """``Σ_i w_i x_i`` over dim -3 for ``w (G, N)``, ``x (G, N, n, n)`` (one GEMV, no temporary)."""
    *g, n_pts, n, m = x.shape
    return (w.unsqueeze(-2) @ x.reshape(*g, n_pts, n * m)).reshape(*g, n, m)


# -- closed forms -------------------------------------------------------------------------------
def le_mean(x: Tensor, w: Tensor) -> Tensor:
    """Log-Euclidean mean ``exp(Σ wᵢ log Xᵢ)`` (differentiable by autograd)."""
    from ..manifolds.spectral import expm

    return expm(_wsum(w, logm(x)))


def lc_mean(x: Tensor, w: Tensor) -> Tensor:
    """Log-Cholesky mean (Lin 2019, Prop. 9): closed form on the Cholesky factors."""
    c = torch.linalg.cholesky(sym(x))
    strict = _wsum(w, c.tril(-1))
    logd = (w[..., None] * torch.log(c.diagonal(dim1=-2, dim2=-1))).sum(-2)
    lm = strict + torch.diag_embed(torch.exp(logd))
    return lm @ lm.mT


# -- affine-invariant ------------------------------------------------------------------------------
@dataclass
class AIMState:
    """The whitened frame at the final estimate, or at the iterate before a last step < √eps
    (all that the implicit backward needs)."""

    c: Tensor  # (G, n, n), M = C Cᵀ
    ci: Tensor  # (G, n, n), C⁻¹
    lam: Tensor | None  # (G, N, n) eigenvalues of Yᵢ (None: recompute from x, w)
    vec: Tensor | None  # (G, N, n, n) eigenvectors of Yᵢ
    x: Tensor | None = None
    w: Tensor | None = None
    # (U, V): the last move's rotation and the eigenvectors before it; Uᵀ Vᵢ approximates the
    # eigenvectors at this frame (refined instead of a fresh eigh when recomputing).
    guess: tuple[Tensor, Tensor] | None = None

    def vectors_guess(self) -> Tensor | None:
        """Eigenvectors of the ``Yᵢ`` at this frame: exact, or the rotated previous ones (None
        if neither is kept)."""
        if self.vec is not None:
            return self.vec
        return None if self.guess is None else self.guess[0].mT.unsqueeze(-3) @ self.guess[1]

    def eigenpairs(self) -> tuple[Tensor, Tensor]:
        if self.lam is None:
            _, _, _, self.lam, self.vec = _whitened_pass(self.x, self.w, self.ci, self.vectors_guess())
            self.x = self.w = self.guess = None
        return self.lam, self.vec


def _congruence(ci: Tensor, x: Tensor, symmetric: bool = False) -> Tensor:
    """``C⁻¹ Xᵢ C⁻ᵀ`` for ``ci (G, n, n)``, ``x (G, N, n, n)``, as two tall GEMMs per group
    (``symmetric``: its symmetric part, written over the first product's buffer)."""
    g, n_pts, n, _ = x.shape
    z = (x.reshape(g, n_pts * n, n) @ ci.mT).reshape(g, n_pts, n, n)  # Xᵢ C⁻ᵀ
    # C⁻¹ (Xᵢ C⁻ᵀ): a batched product with C⁻¹ broadcast as a stride-0 view (no copy of it,
    # and no transposed copy of Z)
    y = torch.matmul(ci.unsqueeze(-3).expand_as(z), z)
    if symmetric:
        return torch.add(y, y.mT, out=z).mul_(0.5)
    return y


#: Largest ``n`` for which a pass after a Newton step refines the rotated previous eigenvectors
#: (:func:`~riemlearn.manifolds.eigh_refine.eigh_from_guess`) instead of calling LAPACK (CPU, float64).
#: One core, 1000 points (``benchmarks/RESULTS.md``): n = 22 about 0.6× an ``eigh`` pass, n = 32 over 1×.
REFINE_MAX_N = 24
#: ... and only after a step ``max |t μ| <= REFINE_MAX_STEP``: larger steps rotate the eigenvectors
#: too far for the refinement to beat LAPACK (1000 widely spread points after a 1.5e-2 step: five
#: steps and 0.4 % fallbacks, as long as an ``eigh``).
REFINE_MAX_STEP = 5e-3
#: Inexact Newton: CG stops at ``min(0.01 · min(½, ‖G‖), RELATIVE_FORCING_MAX) · ‖G‖``.
RELATIVE_FORCING_MAX = 1e-4


def _whitened_pass(x: Tensor, w: Tensor, ci: Tensor, guess: Tensor | None = None, far: bool = False
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Eigen-decompose ``Yᵢ = C⁻¹ Xᵢ C⁻ᵀ``; return cost, gradient ``G``, ``log λ``, ``λ``, ``V``.

    ``guess``: approximate eigenvectors of every ``Yᵢ`` (refined to full precision, LAPACK for
    the matrices the refinement cannot finish; ``far``: after a step of max |μ| > 1e-4, a
    mixed-precision start); eigenvalues then come unsorted.
    """
    if guess is None:
        lam, v = eigh(_congruence(ci, x))
    else:
        lam, v = eigh_from_guess(_congruence(ci, x, symmetric=True), guess, mixed=far)
    lam = lam.clamp_min(torch.finfo(lam.dtype).tiny)
    ll = torch.log(lam)
    cost = 0.5 * (w * (ll * ll).sum(-1)).sum(-1)
    vt = _stack_vt(v)
    g, n_pts, n = ll.shape
    # Σ wᵢ Vᵢ diag(lᵢ) Vᵢᵀ: the rows of Vᵢᵀ scaled by wᵢ lᵢ, then one tall product
    a = vt.reshape(g, n_pts, n, n) * (w[..., None] * ll).unsqueeze(-1)
    grad = a.reshape(g, n_pts * n, n).mT @ vt
    return cost, sym(grad), ll, lam, v


def ah_frame(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Frame ``(C, C⁻¹)`` with ``C Cᵀ = A # H``, the geometric mean of the arithmetic and harmonic means.

    Both bracket the affine-invariant mean (``H ≤ G ≤ A``) and their geometric mean matches it
    to second order in the spread (exactly for two commuting points). With ``A = L Lᵀ`` and
    ``Lᵀ H⁻¹ L = U diag(τ) Uᵀ``, ``A # H = L (L⁻¹ H L⁻ᵀ)^{1/2} Lᵀ`` gives ``C = L U diag(τ^{-1/4})``:
    one Cholesky factor and triangular inverse per point and one ``eigh`` per group, no inverse
    or square root of a mean. Raises ``ValueError`` if a point is not positive definite.
    """
    chol, info = torch.linalg.cholesky_ex(x)  # reads the lower triangle only
    if bool((info > 0).any()):
        idx = tuple(int(i) for i in torch.nonzero(info > 0)[0])
        raise ValueError(f"points are not positive definite (Cholesky fails at group/point index {idx})")
    return ah_frame_from_means(_wsum(w, x), inverse_wsum(chol, w))


def inverse_wsum(chol: Tensor, w: Tensor) -> Tensor:
    """``Σ wᵢ Xᵢ⁻¹`` from the Cholesky factors ``Lᵢ`` of ``Xᵢ`` (``w >= 0``).

    ``= Zᵀ Z`` with ``Z`` the stacked ``√wᵢ Lᵢ⁻¹``: one triangular solve per point and one tall
    product (a third of the work of forming every inverse and summing them).
    """
    g, n_pts, n, _ = chol.shape
    eye = torch.eye(n, dtype=chol.dtype, device=chol.device).expand_as(chol)
    z = torch.linalg.solve_triangular(chol, eye, upper=False).mul_(w.sqrt()[..., None, None])
    z = z.reshape(g, n_pts * n, n)
    return z.mT @ z


def ah_frame_from_means(a: Tensor, hinv: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`ah_frame` from the arithmetic mean ``A`` and ``H⁻¹ = Σ wᵢ Xᵢ⁻¹``."""
    la = torch.linalg.cholesky(a)
    tau, u = eigh(sym(la.mT @ hinv @ la))
    q = tau.clamp_min(torch.finfo(tau.dtype).tiny) ** 0.25
    eye = torch.eye(la.shape[-1], dtype=la.dtype, device=la.device)
    li = torch.linalg.solve_triangular(la, eye, upper=False)
    return (la @ u) / q.unsqueeze(-2), (u.mT @ li) * q.unsqueeze(-1)


def ah_init(x: Tensor, w: Tensor) -> Tensor:
    """``A # H`` (see :func:`ah_frame`): a cheap affine-invariant initializer."""
    c, _ = ah_frame(x, w)
    return sym(c @ c.mT)


def _move(c: Tensor, ci: Tensor, mu: Tensor, u: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Frame of ``M' = C exp(t D) Cᵀ``, ``D = U diag(μ) Uᵀ``.

    ``C' = C U e^{tμ/2}`` and ``C'⁻¹ = e^{-tμ/2} Uᵀ C⁻¹`` (no square root of ``M`` needed).
    """
    e = torch.exp(0.5 * t[..., None] * mu)
    return (c @ u) * e.unsqueeze(-2), (u.mT @ ci) / e.unsqueeze(-1)


def aim_mean(
    x: Tensor, w: Tensor, init: Tensor | tuple[Tensor, Tensor], tol: float, max_iter: int,
    norm_scale: float = 1.0,
    ab: tuple[float, float] = (1.0, 0.0), reduce: Callable[..., tuple[Tensor, ...]] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, AIMState]:
    """Affine-invariant Karcher mean by Riemannian Newton–CG with Armijo steps.

    ``init`` is a starting point ``(G, n, n)`` or its frame ``(C, C⁻¹)`` (:func:`ah_frame`).
    Returns ``(mean, iterations, grad_norm, converged, state)``; ``grad_norm`` is the metric norm
    ``sqrt(α‖G‖² + β tr(G)²) · norm_scale`` of the Riemannian gradient at the returned mean.
    ``reduce(*sums) -> sums``, if given, is applied to every sum over points (cost, gradient,
    Hessian–vector products, perturbative check): ``riemlearn.distributed`` passes an
    all-reduce over ranks holding shards (the returned state then covers the local shard only).
    """
    def _red(*ts: Tensor) -> tuple[Tensor, ...]:
        return ts if reduce is None else reduce(*ts)

    def _pass(ci_: Tensor, guess: Tensor | None = None, far_: bool = False
              ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        cost_, grad_, ll_, lam_, v_ = _whitened_pass(x, w, ci_, guess, far_)
        cost_, grad_ = _red(cost_, grad_)
        return cost_, grad_, ll_, lam_, v_

    alpha, beta = ab
    if isinstance(init, tuple):
        c, ci = init
    else:
        c = torch.linalg.cholesky(sym(init))
        ci = torch.linalg.solve_triangular(c, torch.eye(c.shape[-1], dtype=c.dtype, device=c.device),
                                           upper=False)
    cost, grad, ll, lam, v = _pass(ci)
    groups = x.shape[:-3]
    iters = torch.zeros(groups, dtype=torch.long, device=x.device)
    small_dec = 64 * eps(x.dtype)
    hdt_far = _hess_dtype(x)
    n_dim = x.shape[-1]
    # The move rotates the whitened points by Uᵀ (C'⁻¹ = e^{-tμ/2} Uᵀ C⁻¹): Uᵀ Vᵢ is within the
    # step's size of their new eigenvectors.
    # (float64 only: in float32 the refined vectors are orthogonal to ~eps·spread/gap, 10× LAPACK's)
    refine = x.device.type == "cpu" and x.dtype == torch.float64 and x.shape[-1] <= REFINE_MAX_N

    def gnorm(g: Tensor) -> Tensor:
        if beta == 0.0:  # the common case: one norm kernel
            out = torch.linalg.matrix_norm(g)
            scale = alpha ** 0.5 * norm_scale
            return out if scale == 1.0 else out * scale
        out = alpha * (g * g).sum((-2, -1)) + beta * g.diagonal(dim1=-2, dim2=-1).sum(-1) ** 2
        return out.clamp_min(0).sqrt() * norm_scale

    gn = gnorm(grad)
    fro = (alpha + x.shape[-1] * max(beta, 0.0)) ** 0.5  # metric norm <= fro * Frobenius norm
    stale = False
    prev: AIMState | None = None
    # One group (a single mean, a batch-norm batch): inside the loop every group is active, so
    # the per-group masks are skipped (fewer small kernels; they dominate on a GPU).
    single = gn.numel() == 1
    bound_scale = norm_scale * fro
    stop_floor = 0.1 * tol / norm_scale
    for _ in range(max_iter):
        gmax = float(gn.max())  # the one host read at the iteration's start
        if not gmax > tol:  # NaN stops too
            break
        active = gn > tol
        # Inexact Newton: residual <= 0.01·min(0.5, ‖G‖)·‖G‖ (quadratic; CG steps cost a few GEMMs,
        # far less than a pass of eigh), never below what the tolerance needs; CG starts from the
        # scaled gradient step.
        g0 = gn / norm_scale
        stop = torch.clamp(g0, max=0.5).mul_(g0).mul_(0.01)
        stop = torch.minimum(stop, g0 * RELATIVE_FORCING_MAX).clamp_min_(stop_floor)
        g0h = gmax / norm_scale
        far = min(0.01 * min(0.5, g0h), RELATIVE_FORCING_MAX) * g0h * norm_scale > 100 * tol
        hdt, polish, hn = x.dtype, False, None
        if hdt_far != x.dtype:
            # Float32 products where, in every active group, CG's relative target stays 100×
            # above float32 round-off times κ(Hess) ≤ ‖Hess‖ ≤ hn. If a step may be final (CG's
            # target within 100× tol) and the products' error model (_hess_error_from, with
            # ‖D‖ ≤ ‖G‖ as Hess ≥ I) is not below 0.3 tol, CG goes on in x's dtype from the
            # float32 solution (its first product is the exact residual; often nothing more is
            # needed): the final residual certifies the new point.
            (hn,) = _red(_hess_norm_bound(ll, w))
            e32 = eps(hdt_far)
            attainable = stop >= 100 * e32 * hn * g0
            certifiable = (stop * norm_scale > 100 * tol) | (
                8 * n_dim * e32 * hn * g0 * bound_scale <= 0.3 * tol)
            ok32, cert32 = torch.stack(((attainable | ~active).all(), (certifiable | ~active).all())).tolist()
            if ok32:
                hdt, polish = hdt_far, not cert32
        gw = _coth_weights(ll, w, hdt)
        # Start CG at G / h̄ with h̄ = tr(Hess)/dim (the best scalar model of the Hessian).
        n = gw.shape[-1]
        (hbar,) = _red(gw.sum((-3, -2, -1), dtype=x.dtype) / (n * n))
        hess = _Hessian(v, gw)
        apply = hess if reduce is None else (lambda h, hs=hess: _red(hs(h))[0])
        d, res = _cg(apply, grad, stop, maxiter=50, x0=grad / hbar[..., None, None], residual=True)
        if polish:
            hess = _Hessian(v, _coth_weights(ll, w))
            apply = hess if reduce is None else (lambda h, hs=hess: _red(hs(h))[0])
            d, res = _cg(apply, grad, stop, maxiter=50, x0=d, residual=True)
            hdt = x.dtype
        if not single:
            d = torch.where(active[..., None, None], d, torch.zeros_like(d))
        slope = (grad * d).sum((-2, -1))  # −(directional derivative of the cost)
        mu, u = eigh(sym(d))
        t = torch.ones_like(gn)
        iters = iters + active.long()
        # Final step: to first order the gradient at the new point is the CG residual
        # G − Hess[D]; accept the step (no eigh) if that plus a bound on the rest is <= tol.
        # Skipped while CG's stopping residual is far above tol: the step cannot be final then
        # (a heuristic: a rare lucky step costs one more pass). The rest is bounded by the
        # smaller of _step_bound and _log_path_bound, plus the float32 products' error model.
        all_done, mu_max = False, math.inf
        if not (single and far):
            dn = torch.linalg.vector_norm(mu, dim=-1)
            if hn is None:
                sb, hn = _red(_step_bound(lam, w, mu), _hess_norm_bound(ll, w))
            else:  # already summed for the float32 decision
                (sb,) = _red(_step_bound(lam, w, mu))
            err = torch.minimum(sb, _log_path_bound(hn, dn, n_dim)).add_(_hess_error_from(hn, dn, n_dim, hdt))
            gn_est = gnorm(res)
            done = torch.add(gn_est, err.add_(g0, alpha=100 * eps(x.dtype)), alpha=bound_scale) <= tol
            if not single:
                done = done | ~active
            # One host read: all done? and the largest |μ| (small steps: the perturbative check).
            all_done, mu_max = torch.stack((done.all().to(mu.dtype), mu.abs().max())).tolist()
            if not all_done and mu_max <= 1e-4:
                # Widely spread points: the exact first-order term from the current eigenpairs.
                est, err = _red(*_perturbed_grad(v, lam, ll, w, mu, u))
                gn_est = gnorm(est)
                done = torch.add(gn_est, err, alpha=bound_scale) <= tol
                if not single:
                    done = done | ~active
                all_done = bool(done.all())
        if all_done:
            # A step below √eps moves the adjoint by less than the mean's own accuracy: the
            # backward may use the previous frame and its eigenpairs (no extra eigh pass).
            if mu_max <= eps(x.dtype) ** 0.5:
                prev = AIMState(c, ci, lam, v)
            stale = True
            if single:
                c, ci = _move(c, ci, mu, u, t)
                gn = gn_est
            else:
                c, ci = _move(c, ci, mu, u, torch.where(active, t, torch.zeros_like(t)))
                gn = torch.where(active, gn_est, gn)
            break
        for _bt in range(40):
            c2, ci2 = _move(c, ci, mu, u, t)
            step = 0.0
            if refine:
                tmax = float(t.max())
                step = mu_max * tmax if mu_max < math.inf else float((t[..., None] * mu).abs().max())
            if refine and step <= REFINE_MAX_STEP:
                cost2, grad2, ll2, lam2, v2 = _pass(ci2, u.mT.unsqueeze(-3) @ v, step > 1e-4)
            else:
                cost2, grad2, ll2, lam2, v2 = _pass(ci2)
            ok = cost2 <= cost - 1e-4 * t * slope
            # Below round-off of the cost, Armijo cannot decide: accept a step that lowers ‖G‖.
            tiny = slope * t <= small_dec * (1 + cost.abs())
            ok = ok | (tiny & (gnorm(grad2) <= gn))
            if not single:
                ok = ok | ~active
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        c, ci, cost, grad, ll, lam, v = c2, ci2, cost2, grad2, ll2, lam2, v2
        gn = gnorm(grad)
    mean = sym(c @ c.mT)
    if prev is not None:
        return mean, iters, gn, gn <= tol, prev
    if stale:  # eigenpairs belong to the previous iterate: recompute them lazily for a backward
        return mean, iters, gn, gn <= tol, AIMState(c, ci, None, None, x, w, (u, v) if refine else None)
    return mean, iters, gn, gn <= tol, AIMState(c, ci, lam, v)


def aim_adjoint(state: AIMState, x: Tensor, w: Tensor, gbar: Tensor, need_x: bool, need_w: bool):
    """Implicit-function backward of the affine-invariant mean (closed-form Hessian + CG).

    At the mean ``M = C Cᵀ`` the first-order condition is ``Σ wᵢ log Yᵢ = 0`` with
    ``Yᵢ = C⁻¹ Xᵢ C⁻ᵀ``. Parametrizing ``M(H) = C e^{H} Cᵀ``, ``dM = C dH Cᵀ`` and
    ``dH = Hess⁻¹ Σ wᵢ Dlog(Yᵢ)[C⁻¹ dXᵢ C⁻ᵀ] + Hess⁻¹ Σ dwᵢ log Yᵢ``. The adjoint solves
    ``Hess λ = sym(Cᵀ Ḡ C)`` once, then ``X̄ᵢ = wᵢ C⁻ᵀ Dlog(Yᵢ)[λ] C⁻¹``, ``w̄ᵢ = ⟨λ, log Yᵢ⟩``.
    """
    c, ci = state.c, state.ci
    lam, v = state.eigenpairs()
    ll = torch.log(lam)
    rhs = sym(c.mT @ gbar @ c)
    gw = _coth_weights(ll, w)
    # Relative residual eps^(2/3) (4e-11 in float64): below the accuracy of the mean itself.
    e = eps(rhs.dtype)
    stop = max(1e3 * e, e ** (2 / 3)) * rhs.norm(dim=(-2, -1))
    n = gw.shape[-1]
    hbar = gw.sum((-3, -2, -1)) / (n * n)  # start at rhs / (tr Hess / dim), as in aim_mean
    lamb = _cg(_Hessian(v, gw), rhs, stop, maxiter=200, x0=rhs / hbar[..., None, None])
    lt = v.mT @ lamb.unsqueeze(-3) @ v  # λ in each eigenbasis (G, N, n, n)
    gx = gw_out = None
    if need_x:
        dd = Log().first_divided_difference(lam, tie_threshold(lam.dtype))
        inner = v @ (dd * lt) @ v.mT
        gx = w[..., None, None] * (ci.mT.unsqueeze(-3) @ inner @ ci.unsqueeze(-3))
        gx = sym(gx)
    if need_w:
        gw_out = (lt.diagonal(dim1=-2, dim2=-1) * ll).sum(-1)
    return gx, gw_out


# -- Bures–Wasserstein ------------------------------------------------------------------------------
def bw_grad_norm(s: Tensor, t_bar: Tensor) -> Tensor:
    """BW norm of ``Σ wᵢ log_S Xᵢ = K S + S K`` with ``K = T̄ − I``: ``sqrt(tr(K S K))``."""
    k = t_bar - torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
    return (k * (s @ k)).sum((-2, -1)).clamp_min(0).sqrt()


def bw_mean(x: Tensor, w: Tensor, init: Tensor, tol: float, max_iter: int,
            reduce: Callable[..., tuple[Tensor, ...]] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bures–Wasserstein barycentre by the Álvarez-Esteban et al. (2016) fixed point.

    Returns ``(mean, iterations, grad_norm, converged)``; ``grad_norm`` is the BW norm of the
    Riemannian gradient at the returned mean. BW lengths scale like ``√‖X‖``, so the test is
    relative: ``grad_norm <= tol · sqrt(Σ wᵢ tr Xᵢ)`` (the data's RMS BW distance from 0).
    """
    red = (lambda *ts: ts) if reduce is None else reduce  # sums over points (all-reduce if sharded)
    (scale2,) = red((w * x.diagonal(dim1=-2, dim2=-1).sum(-1)).sum(-1))
    scale = torch.sqrt(scale2)
    tol = tol * scale
    s = sym(init)
    groups = x.shape[:-3]
    iters = torch.zeros(groups, dtype=torch.long, device=x.device)
    gn = torch.full(groups, float("inf"), dtype=x.dtype, device=x.device)
    for k in range(max_iter + 1):
        a, ai = sqrtm_invsqrtm(s)
        (r,) = red(_wsum(w, sqrtm(sym(a.unsqueeze(-3) @ x @ a.unsqueeze(-3)))))
        t_bar = sym(ai @ r @ ai)
        gn = bw_grad_norm(s, t_bar)
        active = gn > tol
        if not bool(active.any()) or k == max_iter:
            break
        s_new = sym(ai @ (r @ r) @ ai)
        s = torch.where(active[..., None, None], s_new, s)
        iters = iters + active.long()
    return s, iters, gn, gn <= tol
