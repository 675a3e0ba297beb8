"""Live-video helpers in plain numpy: keypoint smoothing, person-ROI tracking, skeleton drawing.

A top-down pose model needs a person box every frame. On a phone there is usually no detector
budget, so the demo apps (and ``starpose-mobile predict`` on video) follow MoveNet's "cropping
algorithm": the next frame's region of interest comes from this frame's keypoints, centred on the
hips and sized by the torso and the whole visible body, with the full frame as the fallback when
the torso is lost. Keypoints jitter by a pixel or two between frames, so they are smoothed with the
One Euro filter (Casiez, Roussel and Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for
Noisy Input in Interactive Systems", CHI 2012): a low-pass filter whose cutoff rises with speed,
steady when still and without lag when moving.

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
