from __future__ import annotations

import pytest

from perception.tracking import IouTracker


def test_ids_persist_while_objects_move():
    t = IouTracker(iou_threshold=0.3)
    a, b = (10, 10, 50, 50), (200, 200, 260, 260)
    first = t.update([a, b], ["polyp", "polyp"])
    assert first == [1, 2]
    for step in range(1, 6):  # both drift a few pixels per frame; order of boxes swaps
        a2 = (10 + 3 * step, 10 + 2 * step, 50 + 3 * step, 50 + 2 * step)
        b2 = (200 - 2 * step, 200, 260 - 2 * step, 260)
        assert t.update([b2, a2], ["polyp", "polyp"]) == [2, 1]


def test_new_object_gets_new_id_and_dropout_is_bridged():
    t = IouTracker(iou_threshold=0.3, max_missed=2)
    box = (0, 0, 100, 100)
    assert t.update([box]) == [1]
    assert t.update([]) == []  # missed one frame
    assert t.update([box, (300, 300, 350, 350)]) == [1, 2]
    for _ in range(3):  # missed 3 > max_missed frames: track 1 ends
        t.update([(300, 300, 350, 350)])
    assert t.update([box, (300, 300, 350, 350)]) == [3, 2]


def test_labels_do_not_mix_and_reset():
    t = IouTracker()
    box = (0, 0, 100, 100)
    assert t.update([box], ["polyp"]) == [1]
    assert t.update([box], ["wound"]) == [2]
    t.reset()
    assert t.tracks == ()
    assert t.update([box], ["polyp"]) == [1]


def test_greedy_best_match_and_validation():
    t = IouTracker(iou_threshold=0.1)
    t.update([(0, 0, 100, 100)])
    # two candidates overlap the track; the better one keeps the id
    assert t.update([(50, 50, 150, 150), (5, 5, 100, 100)]) == [2, 1]
    with pytest.raises(ValueError):
        IouTracker(iou_threshold=0.0)
    with pytest.raises(ValueError):
        t.update([(0, 0, 1, 1)], ["a", "b"])
