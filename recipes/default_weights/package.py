"""Evaluate trained weights on the held-out, human-labelled people and package them.

    python recipes/default_weights/package.py runs/people_t/best.safetensors [--variant starpose_t]

Scores the weights with ground-truth boxes and flip test on every validation source of
``people_mix.json`` (the photos ``holdout.json`` keeps out of training: OKS AP for the COCO-17
sources, PCK@0.2 for LSPET) and on the 12-person COCO fixture of ``../shared/fixtures`` (which
chose nothing), next to the BlazePose heavy teacher's numbers on the same people
(``results/teacher_val.json``, measured by ``teacher_people.py val``); calibrates the keypoint
score threshold on the held-out COCO-17 people; marks the weights ``release`` when every goal of
the recipe holds (below), ``interim`` otherwise; writes
``starpose/assets/weights/<variant>.safetensors`` (atomically) with the numbers and the lineage in
its metadata, and ``results/package.json`` with the same summary for docs/MODEL_CARD.md; for the
packaged ``starpose_t`` file it also rewrites the recipe README's runs table (``lineage.py --write``).

The summary also holds ``against_previous``: the new weights against the file they replace (or
``--against FILE``; ``--no-against`` to skip) by a paired bootstrap over the validation photos
(``compare.py``): B - A per set and for the validation score, with 90% intervals, with the flip test
and (``no_flip``) without it, as ``predict`` and the exported artifacts run. A step whose score
interval holds 0 is one the validation photos cannot tell from chance. It warns when the score falls
either way: the recipe packages a file whose flip-test score rises and whose no-flip score does not fall.

Goals (issue "Default weights that find people"): OKS AP >= 0.45 on the held-out ``coco`` people
and >= 0.5 on the fixture, above the teacher on every COCO-17 validation source, LSPET PCK@0.2 >= 80.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

GOALS = {"coco_ap": 0.45, "fixture_ap": 0.5, "lspet_pck": 80.0}


def calibrate_threshold(keypoints: list[np.ndarray], visible: list[np.ndarray]) -> dict:
    """Score threshold that best separates labelled (v > 0) from unlabelled (v = 0) keypoints
    (balanced accuracy) on held-out people whose labels mark both."""
    scores = np.concatenate([k[:, 2] for k in keypoints])
    pos = np.concatenate([v > 0 for v in visible])
    best = (0.0, 0.3)
    if not (~pos).any():
        return {"keypoint_threshold": best[1], "balanced_accuracy": None, "keypoints": int(pos.size)}
    for thr in np.quantile(scores, np.linspace(0.02, 0.98, 97)):
        bal = 0.5 * ((scores[pos] > thr).mean() + (scores[~pos] <= thr).mean())
        if bal > best[0]:
            best = (float(bal), float(thr))
    return {"keypoint_threshold": best[1], "balanced_accuracy": round(best[0], 4), "keypoints": int(pos.size)}


def _round(m: dict) -> dict:
    return {k: round(float(v), 4) for k, v in m.items()}


def validation(people: Path, fixture: Path) -> list:
    """The validation sets: the held-out people of every human-labelled source of ``people_mix.json``,
    then the COCO fixture (``fixture``) when it is there."""
    from starpose import COCO_SPEC
    from starpose.data.mix import load_mix
    from starpose.evaluation.holdout import coco_gt_set, validation_sets

    mix = load_mix(HERE / "people_mix.json", {"people": str(people)})
    sets = validation_sets(mix, COCO_SPEC)
    if (fixture / "test_coco.json").is_file():
        sets.append(coco_gt_set("fixture", fixture / "test_coco.json", fixture, COCO_SPEC))
    return sets


def load_weights(variant: str, path: Path):
    """``(model in eval mode, metadata)`` of a weights file: safetensors, or a run's ``last.pt`` (its EMA
    when it has one)."""
    from safetensors import safe_open

    from starpose import create_model
    from starpose.models.checkpoint import load_into
    from starpose.train.checkpoint import load_checkpoint

    model = create_model(variant)
    if path.suffix == ".pt":
        ck = load_checkpoint(path)
        model.load_state_dict(ck["ema"]["module"] if "ema" in ck else ck["model"])
        meta = {"epoch": str(ck["epoch"]), "lineage": ck.get("lineage", "[]")}
    else:
        load_into(model, path)
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
    return model.eval(), meta


def _compare(inputs: list[dict], resamples: int) -> dict:
    """The paired bootstrap's summary: B - A per set and for the score."""
    from starpose.evaluation.bootstrap import compare

    comps, score = compare(inputs, resamples)
    return {"sets": {c.name: c.summary() for c in comps}, "score": score.summary()}


def evaluate(model, people: Path, fixture: Path, against=None, resamples: int = 1000) -> tuple[dict, dict, dict | None]:
    """Metrics per validation set (flip, and the primary metric without flip), the keypoint threshold's
    calibration, and, when ``against`` (another model) is given, the paired bootstrap of this model
    against it (``starpose.evaluation.bootstrap``: B - A per set and for the score, 90% intervals)."""
    from starpose import COCO_SPEC
    from starpose.evaluation.holdout import predict_sets, score_sets

    sets = validation(people, fixture)
    preds, plain = predict_sets(model, sets, COCO_SPEC, flip=True, progress=True, with_plain=True)
    comparison = None
    if against is not None:
        from starpose.evaluation.holdout import bootstrap_inputs

        previous, previous_plain = predict_sets(against, sets, COCO_SPEC, flip=True, progress=True, with_plain=True)
        comparison = {"resamples": resamples, **_compare(bootstrap_inputs(sets, previous, preds, COCO_SPEC), resamples)}
        # predict and the exported artifacts run one pass per person: compare without flip too.
        comparison["no_flip"] = _compare(bootstrap_inputs(sets, previous_plain, plain, COCO_SPEC), resamples)
    results = {name: _round(m) for name, m in score_sets(sets, preds, COCO_SPEC).items()}
    plain_metrics = score_sets(sets, plain, COCO_SPEC)
    for vs in sets:
        m = plain_metrics[vs.name]
        results[vs.name]["no_flip_" + ("AP" if vs.metric == "oks" else "PCK@0.2")] = round(
            m["AP"] if vs.metric == "oks" else m["PCK@0.2"], 4)
    cal_sets = [vs for vs in sets if vs.metric == "oks" and vs.name != "fixture"]
    calibration = calibrate_threshold([k for vs in cal_sets for k in preds[vs.name][0]],
                                      [s.visible for vs in cal_sets for s in vs.samples])
    calibration["sets"] = [vs.name for vs in cal_sets]
    return results, calibration, comparison


def goals(results: dict, teacher: dict) -> dict:
    out = {}
    if "coco" in results:
        out["coco AP >= 0.45"] = results["coco"]["AP"] >= GOALS["coco_ap"]
    if "fixture" in results:
        out["fixture AP >= 0.5"] = results["fixture"]["AP"] >= GOALS["fixture_ap"]
    for name, m in results.items():
        if "AP" in m and name in teacher and "AP" in teacher[name] and name != "fixture":
            out[f"{name} AP above the teacher ({teacher[name]['AP']:.3f})"] = m["AP"] > teacher[name]["AP"]
    if "lspet" in results:
        out["lspet PCK@0.2 >= 80"] = results["lspet"]["PCK@0.2"] >= GOALS["lspet_pck"]
    return out


def step_warnings(comparison: dict | None) -> list[str]:
    """The recipe packages a file when its validation score beats the file it replaces with the flip
    test and does not fall without it (what ``predict`` and the exported artifacts run); say which fails."""
    if not comparison:
        return []
    out = []
    # (the score's summary, how it was measured, whether it must rise or only not fall)
    checks = ((comparison.get("score"), "with the flip test", True),
              ((comparison.get("no_flip") or {}).get("score"), "without flip", False))
    for m, label, must_rise in checks:
        if m is None:
            continue
        d = m["b_minus_a"]
        if d < 0 or (must_rise and d == 0):
            out.append(f"the validation score {label} is {m['b']:.4f} against {m['a']:.4f} for "
                       f"{comparison['a']} ({d:+.4f}, ahead in {m['b_ahead_share']:.0%} of the draws): "
                       "by the recipe's rule this is not a step")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", type=Path, help="best.safetensors / final.safetensors (or last.pt) of a run")
    ap.add_argument("--variant", default="starpose_t")
    ap.add_argument("--people", type=Path, default=ROOT.parent / "shared" / "people")
    ap.add_argument("--fixture", type=Path, default=ROOT.parent / "shared" / "fixtures" / "coco")
    ap.add_argument("--teacher", type=Path, default=HERE / "results" / "teacher_val.json")
    ap.add_argument("--out", type=Path, default=None, help="default: the packaged weights file")
    ap.add_argument("--summary", type=Path, default=HERE / "results" / "package.json")
    ap.add_argument("--dry-run", action="store_true", help="evaluate and print; write nothing")
    ap.add_argument("--against", type=Path, default=None,
                    help="weights to compare with by a paired bootstrap over the validation photos (default: the "
                         "file that --out replaces, when it exists; compare.py has the details)")
    ap.add_argument("--no-against", action="store_true", help="skip that comparison")
    args = ap.parse_args(argv)
    for what, p in (("people", args.people), ("teacher results", args.teacher), ("weights", args.weights)):
        if not p.exists():
            raise SystemExit(f"{what}: {p} not found")

    from starpose.fileio import atomic_write_json
    from starpose.models.weights import weights_path
    from starpose.train.checkpoint import save_weights

    torch.set_num_threads(2)
    model, meta_in = load_weights(args.variant, args.weights)
    out = args.out or weights_path(args.variant)
    against_path = None if args.no_against else (args.against or (out if out.is_file() else None))
    if against_path is not None and not against_path.is_file():
        raise SystemExit(f"--against: {against_path} not found")
    against = load_weights(args.variant, against_path)[0] if against_path is not None else None
    results, calibration, comparison = evaluate(model, args.people, args.fixture, against)
    if comparison is not None:
        comparison = {"a": against_path.name, "b": args.weights.name, **comparison}
    teacher = json.loads(args.teacher.read_text())["results"]
    met = goals(results, teacher)
    status = "release" if met and all(met.values()) else "interim"
    lineage = json.loads(meta_in.get("lineage", "[]") or "[]")
    summary = {
        "variant": args.variant,
        "status": status,
        "goals": met,
        "validation": results,
        "teacher": {k: {m: round(v, 4) for m, v in r.items()} for k, r in teacher.items()},
        "calibration": calibration,
        "against_previous": comparison,
        "lineage": lineage,
        "epochs_this_run": meta_in.get("epoch"),
        "people_seen_this_run": meta_in.get("people_seen"),
        "mix": json.loads(meta_in["mix"]) if meta_in.get("mix") else None,
        "command": f"python recipes/default_weights/package.py {args.weights.name}",
    }
    print(json.dumps({k: summary[k] for k in ("status", "goals", "validation", "calibration", "against_previous")},
                     indent=1))
    for warning in step_warnings(comparison):
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        return
    total_epochs = sum(int(r.get("epochs", 0) or 0) for r in lineage)
    meta = {"variant": args.variant, "recipe": "recipes/default_weights", "status": status,
            "epochs": str(total_epochs), "keypoint_threshold": f"{calibration['keypoint_threshold']:.4f}",
            "coco_heldout_ap": f"{results.get('coco', {}).get('AP', float('nan')):.4f}",
            "coco_fixture_ap_gt_boxes": f"{results.get('fixture', {}).get('AP', float('nan')):.4f}",
            "lineage": json.dumps(lineage), "mix": meta_in.get("mix", ""), "summary": json.dumps(summary)}
    save_weights(out, model, meta)
    atomic_write_json(args.summary, summary, indent=1)
    print(f"weights: {out} ({status})\nsummary: {args.summary}")
    if args.out is None and args.variant == "starpose_t":  # the recipe README's runs table follows it
        sys.path.insert(0, str(HERE))
        import lineage as lineage_table

        lineage_table.main(["--write"])


if __name__ == "__main__":
    main()
