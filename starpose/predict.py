"""``predict``: images, folders or videos in; skeleton overlays and COCO keypoint results out.

Person boxes come from a COCO-results detection file when given, otherwise from the bundled
person detector (:mod:`starpose.detect`): every person it finds, up to ``max_people``, gets a
skeleton. On video the detector runs every few frames and each person is followed between
detections by the cropping rule of :mod:`starpose.tracking` (:class:`MultiPersonTracker`: IoU
matching, One Euro smoothing per track). Without a detector a single person is followed: a still
image is predicted on the whole frame, then once more on the region of interest that those
keypoints give (BlazePose-style refinement); a video starts on the whole frame and then crops each
frame around the previous frame's keypoints (MoveNet's cropping rule), with optional One Euro
smoothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .fileio import IMAGE_EXTS, VIDEO_EXTS
from .processing import apply_affine, bbox_xywh_to_cs, decode_simcc, get_warp_matrix, invert_affine
from .spec import PoseSpec
from .tracking import MultiPersonTracker, OneEuroFilter, RoiTracker, full_frame_box, skeleton_draw_list, torso_indices

__all__ = ["Pose", "PosePredictor", "draw_poses", "predict_paths", "IMAGE_EXTS", "VIDEO_EXTS"]

SIDE_COLORS = {"left": (0, 200, 255), "right": (255, 120, 0), "center": (60, 220, 60)}  # RGB
BOX_COLOR = (255, 230, 60)  # RGB


@dataclass
class Pose:
    keypoints: np.ndarray  # (K, 2) image pixels
    scores: np.ndarray  # (K,)
    box: np.ndarray  # (x, y, w, h) the crop came from
    box_score: float = 1.0

    @property
    def score(self) -> float:
        s = self.scores[self.scores > 0]
        return float(self.box_score * (s.mean() if s.size else 0.0))


@dataclass
class PosePredictor:
    """Eager top-down predictor over uint8 RGB images."""

    model: torch.nn.Module
    spec: PoseSpec
    flip: bool = False
    _mean: np.ndarray = field(init=False, repr=False)
    _std: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.model.eval()
        self._mean = np.asarray(self.spec.mean, np.float32)
        self._std = np.asarray(self.spec.std, np.float32)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, boxes: list[np.ndarray], box_scores: list[float] | None = None) -> list[Pose]:
        import cv2

        from .inference import predict_simcc

        if not boxes:
            return []
        w, h = self.spec.input_size
        crops, mats = [], []
        for box in boxes:
            center, scale = bbox_xywh_to_cs(np.asarray(box, np.float64), self.spec.input_size, self.spec.bbox_padding)
            mat = get_warp_matrix(center, scale, 0.0, (w, h))
            crop = cv2.warpAffine(image, mat.astype(np.float32), (w, h), flags=cv2.INTER_LINEAR)
            crops.append(((crop.astype(np.float32) - self._mean) / self._std).transpose(2, 0, 1))
            mats.append(invert_affine(mat))
        x = torch.from_numpy(np.stack(crops))
        sx, sy = predict_simcc(self.model, x, self.flip, self.spec.flip_index)
        kpts, scores = decode_simcc(sx.numpy(), sy.numpy(), self.spec.simcc_split_ratio)
        box_scores = box_scores or [1.0] * len(boxes)
        return [Pose(apply_affine(kpts[i], mats[i]), scores[i], np.asarray(boxes[i], np.float64), box_scores[i])
                for i in range(len(boxes))]

    def single_person(self, image: np.ndarray, refine: bool = True, score_threshold: float = 0.3) -> Pose:
        """Whole frame first; then the ROI from those keypoints (one refinement step)."""
        from .tracking import roi_from_keypoints

        size = (image.shape[1], image.shape[0])
        pose = self(image, [full_frame_box(size)])[0]
        if refine:
            roi = roi_from_keypoints(pose.keypoints, pose.scores, size, torso_indices(self.spec.keypoint_names),
                                     score_threshold)
            if roi is not None:
                pose = self(image, [roi])[0]
        return pose


def draw_poses(image: np.ndarray, poses: list[Pose], spec: PoseSpec, score_threshold: float = 0.3,
               draw_scores: bool = True, draw_boxes: bool = False) -> np.ndarray:
    """Overlay skeletons (left orange-blue coded by side) and keypoint scores on an RGB image;
    with ``draw_boxes``, each person's box and box score too."""
    import cv2

    out = image.copy()
    thick = max(2, int(round(max(image.shape[:2]) / 300)))
    for pose in poses:
        if draw_boxes:
            x, y, w, h = (int(round(v)) for v in pose.box)
            cv2.rectangle(out, (x, y), (x + w, y + h), BOX_COLOR, max(1, thick // 2), cv2.LINE_AA)
            cv2.putText(out, f"{pose.box_score:.2f}", (x + 2, y + 12 + thick * 2), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35 + thick * 0.08, BOX_COLOR, 1, cv2.LINE_AA)
        points, lines = skeleton_draw_list(pose.scores, spec.skeleton, spec.keypoint_names, score_threshold)
        kp = pose.keypoints
        for a, b, side in lines:
            cv2.line(out, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), SIDE_COLORS[side], thick,
                     cv2.LINE_AA)
        for i, side in points:
            c = tuple(int(v) for v in kp[i])
            cv2.circle(out, c, thick + 2, SIDE_COLORS[side], -1, cv2.LINE_AA)
            cv2.circle(out, c, thick + 2, (255, 255, 255), 1, cv2.LINE_AA)
            if draw_scores:
                cv2.putText(out, f"{pose.scores[i]:.2f}", (c[0] + 4, c[1] - 4), cv2.FONT_HERSHEY_SIMPLEX,
                            0.3 + thick * 0.08, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _image_id(path: Path, index: int) -> int:
    return int(path.stem) if path.stem.isdigit() else index


def load_detections(path: Path) -> dict:
    """Detections (COCO results list) indexed by image id and by file name when present."""
    from .data.coco import load_json
    from .data.errors import DataError

    dets = load_json(path)
    if not isinstance(dets, list):
        raise DataError(path, "expected a COCO results list of {image_id, bbox, score}")
    by_key: dict = {}
    for i, d in enumerate(dets):
        if not isinstance(d, dict) or "bbox" not in d or ("image_id" not in d and "file_name" not in d):
            raise DataError(path, f"entry {i} lacks 'bbox' or 'image_id'/'file_name'")
        if d.get("category_id", 1) != 1:
            continue
        key = d.get("file_name", d.get("image_id"))
        by_key.setdefault(key, []).append(d)
    return by_key


def iter_inputs(source: Path) -> Iterator[Path]:
    from .data.errors import DataError

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
        if not files:
            raise DataError(source, "no images or videos in this folder")
        yield from files
    elif source.is_file():
        if source.suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
            raise DataError(source, f"unsupported file type {source.suffix!r} (images: "
                                    f"{', '.join(sorted(IMAGE_EXTS))}; videos: {', '.join(sorted(VIDEO_EXTS))})")
        yield source
    else:
        raise DataError(source, "no such file or folder")


def predict_paths(
    predictor: PosePredictor,
    sources: list[Path],
    out_dir: Path,
    detections: Path | None = None,
    det_score_thr: float = 0.3,
    score_threshold: float = 0.3,
    smooth: bool = False,
    progress: bool = True,
    detector=None,
    max_people: int = 10,
    box_threshold: float | None = None,
    detect_every: int = 5,
    skip_bad: bool = False,
) -> dict:
    """Run on every image/video under ``sources``; write overlays and ``results.json``.

    ``detector`` (a :class:`starpose.detect.PersonDetector`) finds the people when no
    ``detections`` file is given: at most ``max_people`` boxes scoring ``box_threshold`` or more
    (default: the detector's own threshold); video re-detects every ``detect_every`` frames.

    A file that cannot be read (undecodable, too small, a video with no frames) stops the run with a
    :class:`~starpose.data.errors.DataError` naming it, unless ``skip_bad``: then it is left out and
    listed under ``"skipped"`` of the returned summary (and in ``skipped.json`` beside the results),
    and the run fails only when every file was bad."""
    dets = load_detections(detections) if detections else None
    files = [p for s in sources for p in iter_inputs(Path(s))]
    made = _make_folder(out_dir)
    try:
        return _predict_files(predictor, files, out_dir, dets, det_score_thr, score_threshold, smooth, progress,
                              detector, max_people, box_threshold, detect_every, skip_bad)
    except BaseException:
        _remove_if_empty(made)  # a bad first input leaves no empty output folders behind
        raise


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest first."""
    made = []
    at = folder
    while not at.exists():
        made.append(at)
        if at.parent == at:
            break
        at = at.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_if_empty(made: list[Path]) -> None:
    for folder in made:
        try:
            folder.rmdir()  # only succeeds on an empty folder
        except OSError:
            return


def _predict_files(predictor, files, out_dir, dets, det_score_thr, score_threshold, smooth, progress, detector,
                   max_people, box_threshold, detect_every, skip_bad=False) -> dict:
    from .data.errors import DataError
    from .evaluation.oks import write_results

    results: list[dict] = []
    images: list[dict] = []
    overlays: list[str] = []
    skipped: list[dict] = []
    bar = None
    if progress and len(files) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="predict", unit="file")
    for path in files:
        try:
            overlays.append(_predict_file(predictor, path, out_dir, dets, det_score_thr, score_threshold, smooth,
                                          progress, detector, max_people, box_threshold, detect_every, results, images))
        except DataError as e:
            if not skip_bad:
                raise
            skipped.append({"file": str(path), "problem": e.problem})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if skipped and not overlays:
        others = {1: "", 2: " (the other input could not be read either)"}.get(
            len(files), f" (none of the other {len(files) - 1} inputs could be read either)")
        raise DataError(skipped[0]["file"], skipped[0]["problem"] + others)
    write_results(results, out_dir / "results.json")
    write_results({"images": images, "categories": [{"id": 1, "name": "person",
                   "keypoints": list(predictor.spec.keypoint_names),
                   "skeleton": [[a + 1, b + 1] for a, b in predictor.spec.skeleton]}]}, out_dir / "images.json")
    summary = {"overlays": overlays, "results": str(out_dir / "results.json"), "num_poses": len(results),
               "skipped": skipped}
    if skipped:
        write_results(skipped, out_dir / "skipped.json")
        summary["skipped_file"] = str(out_dir / "skipped.json")
    else:
        (out_dir / "skipped.json").unlink(missing_ok=True)  # an earlier run's list would not be about these results
    return summary


def _predict_file(predictor, path, out_dir, dets, det_score_thr, score_threshold, smooth, progress, detector,
                  max_people, box_threshold, detect_every, results, images) -> str:
    """Pose one photo or video; append its COCO results and image entries; the overlay's path.

    Nothing is appended when the file cannot be read (the DataError comes before any result)."""
    if path.suffix.lower() in VIDEO_EXTS:
        if detector is not None and dets is None:
            tracker = dict(max_people=max_people, box_threshold=box_threshold, detect_every=detect_every)
            return str(_predict_video_people(predictor, detector, path, out_dir, results, images, score_threshold,
                                             smooth, progress, **tracker))
        return str(_predict_video(predictor, path, out_dir, results, images, score_threshold, smooth, progress))
    image = _read_photo(path)
    image_id = _image_id(path, len(images))
    if dets is not None:
        ds = [d for d in dets.get(path.name, []) + dets.get(image_id, []) if d.get("score", 1) >= det_score_thr]
        poses = predictor(image, [np.asarray(d["bbox"], np.float64) for d in ds], [float(d.get("score", 1.0)) for d in ds])
    elif detector is not None:
        found = detector(image, score_threshold=box_threshold, max_detections=max_people)
        poses = predictor(image, [d.box for d in found], [d.score for d in found])
    else:
        poses = [predictor.single_person(image, score_threshold=score_threshold)]
    images.append({"id": image_id, "file_name": path.name, "width": image.shape[1], "height": image.shape[0]})
    results.extend(_coco_results(poses, image_id))
    target = out_dir / f"{path.stem}_pose.jpg"
    _write_image(target, draw_poses(image, poses, predictor.spec, score_threshold, draw_boxes=detector is not None))
    return str(target)



def _read_photo(path: Path) -> np.ndarray:
    """A photo as uint8 RGB (grey and alpha images are converted); too small → DataError."""
    from .data.errors import DataError
    from .data.topdown import read_image_rgb

    image = read_image_rgb(path)
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise DataError(path, f"image of {image.shape[1]}x{image.shape[0]} pixels is too small to hold a person")
    return image


def _coco_results(poses: list[Pose], image_id: int) -> list[dict]:
    return [{"image_id": image_id, "category_id": 1, "score": p.score,
             "keypoints": [float(v) for v in np.concatenate([p.keypoints, p.scores[:, None]], 1).reshape(-1)]}
            for p in poses]


def _write_image(path: Path, rgb: np.ndarray) -> None:
    import cv2

    from .fileio import atomic_write_bytes

    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{path}: could not encode the overlay")
    atomic_write_bytes(path, buf.tobytes())


def _predict_video(predictor: PosePredictor, path: Path, out_dir: Path, results: list, images: list,
                   score_threshold: float, smooth: bool, progress: bool) -> Path:
    """One person, ROI-tracked from the full frame on."""
    tracker = None
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.05) if smooth else None

    def frame_poses(rgb: np.ndarray, frame_no: int, fps: float) -> list[Pose]:
        nonlocal tracker
        if tracker is None:
            tracker = RoiTracker((rgb.shape[1], rgb.shape[0]), torso_indices(predictor.spec.keypoint_names),
                                 score_threshold)
        pose = predictor(rgb, [tracker.box])[0]
        tracker.update(pose.keypoints, pose.scores)
        if filt is not None:
            pose.keypoints = filt(pose.keypoints, frame_no / fps, (pose.scores > score_threshold)[:, None])
        return [pose]

    return _run_video(predictor, path, out_dir, results, images, score_threshold, progress, frame_poses)


def _predict_video_people(predictor: PosePredictor, detector, path: Path, out_dir: Path, results: list,
                          images: list, score_threshold: float, smooth: bool, progress: bool, max_people: int,
                          box_threshold: float | None, detect_every: int) -> Path:
    """Everyone the detector finds (up to ``max_people``), each followed by its own track."""
    tracker = None

    def frame_poses(rgb: np.ndarray, frame_no: int, fps: float) -> list[Pose]:
        nonlocal tracker
        if tracker is None:
            tracker = MultiPersonTracker((rgb.shape[1], rgb.shape[0]), torso_indices(predictor.spec.keypoint_names),
                                         score_threshold, detect_every=detect_every, max_people=max_people,
                                         smoothing=(1.0, 0.05) if smooth else None)
        if tracker.due():
            found = detector(rgb, score_threshold=box_threshold, max_detections=max_people)
            tracker.assign([d.box for d in found], [d.score for d in found])
        tracks = list(tracker.tracks)
        poses = predictor(rgb, [t.box for t in tracks], [t.score for t in tracks])
        for track, pose in zip(tracks, poses):
            tracker.update(track, pose.keypoints, pose.scores)
            if track.filter is not None:
                pose.keypoints = track.filter(pose.keypoints, frame_no / fps, (pose.scores > score_threshold)[:, None])
        tracker.advance()
        return poses

    return _run_video(predictor, path, out_dir, results, images, score_threshold, progress, frame_poses, boxes=True)


def _run_video(predictor: PosePredictor, path: Path, out_dir: Path, results: list, images: list,
               score_threshold: float, progress: bool, frame_poses, boxes: bool = False) -> Path:
    """Decode ``path`` frame by frame, call ``frame_poses(rgb, frame_no, fps)`` and write the overlay
    video (to a temporary file, renamed when complete)."""
    import cv2

    from .data.errors import DataError
    from .fileio import atomic_write

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(path, "cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    target = out_dir / f"{path.stem}_pose.mp4"
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=path.name, unit="frame", leave=False)

    def write(tmp: str) -> None:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        frame_no = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                poses = frame_poses(rgb, frame_no, fps)
                image_id = len(images)
                images.append({"id": image_id, "file_name": f"{path.name}#{frame_no}", "width": w, "height": h})
                results.extend(_coco_results(poses, image_id))
                writer.write(cv2.cvtColor(draw_poses(rgb, poses, predictor.spec, score_threshold, draw_boxes=boxes),
                                          cv2.COLOR_RGB2BGR))
                frame_no += 1
                if bar is not None:
                    bar.update(1)
        finally:
            writer.release()
        if frame_no == 0:
            raise DataError(path, "no frames could be decoded")

    try:
        atomic_write(target, write, suffix=".mp4")  # OpenCV picks the container by the extension
    finally:
        cap.release()
        if bar is not None:
            bar.close()
    return target
