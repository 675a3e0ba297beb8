"""How the pose model does on people whose crop holds part of someone else, against people alone
(``train --distractor-prob``).

    starpose-mobile eval --ann-file ../shared/people/coco/person_keypoints.json \
        --img-dir ../shared/people/coco/images --ids recipes/default_weights/holdout.json:coco --results res.json
    python recipes/default_weights/crowded.py ../shared/people/coco/person_keypoints.json res.json

A labelled person (at least one keypoint, not a crowd) has *neighbours* when another labelled
person of the photo reaches into the region the pose model crops around them (their box grown by
the crop's padding, 1.25x about its centre): at least ``--min-keypoints`` of the other's labelled
keypoints fall inside it, or it covers ``--min-cover`` of the other's box. For each group: how many,
the mean of each person's best OKS against the results of their photo (pycocotools' OKS, the COCO
sigmas), and the share above 0.5 and 0.75. Only the photos the results cover are counted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent))
from cut_off import group_table, person_oks, print_table  # noqa: E402


def neighbours(ann: dict, people: list[dict], padding: float = 1.25, min_keypoints: int = 3,
               min_cover: float = 0.3) -> int:
    """How many of ``people`` (a photo's annotations, crowds skipped) reach into ``ann``'s crop region."""
    x, y, w, h = ann["bbox"]
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = cx - padding * w / 2, cx + padding * w / 2
    y0, y1 = cy - padding * h / 2, cy + padding * h / 2
    n = 0
    for other in people:
        if other is ann or other.get("id") == ann.get("id") or other.get("iscrowd"):
            continue
        k = np.asarray(other.get("keypoints") or [0] * 51, np.float64).reshape(-1, 3)
        inside = (k[:, 2] > 0) & (k[:, 0] >= x0) & (k[:, 0] <= x1) & (k[:, 1] >= y0) & (k[:, 1] <= y1)
        ox, oy, ow, oh = other["bbox"]
        ix = max(0.0, min(x1, ox + ow) - max(x0, ox))
        iy = max(0.0, min(y1, oy + oh) - max(y0, oy))
        if inside.sum() >= min_keypoints or (ow * oh > 0 and ix * iy >= min_cover * ow * oh):
            n += 1
    return n


def crowded_report(ann_file: Path, results_file: Path, min_keypoints: int = 3, min_cover: float = 0.3) -> dict:
    groups: dict[str, list[float]] = {"with neighbours": [], "alone": []}
    for _, people, ann, oks in person_oks(ann_file, results_file):
        near = neighbours(ann, people, min_keypoints=min_keypoints, min_cover=min_cover)
        groups["with neighbours" if near else "alone"].append(oks)
    return group_table(groups)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann_file", type=Path, help="COCO person_keypoints json")
    ap.add_argument("results", type=Path, help="COCO keypoint results (eval --results)")
    ap.add_argument("--min-keypoints", type=int, default=3, help="another's keypoints inside the crop that make a neighbour")
    ap.add_argument("--min-cover", type=float, default=0.3, help="share of another's box inside the crop that makes a neighbour")
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args(argv)
    if not args.ann_file.is_file():
        raise SystemExit(f"{args.ann_file}: annotation file not found")
    print_table(crowded_report(args.ann_file, args.results, args.min_keypoints, args.min_cover), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
