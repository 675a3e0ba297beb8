"""Teacher labels where humans left gaps, and the teacher's own score on the validation people.

    python recipes/default_weights/teacher_people.py ccp          # BlazePose labels for ccp/ (all 17)
    python recipes/default_weights/teacher_people.py lspet-face   # face points for LSPET, where confident
    python recipes/default_weights/teacher_people.py val          # the teacher on the held-out people
    python recipes/default_weights/teacher_people.py all

The teacher is MediaPipe BlazePose heavy (Apache-2.0) with flip test and a second, landmark-aligned
pass, exactly as ``label.py`` runs it (``gather.py fetch-teacher`` puts its files in the cache).
Readings are appended to ``data/people_labels/<set>.jsonl`` (one line per photo; an interrupted run
resumes where it stopped; the photos of ``../shared/people`` are read in place and never copied),
then turned into COCO files:

* ``ccp.json``: people the detector finds in the street-fashion photos, kept by the same
  :class:`~starpose.distill.labels.LabelPolicy` as the distillation set; every keypoint is marked
  ``t`` (teacher) in ``keypoint_labels``.
* ``lspet_face.json``: LSPET's training people (held-out photos left out) with the human limb
  labels (``h``) and the teacher's nose, eyes and ears (``t``) where the teacher is confident and
  agrees with the humans on the limbs (so it read the right person the right way round): PCK@0.2
  of its 12 limb points against the human labels >= ``--agree``, and each face point's score
  >= ``--face-thr``. People without a confident face point are left out of this file (they stay
  in the human ``lspet`` source).
* ``val`` writes ``results/teacher_val.json``: OKS AP (GT boxes) and PCK@0.2 of the teacher on the
  held-out people of ``holdout.json`` and on the 12-person COCO fixture, scored by the same code
  as the student (:mod:`starpose.evaluation.holdout`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from starpose.distill.labels import LabelPolicy, annotation_from_reading, coco_dataset, oks_nms, reading_from_pose  # noqa: E402
from starpose.fileio import atomic_write_json  # noqa: E402

TEACHER = {"models": ("heavy",), "flip": True, "passes": 2}
TEACHER_NAME = "MediaPipe BlazePose heavy (Apache-2.0), flip test, 2 passes"


def _read_rgb(path: Path) -> np.ndarray:
    from starpose.data.topdown import read_image_rgb

    return read_image_rgb(path)


def _done(path: Path) -> dict[str, dict]:
    """key → record of a jsonl file; a line cut by an interrupted run is skipped."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
                out[rec["key"]] = rec
            except (json.JSONDecodeError, KeyError):
                continue
    return out


def _run(items: list[tuple[str, object]], out: Path, fn, desc: str) -> dict[str, dict]:
    """Apply ``fn(item)`` to every (key, item) not yet in ``out`` (jsonl), appending as it goes."""
    from tqdm import tqdm

    done = _done(out)
    todo = [(k, it) for k, it in items if k not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    if todo:
        print(f"{desc}: {len(done)} done, {len(todo)} to go", flush=True)
    with out.open("a") as f:
        for key, item in tqdm(todo, desc=desc, unit="photo", mininterval=30):
            rec = {"key": key, **fn(item)}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            done[key] = rec
    return done


def _teacher():
    from starpose.distill.blazepose import BlazePoseTeacher, missing_teacher_files

    missing = missing_teacher_files()
    if missing:
        raise SystemExit(f"teacher files missing ({', '.join(str(m) for m in missing)}); run "
                         "python recipes/default_weights/gather.py fetch-teacher")
    return BlazePoseTeacher(**TEACHER)


# --------------------------------------------------------------------------- ccp


def label_ccp(people: Path, out_dir: Path, policy: LabelPolicy, limit: int | None) -> dict:
    photos = sorted((people / "ccp" / "photos").glob("*.jpg"))[:limit]
    if not photos:
        raise SystemExit(f"{people / 'ccp' / 'photos'}: no photos")
    teacher = _teacher()

    def read(path: Path) -> dict:
        rgb = _read_rgb(path)
        found = [reading_from_pose(p, d) for d, p in teacher.detect(rgb, scales=(1.0,))]
        return {"width": rgb.shape[1], "height": rgb.shape[0], "people": found}

    recs = _run([(p.name, p) for p in photos], out_dir / "ccp.jsonl", read, "ccp")
    images, anns = [], []
    for i, p in enumerate(photos):
        rec = recs[p.name]
        kept = [a for a in (annotation_from_reading(r, rec["width"], rec["height"], policy) for r in rec["people"]) if a]
        kept = oks_nms(kept, policy.nms_oks)
        if not kept:
            continue
        image_id = int(p.stem) if p.stem.isdigit() else i + 1
        images.append({"id": image_id, "file_name": p.name, "width": rec["width"], "height": rec["height"]})
        for a in kept:
            a["keypoint_labels"] = "".join("t" if v > 0 else "-" for v in np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2])
            anns.append(dict(a, image_id=image_id))
    info = {"description": "ccp/ photos of ../shared/people labelled by the teacher", "teacher": TEACHER_NAME,
            "photos": "Clothing Co-Parsing (Apache-2.0), read in place from ../shared/people/ccp/photos"}
    atomic_write_json(out_dir / "ccp.json", coco_dataset(images, anns, info))
    stats = {"photos": len(photos), "detected": sum(len(recs[p.name]["people"]) for p in photos),
             "kept_people": len(anns), "kept_photos": len(images),
             "mean_keypoints": round(float(np.mean([a["num_keypoints"] for a in anns])), 2) if anns else 0.0}
    print("ccp:", json.dumps(stats))
    return stats


# --------------------------------------------------------------------------- LSPET face points


def label_lspet_face(people: Path, out_dir: Path, holdout: dict, face_thr: float, agree: float,
                     limit: int | None) -> dict:
    from starpose.data.lsp import lsp_samples, pck
    from starpose.distill.mapping import blazepose_to_coco

    samples = lsp_samples(people / "lspet", exclude=holdout.get("lspet", set()))[:limit]
    teacher = _teacher()

    def read(s) -> dict:
        rgb = _read_rgb(s.image_path)
        pose = teacher.from_boxes(rgb, s.bbox[None])[0]
        return {"width": rgb.shape[1], "height": rgb.shape[0], **reading_from_pose(pose)}

    recs = _run([(str(s.image_id), s) for s in samples], out_dir / "lspet_face.jsonl", read, "lspet face")
    images, anns, agreement = [], [], []
    for s in samples:
        rec = recs[str(s.image_id)]
        kps, scores = blazepose_to_coco(np.asarray(rec["landmarks"]),
                                        np.asarray(rec["visibility"]) * np.asarray(rec["presence"]))
        limbs = pck(kps[None], s.keypoints[None], s.visible[None], 0.2)["PCK@0.2"]
        if not np.isfinite(limbs):
            continue
        agreement.append(limbs)
        inside = (kps[:, 0] >= 0) & (kps[:, 0] < rec["width"]) & (kps[:, 1] >= 0) & (kps[:, 1] < rec["height"])
        face = (scores[:5] >= face_thr) & inside[:5]
        if limbs < 100 * agree or not face.any():
            continue
        kp = np.zeros((17, 3))
        kp[:, :2] = np.where(s.visible[:, None] > 0, s.keypoints, 0.0)
        kp[:, 2] = s.visible
        kp[:5][face] = np.concatenate([np.round(kps[:5][face], 2), np.full((face.sum(), 1), 2.0)], axis=1)
        labels = "".join("t" if i < 5 and face[i] else ("h" if s.visible[i] > 0 else "-") for i in range(17))
        images.append({"id": s.image_id, "file_name": s.image_path.name, "width": rec["width"], "height": rec["height"]})
        x, y, w, h = (float(v) for v in s.bbox)
        anns.append({"image_id": s.image_id, "category_id": 1, "iscrowd": 0, "bbox": [round(v, 2) for v in (x, y, w, h)],
                     "area": round(0.53 * w * h, 2), "num_keypoints": int((kp[:, 2] > 0).sum()),
                     "keypoints": [float(v) if i % 3 != 2 else int(v) for i, v in enumerate(kp.ravel())],
                     "keypoint_labels": labels, "teacher_limb_pck": round(float(limbs), 1),
                     "keypoint_scores": np.round(scores, 4).tolist()})
    info = {"description": "LSPET training people: human limb labels, teacher face points where confident",
            "teacher": TEACHER_NAME, "face_thr": face_thr, "limb_agreement_pck": agree,
            "photos": "LSPET (research use), read in place from ../shared/people/lspet/images"}
    atomic_write_json(out_dir / "lspet_face.json", coco_dataset(images, anns, info))
    stats = {"people": len(samples), "with_face": len(anns),
             "teacher_limb_pck_median": round(float(np.median(agreement)), 1) if agreement else None,
             "face_points": int(sum(a["keypoint_labels"][:5].count("t") for a in anns))}
    print("lspet face:", json.dumps(stats))
    return stats


# --------------------------------------------------------------------------- the teacher on the val people


def teacher_val(people: Path, out: Path | None, fixture: Path | None, only: set[str] | None = None) -> dict:
    """The teacher on the validation people (GT boxes), written to ``out`` (None: not written);
    ``only`` names the validation sets to score (default all, the fixture included)."""
    from starpose import COCO_SPEC
    from starpose.data.mix import load_mix
    from starpose.evaluation.holdout import coco_gt_set, score_keypoints, validation_sets

    mix = load_mix(HERE / "people_mix.json", {"people": str(people)})
    sets = validation_sets(mix, COCO_SPEC)
    if fixture is not None and (fixture / "test_coco.json").is_file():
        sets.append(coco_gt_set("fixture", fixture / "test_coco.json", fixture, COCO_SPEC))
    if only is not None:
        sets = [vs for vs in sets if vs.name in only]
    teacher = _teacher()
    results = {}
    t0 = time.time()
    for vs in sets:
        from tqdm import tqdm

        kps = []
        for s in tqdm(vs.samples, desc=f"teacher {vs.name}", unit="person", mininterval=30):
            pose = teacher.from_boxes(_read_rgb(s.image_path), np.asarray(s.bbox)[None])[0]
            k, sc = pose.coco()
            kps.append(np.concatenate([k, sc[:, None]], axis=1))
        results[vs.name] = score_keypoints(vs, kps, COCO_SPEC)
        print(vs.name, {k: round(v, 4) for k, v in results[vs.name].items() if k in ("AP", "AP50", "PCK@0.2", "people")},
              flush=True)
    doc = {"teacher": TEACHER_NAME, "boxes": "ground truth (square 1.25x crop)", "holdout": "holdout.json",
           "command": "python recipes/default_weights/teacher_people.py val",
           "seconds": round(time.time() - t0, 1), "results": results}
    if out is not None:
        atomic_write_json(out, doc)
        print(f"wrote {out}")
    return doc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["ccp", "lspet-face", "val", "all"])
    ap.add_argument("--people", type=Path, default=REPO.parent / "shared" / "people")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "people_labels")
    ap.add_argument("--face-thr", type=float, default=0.7, help="teacher score for a face point")
    ap.add_argument("--agree", type=float, default=0.75,
                    help="fewest limb points (fraction) the teacher must place within 0.2 torso of the human labels")
    ap.add_argument("--limit", type=int, default=None, help="first N photos only (a quick look)")
    ap.add_argument("--fixture", type=Path, default=REPO.parent / "shared" / "fixtures" / "coco")
    args = ap.parse_args(argv)
    if not args.people.is_dir():
        raise SystemExit(f"{args.people}: folder of people not found (see ../shared/people/README.md)")
    from starpose.data.mix import load_holdout

    holdout = load_holdout(HERE / "holdout.json")
    if args.what in ("ccp", "all"):
        label_ccp(args.people, args.out, LabelPolicy(), args.limit)
    if args.what in ("lspet-face", "all"):
        label_lspet_face(args.people, args.out, holdout, args.face_thr, args.agree, args.limit)
    if args.what in ("val", "all"):
        teacher_val(args.people, HERE / "results" / "teacher_val.json", args.fixture)


if __name__ == "__main__":
    main()
