"""Rewrites of the deploy form (``starpose.models.deploy``) that the int8 XNNPACK path needs.

The deploy form splits each 7x7 depthwise convolution into bands of kernel rows
(:class:`~starpose.models.deploy.BandedDepthwiseConv2d`: XNNPACK's depthwise micro-kernels take
at most 25 taps). Each band reads a vertically shifted window, which the float graph expresses
as one ``pad`` of the input plus a ``slice`` per band. In a quantized graph those two ops break
the XNNPACK delegate: a ``pad`` between a dequantize and a float op is compiled as a quantized
pad with a float output (``StaticConstantPad ... xnn_status_invalid_parameter`` at load time),
and sharing the pad's quantization parameters with its input makes the following convolution
fail to compile instead. Both seen with ExecuTorch 1.5.1.

:class:`SymmetricBandDepthwiseConv2d` computes the same convolution with neither op: the kernel
rows are grouped symmetrically about the centre row, so every group is an ordinary depthwise
convolution with symmetric padding:

- the centre rows ``c-a .. c+a`` as a ``(2a+1, kw)`` convolution (padding ``a·d``);
- each remaining pair of rows ``c-j, c+j`` as a ``(2, kw)`` convolution with vertical dilation
  ``2j·d`` and padding ``j·d`` (its two taps sit exactly ``j·d`` above and below the centre).

For a 7x7 kernel: 3x7 (21 taps) + 2x7 dilated 4 (14) + 2x7 dilated 6 (14), summed. XNNPACK runs
each as a depthwise micro-kernel; exact up to float summation order.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from starpose.models.deploy import XNNPACK_MAX_DEPTHWISE_TAPS, BandedDepthwiseConv2d

__all__ = ["SymmetricBandDepthwiseConv2d", "int8_ready", "full_kernel"]


@torch.no_grad()
def full_kernel(banded: BandedDepthwiseConv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The original ``(C, 1, kh, kw)`` kernel and bias of a banded depthwise convolution."""
    weight = torch.cat([band.weight for band in banded.bands], dim=2)
    bias = banded.bands[0].bias
    return weight.clone(), None if bias is None else bias.clone()


class SymmetricBandDepthwiseConv2d(nn.Module):
    """A stride-1 depthwise convolution with an odd, tall kernel as a sum of depthwise
    convolutions over row groups symmetric about the centre row (see the module docstring)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
                 dilation: tuple[int, int], max_taps: int = XNNPACK_MAX_DEPTHWISE_TAPS) -> None:
        super().__init__()
        channels, _, kh, kw = weight.shape
        dh, dw = dilation
        if kh % 2 == 0:
            raise ValueError(f"kernel height {kh} is even: no centre row to group around")
        if padding[0] != dh * (kh // 2) or padding[1] != dw * (kw // 2):
            raise ValueError(f"padding {padding} is not 'same' for kernel {kh}x{kw}, dilation {dilation}")
        if 2 * kw > max_taps:
            raise ValueError(f"kernel width {kw}: a row pair has {2 * kw} taps, more than {max_taps}")
        c = kh // 2
        a = min(c, (max_taps // kw - 1) // 2)  # centre half-height whose group fits max_taps
        self.convs = nn.ModuleList()
        with torch.no_grad():
            centre = nn.Conv2d(channels, channels, (2 * a + 1, kw), 1, (a * dh, padding[1]), (dh, dw),
                               groups=channels, bias=bias is not None)
            centre.weight.copy_(weight[:, :, c - a:c + a + 1])
            if bias is not None:
                centre.bias.copy_(bias)
            self.convs.append(centre)
            for j in range(a + 1, c + 1):
                pair = nn.Conv2d(channels, channels, (2, kw), 1, (j * dh, padding[1]), (2 * j * dh, dw),
                                 groups=channels, bias=False)
                pair.weight.copy_(torch.stack([weight[:, :, c - j], weight[:, :, c + j]], dim=2))
                self.convs.append(pair)

    @classmethod
    def from_banded(cls, banded: BandedDepthwiseConv2d) -> "SymmetricBandDepthwiseConv2d":
        weight, bias = full_kernel(banded)
        kh, kw = weight.shape[2:]
        d = banded.dilation
        return cls(weight, bias, (banded.pad, banded.bands[0].padding[1]), (d, banded.bands[0].dilation[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


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
