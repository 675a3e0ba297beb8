"""Pseudo-label the gathered images with the BlazePose teacher; write COCO train / val files.

    python recipes/default_weights/label.py            # predict (resumable) + write
    python recipes/default_weights/label.py --write-only

``predict`` runs the teacher (detector, heavy landmark model with flip test and a second,
landmark-aligned pass) on every image of ``data/distill/manifest.json`` and appends one JSON
line per image to ``predictions.jsonl`` (images already there are skipped, so an interrupted
run resumes). ``write`` applies :class:`starpose.distill.labels.LabelPolicy`, suppresses
duplicates and writes ``train.json`` / ``val.json`` (COCO person_keypoints, ``file_name``
relative to ``data/distill/images``) plus ``stats.json``. The split follows the manifest's
``group``: a group is held out when its source member says ``split="val"``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from starpose.distill.manifest import load_manifest  # noqa: E402
from starpose.distill.labels import LabelPolicy, annotation_from_reading, coco_dataset, oks_nms, reading_from_pose  # noqa: E402

TEACHER = {"models": ("heavy",), "flip": True, "passes": 2}


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def config_key(image: dict) -> str:
    """What a prediction depends on besides the image: teacher settings and detector windows."""
    return json.dumps({"teacher": TEACHER, "scales": image.get("detect_scales", [1.0])}, sort_keys=True)


def read_predictions(path: Path) -> dict[tuple[str, str], list[dict]]:
    """(file_name, config) → people; the last line wins, a line cut by an interrupted run is
    skipped (that image is predicted again)."""
    preds: dict[tuple[str, str], list[dict]] = {}
    if not path.exists():
        return preds
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            preds[(rec["file_name"], rec["config"])] = rec["people"]
        except (json.JSONDecodeError, KeyError):
            continue
    return preds


def predict(root: Path, limit: int | None) -> None:
    from starpose.distill.blazepose import BlazePoseTeacher

    manifest = load_manifest(root / "manifest.json")
    out = root / "predictions.jsonl"
    done = set(read_predictions(out))
    todo = [im for im in manifest["images"] if (im["file_name"], config_key(im)) not in done][:limit]
    print(f"{len(done)} images already predicted, {len(todo)} to go", flush=True)
    teacher = BlazePoseTeacher(**TEACHER)
    t0 = time.time()
    with out.open("a") as f:
        for i, im in enumerate(todo):
            rgb = _read_rgb(root / "images" / im["file_name"])
            scales = tuple(im.get("detect_scales", [1.0]))
            people = [reading_from_pose(p, d) for d, p in teacher.detect(rgb, scales=scales)]
            f.write(json.dumps({"file_name": im["file_name"], "config": config_key(im), "people": people}) + "\n")
            f.flush()
            if (i + 1) % 50 == 0:
                rate = (time.time() - t0) / (i + 1)
                print(f"{i + 1}/{len(todo)}  {rate:.2f} s/image, {rate * (len(todo) - i - 1) / 60:.0f} min left", flush=True)


def write(root: Path, policy: LabelPolicy, summary: Path | None = None) -> dict:
    manifest = load_manifest(root / "manifest.json")
    preds = read_predictions(root / "predictions.jsonl")
    splits: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    stats: dict = {"policy": policy.__dict__, "teacher": {k: list(v) if isinstance(v, tuple) else v for k, v in TEACHER.items()},
                   "detected": 0, "kept": 0, "unpredicted_images": 0, "per_group": defaultdict(Counter)}
    for im in manifest["images"]:
        if (im["file_name"], config_key(im)) not in preds:
            stats["unpredicted_images"] += 1
            continue
        people = preds[(im["file_name"], config_key(im))]
        anns = [a for a in (annotation_from_reading(p, im["width"], im["height"], policy) for p in people) if a]
        anns = oks_nms(anns, policy.nms_oks)
        split = "val" if im["split"] == "val" else "train"
        stats["detected"] += len(people)
        stats["kept"] += len(anns)
        g = stats["per_group"][im["group"]]
        g["images"] += 1
        g["people_detected"] += len(people)
        g["people_kept"] += len(anns)
        g["split_" + split] += 1
        if not anns:
            continue
        image = {k: im[k] for k in ("id", "file_name", "width", "height", "package", "version", "member",
                                    "frame", "license", "group")}
        splits[split][0].append(image)
        splits[split][1].extend(dict(a, image_id=im["id"]) for a in anns)
    info = {"description": "StarPose distillation set: BlazePose-heavy pseudo-labels on registry-package images",
            "teacher": "MediaPipe BlazePose (Apache-2.0): pose_detection + pose_landmark_heavy, flip test, 2 passes",
            "sources": manifest["sources"]}
    for name, (images, anns) in splits.items():
        tmp = root / f".{name}.json.tmp"
        tmp.write_text(json.dumps(coco_dataset(images, anns, info)))
        tmp.replace(root / f"{name}.json")
        kpts = np.array([a["num_keypoints"] for a in anns]) if anns else np.zeros(1)
        stats[name] = {"images": len(images), "people": len(anns),
                       "groups": len({im["group"] for im in images}),
                       "mean_keypoints": round(float(kpts.mean()), 2)}
    stats["per_group"] = {k: dict(v) for k, v in sorted(stats["per_group"].items())}
    stats["sources"] = manifest["sources"]
    (root / "stats.json").write_text(json.dumps(stats, indent=1))
    if summary is not None:
        tmp = summary.with_name(summary.name + ".tmp")
        tmp.write_text(json.dumps(stats, indent=1) + "\n")
        tmp.replace(summary)
    print(json.dumps({k: stats[k] for k in ("detected", "kept", "train", "val", "unpredicted_images")}, indent=1))
    return stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(REPO / "data" / "distill"))
    ap.add_argument("--write-only", action="store_true", help="skip the teacher; rebuild the JSON files")
    ap.add_argument("--limit", type=int, default=None, help="predict at most this many new images")
    ap.add_argument("--summary", type=Path, default=None,
                    help="also write the statistics and source archives (hashes) to this JSON file")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(args.root)
    if not (root / "manifest.json").is_file():
        raise SystemExit(f"{root / 'manifest.json'}: missing; run recipes/default_weights/gather.py images first")
    if not args.write_only:
        predict(root, args.limit)
    write(root, LabelPolicy(), args.summary)


if __name__ == "__main__":
    main()
