"""Data loading and deterministic splits (folder pairing on temp files; real data when present)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from perception import datasets


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def test_pair_folder_by_base_name(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 255
    _write(tmp_path / "images" / "a.jpg", img)
    _write(tmp_path / "images" / "b.png", img)
    _write(tmp_path / "images" / "orphan.jpg", img)
    _write(tmp_path / "masks" / "a.png", mask)
    _write(tmp_path / "masks" / "b.png", mask)
    _write(tmp_path / "masks" / "lonely.png", mask)
    (tmp_path / "images" / "notes.txt").write_text("x")
    pairs = datasets.pair_folder(tmp_path / "images", tmp_path / "masks", source="toy")
    assert [(s.source, s.name) for s in pairs] == [("toy", "a"), ("toy", "b")]
    m = datasets.read_mask(pairs[0].mask)
    assert m.dtype == bool and m.sum() == 25
    assert datasets.read_image(pairs[1].image).shape == (20, 30, 3)
    imgs, masks = datasets.load_resized(pairs, 32)
    assert imgs.shape == (2, 32, 32, 3) and masks.shape == (2, 32, 32) and masks.max() == 1
    with pytest.raises(FileNotFoundError):
        datasets.pair_folder(tmp_path / "nope", tmp_path / "masks")


def test_split_by_name_is_deterministic_and_independent_of_other_files():
    names = [f"{i:04d}" for i in range(1000)]
    samples = [datasets.Sample("x", n, Path(n), Path(n)) for n in names]
    tr, va = datasets.split_by_name(samples)
    assert 100 < len(va) < 200 and len(tr) + len(va) == 1000
    tr2, va2 = datasets.split_by_name(list(reversed(samples[:500])))
    assert {s.name for s in va2} == {s.name for s in va if s.name < "0500"}
    _, va3 = datasets.split_by_name(samples, seed=7)
    assert {s.name for s in va3} != {s.name for s in va}


def test_cvc_sequences():
    assert datasets.cvc_sequence_of(1) == 1
    assert datasets.cvc_sequence_of(25) == 1
    assert datasets.cvc_sequence_of(26) == 2
    assert datasets.cvc_sequence_of(205) == 10
    assert datasets.cvc_sequence_of(206) == 11
    assert datasets.cvc_sequence_of(478) == 23
    with pytest.raises(ValueError):
        datasets.cvc_sequence_of(479)
    seqs = datasets.cvc_val_sequences()
    assert seqs == datasets.cvc_val_sequences() and len(seqs) == 5
    samples = [datasets.Sample("cvc", f"{i:03d}", Path(), Path()) for i in range(1, 479)]
    tr, va = datasets.split_by_sequence(samples)
    seq_tr = {datasets.cvc_sequence_of(int(s.name)) for s in tr}
    seq_va = {datasets.cvc_sequence_of(int(s.name)) for s in va}
    assert seq_va == set(seqs) and not seq_tr & seq_va and len(seq_tr | seq_va) == 23


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SCOPECAST_DATA_DIR", str(tmp_path))
    assert datasets.data_root() == tmp_path.resolve()
    monkeypatch.delenv("SCOPECAST_DATA_DIR")
    assert datasets.data_root().parts[-2:] == ("shared", "data")


@pytest.mark.data
def test_real_task_splits():
    root = datasets.data_root()
    if not (root / "kvasir-seg").is_dir() or not (root / "fuseg").is_dir():
        pytest.skip(f"shared data not found at {root} (set SCOPECAST_DATA_DIR)")
    tr, va = datasets.task_split("polyp")
    assert len(tr) + len(va) == 911 + 478
    assert not {(s.source, s.name) for s in tr} & {(s.source, s.name) for s in va}
    tr, va = datasets.task_split("wound")
    assert len(tr) + len(va) == 810 and 90 < len(va) < 160
    with pytest.raises(ValueError):
        datasets.task_split("teeth")
    for task in datasets.TASKS:  # --oversample checks names against this list, so it must match the data
        tr, va = datasets.task_split(task)
        assert {s.source for s in tr + va} == set(datasets.TASK_SOURCES[task])
