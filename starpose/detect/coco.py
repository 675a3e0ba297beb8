"""The bundled detector over a COCO-format image set: person boxes in COCO results format, the
input of ``eval --boxes ours`` (in place of a detection file)."""
from __future__ import annotations

from pathlib import Path

from .detector import PersonDetector

__all__ = ["detect_coco_images"]


def detect_coco_images(detector: PersonDetector, ann_file: str | Path, image_root: str | Path,
                       score_threshold: float = 0.05, max_detections: int = 20,
                       progress: bool = False) -> list[dict]:
    """Run ``detector`` on every image of ``ann_file`` (read from ``image_root``): a COCO results
    list ``{image_id, category_id: 1, bbox, score}``, best box first per image. The low threshold
    and generous cap suit AP, which ranks the low-scoring boxes last."""
    from ..data.coco import load_json
    from ..data.errors import DataError
    from ..data.topdown import read_image_rgb

    ann_file, image_root = Path(ann_file), Path(image_root)
    data = load_json(ann_file)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DataError(ann_file, "expected a COCO json with an 'images' list")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(images), desc="detect", unit="image")
    out: list[dict] = []
    for im in images:
        path = image_root / im["file_name"]
        image = read_image_rgb(path)
        try:
            found = detector(image, score_threshold=score_threshold, max_detections=max_detections)
        except ValueError as e:
            raise DataError(path, str(e)) from e
        out += [{"image_id": int(im["id"]), "category_id": 1, "bbox": [float(v) for v in d.box],
                 "score": float(d.score)} for d in found if d.box[2] > 0 and d.box[3] > 0]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out
