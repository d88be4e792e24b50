"""The CPU eigendecomposition split over threads (manifolds/eigh_cpu_threads.py)."""

from __future__ import annotations

import threading

import pytest
import torch
from riemlearn.manifolds import eigh_cpu_threads as ect
from riemlearn.manifolds.spectral import eigh, eigvalsh, logm

pytestmark = pytest.mark.skipif(not ect.available(), reason="torch's OpenMP runtime not found")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _spd(gen, shape, n, dtype):
    a = torch.randn(*shape, n, n, generator=gen, dtype=torch.float64)
    return (a @ a.mT + n * torch.eye(n, dtype=torch.float64)).to(dtype)


def _single_threaded(fn, *args):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,n", [((700,), 22), ((3, 150), 32), ((40,), 64)])
def test_bit_identical_to_single_threaded_lapack(two_threads, gen, dtype, shape, n):
    x = _spd(gen, shape, n, dtype)
    b = x.numel() // (n * n)
    assert ect.cpu_threads_for(b, n) == 2  # the split really happens
    w, v = ect.eigh_cpu(x)
    w0, v0 = _single_threaded(torch.linalg.eigh, x)
    assert torch.equal(w, w0) and torch.equal(v, v0)
    assert v.stride() == v0.stride()  # LAPACK's column-major layout, as torch returns it
    assert torch.equal(ect.eigvalsh_cpu(x), _single_threaded(torch.linalg.eigvalsh, x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_n_agrees_to_roundoff(two_threads, gen, dtype):
    # from n ~ 80 on, MKL inside a parallel region takes a differently blocked path than
    # the 1-thread call: same LAPACK result up to a few ulp
    x = _spd(gen, (6,), 93, dtype)
    w, v = ect.eigh_cpu(x)
    w0, v0 = _single_threaded(torch.linalg.eigh, x)
    e = torch.finfo(dtype).eps
    assert (w - w0).abs().max() <= 50 * e * w0.abs().max()
    # eigenvectors of well-separated eigenvalues, up to sign
    ok = (v * v0).sum(-2).abs().sub(1).abs().max()
    assert ok <= 1e3 * e


def test_dispatch_uses_it_and_functions_agree(two_threads, gen):
    x = _spd(gen, (600,), 24, torch.float64)
    w, v = eigh(x)
    w0, v0 = _single_threaded(torch.linalg.eigh, x)
    assert torch.equal(w, w0) and torch.equal(v, v0)
    assert torch.equal(eigvalsh(x), _single_threaded(torch.linalg.eigvalsh, x))
    assert torch.equal(logm(x), _single_threaded(logm, x))


def test_small_batches_and_one_thread_stay_serial(two_threads):
    assert ect.cpu_threads_for(10, 16) == 1  # 41k n³ units: not worth opening a region
    assert ect.cpu_threads_for(1, 512) == 1
    assert ect.cpu_threads_for(2, 64) == 1  # one small matrix per thread does not pay
    assert ect.cpu_threads_for(2, 256) == 2  # one large one does
    torch.set_num_threads(1)
    assert ect.cpu_threads_for(1024, 32) == 1


def test_thread_settings_are_left_alone(two_threads, gen):
    x = _spd(gen, (800,), 32, torch.float64)
    ect.eigh_cpu(x)
    assert torch.get_num_threads() == 2
    # the team works again for ordinary parallel ops afterwards
    y = torch.randn(600, 40, 40, generator=gen, dtype=torch.float64)
    assert torch.equal(y @ y.mT, _single_threaded(torch.matmul, y, y.mT))


def test_expanded_and_noncontiguous_input(two_threads):
    lam = torch.arange(1.0, 9.0, dtype=torch.float64)
    x = torch.diag(lam).expand(3000, 8, 8)  # stride 0 over the batch
    assert ect.cpu_threads_for(3000, 8) == 2
    w, _ = ect.eigh_cpu(x)
    assert torch.equal(w, lam.expand(3000, 8))
    y = torch.randn(32, 32, 900, dtype=torch.float64).permute(2, 0, 1)
    y = y + y.mT
    assert torch.equal(ect.eigh_cpu(y)[0], _single_threaded(torch.linalg.eigh, y)[0])


def test_failure_reports_torchs_error_with_the_global_index(two_threads, gen):
    x = _spd(gen, (800,), 20, torch.float64)
    x[700, 0, 0] = float("nan")  # in the second chunk
    with pytest.raises(RuntimeError, match="Batch element 700"):
        ect.eigh_cpu(x)
    with pytest.raises(RuntimeError, match="Batch element 700"):
        _single_threaded(torch.linalg.eigh, x)


def test_concurrent_callers_get_their_own_results(two_threads, gen):
    xs = [_spd(gen, (500,), 20, torch.float64) * (i + 1) for i in range(3)]
    out: dict[int, torch.Tensor] = {}

    def run(i):
        out[i] = ect.eigh_cpu(xs[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        assert torch.equal(out[i], _single_threaded(torch.linalg.eigh, xs[i])[0])


def test_under_vmap_torchs_batching_rule_is_used(two_threads, gen):
    x = _spd(gen, (4, 300), 12, torch.float64)
    w = torch.func.vmap(eigvalsh)(x)
    assert torch.allclose(w, torch.linalg.eigvalsh(x), rtol=0, atol=1e-12)
    wv, vv = torch.func.vmap(eigh)(x)
    assert torch.allclose(vv @ torch.diag_embed(wv) @ vv.mT, x, rtol=0, atol=1e-10)
    seen = []
    torch.func.vmap(lambda t: seen.append(ect._splittable(t)) or t.sum())(x)
    assert seen == [False]  # the wrapped per-example tensor is left to torch
    assert ect._splittable(x)  # the plain tensor itself would be split


def test_inside_inference_mode_the_split_still_runs(two_threads, gen):
    x = _spd(gen, (700,), 22, torch.float64)
    with torch.inference_mode():
        xi = x.clone()
        out = ect._run_split(xi, True)  # the team's threads write inference tensors too
    assert out is not None
    w0, v0 = _single_threaded(torch.linalg.eigh, x)
    assert torch.equal(out[0], w0) and torch.equal(out[1], v0)


def test_active_modes_and_subclasses_are_left_to_torch(two_threads, gen):
    from torch.utils.flop_counter import FlopCounterMode

    x = _spd(gen, (700,), 22, torch.float64)
    assert ect._splittable(x)
    with FlopCounterMode(display=False):  # a dispatch mode sees only the calling thread
        assert not ect._splittable(x)
        w, _ = eigh(x)
    assert torch.equal(w, _single_threaded(torch.linalg.eigh, x)[0])
    assert not ect._splittable(torch.nn.Parameter(x.clone(), requires_grad=False))
