"""RTMPose-t / RTMPose-s: CSPNeXt backbone + RTMCC head (SimCC with a gated attention unit).

"RTMPose: Real-Time Multi-Person Pose Estimation based on MMPose" (Jiang et al., 2023). The
backbone is RTMDet's CSPNeXt (P5 arch, channel attention in every CSP layer, SPP in the last
stage, SiLU); the head is a 7x7 conv to K maps, a ScaleNorm + Linear to 256-d tokens, one GAU
(gated attention unit with squared-ReLU self-attention over the K keypoint tokens) and one Linear
per axis to SimCC vectors.

Plain PyTorch with MMPose's parameter names (state-dict keys and shapes equal
``../shared/reference/peers_manifest.json``); BatchNorm uses eps 1e-5 because the RTMPose configs
pass ``norm_cfg=dict(type='BN')``.
"""
from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ConvModule, DepthwiseSeparableConvModule, TopDownPeer

__all__ = ["CSPNeXt", "RTMCCHead", "rtmpose_t", "rtmpose_s"]

# in_channels, out_channels, num_blocks, add_identity, use_spp (before widen/deepen factors)
_P5 = ((64, 128, 3, True, False), (128, 256, 6, True, False),
       (256, 512, 6, True, False), (512, 1024, 3, False, True))


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> ConvModule:
    return ConvModule(cin, cout, k, stride, act=nn.SiLU)


class ChannelAttention(nn.Module):
    """Global average pool → 1x1 conv (bias) → hard sigmoid → scale the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(F.adaptive_avg_pool2d(x, 1)))


class SPPBottleneck(nn.Module):
    """1x1 conv to half width, concat with max-pools 5/9/13 (stride 1), 1x1 conv."""

    def __init__(self, cin: int, cout: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1 = _conv(cin, mid, 1)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernel_sizes)
        self.conv2 = _conv(mid * (len(kernel_sizes) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then depthwise-separable 5x5 (both SiLU), optional identity."""

    def __init__(self, cin: int, cout: int, add_identity: bool, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = _conv(cin, cout, 3)
        self.conv2 = DepthwiseSeparableConvModule(cout, cout, kernel_size, dw_act=nn.SiLU, pw_act=nn.SiLU)
        self.add_identity = add_identity and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage partial layer: main path through the blocks, short path 1x1, concat,
    channel attention, 1x1."""

    def __init__(self, cin: int, cout: int, num_blocks: int, add_identity: bool,
                 expand_ratio: float = 0.5) -> None:
        super().__init__()
        mid = int(cout * expand_ratio)
        self.main_conv = _conv(cin, mid, 1)
        self.short_conv = _conv(cin, mid, 1)
        self.final_conv = _conv(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid, mid, add_identity) for _ in range(num_blocks)))
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        return self.final_conv(self.attention(y))


class CSPNeXt(nn.Module):
    """CSPNeXt P5; returns the stride-32 map of the last stage (``out_indices=(4,)``)."""

    def __init__(self, deepen_factor: float, widen_factor: float, expand_ratio: float = 0.5) -> None:
        super().__init__()
        c0 = int(_P5[0][0] * widen_factor)
        self.stem = nn.Sequential(
            _conv(3, int(_P5[0][0] * widen_factor // 2), 3, 2),
            _conv(int(_P5[0][0] * widen_factor // 2), int(_P5[0][0] * widen_factor // 2), 3),
            _conv(int(_P5[0][0] * widen_factor // 2), c0, 3),
        )
        for i, (cin, cout, blocks, identity, spp) in enumerate(_P5):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            blocks = max(round(blocks * deepen_factor), 1)
            stage: list[nn.Module] = [_conv(cin, cout, 3, 2)]
            if spp:
                stage.append(SPPBottleneck(cout, cout))
            stage.append(CSPLayer(cout, cout, blocks, identity, expand_ratio))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
        self.out_channels = int(_P5[-1][1] * widen_factor)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = self.stem(x)
        for i in range(len(_P5)):
            x = getattr(self, f"stage{i + 1}")(x)
        return (x,)


class ScaleNorm(nn.Module):
    """``x / max(||x||₂ · dim^-½, eps) · g`` over the last axis."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class RTMCCBlock(nn.Module):
    """Gated attention unit (self-attention, no relative bias, no RoPE), residual with a
    learned per-channel scale as RTMPose configures it."""

    def __init__(self, dims: int, expansion_factor: int = 2, s: int = 128, eps: float = 1e-5) -> None:
        super().__init__()
        self.s = s
        self.e = int(dims * expansion_factor)
        self.o = nn.Linear(self.e, dims, bias=False)
        self.uv = nn.Linear(dims, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.ln = ScaleNorm(dims, eps)
        self.act_fn = nn.SiLU()
        self.res_scale = Scale(dims)
        self.sqrt_s = math.sqrt(s)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=2)
        base = base.unsqueeze(2) * self.gamma[None, None, :] + self.beta  # B, K, 2, s
        q, k = torch.unbind(base, dim=2)
        kernel = torch.square(F.relu(torch.bmm(q, k.permute(0, 2, 1)) / self.sqrt_s))
        return self.o(u * torch.bmm(kernel, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(x) + self._attend(x)


class RTMCCHead(nn.Module):
    """7x7 conv to K maps → flatten → ScaleNorm + Linear(HW, 256) → GAU → Linear per axis."""

    def __init__(self, in_channels: int, num_keypoints: int, input_size: tuple[int, int],
                 split_ratio: float = 2.0, kernel_size: int = 7, hidden: int = 256) -> None:
        super().__init__()
        w, h = input_size
        flat = (w // 32) * (h // 32)
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size, 1, kernel_size // 2)
        self.mlp = nn.Sequential(ScaleNorm(flat), nn.Linear(flat, hidden, bias=False))
        self.gau = RTMCCBlock(hidden)
        self.cls_x = nn.Linear(hidden, int(w * split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden, int(h * split_ratio), bias=False)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.gau(self.mlp(torch.flatten(self.final_layer(feats[-1]), 2)))
        return self.cls_x(x), self.cls_y(x)


def _rtmpose(name: str, deepen_factor: float, widen_factor: float, num_keypoints: int,
             input_size: tuple[int, int]) -> TopDownPeer:
    backbone = CSPNeXt(deepen_factor, widen_factor)
    head = RTMCCHead(backbone.out_channels, num_keypoints, input_size)
    return TopDownPeer(backbone, head, name)


def rtmpose_t(num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256)) -> TopDownPeer:
    """RTMPose-t (``rtmpose-t_8xb256-420e_coco-256x192``)."""
    return _rtmpose("rtmpose_t", 0.167, 0.375, num_keypoints, input_size)


def rtmpose_s(num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256)) -> TopDownPeer:
    """RTMPose-s (``rtmpose-s_8xb256-420e_coco-256x192``)."""
    return _rtmpose("rtmpose_s", 0.33, 0.5, num_keypoints, input_size)
