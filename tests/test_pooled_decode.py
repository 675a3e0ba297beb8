"""``PoseBundle(pooled_decode=True)``: the SimCC decode from max pooling and relus, bit for bit the
argmax decode (first maximum on ties, -1 where the score is <= 0), and inside the XNNPACK delegate
of both runtimes once exported (the ``.tflite`` with nothing outside it, the ``.pte`` with only its
uint8 input cast)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from mobile_export.bundle import PoseBundle
from starpose.processing import decode_simcc
from starpose.spec import COCO_SPEC

SPEC = COCO_SPEC.with_input_size(48, 64)  # SimCC bins: 96 (x), 128 (y)
K = len(SPEC.keypoint_names)
NX, NY = int(SPEC.input_w * SPEC.simcc_split_ratio), int(SPEC.input_h * SPEC.simcc_split_ratio)


def awkward_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """(K, n) SimCC rows that a decode can get wrong: ties (first wins), a flat row, all-zero and
    negative maxima (score <= 0), a maximum in the last bin, large and tiny magnitudes."""
    rows = rng.normal(0, 3, (K, n)).astype(np.float32)
    rows[0] = 0.25  # flat: every bin is the maximum -> index 0
    rows[1] = 0.0  # maximum 0 -> invalid
    rows[2] = rng.normal(-40, 1, n)  # negative maximum -> invalid
    rows[3, [7, 50]] = rows[3].max() + 2.0  # tie between two bins -> 7
    rows[4, -1] = rows[4].max() + 1e-3  # maximum in the last bin
    rows[5] *= 1e4
    rows[6] *= 1e-6  # tiny values, gaps of a few ulp
    rows[7, 20] = np.nextafter(rows[7].max(), np.float32(np.inf))  # wins by one ulp
    return rows


class FixedSimcc(nn.Module):
    """A stand-in network that returns given SimCC vectors whatever the image."""

    def __init__(self, sx: np.ndarray, sy: np.ndarray) -> None:
        super().__init__()
        self.spec = SPEC
        self.register_buffer("sx", torch.from_numpy(sx)[None])
        self.register_buffer("sy", torch.from_numpy(sy)[None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sx + 0 * x.mean(), self.sy + 0 * x.mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_decode_is_the_argmax_decode_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    sx, sy = awkward_rows(NX, rng), awkward_rows(NY, rng)
    sy[8] = -1.0  # invalid through y alone
    net = FixedSimcc(sx, sy).eval()
    image = torch.from_numpy(rng.integers(0, 256, (1, SPEC.input_h, SPEC.input_w, 3), dtype=np.uint8))
    with torch.no_grad():
        ref_k, ref_s = PoseBundle(net, SPEC).eval()(image)
        k, s = PoseBundle(net, SPEC, pooled_decode=True).eval()(image)
    assert torch.equal(k, ref_k) and torch.equal(s, ref_s)
    want_k, want_s = decode_simcc(sx[None], sy[None], SPEC.simcc_split_ratio)
    np.testing.assert_array_equal(k.numpy(), want_k)
    np.testing.assert_array_equal(s.numpy(), want_s)
    assert k[0, 0].tolist() == [0.0, 0.0] and k[0, 3, 0] == 3.5  # flat row -> bin 0; tie -> the first (7 / 2)
    assert (k[0, [1, 2, 8]] == -1).all()  # scores <= 0


def test_pooled_decode_with_affine_and_raw_outputs():
    rng = np.random.default_rng(3)
    net = FixedSimcc(awkward_rows(NX, rng), awkward_rows(NY, rng)).eval()
    image = torch.from_numpy(rng.integers(0, 256, (1, SPEC.input_h, SPEC.input_w, 3), dtype=np.uint8))
    mat = torch.tensor([[[2.0, 0.0, 10.0], [0.0, 2.0, -5.0]]])
    with torch.no_grad():
        ref = PoseBundle(net, SPEC, affine=True, raw=True).eval()(image, mat)
        out = PoseBundle(net, SPEC, affine=True, raw=True, pooled_decode=True).eval()(image, mat)
    for a, b in zip(out, ref):
        assert torch.equal(a, b)


def test_half_precision_keeps_the_argmax_decode():
    """1e38 is infinite in float16: a half bundle must not take the pooled path."""
    rng = np.random.default_rng(4)
    net = FixedSimcc(awkward_rows(NX, rng), awkward_rows(NY, rng)).eval()
    image = torch.from_numpy(rng.integers(0, 256, (1, SPEC.input_h, SPEC.input_w, 3), dtype=np.uint8))
    with torch.no_grad():
        ref = PoseBundle(net, SPEC).eval().half()(image)
        out = PoseBundle(net, SPEC, pooled_decode=True).eval().half()(image)
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
    assert not torch.isnan(out[0]).any()


class SmallNet(nn.Module):
    """A small convolutional network with SimCC outputs, some rows fixed to ties and scores <= 0."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.spec = SPEC
        self.conv = nn.Conv2d(3, 4, 8, stride=8)
        self.head_x = nn.Linear(4 * (SPEC.input_h // 8) * (SPEC.input_w // 8), K * NX)
        self.head_y = nn.Linear(4 * (SPEC.input_h // 8) * (SPEC.input_w // 8), K * NY)
        with torch.no_grad():
            wx, bx = self.head_x.weight.view(K, NX, -1), self.head_x.bias.view(K, NX)
            wy, by = self.head_y.weight.view(K, NY, -1), self.head_y.bias.view(K, NY)
            wx[0], bx[0] = 0.0, 0.5  # flat rows: bin 0 on both axes, valid
            wy[0], by[0] = 0.0, 0.5
            wx[1], bx[1] = 0.0, 0.0  # maximum 0: invalid
            wy[2], by[2] = 0.0, -3.0  # negative maximum: invalid
            wx[3], bx[3] = 0.0, 0.0
            bx[3, [9, 40]] = 5.0  # a tie: bin 9
            wy[3], by[3] = 0.0, 1.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.relu(self.conv(x)).flatten(1)
        return self.head_x(f).view(-1, K, NX), self.head_y(f).view(-1, K, NY)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (1, SPEC.input_h, SPEC.input_w, 3), dtype=np.uint8) for _ in range(4)]


def _exported(fmt: str, tmp_path, monkeypatch):
    """SmallNet through ``export``'s own exporter, with the pooled decode swapped in the way
    ``benchmarks.bundle_overhead --pooled-decode`` does it (the exporters look ``PoseBundle`` up
    in ``mobile_export.bundle`` when they run); opened with the format's own runner."""
    import functools
    import json

    import mobile_export.bundle as bundle_module
    from mobile_export.base import ExportOptions
    from mobile_export.detector import delegation_report
    from mobile_export.formats import FORMATS

    monkeypatch.setattr(bundle_module, "PoseBundle", functools.partial(PoseBundle, pooled_decode=True))
    net = SmallNet().eval()
    if fmt == "executorch":
        from mobile_export.executorch import export_executorch

        paths = export_executorch(net, tmp_path, ExportOptions(precision="fp32"), backends=("xnnpack",))
    else:
        paths = FORMATS[fmt].export(net, tmp_path, ExportOptions(precision="fp32"))
    (path,) = [p for p in paths if p.suffix in (".pte", ".tflite")]
    runner = FORMATS[fmt].open_runner(path, json.loads(Path(f"{path}.json").read_text()))
    return net, runner, delegation_report(path, fmt)


@pytest.mark.parametrize("fmt,outside", [("executorch", ["aten::_to_copy"]), ("tflite", [])])
def test_pooled_decode_exports_inside_the_delegate_and_stays_exact(fmt, outside, images, tmp_path, monkeypatch):
    net, runner, report = _exported(fmt, tmp_path, monkeypatch)
    assert report["outside"] == outside, report
    ref = PoseBundle(net, SPEC).eval()
    for image in images:
        with torch.no_grad():
            want_k, want_s = (t.numpy() for t in ref(torch.from_numpy(image)))
        got = runner(image[0])
        k, s = got["keypoints"].reshape(want_k.shape), got["scores"].reshape(want_s.shape)
        np.testing.assert_array_equal(k, want_k)
        np.testing.assert_allclose(s, want_s, rtol=0, atol=1e-4)
        assert (k[0, [1, 2]] == -1).all() and k[0, 0].tolist() == [0.0, 0.0] and k[0, 3, 0] == 4.5
