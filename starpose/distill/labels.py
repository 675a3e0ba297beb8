"""Teacher readings → COCO person_keypoints pseudo-labels.

A reading (:func:`reading_from_pose`) is the JSON-safe record of one detected person: the 33
BlazePose landmarks with visibility and presence, the pose flag, the detector score, the
segmentation box and area, and the flip disagreement. :func:`annotation_from_reading` turns it
into a COCO annotation (the 17 COCO keypoints, ``v=2`` where the teacher is confident and the
point lies in the image, ``0`` otherwise) or rejects it; :func:`oks_nms` drops the duplicates
that overlapping detector windows leave. :func:`coco_dataset` assembles a split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import COCO_SPEC
from .blazepose import Detection, PersonPose
from .mapping import blazepose_to_coco

__all__ = [
    "LabelPolicy",
    "reading_from_pose",
    "annotation_from_reading",
    "oks",
    "oks_nms",
    "coco_categories",
    "coco_dataset",
]


@dataclass(frozen=True)
class LabelPolicy:
    """When a teacher reading becomes a label.

    ``kpt_thr``: keypoint score (visibility x presence) for ``v=2``; ``min_keypoints``: fewest
    confident keypoints for a person to be kept; ``min_score``: pose flag x mean keypoint score;
    ``max_flip_err``: mean disagreement (fraction of the crop side) between the plain and the
    mirrored reading over the confident keypoints; ``min_size``: the longer box side in pixels;
    ``nms_oks``: OKS above which the lower-scored of two people in one image is dropped;
    ``box_margin``: how far (fraction of the keypoints' larger extent) the segmentation box may
    reach beyond the confident keypoints before it is cut.
    """

    kpt_thr: float = 0.5
    min_keypoints: int = 8
    min_score: float = 0.5
    max_flip_err: float = 0.03
    min_size: float = 48.0
    nms_oks: float = 0.7
    box_margin: float = 0.2


def reading_from_pose(pose: PersonPose, detection: Detection | None = None) -> dict:
    """JSON-safe record of one teacher output (image pixels)."""
    r = pose.roi
    rec = {
        "landmarks": np.round(pose.landmarks, 2).tolist(),
        "visibility": np.round(pose.visibility, 4).tolist(),
        "presence": np.round(pose.presence, 4).tolist(),
        "flag": round(float(pose.flag), 4),
        "roi": [round(r.cx, 2), round(r.cy, 2), round(r.size, 2), round(r.rotation, 4)],
        "det_score": None if detection is None else round(float(detection.score), 4),
    }
    if "flip_err" in pose.extra:
        rec["flip_err"] = np.round(pose.extra["flip_err"], 4).tolist()
    if "mask_box" in pose.extra:
        rec["mask_box"] = np.round(pose.extra["mask_box"], 2).tolist()
        rec["mask_area"] = round(float(pose.extra["mask_area"]), 1)
    return rec


def annotation_from_reading(reading: dict, width: int, height: int, policy: LabelPolicy) -> dict | None:
    """A COCO annotation (without ids) for one reading, or ``None`` when the policy rejects it."""
    landmarks = np.asarray(reading["landmarks"], dtype=np.float64)
    scores33 = np.asarray(reading["visibility"]) * np.asarray(reading["presence"])
    kps, scores = blazepose_to_coco(landmarks, scores33)
    inside = (kps[:, 0] >= 0) & (kps[:, 0] < width) & (kps[:, 1] >= 0) & (kps[:, 1] < height)
    confident = (scores >= policy.kpt_thr) & inside
    person_score = float(reading["flag"]) * float(scores.mean())
    if confident.sum() < policy.min_keypoints or person_score < policy.min_score:
        return None
    if "flip_err" in reading:
        err = blazepose_to_coco(np.zeros((33, 2)), np.asarray(reading["flip_err"]))[1]
        if float(err[confident].mean()) > policy.max_flip_err:
            return None
    pts = kps[confident]
    if "mask_box" in reading and min(reading["mask_box"][2:]) > 1:
        x, y, w, h = reading["mask_box"]
        # The mask box must hold the confident keypoints (else it segmented someone else).
        held = ((pts[:, 0] >= x - 0.05 * w) & (pts[:, 0] <= x + 1.05 * w)
                & (pts[:, 1] >= y - 0.05 * h) & (pts[:, 1] <= y + 1.05 * h)).mean()
        if held < 0.9:
            return None
        # Where people overlap, the mask can spread over a neighbour: keep the box within
        # policy.box_margin x the keypoints' larger extent of them.
        lo, hi = pts.min(0), pts.max(0)
        m = policy.box_margin * float((hi - lo).max())
        x0, y0 = max(x, lo[0] - m), max(y, lo[1] - m)
        x1, y1 = min(x + w, hi[0] + m), min(y + h, hi[1] + m)
        mask_area = min(float(reading.get("mask_area", w * h)), w * h)
        area = mask_area * ((x1 - x0) * (y1 - y0)) / (w * h)
        x, y, w, h = float(x0), float(y0), float(x1 - x0), float(y1 - y0)
    else:
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.1 * (hi - lo)
        lo = np.clip(lo - pad, 0, [width, height])
        hi = np.clip(hi + pad, 0, [width, height])
        x, y, w, h = float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])
        area = 0.53 * w * h  # COCO's median segmentation / box area ratio for people
    if max(w, h) < policy.min_size:
        return None
    flat = np.zeros((len(kps), 3))
    flat[confident, :2] = np.round(kps[confident], 2)
    flat[confident, 2] = 2
    return {
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [round(float(v), 2) for v in (x, y, w, h)],
        "area": round(float(area), 2),
        "num_keypoints": int(confident.sum()),
        "keypoints": [float(v) if i % 3 != 2 else int(v) for i, v in enumerate(flat.ravel())],
        "score": round(person_score, 4),
        "keypoint_scores": np.round(scores, 4).tolist(),
    }


def oks(a: dict, b: dict, sigmas: tuple[float, ...] = COCO_SPEC.sigmas) -> float:
    """COCO object keypoint similarity of annotation ``b`` against ``a`` (``a``'s area and
    labelled keypoints)."""
    ka = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
    kb = np.asarray(b["keypoints"], dtype=np.float64).reshape(-1, 3)
    both = (ka[:, 2] > 0) & (kb[:, 2] > 0)
    if not both.any():
        return 0.0
    var = (2.0 * np.asarray(sigmas)) ** 2
    d2 = ((ka[:, :2] - kb[:, :2]) ** 2).sum(1)
    e = d2 / var / (max(a["area"], 1.0) + np.spacing(1)) / 2.0
    return float(np.exp(-e[both]).mean())


def oks_nms(anns: list[dict], threshold: float) -> list[dict]:
    """Keep the best-scored of every set of annotations that overlap by OKS > ``threshold``."""
    kept: list[dict] = []
    for ann in sorted(anns, key=lambda a: -a["score"]):
        if all(max(oks(k, ann), oks(ann, k)) <= threshold for k in kept):
            kept.append(ann)
    return kept


def coco_categories() -> list[dict]:
    return [{
        "supercategory": "person", "id": 1, "name": "person",
        "keypoints": list(COCO_SPEC.keypoint_names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_SPEC.skeleton],
    }]


def coco_dataset(images: list[dict], annotations: list[dict], info: dict) -> dict:
    """A COCO person_keypoints dict; annotation ids are assigned here, in order."""
    anns = [dict(a, id=i + 1) for i, a in enumerate(annotations)]
    return {"info": info, "licenses": [], "categories": coco_categories(), "images": images, "annotations": anns}
