"""MMCV building blocks the peer networks are made of, with MMCV's parameter names.

``ConvModule`` is conv → norm → activation where the conv has a bias only when there is no norm
(MMCV's ``bias='auto'``); ``DepthwiseSeparableConvModule`` is a depthwise ``ConvModule`` followed by a
pointwise one. Keeping the attribute names (``conv``, ``bn``, ``depthwise_conv``, ``pointwise_conv``)
is what lets the peers' state-dict keys equal MMPose's.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

__all__ = ["ConvModule", "DepthwiseSeparableConvModule", "HeatmapHead", "TopDownPeer", "calibrate_batchnorm"]

ActFactory = Callable[[], nn.Module] | None


class ConvModule(nn.Module):
    """Conv2d (bias only without norm) → optional BatchNorm2d → optional activation."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None,
                 groups: int = 1, norm: bool = True, act: ActFactory = nn.ReLU,
                 bn_eps: float = 1e-5) -> None:
        super().__init__()
        padding = k // 2 if padding is None else padding
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=not norm)
        self.bn = nn.BatchNorm2d(cout, eps=bn_eps) if norm else nn.Identity()
        self.activate = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class DepthwiseSeparableConvModule(nn.Module):
    """Depthwise k x k ``ConvModule`` then pointwise 1x1 ``ConvModule`` (each with BN)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1,
                 dw_act: ActFactory = nn.ReLU, pw_act: ActFactory = nn.ReLU) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, k, stride, groups=cin, act=dw_act)
        self.pointwise_conv = ConvModule(cin, cout, 1, act=pw_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class HeatmapHead(nn.Module):
    """MMPose ``HeatmapHead`` as the Lite-HRNet configs use it: no deconvolutions, one 1x1 conv."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 1)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.final_layer(feats[-1])


class TopDownPeer(nn.Module):
    """MMPose ``TopdownPoseEstimator`` at inference: ``head(backbone(x))`` (no neck)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, name: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.name = name

    def forward(self, x: torch.Tensor):
        return self.head(self.backbone(x))


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, batch: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to those of ``batch`` (one train-mode pass with a
    cumulative average), then return the model in eval mode.

    With PyTorch's default init and fresh BN statistics (mean 0, var 1) the activations of a deep
    random network shrink layer after layer until the output no longer depends on the input and
    intermediate values drift into subnormal floats, which some CPUs process far more slowly.
    Calibrated statistics keep a random network's activations at a trained network's scale, so
    forward passes mean something and latency is measured on realistic numbers.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model(batch)
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    return model.eval()
