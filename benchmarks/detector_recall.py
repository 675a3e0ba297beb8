"""Person recall of the bundled detector at several input sizes, on COCO-format people.

    python -m benchmarks.detector_recall                        # the fixture and ../shared/people/coco
    python -m benchmarks.detector_recall --inputs 256x192 224x160 --set NAME ANN_FILE IMG_DIR

Recall = the share of labelled people (not crowd, at least ``--min-keypoints`` labelled keypoints)
that get a box with IoU >= 0.5; boxes are matched one to one, best score first, each to the
unmatched person it overlaps most. Three readings per input size:

* ``ar``: every box scoring 0.05 or more (up to 100 per image);
* ``at_T``: the boxes scoring ``T`` or more (``--thresholds``; the spec's, ``predict``'s, is 0.2), up to 100;
* ``at_T_cap``: the same, at most ``--max-people`` (10) per image, as ``predict`` keeps;
* ``unmatched_at_T``: boxes per image at ``T`` that match no labelled person (false alarms, people
  without labels or with fewer than ``--min-keypoints`` keypoints, duplicates).

Every input size is run *oriented* (:meth:`starpose.detect.spec.DetectorSpec.oriented`: a
non-square input is turned to each photo's orientation, as the package's ``PersonDetector`` does)
unless ``--fixed`` is given. The cost column is the network's multiply-accumulates at that input
(``torch.utils.flop_counter``). Results: ``results/<date>-detector-recall.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from .box_gap import box_iou
from .common import RESULTS, machine_info, write_json

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_SETS = (
    ("fixture", SHARED / "fixtures/coco/test_coco.json", SHARED / "fixtures/coco"),
    ("people_coco", SHARED / "people/coco/person_keypoints.json", SHARED / "people/coco/images"),
)


def parse_size(text: str) -> tuple[int, int]:
    """``HEIGHTxWIDTH`` (as the CLI writes sizes) → ``(w, h)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not HEIGHTxWIDTH (e.g. 256x192)") from None
    return w, h


def matched(people: np.ndarray, boxes: np.ndarray) -> int:
    """How many of ``people`` (N, 4 xywh) get one of ``boxes`` (M, 4 xywh, best score first) at
    IoU >= 0.5, one to one."""
    if not len(people) or not len(boxes):
        return 0
    free = np.ones(len(people), bool)
    for box in boxes:
        iou = np.where(free, box_iou(np.asarray(box)[None], people)[0], -1.0)
        j = int(iou.argmax())
        if iou[j] >= 0.5:
            free[j] = False
    return int((~free).sum())


def network_gmacs(size: tuple[int, int]) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from starpose.detect.nanodet import create_detector

    model = create_detector(pretrained=False)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size[1], size[0]))
    return counter.get_total_flops() / 2 / 1e9


def measure_set(ann_file: Path, img_dir: Path, sizes: list[tuple[int, int]], orient: bool,
                min_keypoints: int, max_people: int, thresholds: list[float]) -> dict:
    from tqdm import tqdm

    from starpose.data.topdown import read_image_rgb
    from starpose.detect import load_detector

    doc = json.loads(Path(ann_file).read_text())
    people: dict[int, list[list[float]]] = {}
    for a in doc.get("annotations", []):
        if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) >= min_keypoints:
            people.setdefault(a["image_id"], []).append(a["bbox"])
    total = sum(len(v) for v in people.values())
    out = {}
    for w, h in sizes:
        det = load_detector(orient=orient)
        det.spec = det.spec.with_input_size(w, h)
        hits = {"ar": 0, **{f"at_{t:g}": 0 for t in thresholds}, **{f"at_{t:g}_cap": 0 for t in thresholds}}
        extra = {f"unmatched_at_{t:g}": 0 for t in thresholds}
        for im in tqdm(doc["images"], desc=f"{h}x{w}", unit="image", leave=False, disable=None):
            image = read_image_rgb(Path(img_dir) / im["file_name"])
            found = det(image, score_threshold=min(0.05, *thresholds), max_detections=100)
            boxes = np.array([d.box for d in found]).reshape(-1, 4)
            scores = np.array([d.score for d in found])
            mine = np.array(people.get(im["id"], []), np.float64).reshape(-1, 4)
            hits["ar"] += matched(mine, boxes[scores >= 0.05])
            for t in thresholds:
                keep = scores >= t
                n = matched(mine, boxes[keep])
                hits[f"at_{t:g}"] += n
                hits[f"at_{t:g}_cap"] += matched(mine, boxes[keep][:max_people])
                extra[f"unmatched_at_{t:g}"] += int(keep.sum()) - n
        out[f"{h}x{w}"] = {
            **{k: round(v / total, 4) if total else None for k, v in hits.items()},
            **{k: round(v / len(doc["images"]), 2) for k, v in extra.items()},
            "people": total, "images": len(doc["images"]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", nargs="+", type=parse_size, default=[(192, 256), (160, 224)],
                    help="detector input sizes HEIGHTxWIDTH (default: 256x192 224x160, the last two spec versions)")
    ap.add_argument("--thresholds", nargs="+", type=float, default=[0.2],
                    help="box score thresholds for the at_T readings (default: 0.2, the spec's)")
    ap.add_argument("--set", nargs=3, action="append", metavar=("NAME", "ANN_FILE", "IMG_DIR"),
                    help="a COCO-format set (repeatable; default: the fixture and ../shared/people/coco)")
    ap.add_argument("--fixed", action="store_true", help="letterbox every photo into the size as given")
    ap.add_argument("--min-keypoints", type=int, default=5)
    ap.add_argument("--max-people", type=int, default=10)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    sets = [(n, Path(a), Path(i)) for n, a, i in args.set] if args.set else list(DEFAULT_SETS)
    missing = [str(a) for _, a, _ in sets if not a.is_file()]
    if missing:
        ap.error(f"annotation file(s) not found: {', '.join(missing)}")
    payload = {
        "benchmark": "detector_recall",
        "date": datetime.date.today().isoformat(),
        "machine": machine_info(threads=0),
        "oriented": not args.fixed,
        "min_keypoints": args.min_keypoints,
        "max_people": args.max_people,
        "sizes_are": "height x width",
        "gmacs": {f"{h}x{w}": round(network_gmacs((w, h)), 3) for w, h in args.inputs},
        "sets": {},
    }
    for name, ann, img in sets:
        payload["sets"][name] = measure_set(ann, img, args.inputs, not args.fixed, args.min_keypoints, args.max_people,
                                            args.thresholds)
    for name, _, _ in sets:
        print(f"{name}: recall (AR; at T; at T, at most {args.max_people} per image) and unmatched boxes per image at T")
        for w, h in args.inputs:
            key = f"{h}x{w}"
            r = payload["sets"][name][key]
            cells = [f"AR {r['ar']:.3f}"] + [f"{t:g}: {r[f'at_{t:g}']:.3f} / {r[f'at_{t:g}_cap']:.3f} / "
                                             f"{r[f'unmatched_at_{t:g}']:.2f}" for t in args.thresholds]
            print(f"  {key:>9} {payload['gmacs'][key]:.3f} GMACs  " + "   ".join(cells))
    out = args.out or RESULTS / f"{payload['date']}-detector-recall.json"
    write_json(out, payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
