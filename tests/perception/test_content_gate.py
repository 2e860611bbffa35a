"""The content gate: fitting, the model's verdict per frame, and what happens without one."""

from __future__ import annotations

import numpy as np
import pytest

from perception.content_gate import fit_gate
from perception.segmentation_model import SegmentationModel
from tests.perception.perception_testutil import GATED_META, TOY_META, make_onnx, red_frame


def test_fit_gate_accepts_its_own_distribution_and_rejects_a_shifted_one():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    cov = np.diag(np.linspace(0.5, 3.0, 24))
    train = rng.multivariate_normal(np.zeros(24), cov, 600)
    calib = rng.multivariate_normal(np.zeros(24), cov, 400)
    fresh = rng.multivariate_normal(np.zeros(24), cov, 2000)
    shifted = rng.multivariate_normal(np.full(24, 3.0), cov, 500)
    gate = fit_gate(train, calib, percentile=99.5)
    assert gate.in_domain(fresh).mean() >= 0.98
    assert gate.in_domain(shifted).mean() <= 0.01
    assert 0.0 <= gate.shrinkage <= 1.0 and gate.n_fit == 600 and gate.n_calibration == 400


def test_fit_gate_refuses_too_little_or_mismatched_data():
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="too few"):
        fit_gate(np.zeros((5, 4)), np.zeros((20, 4)))
    with pytest.raises(ValueError, match="same D"):
        fit_gate(np.zeros((20, 4)), np.zeros((20, 5)))


def _blue(frame: np.ndarray) -> np.ndarray:
    frame = frame.copy()
    frame[..., 2] = 200
    return frame


def test_gated_model_withholds_findings_on_foreign_frames(tmp_path):
    model = SegmentationModel(make_onnx(tmp_path / "g.onnx", sidecar=GATED_META, gate=True))
    assert model.has_content_gate and model.content_unavailable_reason == ""
    known = red_frame(320, 240, [(40, 40, 120, 120)])
    ours = model.predict(known)
    assert ours.content.in_domain is True and ours.content.content == "red things"
    assert len(ours.objects) == 1 and not ours.withheld
    foreign = model.predict(_blue(known))
    assert foreign.content.in_domain is False and foreign.content.distance > foreign.content.threshold
    assert foreign.objects == () and foreign.withheld
    # batches judge each frame on its own
    batch = model.predict_batch([known, _blue(known), known])
    assert [f.content.in_domain for f in batch] == [True, False, True]
    assert [len(f.objects) for f in batch] == [1, 0, 1]


def test_evaluation_mode_scores_foreign_frames_but_still_reports_the_verdict(tmp_path):
    model = SegmentationModel(
        make_onnx(tmp_path / "g.onnx", sidecar=GATED_META, gate=True), withhold_out_of_domain=False
    )
    found, mask = model.predict_with_mask(_blue(red_frame(320, 240, [(40, 40, 120, 120)])))
    assert found.content.in_domain is False and len(found.objects) == 1 and mask.sum() > 0


def test_model_without_gate_says_content_check_unavailable(tmp_path):
    model = SegmentationModel(make_onnx(tmp_path / "old.onnx", sidecar=TOY_META))
    found = model.predict(red_frame(320, 240, [(40, 40, 120, 120)]))
    assert not model.has_content_gate
    assert found.content.in_domain is None and "content check unavailable" in found.content.reason
    assert len(found.objects) == 1  # an older model still works, and says it cannot judge its input


def test_gate_output_without_threshold_is_reported_not_guessed(tmp_path):
    meta = {**TOY_META, "content_gate": {"content": "red things"}}
    model = SegmentationModel(make_onnx(tmp_path / "g.onnx", sidecar=meta, gate=True))
    found = model.predict(red_frame(320, 240, [(40, 40, 120, 120)]))
    assert found.content.in_domain is None and "no valid gate threshold" in found.content.reason


class _LogitsOnly:
    """A Runtime that returns the logits and nothing else (as TensorRT, torch and Triton do)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.input_size = inner, "logits-only", inner.input_size

    def run(self, batch):
        return self.inner.run(batch)

    def close(self) -> None:
        self.inner.close()


def test_model_run_through_a_logits_only_runtime_says_the_gate_is_unavailable_there(tmp_path):
    from perception.runtimes import select_runtime

    path = make_onnx(tmp_path / "g.onnx", sidecar=GATED_META, gate=True)
    model = SegmentationModel(path, runtime=_LogitsOnly(select_runtime("cpu", path)))
    found = model.predict(_blue(red_frame(320, 240, [(40, 40, 120, 120)])))
    assert found.content.in_domain is None and "unavailable on the logits-only runtime" in found.content.reason
    assert len(found.objects) == 1  # nothing is withheld on a verdict nobody made


def test_the_onnxruntime_runtime_carries_the_gate(tmp_path):
    model = SegmentationModel(make_onnx(tmp_path / "g.onnx", sidecar=GATED_META, gate=True), runtime="cpu")
    assert model.has_content_gate and model.runtime_name == "onnxruntime-cpu"
    found = model.predict(_blue(red_frame(320, 240, [(40, 40, 120, 120)])))
    assert found.content.in_domain is False and found.objects == ()
