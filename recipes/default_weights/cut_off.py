"""How the pose model does on the people a photo cuts off, against the whole ones (``train --truncate-prob``).

    starpose-mobile eval --ann-file ../shared/people/coco/person_keypoints.json \
        --img-dir ../shared/people/coco/images --ids recipes/default_weights/holdout.json:coco --results res.json
    python recipes/default_weights/cut_off.py ../shared/people/coco/person_keypoints.json res.json

A labelled person (at least one keypoint, not a crowd) is *cut off* when their box comes within
``--margin`` pixels of the photo's edge. For each group: how many, the mean of each person's best
OKS against the results of their photo (pycocotools' OKS, the COCO sigmas), and the share above
0.5 and 0.75. Only the photos the results cover are counted (so ``--ids`` of the eval carries over).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np


def edge_sides(bbox, width: int, height: int, margin: float) -> tuple[str, ...]:
    """The edges of a ``width`` x ``height`` photo that an (x, y, w, h) box comes within ``margin`` of."""
    x, y, w, h = bbox
    sides = (("top", y <= margin), ("bottom", y + h >= height - margin), ("left", x <= margin),
             ("right", x + w >= width - margin))
    return tuple(name for name, hit in sides if hit)


def person_oks(ann_file: Path, results_file: Path):
    """Each labelled person (at least one keypoint, not a crowd) of the photos the results cover,
    with the best OKS any result of their photo reaches on them (pycocotools, the COCO sigmas).
    Yields ``(photo, the photo's people, person, oks)``; the photo and people as pycocotools has them."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    try:
        results = json.loads(Path(results_file).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"{results_file}: cannot read as COCO keypoint results ({e})") from e
    if not isinstance(results, list) or not results:
        raise SystemExit(f"{results_file}: no keypoint results (expected a non-empty JSON list)")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        missing = {r["image_id"] for r in results} - set(gt.imgs)
        if missing:
            raise SystemExit(f"{results_file}: {len(missing)} image ids not in {ann_file}, e.g. {sorted(missing)[:3]}")
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted({r["image_id"] for r in results})
        ev.evaluate()
    for image_id in ev.params.imgIds:
        ious = ev.ious.get((image_id, 1), [])
        # ious has a column for each of the photo's people in getAnnIds' order, crowds included
        people = gt.loadAnns(gt.getAnnIds(imgIds=image_id, catIds=[1]))
        for j, ann in enumerate(people):
            if ann.get("iscrowd") or ann.get("num_keypoints", 0) == 0:
                continue
            yield gt.imgs[image_id], people, ann, float(np.max(ious[:, j])) if len(ious) else 0.0


def group_table(groups: dict[str, list[float]]) -> dict:
    out = {}
    for name, oks in groups.items():
        a = np.asarray(oks)
        out[name] = {"people": int(a.size), "mean_oks": float(a.mean()) if a.size else None,
                     "oks_above_0.5": float((a > 0.5).mean()) if a.size else None,
                     "oks_above_0.75": float((a > 0.75).mean()) if a.size else None}
    return out


def cut_off_report(ann_file: Path, results_file: Path, margin: float = 3.0) -> dict:
    groups: dict[str, list[float]] = {"cut off": [], "whole": []}
    for img, _, ann, oks in person_oks(ann_file, results_file):
        cut = bool(edge_sides(ann["bbox"], img["width"], img["height"], margin))
        groups["cut off" if cut else "whole"].append(oks)
    return group_table(groups)


def print_table(report: dict, json_file: Path | None) -> None:
    print(f"{'people':<16}{'n':>5}{'mean OKS':>10}{'OKS>0.5':>9}{'OKS>0.75':>10}")
    for name, r in report.items():
        if r["people"]:
            print(f"{name:<16}{r['people']:>5}{r['mean_oks']:>10.3f}{r['oks_above_0.5']:>9.2f}{r['oks_above_0.75']:>10.2f}")
        else:
            print(f"{name:<16}{0:>5}")
    if json_file:
        tmp = json_file.with_suffix(json_file.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(json_file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann_file", type=Path, help="COCO person_keypoints json")
    ap.add_argument("results", type=Path, help="COCO keypoint results (eval --results)")
    ap.add_argument("--margin", type=float, default=3.0, help="pixels from an edge that count as touching it")
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args(argv)
    if not args.ann_file.is_file():
        raise SystemExit(f"{args.ann_file}: annotation file not found")
    print_table(cut_off_report(args.ann_file, args.results, args.margin), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
