"""BlazePose's 33 landmarks → the 17 COCO keypoints.

BlazePose (Bazarevsky et al., 2020, "BlazePose: On-device Real-time Body Pose tracking") predicts
a superset of the COCO topology: its nose, eyes, ears, shoulders, elbows, wrists, hips, knees and
ankles carry the same names as COCO's, so the mapping is a pure index selection. The rest
(eye corners, mouth, hands, heels, toes) has no COCO counterpart and is dropped.
"""
from __future__ import annotations

import numpy as np

from ..spec import COCO_SPEC

__all__ = [
    "BLAZEPOSE_LANDMARKS",
    "BLAZEPOSE_FLIP_PAIRS",
    "BLAZEPOSE_TO_COCO",
    "blazepose_to_coco",
    "flip_blazepose",
]

#: Landmark order of every BlazePose landmark model (lite, full, heavy).
BLAZEPOSE_LANDMARKS: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)


def _pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs; the side is a ``left``/``right`` word anywhere in the name."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        words = n.split("_")
        if "left" in words:
            pairs.append((i, index["_".join("right" if w == "left" else w for w in words)]))
    return tuple(pairs)


#: Left/right index pairs of the 33 BlazePose landmarks (swapped by a horizontal flip).
BLAZEPOSE_FLIP_PAIRS: tuple[tuple[int, int], ...] = _pairs(BLAZEPOSE_LANDMARKS)

#: For each COCO keypoint (in ``COCO_SPEC.keypoint_names`` order), its BlazePose landmark index.
BLAZEPOSE_TO_COCO: np.ndarray = np.array(
    [BLAZEPOSE_LANDMARKS.index(n) for n in COCO_SPEC.keypoint_names], dtype=np.int64
)


def blazepose_to_coco(landmarks: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select the COCO keypoints: landmarks (…, 33, D), scores (…, 33) → (…, 17, D), (…, 17)."""
    landmarks = np.asarray(landmarks)
    scores = np.asarray(scores)
    if landmarks.shape[-2] != len(BLAZEPOSE_LANDMARKS) or scores.shape[-1] != len(BLAZEPOSE_LANDMARKS):
        raise ValueError(
            f"expected {len(BLAZEPOSE_LANDMARKS)} BlazePose landmarks, got landmarks "
            f"{landmarks.shape} and scores {scores.shape}"
        )
    return landmarks[..., BLAZEPOSE_TO_COCO, :], scores[..., BLAZEPOSE_TO_COCO]


def flip_blazepose(values: np.ndarray, axis: int = -2) -> np.ndarray:
    """Swap left and right landmarks along ``axis`` (the landmark axis). Coordinates are not
    mirrored here; the caller mirrors x for its own frame."""
    values = np.asarray(values)
    perm = np.arange(len(BLAZEPOSE_LANDMARKS))
    for a, b in BLAZEPOSE_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return np.take(values, perm, axis=axis)
