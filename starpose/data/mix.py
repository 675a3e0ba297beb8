"""Training mixes: several person sources, each drawn with its own sampling weight.

A mix is a small JSON file (a named recipe) or a list of ``--source`` options::

    {
      "name": "people",
      "roots": {"people": "../../../shared/people", "labels": "../../data/people_labels"},
      "holdout": "holdout.json",
      "epoch_size": 12000,
      "sources": [
        {"name": "lspet", "format": "lsp", "path": "{people}/lspet", "weight": 4},
        {"name": "stock17", "format": "coco", "path": "{people}/stock17/person_keypoints.json",
         "images": "{people}/stock17/images", "weight": 1},
        {"name": "ccp", "format": "coco", "path": "{labels}/ccp.json", "images": "{people}/ccp/photos",
         "weight": 1, "labels": "teacher", "holdout_key": ""}
      ]
    }

Paths are relative to the mix file; ``{root}`` placeholders come from ``roots`` (relative to the
file too) and can be overridden (``--root people=/data/people``). ``holdout`` names a JSON file
of image ids per source (``holdout_key``, default the source's name) that training leaves out and
validation uses. An epoch draws ``epoch_size`` people: each source contributes
``round(epoch_size * weight / total weight)``, without repeats while the source has people left,
in an order that depends only on (seed, epoch): a resumed run draws exactly what an uninterrupted
run would have drawn.

A source marked ``"swap_tolerant": true`` has labels that swap left and right now and then (LSPET's
crowd-sourced ones): for its people the loss takes, for the arms and for the legs, the better of the
labelled and the swapped assignment (``KLDiscretLoss``'s ``swap_groups``).

Keypoints a source does not label carry ``v = 0`` and so no loss. Teacher labels are marked per
keypoint (``keypoint_labels``: ``h`` human, ``t`` teacher, ``-`` none); a source's
``teacher_weight`` scales the loss of its teacher keypoints.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import Sampler

from .errors import DataError
from .topdown import PersonSample

__all__ = ["Source", "Mix", "load_mix", "parse_source", "MixSampler", "load_holdout", "source_samples",
           "read_detector_boxes", "attach_detector_boxes",
           "FORMATS", "LABELS"]

FORMATS = ("coco", "lsp")
LABELS = ("human", "teacher", "mixed")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Source:
    name: str
    format: str  # coco | lsp
    path: str  # coco: person_keypoints json; lsp: folder with joints.mat and images/
    images: str = ""  # image folder (default: coco → beside the json, or its images/; lsp → path/images)
    weight: float = 1.0
    labels: str = "human"  # human | teacher | mixed (what the keypoints come from)
    teacher_weight: float = 1.0  # loss weight of teacher-labelled keypoints
    holdout_key: str | None = None  # key in the holdout file (None: the name; "": nothing held out)
    boxes: str = ""  # the person detector's box per person (recipes/default_weights/detector_boxes.py; "" none)
    swap_tolerant: bool = False  # labels may swap left and right: arms and legs each take the better assignment

    def key(self) -> str:
        return self.name if self.holdout_key is None else self.holdout_key

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Mix:
    name: str
    sources: tuple[Source, ...]
    epoch_size: int | None = None  # people per epoch (None: the sum of the sources' sizes)
    holdout: str = ""  # path of the holdout file ("" none)
    file: str = ""  # where the mix was read from
    roots: tuple[tuple[str, str], ...] = field(default=())

    def to_dict(self) -> dict:
        return {"name": self.name, "epoch_size": self.epoch_size, "holdout": self.holdout, "file": self.file,
                "roots": dict(self.roots), "sources": [s.to_dict() for s in self.sources]}

    @classmethod
    def from_dict(cls, d: dict) -> "Mix":
        return cls(name=d["name"], epoch_size=d.get("epoch_size"), holdout=d.get("holdout", ""),
                   file=d.get("file", ""), roots=tuple(sorted(d.get("roots", {}).items())),
                   sources=tuple(Source(**s) for s in d["sources"]))

    def summary(self) -> dict:
        """What the mix is, without machine paths (for weights metadata and model cards)."""
        return {"name": self.name, "epoch_size": self.epoch_size,
                "holdout": Path(self.holdout).name if self.holdout else "",
                "sources": [{"name": s.name, "format": s.format, "labels": s.labels, "weight": s.weight,
                             "teacher_weight": s.teacher_weight, **({"detector_boxes": True} if s.boxes else {}),
                             **({"swap_tolerant": True} if s.swap_tolerant else {})}
                            for s in self.sources]}

    def describe(self) -> str:
        tot = sum(s.weight for s in self.sources)
        return ", ".join(f"{s.name} {s.weight / tot:.0%}" for s in self.sources)


def _check_source(where: Path | str, s: Source) -> Source:
    if not _NAME.match(s.name):
        raise DataError(where, f"source name {s.name!r} must be letters, digits, '_', '-' or '.'")
    if s.format not in FORMATS:
        raise DataError(where, f"source {s.name!r}: unknown format {s.format!r} (known: {', '.join(FORMATS)})")
    if s.labels not in LABELS:
        raise DataError(where, f"source {s.name!r}: labels must be one of {', '.join(LABELS)}, got {s.labels!r}")
    if not isinstance(s.swap_tolerant, bool):
        raise DataError(where, f"source {s.name!r}: swap_tolerant must be true or false, got {s.swap_tolerant!r}")
    for what, v in (("weight", s.weight), ("teacher_weight", s.teacher_weight)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise DataError(where, f"source {s.name!r}: {what} must be a number > 0, got {v!r}")
    return s


def _substitute(where: Path | str, value: str, roots: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        key = m.group(1)
        if key not in roots:
            raise DataError(where, f"path {value!r} names root {{{key}}}, which is not defined "
                                   f"(defined: {', '.join(sorted(roots)) or 'none'})")
        return roots[key]

    return re.sub(r"\{([A-Za-z0-9_]+)\}", repl, value)


def load_mix(path: str | Path, root_overrides: dict[str, str] | None = None,
             weight_overrides: dict[str, float] | None = None) -> Mix:
    """Read and validate a mix file; paths come back absolute. Unknown sources in
    ``weight_overrides`` and weights <= 0 are errors naming the file."""
    from .coco import load_json

    path = Path(path)
    d = load_json(path)
    if not isinstance(d, dict) or not isinstance(d.get("sources"), list) or not d["sources"]:
        raise DataError(path, "expected a JSON object with a non-empty 'sources' list")
    base = path.resolve().parent
    roots = {}
    for k, v in (d.get("roots") or {}).items():
        roots[k] = str((base / v).resolve()) if not Path(v).is_absolute() else v
    for k, v in (root_overrides or {}).items():
        roots[k] = str(Path(v).resolve())
    known = {"name", "format", "path", "images", "weight", "labels", "teacher_weight", "holdout_key", "boxes",
             "swap_tolerant"}
    sources = []
    for i, raw in enumerate(d["sources"]):
        if not isinstance(raw, dict):
            raise DataError(path, f"source #{i + 1} is not an object")
        extra = set(raw) - known
        if extra:
            raise DataError(path, f"source #{i + 1} ({raw.get('name', '?')}): unknown keys {sorted(extra)}")
        for req in ("name", "format", "path"):
            if req not in raw:
                raise DataError(path, f"source #{i + 1}: missing '{req}'")
        kw = dict(raw)
        for key in ("path", "images", "boxes"):
            if kw.get(key):
                p = Path(_substitute(path, kw[key], roots))
                kw[key] = str(p if p.is_absolute() else (base / p).resolve())
        sources.append(_check_source(path, Source(**kw)))
    names = [s.name for s in sources]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise DataError(path, f"source names repeat: {sorted(dup)}")
    if weight_overrides:
        unknown = set(weight_overrides) - set(names)
        if unknown:
            raise DataError(path, f"--source-weight names unknown source(s) {sorted(unknown)} (the mix has {names})")
        sources = [_check_source(path, Source(**{**s.to_dict(), "weight": weight_overrides.get(s.name, s.weight)}))
                   for s in sources]
    holdout = d.get("holdout", "")
    if holdout:
        hp = Path(holdout)
        holdout = str(hp if hp.is_absolute() else (base / hp).resolve())
    epoch_size = d.get("epoch_size")
    if epoch_size is not None and (not isinstance(epoch_size, int) or epoch_size <= 0):
        raise DataError(path, f"epoch_size must be a positive integer, got {epoch_size!r}")
    return Mix(name=str(d.get("name", path.stem)), sources=tuple(sources), epoch_size=epoch_size, holdout=holdout,
               file=str(path.resolve()), roots=tuple(sorted(roots.items())))


def parse_source(text: str) -> Source:
    """``--source NAME=FORMAT:PATH[@WEIGHT]`` (FORMAT coco or lsp) → :class:`Source`."""
    m = re.match(r"^([^=]+)=([a-z]+):(.+?)(?:@([0-9.eE+-]+))?$", text.strip())
    if not m:
        raise ValueError(f"--source {text!r}: expected NAME=FORMAT:PATH[@WEIGHT], e.g. lspet=lsp:data/lspet@3")
    name, fmt, p, w = m.groups()
    try:
        weight = float(w) if w else 1.0
    except ValueError as e:
        raise ValueError(f"--source {text!r}: weight {w!r} is not a number") from e
    src = Source(name=name, format=fmt, path=str(Path(p).resolve()), weight=weight)
    return _check_source("--source", src)


def load_holdout(path: str | Path) -> dict[str, set[int]]:
    """The held-out image ids per source key."""
    from .coco import load_json

    path = Path(path)
    d = load_json(path)
    if not isinstance(d, dict):
        raise DataError(path, "expected a JSON object of image-id lists per source")
    out = {}
    for k, v in d.items():
        if isinstance(v, list):
            try:
                out[k] = {int(i) for i in v}
            except (TypeError, ValueError) as e:
                raise DataError(path, f"'{k}' must be a list of integer image ids") from e
    return out


def _coco_images_dir(src: Source) -> Path:
    if src.images:
        return Path(src.images)
    json_dir = Path(src.path).parent
    return json_dir / "images" if (json_dir / "images").is_dir() else json_dir


def read_detector_boxes(path: str | Path) -> dict[int, np.ndarray]:
    """A detector-box file (recipes/default_weights/detector_boxes.py): the detector's box
    ``(x, y, w, h)`` per annotation id. A missing file or a malformed entry is a DataError naming it."""
    from .coco import load_json

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "detector-box file not found (make it with "
                              "python recipes/default_weights/detector_boxes.py)")
    d = load_json(path)
    boxes = d.get("boxes") if isinstance(d, dict) else None
    if not isinstance(boxes, dict):
        raise DataError(path, "expected a JSON object with a 'boxes' object of annotation id -> [x, y, w, h, ...]")
    out = {}
    for k, v in boxes.items():
        try:
            ann_id = int(k)
            box = np.asarray(v[:4], dtype=np.float64)
        except (TypeError, ValueError, IndexError) as e:
            raise DataError(path, f"box of annotation {k!r} must be [x, y, w, h, ...] numbers, got {v!r:.60}") from e
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
            raise DataError(path, f"box of annotation {k!r} must be finite [x, y, w, h] with w, h > 0, got {v!r:.60}")
        out[ann_id] = box
    return out


def attach_detector_boxes(src: Source, samples: list[PersonSample]) -> int:
    """Put the source's detector box of each person into ``extra["det_box"]``; how many got one.
    A file naming no person of the source is an error (it belongs to another source)."""
    boxes = read_detector_boxes(src.boxes)
    n = 0
    for s in samples:
        box = boxes.get(int(s.ann_id))
        if box is not None:
            s.extra["det_box"] = box
            n += 1
    if boxes and samples and n == 0:
        raise DataError(src.boxes, f"none of its {len(boxes)} boxes belongs to a person of source {src.name!r} "
                                   "(annotation ids differ: made for another source?)")
    return n


def source_samples(src: Source, spec, *, holdout: dict[str, set[int]] | None = None, split: str = "train",
                   check_images: bool = True) -> list[PersonSample]:
    """The people of one source: ``split="train"`` leaves the held-out photos out, ``"val"`` keeps
    only them. Every sample's ``extra`` names its source and carries per-keypoint label kinds."""
    held = (holdout or {}).get(src.key(), set()) if src.key() else set()
    if split == "val" and not held:
        return []
    if src.format == "lsp":
        from .lsp import lsp_samples

        if not Path(src.path).is_dir():
            raise DataError(src.path, f"source {src.name!r}: LSP folder (joints.mat + images/) not found")
        samples = lsp_samples(src.path, images=src.images or None, check_images=check_images,
                              ids=held if split == "val" else None, exclude=held if split == "train" else None)
    else:
        from .coco import CocoIndex, coco_gt_samples

        index = CocoIndex(src.path, spec)
        images = _coco_images_dir(src)
        if check_images and not images.is_dir():
            raise DataError(images, f"image folder of source {src.name!r} ({src.path}) not found")
        samples = coco_gt_samples(index, images, check_images=check_images)
        if split == "val":
            samples = [s for s in samples if s.image_id in held]
        elif held:
            samples = [s for s in samples if s.image_id not in held]
        by_id = {int(a.get("id", -1)): a for a in index.annotations}
        for s in samples:
            labels = by_id.get(s.ann_id, {}).get("keypoint_labels")
            if labels is None:
                kind = "t" if src.labels == "teacher" else "h"
                labels = "".join(kind if v > 0 else "-" for v in s.visible)
            elif not isinstance(labels, str) or len(labels) != spec.num_keypoints or set(labels) - set("ht-"):
                raise DataError(src.path, f"annotation {s.ann_id}: keypoint_labels must be a string of "
                                          f"{spec.num_keypoints} characters from 'h', 't', '-', got {labels!r:.40}")
            s.extra["keypoint_labels"] = labels
    if src.boxes and split == "train":  # validation crops from the labelled boxes
        attach_detector_boxes(src, samples)
    for s in samples:
        s.extra["source"] = src.name
        if src.swap_tolerant:
            s.extra["swap_tolerant"] = True
        labels = s.extra.get("keypoint_labels", "")
        if src.teacher_weight != 1.0 and "t" in labels:
            s.extra["keypoint_weight"] = np.array([src.teacher_weight if c == "t" else 1.0 for c in labels],
                                                  dtype=np.float32)
    return samples


class MixSampler(Sampler[int]):
    """Draws ``epoch_size`` indices per epoch from concatenated sources by their weights.

    ``offsets[i]:offsets[i] + sizes[i]`` are source ``i``'s people in the concatenated list.
    Source ``i`` contributes ``round(epoch_size * w_i / sum(w))`` draws (the largest-remainder
    rounding keeps the total exact). Within a source, people are drawn from a permutation that
    continues across epochs (every person once before any repeats); the epoch's draws are then
    shuffled together. Everything depends only on (seed, epoch). An index repeated within an epoch
    is returned as ``index + k * total`` for its ``k``-th repeat, so that the data set gives it a
    different augmentation; the data set takes it modulo its length.
    """

    def __init__(self, sizes: list[int], weights: list[float], epoch_size: int | None = None, seed: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("one size and one weight per source")
        if any(n <= 0 for n in sizes):
            raise ValueError(f"every source needs people, got sizes {sizes}")
        self.sizes = list(sizes)
        self.offsets = [int(v) for v in np.concatenate([[0], np.cumsum(sizes)[:-1]])]
        self.total = int(sum(sizes))
        self.weights = [float(w) for w in weights]
        self.epoch_size = int(epoch_size) if epoch_size else self.total
        self.seed, self.epoch = seed, 0
        self.rank, self.world = rank, world

    def counts(self) -> list[int]:
        w = np.asarray(self.weights) / sum(self.weights)
        exact = w * self.epoch_size
        base = np.floor(exact).astype(int)
        rest = self.epoch_size - int(base.sum())
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:rest]] += 1
        return base.tolist()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _source_draws(self, i: int, n: int) -> np.ndarray:
        size = self.sizes[i]
        start = self.epoch * n  # position in the endless sequence of this source's permutations
        out = []
        pos = start
        while len(out) < n:
            cycle, off = divmod(pos, size)
            perm = np.random.default_rng((self.seed, i, cycle)).permutation(size)
            take = min(n - len(out), size - off)
            out.extend(perm[off:off + take].tolist())
            pos += take
        return np.asarray(out, dtype=np.int64)

    def indices(self) -> list[int]:
        draws = []
        for i, n in enumerate(self.counts()):
            if n:
                draws.append(self._source_draws(i, n) + self.offsets[i])
        idx = np.concatenate(draws) if draws else np.zeros(0, np.int64)
        idx = idx[np.random.default_rng((self.seed, 7919, self.epoch)).permutation(len(idx))]
        seen: dict[int, int] = {}
        out = []
        for v in idx.tolist():
            k = seen.get(v, 0)
            seen[v] = k + 1
            out.append(v + k * self.total)
        return out[self.rank::self.world]

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return len(range(self.rank, self.epoch_size, self.world))


def mix_sampling_report(sampler: MixSampler, names: list[str]) -> dict[str, int]:
    return dict(zip(names, sampler.counts()))

