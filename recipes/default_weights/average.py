"""Average weight files of one lineage (a "model soup" of two or more ingredients), for package.py.

    python recipes/default_weights/average.py PREVIOUS.safetensors runs/people_h18/best.safetensors \
        --out runs/people_h18/averaged.safetensors
    python recipes/default_weights/average.py PREVIOUS.safetensors runs/people_h45/best.safetensors \
        --also runs/people_h44/best.safetensors --out runs/people_h45/mean3.safetensors

A continuation starts from the packaged weights, so the packaged file and the continuation's best
EMA lie in one basin; their mean can score better on the validation people than either (it did
for the seventeenth run: docs/MODEL_CARD.md). The output carries the *later* file's metadata
(mix, epoch, lineage), with ``averaged`` added to its last lineage entry (which file it was
averaged with, by name and epochs, and the later file's share), so ``package.py`` reports an
honest lineage.

``--also SIBLING`` (repeatable) adds the best weights of another run that started from the same weights
as LATER (a sibling: its lineage, all but its own last entry, must equal LATER's). Every file then gets
an equal share, and the ``averaged`` entry lists each sibling with its run's own lineage entry (epochs,
people drawn, seed, learning rate), so the people the mean was trained on are all accounted for.

All files must hold the same tensors (names, shapes, dtypes); BatchNorm's ``num_batches_tracked`` counters
come from the later file, and any other integer tensor must agree. Written atomically; nothing is written
on an error.
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


def _lineage(meta: dict, path: Path) -> list[dict]:
    lineage = json.loads(meta.get("lineage", "[]") or "[]")
    if not lineage:
        raise SystemExit(f"{path}: no lineage in its metadata (expected a training run's best/final.safetensors)")
    return lineage


def average(earlier: Path, later: Path, out: Path, later_share: float = 0.5, also: tuple[Path, ...] = ()) -> dict:
    """``(1 - later_share) * earlier + later_share * later``, tensor by tensor; with ``also`` (siblings of
    ``later``) the equal-share mean of every file. Returns the metadata written with it."""
    import torch
    from safetensors.torch import save_file

    from starpose.fileio import atomic_write

    if not 0.0 < later_share < 1.0:
        raise SystemExit(f"--later-share must lie strictly between 0 and 1, got {later_share}")
    paths = [earlier, later, *also]
    if len({p.resolve() for p in paths}) < len(paths):
        raise SystemExit("a file is named twice: " + ", ".join(str(p) for p in paths))
    if also:
        later_share = 1.0 / len(paths)
        shares = [later_share] * len(paths)
    else:
        shares = [1.0 - later_share, later_share]
    read = [_read(p) for p in paths]
    meta_a, meta_b = read[0][1], read[1][1]
    lineage = _lineage(meta_b, later)
    siblings = []
    for path, (_, meta) in zip(also, read[2:]):
        theirs = _lineage(meta, path)
        if theirs[:-1] != lineage[:-1]:
            raise SystemExit(f"{path}: not a sibling of {later} (its run started from other weights: the lineage "
                             f"before its last run differs), so its share cannot be recorded in one lineage")
        siblings.append({"file": path.name, "share": later_share, "run": theirs[-1]})
    b = read[1][0]
    for path, (sd, _) in zip(paths, read):
        if set(sd) != set(b):
            only = sorted(set(sd) ^ set(b))[:5]
            raise SystemExit(f"{path} and {later} hold different tensors (e.g. {', '.join(only)})")
        for k in b:
            if sd[k].shape != b[k].shape or sd[k].dtype != b[k].dtype:
                raise SystemExit(f"{k}: {tuple(sd[k].shape)} {sd[k].dtype} in {path}, "
                                 f"{tuple(b[k].shape)} {b[k].dtype} in {later}")
    avg = {}
    for k in b:
        if b[k].is_floating_point():
            total = sum(share * sd[k].double() for share, (sd, _) in zip(shares, read))
            avg[k] = total.to(b[k].dtype).contiguous()
        elif all(torch.equal(sd[k], b[k]) for sd, _ in read) or k.endswith("num_batches_tracked"):
            avg[k] = b[k].contiguous()  # BatchNorm's step counter (unused with a momentum): the later file's
        else:
            bad = next(p for p, (sd, _) in zip(paths, read) if not torch.equal(sd[k], b[k]))
            raise SystemExit(f"{k}: integer tensor differs between {bad} and {later}; cannot average it")
    averaged = {"with": earlier.name, "with_epochs": meta_a.get("epochs") or meta_a.get("epoch"),
                "with_status": meta_a.get("status"), "share_of_this_run": later_share}
    if siblings:
        averaged["also"] = siblings
    lineage[-1] = {**lineage[-1], "averaged": averaged}
    meta = {**meta_b, "lineage": json.dumps(lineage), "averaged_with": ", ".join(p.name for p in [earlier, *also])}
    meta.pop("val", None)  # the later file's validation numbers are not this file's
    meta.pop("val_score", None)
    atomic_write(out, lambda tmp: save_file(avg, tmp, metadata=meta))
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("earlier", type=Path, help="the weights the run started from (e.g. the packaged file)")
    ap.add_argument("later", type=Path, help="the run's best.safetensors (its metadata is kept)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--later-share", type=float, default=None, help="weight of LATER in the mean (default 0.5)")
    ap.add_argument("--also", type=Path, action="append", default=[], metavar="SIBLING",
                    help="another run's best weights from the same start as LATER (repeatable); equal shares")
    args = ap.parse_args(argv)
    if args.also and args.later_share is not None:
        raise SystemExit("--later-share is for a mean of two files; with --also every file gets an equal share")
    inputs = (args.earlier, args.later, *args.also)
    for p in inputs:
        if not p.is_file():
            raise SystemExit(f"{p}: not found")
    if args.out.resolve() in {p.resolve() for p in inputs}:
        raise SystemExit(f"--out {args.out} would overwrite an input; write the mean elsewhere")
    share = 0.5 if args.later_share is None else args.later_share
    average(args.earlier, args.later, args.out, share, tuple(args.also))
    print(f"averaged: {args.out}")


if __name__ == "__main__":
    main()
