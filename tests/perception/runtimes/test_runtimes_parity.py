"""onnxruntime and PyTorch give the same logits, masks and findings on the same frames."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_testutil import TINY_ARCH, structured_frames

from perception import ModelError
from perception.runtimes import select_runtime
from perception.runtimes.gpu_preprocess import torch_preprocess
from perception.segmentation_model import SegmentationModel


@pytest.fixture(scope="module")
def runtimes(tiny_onnx):
    cpu, tch = select_runtime("cpu", tiny_onnx), select_runtime("torch", tiny_onnx)
    yield cpu, tch
    cpu.close()
    tch.close()


@pytest.mark.parametrize("n", [1, 3])
def test_logits_and_masks_agree(runtimes, tiny_onnx, n):
    cpu, tch = runtimes
    model = SegmentationModel(tiny_onnx)
    frames = structured_frames(n, 640, 480, seed=n)
    x = np.stack([model._preprocess(f) for f in frames])
    a, b = cpu.run(x), tch.run(x)
    assert a.shape == b.shape == (n, 64, 64) and a.dtype == b.dtype == np.float32
    assert float(a.std()) > 1.0  # logits spread, so the mask comparison means something
    np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-3)
    ma, mb = a >= 0, b >= 0  # threshold 0.5 on the probability
    assert (ma != mb).mean() < 1e-3


def test_findings_agree_between_runtimes(tiny_onnx):
    ort_model = SegmentationModel(tiny_onnx)
    torch_model = SegmentationModel(tiny_onnx, runtime="torch")
    frames = structured_frames(4, 1280, 720, seed=7)
    ra, rb = ort_model.predict_batch(frames), torch_model.predict_batch(frames)
    assert sum(len(r.objects) for r in ra) > 0
    for fa, fb in zip(ra, rb):
        assert len(fa.objects) == len(fb.objects)
        for oa, ob in zip(fa.objects, fb.objects):
            assert oa.track_id == ob.track_id and oa.label == ob.label
            assert max(abs(p - q) for p, q in zip(oa.box, ob.box)) <= 3
            assert oa.score == pytest.approx(ob.score, abs=2e-3)
    _, mask_a = ort_model.predict_with_mask(frames[0])
    _, mask_b = torch_model.predict_with_mask(frames[0])
    assert (mask_a != mask_b).mean() < 1e-3


def test_torch_from_checkpoint_matches_onnx(tmp_path, tiny_onnx, runtimes):
    import torch

    from perception.net_loading import net_from_onnx

    net = net_from_onnx(tiny_onnx)
    ckpt = tmp_path / "best.pt"
    # a checkpoint of the BatchNorm-folded net: same weights, no BatchNorm layers to load
    arch = dict(TINY_ARCH)
    torch.save({"arch": arch, "model": net.state_dict(), "config": {"input_size": 64}}, ckpt)
    from perception import net_loading
    from perception.runtimes.torch_rt import TorchRuntime

    orig = net_loading.load_checkpoint_net

    def load_folded(path):  # the tiny net was exported with BN folded; rebuild it the same way
        ck = torch.load(path, map_location="cpu", weights_only=False)
        return net_from_onnx(tiny_onnx), ck

    net_loading.load_checkpoint_net = load_folded
    try:
        rt = TorchRuntime(checkpoint=ckpt)
    finally:
        net_loading.load_checkpoint_net = orig
    x = np.random.default_rng(1).normal(size=(2, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(rt.run(x), runtimes[0].run(x), atol=1e-3)
    with pytest.raises(ModelError, match="checkpoint not found"):
        TorchRuntime(checkpoint=tmp_path / "none.pt")
    with pytest.raises(ModelError, match="exactly one"):
        TorchRuntime()


@pytest.mark.parametrize(
    "w,h,exact",
    [
        (256, 256, True),
        (128, 128, True),
        (64, 64, True),
        (32, 32, True),
        (1280, 720, False),
        (1920, 1080, False),
        (100, 80, False),
    ],
)
def test_device_preprocessing_matches_cv2(tiny_onnx, w, h, exact):
    """torch_preprocess (the GPU path of TensorRT) against the CPU preprocessing, run here on CPU."""
    model = SegmentationModel(tiny_onnx)
    frames = structured_frames(2, w, h, seed=w)
    ref = np.stack([model._preprocess(f) for f in frames])
    got = torch_preprocess(frames, model.input_size, model.meta.mean, model.meta.std).numpy()
    assert got.shape == ref.shape
    diff = np.abs(got - ref)
    if exact:  # integer factors / upscaling: equal up to cv2's uint8 rounding (1/255/std ~ 0.018)
        assert diff.max() < 0.02, diff.max()
    else:  # non-integer area weights differ; these frames have sharp edges, so allow ~ 0.1 (of std units)
        assert diff.mean() < 0.1, diff.mean()


def test_shipped_polyp_parity():
    """The shipped float model (when present): onnxruntime and torch logits and findings agree on real frames.

    ``polyp-accurate`` and not the default ``polyp``, which is an int8 graph the torch runtime refuses (below).
    """
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "perception" / "weights" / "polyp-accurate.onnx"
    if not path.is_file():
        pytest.skip(f"shipped model {path} is not present")
    # The torch runtime returns only the mask (no content gate), so compare findings with the gate not withholding.
    a = SegmentationModel(path, withhold_out_of_domain=False)
    b = SegmentationModel(path, runtime="torch")
    frames = structured_frames(3, 1280, 720, seed=11)
    x = np.stack([a._preprocess(f) for f in frames])
    la, lb = a._run(x)[0], b._run(x)[0]
    np.testing.assert_allclose(la, lb, atol=1e-3)
    assert ((la >= 0) != (lb >= 0)).mean() < 1e-3
    for fa, fb in zip(a.predict_batch(frames), b.predict_batch(frames)):
        assert len(fa.objects) == len(fb.objects)


def test_torch_runtime_refuses_an_int8_graph_by_name():
    from pathlib import Path

    from perception.runtimes.base import RuntimeUnavailable

    path = Path(__file__).resolve().parents[3] / "perception" / "weights" / "polyp.onnx"
    if not path.is_file():
        pytest.skip(f"shipped model {path} is not present")
    with pytest.raises(RuntimeUnavailable, match="8-bit integer graph.*'polyp-accurate' on torch"):
        SegmentationModel(path, runtime="torch")
