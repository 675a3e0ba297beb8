"""Average two weight files of one lineage (a two-ingredient "model soup"), for package.py.

    python recipes/default_weights/average.py PREVIOUS.safetensors runs/people_h18/best.safetensors \
        --out runs/people_h18/averaged.safetensors

A continuation starts from the packaged weights, so the packaged file and the continuation's best
EMA lie in one basin; their mean can score better on the validation people than either (it did
for the seventeenth run: docs/MODEL_CARD.md). The output carries the *later* file's metadata
(mix, epoch, lineage), with ``averaged`` added to its last lineage entry (which file it was
averaged with, by name and epochs, and the later file's share), so ``package.py`` reports an
honest lineage. Both files must hold the same tensors (names, shapes, dtypes); BatchNorm's
``num_batches_tracked`` counters come from the later file, and any other integer tensor must agree. Written atomically; nothing is written on an error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))


def _read(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise SystemExit(f"{path}: cannot read as safetensors ({e})") from e


def average(earlier: Path, later: Path, out: Path, later_share: float = 0.5) -> dict:
    """``(1 - later_share) * earlier + later_share * later``, tensor by tensor; returns the metadata
    written with it."""
    import torch
    from safetensors.torch import save_file

    from starpose.fileio import atomic_write

    if not 0.0 < later_share < 1.0:
        raise SystemExit(f"--later-share must lie strictly between 0 and 1, got {later_share}")
    a, meta_a = _read(earlier)
    b, meta_b = _read(later)
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))[:5]
        raise SystemExit(f"{earlier} and {later} hold different tensors (e.g. {', '.join(only)})")
    avg = {}
    for k in b:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype:
            raise SystemExit(f"{k}: {tuple(a[k].shape)} {a[k].dtype} in {earlier}, "
                             f"{tuple(b[k].shape)} {b[k].dtype} in {later}")
        if b[k].is_floating_point():
            avg[k] = ((1.0 - later_share) * a[k].double() + later_share * b[k].double()).to(b[k].dtype).contiguous()
        elif torch.equal(a[k], b[k]) or k.endswith("num_batches_tracked"):
            avg[k] = b[k].contiguous()  # BatchNorm's step counter (unused with a momentum): the later file's
        else:
            raise SystemExit(f"{k}: integer tensor differs between {earlier} and {later}; cannot average it")
    lineage = json.loads(meta_b.get("lineage", "[]") or "[]")
    if not lineage:
        raise SystemExit(f"{later}: no lineage in its metadata (expected a training run's best/final.safetensors)")
    lineage[-1] = {**lineage[-1], "averaged": {
        "with": earlier.name, "with_epochs": meta_a.get("epochs") or meta_a.get("epoch"),
        "with_status": meta_a.get("status"), "share_of_this_run": later_share}}
    meta = {**meta_b, "lineage": json.dumps(lineage), "averaged_with": earlier.name}
    meta.pop("val", None)  # the later file's validation numbers are not this file's
    meta.pop("val_score", None)
    atomic_write(out, lambda tmp: save_file(avg, tmp, metadata=meta))
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("earlier", type=Path, help="the weights the run started from (e.g. the packaged file)")
    ap.add_argument("later", type=Path, help="the run's best.safetensors (its metadata is kept)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--later-share", type=float, default=0.5, help="weight of LATER in the mean")
    args = ap.parse_args(argv)
    for p in (args.earlier, args.later):
        if not p.is_file():
            raise SystemExit(f"{p}: not found")
    if args.out.resolve() in (args.earlier.resolve(), args.later.resolve()):
        raise SystemExit(f"--out {args.out} would overwrite an input; write the mean elsewhere")
    average(args.earlier, args.later, args.out, args.later_share)
    print(f"averaged: {args.out}")


if __name__ == "__main__":
    main()
