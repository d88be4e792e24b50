"""Fréchet means and barycentric subspace analysis (BSA) on the sphere S², with a picture.

Points are drawn in three clusters of unequal sizes, so the best-fitting great circle need not
pass through their Fréchet mean. The script

1. computes the Fréchet mean (Karcher iterations: gradient norm per iteration) and compares it
   with the normalized Euclidean mean;
2. fits the 1-D principal subspaces: tangent PCA (the geodesic through the mean along the first
   principal direction of the log-mapped data), exact PGA (residual criterion) and BSA (the great
   circle through two reference points minimizing the unexplained variance, Pennec 2018; forward:
   the first reference is the mean; joint: both references free, so the circle need not pass
   through the mean), and reports each one's unexplained variance ``Σ d²(xᵢ, π xᵢ) / N`` (closest-point
   distance to the great circle);
3. draws the sphere with the data, the means, the BSA reference points and the three circles.

    python examples/sphere_means_bsa.py --out sphere_bsa.png
    python examples/sphere_means_bsa.py --fast
"""

from __future__ import annotations

import argparse
import math

import torch
from riemlearn.manifolds import Sphere
from riemlearn.stats import PGA, TangentPCA, frechet_mean

try:  # barycentric subspace analysis (riemlearn.stats.bsa)
    from riemlearn.stats import BSA
except ImportError:  # pragma: no cover - older checkouts
    BSA = None

F64 = torch.float64


def sample(n: int, gen: torch.Generator) -> torch.Tensor:
    """Three clusters of unequal sizes (1/2, 1/3, 1/6 of the points) around three directions,
    Gaussian noise of sd 0.12 in R³ projected onto the sphere."""
    centres = torch.tensor([[1.0, 0.0, 0.3], [0.0, 1.0, 0.9], [-0.6, 0.5, -0.2]], dtype=F64)
    sizes = (n // 2, n // 3, n - n // 2 - n // 3)
    x = torch.cat([c + 0.12 * torch.randn(k, 3, generator=gen, dtype=F64) for c, k in zip(centres, sizes,
                                                                                          strict=True)])
    return x / x.norm(dim=-1, keepdim=True)


def circle_residual(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared geodesic distance from points x to the great circle through a and b."""
    normal = torch.linalg.cross(a, b)
    normal = normal / normal.norm()
    return float(torch.arcsin((x @ normal).abs().clamp(max=1.0)).pow(2).mean())


def great_circle(a: torch.Tensor, b: torch.Tensor, n: int = 200) -> torch.Tensor:
    """Points (n, 3) of the whole great circle through a and b."""
    u = a / a.norm()
    v = b - (b @ u) * u
    v = v / v.norm()
    t = torch.linspace(0, 2 * math.pi, n, dtype=F64)[:, None]
    return t.cos() * u + t.sin() * v


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="number of points (default 300, 80 with --fast)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="sphere_bsa.png", help="figure path")
    p.add_argument("--fast", action="store_true")
    args = p.parse_args(argv)
    gen = torch.Generator().manual_seed(args.seed)
    n = args.n or (60 if args.fast else 200)
    s2 = Sphere(3)
    x = sample(n, gen)

    mean, info = frechet_mean(x, s2, return_info=True)
    euclid = x.mean(0) / x.mean(0).norm()
    print(f"{n} points on S²")
    print(f"Fréchet mean        {[round(v, 4) for v in mean.tolist()]}  after {int(info.iterations)} "
          f"iterations, gradient norm {float(info.grad_norm):.1e}")
    print(f"normalized Euclidean mean {[round(v, 4) for v in euclid.tolist()]}  "
          f"(d to Fréchet mean {math.degrees(float(s2.dist(mean, euclid))):.2f}°)")
    var = float(s2.dist(x, mean.expand_as(x)).pow(2).mean())
    print(f"Fréchet variance {var:.4f} rad²")

    tpca = TangentPCA(1, s2).fit(x)
    v_tpca = tpca.components_[0]
    pga = PGA(1, s2, method="exact", criterion="residual").fit(x)
    rows = {"tangent PCA": (tpca.reference_, tpca.reference_ + v_tpca),
            "exact PGA": (pga.mean_, pga.mean_ + pga.components_[0])}
    refs = None
    if BSA is not None:
        bsa_f = BSA(1, s2, method="forward").fit(x)
        rows["BSA forward"] = tuple(bsa_f.references_)
        bsa = BSA(1, s2, method="joint").fit(x)
        refs = bsa.references_
        rows["BSA joint"] = (refs[0], refs[1])
    print(f"\n{'1-D subspace (great circle)':<28} {'unexplained variance (rad²)':>28} {'of total':>9}")
    results = {"frechet_mean": mean, "grad_norm": float(info.grad_norm), "variance": var}
    for name, (a, b) in rows.items():
        r = circle_residual(x, a, b)
        results[name] = r
        print(f"{name:<28} {r:>28.6f} {100 * r / var:>8.2f}%")
    if refs is not None:
        print(f"(BSA joint's own unexplained variance: {float(bsa.unexplained_variance_[1]):.6f})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 5.2))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    u, w = torch.meshgrid(torch.linspace(0, 2 * math.pi, 40), torch.linspace(0, math.pi, 20), indexing="ij")
    ax.plot_surface((u.cos() * w.sin()).numpy(), (u.sin() * w.sin()).numpy(), w.cos().numpy(),
                    color="0.9", alpha=0.25, linewidth=0)
    ax.scatter(*x.T.numpy(), s=6, color="tab:blue", alpha=0.6, label="data")
    colors = {"tangent PCA": "tab:orange", "exact PGA": "tab:green", "BSA forward": "tab:red",
              "BSA joint": "tab:purple"}
    styles = {"tangent PCA": "-", "exact PGA": "--", "BSA forward": ":", "BSA joint": "-."}
    for name, (a, b) in rows.items():
        c = great_circle(a, b)
        ax.plot(*c.T.numpy(), color=colors[name], ls=styles[name], lw=2, label=name)
    ax.scatter(*mean.numpy(), s=120, marker="*", color="black", label="Fréchet mean", depthshade=False)
    ax.scatter(*euclid.numpy(), s=60, marker="x", color="purple", label="normalized Euclidean mean",
               depthshade=False)
    if refs is not None:
        ax.scatter(*refs.T.numpy(), s=70, marker="D", color="tab:purple", label="BSA joint references",
                   depthshade=False)
    ax.view_init(elev=35, azim=20)
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Data on S², means and 1-D principal subspaces", fontsize=10)

    # Right: the same in the tangent plane at the Fréchet mean (log map, azimuthal equidistant):
    # geodesics through the mean are straight lines there, other great circles are curves.
    ax2 = fig.add_subplot(1, 2, 2)
    e1 = v_tpca / v_tpca.norm()
    e2 = torch.linalg.cross(mean, e1)

    def flat(pts: torch.Tensor) -> torch.Tensor:
        lg = s2.log(mean.expand_as(pts), pts)
        return torch.stack([lg @ e1, lg @ e2], -1)

    xy = flat(x)
    ax2.scatter(xy[:, 0], xy[:, 1], s=6, color="tab:blue", alpha=0.6, label="data")
    for name, (a, b) in rows.items():
        c = great_circle(a, b, 400)
        c = c[s2.dist(mean.expand_as(c), c) < math.radians(150)]
        cxy = flat(c)
        jump = torch.nonzero((cxy[1:] - cxy[:-1]).norm(dim=-1) > 0.5).squeeze(1) + 1
        for seg in torch.tensor_split(cxy, jump.tolist()):
            ax2.plot(seg[:, 0], seg[:, 1], color=colors[name], ls=styles[name], lw=2,
                     label=f"{name}: residual {results[name]:.4f}" if seg is not None else None)
    handles, labels = ax2.get_legend_handles_labels()
    keep = dict(zip(labels, handles, strict=True))
    ax2.scatter(0, 0, s=120, marker="*", color="black", zorder=5)
    if refs is not None:
        rxy = flat(refs)
        ax2.scatter(rxy[:, 0], rxy[:, 1], s=70, marker="D", color="tab:purple", zorder=5)
    ax2.legend(keep.values(), keep.keys(), fontsize=7, loc="lower left")
    ax2.set_aspect("equal")
    lim = float(xy.abs().max()) * 1.15
    ax2.set_xlim(-lim, lim)
    ax2.set_ylim(-lim, lim)
    ax2.set_xlabel("log map at the Fréchet mean, along tangent PC 1 (rad)")
    ax2.set_ylabel("orthogonal tangent direction (rad)")
    ax2.set_title(f"Tangent plane at the Fréchet mean (variance {var:.3f} rad²)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"\nfigure written to {args.out}")
    return results


if __name__ == "__main__":
    main()
