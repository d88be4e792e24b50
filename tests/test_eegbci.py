"""EEGBCI loader on ../shared/data/eegbci/S001 (imagery, both fists vs both feet: runs 6, 10, 14)."""

from __future__ import annotations

import numpy as np
import pytest
from riemlearn.stats.eegbci import eegbci_paths


def test_paths_resolution_and_errors(tmp_path):
    sub = tmp_path / "S002"
    sub.mkdir()
    for r in (6, 10):
        (sub / f"S002R{r:02d}.edf").write_bytes(b"")
    assert [p.name for p in eegbci_paths(2, [6, 10], tmp_path)] == ["S002R06.edf", "S002R10.edf"]
    assert eegbci_paths(2, [6], sub)[0].parent == sub
    with pytest.raises(FileNotFoundError, match="S002R14.edf"):
        eegbci_paths(2, [6, 14], tmp_path)
    with pytest.raises(ValueError, match="runs"):
        eegbci_paths(2, [15], tmp_path)


_CACHE: dict = {}


@pytest.fixture
def s001(data_dir):
    pytest.importorskip("mne")
    folder = data_dir / "eegbci"
    if not (folder / "S001" / "S001R06.edf").is_file():
        pytest.skip("EEGBCI S001 files are absent")
    from riemlearn.stats.eegbci import load_eegbci

    if "s001" not in _CACHE:  # read and filter once for the module
        _CACHE["s001"] = load_eegbci(subject=1, runs=[6, 10, 14], data_dir=folder, as_numpy=True,
                                     return_info=True)
    return _CACHE["s001"]


@pytest.mark.data
def test_load_s001_imagery(s001):
    X, y, info = s001
    assert X.shape == (45, 64, 161)  # 15 cues per run, 1-2 s at 160 Hz (both ends included)
    assert info["sfreq"] == 160.0 and len(info["ch_names"]) == 64
    assert sorted(np.unique(y).tolist()) == [0, 1]
    assert abs(int((y == 0).sum()) - int((y == 1).sum())) <= 3
    assert np.isfinite(X).all() and 1.0 < X.std() < 200.0  # microvolts


@pytest.mark.data
def test_s001_classification_above_chance(s001):
    from riemlearn.stats import MDM, Covariances, TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    X, y, _ = s001
    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    mdm = cross_val_score(make_pipeline(Covariances("oas"), MDM()), X, y, cv=cv).mean()
    ts = cross_val_score(make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression()),
                         X, y, cv=cv).mean()
    print(f"EEGBCI S001 fists vs feet, 5-fold CV: MDM {mdm:.3f}, TS+LR {ts:.3f}")
    # pyRiemann reference on the same protocol: MDM 0.80, TS+LR 0.87 (data README); chance 0.5
    assert mdm > 0.7
    assert ts > 0.75


def test_clear_import_error_without_mne(monkeypatch, tmp_path):
    import sys

    from riemlearn.stats.eegbci import load_eegbci

    monkeypatch.setitem(sys.modules, "mne", None)  # import mne now raises ImportError
    with pytest.raises(ImportError, match="pip install mne"):
        load_eegbci(tmp_path / "S001R06.edf")
