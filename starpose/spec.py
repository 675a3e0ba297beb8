"""The model contract: one frozen description shared by training, decoding, exporters and apps.

Everything that must agree between the Python reference, the exported artifacts and the demo
apps (input size, normalization, keypoint names, skeleton, flip pairs, SimCC ratio) lives in a
:class:`PoseSpec`. Nothing else re-types these numbers.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PoseSpec", "COCO_SPEC", "CROWDPOSE_SPEC", "MPII_SPEC", "SPECS", "SPEC_VERSION"]

SPEC_VERSION = 1

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class PoseSpec:
    """Immutable description of a top-down SimCC pose model's inputs and outputs.

    ``input_size`` is (width, height) in pixels, like MMPose. The SimCC vectors are
    ``input_size * simcc_split_ratio`` long. ``mean``/``std`` are in RGB order on 0..255 pixels.
    """

    name: str
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]  # 0-based index pairs
    flip_pairs: tuple[tuple[int, int], ...]  # 0-based index pairs
    sigmas: tuple[float, ...]  # OKS sigmas (per keypoint)
    input_size: tuple[int, int] = (192, 256)  # (w, h)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    simcc_split_ratio: float = 2.0
    simcc_sigma: tuple[float, float] = (3.0, 3.0)  # Gaussian sigma of the SimCC labels (x, y), in bins
    bbox_padding: float = 1.25
    version: int = SPEC_VERSION
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        if len(self.sigmas) != k:
            raise ValueError(f"PoseSpec {self.name}: {len(self.sigmas)} sigmas for {k} keypoints")
        for a, b in self.flip_pairs + self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"PoseSpec {self.name}: pair ({a}, {b}) out of range for {k} keypoints")
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise ValueError(f"PoseSpec {self.name}: bad input_size {self.input_size}")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def input_w(self) -> int:
        return int(self.input_size[0])

    @property
    def input_h(self) -> int:
        return int(self.input_size[1])

    @property
    def simcc_lengths(self) -> tuple[int, int]:
        """Lengths of the x and y SimCC vectors."""
        return (int(self.input_w * self.simcc_split_ratio), int(self.input_h * self.simcc_split_ratio))

    @property
    def flip_index(self) -> list[int]:
        """Permutation that swaps left and right keypoints after a horizontal flip."""
        idx = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    def with_input_size(self, w: int, h: int) -> "PoseSpec":
        return dataclasses.replace(self, input_size=(int(w), int(h)))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["extra"] = dict(self.extra)
        d["skeleton"] = [list(p) for p in self.skeleton]
        d["flip_pairs"] = [list(p) for p in self.flip_pairs]
        for key in ("keypoint_names", "sigmas", "input_size", "mean", "std", "simcc_sigma"):
            d[key] = list(d[key])
        d["num_keypoints"] = self.num_keypoints
        d["simcc_lengths"] = list(self.simcc_lengths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PoseSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("keypoint_names", "sigmas", "input_size", "mean", "std", "simcc_sigma"):
            if key in kw:
                kw[key] = tuple(kw[key])
        for key in ("skeleton", "flip_pairs"):
            if key in kw:
                kw[key] = tuple(tuple(int(i) for i in p) for p in kw[key])
        if "extra" in kw:
            kw["extra"] = tuple(sorted(dict(kw["extra"]).items()))
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# COCO's 1-based skeleton from person_keypoints json, made 0-based.
_COCO_SKELETON = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    )
)
_COCO_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)
COCO_SPEC = PoseSpec(
    name="coco",
    keypoint_names=_COCO_NAMES,
    skeleton=_COCO_SKELETON,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=_COCO_SIGMAS,
)

_CROWD_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck",
)
CROWDPOSE_SPEC = PoseSpec(
    name="crowdpose",
    keypoint_names=_CROWD_NAMES,
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (13, 6), (13, 7),
        (6, 8), (8, 10), (7, 9), (9, 11), (6, 7),
    ),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    # xtcocotools' crowdpose sigmas
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
)

_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
    "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
    "left_shoulder", "left_elbow", "left_wrist",
)
MPII_SPEC = PoseSpec(
    name="mpii",
    keypoint_names=_MPII_NAMES,
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    sigmas=(0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072, 0.179, 0.179, 0.072, 0.062),
    input_size=(256, 256),
)

SPECS: dict[str, PoseSpec] = {s.name: s for s in (COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC)}
