"""The bundled person detector's box for every training person of a mix, for training the pose
model on the boxes it is given at run time (``train --det-box-prob``).

    python recipes/default_weights/detector_boxes.py [--mix people_mix_coco_up.json] [--out data/people_boxes]

For each source of the mix (training photos only: the held-out ones are left out), the detector
runs once per photo at ``eval --boxes ours``'s settings, and each labelled person gets the detected
box that overlaps their own box most, when that overlap is IoU >= ``--min-iou`` (the criterion of
the recall goal). People the detector misses get no box: they train on their own box. One JSON
file per source, ``OUT/<source>.json``:
``{"source", "detector", "min_iou", "people", "matched", "boxes": {ann_id: [x, y, w, h, score, iou]}}``;
a mix names it with a source's ``"boxes"`` key (people_mix_det_boxes.json). The files hold
numbers computed from ../shared/people's photos; like data/people_labels they stay out of the
repository (data/ is ignored).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (x, y, w, h) against boxes ``b`` (N, 4), by the detector's own
    :func:`starpose.detect.processing.box_iou` (x1, y1, x2, y2)."""
    from starpose.detect.processing import box_iou, xywh_to_xyxy

    return box_iou(xywh_to_xyxy(a)[0], xywh_to_xyxy(b))


def match_people(people_boxes: list[np.ndarray | None], det_boxes: np.ndarray,
                 min_iou: float) -> list[tuple[int, float] | None]:
    """For each person box, (index of the detection overlapping it most, IoU) when IoU >= min_iou."""
    out: list[tuple[int, float] | None] = []
    for box in people_boxes:
        if box is None or len(det_boxes) == 0:
            out.append(None)
            continue
        ious = iou_xywh(np.asarray(box, np.float64), det_boxes)
        j = int(np.argmax(ious))
        out.append((j, float(ious[j])) if ious[j] >= min_iou else None)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mix", default=str(HERE / "people_mix_coco_up.json"))
    ap.add_argument("--out", default=str(ROOT / "data" / "people_boxes"))
    ap.add_argument("--sources", nargs="*", default=None, help="only these sources of the mix")
    ap.add_argument("--min-iou", type=float, default=0.5)
    ap.add_argument("--score-threshold", type=float, default=0.05, help="as eval --boxes ours")
    ap.add_argument("--max-detections", type=int, default=20, help="as eval --boxes ours")
    ap.add_argument("--detector-input", default=None, metavar="HxW", help="default: the packaged spec's")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    from starpose.data.errors import DataError
    from starpose.data.mix import load_holdout, load_mix, source_samples
    from starpose.data.topdown import read_image_rgb
    from starpose.detect import load_detector
    from starpose.detect.spec import PERSON_DETECTOR_SPEC
    from starpose.spec import COCO_SPEC
    from starpose.fileio import atomic_write_json

    torch.set_num_threads(args.threads)
    spec = PERSON_DETECTOR_SPEC
    if args.detector_input:
        h, w = (int(v) for v in args.detector_input.lower().split("x"))
        spec = spec.with_input_size(w, h)
    detector = load_detector(spec=spec)
    mix = load_mix(args.mix)
    holdout = load_holdout(mix.holdout) if mix.holdout else {}
    wanted = set(args.sources) if args.sources else None
    if wanted and wanted - {s.name for s in mix.sources}:
        ap.error(f"--sources names unknown source(s) {sorted(wanted - {s.name for s in mix.sources})}")
    out_dir = Path(args.out)
    for src in mix.sources:
        if wanted and src.name not in wanted:
            continue
        samples = source_samples(src, COCO_SPEC, holdout=holdout, split="train")
        by_image: dict[Path, list] = defaultdict(list)
        for s in samples:
            by_image[s.image_path].append(s)
        boxes: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for path, people in tqdm(by_image.items(), desc=src.name, unit="photo", mininterval=5):
            image = read_image_rgb(path)
            try:
                found = detector(image, score_threshold=args.score_threshold, max_detections=args.max_detections)
            except ValueError as e:
                raise DataError(path, str(e)) from e
            det = np.array([d.box for d in found], np.float64).reshape(-1, 4)
            scores = np.array([d.score for d in found], np.float64)
            for s, m in zip(people, match_people([s.bbox for s in people], det, args.min_iou)):
                if m is not None:
                    j, iou = m
                    boxes[str(s.ann_id)] = [round(float(v), 2) for v in det[j]] + [round(float(scores[j]), 4),
                                                                                  round(iou, 4)]
        ious = np.array([b[5] for b in boxes.values()]) if boxes else np.zeros(0)
        report = {
            "source": src.name,
            "detector": {"input": f"{spec.input_size[1]}x{spec.input_size[0]}", "weights": "default",
                         "score_threshold": args.score_threshold, "max_detections": args.max_detections},
            "min_iou": args.min_iou,
            "people": len(samples),
            "photos": len(by_image),
            "matched": len(boxes),
            "iou_quartiles": [round(float(q), 3) for q in np.quantile(ious, [0.25, 0.5, 0.75])] if len(ious) else [],
            "seconds": round(time.perf_counter() - t0, 1),
            "boxes": boxes,
        }
        atomic_write_json(out_dir / f"{src.name}.json", report)
        print(f"{src.name}: {len(boxes)} of {len(samples)} people matched (IoU >= {args.min_iou}; quartiles "
              f"{report['iou_quartiles']}), {len(by_image)} photos in {report['seconds']} s -> "
              f"{out_dir / (src.name + '.json')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
