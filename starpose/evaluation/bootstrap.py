"""Paired bootstrap over photos: is one set of predictions better than another, or is it noise?

Two sets of predictions for the same validation people (say two weight files) are scored on the same
resamples of the photos (drawn with replacement; every person of a drawn photo comes with it), so
what differs between them in one resample is the predictions alone. The spread of the differences
over the resamples is how far the measured difference could move had other photos of the same kind
been held out.

OKS AP goes through pycocotools' own ``COCOeval``: ``evaluate()`` once per set of predictions (the
per-photo matching), then ``accumulate()`` once per resample over the resampled photos' per-photo
results, so a resampled AP is exactly the AP pycocotools would report on a json holding those photos
(a photo drawn twice counted twice). PCK sums hits and labelled joints per person.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.lsp import PCK_LIMBS, pck_joints

__all__ = ["OksResampler", "pck_counts", "resampled_pck", "photo_draws", "people_of", "interval", "Comparison",
           "compare"]


class OksResampler:
    """pycocotools' keypoint AP over any multiset of the photos of a COCO json, from one ``evaluate()``."""

    def __init__(self, gt: dict, results: list[dict], sigmas: Sequence[float]):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not results:
            raise ValueError("no keypoint results to score (an empty set of predictions has AP 0; nothing to resample)")
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = gt
            coco.createIndex()
            dt = coco.loadRes(list(results))
            self._ev = COCOeval(coco, dt, "keypoints")
            self._ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
            self._ev.evaluate()
        if len(self._ev.params.catIds) != 1:
            raise ValueError(f"expected one category (person), the ground truth has {len(self._ev.params.catIds)}")
        self.image_ids = [int(i) for i in self._ev.params.imgIds]  # sorted, unique
        self._pos = {i: n for n, i in enumerate(self.image_ids)}
        self._eval_imgs = list(self._ev.evalImgs)
        self._pe_ids = list(self._ev._paramsEval.imgIds)
        self._n_area = len(self._ev.params.areaRng)
        self._all = self._ev.params.areaRngLbl.index("all")
        self._maxdet = len(self._ev.params.maxDets) - 1

    def ap(self, image_ids: Sequence[int] | None = None) -> float:
        """AP (OKS 0.50:0.95, area all) over ``image_ids`` (default: every photo once, pycocotools' AP)."""
        ids = self.image_ids if image_ids is None else [int(i) for i in image_ids]
        try:
            pos = [self._pos[i] for i in ids]
        except KeyError as e:
            raise ValueError(f"photo {e.args[0]} is not in the ground truth") from None
        n = len(self.image_ids)
        ev = self._ev
        ev.evalImgs = [self._eval_imgs[a * n + p] for a in range(self._n_area) for p in pos]
        ev._paramsEval.imgIds = list(range(len(pos)))
        ev.params.imgIds = list(range(len(pos)))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                ev.accumulate()
        finally:
            ev.evalImgs, ev._paramsEval.imgIds, ev.params.imgIds = self._eval_imgs, self._pe_ids, list(self.image_ids)
        prec = ev.eval["precision"][:, :, :, self._all, self._maxdet]
        valid = prec[prec > -1]
        return float(valid.mean()) if valid.size else -1.0


def pck_counts(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
               thr: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Per person, PCK@thr's hits and labelled limb joints, as :func:`starpose.data.lsp.pck` counts them."""
    hit, lab, _ = pck_joints(np.asarray(pred, np.float64), np.asarray(gt, np.float64), visible, thr)
    return hit[:, PCK_LIMBS].sum(1).astype(np.int64), lab[:, PCK_LIMBS].sum(1).astype(np.int64)


def resampled_pck(hits: np.ndarray, labelled: np.ndarray, people: Sequence[int]) -> float:
    """PCK (percent) over the people at the indices ``people`` (repeats count again)."""
    idx = np.asarray(people, dtype=np.int64)
    total = labelled[idx].sum()
    return float(100.0 * hits[idx].sum() / total) if total else float("nan")


def photo_draws(photo_of_person: Sequence[int], resamples: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``resamples`` draws of the photos with replacement, each as the photo ids drawn (as many as there
    are photos)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    photos = np.unique(np.asarray(photo_of_person, dtype=np.int64))
    if photos.size == 0:
        raise ValueError("no photos to resample")
    return [photos[rng.integers(0, photos.size, photos.size)] for _ in range(resamples)]


def people_of(photos: np.ndarray, photo_of_person: Sequence[int]) -> np.ndarray:
    """Indices of every person of every drawn photo (a photo drawn twice brings its people twice)."""
    by_photo: dict[int, list[int]] = {}
    for i, p in enumerate(photo_of_person):
        by_photo.setdefault(int(p), []).append(i)
    return np.asarray([i for p in photos for i in by_photo[int(p)]], dtype=np.int64)


def interval(values: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    """Percentile interval holding ``level`` of the values."""
    lo = (1.0 - level) / 2.0
    return float(np.quantile(values, lo)), float(np.quantile(values, 1.0 - lo))


@dataclass
class Comparison:
    """Metric of A and B on the photos as held out, and B - A over the resamples."""
    name: str
    a: float
    b: float
    diffs: np.ndarray

    def summary(self, level: float = 0.9) -> dict:
        lo, hi = interval(self.diffs, level)
        return {"a": round(self.a, 4), "b": round(self.b, 4), "b_minus_a": round(self.b - self.a, 4),
                f"interval_{int(round(level * 100))}": [round(lo, 4), round(hi, 4)],
                "b_ahead_share": round(float((self.diffs > 0).mean()), 3),
                "sd": round(float(self.diffs.std(ddof=1)) if self.diffs.size > 1 else 0.0, 4)}


def compare(sets: list[dict], resamples: int = 1000, seed: int = 0,
            progress: bool = False) -> tuple[list[Comparison], Comparison]:
    """Paired bootstrap of several validation sets, and of their mean (the selection score).

    Each entry of ``sets``: ``name``; ``photos`` (the photo id of each person); then either
    ``metric="oks"`` with ``gt`` (COCO json dict), ``results_a`` / ``results_b`` (COCO keypoint results)
    and ``sigmas``, or ``metric="pck"`` with ``gt`` (N, K, 2), ``visible`` (N, K), ``pred_a`` / ``pred_b``
    (N, K, 2). OKS sets count AP, PCK sets PCK / 100, as the selection score does. Each set is
    resampled on its own, with its own stream of ``seed``. A set with ``in_score=False`` is compared
    but left out of the score (the fixture, which chose nothing).
    """
    from tqdm import tqdm

    comps = []
    for n, s in enumerate(sets):
        rng = np.random.default_rng([seed, n])
        draws = photo_draws(s["photos"], resamples, rng)
        if s["metric"] == "oks":
            ra, rb = (OksResampler(s["gt"], s[k], s["sigmas"]) for k in ("results_a", "results_b"))
            a, b = ra.ap(), rb.ap()
            diffs = [rb.ap(d) - ra.ap(d) for d in tqdm(draws, desc=f"bootstrap {s['name']}", disable=not progress,
                                                       leave=False)]
        elif s["metric"] == "pck":
            ha, la = pck_counts(s["pred_a"], s["gt"], s["visible"])
            hb, lb = pck_counts(s["pred_b"], s["gt"], s["visible"])
            every = np.arange(len(s["photos"]))
            a, b = resampled_pck(ha, la, every) / 100.0, resampled_pck(hb, lb, every) / 100.0
            diffs = []
            for d in draws:
                people = people_of(d, s["photos"])
                diffs.append((resampled_pck(hb, lb, people) - resampled_pck(ha, la, people)) / 100.0)
        else:
            raise ValueError(f"{s['name']}: unknown metric {s['metric']!r} (oks or pck)")
        comps.append(Comparison(s["name"], a, b, np.asarray(diffs, dtype=np.float64)))
    scored = [c for c, s in zip(comps, sets) if s.get("in_score", True)]
    if not scored:
        raise ValueError("no validation sets count in the score")
    score = Comparison("score", float(np.mean([c.a for c in scored])), float(np.mean([c.b for c in scored])),
                       np.mean(np.stack([c.diffs for c in scored]), axis=0))
    return comps, score
