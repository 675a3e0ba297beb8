"""Lite-HRNet, as MMPose builds it, with the top-down heatmap head of MMPose's COCO configs.

"Lite-HRNet: A Lightweight High-Resolution Network" (Yu et al., CVPR 2021). A ShuffleNet-like
stem, then three stages of parallel branches (1/4 .. 1/32 resolution) made of conditional channel
weighting blocks and multi-resolution fusion, an iterative head that walks back up to the 1/4
branch, and a 1x1 conv to K heatmaps (64x48 for a 256x192 crop).

Plain PyTorch, parameter names equal to MMPose's, so that the state-dict keys and shapes match
``../shared/reference/peers_manifest.json``. It computes what MMPose computes, including one
quirk of MMPose's ``LiteHRModule`` fusion (see ``LiteHRModule._fuse``): latency is what these peers
are for, so they run the same operations the released models run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ConvModule, DepthwiseSeparableConvModule, HeatmapHead, TopDownPeer

__all__ = ["LiteHRNet", "LiteHRNetConfig", "litehrnet_18", "litehrnet_30"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _dw_pw(cin: int, cout: int, stride: int, relu: bool) -> list[nn.Module]:
    """Depthwise 3x3 + BN, pointwise 1x1 + BN (+ ReLU): MMPose's transition / fusion unit."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU())
    return layers


class Stem(nn.Module):
    """3x3/s2 conv, then a ShuffleNetV2 downsampling unit (two half-width branches, shuffle)."""

    def __init__(self, cin: int, stem_channels: int, out_channels: int, expand_ratio: int) -> None:
        super().__init__()
        self.conv1 = ConvModule(cin, stem_channels, 3, stride=2)
        mid = int(round(stem_channels * expand_ratio))
        half = stem_channels // 2
        same = stem_channels == out_channels
        inc = out_channels - half if same else out_channels - stem_channels
        self.branch1 = nn.Sequential(
            ConvModule(half, half, 3, stride=2, groups=half, act=None),
            ConvModule(half, inc, 1),
        )
        self.expand_conv = ConvModule(half, mid, 1)
        self.depthwise_conv = ConvModule(mid, mid, 3, stride=2, groups=mid, act=None)
        self.linear_conv = ConvModule(mid, half if same else stem_channels, 1)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.conv1(x).chunk(2, dim=1)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return channel_shuffle(torch.cat((self.branch1(x1), x2), dim=1), 2)


class SpatialWeighting(nn.Module):
    """Squeeze-excitation on one branch: global pool → 1x1 (ReLU) → 1x1 (sigmoid) → scale."""

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        self.conv1 = ConvModule(channels, int(channels / ratio), 1, norm=False, act=nn.ReLU)
        self.conv2 = ConvModule(int(channels / ratio), channels, 1, norm=False, act=nn.Sigmoid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1)))


class CrossResolutionWeighting(nn.Module):
    """Channel weights computed from all branches pooled to the smallest one's size."""

    def __init__(self, channels: list[int], ratio: int) -> None:
        super().__init__()
        self.channels = list(channels)
        total = sum(channels)
        self.conv1 = ConvModule(total, int(total / ratio), 1, act=nn.ReLU)
        self.conv2 = ConvModule(int(total / ratio), total, 1, act=nn.Sigmoid)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        size = xs[-1].shape[-2:]
        pooled = [F.adaptive_avg_pool2d(s, size) for s in xs[:-1]] + [xs[-1]]
        weights = torch.split(self.conv2(self.conv1(torch.cat(pooled, dim=1))), self.channels, dim=1)
        return [s * F.interpolate(a, size=s.shape[-2:], mode="nearest") for s, a in zip(xs, weights)]


class ConditionalChannelWeighting(nn.Module):
    """Lite-HRNet's block: half the channels pass, the other half is cross-resolution weighted,
    depthwise-convolved and spatially weighted; then concat and channel shuffle."""

    def __init__(self, in_channels: list[int], reduce_ratio: int) -> None:
        super().__init__()
        half = [c // 2 for c in in_channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(half, reduce_ratio)
        self.depthwise_convs = nn.ModuleList(ConvModule(c, c, 3, groups=c, act=None) for c in half)
        self.spatial_weighting = nn.ModuleList(SpatialWeighting(c, 4) for c in half)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        parts = [s.chunk(2, dim=1) for s in xs]
        x2 = self.cross_resolution_weighting([p[1] for p in parts])
        x2 = [sw(dw(s)) for s, dw, sw in zip(x2, self.depthwise_convs, self.spatial_weighting)]
        return [channel_shuffle(torch.cat([p[0], s], dim=1), 2) for p, s in zip(parts, x2)]


class LiteHRModule(nn.Module):
    """Weighting blocks on all branches, then fusion of every branch into every branch."""

    def __init__(self, in_channels: list[int], num_blocks: int, reduce_ratio: int) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.layers = nn.Sequential(
            *(ConditionalChannelWeighting(self.in_channels, reduce_ratio) for _ in range(num_blocks))
        )
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU()

    def _make_fuse_layers(self) -> nn.ModuleList:
        ch = self.in_channels
        n = len(ch)
        rows = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv + BN, nearest upsampling
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, bias=False), nn.BatchNorm2d(ch[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:  # higher resolution: (i - j) stride-2 depthwise-separable steps
                    steps = [nn.Sequential(*_dw_pw(ch[j], ch[j], 2, relu=True)) for _ in range(i - j - 1)]
                    steps.append(nn.Sequential(*_dw_pw(ch[j], ch[i], 2, relu=False)))
                    row.append(nn.Sequential(*steps))
            rows.append(nn.ModuleList(row))
        return nn.ModuleList(rows)

    def _fuse(self, out: list[torch.Tensor]) -> list[torch.Tensor]:
        """MMPose's fusion, operation for operation.

        MMPose writes ``y = out[0] if i == 0 else fuse[i][0](out[0])`` and then adds *every* j,
        j = 0 included, with ``y += ...``. So branch 0 gets ``out[0]`` twice, every other branch
        gets ``fuse[i][0](·)`` computed twice, and because ``y`` aliases ``out[0]`` for i == 0 the
        in-place sum overwrites ``out[0]``: branches i > 0 read the pre-ReLU fused sum of branch 0,
        not the block output. We spell that out instead of relying on aliasing.
        """
        n = len(out)
        y0 = out[0] + out[0]
        for j in range(1, n):
            y0 = y0 + self.fuse_layers[0][j](out[j])
        fused = [self.relu(y0)]
        for i in range(1, n):
            y = self.fuse_layers[i][0](y0)
            y = y + self.fuse_layers[i][0](y0)
            for j in range(1, n):
                y = y + (out[j] if j == i else self.fuse_layers[i][j](out[j]))
            fused.append(self.relu(y))
        return fused

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self._fuse(self.layers(xs))


class IterativeHead(nn.Module):
    """From the lowest resolution up: add the bilinearly upsampled previous output, then a
    depthwise-separable conv to the next branch's width."""

    def __init__(self, in_channels: list[int]) -> None:
        super().__init__()
        rev = list(in_channels)[::-1]
        self.projects = nn.ModuleList(
            DepthwiseSeparableConvModule(c, rev[i + 1] if i + 1 < len(rev) else c, 3, dw_act=None)
            for i, c in enumerate(rev)
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        ys: list[torch.Tensor] = []
        last = None
        for s, project in zip(xs[::-1], self.projects):
            if last is not None:
                s = s + F.interpolate(last, size=s.shape[-2:], mode="bilinear", align_corners=True)
            last = project(s)
            ys.append(last)
        return ys[::-1]


@dataclass(frozen=True)
class LiteHRNetConfig:
    """The ``extra`` dict of MMPose's LiteHRNet configs (all stages ``LITE`` with fusion)."""

    num_modules: tuple[int, ...]
    num_branches: tuple[int, ...] = (2, 3, 4)
    num_blocks: tuple[int, ...] = (2, 2, 2)
    reduce_ratios: tuple[int, ...] = (8, 8, 8)
    num_channels: tuple[tuple[int, ...], ...] = ((40, 80), (40, 80, 160), (40, 80, 160, 320))
    stem_channels: int = 32
    stem_out_channels: int = 32
    stem_expand_ratio: int = 1


class LiteHRNet(nn.Module):
    """Backbone: returns the 1/4-resolution feature map (as a 1-tuple, like MMPose)."""

    def __init__(self, cfg: LiteHRNetConfig, in_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = Stem(in_channels, cfg.stem_channels, cfg.stem_out_channels, cfg.stem_expand_ratio)
        prev = [self.stem.out_channels]
        self.num_stages = len(cfg.num_modules)
        for s in range(self.num_stages):
            cur = list(cfg.num_channels[s])
            setattr(self, f"transition{s}", self._make_transition(prev, cur))
            setattr(self, f"stage{s}", nn.Sequential(
                *(LiteHRModule(cur, cfg.num_blocks[s], cfg.reduce_ratios[s]) for _ in range(cfg.num_modules[s]))
            ))
            prev = cur
        self.head_layer = IterativeHead(prev)

    @staticmethod
    def _make_transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(prev):
                layers.append(nn.Sequential(*_dw_pw(prev[i], c, 1, relu=True)) if c != prev[i] else None)
            else:
                steps = [
                    nn.Sequential(*_dw_pw(prev[-1], c if k == i - len(prev) else prev[-1], 2, relu=True))
                    for k in range(i + 1 - len(prev))
                ]
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        ys = [self.stem(x)]
        for s in range(self.num_stages):
            transition = getattr(self, f"transition{s}")
            xs = []
            for j, t in enumerate(transition):
                src = ys[j] if j < len(ys) else ys[-1]
                xs.append(t(src) if t is not None else src)
            ys = getattr(self, f"stage{s}")(xs)
        return (self.head_layer(ys)[0],)


def _litehrnet(name: str, num_modules: tuple[int, ...], num_keypoints: int) -> TopDownPeer:
    backbone = LiteHRNet(LiteHRNetConfig(num_modules=num_modules))
    head = HeatmapHead(backbone.cfg.num_channels[-1][0], num_keypoints)
    return TopDownPeer(backbone, head, name)


def litehrnet_18(num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256)) -> TopDownPeer:
    """Lite-HRNet-18 (``td-hm_litehrnet-18_8xb64-210e_coco-256x192``): heatmaps at 1/4 of the crop."""
    return _litehrnet("litehrnet_18", (2, 4, 2), num_keypoints)


def litehrnet_30(num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256)) -> TopDownPeer:
    """Lite-HRNet-30 (``td-hm_litehrnet-30_8xb64-210e_coco-256x192``)."""
    return _litehrnet("litehrnet_30", (3, 8, 3), num_keypoints)
