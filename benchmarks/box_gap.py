"""Where ``eval --boxes ours`` loses OKS AP against ``--boxes gt``: one run, the same pose model,
the gap split into its parts.

    python -m benchmarks.box_gap --ann-file ../shared/people/coco/person_keypoints.json \\
        --img-dir ../shared/people/coco/images

Each step changes one thing from the previous one (flip on, MMPose rescoring and OKS-NMS as in
``starpose-mobile eval``):

1. ``gt``: every labelled person's own box (what ``--boxes gt`` scores);
2. ``gt_found``: the same predictions, but only for the people the detector found (a detector
   box with IoU >= 0.5 to theirs): the others are now misses. ``gt`` → ``gt_found`` is what the
   detector's recall costs;
3. ``det_matched``: for each found person, the pose from the detector box that overlaps them most,
   instead of their own box. ``gt_found`` → ``det_matched`` is what the boxes' spread around the
   labelled ones costs;
4. ``ours``: every detector box (what ``--boxes ours`` scores). ``det_matched`` → ``ours`` is what
   duplicate and unlabelled-person boxes cost.

The ``ours`` / ``gt`` ratio comes with a 90% interval from a paired bootstrap over the photos
(``starpose.evaluation.bootstrap``; ``--resamples``, 0 for none): the photos drawn with replacement,
both APs on the same draw, and the share of draws in which the ratio reaches 0.9 (issue 16's goal).
On a few dozen photos that interval says whether a ratio near 0.9 is above or below it, or neither.

Also reported: the IoU quartiles of the matched boxes and the missed people's labelled keypoint
counts and areas. "Labelled people" are annotations with at least one labelled keypoint that are
not crowd regions, as COCO's evaluation counts them. Results:
``results/<date>-box-gap.json`` (``--out`` to choose).
"""
from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import numpy as np

from .common import machine_info, write_json


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xywh box in ``a`` (N, 4) with every one in ``b`` (M, 4): (N, M), by the
    detector's own :func:`starpose.detect.processing.box_iou` (xyxy, one box against many)."""
    from starpose.detect.processing import box_iou as iou_xyxy
    from starpose.detect.processing import xywh_to_xyxy

    mine, others = xywh_to_xyxy(a), xywh_to_xyxy(b)
    return np.array([iou_xyxy(box, others) for box in mine]).reshape(len(mine), len(others))


def best_detection_per_person(people: dict[int, list[tuple[int, list[float]]]],
                              dets: dict[int, list[tuple[int, list[float]]]],
                              min_iou: float = 0.5) -> dict[int, tuple[int, float]]:
    """For each labelled person (``people``: image id → [(annotation id, xywh)]), the detection
    (``dets``: image id → [(detection index, xywh)]) with the highest IoU, if it reaches
    ``min_iou``: annotation id → (detection index, IoU). A detection may serve several people
    (it is the pose of that box that each of them gets)."""
    out: dict[int, tuple[int, float]] = {}
    for image_id, persons in people.items():
        boxes = dets.get(image_id, [])
        if not boxes:
            continue
        iou = box_iou(np.array([p[1] for p in persons]), np.array([d[1] for d in boxes]))
        for i, (ann_id, _) in enumerate(persons):
            j = int(iou[i].argmax())
            if iou[i, j] >= min_iou:
                out[ann_id] = (boxes[j][0], float(iou[i, j]))
    return out


def labelled_people(ann_file: Path) -> tuple[dict[int, list[tuple[int, list[float]]]], dict[int, dict]]:
    doc = json.loads(Path(ann_file).read_text())
    by_image: dict[int, list[tuple[int, list[float]]]] = {}
    anns = {}
    for a in doc.get("annotations", []):
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0):
            by_image.setdefault(a["image_id"], []).append((a["id"], [float(v) for v in a["bbox"]]))
            anns[a["id"]] = a
    return by_image, anns


def subset_annotations(ann_file: Path, image_ids: set[int], out: Path) -> Path:
    """``ann_file`` with only the photos ``image_ids`` (and their annotations), written to ``out``."""
    doc = json.loads(Path(ann_file).read_text())
    doc["images"] = [im for im in doc.get("images", []) if int(im["id"]) in image_ids]
    doc["annotations"] = [a for a in doc.get("annotations", []) if int(a["image_id"]) in image_ids]
    if not doc["images"]:
        raise SystemExit(f"{ann_file}: none of its photos is among the {len(image_ids)} chosen image ids")
    out.write_text(json.dumps(doc))
    return out


def ratio_interval(ann_file: Path, results_gt: list[dict], results_ours: list[dict], sigmas, resamples: int,
                   seed: int = 0, level: float = 0.9, goal: float = 0.9) -> dict | None:
    """Paired bootstrap over the photos of ``ann_file`` of AP(ours) / AP(gt): its ``level`` interval and the
    share of draws in which it reaches ``goal``. None when either side has no results."""
    from starpose.evaluation.bootstrap import OksResampler, interval, photo_draws

    if not results_gt or not results_ours:
        return None
    doc = json.loads(Path(ann_file).read_text())
    gt = OksResampler(doc, results_gt, sigmas)
    ours = OksResampler(doc, results_ours, sigmas)
    ratios = []
    for photos in photo_draws(gt.image_ids, resamples, np.random.default_rng(seed)):
        a = gt.ap(photos)
        ratios.append(ours.ap(photos) / a if a > 0 else np.nan)
    ratios = np.asarray(ratios, dtype=np.float64)
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return None
    lo, hi = interval(ratios, level)
    return {"resamples": int(resamples), "seed": seed,
            f"interval_{int(round(level * 100))}": [round(lo, 3), round(hi, 3)],
            f"share_at_least_{goal:g}x": round(float((ratios >= goal).mean()), 3)}


def run(ann_file: Path, img_dir: Path, variant: str = "starpose_t", weights: str = "default", flip: bool = True,
        min_iou: float = 0.5, detector_input: tuple[int, int] | None = None,
        image_ids: set[int] | None = None, resamples: int = 1000, seed: int = 0) -> dict:
    """``detector_input``: the detector's ``(w, h)`` before it is turned to each photo (default: the spec's);
    ``image_ids``: score only these photos of ``ann_file`` (e.g. the held-out ones); ``resamples``: bootstrap
    draws for the ``ours`` / ``gt`` interval (0: none)."""
    if image_ids is not None:
        with tempfile.TemporaryDirectory(prefix="starpose-box-gap-") as tmp:
            subset = subset_annotations(ann_file, image_ids, Path(tmp) / Path(ann_file).name)
            photos = len(json.loads(subset.read_text())["images"])
            out = run(subset, img_dir, variant, weights, flip, min_iou, detector_input, resamples=resamples,
                      seed=seed)
        return {**out, "ann_file": str(ann_file), "photos": photos}
    import torch

    from starpose.data.coco import CocoIndex, coco_det_samples, coco_gt_samples
    from starpose.data.topdown import TopDownDataset
    from starpose.detect import PERSON_DETECTOR_SPEC, load_detector
    from starpose.detect.coco import detect_coco_images
    from starpose.evaluation.oks import coco_keypoint_eval, write_results
    from starpose.inference import run_topdown, to_coco_results
    from starpose.models.weights import load_model

    model = load_model(variant, weights)
    spec = model.spec
    index = CocoIndex(ann_file, spec)
    det_spec = None if detector_input is None else PERSON_DETECTOR_SPEC.with_input_size(*detector_input)
    detector = load_detector(spec=det_spec)
    detections = detect_coco_images(detector, ann_file, img_dir, progress=True)
    with tempfile.TemporaryDirectory(prefix="starpose-box-gap-") as tmp:
        det_path = Path(tmp) / "person_detections.json"
        write_results(detections, det_path)
        det_samples = coco_det_samples(det_path, index, img_dir, score_thr=0.0)
    gt_samples = coco_gt_samples(index, img_dir)
    with torch.inference_mode():
        pred_det = run_topdown(model, TopDownDataset(det_samples, spec, train=False), spec, flip=flip,
                               progress=True, desc="detector boxes")
        pred_gt = run_topdown(model, TopDownDataset(gt_samples, spec, train=False), spec, flip=flip,
                              progress=True, desc="labelled boxes")

    def ap(preds: list[dict]) -> float:
        return float(coco_keypoint_eval(ann_file, to_coco_results(preds, spec), spec.sigmas)["AP"])

    people, anns = labelled_people(ann_file)
    dets: dict[int, list[tuple[int, list[float]]]] = {}
    for i, s in enumerate(det_samples):
        dets.setdefault(s.image_id, []).append((i, [float(v) for v in s.bbox]))
    found = best_detection_per_person(people, dets, min_iou)
    steps = {
        "gt": ap(pred_gt),
        "gt_found": ap([p for p in pred_gt if p["ann_id"] in found]),
        "det_matched": ap([pred_det[i] for i in sorted({i for i, _ in found.values()})]),
        "ours": ap(pred_det),
    }
    interval = (ratio_interval(ann_file, to_coco_results(pred_gt, spec), to_coco_results(pred_det, spec),
                               spec.sigmas, resamples, seed) if resamples > 0 else None)
    missed = [anns[a] for a in anns if a not in found]
    ious = np.array([v for _, v in found.values()]) if found else np.zeros(1)
    return {
        "ann_file": str(ann_file),
        "variant": variant,
        "weights": weights,
        "flip": flip,
        "detector_input_hw": [detector.spec.input_size[1], detector.spec.input_size[0]],
        "labelled_people": len(anns),
        "detections": len(det_samples),
        "found_people": len(found),
        "min_iou": min_iou,
        "AP": {k: round(v, 4) for k, v in steps.items()},
        "ratio_to_gt": {k: round(v / steps["gt"], 3) if steps["gt"] > 0 else None for k, v in steps.items()},
        "ours_to_gt_bootstrap": interval,
        "step_ratio": {
            "recall (gt -> gt_found)": round(steps["gt_found"] / steps["gt"], 3) if steps["gt"] else None,
            "box spread (gt_found -> det_matched)":
                round(steps["det_matched"] / steps["gt_found"], 3) if steps["gt_found"] else None,
            "extra boxes (det_matched -> ours)":
                round(steps["ours"] / steps["det_matched"], 3) if steps["det_matched"] else None,
        },
        "matched_iou_quartiles": [round(float(q), 3) for q in np.quantile(ious, [0.25, 0.5, 0.75])],
        "missed": {
            "num_keypoints": sorted(int(a["num_keypoints"]) for a in missed),
            "area": sorted(int(a.get("area", 0)) for a in missed),
        },
    }


def main(argv: list[str] | None = None) -> Path:
    from .detector_recall import parse_size  # here: detector_recall imports box_iou from this module

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ann-file", type=Path, required=True, help="COCO person_keypoints json")
    ap.add_argument("--img-dir", type=Path, required=True)
    ap.add_argument("--variant", default="starpose_t")
    ap.add_argument("--weights", default="default")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--detector-input", type=parse_size, default=None, metavar="HEIGHTxWIDTH",
                    help="the detector's input before it is turned to each photo (default: the spec's, 224x160)")
    ap.add_argument("--holdout", default=None, metavar="KEY",
                    help="score only the held-out photos of KEY in --holdout-file (e.g. coco: the photos no "
                         "default-weights run trained on)")
    ap.add_argument("--holdout-file", type=Path,
                    default=Path(__file__).resolve().parents[1] / "recipes" / "default_weights" / "holdout.json")
    ap.add_argument("--resamples", type=int, default=1000,
                    help="bootstrap draws of the photos for the ours / gt interval (0: none)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.resamples < 0:
        raise SystemExit(f"--resamples must be 0 or more, got {args.resamples}")
    import torch

    for path in (args.ann_file, args.img_dir):
        if not path.exists():
            raise SystemExit(f"{path}: not found")
    image_ids = None
    if args.holdout:
        from starpose.data.mix import load_holdout

        held = load_holdout(args.holdout_file)
        if args.holdout not in held:
            raise SystemExit(f"{args.holdout_file}: no key {args.holdout!r} (keys: {', '.join(sorted(held))})")
        image_ids = held[args.holdout]
    torch.set_num_threads(args.threads)
    result = run(args.ann_file, args.img_dir, args.variant, args.weights, flip=not args.no_flip,
                 detector_input=args.detector_input, image_ids=image_ids, resamples=args.resamples)
    if args.holdout:
        result["holdout"] = args.holdout
    date = datetime.date.today().isoformat()
    out = args.out or Path(__file__).parent / "results" / f"{date}-box-gap.json"
    payload = {"date": date, "benchmark": "box_gap",
               "what": "OKS AP from labelled boxes to the bundled detector's boxes, one change at a time",
               "machine": machine_info(args.threads), "runs": [result]}
    write_json(out, payload)
    r = result
    print(f"{args.ann_file}{' (held-out ' + args.holdout + ' photos)' if args.holdout else ''}: "
          f"{r['labelled_people']} labelled people, {r['found_people']} found, "
          f"{r['detections']} detector boxes")
    for k, v in r["AP"].items():
        print(f"  {k:12s} AP {v:.4f}  ({r['ratio_to_gt'][k]}x gt)")
    b = r.get("ours_to_gt_bootstrap")
    if b:
        lo, hi = b["interval_90"]
        print(f"  ours / gt 90% interval over {b['resamples']} draws of the photos: [{lo}, {hi}]x; "
              f">= 0.9x in {b['share_at_least_0.9x']:.0%} of them")
    for k, v in r["step_ratio"].items():
        print(f"  {k}: {v}x")
    print(f"results: {out}")
    return out


if __name__ == "__main__":
    main()
