"""Parity as a value: an artifact, run in its real runtime on real person crops, against the
eager PyTorch model decoded by the numpy reference (:mod:`starpose.processing`).

Crops come from COCO-format ground truth boxes (by default the project's COCO fixture, read from
the shared data folder beside a source checkout, else the person boxes of the packaged sample
photos: :func:`default_crop_source`), cut exactly as the apps cut them: ``bbox_xywh_to_cs`` with
the spec's padding and aspect ratio, then ``top_down_affine``. The report holds:

- ``mean_kpt_px`` / ``max_kpt_px``: keypoint distance to the reference in crop pixels (an
  artifact with image-pixel outputs is mapped back into the crop first);
- ``argmax_agreement``: fraction of keypoints whose SimCC argmax (x and y) is identical — the
  decoded location is ``argmax / split_ratio``, so this is exact agreement of the output;
- ``pck_agreement``: fraction within ``PCK_RADIUS`` x the crop height of the reference;
- ``score_max_abs``: largest score difference;
- ``raw_max_abs`` / ``raw_mean_abs``: SimCC vector differences, where the artifact exposes them
  (exported with ``raw=True``), else None;
- ``by_reference_score``: mean distance and PCK agreement again on the reference's most
  confident half and quarter of the keypoints (by its own score). Not a threshold: it tells a
  quantized artifact that moves the unsure keypoints (flat SimCC curves, several near-equal
  maxima) from one that moves the ones the model is sure of.

Thresholds are named per precision (:data:`THRESHOLDS`); a report knows which ones fail.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from starpose.processing import (
    apply_affine,
    bbox_xywh_to_cs,
    decode_simcc,
    invert_affine,
    normalize_image,
    top_down_affine,
)
from starpose.data.coco import check_box
from starpose.spec import PoseSpec

from .base import Runner

__all__ = ["Crop", "Thresholds", "THRESHOLDS", "PCK_RADIUS", "SCORE_BANDS", "ParityReport", "coco_crops",
           "default_coco_json", "default_crop_source", "measure_parity", "score_bands"]

PCK_RADIUS = 0.05  # fraction of the crop height (12.8 px at 256x192)
REFERENCE_HEIGHT = 256  # the pixel thresholds below are stated for 256-pixel-high crops


@dataclass(frozen=True)
class Thresholds:
    """Limits one precision must meet. ``mean_kpt_px`` is for a 256-pixel-high crop and scales
    with the input height; ``raw_max_abs`` is checked only where raw outputs are exposed."""

    mean_kpt_px: float
    argmax_agreement: float
    pck_agreement: float
    score_max_abs: float
    raw_max_abs: float


THRESHOLDS: dict[str, Thresholds] = {
    # float32 everywhere: only summation order differs, so the argmax essentially never moves.
    "fp32": Thresholds(mean_kpt_px=0.5, argmax_agreement=0.99, pck_agreement=0.99, score_max_abs=1e-3,
                       raw_max_abs=1e-3),
    # float16 (10-bit mantissa): near-ties between SimCC bins flip. Mostly by a bin, but where the
    # SimCC curve is flat (untrained weights, occluded joints) the argmax can jump far, which is
    # why the mean allows a few pixels while PCK agreement stays high.
    "fp16": Thresholds(mean_kpt_px=3.0, argmax_agreement=0.80, pck_agreement=0.95, score_max_abs=5e-2,
                       raw_max_abs=5e-2),
    # int8 (for the quantization package): a trained model keeps the pose, not the exact bins.
    # Scores are SimCC maxima: a trained model's logits span about +-12 and int8 moves them by up
    # to ~0.7 (fixture-trained StarPose-t, PTQ: max |score diff| 0.51, max |SimCC diff| 0.67).
    "int8": Thresholds(mean_kpt_px=6.0, argmax_agreement=0.30, pck_agreement=0.85, score_max_abs=1.0,
                       raw_max_abs=1.5),
}



def thresholds_markdown() -> str:
    """:data:`THRESHOLDS` as the markdown table docs/EXPORT.md shows (generated from here; a test
    keeps the page equal to it)."""

    def num(v: float) -> str:
        return f"{v:.0e}".replace("e-0", "e-") if v < 0.01 else f"{v:g}" if v != int(v) else f"{v:.1f}"

    lines = ["| precision | mean keypoint px | identical argmax | PCK agreement | max score diff | max SimCC diff |",
             "|---|---|---|---|---|---|"]
    for name, t in THRESHOLDS.items():
        lines.append(f"| {name} | <= {num(t.mean_kpt_px)} | >= {t.argmax_agreement:.0%} | >= {t.pck_agreement:.0%} "
                     f"| <= {num(t.score_max_abs)} | <= {num(t.raw_max_abs)} |")
    return "\n".join(lines)

@dataclass(frozen=True)
class Crop:
    """One person crop: ``image`` (H, W, 3) uint8 RGB at the model's input size, and the
    image → crop / crop → image matrices."""

    name: str
    image: np.ndarray = field(repr=False)
    image_to_crop: np.ndarray = field(repr=False)
    crop_to_image: np.ndarray = field(repr=False)


def default_coco_json() -> Path | None:
    """The human-labelled COCO fixture (14 people) of a source checkout, read in place from the
    project's shared data folder (``../shared/fixtures/coco/test_coco.json``); None where that
    folder is absent (a fresh clone, an installed wheel)."""
    from starpose.sample_data import shared_fixture

    return shared_fixture("coco/test_coco.json")


def default_crop_source() -> Path:
    """Where parity crops come from when none are named: the COCO fixture where it is present,
    else the person boxes of the packaged sample photos (``people.json``, 3 people)."""
    from starpose.sample_data import SAMPLE_PEOPLE

    return default_coco_json() or SAMPLE_PEOPLE


def coco_crops(coco_json: Path, spec: PoseSpec, image_dir: Path | None = None, limit: int | None = None) -> list[Crop]:
    """Person crops from every non-crowd ground-truth box of a COCO keypoints file (images are
    looked up next to the json unless ``image_dir`` is given)."""
    import cv2

    from starpose.data.coco import check_file_name

    coco_json = Path(coco_json)
    try:
        doc = json.loads(coco_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{coco_json}: not a readable COCO json ({e})") from e
    if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
        raise ValueError(f"{coco_json}: not a COCO json (needs 'images' and 'annotations')")
    image_dir = Path(image_dir) if image_dir else coco_json.parent
    images = {img["id"]: img for img in doc["images"]}
    files = {i: img["file_name"] for i, img in images.items()}
    crops: list[Crop] = []
    cache: dict[int, np.ndarray] = {}
    for ann in doc["annotations"]:
        x, y, w, h = ann["bbox"]
        if ann.get("iscrowd", 0) or w < 1 or h < 1:
            continue
        image_id = ann["image_id"]
        # the box as training and inference see it: checked against the image and clipped to it
        box = check_box(coco_json, f"annotation {ann.get('id', len(crops))}", (x, y, w, h), images[image_id])
        if image_id not in cache:
            # relative and inside the images folder (a DataError, which is a ValueError): a json from
            # elsewhere must not make verify read a file outside it
            path = image_dir / check_file_name(coco_json, files[image_id], f"image {image_id}")
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: image missing or unreadable (listed in {coco_json.name})")
            cache[image_id] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        center, scale = bbox_xywh_to_cs(box, spec.input_size, spec.bbox_padding)
        crop, mat = top_down_affine(cache[image_id], center, scale, spec.input_size)
        crops.append(Crop(f"{files[image_id]}#{ann.get('id', len(crops))}", crop, mat, invert_affine(mat)))
        if limit is not None and len(crops) >= limit:
            break
    if not crops:
        raise ValueError(f"{coco_json}: no usable person boxes")
    return crops


@dataclass(frozen=True)
class ParityReport:
    artifact: str
    format: str
    precision: str
    backend: str
    n_crops: int
    n_keypoints: int
    mean_kpt_px: float
    max_kpt_px: float
    argmax_agreement: float
    pck_agreement: float
    score_max_abs: float
    raw_max_abs: float | None
    raw_mean_abs: float | None
    thresholds: Thresholds
    input_height: int
    by_reference_score: tuple[dict[str, float], ...] = ()

    @property
    def kpt_px_limit(self) -> float:
        return self.thresholds.mean_kpt_px * self.input_height / REFERENCE_HEIGHT

    def rows(self) -> list[tuple[str, str, str, bool | None]]:
        """(metric, value, limit, passed) — passed is None for a metric not checked."""
        t = self.thresholds
        raw_ok = None if self.raw_max_abs is None else self.raw_max_abs <= t.raw_max_abs
        return [
            ("mean keypoint deviation (crop px)", f"{self.mean_kpt_px:.4f}", f"<= {self.kpt_px_limit:.3g}",
             self.mean_kpt_px <= self.kpt_px_limit),
            ("max keypoint deviation (crop px)", f"{self.max_kpt_px:.4f}", "-", None),
            ("identical argmax", f"{self.argmax_agreement:.2%}", f">= {t.argmax_agreement:.0%}",
             self.argmax_agreement >= t.argmax_agreement),
            (f"PCK@{PCK_RADIUS} agreement", f"{self.pck_agreement:.2%}", f">= {t.pck_agreement:.0%}",
             self.pck_agreement >= t.pck_agreement),
            ("max |score diff|", f"{self.score_max_abs:.2e}", f"<= {t.score_max_abs:.0e}",
             self.score_max_abs <= t.score_max_abs),
            ("max |SimCC diff|", "not exposed" if self.raw_max_abs is None else f"{self.raw_max_abs:.2e}",
             f"<= {t.raw_max_abs:.0e}", raw_ok),
            ("mean |SimCC diff|", "not exposed" if self.raw_mean_abs is None else f"{self.raw_mean_abs:.2e}", "-", None),
        ]

    @property
    def failures(self) -> list[str]:
        return [f"{name} {value} (limit {limit})" for name, value, limit, ok in self.rows() if ok is False]

    @property
    def passed(self) -> bool:
        return not self.failures

    def table(self) -> str:
        head = (f"parity of {self.artifact} ({self.format}/{self.backend}, {self.precision}) "
                f"vs eager PyTorch on {self.n_crops} crops, {self.n_keypoints} keypoints")
        lines = [head]
        for name, value, limit, ok in self.rows():
            mark = "    " if ok is None else ("ok  " if ok else "FAIL")
            lines.append(f"  {mark} {name:36s} {value:>12s}   {limit}")
        for band in self.by_reference_score:
            lines.append(f"       {band_label(band):36s} {band['mean_kpt_px']:8.4f} px, PCK agreement "
                         f"{band['pck_agreement']:.2%}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["failures"] = self.failures
        return d


SCORE_BANDS = (0.5, 0.25)  # the reference's most confident half and quarter of the keypoints


def band_label(band: dict[str, float]) -> str:
    return f"top {band['share']:.0%} by fp32 score (>= {band['min_score']:.2f})"


def score_bands(dist: np.ndarray, ref_scores: np.ndarray, pck_radius_px: float,
                fractions: tuple[float, ...] = SCORE_BANDS) -> tuple[dict[str, float], ...]:
    """Mean distance and PCK agreement over the keypoints whose reference score is in the top
    ``fraction`` (ties at the cut-off included, so ``share`` can exceed it slightly)."""
    bands = []
    for fraction in fractions:
        cut = float(np.quantile(ref_scores, 1.0 - fraction))
        keep = ref_scores >= cut
        bands.append({"fraction": fraction, "min_score": cut, "share": float(keep.mean()),
                      "mean_kpt_px": float(dist[keep].mean()),
                      "pck_agreement": float((dist[keep] <= pck_radius_px).mean())})
    return tuple(bands)


@torch.no_grad()
def reference_outputs(model: nn.Module, spec: PoseSpec, crop: Crop) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eager float32 model + numpy decoding: (keypoints in crop px, scores, simcc_x, simcc_y)."""
    x = torch.from_numpy(normalize_image(crop.image, spec.mean, spec.std)[None])
    sx, sy = (t.float().numpy() for t in model(x))
    kp, sc = decode_simcc(sx, sy, spec.simcc_split_ratio)
    return kp, sc, sx, sy


def measure_parity(
    runner: Runner,
    model: nn.Module,
    meta: dict[str, Any],
    crops: list[Crop],
    *,
    artifact: str = "",
) -> ParityReport:
    """Run ``runner`` on every crop and compare with ``model`` (the eager reference)."""
    spec = PoseSpec.from_dict(meta["spec"])
    split = spec.simcc_split_ratio
    affine = bool(meta["affine_input"]["present"])
    dists, agree, scores_d, raw_d, ref_scores = [], [], [], [], []
    model = model.eval()
    for crop in crops:
        ref_kp, ref_sc, ref_sx, ref_sy = reference_outputs(model, spec, crop)
        out = runner(crop.image, crop.crop_to_image if affine else None)
        for name, want in (("keypoints", ref_kp.shape), ("scores", ref_sc.shape)):
            got = tuple(np.shape(out.get(name)))
            if got != want:
                raise ValueError(f"{artifact}: output {name} has shape {got}, the reference {want}")
        kp = np.asarray(out["keypoints"], np.float64)
        if affine:
            kp = apply_affine(kp, crop.image_to_crop)
        dists.append(np.linalg.norm(kp - ref_kp, axis=-1).ravel())
        ref_scores.append(np.asarray(ref_sc, np.float64).ravel())
        if "simcc_x" in out and "simcc_y" in out:
            sx, sy = np.asarray(out["simcc_x"]), np.asarray(out["simcc_y"])
            raw_d.append(np.concatenate([np.abs(sx - ref_sx).ravel(), np.abs(sy - ref_sy).ravel()]))
            same = (sx.argmax(-1) == ref_sx.argmax(-1)) & (sy.argmax(-1) == ref_sy.argmax(-1))
        else:
            same = np.all(np.rint(kp * split) == np.rint(ref_kp * split), axis=-1)
        agree.append(same.ravel())
        scores_d.append(np.abs(np.asarray(out["scores"], np.float64) - ref_sc).ravel())
    d = np.concatenate(dists)
    raw = np.concatenate(raw_d) if raw_d else None
    return ParityReport(
        artifact=artifact,
        format=meta["format"],
        precision=meta["precision"],
        backend=meta["backend"],
        n_crops=len(crops),
        n_keypoints=int(d.size),
        mean_kpt_px=float(d.mean()),
        max_kpt_px=float(d.max()),
        argmax_agreement=float(np.concatenate(agree).mean()),
        pck_agreement=float((d <= PCK_RADIUS * spec.input_h).mean()),
        score_max_abs=float(np.concatenate(scores_d).max()),
        raw_max_abs=None if raw is None else float(raw.max()),
        raw_mean_abs=None if raw is None else float(raw.mean()),
        thresholds=THRESHOLDS[meta["precision"]],
        input_height=spec.input_h,
        by_reference_score=score_bands(d, np.concatenate(ref_scores), PCK_RADIUS * spec.input_h),
    )


if __name__ == "__main__":  # python -m mobile_export.parity: the thresholds table of docs/EXPORT.md
    print(thresholds_markdown())
