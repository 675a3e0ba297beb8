"""The export bundle against the numpy reference, metadata schema, manifest and staged writes.

No exporter dependency is needed here: these tests run the bundle in eager PyTorch on real
person crops from the COCO fixture."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import starpose
from mobile_export.base import Staging
from mobile_export.bundle import PoseBundle
from mobile_export.manifest import check_entry, describe_path, read_manifest, update_manifest
from mobile_export.metadata import (
    MetadataError,
    WeightsInfo,
    build_metadata,
    dumps,
    parse_metadata,
    state_dict_sha256,
)
from mobile_export.parity import coco_crops
from mobile_export.source import WeightsError, reference_model, resolve_model
from starpose.processing import decode_simcc, keypoints_to_image, normalize_image
from starpose.spec import CROWDPOSE_SPEC

from conftest import COCO_JSON, shared

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return starpose.create_model("starpose_t").eval()


@pytest.fixture(scope="module")
def crops(model):
    return coco_crops(shared(COCO_JSON), model.spec)


def _reference(model, crop):
    spec = model.spec
    x = torch.from_numpy(normalize_image(crop.image, spec.mean, spec.std)[None])
    with torch.no_grad():
        sx, sy = (t.numpy() for t in model(x))
    kp, sc = decode_simcc(sx, sy, spec.simcc_split_ratio)
    return kp, sc, sx, sy


def test_crops_are_real_person_crops(crops, model):
    assert len(crops) == 14  # every non-crowd GT box of the 4 fixture images
    for c in crops:
        assert c.image.shape == (model.spec.input_h, model.spec.input_w, 3) and c.image.dtype == np.uint8
        assert c.image.std() > 10  # real pixels, not padding
        np.testing.assert_allclose(c.image_to_crop[:, :2] @ c.crop_to_image[:, :2], np.eye(2), atol=1e-9)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_bundle_matches_numpy_reference(model, crops, layout):
    bundle = PoseBundle(model, model.spec, layout=layout, raw=True).eval()
    for crop in crops:
        kp_ref, sc_ref, sx_ref, sy_ref = _reference(model, crop)
        img = crop.image if layout == "NHWC" else crop.image.transpose(2, 0, 1)
        with torch.no_grad():
            kp, sc, sx, sy = (t.numpy() for t in bundle(torch.from_numpy(np.ascontiguousarray(img))[None]))
        # Same float32 normalization and network: bit-identical SimCC, identical decode.
        np.testing.assert_array_equal(sx, sx_ref)
        np.testing.assert_array_equal(sy, sy_ref)
        np.testing.assert_array_equal(kp, kp_ref)
        np.testing.assert_array_equal(sc, sc_ref)
        assert kp.dtype == np.float32 and sc.dtype == np.float32


def test_bundle_affine_gives_image_pixels(model, crops):
    bundle = PoseBundle(model, model.spec, affine=True).eval()
    for crop in crops[:4]:
        kp_ref, _, _, _ = _reference(model, crop)
        want = keypoints_to_image(kp_ref, crop.crop_to_image)
        mat = torch.from_numpy(crop.crop_to_image.astype(np.float32))[None]
        with torch.no_grad():
            kp, _ = bundle(torch.from_numpy(crop.image)[None], mat)
        np.testing.assert_allclose(kp.numpy(), want, atol=1e-3)  # float32 vs float64 affine
    with pytest.raises(ValueError, match="crop_to_image"):
        bundle(torch.from_numpy(crops[0].image)[None])


def test_bundle_invalid_keypoints_like_reference(crops):
    """Keypoints whose SimCC maxima are <= 0 get location -1, exactly as decode_simcc does."""
    torch.manual_seed(1)
    model = starpose.create_model("starpose_t").eval()
    head = model.head
    with torch.no_grad():
        even = torch.arange(0, 17, 2)
        head.final_layer.weight[even] = 0.0  # even keypoints: a zero feature map …
        head.final_layer.bias[even] = 0.0
        head.final_layer.weight[1::2] *= 50.0  # odd keypoints: large responses of both signs
        head.mlp_head_x.bias.fill_(-3.0)  # … so their SimCC is the bias: all negative
        head.mlp_head_y.bias.fill_(-3.0)
    bundle = PoseBundle(model, model.spec).eval()
    seen_invalid = seen_valid = 0
    for crop in crops[:3]:
        kp_ref, sc_ref, _, _ = _reference(model, crop)
        with torch.no_grad():
            kp, sc = (t.numpy() for t in bundle(torch.from_numpy(crop.image)[None]))
        np.testing.assert_array_equal(kp, kp_ref)
        np.testing.assert_array_equal(sc, sc_ref)
        invalid = sc[0] <= 0
        assert np.all(kp[0][invalid] == -1.0)
        seen_invalid += int(invalid.sum())
        seen_valid += int((~invalid).sum())
    assert seen_invalid >= 3 * 9 and seen_valid > 0


def _tiny_coco(root: Path, file_name: str) -> Path:
    """A one-person COCO json written by the test, its photo (a generated image) in root/images."""
    import cv2

    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "images" / "a.png"), rng.integers(0, 255, (120, 90, 3), dtype=np.uint8))
    doc = {"images": [{"id": 1, "file_name": file_name, "width": 90, "height": 120}],
           "annotations": [{"id": 5, "image_id": 1, "bbox": [10, 10, 60, 90], "iscrowd": 0,
                            "num_keypoints": 0, "keypoints": [0] * 51, "category_id": 1}],
           "categories": [{"id": 1, "name": "person"}]}
    path = root / "ann.json"
    path.write_text(json.dumps(doc))
    return path


def test_parity_crops_read_from_an_images_folder_and_stay_inside_it(model, tmp_path):
    ann = _tiny_coco(tmp_path, "a.png")
    with pytest.raises(ValueError, match="a.png: image missing"):
        coco_crops(ann, model.spec)  # looked up next to the json
    crops = coco_crops(ann, model.spec, image_dir=tmp_path / "images")
    assert len(crops) == 1 and crops[0].image.shape == (*model.spec.input_size[::-1], 3)
    for bad, problem in (("../images/a.png", "climbs out"), (str(tmp_path / "images" / "a.png"), "is absolute")):
        ann = _tiny_coco(tmp_path, bad)
        with pytest.raises(ValueError, match=problem) as e:
            coco_crops(ann, model.spec, image_dir=tmp_path / "images")
        assert str(ann) in str(e.value)


def test_bundle_rejects_bad_layout(model):
    with pytest.raises(ValueError, match="layout"):
        PoseBundle(model, model.spec, layout="NWHC")


# ----------------------------------------------------------------------------- metadata


def _meta(model, **kw):
    args = dict(variant="starpose_t", weights=WeightsInfo("random-seed0", "a" * 64, "random", 0), fmt="executorch",
                precision="fp32", backend="xnnpack", layout="NHWC", affine=False, raw=False)
    args.update(kw)
    return build_metadata(model.spec, **args)


def test_metadata_from_spec(model):
    meta = _meta(model, affine=True, raw=True)
    assert meta["format_version"] == 1
    assert meta["spec"] == model.spec.to_dict()
    assert meta["input"] == {"name": "image", "dtype": "uint8", "color": "RGB", "layout": "NHWC", "width": 192,
                             "height": 256, "normalization": "in_graph", "type": "tensor"}
    assert list(meta["outputs"]) == ["keypoints", "scores", "simcc_x", "simcc_y"]
    assert meta["outputs"]["keypoints"] == {"shape": [1, 17, 2], "units": "image pixels"}
    assert meta["outputs"]["simcc_y"]["shape"] == [1, 17, 512]
    assert meta["affine_input"] == {"name": "crop_to_image", "shape": [1, 2, 3], "present": True}
    assert meta["model"]["package_version"] == starpose.__version__
    assert meta["model"]["weights_source"] == "random" and meta["model"]["seed"] == 0
    assert parse_metadata(dumps(meta), "x") == meta


def _broken(meta, path, value):
    d = json.loads(json.dumps(meta))
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return json.dumps(d)


@pytest.mark.parametrize(
    "path,value,error",
    [
        ("format_version", 2, "format_version"),
        ("input.layout", "NWHC", "input.layout"),
        ("input.width", 190, "input.width"),
        ("input.width", "192", "input.width"),
        ("spec.num_keypoints", 16, "spec.num_keypoints"),
        ("spec.skeleton", [[0, 17]], "spec.skeleton"),
        ("outputs.keypoints.shape", [1, 14, 2], "outputs.keypoints.shape"),
        ("outputs.keypoints.units", "image pixels", "outputs.keypoints.units"),
        ("outputs", {}, "outputs"),
        ("model.weights_sha256", "abc", "model.weights_sha256"),
        ("format", "onnx2", "format"),
    ],
)
def test_metadata_errors_name_the_path(model, path, value, error):
    with pytest.raises(MetadataError, match=r"^some\.json: " + error.replace(".", r"\.")):
        parse_metadata(_broken(_meta(model), path, value), "some.json")


def test_metadata_not_json():
    with pytest.raises(MetadataError, match="not valid JSON"):
        parse_metadata('{"format_version": 1,', "m.json")
    with pytest.raises(MetadataError, match="JSON object"):
        parse_metadata("[1, 2]", "m.json")


def test_metadata_parser_agrees_with_shared_golden_cases():
    """The cases the Kotlin and Swift parsers are tested against: same verdicts here."""
    cases = json.loads((GOLDEN / "metadata_cases.json").read_text())
    for case in cases["valid"]:
        doc = parse_metadata((GOLDEN / case["file"]).read_text(), case["file"])
        assert doc["spec"]["num_keypoints"] == case["expect"]["num_keypoints"]
        assert doc["input"]["layout"] == case["expect"]["layout"]
    for case in cases["invalid"]:
        with pytest.raises(MetadataError) as e:
            parse_metadata(case["text"], case["name"])
        assert case["error"] in str(e.value), (case["name"], str(e.value))


# ----------------------------------------------------------------------------- weights


def test_random_weights_are_reproducible_and_hashed():
    m1, w1 = resolve_model("starpose_t", "random", seed=3)
    m2, w2 = resolve_model("starpose_t", "random", seed=3)
    _, w3 = resolve_model("starpose_t", "random", seed=4)
    assert w1 == w2 and w1.sha256 != w3.sha256
    assert w1.sha256 == state_dict_sha256(m2.state_dict())
    assert (w1.source, w1.seed, w1.name) == ("random", 3, "random-seed3")


def test_default_weights_missing_gives_clear_error(monkeypatch, tmp_path):
    from starpose.models import weights

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "none")
    with pytest.raises(WeightsError, match=r"--weights PATH.*--weights random"):
        resolve_model("starpose_t", "default")


def test_weights_file(tmp_path):
    from safetensors.torch import save_file

    m, _ = resolve_model("starpose_t", "random", seed=5)
    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    m2, info = resolve_model("starpose_t", path)
    assert info.source == "file" and info.name == "mine"
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    with pytest.raises(WeightsError, match="not found"):
        resolve_model("starpose_t", tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="bad.pth"):
        resolve_model("starpose_t", bad)


def test_reference_model_checks_the_hash(model):
    _, info = resolve_model("starpose_t", "random", seed=0)
    meta = _meta(model, weights=info)
    ref = reference_model(meta)
    assert state_dict_sha256(ref.state_dict()) == info.sha256
    meta["model"]["weights_sha256"] = "b" * 64
    with pytest.raises(WeightsError, match="not the ones"):
        reference_model(meta)
    meta["model"].update(weights_source="file", weights="trained")
    with pytest.raises(WeightsError, match="--weights PATH"):
        reference_model(meta)


def test_reference_model_rebuilds_other_specs():
    _, info = resolve_model("starpose_t", "random", seed=2, spec=CROWDPOSE_SPEC)
    meta = build_metadata(CROWDPOSE_SPEC, variant="starpose_t", weights=info, fmt="tflite", precision="fp32",
                          backend="litert", layout="NHWC", affine=False, raw=False)
    assert reference_model(meta).spec.num_keypoints == 14


# ----------------------------------------------------------------------------- manifest, staging


def test_manifest_detects_one_flipped_byte(tmp_path):
    (tmp_path / "a.bin").write_bytes(bytes(range(256)) * 10)
    pkg = tmp_path / "b.mlpackage" / "Data"
    pkg.mkdir(parents=True)
    (pkg / "weights.bin").write_bytes(b"\x01" * 1000)
    (tmp_path / "b.mlpackage" / "Manifest.json").write_text("{}")
    update_manifest(tmp_path, {"a.bin": {"role": "model"}, "b.mlpackage": {"role": "model"}})
    doc = read_manifest(tmp_path)
    assert doc["artifacts"]["a.bin"]["size"] == 2560
    assert doc["artifacts"]["b.mlpackage"]["kind"] == "directory"
    assert set(doc["artifacts"]["b.mlpackage"]["files"]) == {"Data/weights.bin", "Manifest.json"}
    for name, entry in doc["artifacts"].items():
        assert check_entry(tmp_path, name, entry) == []

    data = bytearray((tmp_path / "a.bin").read_bytes())
    data[1234] ^= 0x01
    (tmp_path / "a.bin").write_bytes(bytes(data))
    (problem,) = check_entry(tmp_path, "a.bin", doc["artifacts"]["a.bin"])
    assert "sha256" in problem.problem and "changed after export" in problem.problem

    (pkg / "weights.bin").write_bytes(b"\x01" * 999 + b"\x02")
    (pkg / "extra.bin").write_bytes(b"x")
    problems = [str(p) for p in check_entry(tmp_path, "b.mlpackage", doc["artifacts"]["b.mlpackage"])]
    assert any("Data/weights.bin" in p and "sha256" in p for p in problems)
    assert any("Data/extra.bin" in p and "not in the manifest" in p for p in problems)


def test_manifest_merges_and_forgets_deleted(tmp_path):
    (tmp_path / "x.pte").write_bytes(b"1")
    update_manifest(tmp_path, {"x.pte": {"role": "model"}})
    (tmp_path / "y.tflite").write_bytes(b"2")
    update_manifest(tmp_path, {"y.tflite": {"role": "model"}})
    assert set(read_manifest(tmp_path)["artifacts"]) == {"x.pte", "y.tflite"}
    (tmp_path / "x.pte").unlink()
    (tmp_path / "z.pt").write_bytes(b"3")
    update_manifest(tmp_path, {"z.pt": {"role": "model"}})
    assert set(read_manifest(tmp_path)["artifacts"]) == {"y.tflite", "z.pt"}
    assert describe_path(tmp_path / "z.pt")["sha256"] == read_manifest(tmp_path)["artifacts"]["z.pt"]["sha256"]


def test_staging_leaves_nothing_on_failure(tmp_path):
    (tmp_path / "keep.pte").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with Staging(tmp_path) as stage:
            stage.write_bytes("keep.pte", b"new")
            d = stage.path("m.mlpackage")
            d.mkdir()
            (d / "f").write_text("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.pte"]
    assert (tmp_path / "keep.pte").read_bytes() == b"old"


def test_staging_replaces_directories(tmp_path):
    old = tmp_path / "m.mlpackage"
    old.mkdir()
    (old / "stale").write_text("x")
    with Staging(tmp_path) as stage:
        d = stage.path("m.mlpackage")
        d.mkdir()
        (d / "fresh").write_text("y")
        stage.commit()
    assert sorted(p.name for p in old.iterdir()) == ["fresh"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlpackage"]


_KILLED_EXPORT = r"""
import os, signal, sys
from pathlib import Path
from mobile_export import base

out, where = Path(sys.argv[1]), sys.argv[2]
real_replace = os.replace
def replace(src, dst):  # the directory swap: killed after moving the old artifact aside, before the new one lands
    real_replace(src, dst)
    if where == "swap" and Path(dst).name.startswith(".old-"):
        os.kill(os.getpid(), signal.SIGKILL)
base.os.replace = replace
with base.Staging(out) as stage:
    stage.write_bytes("a.pte", b"new a")
    d = stage.path("m.mlpackage")
    d.mkdir()
    (d / "fresh").write_text("new")
    if where == "write":
        os.kill(os.getpid(), signal.SIGKILL)
    stage.commit()
"""


def _killed_export(out: Path, where: str) -> None:
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, str(out), where], cwd=root, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


@pytest.mark.parametrize("where", ["write", "swap"])
def test_an_export_killed_mid_way_is_cleared_by_the_next(tmp_path, capsys, where):
    (tmp_path / "a.pte").write_bytes(b"old a")
    (tmp_path / "m.mlpackage").mkdir()
    (tmp_path / "m.mlpackage" / "stale").write_text("old")
    _killed_export(tmp_path, where)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left, "the kill left nothing behind: the test no longer reproduces an interrupted export"
    with Staging(tmp_path) as stage:
        assert len(stage.cleared) == len(left)
    assert f"{len(left)} leftover(s) of interrupted exports" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pte", "m.mlpackage"]
    # Killed while writing: both earlier artifacts untouched. Killed mid-swap: the files already renamed are
    # the new ones; the folder moved aside is put back (the previous complete package, nothing replaced it).
    assert (tmp_path / "a.pte").read_bytes() == (b"new a" if where == "swap" else b"old a")
    assert sorted(p.name for p in (tmp_path / "m.mlpackage").iterdir()) == ["stale"]


def test_staging_leaves_the_files_of_live_writers_other_hosts_and_old_versions(tmp_path):
    import subprocess
    import sys

    from mobile_export import base

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            f".tmp-0123abcd-p{live.pid}-h{base._HOST}-live.pte": True,  # another export, still running: kept
            f".tmp-0123abcd-p{dead_pid}-hffffff-other.pte": True,  # another host's (a shared folder): kept
            ".tmp-0123abcd-legacy.pte": True,  # written before names carried their writer: kept
            f".tmp-0123abcd-p{dead_pid}-h{base._HOST}-dead.pte": False,  # a dead writer here: removed
            "notes.txt": True,
        }
        if base._HOST == "ffffff":
            pytest.skip("this host's hash is the one the test uses for another host")
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        cleared = base.remove_interrupted_exports(tmp_path)
        assert cleared == [f"removed .tmp-0123abcd-p{dead_pid}-h{base._HOST}-dead.pte"]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, kept in names.items() if kept)
    finally:
        live.kill()
        live.wait()


def test_score_bands_split_agreement_by_the_references_confidence():
    from mobile_export.parity import score_bands

    scores = np.arange(8, dtype=np.float64)  # keypoints 4..7 are the top half, 6..7 the top quarter
    dist = np.array([30.0, 30.0, 30.0, 30.0, 20.0, 0.0, 1.0, 3.0])
    half, quarter = score_bands(dist, scores, pck_radius_px=12.8)
    assert half["fraction"] == 0.5 and half["share"] == 0.5 and half["min_score"] == pytest.approx(3.5)
    assert half["mean_kpt_px"] == pytest.approx(6.0) and half["pck_agreement"] == 0.75
    assert quarter["share"] == 0.25 and quarter["mean_kpt_px"] == pytest.approx(2.0) and quarter["pck_agreement"] == 1.0
    tied = score_bands(np.zeros(4), np.ones(4), 1.0, fractions=(0.25,))[0]
    assert tied["share"] == 1.0  # ties at the cut-off are kept, never dropped at random
