"""Several people: IoU matching, the multi-person tracker, and ``predict`` with the bundled
detector on real photos and a made-up video."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from starpose.cli import main
from starpose.spec import COCO_SPEC
from starpose.tracking import MultiPersonTracker, box_iou_xywh, match_by_iou, torso_indices

from conftest import COCO_DIR, COCO_JSON, shared

TORSO = torso_indices(COCO_SPEC.keypoint_names)


def test_box_iou_and_greedy_matching():
    assert box_iou_xywh([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert box_iou_xywh([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    tracks = [[0, 0, 10, 10], [100, 0, 10, 10], [40, 0, 10, 10]]
    dets = [[101, 0, 10, 10], [1, 0, 10, 10], [3, 0, 10, 10], [300, 0, 5, 5]]
    assert match_by_iou(tracks, dets, 0.3) == [(0, 1), (1, 0)]  # (0, 2) loses to the better (0, 1)
    assert match_by_iou(tracks, dets, 0.9) == []
    assert match_by_iou([], dets) == [] and match_by_iou(tracks, []) == []


def _person(cx: float, cy: float, size: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """COCO keypoints of an upright person centred at (cx, cy), all visible."""
    kp = np.zeros((17, 2))
    kp[:, 0] = cx
    kp[:, 1] = cy - 0.4 * size
    kp[5:11:2, 0], kp[6:11:2, 0] = cx + 0.15 * size, cx - 0.15 * size  # left/right arms
    kp[5:7, 1], kp[7:9, 1], kp[9:11, 1] = cy - 0.25 * size, cy - 0.05 * size, cy + 0.1 * size
    kp[11::2, 0], kp[12::2, 0] = cx + 0.1 * size, cx - 0.1 * size  # hips, knees, ankles
    kp[11:13, 1], kp[13:15, 1], kp[15:17, 1] = cy + 0.05 * size, cy + 0.3 * size, cy + 0.5 * size
    return kp, np.ones(17)


def test_multi_person_tracker_follows_detects_and_drops():
    tr = MultiPersonTracker((640, 480), TORSO, detect_every=3, max_people=2, smoothing=None)
    assert tr.due()
    tr.assign([np.array([50, 100, 100, 200.0]), np.array([400, 100, 100, 200.0]), np.array([250, 0, 50, 50.0])],
              [0.9, 0.8, 0.3])
    assert [t.id for t in tr.tracks] == [0, 1]  # max_people: the third (worst) box starts no track
    for frame in range(3):  # both walk right by 5 px a frame; no detector needed until frame 3
        for t, cx in zip(tr.tracks, (100 + 5 * frame, 450 + 5 * frame)):
            tr.update(t, *_person(cx, 200))
        tr.advance()
        assert tr.due() == (frame == 2)
    # detections in swapped order still go to the right tracks (IoU matching)
    a, b = tr.tracks[0].box.copy(), tr.tracks[1].box.copy()
    tr.assign([b + [2, 0, 0, 0], a + [2, 0, 0, 0]], [0.7, 0.6])
    assert [t.id for t in tr.tracks] == [0, 1]
    np.testing.assert_allclose(tr.tracks[0].box, a + [2, 0, 0, 0])
    # a person whose torso disappears is dropped and forces a detection next frame
    kp, sc = _person(115, 200)
    sc[[5, 6]] = 0.0
    tr.update(tr.tracks[0], kp, sc)
    tr.update(tr.tracks[1], *_person(465, 200))
    tr.advance()
    assert [t.id for t in tr.tracks] == [1] and tr.due()
    # a new person gets a new id; a detector that sees nobody ends every track
    tr.assign([tr.tracks[0].box, np.array([100, 100, 100, 200.0])])
    assert [t.id for t in tr.tracks] == [1, 2]
    tr.assign([])
    assert tr.tracks == [] and tr.due()


def test_multi_person_tracker_merges_converged_tracks():
    tr = MultiPersonTracker((640, 480), TORSO, detect_every=10, max_people=5, smoothing=None)
    tr.assign([np.array([50, 100, 100, 200.0]), np.array([60, 100, 100, 200.0])])
    kp, sc = _person(100, 200)
    tr.update(tr.tracks[0], kp, sc)
    tr.update(tr.tracks[1], kp + 1, sc * 0.5)  # same person, less sure
    tr.advance()
    assert [t.id for t in tr.tracks] == [0]
    with pytest.raises(ValueError, match="detect_every"):
        MultiPersonTracker((640, 480), TORSO, detect_every=0)


def test_predict_finds_every_person_on_the_fixture(tmp_path):
    coco = json.loads(shared(COCO_JSON).read_text())
    image = next(i for i in coco["images"] if i["id"] == 196141)
    people = [a for a in coco["annotations"] if a["image_id"] == 196141 and a["num_keypoints"] >= 5]
    assert len(people) >= 2
    r = CliRunner().invoke(main, ["predict", str(shared(COCO_DIR) / image["file_name"]), "--weights", "random",
                                  "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "results.json").read_text())
    assert len(res) >= len(people)
    r = CliRunner().invoke(main, ["predict", str(shared(COCO_DIR) / image["file_name"]), "--weights", "random",
                                  "--max-people", "1", "--out", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    assert len(json.loads((tmp_path / "one" / "results.json").read_text())) == 1
    r = CliRunner().invoke(main, ["predict", str(shared(COCO_DIR) / image["file_name"]), "--weights", "random",
                                  "--no-detector", "--out", str(tmp_path / "single")])
    assert r.exit_code == 0, r.output
    assert len(json.loads((tmp_path / "single" / "results.json").read_text())) == 1


def test_predict_video_tracks_several_people(tmp_path):
    src = cv2.imread(str(shared(COCO_DIR) / "000000196141.jpg"))
    video = tmp_path / "group.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (src.shape[1], src.shape[0]))
    for dx in range(0, 16, 2):
        w.write(np.roll(src, dx, axis=1))
    w.release()
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["predict", str(video), "--weights", "random", "--detect-every", "3",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    per_frame = np.bincount([d["image_id"] for d in res], minlength=8)
    assert len(per_frame) == 8 and per_frame[0] >= 2
    cap = cv2.VideoCapture(str(out / "group_pose.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    assert not list(out.glob(".*"))


@pytest.mark.parametrize("shape", [(1, 1), (1, 40)])
def test_predict_too_small_image_names_the_file(tmp_path, shape):
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((*shape, 3), np.uint8))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["predict", str(tiny), "--weights", "random", "--out", str(out)])
    assert r.exit_code != 0 and "tiny.png" in r.output and "too small" in r.output
    assert not list(out.glob("*_pose.jpg"))


def test_predict_grey_and_rgba_photos(tmp_path):
    rgb = cv2.imread(str(shared(COCO_DIR) / "000000196141.jpg"))
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "alpha.png"), cv2.cvtColor(rgb, cv2.COLOR_BGR2BGRA))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["predict", str(tmp_path / "grey.png"), str(tmp_path / "alpha.png"),
                                  "--weights", "random", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert {d["image_id"] for d in res} == {0, 1}
