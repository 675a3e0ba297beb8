"""Live-video helpers in plain numpy: keypoint smoothing, person-ROI tracking, skeleton drawing.

A top-down pose model needs a person box every frame. On a phone there is usually no detector
budget, so the demo apps (and ``starpose-mobile predict`` on video) follow MoveNet's "cropping
algorithm": the next frame's region of interest comes from this frame's keypoints, centred on the
hips and sized by the torso and the whole visible body, with the full frame as the fallback when
the torso is lost. Keypoints jitter by a pixel or two between frames, so they are smoothed with the
One Euro filter (Casiez, Roussel and Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for
Noisy Input in Interactive Systems", CHI 2012): a low-pass filter whose cutoff rises with speed,
steady when still and without lag when moving.

With a person detector (``predict`` on video, the demo apps), :class:`MultiPersonTracker` follows
several people: the detector runs every few frames, its boxes are matched to the tracks by IoU
(:func:`match_by_iou`), and each track is cropped by the same rule between detections and smoothed
by its own One Euro filter.

These functions are the executable spec of the Kotlin (``android_demo/core``) and Swift
(``ios_demo/StarPoseKit``) ports; ``tests/golden/make_golden.py`` writes their traces into the
fixture that all three test suites read. Conventions follow :mod:`starpose.processing`: boxes are
``(x, y, w, h)`` in image pixels, ``image_size`` is ``(w, h)``, keypoints are ``(K, 2)`` pixels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "OneEuroFilter",
    "torso_indices",
    "roi_from_keypoints",
    "full_frame_box",
    "RoiTracker",
    "box_iou_xywh",
    "match_by_iou",
    "Track",
    "MultiPersonTracker",
    "keypoint_side",
    "skeleton_draw_list",
    "TORSO_NAMES",
]

#: Keypoint names that define the torso, in the order (left/right shoulder, left/right hip).
TORSO_NAMES = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")


def _smoothing_factor(dt: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """Exponential-smoothing weight of a first-order low-pass filter with ``cutoff`` Hz."""
    r = 2.0 * math.pi * cutoff * dt
    return r / (r + 1.0)


class OneEuroFilter:
    """One Euro filter over an array of values (e.g. ``(K, 2)`` keypoint pixels), element-wise.

    ``min_cutoff`` (Hz) sets the smoothing at rest, ``beta`` (per pixel/s) how fast the cutoff
    rises with speed, ``d_cutoff`` (Hz) the smoothing of the speed estimate. Each element keeps its
    own state, so a keypoint that is invalid in a frame (``valid`` False: occluded, low score)
    passes through unchanged and restarts cleanly when it comes back instead of dragging the
    estimate across the image.

    Follows the paper's reference algorithm: the speed is the difference of the raw value and the
    previous *filtered* value over the time step, low-passed at ``d_cutoff``; the value is then
    low-passed at ``min_cutoff + beta * |speed|``. The first valid sample is returned as is.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.01, d_cutoff: float = 1.0) -> None:
        if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
            raise ValueError(
                f"OneEuroFilter: need min_cutoff > 0, d_cutoff > 0, beta >= 0; got "
                f"{min_cutoff}, {d_cutoff}, {beta}"
            )
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget all state (e.g. when the tracked person or the model changes)."""
        self._x: np.ndarray | None = None  # last filtered value
        self._dx: np.ndarray | None = None  # last filtered speed
        self._t: np.ndarray | None = None  # time of the last valid sample, NaN = no state
        self._last_t: float | None = None

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        """Filter the sample ``x`` taken at ``t`` seconds; ``valid`` broadcasts to ``x``."""
        x = np.asarray(x, dtype=np.float64)
        t = float(t)
        mask = np.ones(x.shape, dtype=bool) if valid is None else np.broadcast_to(valid, x.shape)
        if self._x is None:
            self._x = np.zeros(x.shape)
            self._dx = np.zeros(x.shape)
            self._t = np.full(x.shape, np.nan)
        elif self._x.shape != x.shape:
            raise ValueError(
                f"OneEuroFilter: sample shape {x.shape} differs from the filter's {self._x.shape}; "
                "call reset() when the keypoint layout changes"
            )
        if self._last_t is not None and not t > self._last_t:
            raise ValueError(f"OneEuroFilter: timestamps must increase, got {t} after {self._last_t}")
        self._last_t = t

        fresh = mask & np.isnan(self._t)
        warm = mask & ~np.isnan(self._t)
        out = x.copy()
        if warm.any():
            dt = t - self._t[warm]
            x_prev = self._x[warm]
            dx = (x[warm] - x_prev) / dt
            a_d = _smoothing_factor(dt, self.d_cutoff)
            dx_hat = a_d * dx + (1.0 - a_d) * self._dx[warm]
            cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
            a = _smoothing_factor(dt, cutoff)
            out[warm] = a * x[warm] + (1.0 - a) * x_prev
            self._dx[warm] = dx_hat
        self._dx[fresh] = 0.0
        self._x[mask] = out[mask]
        self._t[mask] = t
        self._t[~mask] = np.nan
        return out


def torso_indices(keypoint_names: Sequence[str]) -> tuple[int, int, int, int]:
    """Indices of (left shoulder, right shoulder, left hip, right hip) in a keypoint layout."""
    names = list(keypoint_names)
    missing = [n for n in TORSO_NAMES if n not in names]
    if missing:
        raise ValueError(f"keypoint layout has no {', '.join(missing)}: cannot track a torso")
    return tuple(names.index(n) for n in TORSO_NAMES)  # type: ignore[return-value]


def full_frame_box(image_size: tuple[float, float]) -> np.ndarray:
    """The whole image as an ``(x, y, w, h)`` box: the ROI when nobody is tracked."""
    return np.array([0.0, 0.0, float(image_size[0]), float(image_size[1])])


def roi_from_keypoints(
    keypoints: np.ndarray,
    scores: np.ndarray,
    image_size: tuple[float, float],
    torso: tuple[int, int, int, int],
    score_threshold: float = 0.3,
    torso_factor: float = 1.5,
    body_factor: float = 1.2,
) -> np.ndarray | None:
    """Next frame's person box ``(x, y, w, h)`` from this frame's keypoints, or None if lost.

    MoveNet's cropping rule, per axis instead of square (our crops are 3:4, not 1:1): the box is
    centred on the mean of the visible hips; its half-extent along each axis is the larger of
    ``torso_factor`` x the torso's extent and ``body_factor`` x the visible body's extent from that
    centre; it never extends past what is needed to reach the farthest image border, and becomes
    the full frame when it would span the image along both axes. A keypoint is visible when its score is
    above ``score_threshold``; the torso must show at least one shoulder and one hip. The returned
    box plays the part of a detector box, so callers pad it with the spec's ``bbox_padding`` like
    any other: with the defaults, on the COCO fixture's annotated people the resulting crop
    covers the whole ground-truth box and is 1.0-1.5x the ground-truth crop.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    visible = sc > score_threshold
    shoulders = [i for i in torso[:2] if visible[i]]
    hips = [i for i in torso[2:] if visible[i]]
    if not shoulders or not hips:
        return None
    center = kp[hips].mean(axis=0)
    torso_pts = kp[shoulders + hips]
    torso_half = np.abs(torso_pts - center).max(axis=0) * torso_factor
    body_half = np.abs(kp[visible] - center).max(axis=0) * body_factor
    half = np.maximum(torso_half, body_half)
    w, h = float(image_size[0]), float(image_size[1])
    reach = np.array([max(center[0], w - center[0]), max(center[1], h - center[1])])
    half = np.minimum(half, reach)
    if not (half[0] > 0 and half[1] > 0):
        return None
    if half[0] >= w / 2 and half[1] >= h / 2:
        return full_frame_box(image_size)
    return np.array([center[0] - half[0], center[1] - half[1], 2 * half[0], 2 * half[1]])


class RoiTracker:
    """Single-person ROI tracking: start on the full frame, then follow the keypoints.

    ``box`` is the region to crop for the *next* frame; ``lost`` tells whether it is the
    full-frame fallback because the torso was not visible.
    """

    def __init__(
        self,
        image_size: tuple[float, float],
        torso: tuple[int, int, int, int],
        score_threshold: float = 0.3,
        torso_factor: float = 1.5,
        body_factor: float = 1.2,
    ) -> None:
        self.image_size = (float(image_size[0]), float(image_size[1]))
        self.torso = tuple(int(i) for i in torso)
        self.score_threshold = float(score_threshold)
        self.torso_factor = float(torso_factor)
        self.body_factor = float(body_factor)
        self.reset()

    def reset(self) -> None:
        self.box = full_frame_box(self.image_size)
        self.lost = True

    def update(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Take this frame's (unsmoothed) keypoints in image pixels; return the next box."""
        roi = roi_from_keypoints(
            keypoints, scores, self.image_size, self.torso,
            self.score_threshold, self.torso_factor, self.body_factor,
        )
        self.lost = roi is None
        self.box = full_frame_box(self.image_size) if roi is None else roi
        return self.box


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(x, y, w, h)`` boxes; 0 when the union is empty."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = max(aw, 0.0) * max(ah, 0.0) + max(bw, 0.0) * max(bh, 0.0) - inter
    return inter / union if union > 0 else 0.0


def match_by_iou(
    track_boxes: Sequence[np.ndarray], det_boxes: Sequence[np.ndarray], iou_threshold: float = 0.3
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of tracks to detections by IoU.

    Every (track, detection) pair with IoU >= ``iou_threshold`` is a candidate; candidates are
    taken by descending IoU (ties: lower track index, then lower detection index), skipping pairs
    whose track or detection is already taken. Returns ``(track, detection)`` index pairs in the
    order they were taken.
    """
    pairs = []
    for t, tb in enumerate(track_boxes):
        for d, db in enumerate(det_boxes):
            v = box_iou_xywh(tb, db)
            if v >= iou_threshold:
                pairs.append((-v, t, d))
    pairs.sort()
    used_t: set[int] = set()
    used_d: set[int] = set()
    out = []
    for _, t, d in pairs:
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        out.append((t, d))
    return out


class Track:
    """One followed person: a stable ``id``, the ``box`` to crop in the next frame, the last
    keypoints and scores, and its own One Euro filter."""

    def __init__(self, track_id: int, box: np.ndarray, score: float, filt: OneEuroFilter | None) -> None:
        self.id = int(track_id)
        self.box = np.asarray(box, dtype=np.float64).copy()
        self.score = float(score)
        self.filter = filt
        self.keypoints: np.ndarray | None = None
        self.scores: np.ndarray | None = None
        self.lost = False


class MultiPersonTracker:
    """Several people on video: a detector every ``detect_every`` frames, ROI tracking between.

    Per frame the caller asks :meth:`due`; when True it runs its detector and passes the boxes
    (``(x, y, w, h)`` image pixels, best first) to :meth:`assign`. It then crops every
    :attr:`tracks` box, runs the pose model and reports each result with :meth:`update`, and
    finally calls :meth:`advance`.

    * :meth:`assign` matches the tracks' current boxes to the detections (:func:`match_by_iou`):
      a matched track keeps its id and filter and takes the detection's box; detections left over
      start new tracks, best first, while fewer than ``max_people`` are followed; tracks left
      over are dropped (the detector no longer sees them).
    * :meth:`update` sets a track's next box from its keypoints (:func:`roi_from_keypoints`);
      a track whose torso is not visible is lost and dropped by :meth:`advance`, which also makes
      the next frame a detection frame.
    * :meth:`advance` drops, of two tracks whose next boxes overlap by more than
      ``duplicate_iou``, the one with the lower mean keypoint score (two crops that converged on
      the same person), then moves to the next frame.

    Detection is due on the first frame, every ``detect_every`` frames after the last detection,
    and on the frame after a track was lost or when nobody is followed.
    """

    def __init__(
        self,
        image_size: tuple[float, float],
        torso: tuple[int, int, int, int],
        score_threshold: float = 0.3,
        detect_every: int = 5,
        max_people: int = 5,
        iou_threshold: float = 0.3,
        duplicate_iou: float = 0.6,
        smoothing: tuple[float, float] | None = (1.0, 0.05),
        torso_factor: float = 1.5,
        body_factor: float = 1.2,
    ) -> None:
        if detect_every < 1 or max_people < 1:
            raise ValueError(f"detect_every and max_people must be >= 1, got {detect_every}, {max_people}")
        self.image_size = (float(image_size[0]), float(image_size[1]))
        self.torso = tuple(int(i) for i in torso)
        self.score_threshold = float(score_threshold)
        self.detect_every = int(detect_every)
        self.max_people = int(max_people)
        self.iou_threshold = float(iou_threshold)
        self.duplicate_iou = float(duplicate_iou)
        self.smoothing = smoothing
        self.torso_factor = float(torso_factor)
        self.body_factor = float(body_factor)
        self.tracks: list[Track] = []
        self.frame = 0
        self._next_id = 0
        self._since_detection: int | None = None
        self._force = True

    def due(self) -> bool:
        """Whether this frame needs the detector."""
        return (self._force or not self.tracks or self._since_detection is None
                or self._since_detection >= self.detect_every)

    def assign(self, boxes: Sequence[np.ndarray], scores: Sequence[float] | None = None) -> None:
        """This frame's detections (best first): match, start and drop tracks."""
        boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
        scores = [1.0] * len(boxes) if scores is None else [float(s) for s in scores]
        pairs = match_by_iou([t.box for t in self.tracks], boxes, self.iou_threshold)
        kept = []
        for t, d in pairs:
            track = self.tracks[t]
            track.box, track.score, track.lost = boxes[d].copy(), scores[d], False
            kept.append(track)
        taken = {d for _, d in pairs}
        for d in range(len(boxes)):
            if d in taken or len(kept) >= self.max_people:
                continue
            filt = OneEuroFilter(*self.smoothing) if self.smoothing else None
            kept.append(Track(self._next_id, boxes[d], scores[d], filt))
            self._next_id += 1
        self.tracks = sorted(kept, key=lambda tr: tr.id)
        self._since_detection = 0
        self._force = False

    def update(self, track: Track, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """This frame's (unsmoothed) keypoints of ``track``: its next box, or lost."""
        track.keypoints = np.asarray(keypoints, dtype=np.float64).copy()
        track.scores = np.asarray(scores, dtype=np.float64).copy()
        roi = roi_from_keypoints(track.keypoints, track.scores, self.image_size, self.torso,
                                 self.score_threshold, self.torso_factor, self.body_factor)
        track.lost = roi is None
        if roi is not None:
            track.box = roi

    def advance(self) -> None:
        """End the frame: drop lost and duplicate tracks, count frames since the last detection."""
        if any(t.lost for t in self.tracks):
            self._force = True
        alive = [t for t in self.tracks if not t.lost]
        mean = {t.id: float(np.mean(t.scores)) if t.scores is not None else 0.0 for t in alive}
        drop: set[int] = set()
        for i, a in enumerate(alive):
            for b in alive[i + 1:]:
                if a.id in drop or b.id in drop:
                    continue
                if box_iou_xywh(a.box, b.box) > self.duplicate_iou:
                    drop.add(b.id if mean[b.id] < mean[a.id] or (mean[b.id] == mean[a.id] and b.id > a.id) else a.id)
        self.tracks = [t for t in alive if t.id not in drop]
        self.frame += 1
        if self._since_detection is not None:
            self._since_detection += 1


def keypoint_side(name: str) -> str:
    """``"left"``, ``"right"`` or ``"center"`` from a keypoint name, for colouring."""
    if name.startswith("left_"):
        return "left"
    if name.startswith("right_"):
        return "right"
    return "center"


def skeleton_draw_list(
    scores: np.ndarray,
    skeleton: Sequence[Sequence[int]],
    keypoint_names: Sequence[str],
    score_threshold: float = 0.3,
) -> tuple[list[tuple[int, str]], list[tuple[int, int, str]]]:
    """What to draw for one pose: the visible keypoints and the bones between visible pairs.

    Returns ``(points, lines)``: ``points`` are ``(index, side)`` of keypoints whose score is above
    the threshold, in index order; ``lines`` are ``(a, b, side)`` for each skeleton pair in the
    spec's order with both ends visible, where ``side`` is that of the pair when both ends agree
    and ``"center"`` otherwise.
    """
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    visible = sc > score_threshold
    sides = [keypoint_side(n) for n in keypoint_names]
    points = [(i, sides[i]) for i in range(len(sc)) if visible[i]]
    lines = []
    for a, b in skeleton:
        if visible[a] and visible[b]:
            lines.append((int(a), int(b), sides[a] if sides[a] == sides[b] else "center"))
    return points, lines
