"""Fix the validation people of the default-weights recipe, once, before any training.

    python recipes/default_weights/split.py [--people ../shared/people] [--out recipes/default_weights/holdout.json]

Holds out whole photos, by image id, drawn with a fixed seed: 500 LSPET photos (one person
each), 100 stock17 photos (one person each) and a quarter of the ``coco/`` photos (every person in
them). The file is committed; training leaves these photos out and validates on them. Rerunning
with the same folders writes the same file (the draw depends only on the seed and the ids).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SEED = 20261202
COUNTS = {"lspet": 500, "stock17": 100}
COCO_FRACTION = 0.25


def draw(ids: list[int], k: int, salt: int) -> list[int]:
    rng = np.random.default_rng((SEED, salt))
    ids = sorted(ids)
    return sorted(int(i) for i in rng.choice(ids, size=k, replace=False))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=Path, default=ROOT.parent / "shared" / "people")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "holdout.json")
    args = ap.parse_args(argv)

    from starpose.data.coco import load_json
    from starpose.data.lsp import read_lsp_joints

    n_lsp = read_lsp_joints(args.people / "lspet" / "joints.mat").shape[0]
    stock = load_json(args.people / "stock17" / "person_keypoints.json")
    coco = load_json(args.people / "coco" / "person_keypoints.json")
    coco_ids = sorted({int(im["id"]) for im in coco["images"]})
    out = {
        "about": "Validation photos of the default-weights recipe (image ids; LSPET: the 1-based person/photo "
                 "index). Drawn once by recipes/default_weights/split.py before any training; never trained on.",
        "seed": SEED,
        "lspet": draw(list(range(1, n_lsp + 1)), COUNTS["lspet"], 1),
        "stock17": draw([int(im["id"]) for im in stock["images"]], COUNTS["stock17"], 2),
        "coco": draw(coco_ids, int(round(len(coco_ids) * COCO_FRACTION)), 3),
    }
    people = {
        "lspet": len(out["lspet"]),
        "stock17": sum(1 for a in stock["annotations"] if int(a["image_id"]) in set(out["stock17"])),
        "coco": sum(1 for a in coco["annotations"] if int(a["image_id"]) in set(out["coco"])
                    and not a.get("iscrowd", 0) and a.get("num_keypoints", 1) > 0),
    }
    out["people"] = people
    from starpose.fileio import atomic_write_json

    atomic_write_json(args.out, out, indent=1)
    print(f"{args.out}: " + ", ".join(f"{k} {len(out[k])} photos / {people[k]} people" for k in people))


if __name__ == "__main__":
    main()
