"""A tour of riemlearn's manifolds: points, geodesics, distances and a small optimization.

Run: ``python examples/quickstart.py`` (a few seconds on a CPU).
"""

from __future__ import annotations

import torch
from riemlearn.manifolds import SPD, Euclidean, Grassmann, PoincareBall, Product, Sphere, Stiefel


def tour(name: str, manifold, gen: torch.Generator) -> None:
    x = manifold.random_point(generator=gen, dtype=torch.float64)
    y = manifold.random_point(generator=gen, dtype=torch.float64)
    d = manifold.dist(x, y)
    mid = manifold.geodesic(x, y, 0.5)
    print(
        f"{name:<34} d(x, y) = {float(d):8.4f}   d(x, mid) = {float(manifold.dist(x, mid)):8.4f}"
        f"   mid on manifold: {bool(manifold.belongs(mid))}"
    )


def brockett(n: int = 8, p: int = 3) -> None:
    """Minimize tr(XᵀAXN) on Stiefel(n, p): the minimizer holds A's p smallest eigenvectors."""
    from riemlearn.optim import ConjugateGradient, ManifoldParameter, Problem, RiemannianAdam

    gen = torch.Generator().manual_seed(0)
    st = Stiefel(n, p)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    a = a @ a.T
    weights = torch.diag(torch.arange(p, 0, -1, dtype=torch.float64))
    best = float((torch.linalg.eigvalsh(a)[:p] * weights.diag()).sum())

    def cost(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ij,ik,...kl,lj->...", x, a, x, weights)

    x0 = st.random_point(generator=gen, dtype=torch.float64)
    result = ConjugateGradient(min_grad_norm=1e-7).solve(Problem(st, cost), x0)
    print(f"  conjugate gradient: cost {float(result.cost):.8f} (optimum {best:.8f}) after "
          f"{int(result.iterations)} iterations, gradient norm {float(result.grad_norm):.1e}")

    x = ManifoldParameter(x0.clone(), manifold=st)
    opt = RiemannianAdam([x], lr=0.05)
    for step in range(301):
        opt.zero_grad()
        loss = cost(x)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"  Riemannian Adam step {step:3d}: cost {float(loss.detach()):.6f}")
    print(f"  iterate still on Stiefel(8, 3): {bool(st.belongs(x.detach()))}")


def main() -> None:
    gen = torch.Generator().manual_seed(42)
    print("Points, geodesic midpoints and distances on each manifold")
    tour("Euclidean(3)", Euclidean(3), gen)
    tour("Sphere(3)", Sphere(3), gen)
    tour("Stiefel(5, 2), canonical metric", Stiefel(5, 2), gen)
    tour("Grassmann(5, 2)", Grassmann(5, 2), gen)
    tour("Product(Sphere(3), Euclidean(2))", Product(Sphere(3), Euclidean(2)), gen)
    for metric in ("affine_invariant", "log_euclidean", "log_cholesky", "bures_wasserstein"):
        tour(f"SPD(3), {metric}", SPD(3, metric=metric), gen)
    tour("PoincareBall(c=1), dim 2", PoincareBall(c=1.0, n=2), gen)
    print("\nBrockett cost on Stiefel(8, 3): deterministic solver and Riemannian Adam")
    brockett()


if __name__ == "__main__":
    main()
