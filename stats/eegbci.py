"""Load epochs of the PhysioNet EEG Motor Movement/Imagery dataset (EEGBCI) through MNE.

The recordings are EDF+ files ``S{subject:03d}R{run:02d}.edf`` (64 channels, 160 Hz) with
annotations ``T0`` (rest), ``T1`` and ``T2`` (task cues). Runs 6, 10, 14 are motor imagery of
both fists (T1) vs both feet (T2); runs 4, 8, 12 imagery of the left vs right fist (see
Schalk et al., IEEE TBME 2004, and the dataset description on PhysioNet).

:func:`load_eegbci` reads the files with MNE (an optional dependency, extra ``examples``:
``pip install mne``), concatenates the runs, band-pass filters them, cuts epochs around the cues
and returns ``X (n_epochs, n_channels, n_times)`` and labels ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["load_eegbci", "eegbci_paths"]

_MNE_MSG = (
    "load_eegbci needs MNE-Python to read EDF files: pip install mne "
    "(or pip install 'riemlearn[examples]')"
)


def _import_mne() -> Any:
    try:
        import mne
    except ImportError as exc:
        raise ImportError(_MNE_MSG) from exc
    return mne


def eegbci_paths(subject: int, runs: Sequence[int], data_dir: str | Path) -> list[Path]:
    """Paths of the EDF files of ``subject`` and ``runs`` under ``data_dir``.

    ``data_dir`` may be the folder holding ``S001/``, ``S002/`` ... (e.g. ``../shared/data/eegbci``),
    its parent (``../shared/data``), a subject folder itself, or an MNE data root
    (``MNE-eegbci-data/files/eegmmidb/1.0.0`` below it).
    """
    if isinstance(subject, bool) or not isinstance(subject, (int, np.integer)) or not 1 <= subject <= 109:
        raise ValueError(f"subject must be an integer in 1..109, got {subject!r}")
    runs = list(runs)
    if not runs:
        raise ValueError("runs must name at least one run (1..14)")
    for r in runs:
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= 14:
            raise ValueError(f"runs must be integers in 1..14, got {r!r}")
    root = Path(data_dir)
    sub = f"S{int(subject):03d}"
    candidates = [root / sub, root, root / "eegbci" / sub,
                  root / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0" / sub]
    for folder in candidates:
        paths = [folder / f"{sub}R{int(r):02d}.edf" for r in runs]
        if all(p.is_file() for p in paths):
            return paths
    missing = [f"{sub}R{int(r):02d}.edf" for r in runs]
    raise FileNotFoundError(f"EEGBCI files {missing} not found under {root} (looked in "
                            f"{', '.join(str(c) for c in candidates)})")


def load_eegbci(
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    subject: int | None = None,
    runs: Sequence[int] = (6, 10, 14),
    data_dir: str | Path | None = None,
    tmin: float = 1.0,
    tmax: float = 2.0,
    fmin: float | None = 7.0,
    fmax: float | None = 35.0,
    events: Sequence[str] = ("T1", "T2"),
    filter_method: str = "iir",
    scale: float = 1e6,
    dtype: torch.dtype = torch.float64,
    as_numpy: bool = False,
    return_info: bool = False,
) -> tuple[Any, ...]:
    """Read EEGBCI recordings and return band-passed epochs after the cues.

    Parameters
    ----------
    paths : path or sequence of paths, optional
        EDF files to read (concatenated in order). Alternatively give ``subject`` and ``runs``.
    subject : int, optional
        Subject number (1..109), with ``runs`` and ``data_dir``. Without ``data_dir``, MNE's
        ``mne.datasets.eegbci.load_data`` fetches the files (it may download them).
    runs : sequence of int, default=(6, 10, 14)
        Runs to load (6, 10, 14: imagery of both fists vs both feet).
    data_dir : path, optional
        Folder holding the files (see :func:`eegbci_paths`).
    tmin, tmax : float, default=1.0, 2.0
        Epoch window in seconds relative to the cue (both ends included, as in MNE).
    fmin, fmax : float or None, default=7.0, 35.0
        Band-pass edges in Hz (``None`` for no high- or low-pass; both ``None`` to skip filtering).
    events : sequence of str, default=("T1", "T2")
        Annotation labels to epoch; label ``k`` of ``y`` is ``events[k]``.
    filter_method : {"iir", "fir"}, default="iir"
        MNE filter design (a 4th-order Butterworth applied forward-backward for "iir").
    scale : float, default=1e6
        Factor applied to the data (EDF units are volts; 1e6 gives microvolts).
    dtype : torch.dtype, default=torch.float64
    as_numpy : bool, default=False
        Return numpy arrays instead of tensors.
    return_info : bool, default=False
        Also return a dict with ``sfreq``, ``ch_names``, ``event_id`` and ``paths``.

    Returns
    -------
    X : Tensor or ndarray, shape (n_epochs, n_channels, n_times)
    y : Tensor (int64) or ndarray, shape (n_epochs,)
        Index into ``events`` of each epoch's cue.
    info : dict, only with ``return_info=True``

    Raises
    ------
    ImportError
        If MNE-Python is not installed.

    Examples
    --------
    >>> from riemlearn.stats import load_eegbci  # doctest: +SKIP
    >>> X, y = load_eegbci(subject=1, runs=[6, 10, 14], data_dir="../shared/data/eegbci")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    torch.Size([45, 64, 161])
    """
    mne = _import_mne()
    if paths is None:
        if subject is None:
            raise ValueError("give either paths or subject (with runs and data_dir)")
        if data_dir is not None:
            files = eegbci_paths(subject, runs, data_dir)
        else:
            files = [Path(p) for p in mne.datasets.eegbci.load_data(subject, list(runs))]
    else:
        if subject is not None:
            raise ValueError("give either paths or subject, not both")
        files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        if not files:
            raise ValueError("paths is empty")
        for p in files:
            if not p.is_file():
                raise FileNotFoundError(f"EDF file {p} not found")
    if not tmax > tmin:
        raise ValueError(f"tmax must be greater than tmin, got tmin={tmin}, tmax={tmax}")
    events = list(events)
    if not events:
        raise ValueError("events must name at least one annotation label")
    if filter_method not in ("iir", "fir"):
        raise ValueError(f"filter_method must be 'iir' or 'fir', got {filter_method!r}")

    raws = [mne.io.read_raw_edf(str(p), preload=True, verbose="error") for p in files]
    raw = raws[0] if len(raws) == 1 else mne.concatenate_raws(raws, verbose="error")
    mne.datasets.eegbci.standardize(raw)
    picks = mne.pick_types(raw.info, eeg=True, meg=False, stim=False, eog=False, exclude="bads")
    if fmin is not None or fmax is not None:
        raw.filter(fmin, fmax, picks=picks, method=filter_method, verbose="error")
    present = set(raw.annotations.description)
    absent = [e for e in events if e not in present]
    if absent:
        raise ValueError(f"events {absent} do not occur in the recordings (found {sorted(present)})")
    event_id = {e: k + 1 for k, e in enumerate(events)}
    ev, _ = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    epochs = mne.Epochs(raw, ev, event_id, tmin=tmin, tmax=tmax, picks=picks, baseline=None,
                        proj=False, preload=True, verbose="error")
    data = epochs.get_data(copy=True) * scale
    labels = epochs.events[:, -1].astype(np.int64) - 1
    info = {
        "sfreq": float(raw.info["sfreq"]),
        "ch_names": [raw.ch_names[i] for i in picks],
        "event_id": {e: k for k, e in enumerate(events)},
        "paths": files,
    }
    if as_numpy:
        X, y = data.astype(torch.empty(0, dtype=dtype).numpy().dtype), labels
    else:
        X, y = torch.from_numpy(data).to(dtype), torch.from_numpy(labels)
    return (X, y, info) if return_info else (X, y)
