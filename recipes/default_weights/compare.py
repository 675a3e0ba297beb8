"""Is weights file B better than A on the validation people, or is the difference noise?

    python recipes/default_weights/compare.py starpose/assets/weights/starpose_t.safetensors \
        runs/people_h28/best.safetensors [--resamples 1000] [--seed 0] [--no-flip] [--out compare.json]

Predicts both files on the validation sets of ``package.py`` (the held-out people of the
human-labelled sources, GT boxes, flip test; then the 12-person COCO fixture), scores them as
``package.py`` does, and runs a paired bootstrap over photos (``starpose.evaluation.bootstrap``):
each set is resampled by photo with replacement, the same photos for A and B, and B - A is taken
per set and for the validation score (the mean of ``lspet`` PCK@0.2 / 100 and the COCO-17 sets'
AP; the fixture is shown but, as in ``package.py``, not in the score). Prints, per set and for
the score, A, B, B - A, its 90% interval and the share of resamples in which B is ahead.

``--no-flip`` predicts one pass per person instead, as ``predict`` and the exported artifacts do
(the packaging rule uses the flip test; a step can hold with flip and not without).

A difference whose interval holds 0 is one the held-out photos cannot tell from chance. This says
nothing about other photos of another kind; it is about these sets' size.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))


def _package():
    spec = importlib.util.spec_from_file_location("_default_weights_package", HERE / "package.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path, help="the weights to beat (e.g. the packaged file)")
    ap.add_argument("b", type=Path, help="the candidate (best.safetensors, an average, a run's last.pt)")
    ap.add_argument("--variant", default="starpose_t")
    ap.add_argument("--people", type=Path, default=ROOT.parent / "shared" / "people")
    ap.add_argument("--fixture", type=Path, default=ROOT.parent / "shared" / "fixtures" / "coco")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--level", type=float, default=0.9, help="the interval's coverage")
    ap.add_argument("--no-flip", dest="flip", action="store_false",
                    help="one pass per person (as predict and the exported artifacts), not the flip test")
    ap.add_argument("--out", type=Path, default=None, help="also write the summary here (JSON)")
    args = ap.parse_args(argv)
    if args.resamples < 1:
        raise SystemExit(f"--resamples must be at least 1, got {args.resamples}")
    if not 0.0 < args.level < 1.0:
        raise SystemExit(f"--level must lie strictly between 0 and 1, got {args.level}")
    for what, p in (("people", args.people), ("weights A", args.a), ("weights B", args.b)):
        if not p.exists():
            raise SystemExit(f"{what}: {p} not found")

    import torch

    from starpose import COCO_SPEC
    from starpose.evaluation.bootstrap import compare
    from starpose.evaluation.holdout import bootstrap_inputs, predict_sets
    from starpose.fileio import atomic_write_json

    pkg = _package()
    torch.set_num_threads(2)
    sets = pkg.validation(args.people, args.fixture)
    if not sets:
        raise SystemExit(f"{args.people}: no held-out people found for the sources of people_mix.json")
    preds = {}
    for key, path in (("a", args.a), ("b", args.b)):
        model, _ = pkg.load_weights(args.variant, path)
        preds[key] = predict_sets(model, sets, COCO_SPEC, flip=args.flip, progress=True)
    comps, score = compare(bootstrap_inputs(sets, preds["a"], preds["b"], COCO_SPEC), args.resamples, args.seed,
                           progress=True)
    summary = {"a": str(args.a), "b": str(args.b), "resamples": args.resamples, "seed": args.seed, "flip": args.flip,
               "sets": {c.name: {"people": len(vs.samples), "photos": len({s.image_id for s in vs.samples}),
                                 **c.summary(args.level)} for c, vs in zip(comps, sets)},
               "score": score.summary(args.level)}
    key = f"interval_{int(round(args.level * 100))}"
    print(f"flip test {'on' if args.flip else 'off'}")
    print(f"{'set':<10} {'people':>6} {'A':>7} {'B':>7} {'B-A':>8}  {key:<20} B ahead")
    for name, m in [*summary["sets"].items(), ("score", summary["score"])]:
        lo, hi = m[key]
        print(f"{name:<10} {m.get('people', ''):>6} {m['a']:7.4f} {m['b']:7.4f} {m['b_minus_a']:+8.4f}  "
              f"[{lo:+.4f}, {hi:+.4f}]  {m['b_ahead_share']:.0%}")
    if args.out:
        atomic_write_json(args.out, summary, indent=1)
    return summary


if __name__ == "__main__":
    main()
