"""The source manifest of a distillation image folder: where every image came from.

``manifest.json`` = ``{"sources": {key: {package, version, kind, package_license, archive,
archive_sha256}}, "excluded": {what: why}, "dropped": {reason: count}, "images": [record]}``
with one record per image file (see :data:`IMAGE_KEYS`). The labelling step copies the
provenance fields into every COCO image entry, so a trained model can be traced back to the
packages and licences it learned from.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["IMAGE_KEYS", "SOURCE_KEYS", "FORBIDDEN_LICENSES", "validate_manifest", "load_manifest"]

#: Keys of one image record, and their types (``frame`` is None for a still image). An optional
#: ``detect_scales`` (list of floats in (0, 1]) picks the teacher's detector windows.
IMAGE_KEYS: dict[str, tuple[type, ...]] = {
    "id": (int,), "file_name": (str,), "width": (int,), "height": (int,),
    "package": (str,), "version": (str,), "member": (str,), "frame": (int, type(None)),
    "license": (str,), "note": (str,), "group": (str,), "split": (str,),
}
SOURCE_KEYS = ("package", "version", "kind", "package_license", "archive", "archive_sha256")
#: Licence words that must not appear on a used image (copyleft or unknown terms).
FORBIDDEN_LICENSES = ("GPL", "AGPL", "unknown", "proprietary")


def validate_manifest(manifest: dict, where: str = "manifest") -> None:
    """Raise ``ValueError`` naming ``where`` and the first problem found."""
    for key in ("sources", "images"):
        if key not in manifest:
            raise ValueError(f"{where}: missing top-level key {key!r}")
    for name, src in manifest["sources"].items():
        missing = [k for k in SOURCE_KEYS if k not in src]
        if missing:
            raise ValueError(f"{where}: source {name!r} lacks {missing}")
    ids, files = set(), set()
    packages = {s["package"] for s in manifest["sources"].values()}
    for i, rec in enumerate(manifest["images"]):
        for key, types in IMAGE_KEYS.items():
            if key not in rec:
                raise ValueError(f"{where}: image #{i} lacks {key!r}")
            if not isinstance(rec[key], types) or isinstance(rec[key], bool):
                raise ValueError(f"{where}: image #{i} {key}={rec[key]!r} is not {types}")
        if rec["id"] in ids or rec["file_name"] in files:
            raise ValueError(f"{where}: image #{i} repeats id {rec['id']} or file {rec['file_name']!r}")
        ids.add(rec["id"])
        files.add(rec["file_name"])
        if rec["split"] not in ("train", "val"):
            raise ValueError(f"{where}: image {rec['file_name']!r} has split {rec['split']!r}")
        if rec["package"] not in packages:
            raise ValueError(f"{where}: image {rec['file_name']!r} names package {rec['package']!r} not in sources")
        lic = rec["license"]
        if not lic.strip() or any(w.lower() in lic.lower() for w in FORBIDDEN_LICENSES):
            raise ValueError(f"{where}: image {rec['file_name']!r} has licence {lic!r}")
        if Path(rec["file_name"]).is_absolute() or ".." in Path(rec["file_name"]).parts:
            raise ValueError(f"{where}: file_name {rec['file_name']!r} must be relative to the images folder")
        scales = rec.get("detect_scales", [1.0])
        if not isinstance(scales, list) or not all(isinstance(v, (int, float)) and 0 < v <= 1 for v in scales):
            raise ValueError(f"{where}: image {rec['file_name']!r} has detect_scales {scales!r}")
    sides: dict[str, set[str]] = {}
    for rec in manifest["images"]:
        sides.setdefault(rec["group"], set()).add(rec["split"])
    mixed = sorted(g for g, s in sides.items() if len(s) > 1)
    if mixed:
        raise ValueError(f"{where}: groups on both sides of the split: {mixed}")


def load_manifest(path: Path) -> dict:
    """Read and validate a ``manifest.json``."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no manifest; run `python recipes/default_weights/gather.py images`") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    validate_manifest(manifest, str(path))
    return manifest
