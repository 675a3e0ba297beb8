"""StarPose: a single-branch, upsampling-free hierarchical vision transformer for pose estimation.

"Bridging Performance and Efficiency in Lightweight Pose Estimation via Star Reconstruction"
(KSEM 2025). Built on HRPVT/PVT; every micro-block is rebuilt around the *star operation* of
StarNet ("Rewrite the Stars", CVPR 2024): an element-wise product of two linear branches.

This file computes exactly what the authors' MMPose release computes, with the release's
parameter names so that a released checkpoint loads with ``strict=True``; it keeps activations in
NHWC between blocks (``nn.Linear`` and ``nn.LayerNorm`` act on the last axis) and moves to NCHW
only around convolutions, instead of the release's repeated NCHW↔NLC reshapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..spec import COCO_SPEC, PoseSpec
from .registry import register_model

__all__ = ["StarPose", "StarPoseConfig", "SimCCHead"]

LN_EPS = 1e-6


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def dilated_depthwise_by_phases(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a stride-1, 'same'-padded depthwise convolution with dilation ``d`` > 1, computed
    as the same kernel without dilation over the ``d x d`` polyphase components of ``x``.

    Output pixel ``(i, j)`` only reads input pixels ``(i + d·a, j + d·b)``: pixels of its own phase
    ``(i mod d, j mod d)``. Split into its phases (after zero-padding H and W up to multiples of ``d``),
    the input becomes ``d²`` images in the batch, each convolved with the undilated kernel and
    padding ``k // 2``; interleaving the results back gives the same sums of the same products (equal
    to float rounding: the kernels may add them in another order). Why: oneDNN, PyTorch's CPU convolution, runs
    dilated depthwise kernels on a slow path; on StarPose-t's 7x7, dilation-3 kernels at batch 32
    (2 threads, channels-last) forward + backward took 19 ms directly and 8 ms this way.
    """
    d, k = conv.dilation[0], conv.kernel_size[0]
    n, c, h, w = x.shape
    hq, wq = -(-h // d), -(-w // d)
    xs = x.permute(0, 2, 3, 1)  # NHWC (a view of a channels-last tensor)
    if hq * d != h or wq * d != w:
        xs = F.pad(xs, (0, 0, 0, wq * d - w, 0, hq * d - h))
    phases = xs.reshape(n, hq, d, wq, d, c).permute(0, 2, 4, 1, 3, 5).reshape(n * d * d, hq, wq, c)
    y = F.conv2d(phases.permute(0, 3, 1, 2), conv.weight, conv.bias, 1, k // 2, 1, conv.groups)
    y = y.permute(0, 2, 3, 1).reshape(n, d, d, hq, wq, c).permute(0, 3, 1, 4, 2, 5).reshape(n, hq * d, wq * d, c)
    return y[:, :h, :w].permute(0, 3, 1, 2)


def _by_phases(conv: nn.Conv2d) -> bool:
    """Whether :func:`dilated_depthwise_by_phases` computes ``conv`` (square kernel and dilation > 1,
    stride 1, 'same' zero padding, depthwise)."""
    kh, kw = conv.kernel_size
    d = conv.dilation[0]
    return (kh == kw and kh % 2 == 1 and conv.dilation == (d, d) and d > 1 and conv.stride == (1, 1)
            and conv.padding == (d * (kh // 2),) * 2 and conv.groups == conv.in_channels == conv.out_channels
            and conv.padding_mode == "zeros")


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ConvBNReLU(nn.Module):
    """MMCV ``ConvModule``: conv without bias → BatchNorm → ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ConvStem(nn.Module):
    """Stride-2 stem for embed <= 16: 3x3/s2 conv → depthwise 3x3 → 1x1."""

    def __init__(self, embed: int) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(3, embed, 3, stride=2)
        self.conv2 = ConvBNReLU(embed, embed, 3, groups=embed)
        self.conv3 = ConvBNReLU(embed, embed, 1)
        self.out_channels = embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


class DilatedStem(nn.Module):
    """Stride-2 stem for embed > 16: six parallel dilated 3x3 convs (d = 1..6), GELU, concat."""

    def __init__(self, branches: int = 6, width: int = 16) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, width, 3, 2, padding=d, dilation=d), nn.GELU())
            for d in range(1, branches + 1)
        )
        self.out_channels = branches * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x) for conv in self.convs], dim=1)


class PatchEmbed(nn.Module):
    """3x3 stride-2 conv, then LayerNorm over channels. NCHW in, NHWC out."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(cin, cout, 3, 2, 1)
        self.norm = nn.LayerNorm(cout, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_nhwc(self.projection(x)))


class StarFFN(nn.Module):
    """Star feed-forward: 1x1 expand → depthwise 3x3 → GELU → h * h (star) → 1x1 → BN."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        hidden = dim * ratio
        self.layers1 = nn.Sequential(
            nn.Conv2d(dim, hidden, 1), nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        )
        self.act = nn.GELU()
        self.layers2 = nn.Sequential(nn.Conv2d(hidden, dim, 1), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # NHWC → NHWC
        h = self.act(self.layers1(_nchw(x)))
        return _nhwc(self.layers2(h * h))


class LinearAttention(nn.Module):
    """Linear attention with kernel ELU + 1 and a LePE depthwise term; values are the input."""

    def __init__(self, dim: int, num_heads: int, dr_ratio: int) -> None:
        super().__init__()
        qk_dim = dim // dr_ratio
        if qk_dim % num_heads or dim % num_heads:
            raise ValueError(f"dim {dim} / dr_ratio {dr_ratio} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, qk_dim)
        self.k = nn.Linear(dim, qk_dim)
        self.lepe = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # NHWC → NHWC
        b, h, w, c = x.shape
        n = h * w
        heads = self.num_heads
        tokens = x.reshape(b, n, c)
        q = F.elu(self.q(tokens)) + 1.0
        k = F.elu(self.k(tokens)) + 1.0
        q = q.reshape(b, n, heads, -1).transpose(1, 2)  # b, heads, n, dq
        k = k.reshape(b, n, heads, -1).transpose(1, 2)
        v = tokens.reshape(b, n, heads, -1).transpose(1, 2)  # b, heads, n, dv
        z = 1.0 / (q @ k.mean(dim=-2, keepdim=True).transpose(-2, -1) + 1e-6)  # b, heads, n, 1
        s = n ** -0.5
        kv = (k.transpose(-2, -1) * s) @ (v * s)  # b, heads, dq, dv
        out = (q @ kv * z).transpose(1, 2).reshape(b, h, w, c)
        return out + _nhwc(self.lepe(_nchw(x)))


class GlobalMixer(nn.Module):
    """Gated linear-attention mixer (MLLA-style): out(attn(SiLU(dwc(in(x)))) * SiLU(act(x)))."""

    def __init__(self, dim: int, num_heads: int, dr_ratio: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, dim)
        self.act_proj = nn.Linear(dim, dim)
        self.dwc = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.attn = LinearAttention(dim, num_heads, dr_ratio)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.silu(self.act_proj(x))
        u = _nhwc(F.silu(self.dwc(_nchw(self.in_proj(x)))))
        return self.out_proj(self.attn(u) * gate)


class RegionalMixer(nn.Module):
    """Redundancy-reduced regional mixer: star gate, then large-kernel depthwise convs.

    ``in(x) * SiLU(act(x))`` → depthwise 7x7 dilation 3 → depthwise 5x5 → GELU → 1x1 → BN.
    """

    #: on CPU, compute the dilated 7x7 convolution by :func:`dilated_depthwise_by_phases` (same
    #: outputs, faster there); False runs it as one dilated convolution (``benchmarks.train_speed``
    #: compares). Other devices always run it directly.
    dilated_by_phases: bool = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, dim)
        self.act_proj = nn.Linear(dim, dim)
        self.dwc = nn.Sequential(
            nn.Conv2d(dim, dim, 7, 1, padding=9, dilation=3, groups=dim),
            nn.Conv2d(dim, dim, 5, 1, padding=2, groups=dim),
        )
        self.act = nn.GELU()
        self.out_proj = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = _nchw(self.in_proj(x) * F.silu(self.act_proj(x)))
        dilated, rest = self.dwc[0], self.dwc[1:]
        if self.dilated_by_phases and u.device.type == "cpu" and _by_phases(dilated):  # oneDNN's slow path only
            u = dilated_depthwise_by_phases(dilated, u)
        else:
            u = dilated(u)
        return _nhwc(self.out_proj(self.act(rest(u))))


class EncoderLayer(nn.Module):
    """Pre-norm block: ``x + Mixer(LN(x))`` then ``x + StarFFN(LN(x))``."""

    def __init__(
        self, dim: int, num_heads: int, ffn_ratio: int, dr_ratio: int, is_global: bool, drop_path: float
    ) -> None:
        super().__init__()
        self.is_global = is_global
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = GlobalMixer(dim, num_heads, dr_ratio) if is_global else RegionalMixer(dim)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn = StarFFN(dim, ffn_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class AggregationBlock(nn.Module):
    """Multi-kernel aggregation closing each stage (star-gated, depthwise 3/5/7, residual)."""

    def __init__(self, dim: int, expansion: int) -> None:
        super().__init__()
        hidden = dim * expansion
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.in_proj = nn.Linear(dim, hidden)
        self.res_proj = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU())
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden, hidden, k, 1, k // 2, groups=hidden), nn.GELU())
            for k in (3, 5, 7)
        )
        self.out_proj = nn.Sequential(nn.Conv2d(hidden, dim, 1), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # NHWC → NCHW
        t = self.norm(x)
        h = _nchw(self.in_proj(t) * self.res_proj(t))
        y = self.convs[0](h)
        for conv in self.convs[1:]:
            y = y + conv(h)
        return self.out_proj(y) + _nchw(x)


class Stage(nn.ModuleList):
    """One stage: ``[patch_embed, layers, (parameter-free slot), aggregation]``.

    The release keeps a parameter-free module at index 2 (PVT's per-stage norm slot); the index
    is kept so that checkpoint keys line up (``layers.<stage>.3.*`` is the aggregation block).
    """

    def __init__(self, patch_embed: PatchEmbed, layers: nn.ModuleList, aggregation: AggregationBlock):
        super().__init__([patch_embed, layers, nn.Identity(), aggregation])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # NCHW → NCHW
        x = self[0](x)
        for layer in self[1]:
            x = layer(x)
        return self[3](self[2](x))


@dataclass(frozen=True)
class StarPoseConfig:
    """Backbone arguments (the release's names) plus the head's keypoint count and input size."""

    embed_dims: int = 16
    num_layers: tuple[int, int, int, int] = (1, 3, 6, 1)
    num_heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    width_ratios: tuple[int, int, int, int] = (1, 2, 5, 8)
    ffn_ratios: tuple[int, int, int, int] = (8, 8, 4, 4)
    dr_ratio: tuple[int, int, int, int] = (1, 2, 2, 4)
    prm_ratio: tuple[int, int, int, int] = (1, 2, 2, 2)
    structure: str = "TE"
    drop_path_rate: float = 0.1
    num_keypoints: int = 17
    input_size: tuple[int, int] = (192, 256)  # (w, h)
    simcc_split_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.structure not in ("TE", "CP"):
            raise ValueError(f"structure must be 'TE' or 'CP', got {self.structure!r}")
        w, h = self.input_size
        if w % 32 or h % 32:
            raise ValueError(f"input size {w}x{h} (w x h) must be a multiple of 32 on both sides")

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.embed_dims * r for r in self.width_ratios)

    def is_global(self, index: int, depth: int) -> bool:
        """TE: only the last layer of a stage is global; CP: the first and the last."""
        if self.structure == "TE":
            return index == depth - 1
        return index == 0 or index == depth - 1


class SimCCHead(nn.Module):
    """Upsampling-free SimCC head: 1x1 conv to K maps, flatten, one Linear per axis."""

    def __init__(self, in_channels: int, num_keypoints: int, feat_hw: tuple[int, int],
                 input_size: tuple[int, int], split_ratio: float) -> None:
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 1)
        flat = feat_hw[0] * feat_hw[1]
        self.mlp_head_x = nn.Linear(flat, int(input_size[0] * split_ratio))
        self.mlp_head_y = nn.Linear(flat, int(input_size[1] * split_ratio))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.final_layer(feats).flatten(2)
        return self.mlp_head_x(x), self.mlp_head_y(x)


class StarPoseBackbone(nn.Module):
    def __init__(self, cfg: StarPoseConfig) -> None:
        super().__init__()
        if cfg.embed_dims <= 16:
            self.stem: nn.Module = ConvStem(cfg.embed_dims)
        else:
            self.prmv1 = DilatedStem()
        cin = self._stem().out_channels
        total = sum(cfg.num_layers)
        rates = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages = []
        offset = 0
        for i, (depth, width) in enumerate(zip(cfg.num_layers, cfg.widths)):
            layers = nn.ModuleList(
                EncoderLayer(width, cfg.num_heads[i], cfg.ffn_ratios[i], cfg.dr_ratio[i],
                             cfg.is_global(j, depth), rates[offset + j])
                for j in range(depth)
            )
            offset += depth
            stages.append(Stage(PatchEmbed(cin, width), layers, AggregationBlock(width, cfg.prm_ratio[i])))
            cin = width
        self.layers = nn.ModuleList(stages)
        self.out_channels = cin

    def _stem(self) -> nn.Module:
        return self.stem if hasattr(self, "stem") else self.prmv1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem()(x)
        for stage in self.layers:
            x = stage(x)
        return x


class StarPose(nn.Module):
    """StarPose top-down pose estimator: normalized NCHW crop → ``(simcc_x, simcc_y)``."""

    def __init__(self, cfg: StarPoseConfig, spec: PoseSpec | None = None, variant: str = "custom") -> None:
        super().__init__()
        self.cfg = cfg
        self.variant = variant
        spec = spec or COCO_SPEC
        if spec.num_keypoints != cfg.num_keypoints or tuple(spec.input_size) != tuple(cfg.input_size):
            raise ValueError(
                f"PoseSpec {spec.name} ({spec.num_keypoints} keypoints, input {spec.input_size}) does not "
                f"match the model config ({cfg.num_keypoints} keypoints, input {cfg.input_size})"
            )
        self.spec = spec
        self.backbone = StarPoseBackbone(cfg)
        w, h = cfg.input_size
        self.head = SimCCHead(self.backbone.out_channels, cfg.num_keypoints, (h // 32, w // 32),
                              cfg.input_size, cfg.simcc_split_ratio)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone output: (B, C, H/32, W/32)."""
        return self.backbone(x)

    def forward_head(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


def _create_starpose(variant: str, pretrained: bool = False, spec: PoseSpec | None = None,
                     **kwargs) -> StarPose:
    if spec is None:
        spec = COCO_SPEC
        k = kwargs.get("num_keypoints")
        if k is not None and k != spec.num_keypoints:
            from ..spec import SPECS

            matches = [s for s in SPECS.values() if s.num_keypoints == k]
            if not matches:
                raise ValueError(
                    f"num_keypoints={k} matches no known PoseSpec ({', '.join(SPECS)}); pass spec=PoseSpec(...)"
                )
            spec = matches[0]
    if "input_size" in kwargs:
        spec = spec.with_input_size(*kwargs["input_size"])
    kwargs.setdefault("num_keypoints", spec.num_keypoints)
    kwargs.setdefault("input_size", tuple(spec.input_size))
    kwargs.setdefault("simcc_split_ratio", spec.simcc_split_ratio)
    for key in ("num_layers", "num_heads", "width_ratios", "ffn_ratios", "dr_ratio", "prm_ratio", "input_size"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    model = StarPose(StarPoseConfig(**kwargs), spec=spec, variant=variant)
    if pretrained:
        from .weights import load_pretrained

        load_pretrained(model, variant)
    return model


@register_model
def starpose_t(pretrained: bool = False, **kwargs) -> StarPose:
    return _create_starpose("starpose_t", pretrained, **{**dict(embed_dims=16, num_layers=(1, 3, 6, 1), structure="TE"), **kwargs})


@register_model
def starpose_s(pretrained: bool = False, **kwargs) -> StarPose:
    return _create_starpose("starpose_s", pretrained, **{**dict(embed_dims=20, num_layers=(2, 3, 5, 2), structure="TE"), **kwargs})


@register_model
def starpose_m(pretrained: bool = False, **kwargs) -> StarPose:
    return _create_starpose("starpose_m", pretrained, **{**dict(embed_dims=36, num_layers=(2, 4, 8, 2), structure="CP"), **kwargs})


@register_model
def starpose_l(pretrained: bool = False, **kwargs) -> StarPose:
    return _create_starpose("starpose_l", pretrained, **{**dict(embed_dims=36, num_layers=(3, 6, 12, 3), structure="CP"), **kwargs})
