"""Leeds Sports Pose (LSP) and LSP Extended: ``joints.mat`` with 14 joints per person.

Layouts read (the variable is always ``joints``):

* LSPET: ``14 x 3 x N`` — x, y and a flag that is 1 where the joint is labelled (0: unlabelled;
  such joints often carry negative, meaningless coordinates);
* LSP: ``3 x 14 x N`` — x, y and a flag that is 0 where the joint is *visible* (inverted);
* either transposed to ``N x 14 x 3``.

Joint order: right ankle, right knee, right hip, left hip, left knee, left ankle, right wrist,
right elbow, right shoulder, left shoulder, left elbow, left wrist, neck, head top (left/right are
the person's own). The 12 limb joints map one to one onto COCO-17; COCO's nose, eyes and ears are
**unlabelled** (v = 0: zero loss weight, never taught as absent). Neck and head top, which have no
COCO slot, are kept in ``PersonSample.extra`` and enter the person box.

Images are ``images/im00001.jpg`` … (LSPET) or ``images/im0001.jpg`` … (LSP): image id ``i`` is
the ``i``-th person (1-based), as in the file names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .topdown import PersonSample

__all__ = ["LSP_JOINTS", "LSP_TO_COCO", "read_lsp_joints", "lsp_to_coco", "lsp_box", "lsp_samples",
           "lsp_image_name", "torso_sizes", "pck_joints", "pck"]

LSP_JOINTS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
              "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top")
# COCO-17 index → LSP index (COCO 0..4, the face, has no LSP joint)
LSP_TO_COCO = {5: 9, 6: 8, 7: 10, 8: 7, 9: 11, 10: 6, 11: 3, 12: 2, 13: 4, 14: 1, 15: 5, 16: 0}
NECK, HEAD_TOP = 12, 13


def read_lsp_joints(path: str | Path) -> np.ndarray:
    """``joints.mat`` → (N, 14, 3) float array of x, y, labelled (1) / unlabelled (0)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "not found (an LSP / LSPET joints.mat was expected)")
    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy raises several types for damaged or foreign files
        raise DataError(path, f"not a readable MATLAB file ({type(e).__name__}: {e})") from e
    if "joints" not in mat:
        names = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(path, f"no variable 'joints' (found: {', '.join(names) or 'none'})")
    j = np.asarray(mat["joints"], dtype=np.float64)
    if j.ndim != 3:
        raise DataError(path, f"'joints' has shape {j.shape}, expected 14 x 3 x N (LSPET) or 3 x 14 x N (LSP)")
    if j.shape[:2] == (14, 3):  # LSPET: flag 1 = labelled
        out = j.transpose(2, 0, 1).copy()
    elif j.shape[:2] == (3, 14):  # LSP: flag 0 = visible, 1 = occluded (all joints labelled)
        out = j.transpose(2, 1, 0).copy()
        out[..., 2] = 1.0
    elif j.shape[1:] == (14, 3):
        out = j.copy()
    else:
        raise DataError(path, f"'joints' has shape {j.shape}, expected 14 x 3 x N (LSPET) or 3 x 14 x N (LSP)")
    if out.shape[0] == 0:
        raise DataError(path, "'joints' holds no people")
    flags = out[..., 2]
    if not np.isin(flags, (0.0, 1.0)).all():
        raise DataError(path, f"visibility flags must be 0 or 1, found {sorted(set(np.unique(flags).tolist()))[:6]}")
    if not np.isfinite(out[..., :2][flags > 0]).all():
        raise DataError(path, "labelled joints with non-finite coordinates")
    return out


def lsp_to_coco(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(14, 3) LSP joints → COCO-17 keypoints (17, 2) and visibility (17,) (2 labelled, 0 not)."""
    kpts = np.zeros((17, 2))
    vis = np.zeros(17)
    for c, s in LSP_TO_COCO.items():
        if joints[s, 2] > 0:
            kpts[c] = joints[s, :2]
            vis[c] = 2.0
    return kpts, vis


def lsp_box(joints: np.ndarray, margin: float = 0.1) -> np.ndarray | None:
    """Person box (x, y, w, h) from the labelled joints (head top and neck included), grown by
    ``margin`` of its size on every side (the joints are centres of limbs, COCO boxes hug the
    outline); None when fewer than two joints are labelled."""
    lab = joints[joints[:, 2] > 0, :2]
    if len(lab) < 2:
        return None
    lo, hi = lab.min(0), lab.max(0)
    size = np.maximum(hi - lo, 8.0)
    lo = lo - margin * size
    size = size * (1 + 2 * margin)
    return np.array([lo[0], lo[1], size[0], size[1]])


def lsp_image_name(index: int, digits: int = 5) -> str:
    """File name of the ``index``-th person (0-based): im00001.jpg (LSPET, 5 digits) or im0001.jpg (LSP, 4)."""
    return f"im{index + 1:0{digits}d}.jpg"


def _digits(image_dir: Path, count: int) -> int:
    for digits in (5, 4):
        if (image_dir / lsp_image_name(0, digits)).is_file():
            return digits
    return 5 if count > 2000 else 4


def lsp_samples(root: str | Path, *, ids: set[int] | None = None, exclude: set[int] | None = None,
                images: str | Path | None = None, check_images: bool = True,
                min_joints: int = 2) -> list[PersonSample]:
    """One COCO-17 sample per LSP person of ``root``: a folder holding ``joints.mat`` and ``images/``,
    or the joints file itself (any name; ``images/`` beside it).

    ``ids`` keeps only these image ids (1-based), ``exclude`` leaves these out. Each sample's
    ``extra`` holds the 14 LSP joints (``lsp_joints``) and ``keypoint_labels`` ('h' human,
    '-' unlabelled per COCO keypoint)."""
    mat = Path(root)
    if not mat.is_file():
        mat = mat / "joints.mat"
    root = mat.parent
    joints = read_lsp_joints(mat)
    image_dir = Path(images) if images else root / "images"
    if check_images and not image_dir.is_dir():
        raise DataError(image_dir, f"image folder of {mat} not found")
    n = joints.shape[0]
    digits = _digits(image_dir, n)
    samples = []
    for i in range(n):
        image_id = i + 1
        if ids is not None and image_id not in ids:
            continue
        if exclude and image_id in exclude:
            continue
        j = joints[i]
        if int((j[:, 2] > 0).sum()) < min_joints:
            continue
        kpts, vis = lsp_to_coco(j)
        if not (vis > 0).any():
            continue
        path = image_dir / lsp_image_name(i, digits)
        if check_images and not path.is_file():
            raise DataError(path, f"image of person {image_id} (listed in {mat}) not found")
        samples.append(PersonSample(
            image_path=path, image_id=image_id, bbox=lsp_box(j), keypoints=kpts, visible=vis, ann_id=image_id,
            extra={"lsp_joints": j, "keypoint_labels": "".join("h" if v > 0 else "-" for v in vis)},
        ))
    return samples


def torso_sizes(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Torso diameter per person for PCK (the standard LSP protocol): distance from the left
    shoulder to the right hip; the right shoulder to the left hip where that pair is unlabelled;
    NaN where neither diagonal is labelled. Inputs are COCO-17 (N, 17, 2) and (N, 17)."""
    lsho, rsho, lhip, rhip = 5, 6, 11, 12
    d1 = np.linalg.norm(keypoints[:, lsho] - keypoints[:, rhip], axis=-1)
    d2 = np.linalg.norm(keypoints[:, rsho] - keypoints[:, lhip], axis=-1)
    ok1 = (visible[:, lsho] > 0) & (visible[:, rhip] > 0)
    ok2 = (visible[:, rsho] > 0) & (visible[:, lhip] > 0)
    return np.where(ok1, d1, np.where(ok2, d2, np.nan))


PCK_GROUPS = {"Shoulder": (5, 6), "Elbow": (7, 8), "Wrist": (9, 10), "Hip": (11, 12), "Knee": (13, 14),
              "Ankle": (15, 16)}


PCK_LIMBS = list(range(5, 17))


def pck_joints(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
               thr: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCK@thr per joint: ``(hit (N, K), labelled (N, K), has_torso (N,))``. A joint is labelled when
    its label is and its person has a torso size; it is a hit when labelled and within ``thr`` torso
    sizes of the label."""
    torso = torso_sizes(gt, visible)
    ok = np.isfinite(torso) & (torso > 0)
    err = np.linalg.norm(pred - gt, axis=-1) / np.where(ok, torso, 1.0)[:, None]
    lab = (np.asarray(visible) > 0) & ok[:, None]
    return (err <= thr) & lab, lab, ok


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, thr: float = 0.2) -> dict[str, float]:
    """PCK@thr by torso size over the 12 limb joints (COCO-17 layout in, percentages out).

    A joint counts when it is labelled and its person has a torso size; the mean is over all such
    joints (people without a labelled torso diagonal are left out and counted in ``people_skipped``).
    """
    hit, lab, ok = pck_joints(pred, gt, visible, thr)
    out = {}
    for name, ids in PCK_GROUPS.items():
        cnt = lab[:, ids].sum()
        out[name] = float(100.0 * hit[:, ids].sum() / cnt) if cnt else float("nan")
    total = lab[:, PCK_LIMBS].sum()
    out[f"PCK@{thr:g}"] = float(100.0 * hit[:, PCK_LIMBS].sum() / total) if total else float("nan")
    out["people"] = float(ok.sum())
    out["people_skipped"] = float((~ok).sum())
    return out
