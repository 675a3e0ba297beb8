"""Reference pre- and post-processing of the person detector in plain numpy.

The executable spec of every port, like :mod:`starpose.processing` is for the pose model: the
exported artifacts compute :func:`decode` and :func:`nms` in their graphs, the Kotlin and Swift
cores copy :func:`letterbox_transform`, :func:`decode`, :func:`nms` and :func:`boxes_to_image`
line by line, and ``tests/golden/make_golden.py`` writes their vectors into the fixture the three
test suites read.

Conventions: ``input_size`` and ``image_size`` are ``(w, h)``; boxes are ``(x1, y1, x2, y2)`` in
detector-input pixels until :func:`boxes_to_image` turns them into ``(x, y, w, h)`` image pixels,
the convention of :mod:`starpose.processing`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import DetectorSpec

__all__ = [
    "xywh_to_xyxy",
    "Letterbox",
    "letterbox_transform",
    "letterbox",
    "normalize",
    "anchor_points",
    "decode",
    "box_iou",
    "nms",
    "boxes_to_image",
    "postprocess",
    "check_image",
]


@dataclass(frozen=True)
class Letterbox:
    """How a frame sits in the detector input: scaled by ``scale`` (input pixels per image pixel),
    top-left aligned, the rest padding. ``size`` is the scaled frame's ``(w, h)`` in the input."""

    scale: float
    size: tuple[int, int]


def letterbox_transform(image_size: tuple[int, int], input_size: tuple[int, int]) -> Letterbox:
    """The largest scale at which the frame fits the input, and the scaled size (rounded, at least
    one pixel, at most the input)."""
    iw, ih = int(image_size[0]), int(image_size[1])
    if iw < 1 or ih < 1:
        raise ValueError(f"image size {image_size} is empty")
    scale = min(input_size[0] / iw, input_size[1] / ih)
    w = min(int(input_size[0]), max(1, int(round(iw * scale))))
    h = min(int(input_size[1]), max(1, int(round(ih * scale))))
    return Letterbox(float(scale), (w, h))


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """An RGB uint8 (H, W, 3) array with at least 2x2 pixels, or a ValueError saying what is wrong."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 pixels, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what}: expected an RGB image (H, W, 3), got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{what}: image of {image.shape[1]}x{image.shape[0]} pixels is too small to hold a person")
    return image


def letterbox(image: np.ndarray, spec: DetectorSpec) -> tuple[np.ndarray, Letterbox]:
    """uint8 RGB frame → the detector's uint8 input (``input_size``, padded with ``pad_value``)."""
    import cv2

    image = check_image(image)
    lb = letterbox_transform((image.shape[1], image.shape[0]), spec.input_size)
    canvas = np.full((spec.input_size[1], spec.input_size[0], 3), spec.pad_value, np.uint8)
    canvas[: lb.size[1], : lb.size[0]] = cv2.resize(image, lb.size, interpolation=cv2.INTER_LINEAR)
    return canvas, lb


def normalize(rgb: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    """uint8 HWC RGB → float32 CHW, ``(x - mean) / std``."""
    x = (np.asarray(rgb, np.float32) - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def anchor_points(spec: DetectorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centres (N, 2) in input pixels and their strides (N,), level by level (stride 8
    first), row-major: the order of the network's outputs."""
    w, h = spec.input_size
    centres, strides = [], []
    for s in spec.strides:
        ys, xs = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
        centres.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], axis=1))
        strides.append(np.full(xs.size, float(s)))
    return np.concatenate(centres).astype(np.float64), np.concatenate(strides)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def decode(logits: np.ndarray, box_logits: np.ndarray, spec: DetectorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs (N,), (N, 4, reg_max + 1) → boxes (N, 4) ``x1, y1, x2, y2`` in input pixels and
    person scores (N,). Each side's distance is the softmax expectation over ``0..reg_max`` times
    the anchor's stride; boxes are clipped to the input."""
    logits = np.asarray(logits, np.float64).reshape(-1)
    box_logits = np.asarray(box_logits, np.float64).reshape(len(logits), 4, spec.num_bins)
    centres, strides = anchor_points(spec)
    if len(centres) != len(logits):
        raise ValueError(f"{len(logits)} anchors in the outputs, {len(centres)} expected for input {spec.input_size}")
    e = np.exp(box_logits - box_logits.max(-1, keepdims=True))
    dist = (e / e.sum(-1, keepdims=True) * np.arange(spec.num_bins)).sum(-1) * strides[:, None]
    boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
    w, h = spec.input_size
    boxes = np.clip(boxes, 0.0, [w, h, w, h])
    return boxes, _sigmoid(logits)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``x, y, w, h`` boxes (any shape ending in 4) as ``x1, y1, x2, y2`` rows (M, 4), float64."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``x1, y1, x2, y2`` box with each of ``boxes`` (M, 4); 0 where the union is empty."""
    box = np.asarray(box, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    inter = iw * ih
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float,
        max_detections: int) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best first.

    Candidates are the boxes scoring at least ``score_threshold``, visited by descending score
    (ties: the lower index first); a candidate is kept unless its IoU with an already kept box is
    above ``iou_threshold``; at most ``max_detections`` are kept.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= score_threshold]
    keep: list[int] = []
    for i in order:
        if len(keep) >= max_detections:
            break
        if not keep or float(box_iou(boxes[i], boxes[keep]).max()) <= iou_threshold:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def boxes_to_image(boxes: np.ndarray, lb: Letterbox, image_size: tuple[int, int]) -> np.ndarray:
    """Input-pixel ``x1, y1, x2, y2`` boxes (M, 4) → image-pixel ``x, y, w, h``, clipped to the image."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / lb.scale
    w, h = float(image_size[0]), float(image_size[1])
    boxes = np.clip(boxes, 0.0, [w, h, w, h])
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def postprocess(logits: np.ndarray, box_logits: np.ndarray, spec: DetectorSpec, lb: Letterbox,
                image_size: tuple[int, int], score_threshold: float | None = None,
                max_detections: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs → person boxes ``(M, 4)`` (x, y, w, h image pixels) and scores (M,), best first."""
    boxes, scores = decode(logits, box_logits, spec)
    thr = spec.score_threshold if score_threshold is None else score_threshold
    keep = nms(boxes, scores, thr, spec.iou_threshold, spec.max_detections if max_detections is None else max_detections)
    return boxes_to_image(boxes[keep], lb, image_size), scores[keep]
