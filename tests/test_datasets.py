"""Synthetic EEG generator: shapes, determinism, class information in the covariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.stats.datasets import make_eeg


def test_shapes_labels_and_dtype():
    X, y = make_eeg(n_trials=30, n_channels=6, n_times=128, n_classes=3, sfreq=128.0, random_state=0)
    assert X.shape == (30, 6, 128) and X.dtype == torch.float64
    assert y.dtype == torch.int64 and sorted(set(y.tolist())) == [0, 1, 2]
    assert torch.bincount(y).tolist() == [10, 10, 10]
    assert bool(torch.isfinite(X).all())
    X32, _ = make_eeg(30, 6, 128, 3, 128.0, random_state=0, dtype=torch.float32)
    assert X32.dtype == torch.float32
    torch.testing.assert_close(X32, X.float())


def test_deterministic_for_a_seed_and_numpy_output():
    a = make_eeg(10, 4, 64, random_state=3, as_numpy=True)
    b = make_eeg(10, 4, 64, random_state=3, as_numpy=True)
    c = make_eeg(10, 4, 64, random_state=4, as_numpy=True)
    assert isinstance(a[0], np.ndarray)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])


def test_class_dependent_band_power():
    # Band power of the mixed signals differs between classes; outside the bands it does not.
    X, y = make_eeg(200, 4, 256, 2, sfreq=128.0, random_state=1, class_sep=1.5, n_informative=4)
    spec = torch.fft.rfft(X, dim=-1).abs() ** 2
    freqs = torch.fft.rfftfreq(256, 1 / 128.0)
    mu = ((freqs >= 8) & (freqs <= 12))
    low = ((freqs >= 1) & (freqs <= 4))
    p_mu = spec[..., mu].sum(-1).log()
    p_low = spec[..., low].sum(-1).log()
    gap_mu = (p_mu[y == 0].mean(0) - p_mu[y == 1].mean(0)).abs().max()
    gap_low = (p_low[y == 0].mean(0) - p_low[y == 1].mean(0)).abs().max()
    assert gap_mu > 0.5
    assert gap_low < 0.3


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_trials"):
        make_eeg(0)
    with pytest.raises(ValueError, match="band"):
        make_eeg(4, sfreq=20.0)
    with pytest.raises(ValueError, match="random_state"):
        make_eeg(4, random_state="x")
