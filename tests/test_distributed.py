"""riemlearn.distributed on 3 gloo processes (loopback), against single-process answers.

One spawn runs every check (tests/_dist_workers.py) with uneven shards (7, 13, 11 points);
the tests below compare its saved results with the same computations in this process.
"""

from __future__ import annotations

import _dist_workers as W
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from riemlearn.distributed import ring_mixing_matrix, spawn_local
from riemlearn.distributed.decentralized import check_mixing_matrix
from riemlearn.optim import RiemannianAdam
from riemlearn.stats import frechet_mean as single_mean

WORLD = 3

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is unavailable")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    spawn_local(W.worker, WORLD, (str(out),), timeout=300)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _cat(parts, dim):
    return torch.cat(parts, dim=dim)


@pytest.mark.parametrize("name", [c[0] for c in W.mean_cases()])
def test_mean_equals_single_process(runs, name):
    case = {c[0]: c for c in W.mean_cases()}[name]
    _, m, x, w = case
    ref = single_mean(x, m, w, **W.MEAN_KW)
    for r in range(WORLD):
        got = runs[r][f"mean/{name}"]
        assert torch.equal(got, runs[0][f"mean/{name}"])  # every rank holds the same mean
        assert (got - ref).abs().max() <= 1e-12


@pytest.mark.parametrize("name", [c[0] for c in W.mean_cases()])
def test_one_process_is_the_single_process_algorithm(name):
    """Without a process group the distributed loops are the stats loops, step for step."""
    from riemlearn.distributed import frechet_mean

    _, m, x, w = {c[0]: c for c in W.mean_cases()}[name]
    got, info = frechet_mean(x, m, w, return_info=True)
    ref, rinfo = single_mean(x, m, w, return_info=True)
    torch.testing.assert_close(got, ref, atol=1e-15, rtol=0)
    assert torch.equal(info.iterations, rinfo.iterations)


def test_closed_form_mean_gradient(runs):
    _, m, x, _ = W.mean_cases()[1]
    xr = x.clone().requires_grad_(True)
    (single_mean(xr, m) * W.le_cotangent()).sum().backward()
    got = _cat([runs[r]["le_grad"] for r in range(WORLD)], 1)
    torch.testing.assert_close(got, xr.grad, atol=1e-12, rtol=0)


def test_iterative_mean_refuses_autograd(runs):
    for r in range(WORLD):
        assert "not differentiable" in runs[r]["grad_iterative"]


def test_sync_batchnorm_refit_uses_all_ranks(runs):
    from riemlearn.layers import refit_batchnorm_stats

    x, _ = W.bn_inputs()
    layer = refit_batchnorm_stats(W.bn_layer("aim"), x)
    for r in range(WORLD):
        rm, rv = runs[r]["bn/refit"]
        torch.testing.assert_close(rm, layer.running_mean, atol=1e-12, rtol=0)
        torch.testing.assert_close(rv, layer.running_var, atol=1e-12, rtol=0)


def test_bad_input_raises_on_every_rank(runs):
    assert "NaN" in runs[WORLD - 1]["bad_input"]
    for r in range(WORLD - 1):
        assert "another rank" in runs[r]["bad_input"]


@pytest.mark.parametrize("kind", W.BN_KINDS)
def test_sync_batchnorm_equals_full_batch(runs, kind):
    x, c = W.bn_inputs()
    layer = W.bn_layer(kind)
    with torch.no_grad():
        layer.bias.copy_(W.SPD(4).random_point(generator=torch.Generator().manual_seed(3), dtype=W.DT))
    xr = x.clone().requires_grad_(True)
    for step in range(2):
        out = layer(xr)
        if step == 0:
            (out * c).sum().backward()
    assert runs[0][f"bn/{kind}/type"].startswith("Sync")
    torch.testing.assert_close(_cat([runs[r][f"bn/{kind}/out"] for r in range(WORLD)], 0), out.detach(),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(_cat([runs[r][f"bn/{kind}/xgrad"] for r in range(WORLD)], 0), xr.grad,
                               atol=1e-10, rtol=1e-10)
    for r in range(WORLD):
        torch.testing.assert_close(runs[r][f"bn/{kind}/biasgrad"], layer.bias.grad, atol=1e-10, rtol=1e-10)
        rm, rv = runs[r][f"bn/{kind}/running"]
        torch.testing.assert_close(rm, layer.running_mean, atol=1e-12, rtol=0)
        torch.testing.assert_close(rv, layer.running_var, atol=1e-12, rtol=0)


def test_ddp_riemannian_adam_identical_and_equal_to_single_process(runs):
    x, y = W.ddp_data()
    model = W.ddp_model(0)
    opt = RiemannianAdam(model.parameters(), lr=0.05)
    for s in range(4):
        opt.zero_grad()
        F.cross_entropy(model(x[s]), y[s]).backward()
        opt.step()
    ref = dict(model.named_parameters())
    p0 = runs[0]["ddp/params"]
    assert "features.0.weight" in p0  # the BiMap weight (Stiefel)
    for r in range(WORLD):
        for n, p in runs[r]["ddp/params"].items():
            assert torch.equal(p, p0[n]), n  # bitwise identical on every rank
            torch.testing.assert_close(p, ref[n].detach(), atol=1e-12, rtol=0)
            # resumed from the rank-0 checkpoint into a fresh model + optimizer: same trajectory
            # (to rounding: DDP re-buckets its gradient all-reduce after the first iteration)
            torch.testing.assert_close(runs[r]["ddp/resumed"][n], p, atol=1e-12, rtol=0)
        for n, b in runs[r]["ddp/buffers"].items():
            torch.testing.assert_close(b, dict(model.named_buffers())[n], atol=1e-12, rtol=0)
    w = p0["features.0.weight"]
    eye = torch.eye(w.shape[-1], dtype=w.dtype)
    assert (w.mT @ w - eye).abs().max() <= 1e-12


def test_decentralized_pca_reaches_centralized_subspace(runs):
    a = W.pca_covariances(WORLD).sum(0)
    _, vecs = torch.linalg.eigh(a)
    u = vecs[:, -W.PCA_P:]
    for r in range(WORLD):
        res = runs[r]["pca"]
        assert res.converged and res.iterations < 400
        assert (res.x @ res.x.T - u @ u.T).norm() <= 1e-7  # projector distance
        assert res.feasibility <= 1e-12 and res.consensus_error <= 1e-9


def test_process_group_argument(runs):
    _, m, x, w = W.mean_cases()[4]
    ref = single_mean(x, m, w, **W.MEAN_KW)
    assert "sub/mean" not in runs[1]
    u = torch.linalg.eigh(W.pca_covariances(2).sum(0))[1][:, -W.PCA_P:]
    for r in (0, 2):
        assert (runs[r]["sub/mean"] - ref).abs().max() <= 1e-12
        res = runs[r]["sub/pca"]
        assert res.converged and (res.x @ res.x.T - u @ u.T).norm() <= 1e-7


def test_mixing_matrix_checks():
    w = ring_mixing_matrix(5)
    torch.testing.assert_close(w.sum(0), torch.ones(5, dtype=w.dtype))
    assert torch.equal(w, w.T) and int((w[0] > 0).sum()) == 3
    with pytest.raises(ValueError, match="sum to 1"):
        check_mixing_matrix(torch.eye(3) * 0.5, 3)
    with pytest.raises(ValueError, match="symmetric"):
        check_mixing_matrix(torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]), 3)


def test_simulated_agents_match_the_theory():
    """The same iteration with dense mixing in one process: tracking reaches the centralized
    subspace with a constant step, the paper's untracked update only a neighbourhood of it."""
    from riemlearn.distributed.decentralized import simulate

    covs = W.pca_covariances(WORLD)
    u = torch.linalg.eigh(covs.sum(0))[1][:, -W.PCA_P:]
    costs = [lambda x, a=a: -0.5 * (x * (a @ x)).sum() for a in covs]
    gaps = {}
    for tracking in (True, False):
        x, _, _, _ = simulate(costs, W.pca_x0(), ring_mixing_matrix(WORLD), step=0.1, max_iter=400,
                              tracking=tracking)
        gaps[tracking] = max(float((xi @ xi.T - u @ u.T).norm()) for xi in x)
        eye = torch.eye(W.PCA_P, dtype=x.dtype)
        assert (x.mT @ x - eye).abs().max() <= 1e-12  # feasible every step (retraction)
    assert gaps[True] <= 1e-7 < gaps[False]
