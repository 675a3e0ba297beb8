"""The deployable bundle: a uint8 RGB person crop in, decoded keypoints out.

Every exporter wraps the network in the same :class:`PoseBundle`, so that the phone does no
arithmetic of its own: it crops the person (an affine warp, which produces an interleaved RGB
buffer) and hands that buffer over. Inside the graph: cast, per-channel normalization from the
model's :class:`~starpose.spec.PoseSpec`, the network, and SimCC decoding exactly as
:func:`starpose.processing.decode_simcc` does it (argmax / split ratio; score = the smaller of the
two maxima; a keypoint whose score is <= 0 gets location -1). With ``affine=True`` a second input,
the 2x3 crop → image matrix, moves the keypoints into original-image pixels the way
:func:`starpose.processing.keypoints_to_image` does (invalid keypoints included: apps tell them
apart by ``score <= 0``). With ``raw=True`` the SimCC vectors are returned as well, for parity
checks and debugging.

Outputs are plain tensors that nothing else in the graph consumes ("leaves"): XNNPACK crashes on a
quantized tensor that is both a graph output and an input to another op, so the int8 path later
must not find such a tensor here either.

``pooled_decode=True`` computes the same decode from ops an XNNPACK delegate runs (ExecuTorch's
partitioner takes ``max`` over the last axis of a 4-D tensor only as a values-only max pooling,
and no ``argmax``, comparison or ``where``): per keypoint ``m = max(s)``;
``e = relu((s - m) * 1e38 + 1)``, which is exactly 1 where ``s == m`` and exactly 0 elsewhere
(any float32 below ``m`` lies at least one ulp below it, and 1e38 times that is far beyond -1);
``max(e * (N - i))`` is then ``N - i_first``, the first maximum's index as ``argmax`` returns it,
as an exact small integer; ``valid = 1 - relu(1 - relu(score * 1e38))`` (a clamp to [0, 1]
from relus, which LiteRT's delegate runs where it leaves a clamp's RELU_0_TO_1 out) is 0 for
``score <= 0`` and 1 above; ``(keypoint + 1) * valid - 1`` is the keypoint or -1, exactly (keypoints are multiples of
1/split ratio). Bit for bit the argmax decode on every finite input (scores at or below 1e-38, a
float32 subnormal, are the exception the delegate would flush anyway). float32 only: in float16
1e38 is infinite and ``0 * inf`` undefined, so a half-precision bundle keeps the argmax decode.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from starpose.spec import PoseSpec

from .contract import AFFINE_INPUT, IMAGE_INPUT, LAYOUTS, Layout, output_names

__all__ = ["PoseBundle", "Layout", "LAYOUTS", "IMAGE_INPUT", "AFFINE_INPUT", "output_names"]

_HUGE = 1e38  # pooled decode: turns any float32 gap below a maximum into a clamp to 0


class PoseBundle(nn.Module):
    """``network`` (normalized float NCHW → ``(simcc_x, simcc_y)``) plus in-graph pre/post.

    ``image``: (1, H, W, 3) for ``layout="NHWC"`` or (1, 3, H, W) for ``"NCHW"``, RGB, 0..255,
    uint8 or float (Core ML image inputs arrive as float). ``crop_to_image``: (1, 2, 3) float32,
    only with ``affine=True``. Returns ``(keypoints (1, K, 2), scores (1, K))`` in float32, then
    ``simcc_x, simcc_y`` with ``raw=True``.
    """

    def __init__(
        self,
        network: nn.Module,
        spec: PoseSpec,
        *,
        layout: Layout = "NHWC",
        affine: bool = False,
        raw: bool = False,
        pooled_decode: bool = False,
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.network = network
        self.spec = spec
        self.layout = layout
        self.affine = affine
        self.raw = raw
        self.register_buffer("split", torch.tensor([spec.simcc_split_ratio], dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))
        # NHWC: the same per-channel constants, one image row wide (1, 1, W, 3). Normalizing before
        # the permute against these is the same float arithmetic element by element, but the
        # broadcast runs over whole rows: against (1, 1, 1, 3) (what LiteRT makes of an NCHW
        # per-channel constant) XNNPACK's elementwise kernels run once per 3-channel pixel
        # (benchmarks/README.md, "The shipped bundle against the network alone").
        w = spec.input_w
        self.register_buffer("mean_row", self.mean.reshape(1, 1, 1, 3).expand(1, 1, w, 3).contiguous())
        self.register_buffer("std_row", self.std.reshape(1, 1, 1, 3).expand(1, 1, w, 3).contiguous())
        self.pooled_decode = pooled_decode
        if pooled_decode:  # its constants only where it is used: traced bundles keep every buffer
            # N - i for the bins i = 0..N-1 of each SimCC axis (module docstring: the first maximum's index).
            n_x, n_y = int(spec.input_w * spec.simcc_split_ratio), int(spec.input_h * spec.simcc_split_ratio)
            self.register_buffer("countdown_x", torch.arange(n_x, 0, -1, dtype=torch.float32).view(1, 1, 1, n_x))
            self.register_buffer("countdown_y", torch.arange(n_y, 0, -1, dtype=torch.float32).view(1, 1, 1, n_y))
            self.register_buffer("bins_x", torch.full((1, 1, 1, 1), float(n_x)))
            self.register_buffer("bins_y", torch.full((1, 1, 1, 1), float(n_y)))
            self.register_buffer("one", torch.ones(1))

    @property
    def output_names(self) -> tuple[str, ...]:
        return output_names(self.raw)

    def example_inputs(self, dtype: torch.dtype = torch.uint8) -> tuple[torch.Tensor, ...]:
        """Inputs of the right shape for tracing: a mid-grey crop and the identity matrix."""
        h, w = self.spec.input_h, self.spec.input_w
        shape = (1, h, w, 3) if self.layout == "NHWC" else (1, 3, h, w)
        image = torch.full(shape, 128, dtype=dtype)
        if not self.affine:
            return (image,)
        return image, torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])

    def forward(
        self, image: torch.Tensor, crop_to_image: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        dtype = self.mean.dtype  # the compute dtype: float32, or float16 after .half()
        x = image.to(dtype)
        if self.layout == "NHWC":
            # torch.jit.trace (TorchScript, which has no such kernel limit) and widths other than
            # the spec's take the per-pixel constants; ``torch.jit.is_tracing()`` first, because a
            # traced size is a tensor and a branch on it would freeze the width into the graph.
            if torch.jit.is_tracing() or x.shape[2] != self.mean_row.shape[2]:
                x = (x - self.mean.reshape(1, 1, 1, 3)) / self.std.reshape(1, 1, 1, 3)
            else:
                x = (x - self.mean_row) / self.std_row
            x = x.permute(0, 3, 1, 2)
        else:
            x = (x - self.mean) / self.std
        simcc_x, simcc_y = self.network(x)
        if (self.pooled_decode and dtype == torch.float32 and simcc_x.shape[-1] == self.countdown_x.shape[-1]
                and simcc_y.shape[-1] == self.countdown_y.shape[-1]):
            keypoints, scores = self._pooled_decode(simcc_x, simcc_y)
        else:
            max_x, idx_x = simcc_x.max(dim=-1)
            max_y, idx_y = simcc_y.max(dim=-1)
            scores = torch.minimum(max_x, max_y).to(torch.float32)
            # int64 / float32 tensor is a true division to float32 without an explicit cast op (a
            # cast would split the Core ML delegate; the only cast left is the uint8 input's). A float
            # tensor, not a Python float: the lite interpreter would make int64 / double float64.
            keypoints = torch.stack([idx_x, idx_y], dim=-1) / self.split.float()
            invalid = (scores <= 0).unsqueeze(-1)
            keypoints = torch.where(invalid, torch.full_like(keypoints, -1.0), keypoints)
        if self.affine:
            if crop_to_image is None:
                raise ValueError(f"this bundle was built with affine=True: pass {AFFINE_INPUT}")
            mat = crop_to_image.to(torch.float32)
            keypoints = keypoints @ mat[:, :, :2].transpose(1, 2) + mat[:, :, 2].unsqueeze(1)
        if self.raw:
            return keypoints, scores, simcc_x.to(torch.float32), simcc_y.to(torch.float32)
        return keypoints, scores

    def _pooled_decode(self, simcc_x: torch.Tensor, simcc_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The argmax decode from max pooling and relus (module docstring), float32."""
        b, k = simcc_x.shape[0], simcc_x.shape[1]

        def first_max(simcc: torch.Tensor, countdown: torch.Tensor, bins: torch.Tensor):
            s = simcc.reshape(b, k, 1, countdown.shape[-1])  # 4-D: XNNPACK's max over dim 3
            peak = s.max(dim=3, keepdim=True).values
            # (s - peak) * 1e38 + 1 is exactly 1 at a maximum and far below 0 elsewhere: relu is the
            # clamp to [0, 1] here (LiteRT's delegate runs RELU, not the RELU_0_TO_1 a clamp becomes)
            at_peak = torch.relu((s - peak) * _HUGE + 1.0)
            index = bins - (at_peak * countdown).max(dim=3, keepdim=True).values
            return peak, index  # (B, K, 1, 1) each

        max_x, idx_x = first_max(simcc_x, self.countdown_x, self.bins_x)
        max_y, idx_y = first_max(simcc_y, self.countdown_y, self.bins_y)
        scores = torch.minimum(max_x, max_y)
        keypoints = torch.cat([idx_x, idx_y], dim=3) / self.split
        # clamp(scores * 1e38, 0, 1) from relus: 0 for scores <= 0, 1 above (scores * 1e38 >= 1)
        valid = self.one - torch.relu(self.one - torch.relu(scores * _HUGE))
        keypoints = (keypoints + 1.0) * valid - 1.0
        return keypoints.reshape(b, k, 2), scores.reshape(b, k)
