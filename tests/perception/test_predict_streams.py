"""One SegmentationModel instance batching frames of several streams keeps each stream's tracks apart."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")
from perception_testutil import TOY_META, make_onnx, red_frame  # noqa: E402

from perception.model import StreamBatchModel, StreamFrame  # noqa: E402
from perception.segmentation_model import SegmentationModel  # noqa: E402


def _stream_a(i: int):
    return red_frame(160, 120, [(10 + 4 * i, 20, 40 + 4 * i, 50)])


def _stream_b(i: int):
    return red_frame(160, 120, [(100, 60 - 3 * i, 130, 90 - 3 * i), (20, 80, 45, 110)])


def _summary(findings):
    return [(o.box, o.track_id) for o in findings.objects]


@pytest.mark.parametrize("workers", [1, 3])
def test_batched_streams_give_what_separate_instances_give(tmp_path, workers):
    """With `batch_workers` > 1 the frames are pre- and post-processed side by side: the findings do not change."""
    path = make_onnx(tmp_path / "toy.onnx", meta=TOY_META)
    shared = SegmentationModel(path, batch_workers=workers)
    alone_a, alone_b = SegmentationModel(path), SegmentationModel(path)
    assert isinstance(shared, StreamBatchModel)
    for i in range(6):
        batch = shared.predict_streams([StreamFrame("a", _stream_a(i)), StreamFrame("b", _stream_b(i))])
        assert len(batch) == 2
        assert _summary(batch[0]) == _summary(alone_a.predict(_stream_a(i)))
        assert _summary(batch[1]) == _summary(alone_b.predict(_stream_b(i)))
        assert batch[0].inference_ms > 0 and batch[1].inference_ms > 0
    shared.close()


def test_a_stream_left_out_of_batches_keeps_its_tracks_and_forgetting_starts_it_afresh(tmp_path):
    path = make_onnx(tmp_path / "toy.onnx", meta=TOY_META)
    shared = SegmentationModel(path)
    alone_a, alone_b = SegmentationModel(path), SegmentationModel(path)
    for i in range(6):  # long enough for both streams' tracks to be confirmed (ids shown)
        shared.predict_streams([StreamFrame("a", _stream_a(i)), StreamFrame("b", _stream_b(i))])
        alone_a.predict(_stream_a(i))
        alone_b.predict(_stream_b(i))
    for i in range(6, 9):  # b is slow: a runs alone for a while
        shared.predict_streams([StreamFrame("a", _stream_a(i))])
        alone_a.predict(_stream_a(i))
    later_b = shared.predict_streams([StreamFrame("b", _stream_b(6))])[0]
    assert _summary(later_b) == _summary(alone_b.predict(_stream_b(6)))
    assert all(track is not None for _, track in _summary(later_b))
    shared.forget_stream("a")
    fresh = shared.predict_streams([StreamFrame("a", _stream_a(9))])[0]
    assert _summary(fresh) == _summary(SegmentationModel(path).predict(_stream_a(9)))  # no track confirmed yet
    assert _summary(fresh) != _summary(alone_a.predict(_stream_a(9)))  # what remembering would have shown
