"""Measure a teacher against human labels: OKS AP (pycocotools) on a COCO person_keypoints file.

The teacher reads each ground-truth box (so AP measures keypoints, not detection), and each
result is scored the way the labelling step scores people (:func:`person_score`).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from .blazepose import BlazePoseTeacher, PersonPose

__all__ = ["person_score", "teacher_results", "oks_ap"]


def person_score(pose: PersonPose) -> float:
    """Instance confidence: the pose flag times the mean COCO keypoint score."""
    _, scores = pose.coco()
    return float(pose.flag * scores.mean())


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def teacher_results(teacher: BlazePoseTeacher, ann_file: Path, image_dir: Path, scale: float = 1.25) -> list[dict]:
    """COCO keypoint results of ``teacher`` on every non-crowd ground-truth box of ``ann_file``."""
    data = json.loads(Path(ann_file).read_text())
    images = {im["id"]: im for im in data["images"]}
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        if not ann.get("iscrowd", 0) and ann.get("num_keypoints", 1) > 0:
            by_image.setdefault(ann["image_id"], []).append(ann)
    results = []
    for image_id, anns in sorted(by_image.items()):
        rgb = _read_rgb(Path(image_dir) / images[image_id]["file_name"])
        for ann, pose in zip(anns, teacher.from_boxes(rgb, np.array([a["bbox"] for a in anns]), scale)):
            kps, scores = pose.coco()
            flat = np.concatenate([kps, scores[:, None]], axis=1).ravel()
            results.append({
                "image_id": image_id, "category_id": 1,
                "keypoints": [round(float(v), 3) for v in flat], "score": person_score(pose),
            })
    return results


def oks_ap(ann_file: Path, results: list[dict]) -> dict[str, float]:
    """pycocotools keypoint evaluation; returns AP, AP50, AP75, AR."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {"AP": float(s[0]), "AP50": float(s[1]), "AP75": float(s[2]), "AR": float(s[5])}
