"""The Grassmann manifold ``Gr(n, p)`` of ``p``-dimensional subspaces of ``R^n``.

A subspace is represented by an orthonormal basis ``X`` (``(*batch, n, p)``, ``XᵀX = I``);
tangent vectors are horizontal (``XᵀU = 0``). The closed forms of Edelman, Arias & Smith
(SIMAX 1998) are written as spectral functions of ``p × p`` symmetric matrices
(:mod:`.trig_fns`) instead of SVDs, so values and gradients stay finite at zero angles
(``y`` spanning the same subspace as ``x``) where an SVD backward divides by zero:

* ``exp(X, U) = X cos(√(UᵀU)) + U sinc(√(UᵀU))`` (``= XV cos Σ Vᵀ + P sin Σ Vᵀ`` for
  ``U = PΣVᵀ``);
* ``log(X, Y) = B h(BᵀB)`` with ``M = XᵀY``, ``B = (Y − XM) M^{-1} = P tan Θ Vᵀ`` and
  ``h(tan²θ) = θ / tan θ``;
* ``dist(X, Y)² = Σ θ_i² = tr(atan(√(BᵀB))²)``: the principal angles.

Working with ``tan θ`` keeps full accuracy up to angles close to ``π/2`` (the cut locus,
where ``M`` becomes singular and ``log`` is undefined; ``dist`` switches to ``sin²θ`` there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Manifold, Metric, as_shape, randn, safe_sqrt
from .spectral import sym_functions
from .stiefel import check_sizes, orthonormality_violation, polar, qr_retraction
from .tolerance import eps
from .trig_fns import ASIN_SQ, ATAN_RATIO, ATAN_SQ, COS_SQRT, SINC_SQRT, VERSIN_SQRT

__all__ = ["Grassmann", "GrassmannMetric"]


def _tr(a: Tensor) -> Tensor:
    return a.transpose(-1, -2)


def _horizontal(x: Tensor, u: Tensor) -> Tensor:
    return u - x @ (_tr(x) @ u)


def grassmann_exp(x: Tensor, u: Tensor) -> Tensor:
    """Exponential map ``X cos(√(UᵀU)) + U sinc(√(UᵀU))``, ``(*batch, n, p)``."""
    c, s = sym_functions(_tr(u) @ u, [COS_SQRT, SINC_SQRT])
    return x @ c + u @ s


# When the smallest singular value of M (cos of the largest angle) is below this multiple of
# p·eps, M is numerically singular and dist uses sin² of the angles instead of tan².
_COS_MIN = 100.0


def _tan_factor(m: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """``B = Z M^{-1} = P tan Θ Vᵀ`` and whether ``M`` was invertible, per item."""
    b, info = torch.linalg.solve_ex(_tr(m), _tr(z))
    return _tr(b), info == 0


def grassmann_log(x: Tensor, y: Tensor) -> Tensor:
    """Logarithm: the horizontal ``U`` at ``X`` with ``exp(X, U)`` spanning ``span(Y)``.

    Defined while every principal angle is below ``π/2`` (``XᵀY`` invertible); raises
    ``ValueError`` at exactly ``π/2`` (the cut locus). The result does not depend on the basis
    chosen for ``span(Y)``.
    """
    m = _tr(x) @ y
    b, ok = _tan_factor(m, y - x @ m)
    if not bool(ok.all()):
        raise ValueError("Grassmann log: xᵀy is singular (a principal angle equals π/2): y is on the "
                         "cut locus of x and the logarithm is not unique")
    (h,) = sym_functions(_tr(b) @ b, [ATAN_RATIO])
    return _horizontal(x, b @ h)


def _trace(a: Tensor) -> Tensor:
    return torch.diagonal(a, dim1=-2, dim2=-1).sum(-1)


def grassmann_dist(x: Tensor, y: Tensor) -> Tensor:
    """Geodesic distance ``‖θ‖₂`` (principal angles ``θ``), ``(*batch,)``.

    ``θ² = atan(√(BᵀB))²`` (accurate for all angles below ``π/2``); items where ``M`` is
    numerically singular (an angle within ``~100 p eps`` of ``π/2``) use ``asin(√(ZᵀZ))²``.
    """
    m = _tr(x) @ y
    z = y - x @ m
    with torch.no_grad():
        ok = torch.linalg.svdvals(m)[..., -1] > _COS_MIN * m.shape[-1] * eps(m.dtype)
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    b, _ = _tan_factor(torch.where(ok[..., None, None], m, eye), z)
    (t2,) = sym_functions(_tr(b) @ b, [ATAN_SQ])
    sq = _trace(t2)
    if not bool(ok.all()):
        (s2,) = sym_functions(_tr(z) @ z, [ASIN_SQ])
        sq = torch.where(ok, sq, _trace(s2))
    return safe_sqrt(sq)


def grassmann_transport(x: Tensor, y: Tensor, v: Tensor) -> Tensor:
    """Parallel transport of horizontal ``v`` at ``x`` along the geodesic to ``span(y)``.

    Edelman–Arias–Smith: ``τv = v − XV sin Σ Pᵀv − P(I − cos Σ)Pᵀv`` for ``log(X, Y) = PΣVᵀ``,
    i.e. ``v − X b(UᵀU) Uᵀv − U a(UᵀU) Uᵀv`` with ``b = sinc√·``, ``a = (1 − cos√·)/·``. The
    result is horizontal at ``Ỹ = exp(X, U)``; it is carried to the basis ``y`` of the same
    subspace by ``Ỹ = y O`` → ``τv Oᵀ`` with ``Oᵀ = ỸᵀY``.
    """
    u = grassmann_log(x, y)
    c, b, a = sym_functions(_tr(u) @ u, [COS_SQRT, SINC_SQRT, VERSIN_SQRT])
    w = _tr(u) @ v
    tv = v - x @ (b @ w) - u @ (a @ w)
    y_tilde = x @ c + u @ b
    return tv @ (_tr(y_tilde) @ y)


class GrassmannMetric(Metric):
    """The canonical (quotient of the Frobenius) metric on ``Gr(n, p)``.

    Parameters
    ----------
    retraction : {"polar", "qr"}
        ``polar``: ``(X + U)(I + UᵀU)^{-1/2}``; ``qr``: Q factor of ``X + U``.
    """

    name = "canonical"
    ndim = 2

    # Gyro structure (Nguyen & Yang): functional core in manifolds/grassmann_gyro.py; nothing
    # else in this class depends on it. Identity: ``I_{n,p}`` (``Grassmann.identity``).
    has_gyro = True

    def __init__(self, retraction: str = "polar") -> None:
        if retraction not in ("polar", "qr"):
            raise ValueError(f"retraction must be 'polar' or 'qr', got {retraction!r}")
        self.retraction = retraction

    def _params(self) -> tuple:
        return (self.retraction,)

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return (u * v).sum((-2, -1))

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        return grassmann_exp(x, u)

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        return grassmann_log(x, y)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return grassmann_dist(x, y)

    def retract(self, x: Tensor, u: Tensor) -> Tensor:
        if self.retraction == "qr":
            return qr_retraction(x, u)
        return polar(x + u)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return grassmann_transport(x, y, v)

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        return _horizontal(x, egrad)

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        return self.ehess_to_rhess_at(x, egrad)(ehess, u)

    def ehess_to_rhess_at(self, x: Tensor, egrad: Tensor):
        """``(ehess, u) -> H_X(ehess) − U Xᵀ egrad``, ``Xᵀ egrad`` computed once."""
        s = _tr(x) @ egrad
        return lambda ehess, u: _horizontal(x, ehess) - u @ s

    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        """``X ⊕ Y = expm(Ω(log_I X)) Y`` (see :mod:`.grassmann_gyro`)."""
        from .grassmann_gyro import gyro_add

        return gyro_add(x, y)

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        """``r ⊙ X = exp_I(r log_I X)`` (canonical basis)."""
        from .grassmann_gyro import gyro_scalar

        return gyro_scalar(r, x)

    def gyro_inv(self, x: Tensor) -> Tensor:
        """``⊖X = (−1) ⊙ X`` (canonical basis)."""
        from .grassmann_gyro import gyro_inv

        return gyro_inv(x)


class Grassmann(Manifold):
    """Grassmann manifold ``Gr(n, p)`` in the orthonormal-basis representation, ``(*batch, n, p)``.

    Points are compared as subspaces: two bases ``X`` and ``XQ`` (``Q`` orthogonal) are the same
    point (compare projectors ``XXᵀ``). ``exp(x, log(x, y))`` spans ``span(y)``; it equals ``y``
    as a matrix when ``xᵀy`` is symmetric positive definite (e.g. ``y = exp(x, u)``).

    Parameters
    ----------
    n, p : int
        Ambient dimension and subspace dimension, ``1 <= p <= n``.
    retraction : {"polar", "qr"}
        Retraction of the metric.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Grassmann
    >>> m = Grassmann(4, 2)
    >>> x = m.identity(dtype=torch.float64)
    >>> y = torch.tensor([[1.0, 0], [0, 0], [0, 1], [0, 0]], dtype=torch.float64)
    >>> round(float(m.dist(x, y)), 6)  # principal angles 0 and π/2
    1.570796
    """

    name = "grassmann"
    ndim = 2

    def __init__(self, n: int, p: int, retraction: str = "polar") -> None:
        self.n, self.p = check_sizes(n, p)
        super().__init__(GrassmannMetric(retraction))

    def _params(self) -> tuple:
        return (self.n, self.p, self.metric)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n, self.p)

    def project_point(self, x: Tensor) -> Tensor:
        """Polar factor of ``x`` (an orthonormal basis of its column space)."""
        return polar(x)

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        """Horizontal projection ``U − X XᵀU``."""
        return _horizontal(x, u)

    def point_violation(self, x: Tensor) -> Tensor:
        return orthonormality_violation(x)

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        scale = torch.linalg.matrix_norm(u).clamp_min(1.0)
        return torch.linalg.matrix_norm(_tr(x) @ u) / scale

    def violation_description(self) -> str:
        return "‖XᵀX − I‖_F"

    def random_point(self, *batch: int, generator=None, dtype=None, device=None) -> Tensor:
        """Uniformly distributed subspaces (orthonormalized Gaussian bases).

        Each is returned in its canonical basis (top ``p × p`` block symmetric positive definite,
        :func:`.grassmann_gyro.canonical_basis`), so gyro identities hold as matrices.
        """
        from .grassmann_gyro import canonical_basis

        z = randn(as_shape(batch) + (self.n, self.p), generator, dtype, device)
        return canonical_basis(qr_retraction(z, torch.zeros_like(z))).contiguous()

    def identity(self, *batch: int, dtype=None, device=None) -> Tensor:
        """The subspace spanned by the first ``p`` coordinate vectors, ``[I_p; 0]``."""
        e = torch.eye(self.n, self.p, dtype=dtype, device=device)
        return e.expand(as_shape(batch) + (self.n, self.p)).clone()

    @staticmethod
    def projector(x: Tensor) -> Tensor:
        """Orthogonal projector ``XXᵀ`` onto the subspace, ``(*batch, n, n)``."""
        return x @ _tr(x)
