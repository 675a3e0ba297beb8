"""COCO-format person keypoint data (COCO itself, CrowdPose, and any COCO-style set).

Reads ``person_keypoints_*.json`` (GT boxes, for training or GT-box evaluation) and COCO-results
detection files (for testing). Every problem is reported with the file it was found in.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..spec import PoseSpec
from .errors import DataError
from .topdown import PersonSample

__all__ = ["load_json", "load_coco_annotations", "coco_gt_samples", "coco_det_samples", "CocoIndex",
           "check_file_name", "labelled_people", "require_labelled_people"]


def load_json(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON ({e})") from e


def check_file_name(path: Path, name: object, what: str) -> str:
    """An image ``file_name`` must be a relative path that stays inside the image folder: no
    absolute path, no drive, no ``..`` that climbs out (the folder is chosen by the user, the json
    may come from anywhere)."""
    import ntpath
    import posixpath

    if not isinstance(name, str) or not name.strip():
        raise DataError(path, f"{what}: file_name must be a non-empty string, got {name!r:.80}")
    if "\x00" in name:
        raise DataError(path, f"{what}: file_name {name!r:.80} contains a NUL byte")
    if posixpath.isabs(name) or ntpath.isabs(name) or ntpath.splitdrive(name)[0]:
        raise DataError(path, f"{what}: file_name {name!r} is absolute; it must be relative to the image folder")
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise DataError(path, f"{what}: file_name {name!r} climbs out of the image folder")
    return name


class CocoIndex:
    """A validated person_keypoints annotation file."""

    def __init__(self, path: str | Path, spec: PoseSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        data = load_json(self.path)
        if not isinstance(data, dict):
            raise DataError(self.path, "expected a JSON object with 'images' and 'annotations'")
        for key in ("images", "annotations"):
            if key not in data:
                raise DataError(self.path, f"missing '{key}' (not a COCO person_keypoints file)")
            if not isinstance(data[key], list):
                raise DataError(self.path, f"'{key}' must be a list")
        self.data = data
        self.images: dict[int, dict] = {}
        for img in data["images"]:
            try:
                image_id = int(img["id"])
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(self.path, f"image entry without a valid 'id': {img!r:.120}") from e
            if "file_name" in img:
                check_file_name(self.path, img["file_name"], f"image {image_id}")
            self.images[image_id] = img
        k = spec.num_keypoints
        cats = data.get("categories") or []
        for c in cats:
            names = c.get("keypoints")
            if names is not None and len(names) != k:
                raise DataError(
                    self.path, f"category '{c.get('name')}' has {len(names)} keypoints, the {spec.name} spec has {k}"
                )
        self.annotations: list[dict] = []
        for ann in data["annotations"]:
            self._check_annotation(ann)
            self.annotations.append(ann)

    def _check_annotation(self, ann: dict) -> None:
        k = self.spec.num_keypoints
        aid = ann.get("id", "?")
        if "image_id" not in ann or int(ann["image_id"]) not in self.images:
            raise DataError(self.path, f"annotation {aid}: image_id {ann.get('image_id')!r} is not in 'images'")
        kps = ann.get("keypoints")
        if kps is None or len(kps) != 3 * k:
            n = "none" if kps is None else len(kps)
            raise DataError(
                self.path,
                f"annotation {aid}: keypoints has {n} values, expected {3 * k} ({k} keypoints x (x, y, v)) "
                f"for the {self.spec.name} layout",
            )
        bbox = ann.get("bbox")
        if bbox is None or len(bbox) != 4:
            raise DataError(self.path, f"annotation {aid}: bbox must be [x, y, w, h], got {bbox!r}")
        img = self.images[int(ann["image_id"])]
        check_box(self.path, f"annotation {aid}", bbox, img)

    def image_path(self, image_root: Path, image_id: int) -> Path:
        return Path(image_root) / self.images[image_id]["file_name"]


def check_box(path: Path, what: str, bbox, img: dict) -> np.ndarray:
    """Validate a box against its image; returns it clipped to the image."""
    x, y, w, h = (float(v) for v in bbox)
    if not (np.isfinite([x, y, w, h]).all()) or w <= 0 or h <= 0:
        raise DataError(path, f"{what}: box {list(bbox)} has no area")
    iw, ih = img.get("width"), img.get("height")
    if iw is None or ih is None:
        return np.array([x, y, w, h])
    if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
        raise DataError(
            path, f"{what}: box {list(bbox)} lies outside image {img.get('file_name', img.get('id'))} ({iw}x{ih})"
        )
    x1, y1 = max(x, 0.0), max(y, 0.0)
    x2, y2 = min(x + w, iw - 1.0), min(y + h, ih - 1.0)
    return np.array([x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])


def _keypoints(ann: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(ann["keypoints"], dtype=np.float64).reshape(k, 3)
    return arr[:, :2].copy(), arr[:, 2].copy()


def labelled_people(annotations: list[dict], num_keypoints: int) -> int:
    """How many of ``annotations`` OKS AP scores: not a crowd, at least one labelled keypoint."""
    return sum(1 for ann in annotations if not ann.get("iscrowd", 0) and (_keypoints(ann, num_keypoints)[1] > 0).any())


def require_labelled_people(index: CocoIndex, why: str, path: str | Path | None = None) -> None:
    """A DataError naming ``path`` (default: the index's file) when ``index`` holds no one to score."""
    if not labelled_people(index.annotations, index.spec.num_keypoints):
        raise DataError(path or index.path, f"no labelled people in it (not a crowd, at least one keypoint): {why}")


def load_coco_annotations(path: str | Path, spec: PoseSpec) -> CocoIndex:
    return CocoIndex(path, spec)


def coco_gt_samples(
    index: CocoIndex, image_root: str | Path, *, min_keypoints: int = 1, check_images: bool = True
) -> list[PersonSample]:
    """One sample per non-crowd person with at least ``min_keypoints`` labelled keypoints."""
    image_root = Path(image_root)
    samples = []
    for ann in index.annotations:
        if ann.get("iscrowd", 0):
            continue
        kpts, vis = _keypoints(ann, index.spec.num_keypoints)
        if int((vis > 0).sum()) < min_keypoints:
            continue
        img = index.images[int(ann["image_id"])]
        path = image_root / img["file_name"]
        if check_images and not path.is_file():
            raise DataError(path, f"image of annotation {ann.get('id')} (listed in {index.path}) not found")
        samples.append(
            PersonSample(
                image_path=path,
                image_id=int(ann["image_id"]),
                bbox=check_box(index.path, f"annotation {ann.get('id')}", ann["bbox"], img),
                keypoints=kpts,
                visible=vis,
                ann_id=int(ann.get("id", -1)),
            )
        )
    return samples


def coco_det_samples(
    det_path: str | Path, index: CocoIndex, image_root: str | Path, *, score_thr: float = 0.0,
    check_images: bool = True,
) -> list[PersonSample]:
    """One sample per person detection (COCO results format) above ``score_thr``."""
    det_path = Path(det_path)
    dets = load_json(det_path)
    if not isinstance(dets, list):
        raise DataError(det_path, "expected a COCO results list of {image_id, bbox, score, category_id}")
    image_root = Path(image_root)
    samples = []
    for i, d in enumerate(dets):
        if not isinstance(d, dict) or "bbox" not in d or "image_id" not in d:
            raise DataError(det_path, f"entry {i} lacks 'image_id' or 'bbox'")
        if d.get("category_id", 1) != 1:
            continue
        score = float(d.get("score", 1.0))
        if score < score_thr:
            continue
        image_id = int(d["image_id"])
        if image_id not in index.images:
            raise DataError(det_path, f"entry {i}: image_id {image_id} is not in {index.path}")
        img = index.images[image_id]
        path = image_root / img["file_name"]
        if check_images and not path.is_file():
            raise DataError(path, f"image of detection {i} (in {det_path}) not found")
        samples.append(
            PersonSample(
                image_path=path,
                image_id=image_id,
                bbox=check_box(det_path, f"detection {i}", d["bbox"], img),
                bbox_score=score,
                ann_id=i,
            )
        )
    return samples
