"""SegmentationModel on tiny synthetic ONNX graphs: frames, findings, tracking, validation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from onnx import TensorProto  # noqa: E402
from perception_testutil import TOY_META, red_frame  # noqa: E402

from perception import FrameFindings, FrameModel, ModelError  # noqa: E402
from perception.segmentation_model import SegmentationModel  # noqa: E402


@pytest.fixture
def model(toy_onnx):
    return SegmentationModel(toy_onnx, threads=1, device="cpu")


def test_is_a_frame_model_with_metadata(model):
    assert isinstance(model, FrameModel)
    assert model.info.name == "toy"
    assert model.info.version == "9.9"
    assert model.info.labels == ("blob",)
    assert model.input_size == (64, 64)
    assert model.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("w,h", [(640, 480), (333, 217), (1280, 720), (64, 64), (31, 47)])
def test_one_square_one_finding_any_frame_size(model, w, h):
    rect = (w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2)
    res = model.predict(red_frame(w, h, [rect]))
    assert isinstance(res, FrameFindings)
    assert res.frame_size == (w, h)
    assert res.model == model.info
    assert res.inference_ms > 0
    assert len(res.objects) == 1
    f = res.objects[0]
    assert f.label == "blob"
    assert f.score > 0.9
    assert f.track_id is None  # a first sighting: the tracker numbers an object once it has been seen a few times
    tol = max(3, w // 32, h // 32) + 1  # the net sees a 64x64 copy of the frame
    assert all(abs(a - b) <= tol for a, b in zip(f.box, rect)), (f.box, rect)
    true_area = (rect[2] - rect[0]) * (rect[3] - rect[1])
    assert f.area_px == pytest.approx(true_area, rel=0.25)
    assert f.outline and all(3 <= len(poly) <= model.max_outline_points for poly in f.outline)
    for poly in f.outline:
        for x, y in poly:
            assert 0 <= x < w and 0 <= y < h
            assert isinstance(x, int) and isinstance(y, int)


def test_empty_frame_and_small_specks(model):
    assert model.predict(np.zeros((240, 320, 3), np.uint8)).objects == ()
    # a speck far below min_area_frac (0.1 % of the frame) is not reported
    assert model.predict(red_frame(640, 480, [(10, 10, 13, 13)])).objects == ()


def test_two_objects_sorted_by_area_and_distinct_ids(model):
    frame = red_frame(640, 480, [(20, 20, 120, 120), (300, 200, 600, 460)])
    for _ in range(model.tracker.min_hits):
        res = model.predict(frame)
    assert len(res.objects) == 2
    big, small = res.objects
    assert big.area_px > small.area_px
    assert big.box[0] >= 280 and small.box[0] < 40
    assert {big.track_id, small.track_id} == {1, 2}


def test_tracker_keeps_ids_across_frames_and_batches(model):
    frames = [
        red_frame(640, 480, [(40 + 8 * i, 40, 200 + 8 * i, 200), (400, 300 - 6 * i, 560, 440 - 6 * i)])
        for i in range(10)
    ]
    confirm = model.tracker.min_hits
    for frame in frames[:confirm]:
        first = model.predict(frame)
    ids = {f.box[0] < 300: f.track_id for f in first.objects}
    assert sorted(ids.values()) == [1, 2]
    rest = model.predict_batch(frames[confirm:])
    assert len(rest) == 10 - confirm
    for res in rest:
        assert len(res.objects) == 2
        assert {f.box[0] < 300: f.track_id for f in res.objects} == ids
    model.reset()
    assert [f.track_id for f in model.predict(frames[0]).objects] == [None, None]  # forgotten: numbered afresh later


def test_batch_equals_single(model):
    frames = [red_frame(200 + 10 * i, 150, [(10 * i, 20, 10 * i + 80, 120)]) for i in range(4)]
    batch = model.predict_batch(frames)
    for frame, res in zip(frames, batch):
        model.reset()
        single = model.predict(frame)
        assert [(o.box, o.area_px) for o in single.objects] == [(o.box, o.area_px) for o in res.objects]
        assert res.frame_size == (frame.shape[1], frame.shape[0])
    assert model.predict_batch([]) == []


def test_masks_and_probabilities(model):
    frame = red_frame(320, 240, [(80, 60, 240, 180)])
    prob = model.probabilities(frame)
    assert prob.shape == (240, 320) and prob.dtype == np.float32
    assert prob[120, 160] > 0.99 and prob[5, 5] < 0.01
    found, mask = model.predict_with_mask(frame)
    assert mask.shape == (240, 320) and mask.dtype == bool
    assert np.array_equal(mask, model.segment(frame))
    assert abs(int(mask.sum()) - 160 * 120) < 0.05 * 160 * 120


def test_mask_holds_only_what_the_findings_show(model):
    # A speck under min_area_frac is no finding, so it must not count in a measured area or a scored Dice either.
    frame = red_frame(640, 480, [(100, 100, 300, 300), (500, 400, 503, 403)])
    found, mask = model.predict_with_mask(frame)
    assert len(found.objects) == 1
    assert mask[200, 200] and not mask[390:415, 490:515].any()
    speck_only, empty = model.predict_with_mask(red_frame(640, 480, [(500, 400, 503, 403)]))
    assert speck_only.objects == () and not empty.any()


@pytest.mark.parametrize(
    "frame,match",
    [
        (np.zeros((120, 160), np.uint8), "H x W x 3"),
        (np.zeros((120, 160, 1), np.uint8), "H x W x 3"),
        (np.zeros((120, 160, 4), np.uint8), "H x W x 3"),
        (np.zeros((120, 160, 3), np.float32), "uint8"),
        (np.zeros((4, 160, 3), np.uint8), "too small"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_frames_raise_model_error(model, frame, match):
    with pytest.raises(ModelError, match=match):
        model.predict(frame)
    with pytest.raises(ModelError, match=match):
        model.predict_batch([np.zeros((64, 64, 3), np.uint8), frame])


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere" / "absent.onnx"
    with pytest.raises(ModelError, match="absent.onnx"):
        SegmentationModel(path)


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not an onnx file" * 20)
    with pytest.raises(ModelError, match="broken.onnx"):
        SegmentationModel(path)
    truncated = tmp_path / "cut.onnx"
    from perception_testutil import make_onnx

    full = make_onnx(tmp_path / "whole.onnx").read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(ModelError, match="cut.onnx"):
        SegmentationModel(truncated)


def test_bad_sidecar_json_names_the_file(tmp_path):
    from perception_testutil import make_onnx

    path = make_onnx(tmp_path / "m.onnx")
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="m.json"):
        SegmentationModel(path)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"channels": 1}, "N x 3 x H x W"),
        ({"rank": 3}, "N x 3 x H x W"),
        ({"n_inputs": 2}, "one image input"),
        ({"elem_type": TensorProto.UINT8}, "float32"),
    ],
)
def test_mismatched_inputs_raise_model_error(onnx_factory, kwargs, match):
    path = onnx_factory(**kwargs)
    with pytest.raises(ModelError, match=match) as err:
        SegmentationModel(path)
    assert path.name in str(err.value)


def test_metadata_size_mismatch(onnx_factory):
    path = onnx_factory(sidecar={**TOY_META, "input_size": [128, 128]})
    with pytest.raises(ModelError, match="does not match"):
        SegmentationModel(path)


def test_embedded_metadata_and_overrides(onnx_factory):
    path = onnx_factory(meta={**TOY_META, "name": "embedded", "labels": ["thing"]})
    m = SegmentationModel(path)
    assert m.info.name == "embedded" and m.info.labels == ("thing",)
    m2 = SegmentationModel(path, name="renamed", labels=["x"], threshold=0.7)
    assert m2.info.name == "renamed" and m2.info.labels == ("x",) and m2.meta.threshold == 0.7
    with pytest.raises(ModelError, match="threshold"):
        SegmentationModel(path, threshold=1.5)
    bare = SegmentationModel(onnx_factory())  # no metadata at all: file name, default label
    assert bare.info.name == bare.path.stem and bare.info.labels == ("object",)


def test_unknown_device(toy_onnx):
    with pytest.raises(ModelError, match="device"):
        SegmentationModel(toy_onnx, device="tpu")
