"""starpose.detect: the detector's contract, its numpy reference processing, the port's weights
and its person recall on real photos."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from starpose.detect.processing import (
    Letterbox,
    anchor_points,
    box_iou,
    boxes_to_image,
    check_image,
    decode,
    letterbox,
    letterbox_transform,
    nms,
    normalize,
    postprocess,
)
from starpose.detect.spec import PERSON_DETECTOR_SPEC, DetectorSpec

from conftest import COCO_DIR, COCO_JSON, shared

SPEC = PERSON_DETECTOR_SPEC


def test_spec_validates_and_round_trips():
    with pytest.raises(ValueError, match="multiples of 32"):
        DetectorSpec(input_size=(250, 256))
    with pytest.raises(ValueError, match="score_threshold"):
        DetectorSpec(score_threshold=1.5)
    with pytest.raises(ValueError, match="max_detections"):
        DetectorSpec(max_detections=0)
    assert SPEC.input_size == (160, 224) and SPEC.version == 3  # (w, h): an upright phone frame
    assert SPEC.num_anchors == 20 * 28 + 10 * 14 + 5 * 7
    assert DetectorSpec.from_dict(json.loads(json.dumps(SPEC.to_dict()))) == SPEC
    assert SPEC.with_input_size(320, 192).num_anchors == 40 * 24 + 20 * 12 + 10 * 6


def test_letterbox_transform_and_image():
    lb = letterbox_transform((640, 480), (256, 256))
    assert lb.scale == pytest.approx(0.4) and lb.size == (256, 192)
    lb = letterbox_transform((100, 1000), (256, 256))
    assert lb.size == (26, 256)
    with pytest.raises(ValueError, match="empty"):
        letterbox_transform((0, 10), (256, 256))
    img = np.full((480, 640, 3), 200, np.uint8)
    canvas, lb = letterbox(img, SPEC.with_input_size(256, 256))
    assert canvas.shape == (256, 256, 3) and canvas.dtype == np.uint8
    assert (canvas[:192] == 200).all() and (canvas[192:] == SPEC.pad_value).all()
    # a 192x256 (w x h) input holds an upright 480x640 frame whole, with no padding; the packaged
    # 160x224 one at scale 1/3, with the last 11 rows padding
    canvas, lb = letterbox(img.transpose(1, 0, 2).copy(), SPEC.with_input_size(192, 256))
    assert canvas.shape == (256, 192, 3) and lb.size == (192, 256) and (canvas == 200).all()
    canvas, lb = letterbox(img.transpose(1, 0, 2).copy(), SPEC)
    assert canvas.shape == (224, 160, 3) and lb.size == (160, 213) and lb.scale == pytest.approx(1 / 3)
    assert (canvas[:213] == 200).all() and (canvas[213:] == SPEC.pad_value).all()


def test_oriented_turns_the_input_to_the_frame():
    assert SPEC.oriented((480, 640)) is SPEC  # portrait frame, portrait input
    assert SPEC.oriented((640, 480)).input_size == (224, 160)
    assert SPEC.oriented((500, 500)) is SPEC  # a square frame keeps the input as it is
    square = SPEC.with_input_size(256, 256)
    assert square.oriented((640, 480)) is square
    turned = SPEC.oriented((1920, 1080))
    assert turned.num_anchors == SPEC.num_anchors and turned.with_input_size(160, 224) == SPEC


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8), np.uint8), "RGB image"),
    (np.zeros((8, 8, 4), np.uint8), "RGB image"),
    (np.zeros((1, 1, 3), np.uint8), "too small"),
    (np.zeros((0, 5, 3), np.uint8), "too small"),
    (np.zeros((8, 8, 3), np.float32), "uint8"),
])
def test_check_image_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        check_image(bad, "frame.png")


def test_anchor_points_order():
    centres, strides = anchor_points(DetectorSpec(input_size=(64, 32)))
    assert len(centres) == 8 * 4 + 4 * 2 + 2 * 1
    assert centres[0].tolist() == [4.0, 4.0] and centres[1].tolist() == [12.0, 4.0]  # row-major
    assert centres[8].tolist() == [4.0, 12.0]
    assert centres[32].tolist() == [8.0, 8.0] and strides[32] == 16
    assert centres[-1].tolist() == [48.0, 16.0] and strides[-1] == 32


def test_decode_one_peaked_anchor():
    spec = DetectorSpec(input_size=(64, 64))
    n = spec.num_anchors
    logits = np.full(n, -20.0)
    box = np.zeros((n, 4, spec.num_bins))
    i = 9  # stride-8 cell (col 1, row 1): centre (12, 12)
    logits[i] = 2.0
    for side, bin_ in enumerate((1, 1, 2, 3)):
        box[i, side, bin_] = 50.0  # a one-hot distribution: distance = bin * stride
    boxes, scores = decode(logits, box, spec)
    assert scores[i] == pytest.approx(1 / (1 + np.exp(-2.0)))
    np.testing.assert_allclose(boxes[i], [12 - 8, 12 - 8, 12 + 16, 12 + 24], atol=1e-9)
    uniform = boxes[0]  # uniform over 0..10: expectation 5 strides, clipped to the input
    np.testing.assert_allclose(uniform, [0, 0, 4 + 40, 4 + 40])
    with pytest.raises(ValueError, match="anchors"):
        decode(logits[:-1], box[:-1], spec)


def test_nms_rules():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.9, 0.1])
    keep = nms(boxes, scores, 0.2, 0.6, 10)
    assert keep.tolist() == [0, 2]  # 3 ties with 0 (lower index first) and overlaps it; 4 is below 0.2
    assert nms(boxes, scores, 0.2, 0.6, 1).tolist() == [0]
    assert nms(boxes, scores, 0.0, 1.0, 10).tolist() == [0, 3, 1, 2, 4]
    assert nms(boxes[:0], scores[:0], 0.2, 0.6, 5).tolist() == []
    assert box_iou(boxes[0], boxes[1])[0] == pytest.approx(81 / 100)


def test_boxes_to_image_and_postprocess():
    lb = Letterbox(0.5, (200, 100))
    out = boxes_to_image(np.array([[10, 20, 50, 60], [190, 90, 250, 120.0]]), lb, (400, 200))
    np.testing.assert_allclose(out, [[20, 40, 80, 80], [380, 180, 20, 20]])
    spec = DetectorSpec(input_size=(64, 64))
    logits = np.full(spec.num_anchors, -20.0)
    logits[[9, 10]] = [3.0, 2.0]
    box = np.zeros((spec.num_anchors, 4, spec.num_bins))
    box[[9, 10], :, 2] = 50.0  # 16 px each side: (0, 0, 28, 28) and (4, 0, 36, 28) after clipping
    boxes, scores = postprocess(logits, box, spec, Letterbox(0.5, (64, 64)), (128, 128))
    assert len(boxes) == 1  # IoU 672 / 1008 = 0.67 > 0.6: the weaker neighbour is suppressed
    np.testing.assert_allclose(boxes[0], [0, 0, 56, 56])
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_network_shapes_and_packaged_weights():
    from starpose.detect.nanodet import NanoDetPerson, create_detector
    from starpose.detect.weights import DETECTOR_WEIGHTS, detector_weights_metadata

    model = create_detector()
    for size in ((256, 256), (320, 192)):
        spec = SPEC.with_input_size(*size)
        with torch.no_grad():
            logits, box = NanoDetPerson(spec)(torch.zeros(1, 3, size[1], size[0]))
        assert logits.shape == (1, spec.num_anchors) and box.shape == (1, spec.num_anchors, 4, spec.num_bins)
    assert sum(p.numel() for p in model.parameters()) == 3_755_495
    meta = detector_weights_metadata()
    assert "Apache-2.0" in meta["upstream"] and "human-models" in meta["source_package"]
    assert (DETECTOR_WEIGHTS.parent / "LICENSE").read_text().count("Apache License") >= 1


def test_weights_that_do_not_fit_fail_clearly(tmp_path):
    from safetensors.torch import save_file

    from starpose.detect.nanodet import create_detector
    from starpose.detect.weights import load_detector_weights

    bad = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(3)}, str(bad))
    with pytest.raises(ValueError, match="other.safetensors.*does not fit"):
        load_detector_weights(create_detector(pretrained=False), bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors"):
        load_detector_weights(create_detector(pretrained=False), junk)


def _recall(detector, ann_file, img_dir, thr=0.5):
    from starpose.data.topdown import read_image_rgb
    from starpose.tracking import box_iou_xywh

    data = json.loads(ann_file.read_text())
    gts: dict = {}
    for a in data["annotations"]:
        if not a.get("iscrowd") and a.get("num_keypoints", 0) >= 5:
            gts.setdefault(a["image_id"], []).append(a["bbox"])
    hit = total = 0
    for im in data["images"]:
        boxes = [d.box for d in detector(read_image_rgb(img_dir / im["file_name"]))]
        used = set()
        for b in boxes:  # best first
            cands = [(box_iou_xywh(b, g), j) for j, g in enumerate(gts.get(im["id"], [])) if j not in used]
            best = max(cands, default=(0.0, -1))
            if best[0] >= thr:
                used.add(best[1])
        hit += len(used)
        total += len(gts.get(im["id"], []))
    return hit / total


def test_recall_on_the_coco_fixture():
    from starpose.detect import load_detector

    torch.set_num_threads(1)
    assert _recall(load_detector(), shared(COCO_JSON), shared(COCO_DIR)) >= 0.9


def test_eager_detector_matches_reference_processing():
    """The detector's boxes are the numpy reference applied to the network's raw outputs."""
    from starpose.data.topdown import read_image_rgb
    from starpose.detect import load_detector

    det = load_detector()
    image = read_image_rgb(shared(COCO_DIR) / "000000196141.jpg")
    size = (image.shape[1], image.shape[0])
    spec = SPEC.oriented(size)
    assert det.spec_for(image) == spec and (spec.input_size[0] > spec.input_size[1]) == (size[0] > size[1])
    canvas, lb, logits, box = det.raw(image)
    np.testing.assert_array_equal(canvas, letterbox(image, spec)[0])
    with torch.no_grad():
        ref_logits, ref_box = det.model(torch.from_numpy(normalize(canvas, spec))[None])
    np.testing.assert_array_equal(logits, ref_logits[0].numpy())
    boxes, scores = postprocess(logits, box, spec, lb, size)
    found = det(image)
    assert len(found) == len(boxes) >= 2
    np.testing.assert_allclose([d.box for d in found], boxes)
    # orient=False letterboxes into the input as given: what a fixed-size artifact computes
    fixed = load_detector(orient=False)
    assert fixed.spec_for(image) == SPEC and fixed.raw(image)[0].shape == (224, 160, 3)


def test_eval_with_our_boxes(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main
    from starpose.detect import load_detector
    from starpose.detect.coco import detect_coco_images

    dets = detect_coco_images(load_detector(), shared(COCO_JSON), shared(COCO_DIR), max_detections=3)
    per_image: dict = {}
    for d in dets:
        per_image.setdefault(d["image_id"], []).append(d)
        assert d["category_id"] == 1 and d["score"] >= 0.05 and d["bbox"][2] > 0
    assert len(per_image) == 4 and all(len(v) <= 3 for v in per_image.values())
    assert all(v[0]["score"] >= v[-1]["score"] for v in per_image.values())
    out = tmp_path / "metrics.json"
    r = CliRunner().invoke(main, ["eval", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
                                  "--boxes", "ours", "--weights", "random", "--no-flip", "--json", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert report["boxes"] == "ours" and report["num_people"] >= 12 and 0.0 <= report["metrics"]["AP"] <= 1.0


def _spy_on_load_detector(monkeypatch) -> list:
    """Record the spec each ``load_detector`` call gets, then load the real detector."""
    import starpose.detect as detect
    from starpose.detect.detector import load_detector

    specs = []

    def spy(weights="default", spec=None, orient=True):
        specs.append(spec or SPEC)
        return load_detector(weights, spec, orient)

    monkeypatch.setattr(detect, "load_detector", spy, raising=False)
    return specs


@pytest.mark.parametrize("option, size", [([], (160, 224)), (["--detector-input", "256x192"], (192, 256))])
def test_predict_detector_input_sets_the_detectors_input(tmp_path, monkeypatch, option, size):
    from click.testing import CliRunner

    from starpose.cli import main

    specs = _spy_on_load_detector(monkeypatch)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["predict", "--sample", "--weights", "random", "--out", str(out), *option])
    assert r.exit_code == 0, r.output
    assert [s.input_size for s in specs] == [size]
    assert (out / "results.json").is_file()


def test_eval_detector_input_sets_the_detectors_input(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from starpose.cli import main

    specs = _spy_on_load_detector(monkeypatch)
    r = CliRunner().invoke(main, ["eval", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
                                  "--boxes", "ours", "--detector-input", "256x192", "--weights", "random",
                                  "--no-flip"])
    assert r.exit_code == 0, r.output
    assert [s.input_size for s in specs] == [(192, 256)]
