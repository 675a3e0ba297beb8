"""Deploy form of StarPose: the same function, rewritten for phone runtimes (MobileOne/FastViT style).

The eager network (``starpose.py``) mirrors the authors' release: token-wise ``nn.Linear`` and
``nn.LayerNorm`` on NHWC tensors, BatchNorm after convolutions, ``ELU + 1`` attention kernels and
4-D matmuls. Exported as is, ExecuTorch's XNNPACK partitioner leaves LayerNorm, ELU, the matmul
broadcasts (``expand_copy``), ``mean`` over tokens and ``reciprocal`` on the portable CPU path,
and the graph splits into dozens of delegate calls. ``reparameterize_model`` returns a copy that
computes the same outputs (to float rounding) out of operations that XNNPACK and LiteRT take whole:

- everything stays NCHW; token-wise Linear layers become 1x1 convolutions;
- LayerNorm over channels is ``(x - m(x)) * rsqrt(m((x - m(x))²) + eps)`` where ``m`` is a 1x1
  convolution with weights ``1/C`` (a channel mean that lowers as a convolution); its affine
  scale/shift is folded into the 1x1 convolutions that consume it, and the centring of the
  patch-embedding norm is folded into the patch-embedding convolution itself; ``eps`` is added as a
  (1, 1, 1, 1) constant, not a Python scalar (with a scalar, ExecuTorch's XNNPACK lowering adds
  a transpose per LayerNorm);
- BatchNorm is folded into the preceding convolution; the dilated stem's six-way channel
  concatenation is folded into the first patch-embedding convolution (a sum of six convolutions);
- depthwise kernels with more than 25 taps (the 7x7 ones) are split into groups of rows
  symmetric about the centre row, each an ordinary depthwise convolution with its own symmetric
  padding (3x7, then the row pairs 2 and 3 rows from the centre as dilated 2x7 kernels): XNNPACK
  only has depthwise micro-kernels up to 25 taps and runs a 7x7 depthwise convolution as a
  grouped GEMM, about 20x slower than the three depthwise convolutions that replace it. (Bands of
  consecutive rows need a pad of the input and a slice per band: 44 more operators in StarPose-t.);
- ``ELU(t) + 1`` is ``relu(t) + exp(min(t, 0))`` (identical, and XNNPACK has no ELU);
- linear attention is three 3-D ``bmm``s over (batch x heads) views of NCHW tensors, the token
  mean of the keys is a global average pool, and ``1 / (·)`` is a division.

Each eager block has one ``reparameterize`` implementation (registered on the block type) that
builds its deploy twin from the block's weights; ``reparameterize_model`` applies them to a deep
copy. The deploy copy is for inference only (BatchNorm statistics are baked in).
"""
from __future__ import annotations

import copy
from functools import singledispatch

import torch
import torch.nn as nn
import torch.nn.functional as F

from .starpose import (
    AggregationBlock,
    ConvBNReLU,
    ConvStem,
    DilatedStem,
    EncoderLayer,
    GlobalMixer,
    LinearAttention,
    PatchEmbed,
    RegionalMixer,
    SimCCHead,
    Stage,
    StarFFN,
    StarPose,
    StarPoseBackbone,
)

__all__ = ["reparameterize_model", "reparameterize", "StarPoseDeploy", "ChannelNorm",
           "SymmetricBandDepthwiseConv2d", "BandedDepthwiseConv2d"]


# --------------------------------------------------------------------------- weight folding


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``bn(conv(x))`` as one convolution (eval-mode statistics)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = _conv_like(conv, bias=True)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


@torch.no_grad()
def linear_to_conv(linear: nn.Linear, norm: nn.LayerNorm | None = None) -> nn.Conv2d:
    """A token-wise Linear as a 1x1 convolution; ``norm``'s affine (applied before it) folded in."""
    weight, bias = linear.weight, linear.bias
    if bias is None:
        bias = torch.zeros(linear.out_features, dtype=weight.dtype)
    if norm is not None and norm.elementwise_affine:
        if norm.bias is not None:
            bias = bias + weight @ norm.bias
        weight = weight * norm.weight[None, :]
    conv = nn.Conv2d(linear.in_features, linear.out_features, 1)
    conv.weight.copy_(weight[:, :, None, None])
    conv.bias.copy_(bias)
    return conv


@torch.no_grad()
def _conv_like(conv: nn.Conv2d, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, bias=bias)


@torch.no_grad()
def _copy_conv(conv: nn.Conv2d) -> nn.Conv2d:
    out = _conv_like(conv, bias=conv.bias is not None)
    out.load_state_dict(conv.state_dict())
    return out


@torch.no_grad()
def _centred_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A convolution whose outputs have zero mean over channels at every pixel: the
    ``x - mean_c(x)`` of a LayerNorm that follows it, folded into its weights."""
    out = _copy_conv(conv)
    out.weight.sub_(out.weight.mean(dim=0, keepdim=True))
    if out.bias is not None:
        out.bias.sub_(out.bias.mean())
    return out


# --------------------------------------------------------------------------- deploy blocks

# XNNPACK's depthwise micro-kernels cover kernels of at most this many taps; a larger depthwise
# kernel falls back to a grouped (one channel per group) IGEMM. Measured with ExecuTorch 1.5.1's
# XNNPACK on x86: 7x7 depthwise on 32x64x48 takes 2.1 ms as IGEMM, 3x7 + 3x7 + 1x7 bands 0.24 ms.
XNNPACK_MAX_DEPTHWISE_TAPS = 25


class SymmetricBandDepthwiseConv2d(nn.Module):
    """A stride-1 depthwise convolution with an odd, tall kernel and 'same' padding, as a sum of
    depthwise convolutions over groups of kernel rows symmetric about the centre row:

    - the centre rows ``c-a .. c+a`` as a ``(2a+1, kw)`` convolution (padding ``a·d``), ``a`` as
      large as ``XNNPACK_MAX_DEPTHWISE_TAPS`` allows;
    - each remaining pair of rows ``c-j, c+j`` as a ``(2, kw)`` convolution with vertical dilation
      ``2j·d`` and padding ``j·d`` (its two taps sit exactly ``j·d`` above and below the centre).

    For a 7x7 kernel: 3x7 (21 taps) + 2x7 dilated 4 (14) + 2x7 dilated 6 (14), summed. Every group
    pads by itself, so the graph has no pad or slice ops (which break the int8 delegate, and whose
    slices a second thread does not speed up); exact up to float summation order.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
                 dilation: tuple[int, int], max_taps: int = XNNPACK_MAX_DEPTHWISE_TAPS) -> None:
        super().__init__()
        channels, _, kh, kw = weight.shape
        dh, dw = dilation
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"kernel {kh}x{kw} has an even side: no centre to group around")
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
    def from_conv(cls, conv: nn.Conv2d) -> "SymmetricBandDepthwiseConv2d":
        if conv.stride != (1, 1) or conv.groups != conv.in_channels or conv.in_channels != conv.out_channels:
            raise ValueError("SymmetricBandDepthwiseConv2d takes a stride-1 depthwise convolution")
        if not isinstance(conv.padding, tuple):
            raise ValueError(f"padding {conv.padding!r} is not 'same' as explicit sizes")
        return cls(conv.weight.detach(), None if conv.bias is None else conv.bias.detach(),
                   conv.padding, conv.dilation)

    @classmethod
    def from_banded(cls, banded: "BandedDepthwiseConv2d") -> "SymmetricBandDepthwiseConv2d":
        weight = torch.cat([band.weight.detach() for band in banded.bands], dim=2)
        bias = banded.bands[0].bias
        return cls(weight, None if bias is None else bias.detach(),
                   (banded.pad, banded.bands[0].padding[1]), (banded.dilation, banded.bands[0].dilation[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class BandedDepthwiseConv2d(nn.Module):
    """A stride-1 depthwise convolution with a large kernel, as a sum of depthwise convolutions
    over bands of kernel rows (each band at most ``XNNPACK_MAX_DEPTHWISE_TAPS`` taps): the general
    fallback for kernels :class:`SymmetricBandDepthwiseConv2d` cannot express (even heights,
    padding other than 'same').

    The input is zero-padded vertically once; band ``[r0, r0 + rows)`` reads the rows that the
    original kernel's rows ``r0..`` would read, and pads horizontally by itself. Exact up to float
    summation order.
    """

    def __init__(self, conv: nn.Conv2d, max_taps: int = XNNPACK_MAX_DEPTHWISE_TAPS) -> None:
        super().__init__()
        if conv.stride != (1, 1) or conv.groups != conv.in_channels or conv.in_channels != conv.out_channels:
            raise ValueError("BandedDepthwiseConv2d takes a stride-1 depthwise convolution")
        kh, kw = conv.kernel_size
        if kw > max_taps:
            raise ValueError(f"kernel width {kw} exceeds {max_taps} taps")
        self.pad = conv.padding[0]
        self.dilation = conv.dilation[0]
        rows = max_taps // kw
        self.starts = list(range(0, kh, rows))
        self.bands = nn.ModuleList()
        for r0 in self.starts:
            th = min(rows, kh - r0)
            band = nn.Conv2d(conv.in_channels, conv.out_channels, (th, kw), 1, (0, conv.padding[1]),
                             conv.dilation, conv.groups, bias=r0 == 0 and conv.bias is not None)
            with torch.no_grad():
                band.weight.copy_(conv.weight[:, :, r0:r0 + th])
                if band.bias is not None:
                    band.bias.copy_(conv.bias)
            self.bands.append(band)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        xp = F.pad(x, (0, 0, self.pad, self.pad))
        out = None
        for r0, band in zip(self.starts, self.bands):
            top = self.dilation * r0
            y = band(xp[:, :, top:top + h + self.dilation * (band.kernel_size[0] - 1)])
            out = y if out is None else out + y
        return out


def depthwise_for_xnnpack(conv: nn.Conv2d) -> nn.Module:
    """A copy of a depthwise convolution, split into row groups when its kernel is too large for
    XNNPACK: symmetric groups where they fit (every StarPose kernel), consecutive bands otherwise."""
    kh, kw = conv.kernel_size
    if conv.groups == conv.in_channels and kh * kw > XNNPACK_MAX_DEPTHWISE_TAPS:
        try:
            return SymmetricBandDepthwiseConv2d.from_conv(conv)
        except ValueError:  # even kernel side or padding other than 'same'
            return BandedDepthwiseConv2d(conv)
    return _copy_conv(conv)



class ChannelNorm(nn.Module):
    """LayerNorm over the channels of an NCHW tensor, in ops every mobile delegate takes.

    The channel mean is a 1x1 convolution with weights ``1/C`` (XNNPACK's ``mean`` only reduces
    spatial axes); with ``centred`` the input is already zero-mean over channels (the preceding
    convolution was centred), so only the variance is computed. ``weight``/``bias`` are the affine
    part when it could not be folded into a consumer.
    """

    def __init__(self, channels: int, eps: float, centred: bool = False,
                 weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.centred = centred
        self.register_buffer("mean_weight", torch.full((1, channels, 1, 1), 1.0 / channels))
        # eps as a 4-D constant rather than a Python scalar: with a scalar add, ExecuTorch's XNNPACK
        # lowering adds a transpose per LayerNorm (30 more operators in StarPose-t; benchmarks/README.md).
        # Not in the state dict: it is rebuilt from ``eps``.
        self.register_buffer("eps_tensor", torch.full((1, 1, 1, 1), eps), persistent=False)
        self.weight = None if weight is None else nn.Parameter(weight.detach().reshape(1, -1, 1, 1).clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.centred:
            x = x - F.conv2d(x, self.mean_weight)
        x = x * torch.rsqrt(F.conv2d(x * x, self.mean_weight) + self.eps_tensor)
        if self.weight is not None:
            x = x * self.weight
        if self.bias is not None:
            x = x + self.bias
        return x


def attention_kernel(t: torch.Tensor) -> torch.Tensor:
    """``ELU(t) + 1`` written as ``relu(t) + exp(min(t, 0))``."""
    return F.relu(t) + torch.exp(torch.clamp(t, max=0.0))


class DeployConvAct(nn.Module):
    def __init__(self, conv: nn.Conv2d, act: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class DilatedStemEmbed(nn.Module):
    """The dilated stem and stage 1's patch-embedding convolution without the 96-channel
    concatenation between them: ``conv(cat_i(GELU(branch_i(x)))) = Σ_i conv_i(GELU(branch_i(x)))``
    where ``conv_i`` holds the input channels of branch ``i``.

    Concatenating along channels is a strided copy in NHWC (XNNPACK spent more time copying the
    six branches than convolving them), and a six-way concatenation is more than LiteRT's XNNPACK
    delegate accepts.
    """

    def __init__(self, branches: nn.ModuleList, projections: nn.ModuleList) -> None:
        super().__init__()
        self.branches = branches
        self.act = nn.GELU()
        self.projections = projections

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for branch, projection in zip(self.branches, self.projections):
            y = projection(self.act(branch(x)))
            out = y if out is None else out + y
        return out


@torch.no_grad()
def _split_input_channels(conv: nn.Conv2d, sizes: list[int]) -> nn.ModuleList:
    """``conv`` as one convolution per input-channel group (bias on the first), to be summed."""
    parts = nn.ModuleList()
    start = 0
    for i, size in enumerate(sizes):
        part = nn.Conv2d(size, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                         bias=i == 0 and conv.bias is not None)
        part.weight.copy_(conv.weight[:, start:start + size])
        if part.bias is not None:
            part.bias.copy_(conv.bias)
        parts.append(part)
        start += size
    return parts


class DeployPatchEmbed(nn.Module):
    """Channel-centred stride-2 conv → variance normalisation → per-channel affine."""

    def __init__(self, projection: nn.Module, norm: ChannelNorm) -> None:
        super().__init__()
        self.projection = projection
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.projection(x))


class DeployStarFFN(nn.Module):
    def __init__(self, expand: nn.Conv2d, dwconv: nn.Module, project: nn.Conv2d) -> None:
        super().__init__()
        self.expand = expand
        self.dwconv = dwconv
        self.act = nn.GELU()
        self.project = project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.dwconv(self.expand(x)))
        return self.project(h * h)


class DeployLinearAttention(nn.Module):
    """Per head h: ``out = (v kᵀ / n) q / (mean_n(k)ᵀ q + 1e-6)`` on (B·heads, d, n) views."""

    def __init__(self, q: nn.Conv2d, k: nn.Conv2d, lepe: nn.Module, num_heads: int) -> None:
        super().__init__()
        self.q = q
        self.k = k
        self.lepe = lepe
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = h * w
        bh = b * self.num_heads
        q = attention_kernel(self.q(x))
        k = attention_kernel(self.k(x))
        dq = q.shape[1] // self.num_heads
        k_mean = k.mean(dim=(2, 3), keepdim=True).reshape(bh, 1, dq)
        q = q.reshape(bh, dq, n)
        k = k.reshape(bh, dq, n)
        v = x.reshape(bh, c // self.num_heads, n)
        if not torch.jit.is_tracing() and self.num_heads == 1 and n % 2 == 0:
            # One head: at batch 1 a bmm with two activation operands becomes a FULLY_CONNECTED with
            # a non-constant weight in LiteRT, which its XNNPACK delegate refuses (the graph splits
            # and that op runs on the interpreter). Summing two half-length products is the same
            # kᵀv and stays a delegated BATCH_MATMUL. Decided by the head count, not by the batch:
            # the int8 path captures the graph with a dynamic batch (traced at 2) and deploys it at
            # 1, where a batch-dependent choice would bring the FULLY_CONNECTED back. torch.export
            # sees plain ints for n; under torch.jit.trace the sizes are traced tensors, and a
            # branch on them would freeze this input's shape into the TorchScript graph (the
            # TracerWarning): TorchScript, which has no such delegate, takes the general product.
            # Shapes with 3-D ops only (the deploy form stays free of 4-D permutes). Dynamic sizes
            # are never 1 to torch.export, so the capture takes the general branch without a guard.
            half = n // 2
            if bh == 1:
                v2 = v.reshape(c, 2, half).transpose(0, 1)
                k2 = k.reshape(dq, 2, half).permute(1, 2, 0)
            else:  # first halves of every batch·head, then second halves
                v2 = v.reshape(bh * c, 2, half).transpose(0, 1).reshape(2 * bh, c, half)
                k2 = k.reshape(bh * dq, 2, half).transpose(0, 1).reshape(2 * bh, dq, half).transpose(1, 2)
            halves = torch.bmm(v2, k2)  # 2·bh, dv, dq (a slice + add, which both delegates take; a sum over a dim is not)
            kv = (halves[:bh] + halves[bh:]) * (1.0 / n)  # bh, dv, dq
        else:
            kv = torch.bmm(v, k.transpose(1, 2)) * (1.0 / n)  # bh, dv, dq
        out = torch.bmm(kv, q) / (torch.bmm(k_mean, q) + 1e-6)  # bh, dv, n
        return out.reshape(b, c, h, w) + self.lepe(x)


class DeployGlobalMixer(nn.Module):
    def __init__(self, in_proj: nn.Conv2d, act_proj: nn.Conv2d, dwc: nn.Module,
                 attn: DeployLinearAttention, out_proj: nn.Conv2d) -> None:
        super().__init__()
        self.in_proj = in_proj
        self.act_proj = act_proj
        self.dwc = dwc
        self.attn = attn
        self.out_proj = out_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.silu(self.act_proj(x))
        u = F.silu(self.dwc(self.in_proj(x)))
        return self.out_proj(self.attn(u) * gate)


class DeployRegionalMixer(nn.Module):
    def __init__(self, in_proj: nn.Conv2d, act_proj: nn.Conv2d, dwc: nn.Sequential, out_proj: nn.Conv2d) -> None:
        super().__init__()
        self.in_proj = in_proj
        self.act_proj = act_proj
        self.dwc = dwc
        self.act = nn.GELU()
        self.out_proj = out_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.in_proj(x) * F.silu(self.act_proj(x))
        return self.out_proj(self.act(self.dwc(u)))


class DeployEncoderLayer(nn.Module):
    """``x + Mixer(norm(x))`` then ``x + StarFFN(norm(x))``; the norms' affine lives in the
    mixer's and the FFN's first convolutions."""

    def __init__(self, norm1: ChannelNorm, attn: nn.Module, norm2: ChannelNorm, ffn: DeployStarFFN) -> None:
        super().__init__()
        self.norm1 = norm1
        self.attn = attn
        self.norm2 = norm2
        self.ffn = ffn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class DeployAggregationBlock(nn.Module):
    def __init__(self, norm: ChannelNorm, in_proj: nn.Conv2d, res_proj: nn.Conv2d,
                 convs: nn.ModuleList, out_proj: nn.Conv2d) -> None:
        super().__init__()
        self.norm = norm
        self.in_proj = in_proj
        self.res_proj = res_proj
        self.convs = convs
        self.act = nn.GELU()
        self.out_proj = out_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.norm(x)
        h = self.in_proj(t) * F.silu(self.res_proj(t))
        y = self.act(self.convs[0](h))
        for conv in self.convs[1:]:
            y = y + self.act(conv(h))
        return self.out_proj(y) + x


class DeployStage(nn.Module):
    def __init__(self, patch_embed: DeployPatchEmbed, layers: nn.ModuleList, aggregation: DeployAggregationBlock):
        super().__init__()
        self.patch_embed = patch_embed
        self.layers = layers
        self.aggregation = aggregation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.aggregation(x)


class DeployBackbone(nn.Module):
    def __init__(self, stem: nn.Module, stages: nn.ModuleList, out_channels: int) -> None:
        super().__init__()
        self.stem = stem
        self.layers = stages
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.layers:
            x = stage(x)
        return x


class StarPoseDeploy(nn.Module):
    """Deploy twin of :class:`StarPose`: same call signature, ``spec``, ``variant`` and ``cfg``."""

    def __init__(self, source: StarPose, backbone: DeployBackbone, head: SimCCHead) -> None:
        super().__init__()
        self.cfg = source.cfg
        self.variant = source.variant
        self.spec = source.spec
        self.backbone = backbone
        self.head = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


# --------------------------------------------------------------------------- reparameterize


@singledispatch
def reparameterize(block: nn.Module, norm: nn.LayerNorm | None = None) -> nn.Module:
    """Deploy twin of one eager StarPose block (``norm``: a LayerNorm to fold into its input)."""
    raise TypeError(f"no deploy form for {type(block).__name__}")


@reparameterize.register
def _reparameterize_conv_bn_relu(block: ConvBNReLU, norm: None = None) -> DeployConvAct:
    return DeployConvAct(fuse_conv_bn(block.conv, block.bn), nn.ReLU())


@reparameterize.register
def _reparameterize_conv_stem(block: ConvStem, norm: None = None) -> nn.Sequential:
    return nn.Sequential(reparameterize(block.conv1), reparameterize(block.conv2), reparameterize(block.conv3))


@reparameterize.register
def _reparameterize_dilated_stem(block: DilatedStem, norm: None = None) -> DilatedStem:
    # Standalone it stays as it is; inside a backbone its concatenation is folded into the first
    # patch embedding (see ``_reparameterize_backbone``).
    return copy.deepcopy(block)


@reparameterize.register
def _reparameterize_patch_embed(block: PatchEmbed, norm: None = None) -> DeployPatchEmbed:
    ln = block.norm
    return DeployPatchEmbed(
        _centred_conv(block.projection),
        ChannelNorm(ln.normalized_shape[0], ln.eps, centred=True, weight=ln.weight, bias=ln.bias),
    )


@reparameterize.register
def _reparameterize_star_ffn(block: StarFFN, norm: nn.LayerNorm | None = None) -> DeployStarFFN:
    expand = block.layers1[0]
    folded = linear_to_conv(_conv1x1_as_linear(expand), norm)
    return DeployStarFFN(folded, depthwise_for_xnnpack(block.layers1[1]), fuse_conv_bn(block.layers2[0], block.layers2[1]))


@reparameterize.register
def _reparameterize_linear_attention(block: LinearAttention, norm: None = None) -> DeployLinearAttention:
    return DeployLinearAttention(linear_to_conv(block.q), linear_to_conv(block.k), depthwise_for_xnnpack(block.lepe),
                                 block.num_heads)


@reparameterize.register
def _reparameterize_global_mixer(block: GlobalMixer, norm: nn.LayerNorm | None = None) -> DeployGlobalMixer:
    return DeployGlobalMixer(linear_to_conv(block.in_proj, norm), linear_to_conv(block.act_proj, norm),
                             depthwise_for_xnnpack(block.dwc), reparameterize(block.attn), linear_to_conv(block.out_proj))


@reparameterize.register
def _reparameterize_regional_mixer(block: RegionalMixer, norm: nn.LayerNorm | None = None) -> DeployRegionalMixer:
    return DeployRegionalMixer(
        linear_to_conv(block.in_proj, norm), linear_to_conv(block.act_proj, norm),
        nn.Sequential(*(depthwise_for_xnnpack(c) for c in block.dwc)),
        fuse_conv_bn(block.out_proj[0], block.out_proj[1]),
    )


@reparameterize.register
def _reparameterize_encoder_layer(block: EncoderLayer, norm: None = None) -> DeployEncoderLayer:
    return DeployEncoderLayer(
        _plain_channel_norm(block.norm1), reparameterize(block.attn, norm=block.norm1),
        _plain_channel_norm(block.norm2), reparameterize(block.ffn, norm=block.norm2),
    )


@reparameterize.register
def _reparameterize_aggregation(block: AggregationBlock, norm: None = None) -> DeployAggregationBlock:
    return DeployAggregationBlock(
        _plain_channel_norm(block.norm),
        linear_to_conv(block.in_proj, block.norm), linear_to_conv(block.res_proj[0], block.norm),
        nn.ModuleList(depthwise_for_xnnpack(c[0]) for c in block.convs),
        fuse_conv_bn(block.out_proj[0], block.out_proj[1]),
    )


@reparameterize.register
def _reparameterize_stage(block: Stage, norm: None = None) -> DeployStage:
    return DeployStage(reparameterize(block[0]), nn.ModuleList(reparameterize(layer) for layer in block[1]),
                       reparameterize(block[3]))


@reparameterize.register
def _reparameterize_backbone(block: StarPoseBackbone, norm: None = None) -> DeployBackbone:
    stem = block._stem()
    stages = nn.ModuleList(reparameterize(stage) for stage in block.layers)
    if isinstance(stem, DilatedStem):
        embed = stages[0].patch_embed
        branches = nn.ModuleList(_copy_conv(branch[0]) for branch in stem.convs)
        embed.projection = DilatedStemEmbed(
            branches, _split_input_channels(embed.projection, [b.out_channels for b in branches]))
        return DeployBackbone(nn.Identity(), stages, block.out_channels)
    return DeployBackbone(reparameterize(stem), stages, block.out_channels)


@reparameterize.register
def _reparameterize_starpose(block: StarPose, norm: None = None) -> StarPoseDeploy:
    return StarPoseDeploy(block, reparameterize(block.backbone), copy.deepcopy(block.head))


def _plain_channel_norm(ln: nn.LayerNorm) -> ChannelNorm:
    """The normalisation of ``ln`` without its affine part (folded into the consumers)."""
    return ChannelNorm(ln.normalized_shape[0], ln.eps)


@torch.no_grad()
def _conv1x1_as_linear(conv: nn.Conv2d) -> nn.Linear:
    linear = nn.Linear(conv.in_channels, conv.out_channels, bias=conv.bias is not None)
    linear.weight.copy_(conv.weight[:, :, 0, 0])
    if conv.bias is not None:
        linear.bias.copy_(conv.bias)
    return linear


def reparameterize_model(model: StarPose) -> StarPoseDeploy:
    """Deploy copy of ``model`` (left untouched): NCHW throughout, BatchNorm and LayerNorm affine
    folded, every op one that XNNPACK/LiteRT delegate. Inference only, in eval mode."""
    if not isinstance(model, StarPose):
        raise TypeError(f"reparameterize_model expects a StarPose model, got {type(model).__name__}")
    with torch.no_grad():
        deploy = reparameterize(model)
    return deploy.eval().requires_grad_(False)
