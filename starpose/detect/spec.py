"""``DetectorSpec``: the frozen contract of the bundled person detector.

Everything that turns a frame into person boxes reads these numbers: the eager detector, the numpy
reference post-processing (:mod:`starpose.detect.processing`), the exported artifacts' metadata and
the demo apps' golden vectors. Importing it does not import torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["DetectorSpec", "PERSON_DETECTOR_SPEC"]


@dataclass(frozen=True)
class DetectorSpec:
    """Input, decoding and suppression settings of a GFL-style person detector.

    ``input_size`` is ``(w, h)`` in pixels, a multiple of the largest stride; a frame is letterboxed
    into it (scaled to fit, top-left aligned, the rest filled with ``pad_value``). ``mean``/``std``
    normalize RGB uint8 values. Each stride contributes one anchor point per cell, at the cell
    centre ``((col + 0.5) * stride, (row + 0.5) * stride)``; each anchor predicts a person logit
    and, per box side (left, top, right, bottom), a distribution over ``0..reg_max`` in units of
    its stride whose expectation is the side's distance from the anchor (Generalized Focal Loss).
    """

    name: str = "nanodet_g_person"
    input_size: tuple[int, int] = (160, 224)
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    strides: tuple[int, ...] = (8, 16, 32)
    reg_max: int = 10
    pad_value: int = 0
    score_threshold: float = 0.2
    iou_threshold: float = 0.6
    max_detections: int = 10
    version: int = 3

    def __post_init__(self) -> None:
        w, h = self.input_size
        big = max(self.strides)
        if w <= 0 or h <= 0 or w % big or h % big:
            raise ValueError(f"detector input_size {self.input_size} must be positive multiples of {big}")
        if not (0.0 <= self.score_threshold <= 1.0 and 0.0 < self.iou_threshold <= 1.0):
            raise ValueError(f"score_threshold must be in [0, 1] and iou_threshold in (0, 1], got "
                             f"{self.score_threshold}, {self.iou_threshold}")
        if self.max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {self.max_detections}")

    @property
    def num_anchors(self) -> int:
        w, h = self.input_size
        return sum((w // s) * (h // s) for s in self.strides)

    @property
    def num_bins(self) -> int:
        return self.reg_max + 1

    def with_input_size(self, w: int, h: int) -> "DetectorSpec":
        return replace(self, input_size=(int(w), int(h)))

    def oriented(self, image_size: tuple[int, int]) -> "DetectorSpec":
        """This spec with its input turned to the frame's orientation: ``input_size`` swapped when
        the frame ``(w, h)`` is landscape and the input portrait or the other way round (a square
        frame or input keeps it). The network is fully convolutional, so the same weights run at
        either size; a 4:3 frame then fills a 4:3 input with no padding at all."""
        iw, ih = int(image_size[0]), int(image_size[1])
        w, h = self.input_size
        if (w - h) * (iw - ih) < 0:
            return replace(self, input_size=(h, w))
        return self

    def override(self, **changes) -> "DetectorSpec":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        for k in ("mean", "std", "strides"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorSpec":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in ("input_size", "mean", "std", "strides"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


#: The packaged detector's contract (see ``starpose/assets/detector/README.md``). Version 3: the input
#: is 160x224 (w x h), an upright phone frame. Version 1 letterboxed every frame into 256x256 (a
#: quarter of it padding for a 3:4 frame); version 2 took 192x256, which a 3:4 frame fills; version 3
#: reads the frame at 7/8 of that scale, for 0.73x the network's cost (docs/DETECTOR.md: recall and
#: end-to-end AP at each size). ``PersonDetector`` turns the input to each frame's orientation
#: (:meth:`DetectorSpec.oriented`); ``export``/``predict``/``eval --detector-input`` set another.
PERSON_DETECTOR_SPEC = DetectorSpec()
