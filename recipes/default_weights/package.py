"""Step 3 of the default-weights recipe: evaluate a distilled student and package its weights.

    python recipes/default_weights/package.py runs/distill_t/last.pt --variant starpose_t

Measures OKS AP with ground-truth boxes on human-labelled photos that were never trained on
(the COCO and CrowdPose fixtures in tests/data; CrowdPose through its 12 shared keypoints is not
comparable, so only COCO is scored) and student-vs-teacher agreement on the held-out pseudo-labelled
split (data/distill/val.json: different people); calibrates the keypoint score threshold on that
split; writes ``starpose/assets/weights/<variant>.safetensors`` with the numbers in its metadata
and prints a JSON summary for docs/MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]


def calibrate_threshold(model, spec, ann: Path, images: Path) -> dict:
    """Score threshold that best separates labelled (v=2) from unlabelled keypoints on held-out people."""
    from starpose.data.coco import CocoIndex
    from starpose.data.topdown import PersonSample, TopDownDataset
    from starpose.inference import run_topdown

    idx = CocoIndex(ann, spec)
    samples = []
    for a in idx.annotations:
        k = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        img = idx.images[int(a["image_id"])]
        samples.append(PersonSample(image_path=images / img["file_name"], image_id=int(a["image_id"]),
                                    bbox=np.asarray(a["bbox"], np.float64), keypoints=k[:, :2], visible=k[:, 2]))
    preds = run_topdown(model, TopDownDataset(samples, spec), spec, flip=False, progress=True, desc="calibrate")
    scores = np.concatenate([p["keypoints"][:, 2] for p in preds])
    pos = np.concatenate([s.visible > 0 for s in samples])
    best = (0.0, 0.3)
    for thr in np.quantile(scores, np.linspace(0.02, 0.98, 97)):
        bal = 0.5 * ((scores[pos] > thr).mean() + (scores[~pos] <= thr).mean()) if (~pos).any() else (scores[pos] > thr).mean()
        if bal > best[0]:
            best = (float(bal), float(thr))
    err = np.concatenate([np.linalg.norm(p["keypoints"][:, :2] - s.keypoints, axis=1)[s.visible > 0]
                          / max(float(np.sqrt(s.bbox[2] * s.bbox[3])), 1.0) for p, s in zip(preds, samples)])
    return {"keypoint_threshold": best[1], "balanced_accuracy": best[0], "people": len(samples),
            "median_error_over_box_size": float(np.median(err))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", type=Path, help="last.pt / best.safetensors / final.safetensors of the student run")
    ap.add_argument("--variant", default="starpose_t")
    ap.add_argument("--distill-root", type=Path, default=ROOT / "data" / "distill")
    ap.add_argument("--teacher-ap", type=float, default=0.664,
                    help="the teacher's OKS AP on the COCO fixture (recipes/default_weights/README.md)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="total epochs of the lineage, when the checkpoint continued earlier runs (--init-weights)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from starpose import COCO_SPEC, create_model
    from starpose.evaluation.runner import evaluate_coco_style
    from starpose.models.checkpoint import load_into
    from starpose.models.weights import weights_path
    from starpose.train.checkpoint import load_checkpoint, save_weights

    model = create_model(args.variant)
    if args.checkpoint.suffix == ".pt":
        ck = load_checkpoint(args.checkpoint)
        model.load_state_dict(ck["model"])
        epochs = int(ck["epoch"])
    else:
        load_into(model, args.checkpoint)
        epochs = -1
    if args.epochs is not None:
        epochs = args.epochs
    model.eval()
    coco = ROOT / "tests" / "data" / "coco"
    fixture = {}
    for flip in (False, True):
        m = evaluate_coco_style(model, COCO_SPEC, coco / "test_coco.json", coco, flip=flip)["metrics"]
        fixture["flip" if flip else "plain"] = {k: round(v, 4) for k, v in m.items() if k in ("AP", "AP50", "AR")}
    val = calibrate_threshold(model, COCO_SPEC, args.distill_root / "val.json", args.distill_root / "images")
    held = evaluate_coco_style(model, COCO_SPEC, args.distill_root / "val.json", args.distill_root / "images",
                               flip=True)["metrics"]
    summary = {
        "variant": args.variant,
        "epochs": epochs,
        "coco_fixture_gt_boxes": fixture,
        "teacher_coco_fixture_ap": args.teacher_ap,
        "heldout_pseudo_label_ap_flip": round(held["AP"], 4),
        "calibration": val,
    }
    out = args.out or weights_path(args.variant)
    # "interim" until the student is at least close to its teacher on human-labelled photos
    status = "release" if fixture["flip"]["AP"] >= 0.8 * args.teacher_ap else "interim"
    summary["status"] = status
    meta = {"variant": args.variant, "recipe": "recipes/default_weights", "epochs": str(epochs), "status": status,
            "keypoint_threshold": f"{val['keypoint_threshold']:.4f}",
            "coco_fixture_ap_gt_boxes": f"{fixture['flip']['AP']:.4f}",
            "summary": json.dumps(summary)}
    save_weights(out, model, meta)
    print(json.dumps(summary, indent=1))
    print(f"weights: {out}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
