"""`scopecast eval retrieval`: the scores on sets whose right answer is known, neighbour exclusion, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from perception.retrieval_eval import (
    RetrievalInputError,
    load_groups,
    match_images,
    natural_key,
    per_query,
    retrieval_scores,
)

REPO = Path(__file__).resolve().parents[2]
PATTERNS = ("stripes", "disc", "checks")


def pattern_image(kind: str, copy: int, size: int = 192) -> np.ndarray:
    """One of three distinct scenes; ``copy`` shifts it by a few pixels and adds its own noise (a near-duplicate)."""
    rng = np.random.default_rng(100 * PATTERNS.index(kind) + copy)
    yy, xx = np.mgrid[0:size, 0:size] + 2 * copy
    if kind == "stripes":
        img = np.stack([(yy // 12 % 2) * 200 + 30, np.full_like(yy, 60), (yy // 12 % 2) * 60 + 20], -1)
    elif kind == "disc":
        inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
        img = np.stack([np.where(inside, 220, 120), np.where(inside, 90, 40), np.where(inside, 80, 40)], -1)
    else:
        cell = (yy // 24 + xx // 24) % 2
        img = np.stack([cell * 40 + 30, cell * 180 + 40, cell * 200 + 30], -1)
    img = img + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_pattern_set(folder: Path) -> dict[str, str]:
    """3 patterns x 5 near-duplicates as f1.png ... f15.png (pattern-major); returns the true groups."""
    folder.mkdir(parents=True, exist_ok=True)
    groups = {}
    for p, kind in enumerate(PATTERNS):
        for c in range(5):
            name = f"f{5 * p + c + 1}"
            cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(pattern_image(kind, c), cv2.COLOR_RGB2BGR))
            groups[name] = kind
    return groups


def shuffled(groups: dict[str, str]) -> dict[str, str]:
    """A control that breaks the structure: image k goes to group k mod 3, so each group mixes the patterns."""
    return {name: f"g{i % 3}" for i, name in enumerate(sorted(groups, key=natural_key))}


def clustered_vectors() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16)
    x = np.concatenate([c + 0.05 * rng.normal(size=(5, 16)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), [g for g in "abc" for _ in range(5)]


def test_known_clusters_score_one_and_shuffled_groups_score_low():
    x, groups = clustered_vectors()
    overall, per_group = retrieval_scores(x, groups)
    assert (overall.recall_at_1, overall.recall_at_5, overall.mean_ap) == (1.0, 1.0, 1.0)
    assert overall.queries == 15 and overall.unscored == 0 and set(per_group) == {"a", "b", "c"}
    control, _ = retrieval_scores(x, [f"g{i % 3}" for i in range(15)])
    assert control.recall_at_1 < 0.5 and control.mean_ap < 0.5


def test_neighbour_exclusion_removes_same_group_neighbours_only():
    e1, e2, e3 = np.eye(3)
    near_e1 = (e1 + 0.1 * e3) / np.linalg.norm(e1 + 0.1 * e3)
    # A0 = A1 (a near-duplicate pair); A2, A3 look like nothing else; B frames look like A0.
    x = np.stack([e1, e1, e2, e2, near_e1, near_e1, near_e1, near_e1])
    groups = ["A"] * 4 + ["B"] * 4
    hit1, hit5, ap, scored = per_query(x, groups)
    assert hit1[0] == 1 and ap[0] == pytest.approx((1 + 2 / 6 + 3 / 7) / 3)
    hit1, hit5, ap, scored = per_query(x, groups, exclude_neighbours=1)
    assert hit1[0] == 0 and hit5[0] == 1  # A1 is gone: the four B frames rank first, then A2
    assert ap[0] == pytest.approx((1 / 5 + 2 / 6) / 2)
    # B0 is next to A3 in name order but in another group: it stays a candidate, so A3 still finds A2 first
    assert hit1[3] == 1
    # two adjacent frames with neighbours excluded: nothing relevant is left, the query is not scored
    _, _, _, scored = per_query(np.stack([e1, e1, e2]), ["A", "A", "B"], exclude_neighbours=1)
    assert scored.tolist() == [False, False, False]
    overall, _ = retrieval_scores(np.stack([e1, e1, e2]), ["A", "A", "B"], exclude_neighbours=1)
    assert overall.queries == 0 and overall.unscored == 3


def test_images_are_ordered_naturally_and_matched_by_name_or_stem(tmp_path):
    for name in ("f10.png", "f2.png", "f1.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    paths, labels = match_images(tmp_path, {"f1": "a", "f2.png": "b", "f10": "a"})
    assert [p.name for p in paths] == ["f1.jpg", "f2.png", "f10.png"] and labels == ["a", "b", "a"]
    with pytest.raises(RetrievalInputError, match="f10.png"):
        match_images(tmp_path, {"f1": "a", "f2": "b"})
    with pytest.raises(RetrievalInputError, match="fewer than two groups"):
        match_images(tmp_path, {"f1": "a", "f2": "a", "f10": "a"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"f1": [1]}')
    with pytest.raises(RetrievalInputError, match="strings or integers"):
        load_groups(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(RetrievalInputError, match="JSON object"):
        load_groups(bad)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scopecast.cli", "eval", "retrieval", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def shipped_polyp() -> Path:
    p = REPO / "perception" / "weights" / "polyp.onnx"
    if not p.is_file():
        pytest.skip(f"shipped model {p} is not present")
    pytest.importorskip("onnxruntime")
    return p


def test_cli_on_generated_patterns_with_known_groups(tmp_path):
    shipped_polyp()
    groups = write_pattern_set(tmp_path / "images")
    (tmp_path / "groups.json").write_text(json.dumps(groups))
    (tmp_path / "shuffled.json").write_text(json.dumps(shuffled(groups)))
    r = run_cli(
        "--model", "polyp", "--images", str(tmp_path / "images"), "--groups", str(tmp_path / "groups.json"),
        "--exclude-neighbours", "1", "--json", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "recall@1" in r.stdout and "mAP" in r.stdout
    report = json.loads((tmp_path / "out.json").read_text())
    version = json.loads(shipped_polyp().with_suffix(".json").read_text())["version"]
    assert report["model_version"] == f"polyp-{version}+emb1" and report["images"] == 15 and report["groups"] == 3
    overall = report["overall"]
    assert overall["recall_at_1"] == 1.0 and overall["recall_at_5"] == 1.0 and overall["queries"] == 15
    assert overall["mean_ap"] > 0.99
    assert [ln.split()[-3:] for ln in r.stdout.splitlines() if ln.startswith("all")] == [["1.000", "1.000", "1.000"]]

    r = run_cli("--model", "polyp", "--images", str(tmp_path / "images"), "--groups", str(tmp_path / "shuffled.json"),
                "--json", str(tmp_path / "control.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    control = json.loads((tmp_path / "control.json").read_text())["overall"]
    assert control["recall_at_1"] < 0.5 and control["mean_ap"] < 0.5


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-folder", "images folder not found"),
        ("bad-json", "is not valid JSON"),
        ("not-in-groups", "have no group in the groups file: f3.png"),
        ("missing-groups", "groups file not found"),
    ],
)
def test_cli_rejects_bad_input_with_exit_2(tmp_path, case, message):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("f1.png", "f2.png", "f3.png"):
        cv2.imwrite(str(images / name), np.zeros((16, 16, 3), np.uint8))
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"f1": 1, "f2": 2} if case == "not-in-groups" else {"f1": 1, "f2": 2, "f3": 1}))
    if case == "bad-json":
        groups.write_text("{not json")
    if case == "missing-groups":
        groups = tmp_path / "absent.json"
    folder = tmp_path / "absent" if case == "missing-folder" else images
    r = run_cli("--model", "polyp", "--images", str(folder), "--groups", str(groups))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
