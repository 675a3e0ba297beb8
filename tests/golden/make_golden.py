"""Write the golden fixture shared by pytest, the Kotlin JVM tests and the Swift XCTests.

Every number in ``tests/golden/*.json`` comes from the numpy reference functions in
``starpose/processing.py`` and ``starpose/tracking.py`` applied to small seeded inputs, so the
Android and iOS ports are checked against the executable spec rather than against each other.

    python tests/golden/make_golden.py            # rewrite the fixture in place
    python tests/golden/make_golden.py --check    # exit 1 if the committed files are stale

``tests/golden/test_golden_fixture.py`` regenerates the fixture in memory and compares it with
the committed files, so the fixture cannot drift from the reference. README.md beside this file
lists what each file holds and the tolerances the ports must meet (stored in the files too).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from starpose.processing import (
    apply_affine,
    bbox_xywh_to_cs,
    bbox_xyxy_to_cs,
    decode_simcc,
    get_warp_matrix,
    invert_affine,
    keypoints_to_image,
    normalize_image,
    top_down_affine,
)
from starpose.detect.processing import anchor_points, boxes_to_image, decode, letterbox_transform, nms
from starpose.detect.spec import DetectorSpec
from starpose.spec import COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC, PoseSpec
from starpose.tracking import (
    MultiPersonTracker,
    OneEuroFilter,
    RoiTracker,
    match_by_iou,
    roi_from_keypoints,
    skeleton_draw_list,
    torso_indices,
)

GOLDEN_DIR = Path(__file__).resolve().parent
REPO = GOLDEN_DIR.parents[1]
COCO_JSON = REPO.parent / "shared" / "fixtures" / "coco" / "test_coco.json"  # read in place, never copied
FORMAT_VERSION = 1
SEED = 20240611

# What the ports must meet. Geometry is float64 everywhere, so only libm ulps differ; SimCC
# decoding is an argmax over float32 values and must match exactly; the bilinear crop may differ
# by one intensity level from OpenCV's (which rounds its sampling positions to fixed point).
TOLERANCE = {
    "geometry_abs": 1e-9,
    "normalize_abs": 1e-5,
    "warp_max_abs": 1,
    "simcc_keypoints_abs": 0.0,
    "simcc_scores_abs": 0.0,
    "filter_abs": 1e-9,
    "roi_abs": 1e-9,
}


# ----------------------------------------------------------------------------- serialisation
def _plain(obj: Any) -> Any:
    """numpy → plain JSON values (float32 values become the float64 that equals them)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        if not np.isfinite(v):
            raise ValueError(f"non-finite value {v} cannot go into the golden fixture")
        return v
    return obj


def dumps(obj: Any) -> str:
    """Deterministic JSON: objects one key per line, lists of scalars on one line."""

    def enc(o: Any, ind: int) -> str:
        pad = " " * ind
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f'{pad} {json.dumps(k)}: {enc(v, ind + 1)}' for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, list):
            if all(not isinstance(v, (dict, list)) for v in o):
                return "[" + ",".join(json.dumps(v) for v in o) + "]"
            items = [f"{pad} {enc(v, ind + 1)}" for v in o]
            return "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return json.dumps(o)

    return enc(_plain(obj), 0) + "\n"


# ----------------------------------------------------------------------------- processing.json
def _base_pose() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A real standing person: COCO annotation 442619 (image 785, all 17 keypoints labelled)."""
    if not COCO_JSON.is_file():
        raise SystemExit(f"{COCO_JSON}: the COCO fixture is missing; regenerating the golden file needs the "
                         "project's shared data folder beside the repository")
    data = json.loads(COCO_JSON.read_text())
    ann = next(a for a in data["annotations"] if a["id"] == 442619)
    img = next(i for i in data["images"] if i["id"] == ann["image_id"])
    kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
    return kp[:, :2], kp[:, 2], (int(img["width"]), int(img["height"]))


def _test_image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth colour pattern plus noise: enough structure that a wrong sample shows."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            128 + 100 * np.sin(xx / 5.0 + yy / 7.0),
            128 + 100 * np.cos(xx / 6.0 - yy / 4.0),
            (xx * 5 + yy * 3) % 256,
        ],
        axis=-1,
    )
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _simcc_vectors(
    rng: np.random.Generator, peaks: np.ndarray, lengths: tuple[int, int], invalid: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """SimCC-like vectors: a Gaussian bump per keypoint over noise, 4 decimals (short JSON).

    Keypoints in ``invalid`` get all-negative vectors (decoded as invalid, location -1).
    """
    k = peaks.shape[0]
    out = []
    for axis, length in enumerate(lengths):
        grid = np.arange(length, dtype=np.float64)
        amp = rng.uniform(0.35, 0.95, size=(k, 1))
        v = amp * np.exp(-0.5 * ((grid[None] - peaks[:, axis : axis + 1]) / 6.0) ** 2)
        v = v + rng.normal(0, 0.01, size=v.shape)
        v[invalid] = -np.abs(v[invalid]) - 0.05
        out.append(np.round(v, 4))
    return out[0], out[1]


def _simcc_case(
    name: str, sx: np.ndarray, sy: np.ndarray, split: float, crop_to_image: np.ndarray
) -> dict[str, Any]:
    kp, sc = decode_simcc(sx.astype(np.float32), sy.astype(np.float32), split)
    return {
        "name": name,
        "num_keypoints": sx.shape[0],
        "lengths": [sx.shape[1], sy.shape[1]],
        "split_ratio": split,
        "simcc_x": sx.reshape(-1),
        "simcc_y": sy.reshape(-1),
        "keypoints": kp.reshape(-1),
        "scores": sc,
        "crop_to_image": crop_to_image,
        "keypoints_image": keypoints_to_image(kp, crop_to_image).reshape(-1),
    }


def make_processing(rng: np.random.Generator) -> dict[str, Any]:
    spec = COCO_SPEC
    in_size = tuple(spec.input_size)

    boxes = []
    for box, size, pad in [
        ((281.0, 45.0, 219.0, 347.0), in_size, 1.25),  # tall person: height decides
        ((38.0, 111.0, 175.0, 175.0), in_size, 1.25),  # square: widened to 3:4 by height
        ((10.5, 20.25, 300.0, 90.0), in_size, 1.25),  # wide: width decides
        ((3.3, 2.7, 9.1, 11.9), in_size, 1.0),
        ((100.0, 50.0, 80.0, 120.0), tuple(MPII_SPEC.input_size), 1.25),
        ((-20.0, -10.0, 60.0, 40.0), in_size, 1.25),  # partly outside the image
    ]:
        c, s = bbox_xywh_to_cs(np.array(box), size, pad)
        boxes.append({"bbox_xywh": box, "input_size": size, "padding": pad, "center": c, "scale": s})
    boxes_xyxy = []
    for box in [(281.0, 45.0, 500.0, 392.0), (0.0, 0.0, 640.0, 480.0), (12.5, 7.5, 30.0, 90.0)]:
        c, s = bbox_xyxy_to_cs(np.array(box), in_size, 1.25)
        boxes_xyxy.append({"bbox_xyxy": box, "input_size": in_size, "padding": 1.25, "center": c, "scale": s})

    affine = []
    for center, scale, rot, out in [
        ((390.5, 218.5), (273.75, 365.0), 0.0, in_size),
        ((100.0, 80.0), (120.0, 160.0), 30.0, in_size),
        ((320.0, 240.0), (640.0, 853.3333333333334), -45.0, in_size),
        ((50.0, 60.0), (40.0, 40.0), 90.0, (256, 256)),
        ((12.25, 7.75), (9.0, 12.0), 17.5, (12, 16)),
    ]:
        mat = get_warp_matrix(np.array(center), np.array(scale), rot, out)
        inv = get_warp_matrix(np.array(center), np.array(scale), rot, out, inv=True)
        pts = rng.uniform(-50, 500, size=(5, 2)).round(3)
        affine.append({
            "center": center, "scale": scale, "rot": rot, "output_size": out,
            "matrix": mat, "inverse": inv, "points": pts, "mapped": apply_affine(pts, mat),
            "mapped_back": apply_affine(apply_affine(pts, mat), invert_affine(mat)),
        })

    img = _test_image(rng, 32, 40)
    warp = []
    for box, rot, out in [
        ((5.0, 6.0, 14.0, 22.0), 0.0, (12, 16)),
        ((-4.0, 10.0, 30.0, 36.0), 30.0, (12, 16)),  # rotated, partly outside: black border
        ((3.3, 2.7, 9.1, 11.9), -15.0, (12, 16)),  # zoom in, sub-pixel positions
        ((0.0, 0.0, 32.0, 40.0), 0.0, (9, 9)),  # whole image, square output
    ]:
        c, s = bbox_xywh_to_cs(np.array(box), out, 1.25)
        crop, mat = top_down_affine(img, c, s, out, rot)
        warp.append({
            "bbox_xywh": box, "rot": rot, "output_size": out, "center": c, "scale": s,
            "matrix": mat, "crop_hwc": crop.reshape(-1),
        })

    small = img[:3, :4]
    normalize = [{
        "height": 3, "width": 4, "rgb_hwc": small.reshape(-1), "mean": spec.mean, "std": spec.std,
        "output_chw": normalize_image(small, spec.mean, spec.std).reshape(-1),
    }]

    # SimCC: one full-size COCO case on a real pose, and small edge cases.
    base, _, _ = _base_pose()
    c, s = bbox_xywh_to_cs(np.array([281.0, 45.0, 219.0, 347.0]), in_size, spec.bbox_padding)
    image_to_crop = get_warp_matrix(c, s, 0.0, in_size)
    crop_to_image = invert_affine(image_to_crop)
    peaks = apply_affine(base, image_to_crop) * spec.simcc_split_ratio
    lx, ly = spec.simcc_lengths
    sx, sy = _simcc_vectors(rng, peaks, (lx, ly), invalid=[3, 15])
    simcc = [_simcc_case("coco_full", sx, sy, spec.simcc_split_ratio, crop_to_image)]
    # ties: the first maximum wins; a score of exactly 0 is invalid; split ratio 3
    tx = np.array([[0.0, 0.5, 0.5, 0.1], [0.2, 0.1, 0.0, 0.2], [0.0, 0.0, 0.0, 0.0]])
    ty = np.array([[0.1, 0.3, 0.7, 0.7, 0.2], [0.9, 0.1, 0.1, 0.1, 0.3], [0.5, 0.0, 0.1, 0.0, 0.0]])
    simcc.append(_simcc_case("ties_and_zero", tx, ty, 3.0, np.array([[2.0, 0.0, 10.0], [0.0, 2.0, 20.0]])))
    nx = np.array([[-0.3, -0.1, -0.2], [0.25, -1.0, 0.125]])
    ny = np.array([[0.4, 0.6], [-0.5, -0.25]])
    simcc.append(_simcc_case("negative", nx, ny, 1.0, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])))

    return {
        "about": "Reference numbers from starpose/processing.py; regenerate with tests/golden/make_golden.py",
        "format_version": FORMAT_VERSION,
        "tolerance": TOLERANCE,
        "spec": spec.to_dict(),
        "boxes_xywh": boxes,
        "boxes_xyxy": boxes_xyxy,
        "affine": affine,
        "warp_image": {"width": img.shape[1], "height": img.shape[0], "rgb_hwc": img.reshape(-1)},
        "warp": warp,
        "normalize": normalize,
        "simcc": simcc,
    }


# ----------------------------------------------------------------------------- tracking.json
def _noisy_track(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps (irregular, like a real camera), 5 keypoints moving then jumping, validity."""
    dt = rng.uniform(0.028, 0.040, size=n)
    t = 1000.0 + np.cumsum(dt)
    base = np.array([[100.0, 50.0], [120.0, 80.0], [80.0, 80.0], [110.0, 150.0], [90.0, 150.0]])
    motion = np.where(np.arange(n)[:, None] < n // 2, 0.0, 1.0) * np.array([60.0, -20.0])
    drift = np.linspace(0, 1, n)[:, None] * np.array([15.0, 5.0])
    x = base[None] + (motion + drift)[:, None, :] + rng.normal(0, 1.5, size=(n, 5, 2))
    valid = np.ones((n, 5), dtype=bool)
    valid[8:11, 1] = False  # an occluded elbow comes back
    valid[20:, 4] = False  # a keypoint that leaves
    valid[0, 2] = False  # invalid in the very first frame
    return t, x.round(3), valid


def make_one_euro(rng: np.random.Generator) -> list[dict[str, Any]]:
    cases = []
    for params in [
        {"min_cutoff": 1.0, "beta": 0.01, "d_cutoff": 1.0},
        {"min_cutoff": 0.3, "beta": 0.5, "d_cutoff": 2.0},
    ]:
        t, x, valid = _noisy_track(rng, 30)
        f = OneEuroFilter(**params)
        outs = [f(x[i], t[i], valid[i][:, None]) for i in range(len(t))]
        cases.append({
            "params": params, "num_points": x.shape[1], "timestamps": t,
            "samples": x.reshape(len(t), -1), "valid": valid, "outputs": np.array(outs).reshape(len(t), -1),
        })
    return cases


def _pose_frames(
    rng: np.random.Generator, n: int, base: np.ndarray, vis: np.ndarray, image_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A person walking across the frame and back, shrinking, partly leaving it, losing the torso."""
    cx0 = base.mean(axis=0)
    kps, scs = [], []
    for i in range(n):
        shift = np.array([-250.0 + 40.0 * i if i < 10 else 150.0 - 35.0 * (i - 10), 10.0 * np.sin(i / 3)])
        zoom = 1.0 - 0.03 * i if i < 12 else 0.64 + 0.08 * (i - 12)
        kp = (base - cx0) * zoom + cx0 + shift + rng.normal(0, 1.0, size=base.shape)
        sc = np.where(vis > 0, rng.uniform(0.45, 0.95, size=vis.shape), rng.uniform(0.0, 0.2, size=vis.shape))
        if i in (6, 7):
            sc[[11, 12]] = 0.1  # hips not visible: the tracker loses the torso
        if i == 13:
            sc[[5, 6]] = 0.05  # shoulders not visible
        kps.append(kp.round(3))
        scs.append(sc.round(4).astype(np.float32))  # models output float32 scores
    return np.array(kps), np.array(scs)


def make_roi(rng: np.random.Generator) -> dict[str, Any]:
    spec = COCO_SPEC
    base, vis, image_size = _base_pose()
    torso = torso_indices(spec.keypoint_names)
    params = {"score_threshold": 0.3, "torso_factor": 1.5, "body_factor": 1.2}
    kps, scs = _pose_frames(rng, 18, base, vis, image_size)
    # A large body off-centre (its box is clamped to the farthest border) and one filling the
    # picture (the box becomes the full frame).
    off = (base - base.mean(0)) * 2.2 + np.array([200.0, 150.0])
    big = (base - base.mean(0)) * 3.0 + np.array([image_size[0] / 2, image_size[1] / 2])
    kps = np.concatenate([kps, off[None].round(3), big[None].round(3)])
    scs = np.concatenate([scs, np.full((2, len(base)), 0.9, dtype=np.float32)])
    tracker = RoiTracker(image_size, torso, **params)
    frames = []
    for kp, sc in zip(kps, scs):
        used = tracker.box.copy()
        c, s = bbox_xywh_to_cs(used, tuple(spec.input_size), spec.bbox_padding)
        roi = roi_from_keypoints(kp, sc, image_size, torso, **params)
        nxt = tracker.update(kp, sc)
        frames.append({
            "box_used": used, "center": c, "scale": s, "keypoints": kp.reshape(-1), "scores": sc,
            "roi": roi, "lost": tracker.lost, "next_box": nxt,
        })
    return {
        "image_size": image_size, "input_size": spec.input_size, "padding": spec.bbox_padding,
        "keypoint_names": spec.keypoint_names, "torso": torso, "params": params, "frames": frames,
    }


def make_skeleton(rng: np.random.Generator) -> list[dict[str, Any]]:
    cases = []
    for spec in (COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC):
        # float32 scores, as models output; 0.25 is exact in float32 and float64, so the
        # keypoint scored exactly at the threshold is not drawn in every language.
        scores = rng.uniform(0.0, 1.0, size=spec.num_keypoints).round(4).astype(np.float32)
        scores[0] = 0.25
        points, lines = skeleton_draw_list(scores, spec.skeleton, spec.keypoint_names, 0.25)
        cases.append({
            "spec": spec.name, "keypoint_names": spec.keypoint_names, "skeleton": spec.skeleton,
            "threshold": 0.25, "scores": scores, "points": points, "lines": lines,
        })
    return cases


def make_pipeline(rng: np.random.Generator) -> dict[str, Any]:
    """The whole per-frame loop the apps run, from the ROI to the smoothed keypoints.

    box (tracker) → centre/scale (spec padding) → image→crop matrix → [model: keypoints in crop
    pixels, here recorded] → crop→image → One Euro (valid = score above threshold) → tracker
    update with the unsmoothed keypoints.
    """
    spec = COCO_SPEC
    base, vis, image_size = _base_pose()
    torso = torso_indices(spec.keypoint_names)
    roi_params = {"score_threshold": 0.3, "torso_factor": 1.5, "body_factor": 1.2}
    filt_params = {"min_cutoff": 1.0, "beta": 0.01, "d_cutoff": 1.0}
    tracker = RoiTracker(image_size, torso, **roi_params)
    filt = OneEuroFilter(**filt_params)
    in_size = tuple(spec.input_size)
    kps, scs = _pose_frames(rng, 10, base, vis, image_size)
    t = 5.0 + np.cumsum(rng.uniform(0.03, 0.036, size=len(kps)))
    frames = []
    for i, (kp, sc) in enumerate(zip(kps, scs)):
        box = tracker.box.copy()
        c, s = bbox_xywh_to_cs(box, in_size, spec.bbox_padding)
        image_to_crop = get_warp_matrix(c, s, 0.0, in_size)
        crop_to_image = invert_affine(image_to_crop)
        # What a model would output: the pose in crop pixels on the 0.5-pixel SimCC grid.
        crop_kp = (np.round(apply_affine(kp, image_to_crop) * spec.simcc_split_ratio) / spec.simcc_split_ratio)
        crop_kp = crop_kp.astype(np.float32)
        image_kp = keypoints_to_image(crop_kp, crop_to_image)
        smooth = filt(image_kp, t[i], (sc > roi_params["score_threshold"])[:, None])
        nxt = tracker.update(image_kp, sc)
        frames.append({
            "timestamp": t[i], "box": box, "center": c, "scale": s, "image_to_crop": image_to_crop,
            "model_keypoints_crop": crop_kp.reshape(-1), "model_scores": sc,
            "keypoints_image": image_kp.reshape(-1), "smoothed": smooth.reshape(-1),
            "lost": tracker.lost, "next_box": nxt,
        })
    return {
        "image_size": image_size, "metadata": "metadata/executorch_nchw.json",
        "roi_params": roi_params, "filter_params": filt_params, "frames": frames,
    }


def make_tracking(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "about": "Reference traces from starpose/tracking.py; regenerate with tests/golden/make_golden.py",
        "format_version": FORMAT_VERSION,
        "tolerance": TOLERANCE,
        "one_euro": make_one_euro(rng),
        "roi": make_roi(rng),
        "skeleton": make_skeleton(rng),
        "pipeline": make_pipeline(rng),
    }


# ----------------------------------------------------------------------------- detector.json
def _detector_outputs(rng: np.random.Generator, spec: DetectorSpec, people: list[tuple[float, float, float, float]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Raw detector outputs (3 decimals) with a few confident anchors per person box
    (x1, y1, x2, y2): a peaked side distribution at the box's distances, noise elsewhere."""
    centres, strides = anchor_points(spec)
    n, bins = len(centres), spec.num_bins
    logits = rng.normal(-6.0, 1.0, size=n)
    box = rng.normal(0.0, 1.0, size=(n, 4, bins))
    for k, (x1, y1, x2, y2) in enumerate(people):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        near = np.argsort(np.hypot(centres[:, 0] - cx, centres[:, 1] - cy) + 1e3 * (strides != strides[0]))[:3]
        for rank, i in enumerate(near):
            logits[i] = 2.5 - 0.8 * rank - 0.3 * k
            dist = np.array([centres[i, 0] - x1, centres[i, 1] - y1, x2 - centres[i, 0], y2 - centres[i, 1]])
            target = np.clip(dist / strides[i], 0, spec.reg_max)
            box[i] = -0.5 * (np.arange(bins)[None] - target[:, None]) ** 2 * 4.0
    return logits.round(3), box.round(3)


def make_detector(rng: np.random.Generator) -> dict[str, Any]:
    """The detector's reference post-processing (starpose/detect/processing.py) and the
    multi-person tracker (starpose/tracking.py) on small seeded cases."""
    spec = DetectorSpec(input_size=(96, 64), max_detections=3)
    letterboxes = []
    for size in [(640, 480), (480, 640), (1920, 1080), (100, 1000), (2, 2), (96, 64)]:
        lb = letterbox_transform(size, spec.input_size)
        letterboxes.append({"image_size": size, "input_size": spec.input_size, "scale": lb.scale, "size": lb.size})
    centres, strides = anchor_points(spec)
    people = [(10.0, 6.0, 40.0, 60.0), (50.0, 4.0, 90.0, 62.0), (52.0, 10.0, 86.0, 60.0), (70.0, 30.0, 80.0, 50.0)]
    logits, box = _detector_outputs(rng, spec, people)
    boxes, scores = decode(logits, box, spec)
    keep = nms(boxes, scores, spec.score_threshold, spec.iou_threshold, spec.max_detections)
    lb = letterbox_transform((480, 320), spec.input_size)
    image_boxes = boxes_to_image(boxes[keep], lb, (480, 320))
    crops = []
    for b in image_boxes:
        c, s = bbox_xywh_to_cs(b, tuple(COCO_SPEC.input_size), COCO_SPEC.bbox_padding)
        crops.append({"box": b, "center": c, "scale": s})
    nms_cases = []
    for b, sc, thr, iou, cap in [
        ([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]],
         [0.9, 0.8, 0.7, 0.9, 0.1], 0.2, 0.6, 10),
        ([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]],
         [0.9, 0.8, 0.7, 0.9, 0.1], 0.0, 1.0, 4),
        ([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], [0.5, 0.6, 0.5], 0.5, 1 / 3, 10),
        ([[0, 0, 0, 0], [0, 0, 0, 0]], [0.9, 0.8], 0.1, 0.5, 10),
    ]:
        nms_cases.append({"boxes": np.array(b, float).reshape(-1), "scores": sc, "score_threshold": thr,
                          "iou_threshold": iou, "max_detections": cap,
                          "keep": nms(np.array(b, float), np.array(sc), thr, iou, cap)})
    matching = []
    for tracks, dets, thr in [
        ([[0, 0, 10, 10], [100, 0, 10, 10], [40, 0, 10, 10]], [[101, 0, 10, 10], [1, 0, 10, 10], [3, 0, 10, 10],
                                                              [300, 0, 5, 5]], 0.3),
        ([[0, 0, 10, 10], [5, 0, 10, 10]], [[2.5, 0, 10, 10]], 0.1),  # equal IoU: the lower track index wins
        ([[0, 0, 10, 10]], [], 0.3),
    ]:
        matching.append({"tracks": np.array(tracks, float).reshape(-1), "detections": np.array(dets, float).reshape(-1),
                         "iou_threshold": thr, "pairs": match_by_iou(np.array(tracks, float), np.array(dets, float).reshape(-1, 4), thr)})
    return {
        "about": "Reference numbers from starpose/detect/processing.py and starpose/tracking.py; regenerate with "
                 "tests/golden/make_golden.py",
        "format_version": FORMAT_VERSION,
        "tolerance": {"decode_abs": 1e-9, "geometry_abs": 1e-9},
        "spec": spec.to_dict(),
        "letterbox": letterboxes,
        "anchors": {"centres": centres.reshape(-1), "strides": strides},
        "decode": {"logits": logits, "box_logits": box.reshape(-1), "boxes": boxes.reshape(-1), "scores": scores,
                   "keep": keep, "image_size": (480, 320), "scale": lb.scale, "image_boxes": image_boxes.reshape(-1),
                   "pose_input_size": COCO_SPEC.input_size, "pose_padding": COCO_SPEC.bbox_padding, "crops": crops},
        "nms": nms_cases,
        "match_by_iou": matching,
        "multi_tracker": make_multi_tracker(rng),
    }


def make_multi_tracker(rng: np.random.Generator) -> dict[str, Any]:
    """Two people walking, a detector every 3 frames (with a spurious box, people in swapped
    order), one person losing the torso (dropped, detection forced), a third person arriving."""
    spec = COCO_SPEC
    base, vis, image_size = _base_pose()
    torso = torso_indices(spec.keypoint_names)
    params = {"score_threshold": 0.3, "detect_every": 3, "max_people": 2, "iou_threshold": 0.3, "duplicate_iou": 0.6}
    tracker = MultiPersonTracker(image_size, torso, smoothing=None, **params)
    centre = base.mean(axis=0)
    people = [np.array([-120.0, 0.0]), np.array([120.0, 10.0])]
    frames = []
    for i in range(10):
        poses = [(base - centre) * 0.5 + centre + off + np.array([6.0 * i, 0.0]) for off in people]
        record: dict[str, Any] = {"due": tracker.due()}
        if record["due"]:
            boxes = []
            for kp in poses[::-1] + ([poses[0] + np.array([150.0, 0.0])] if i >= 6 else []):
                lo, hi = kp.min(0), kp.max(0)
                boxes.append(np.concatenate([lo - 10.0, hi - lo + 20.0]).round(3))
            scores = [0.9, 0.8, 0.5][: len(boxes)]
            tracker.assign(boxes, scores)
            record["detections"] = np.array(boxes).reshape(-1)
            record["detection_scores"] = scores
        record["tracks_before"] = [{"id": t.id, "box": t.box.copy()} for t in tracker.tracks]
        updates = []
        for t in list(tracker.tracks):
            kp = poses[0] if abs(t.box[0] + t.box[2] / 2 - (poses[0][:, 0].mean())) < \
                abs(t.box[0] + t.box[2] / 2 - (poses[1][:, 0].mean())) else poses[1]
            kp = (kp + rng.normal(0, 0.5, size=kp.shape)).round(3)
            sc = np.where(vis > 0, 0.8, 0.1).astype(np.float32)
            if i == 4 and t.id == 0:
                sc[[11, 12]] = 0.1  # track 0 loses its hips
            tracker.update(t, kp, sc)
            updates.append({"id": t.id, "keypoints": kp.reshape(-1), "scores": sc, "next_box": t.box.copy(),
                            "lost": t.lost})
        tracker.advance()
        record["updates"] = updates
        record["tracks_after"] = [t.id for t in tracker.tracks]
        frames.append(record)
    return {"image_size": image_size, "torso": torso, "params": params, "frames": frames}


# ----------------------------------------------------------------------------- metadata
def sample_metadata(
    spec: PoseSpec, fmt: str, layout: str, *, affine: bool, outputs: str, precision: str, backend: str
) -> dict[str, Any]:
    """An artifact metadata document in the shared schema, as ``mobile_export.metadata`` writes
    it (``tests/test_android_app.py`` checks these samples against that module's own checker)."""
    k = spec.num_keypoints
    if outputs == "decoded":
        outs: dict[str, Any] = {
            "keypoints": {"shape": [1, k, 2], "units": "image pixels" if affine else "crop pixels"},
            "scores": {"shape": [1, k]},
        }
    else:
        lx, ly = spec.simcc_lengths
        outs = {"simcc_x": {"shape": [1, k, lx]}, "simcc_y": {"shape": [1, k, ly]}}
    return {
        "format_version": FORMAT_VERSION,
        "model": {"variant": "starpose_t", "weights": "starpose_t_coco", "weights_sha256": "0" * 64,
                  "weights_source": "pretrained", "package_version": "0.1.0"},
        "spec": spec.to_dict(),
        "input": {"name": "image", "dtype": "uint8", "color": "RGB", "layout": layout,
                  "width": spec.input_w, "height": spec.input_h, "normalization": "in_graph",
                  "type": "image" if fmt == "coreml" else "tensor"},
        "affine_input": {"name": "crop_to_image", "shape": [1, 2, 3], "present": affine},
        "outputs": outs,
        "format": fmt,
        "precision": precision,
        "backend": backend,
    }


def make_metadata() -> dict[str, dict[str, Any]]:
    docs = {
        "executorch_nchw.json": sample_metadata(COCO_SPEC, "executorch", "NCHW", affine=False,
                                                outputs="decoded", precision="fp32", backend="xnnpack"),
        "tflite_nhwc_affine.json": sample_metadata(COCO_SPEC, "tflite", "NHWC", affine=True,
                                                   outputs="decoded", precision="int8", backend="xnnpack"),
        "coreml_mpii_simcc.json": sample_metadata(MPII_SPEC, "coreml", "NCHW", affine=False,
                                                  outputs="simcc", precision="fp16", backend="ane"),
    }
    float_in = sample_metadata(CROWDPOSE_SPEC, "torchscript", "NCHW", affine=False, outputs="decoded",
                               precision="fp32", backend="cpu")
    float_in["input"].update({"dtype": "float32", "normalization": "external"})
    docs["torchscript_crowdpose_float.json"] = float_in
    return docs


def _expect(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    outs = doc["outputs"]
    return {
        "format": doc["format"],
        "variant": doc["model"]["variant"],
        "input_width": doc["input"]["width"],
        "input_height": doc["input"]["height"],
        "layout": doc["input"]["layout"],
        "dtype": doc["input"]["dtype"],
        "normalize_in_app": doc["input"]["normalization"] == "external",
        "image_input": doc["input"].get("type") == "image",
        "affine_input": doc["affine_input"]["present"],
        "num_keypoints": spec["num_keypoints"],
        "skeleton_pairs": len(spec["skeleton"]),
        "first_keypoint": spec["keypoint_names"][0],
        "outputs": "decoded" if "keypoints" in outs else "simcc",
        "keypoints_in_image_pixels": outs.get("keypoints", {}).get("units") == "image pixels",
        "simcc_split_ratio": spec["simcc_split_ratio"],
        "bbox_padding": spec["bbox_padding"],
        "mean": spec["mean"],
        "std": spec["std"],
    }


def make_metadata_cases(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    good = docs["executorch_nchw.json"]

    def broken(path: str, value: Any, delete: bool = False) -> str:
        d = json.loads(json.dumps(good))
        node = d
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        if delete:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return json.dumps(d)

    invalid = [
        {"name": "not_json", "text": '{"format_version": 1, "model": ', "error": "JSON"},
        {"name": "trailing_comma", "text": '{"format_version": 1,}', "error": "JSON"},
        {"name": "top_level_list", "text": "[1, 2]", "error": "object"},
        {"name": "future_version", "text": broken("format_version", 2), "error": "format_version"},
        {"name": "missing_input", "text": broken("input", None, delete=True), "error": "input"},
        {"name": "bad_layout", "text": broken("input.layout", "NWHC"), "error": "input.layout"},
        {"name": "bad_dtype", "text": broken("input.dtype", "int16"), "error": "input.dtype"},
        {"name": "size_mismatch", "text": broken("input.width", 190), "error": "input.width"},
        {"name": "width_not_number", "text": broken("input.width", "192"), "error": "input.width"},
        {"name": "skeleton_out_of_range", "text": broken("spec.skeleton", [[0, 17]]), "error": "spec.skeleton"},
        {"name": "bad_units", "text": broken("outputs.keypoints.units", "pixels"), "error": "outputs.keypoints.units"},
        {"name": "no_outputs", "text": broken("outputs", {}), "error": "outputs"},
        {"name": "names_mismatch", "text": broken("spec.num_keypoints", 16), "error": "spec.num_keypoints"},
    ]
    return {
        "about": "Artifact metadata parser cases: valid files with what they must parse to; invalid "
                 "texts with a substring (the JSON path of the fault) the error message must contain",
        "format_version": FORMAT_VERSION,
        "valid": [{"file": f"metadata/{name}", "expect": _expect(doc)} for name, doc in docs.items()],
        "invalid": invalid,
    }


# ----------------------------------------------------------------------------- driver
def build_golden() -> dict[str, str]:
    """Relative path → file text of the whole fixture (deterministic)."""
    rng = np.random.default_rng(SEED)
    files = {
        "processing.json": dumps(make_processing(rng)),
        "tracking.json": dumps(make_tracking(rng)),
        # its own generator, so that adding it changed none of the other files
        "detector.json": dumps(make_detector(np.random.default_rng(SEED + 16))),
    }
    docs = make_metadata()
    for name, doc in docs.items():
        files[f"metadata/{name}"] = json.dumps(doc, indent=2) + "\n"
    files["metadata_cases.json"] = dumps(make_metadata_cases(docs))
    return files


def write_golden(out_dir: Path) -> list[Path]:
    """Write every file through a temp file and a rename, so a failure leaves no half file."""
    written = []
    for rel, text in build_golden().items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=GOLDEN_DIR, help="output folder (default: beside this script)")
    ap.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = ap.parse_args(argv)
    if args.check:
        stale = [rel for rel, text in build_golden().items()
                 if not (args.out / rel).is_file() or (args.out / rel).read_text(encoding="utf-8") != text]
        for rel in stale:
            print(f"stale: {args.out / rel}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_golden(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
