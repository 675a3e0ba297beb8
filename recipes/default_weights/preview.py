"""Draw pseudo-labels on a few images as one PNG contact sheet, to look at before training.

    python recipes/default_weights/preview.py --split train -n 12 --out /tmp/preview_train.png
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def draw(img: np.ndarray, anns: list[dict], skeleton: list[list[int]]) -> np.ndarray:
    import cv2

    out = img.copy()
    for ann in anns:
        x, y, w, h = (int(round(v)) for v in ann["bbox"])
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 200, 255), 2)
        k = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        for a, b in skeleton:
            if k[a - 1, 2] > 0 and k[b - 1, 2] > 0:
                cv2.line(out, tuple(int(v) for v in k[a - 1, :2]), tuple(int(v) for v in k[b - 1, :2]), (0, 255, 0), 2)
        for i, (px, py, v) in enumerate(k):
            if v > 0:
                color = (255, 80, 80) if i in (1, 3, 5, 7, 9, 11, 13, 15) else (80, 80, 255)  # left blue, right red
                cv2.circle(out, (int(px), int(py)), 3, color, -1)
    return out


def main(argv: list[str] | None = None) -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(REPO / "data" / "distill"))
    ap.add_argument("--split", default="train", choices=("train", "val"))
    ap.add_argument("-n", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="preview.png")
    args = ap.parse_args(argv)
    root = Path(args.root)
    data = json.loads((root / f"{args.split}.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = [im for im in data["images"] if im["id"] in by_image]
    random.Random(args.seed).shuffle(images)
    tiles = []
    for im in images[: args.n]:
        img = cv2.imread(str(root / "images" / im["file_name"]))
        img = draw(img, by_image[im["id"]], data["categories"][0]["skeleton"])
        s = 320 / img.shape[0]
        img = cv2.resize(img, (max(1, int(img.shape[1] * s)), 320))
        tiles.append(img)
    rows, row, width = [], [], 0
    for t in tiles:
        if width + t.shape[1] > 1600 and row:
            rows.append(row)
            row, width = [], 0
        row.append(t)
        width += t.shape[1]
    if row:
        rows.append(row)
    W = max(sum(t.shape[1] for t in r) for r in rows)
    sheet = np.concatenate([np.pad(np.concatenate(r, 1), ((0, 0), (0, W - sum(t.shape[1] for t in r)), (0, 0))) for r in rows])
    cv2.imwrite(args.out, sheet)
    print(f"{args.out}: {len(tiles)} images")


if __name__ == "__main__":
    main()
