"""Rewrites of the deploy form (``starpose.models.deploy``) that the int8 XNNPACK path needs.

A depthwise convolution with more than 25 taps split into bands of consecutive kernel rows
(:class:`~starpose.models.deploy.BandedDepthwiseConv2d`) reads a vertically shifted window per band,
which the float graph expresses as one ``pad`` of the input plus a ``slice`` per band. In a
quantized graph those two ops break the XNNPACK delegate: a ``pad`` between a dequantize and a
float op is compiled as a quantized pad with a float output (``StaticConstantPad ...
xnn_status_invalid_parameter`` at load time), and sharing the pad's quantization parameters with
its input makes the following convolution fail to compile instead. Both seen with ExecuTorch 1.5.1.

:class:`~starpose.models.deploy.SymmetricBandDepthwiseConv2d` computes the same convolution with
neither op (row groups symmetric about the centre row, each padding by itself). The deploy form
uses it for every StarPose kernel since it also measured faster in fp32; :func:`int8_ready`
still swaps any consecutive-row bands a deploy network holds (kernels built with the fallback,
or networks reparameterized before the change) so that nothing with a pad/slice reaches PT2E.
"""
from __future__ import annotations

import copy

import torch.nn as nn

from starpose.models.deploy import BandedDepthwiseConv2d, SymmetricBandDepthwiseConv2d

__all__ = ["SymmetricBandDepthwiseConv2d", "int8_ready"]


def int8_ready(network: nn.Module) -> nn.Module:
    """A copy of a deploy-form network with every banded depthwise convolution replaced by its
    :class:`SymmetricBandDepthwiseConv2d` twin (same function, no pad/slice ops). Attributes the
    exporters read (``spec``, ``variant``, ``cfg``) are kept."""
    out = copy.deepcopy(network)
    _swap(out)
    return out


def _swap(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, BandedDepthwiseConv2d):
            setattr(module, name, SymmetricBandDepthwiseConv2d.from_banded(child))
        else:
            _swap(child)
