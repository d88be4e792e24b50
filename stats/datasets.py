"""Synthetic EEG-like data with class-dependent band power (for tests, examples and benchmarks).

:func:`make_eeg` draws, for every trial, ``n_sources`` latent sources made of pink (1/f) noise
plus band-limited oscillations in the mu (8–12 Hz) and beta (18–26 Hz) bands, and mixes them
into ``n_channels`` sensors with one fixed random mixing matrix (plus a little white sensor
noise). The band power of a few *informative* sources depends on the class (event-related
(de)synchronisation in motor imagery, in caricature); every source also has a random trial-to-
trial power jitter, which sets the difficulty. Because the classes differ by source powers
seen through a common mixing, the class information lives in the spatial covariance — what
MDM and tangent-space classifiers use.

Everything is drawn from one seeded CPU :class:`torch.Generator`, so the output is identical for
a given ``random_state`` whatever ``dtype`` and ``device`` are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["make_eeg"]


def _generator(random_state: int | torch.Generator | None) -> torch.Generator:
    if isinstance(random_state, torch.Generator):
        if random_state.device.type != "cpu":
            raise ValueError("random_state must be an int or a CPU torch.Generator")
        return random_state
    g = torch.Generator()
    if random_state is None:
        g.seed()
    elif isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        g.manual_seed(int(random_state))
    else:
        raise ValueError(f"random_state must be None, an int or a torch.Generator, got {random_state!r}")
    return g


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _band_shape(freqs: Tensor, lo: float, hi: float, edge: float = 1.0) -> Tensor:
    """Smooth (raised-cosine edged) pass band ``[lo, hi]`` Hz on the rFFT grid."""
    rise = ((freqs - (lo - edge)) / edge).clamp(0, 1)
    fall = (((hi + edge) - freqs) / edge).clamp(0, 1)
    return torch.sin(0.5 * math.pi * torch.minimum(rise, fall)) ** 2


def make_eeg(
    n_trials: int = 100,
    n_channels: int = 8,
    n_times: int = 256,
    n_classes: int = 2,
    sfreq: float = 128.0,
    random_state: int | torch.Generator | None = None,
    *,
    n_sources: int | None = None,
    n_informative: int | None = None,
    class_sep: float = 1.0,
    jitter: float = 0.5,
    bands: Sequence[tuple[float, float]] = ((8.0, 12.0), (18.0, 26.0)),
    band_amplitude: float = 2.0,
    sensor_noise: float = 0.1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    as_numpy: bool = False,
) -> tuple[Any, Any]:
    """Simulate EEG trials whose class shows in the band power of mixed sources.

    Parameters
    ----------
    n_trials, n_channels, n_times : int
        Output shape ``(n_trials, n_channels, n_times)``.
    n_classes : int
        Number of classes; labels ``0 .. n_classes-1`` are balanced (up to one) and shuffled.
    sfreq : float
        Sampling frequency in Hz (the bands must lie below ``sfreq / 2``).
    random_state : int, torch.Generator or None
        Seed (or CPU generator) for every draw; ``None`` draws a fresh seed.
    n_sources : int, optional
        Number of latent sources (default ``n_channels``).
    n_informative : int, optional
        Sources whose band power depends on the class (default ``max(2, n_sources // 4)``).
    class_sep : float
        Standard deviation of the class-specific log-amplitude offsets of informative sources
        (larger is easier).
    jitter : float
        Standard deviation of the per-trial, per-source log-amplitude jitter (larger is harder).
    bands : sequence of (low, high)
        Frequency bands (Hz) carrying the class-dependent oscillations (mu and beta by default).
    band_amplitude : float
        Amplitude of the band oscillations relative to the unit-variance pink background.
    sensor_noise : float
        Standard deviation of white noise added at the sensors (relative to unit sources).
    dtype, device : torch dtype and device of the output.
    as_numpy : bool
        Return numpy arrays instead of tensors.

    Returns
    -------
    X : Tensor or ndarray, shape (n_trials, n_channels, n_times)
    y : Tensor (int64) or ndarray, shape (n_trials,)

    Examples
    --------
    >>> from riemlearn.stats import make_eeg
    >>> X, y = make_eeg(n_trials=6, n_channels=4, n_times=128, random_state=0)
    >>> tuple(X.shape), y.tolist()
    ((6, 4, 128), [0, 0, 1, 1, 1, 0])
    """
    n_trials = _positive_int(n_trials, "n_trials")
    n_channels = _positive_int(n_channels, "n_channels")
    n_times = _positive_int(n_times, "n_times", 2)
    n_classes = _positive_int(n_classes, "n_classes")
    n_src = n_channels if n_sources is None else _positive_int(n_sources, "n_sources")
    n_inf = max(2, n_src // 4) if n_informative is None else _positive_int(n_informative, "n_informative", 0)
    n_inf = min(n_inf, n_src)
    if not (isinstance(sfreq, (int, float)) and sfreq > 0 and math.isfinite(sfreq)):
        raise ValueError(f"sfreq must be a positive number, got {sfreq!r}")
    for name, v in (("class_sep", class_sep), ("jitter", jitter), ("band_amplitude", band_amplitude),
                    ("sensor_noise", sensor_noise)):
        if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    bands = [(float(lo), float(hi)) for lo, hi in bands]
    for lo, hi in bands:
        if not (0 < lo < hi < sfreq / 2):
            raise ValueError(f"band ({lo}, {hi}) Hz must satisfy 0 < low < high < sfreq/2 = {sfreq / 2}")
    g = _generator(random_state)
    f64 = torch.float64

    def draw(*shape: int) -> Tensor:
        return torch.randn(shape, generator=g, dtype=f64)

    # Fixed structure: mixing matrix and class-specific log-amplitudes of the informative sources.
    mixing = draw(n_channels, n_src) / math.sqrt(n_src)
    n_bands = len(bands)
    class_logamp = torch.zeros(n_classes, n_bands, n_src, dtype=f64)
    class_logamp[:, :, :n_inf] = class_sep * draw(n_classes, n_bands, n_inf)
    labels = torch.arange(n_trials) % n_classes
    labels = labels[torch.randperm(n_trials, generator=g)]

    # Spectral shaping on the rFFT grid.
    freqs = torch.fft.rfftfreq(n_times, d=1.0 / sfreq, dtype=f64)
    n_freq = freqs.shape[0]
    pink = 1.0 / freqs.clamp_min(freqs[1] if n_freq > 1 else 1.0).sqrt()
    pink[0] = 0.0  # no DC

    def shaped(weights: Tensor) -> Tensor:
        """Gaussian noise (n_trials, n_src, n_times) with spectrum ∝ weights, unit variance."""
        spec = torch.complex(draw(n_trials, n_src, n_freq), draw(n_trials, n_src, n_freq))
        sig = torch.fft.irfft(spec * weights, n=n_times)
        return sig / (weights.square().sum() * 4 / n_times**2).sqrt().clamp_min(1e-300)

    sources = shaped(pink)
    trial_logamp = jitter * draw(n_trials, n_bands, n_src)
    for b, (lo, hi) in enumerate(bands):  # loop over the (few) bands, not over trials
        amp = torch.exp(class_logamp[labels, b] + trial_logamp[:, b])  # (n_trials, n_src)
        sources = sources + band_amplitude * amp[..., None] * shaped(_band_shape(freqs, lo, hi))
    X = mixing @ sources + sensor_noise * draw(n_trials, n_channels, n_times)
    X = X.to(dtype=dtype, device=device)
    y = labels.to(device=device)
    if as_numpy:
        return X.cpu().numpy(), y.cpu().numpy()
    return X, y
