"""NanoDet-g person detector in PyTorch.

NanoDet (RangiLyu, https://github.com/RangiLyu/nanodet, Apache-2.0) is an anchor-free one-stage
detector with a Generalized Focal Loss head (Li et al., "Generalized Focal Loss: Learning
Qualified and Distributed Bounding Boxes for Dense Object Detection", NeurIPS 2020). The "g"
model is its convolution-only member: a CSP backbone of plain 3x3 convolutions with LeakyReLU
(``CustomCspNet``), a parameter-free PAN (1x1 lateral convolutions, bilinear up- and
down-sampling, additions) and one 3x3 convolution + one 1x1 prediction per level.

This port holds the graph of the released COCO model with its batch norms folded into the
convolutions (as the released graph stores it) and keeps only the ``person`` class of the 80: the
GFL head scores each class with its own sigmoid, so slicing the prediction layer leaves the person
scores and the boxes unchanged. The network takes a normalized RGB NCHW batch and returns the raw
head outputs of every level concatenated; :mod:`starpose.detect.processing` (numpy) and
:class:`starpose.detect.bundle.DetectorBundle` (in graph) decode them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .spec import PERSON_DETECTOR_SPEC, DetectorSpec

__all__ = ["NanoDetPerson", "create_detector"]


class ConvAct(nn.Module):
    """Convolution with bias (the batch norm folded in) followed by LeakyReLU(0.1)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class TinyResBlock(nn.Module):
    """Halve the channels, one more 3x3, concatenate both: ``cat(mid(in(x)), in(x))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.in_conv = ConvAct(channels, channels // 2)
        self.mid_conv = ConvAct(channels // 2, channels // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        return torch.cat((self.mid_conv(x), x), 1)


class CspBlock(nn.Module):
    """CSP stage: a (strided) 3x3, ``num_res`` tiny residual blocks and a 3x3 on that branch, and
    the stage input concatenated back (the output has twice the channels)."""

    def __init__(self, channels: int, num_res: int, stride: int) -> None:
        super().__init__()
        self.in_conv = ConvAct(channels, channels, stride=stride)
        self.res_blocks = nn.Sequential(*[TinyResBlock(channels) for _ in range(num_res)])
        self.res_out_conv = ConvAct(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        return torch.cat((self.res_out_conv(self.res_blocks(x)), x), 1)


class EdgeMaxPool(nn.Module):
    """``MaxPool2d(3, 2, padding=1)`` computed on the input with its border row and column
    repeated instead of ``-inf`` padding: every padded cell of a window repeats a cell of the same
    window, so the maxima are identical. Converters turn ``-inf`` padding into a padding op that
    LiteRT's XNNPACK delegate refuses (splitting the graph); slices and concatenations it takes."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x[:, :, :1], x, x[:, :, -1:]), 2)
        x = torch.cat((x[:, :, :, :1], x, x[:, :, :, -1:]), 3)
        return self.pool(x)


class CspBackbone(nn.Module):
    """NanoDet's ``CustomCspNet`` as the g model configures it; returns strides 8, 16 and 32."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvAct(3, 32, stride=2)
        self.pool = EdgeMaxPool()
        self.stage1 = CspBlock(32, 1, 1)
        self.stage2 = CspBlock(64, 2, 2)
        self.stage3 = CspBlock(128, 2, 2)
        self.stage4 = CspBlock(256, 3, 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage1(self.pool(self.stem(x)))
        c3 = self.stage2(x)
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        return [c3, c4, c5]


class Pan(nn.Module):
    """NanoDet's parameter-light PAN: 1x1 laterals, top-down bilinear upsampling and additions,
    then bottom-up bilinear downsampling and additions."""

    def __init__(self, in_channels: tuple[int, ...] = (128, 256, 512), out_channels: int = 128) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="bilinear",
                                                    align_corners=False)
        for i in range(len(lat) - 1):
            lat[i + 1] = lat[i + 1] + F.interpolate(lat[i], size=lat[i + 1].shape[-2:], mode="bilinear",
                                                    align_corners=False)
        return lat


class HeadLevel(nn.Module):
    """One level of the shared-branch GFL head: 3x3 + LeakyReLU, then a 1x1 to the person logit and
    ``4 * (reg_max + 1)`` box-side logits."""

    def __init__(self, channels: int, num_bins: int) -> None:
        super().__init__()
        self.conv = ConvAct(channels, channels)
        self.pred = nn.Conv2d(channels, 1 + 4 * num_bins, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pred(self.conv(x))


class NanoDetPerson(nn.Module):
    """NanoDet-g, person class only. ``forward`` maps a normalized RGB batch (B, 3, H, W) to
    ``(logits (B, N), box_logits (B, N, 4, reg_max + 1))`` over the ``N`` anchor points of all
    levels, level by level (stride 8 first), row-major within a level."""

    def __init__(self, spec: DetectorSpec = PERSON_DETECTOR_SPEC) -> None:
        super().__init__()
        if tuple(spec.strides) != (8, 16, 32):
            raise ValueError(f"NanoDet-g has strides (8, 16, 32), not {spec.strides}")
        self.spec = spec
        self.backbone = CspBackbone()
        self.fpn = Pan()
        self.head = nn.ModuleList(HeadLevel(128, spec.num_bins) for _ in spec.strides)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = []
        for level, feat in zip(self.head, self.fpn(self.backbone(x))):
            outs.append(level(feat).flatten(2))  # (B, 1 + 4 * bins, h * w)
        out = torch.cat(outs, 2).transpose(1, 2)  # (B, N, 1 + 4 * bins)
        b, n = out.shape[0], out.shape[1]
        # slices and reshapes rather than an index / squeeze: ops XNNPACK takes into its delegate
        return out[..., :1].reshape(b, n), out[..., 1:].reshape(b, n, 4, self.spec.num_bins)


def create_detector(pretrained: bool = True, spec: DetectorSpec = PERSON_DETECTOR_SPEC) -> NanoDetPerson:
    """The person detector network, with the packaged weights unless ``pretrained`` is False."""
    model = NanoDetPerson(spec)
    if pretrained:
        from .weights import load_detector_weights

        load_detector_weights(model)
    return model.eval()
