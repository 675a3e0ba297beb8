"""``predict`` on real photos: overlays, COCO results that pycocotools loads, video tracking."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from starpose.cli import main

from conftest import COCO_DET, COCO_DIR, COCO_JSON, shared


def test_predict_with_detections_writes_loadable_results(tmp_path):
    r = CliRunner().invoke(main, ["predict", str(shared(COCO_DIR) / "000000000785.jpg"), str(shared(COCO_DIR) / "000000196141.jpg"),
                                  "--weights", "random", "--det", str(shared(COCO_DET)), "--det-thr", "0.5",
                                  "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "results.json").read_text())
    assert {d["image_id"] for d in res} == {785, 196141}
    assert all(len(d["keypoints"]) == 51 for d in res)
    from pycocotools.coco import COCO

    COCO(str(shared(COCO_JSON))).loadRes(str(tmp_path / "results.json"))
    overlay = cv2.imread(str(tmp_path / "000000000785_pose.jpg"))
    assert overlay.shape == (425, 640, 3)


def test_predict_sample_single_person(tmp_path):
    r = CliRunner().invoke(main, ["predict", "--sample", "--weights", "random", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    for name in ("basketball_pose.jpg", "astronaut_pose.jpg"):
        overlay = cv2.imread(str(tmp_path / name))
        assert overlay is not None and overlay.ndim == 3, name
    images = json.loads((tmp_path / "images.json").read_text())["images"]
    assert sorted(i["file_name"] for i in images) == ["astronaut.jpg", "basketball.png"]


def test_predict_video_tracks_and_smooths(tmp_path):
    src = cv2.imread(str(shared(COCO_DIR) / "000000000785.jpg"))
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (src.shape[1], src.shape[0]))
    for dx in range(0, 12, 2):  # the skier drifts right
        w.write(np.roll(src, dx, axis=1))
    w.release()
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["predict", str(video), "--weights", "random", "--out", str(out)])
    assert r.exit_code == 0, r.output
    cap = cv2.VideoCapture(str(out / "clip_pose.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert len(json.loads((out / "results.json").read_text())) == 6
    assert not list(out.glob(".*"))  # no temp files left behind


def test_predict_bad_inputs(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["predict", str(tmp_path / "nope.jpg"), "--weights", "random"])
    assert r.exit_code != 0 and "nope.jpg" in r.output and "no such file" in r.output
    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    r = runner.invoke(main, ["predict", str(txt), "--weights", "random"])
    assert r.exit_code != 0 and "unsupported file type" in r.output
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"garbage")
    r = runner.invoke(main, ["predict", str(bad), "--weights", "random", "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "broken.jpg" in r.output and "cannot decode" in r.output
