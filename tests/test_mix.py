"""LSP/LSPET reading and mapping, training mixes (sampling, zero-weight unlabelled points, resume),
PCK@0.2, EMA, and the bad inputs of the people recipe. All data is made here: a joints.mat of a few
synthetic people on generated images, a two-person COCO json, a teacher-labelled json."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from starpose import COCO_SPEC
from starpose.data.coco import CocoIndex
from starpose.data.errors import DataError
from starpose.data.lsp import LSP_TO_COCO, lsp_samples, pck, read_lsp_joints, torso_sizes
from starpose.data.mix import MixSampler, load_mix, parse_source, source_samples
from starpose.data.topdown import TopDownDataset
from starpose.data.transforms import AugmentConfig

# A standing person in LSP order (x, y), about 150 px tall, facing the camera: the person's right
# side is on the image's left.
STANDING = np.array([
    [40, 190], [42, 150], [45, 110], [75, 110], [78, 150], [80, 190],  # R ankle, knee, hip, L hip, knee, ankle
    [25, 110], [30, 80], [40, 55], [80, 55], [90, 80], [95, 110],  # R wrist, elbow, shoulder, L shoulder, ...
    [60, 50], [60, 20],  # neck, head top
], dtype=np.float64)


def draw_person(joints: np.ndarray, size=(240, 140)) -> np.ndarray:
    img = np.full((size[0], size[1], 3), 200, np.uint8)
    for a, b in ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11), (2, 3), (8, 9), (12, 13)):
        cv2.line(img, tuple(int(v) for v in joints[a][:2]), tuple(int(v) for v in joints[b][:2]), (30, 60, 200), 5)
    return img


def write_lsp(root: Path, n: int = 6, layout: str = "lspet", unlabelled: tuple[int, ...] = (0,)) -> np.ndarray:
    """n people; person i shifted by i px; joint 0 of person `unlabelled` is unlabelled (flag 0)."""
    from scipy.io import savemat

    (root / "images").mkdir(parents=True, exist_ok=True)
    people = []
    for i in range(n):
        j = np.concatenate([STANDING + [i, 0], np.ones((14, 1))], axis=1)
        if i in unlabelled:
            j[0] = [-10, -20, 0]
        people.append(j)
        cv2.imwrite(str(root / "images" / f"im{i + 1:05d}.jpg"), draw_person(j))
    arr = np.stack(people)  # N, 14, 3
    if layout == "lspet":
        savemat(str(root / "joints.mat"), {"joints": arr.transpose(1, 2, 0)})  # 14 x 3 x N
    else:
        lsp = arr.transpose(2, 1, 0).copy()  # 3 x 14 x N, flag 0 = visible
        lsp[2] = 0
        savemat(str(root / "joints.mat"), {"joints": lsp})
    return arr


def write_coco(root: Path, n_images: int = 2, labels: str | None = None, name: str = "person_keypoints.json") -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        j = np.concatenate([STANDING + [i * 3, 0], np.ones((14, 1))], axis=1)
        cv2.imwrite(str(root / "images" / f"{i + 1}.jpg"), draw_person(j))
        images.append({"id": i + 1, "file_name": f"{i + 1}.jpg", "width": 140, "height": 240})
        kp = np.zeros((17, 3))
        kp[0] = [60, 35, 2]  # nose
        for c, s in LSP_TO_COCO.items():
            kp[c] = [*j[s, :2], 2]
        ann = {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [15, 10, 90, 190], "area": 9000.0,
               "iscrowd": 0, "num_keypoints": 13, "keypoints": kp.reshape(-1).tolist()}
        if labels is not None:
            ann["keypoint_labels"] = labels
        anns.append(ann)
    path = root / name
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_SPEC.keypoint_names)}]}))
    return path


# ---------------------------------------------------------------- LSP reader and mapping


@pytest.mark.parametrize("layout", ["lspet", "lsp"])
def test_lsp_reader_maps_limbs_and_leaves_the_face_unlabelled(tmp_path, layout):
    arr = write_lsp(tmp_path, 4, layout, unlabelled=(0,) if layout == "lspet" else ())
    joints = read_lsp_joints(tmp_path / "joints.mat")
    assert joints.shape == (4, 14, 3)
    np.testing.assert_allclose(joints[:, :, :2], arr[:, :, :2])
    samples = lsp_samples(tmp_path)
    assert [s.image_id for s in samples] == [1, 2, 3, 4]
    s = samples[1]
    # face: unlabelled, so v = 0 (no loss), not "absent" with a position
    assert (s.visible[:5] == 0).all() and (s.keypoints[:5] == 0).all()
    # the person's left shoulder (LSP 9) is COCO 5, right ankle (LSP 0) is COCO 16
    np.testing.assert_allclose(s.keypoints[5], STANDING[9] + [1, 0])
    np.testing.assert_allclose(s.keypoints[16], STANDING[0] + [1, 0])
    assert s.extra["keypoint_labels"] == "-----" + "h" * 12
    # COCO's flip pairs and LSP's left/right agree: left joints sit right of right joints here
    assert s.keypoints[5, 0] > s.keypoints[6, 0] and s.keypoints[11, 0] > s.keypoints[12, 0]
    # the box holds every labelled joint, head top included
    x, y, w, h = s.bbox
    lab = joints[1][joints[1, :, 2] > 0, :2]
    assert (lab[:, 0] >= x).all() and (lab[:, 0] <= x + w).all() and (lab[:, 1] >= y).all() and (lab[:, 1] <= y + h).all()
    if layout == "lspet":
        assert samples[0].visible[16] == 0 and samples[0].extra["keypoint_labels"][16] == "-"


def test_lsp_ids_and_exclude(tmp_path):
    write_lsp(tmp_path, 5)
    assert [s.image_id for s in lsp_samples(tmp_path, ids={2, 4})] == [2, 4]
    assert [s.image_id for s in lsp_samples(tmp_path, exclude={2, 4})] == [1, 3, 5]


def test_unlabelled_keypoints_carry_zero_loss_weight(tmp_path):
    write_lsp(tmp_path, 3)
    ds = TopDownDataset(lsp_samples(tmp_path), COCO_SPEC, train=True, augment=AugmentConfig())
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(3):
            w = ds[i]["target_weight"].numpy()
            assert (w[:5] == 0).all(), "face points of an LSP person must carry no loss"
    # and the loss really ignores them: any prediction at weight-0 points leaves the loss unchanged
    from starpose.data.targets import KLDiscretLoss

    item = ds[1]
    crit = KLDiscretLoss()
    px, py = torch.randn(1, 17, 384), torch.randn(1, 17, 512)
    tgt = (item["target_x"][None], item["target_y"][None])
    base = crit((px, py), tgt, item["target_weight"][None])
    px2 = px.clone()
    px2[:, :5] = torch.randn(1, 5, 384) * 10
    assert torch.allclose(base, crit((px2, py), tgt, item["target_weight"][None]))
    px3 = px.clone()
    px3[:, 5] += torch.randn(384) * 10
    assert not torch.allclose(base, crit((px3, py), tgt, item["target_weight"][None]))


@pytest.mark.parametrize("shape,msg", [((14, 2, 5), "expected 14 x 3 x N"), ((5, 14), "expected 14 x 3 x N"),
                                       ((14, 3, 0), "holds no people")])
def test_lsp_bad_joints_shape(tmp_path, shape, msg):
    from scipy.io import savemat

    savemat(str(tmp_path / "joints.mat"), {"joints": np.zeros(shape)})
    with pytest.raises(DataError, match=msg) as e:
        read_lsp_joints(tmp_path / "joints.mat")
    assert "joints.mat" in str(e.value)


def test_lsp_bad_files(tmp_path):
    with pytest.raises(DataError, match="joints.mat: not found"):
        read_lsp_joints(tmp_path / "joints.mat")
    (tmp_path / "joints.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        read_lsp_joints(tmp_path / "joints.mat")
    from scipy.io import savemat

    savemat(str(tmp_path / "joints.mat"), {"points": np.zeros((14, 3, 2))})
    with pytest.raises(DataError, match="no variable 'joints'.*points"):
        read_lsp_joints(tmp_path / "joints.mat")
    write_lsp(tmp_path, 3)
    (tmp_path / "images" / "im00002.jpg").unlink()
    with pytest.raises(DataError, match="im00002.jpg.*not found"):
        lsp_samples(tmp_path)


# ---------------------------------------------------------------- PCK@0.2


def test_pck_by_torso_hand_computed():
    gt = np.zeros((2, 17, 2))
    vis = np.zeros((2, 17))
    # person 0: left shoulder (5) at (0, 0), right hip (12) at (30, 40): torso 50, threshold 10 px
    gt[0, 5], gt[0, 12] = [0, 0], [30, 40]
    gt[0, 9] = [100, 100]
    vis[0, [5, 12, 9]] = 2
    # person 1: only the other diagonal: right shoulder (6) (0,0) to left hip (11) (0, 100): threshold 20
    gt[1, 6], gt[1, 11] = [0, 0], [0, 100]
    gt[1, 10] = [50, 50]
    vis[1, [6, 11, 10]] = 2
    np.testing.assert_allclose(torso_sizes(gt, vis), [50, 100])
    pred = gt.copy()
    pred[0, 9] += [9.9, 0]  # hit (< 10)
    pred[0, 5] += [0, 10.1]  # miss (> 10)
    pred[1, 10] += [0, 19]  # hit (< 20)
    pred[1, 6] += [25, 0]  # miss
    m = pck(pred, gt, vis)
    assert m["PCK@0.2"] == pytest.approx(100 * 4 / 6)
    assert m["Wrist"] == pytest.approx(100.0) and m["Shoulder"] == pytest.approx(0.0)
    assert m["people"] == 2 and m["people_skipped"] == 0
    vis[1, 11] = 0  # no diagonal left: person 1 leaves the mean
    m = pck(pred, gt, vis)
    assert m["people_skipped"] == 1 and m["PCK@0.2"] == pytest.approx(100 * 2 / 3)


# ---------------------------------------------------------------- mixes


def write_mix(tmp_path: Path, sources: list[dict], **extra) -> Path:
    p = tmp_path / "mix.json"
    p.write_text(json.dumps({"name": "t", "roots": {"d": "."}, "sources": sources, **extra}))
    return p


def test_mix_file_roots_weights_and_errors(tmp_path):
    write_lsp(tmp_path / "lsp", 4)
    write_coco(tmp_path / "c", 2)
    good = [{"name": "lsp", "format": "lsp", "path": "{d}/lsp", "weight": 3},
            {"name": "c", "format": "coco", "path": "{d}/c/person_keypoints.json", "weight": 1}]
    mix = load_mix(write_mix(tmp_path, good))
    assert [s.name for s in mix.sources] == ["lsp", "c"]
    assert Path(mix.sources[0].path) == (tmp_path / "lsp").resolve()
    mix = load_mix(write_mix(tmp_path, good), weight_overrides={"c": 2.5})
    assert mix.sources[1].weight == 2.5
    with pytest.raises(DataError, match=r"mix.json.*unknown source.*nope"):
        load_mix(write_mix(tmp_path, good), weight_overrides={"nope": 1})
    for bad, msg in [({"weight": 0}, "weight must be a number > 0"), ({"weight": -1}, "weight must be a number > 0"),
                     ({"format": "mpii"}, "unknown format 'mpii'"), ({"path": "{zz}/lsp"}, r"root \{zz\}"),
                     ({"labels": "robot"}, "labels must be one of"), ({"colour": 1}, "unknown keys")]:
        with pytest.raises(DataError, match=msg) as e:
            load_mix(write_mix(tmp_path, [{**good[0], **bad}]))
        assert "mix.json" in str(e.value)
    with pytest.raises(DataError, match="weight must be a number > 0"):
        load_mix(write_mix(tmp_path, good), weight_overrides={"c": 0})
    with pytest.raises(DataError, match="repeat"):
        load_mix(write_mix(tmp_path, [good[0], good[0]]))


def test_parse_source():
    s = parse_source("lspet=lsp:/data/lspet@2.5")
    assert (s.name, s.format, s.path, s.weight) == ("lspet", "lsp", str(Path("/data/lspet").resolve()), 2.5)
    assert parse_source("c=coco:a.json").weight == 1.0
    for bad in ("nofmt", "x=coco:a.json@0", "x=coco:a.json@-2", "x=voc:a.json"):
        with pytest.raises((ValueError, DataError)):
            parse_source(bad)


def test_sampler_proportions_exact_and_reproducible():
    s = MixSampler([100, 10, 5], [6, 3, 1], epoch_size=200, seed=3)
    assert s.counts() == [120, 60, 20]
    over_epochs: Counter = Counter()
    for epoch in range(3):
        s.set_epoch(epoch)
        idx = s.indices()
        assert len(idx) == 200 == len(s)
        src = Counter(0 if i % 115 < 100 else (1 if i % 115 < 110 else 2) for i in idx)
        assert src == {0: 120, 1: 60, 2: 20}
        base = Counter(i % 115 for i in idx)
        over_epochs.update(base)
        # the small sources cycle every person evenly within the epoch
        assert all(base[i] == 6 for i in range(100, 110)) and all(base[i] == 4 for i in range(110, 115))
        # repeats get distinct keys (distinct augmentation), all mapping back to real people
        assert len(set(idx)) == 200
        again = MixSampler([100, 10, 5], [6, 3, 1], epoch_size=200, seed=3)
        again.set_epoch(epoch)
        assert again.indices() == idx
    # the big source runs through whole passes across epochs: 360 draws of 100 people
    assert {over_epochs[i] for i in range(100)} == {3, 4} and sum(over_epochs[i] for i in range(100)) == 360
    s.set_epoch(0)
    e0 = s.indices()
    s.set_epoch(1)
    assert s.indices() != e0
    # a source drawn below its size goes through every person before repeating anyone
    small = MixSampler([100, 10], [1, 1], epoch_size=60, seed=1)  # 30 of 100 per epoch
    seen = []
    for epoch in range(3):
        small.set_epoch(epoch)
        seen += [i for i in small.indices() if i < 100]
    assert len(seen) == 90 and len(set(seen)) == 90
    # distributed ranks split one epoch's draws
    ranks = [MixSampler([100, 10, 5], [6, 3, 1], 200, seed=3, rank=r, world=2) for r in range(2)]
    assert sorted(ranks[0].indices() + ranks[1].indices()) == sorted(MixSampler([100, 10, 5], [6, 3, 1], 200, 3).indices())


def test_holdout_and_teacher_labels(tmp_path):
    write_lsp(tmp_path / "lsp", 6)
    labels = "ttttt" + "h" * 12
    write_coco(tmp_path / "t", 2, labels=labels)
    hold = tmp_path / "holdout.json"
    hold.write_text(json.dumps({"lsp": [2, 5], "about": "x"}))
    mix = load_mix(write_mix(tmp_path, [
        {"name": "lsp", "format": "lsp", "path": "{d}/lsp"},
        {"name": "t", "format": "coco", "path": "{d}/t/person_keypoints.json", "labels": "mixed", "teacher_weight": 0.5},
    ], holdout="holdout.json"))
    from starpose.data.mix import load_holdout

    h = load_holdout(mix.holdout)
    train = source_samples(mix.sources[0], COCO_SPEC, holdout=h, split="train")
    val = source_samples(mix.sources[0], COCO_SPEC, holdout=h, split="val")
    assert [s.image_id for s in train] == [1, 3, 4, 6] and [s.image_id for s in val] == [2, 5]
    t = source_samples(mix.sources[1], COCO_SPEC, holdout=h, split="train")
    assert t[0].extra["keypoint_labels"] == labels and t[0].extra["source"] == "t"
    np.testing.assert_allclose(t[0].extra["keypoint_weight"][:5], 0.5)
    np.testing.assert_allclose(t[0].extra["keypoint_weight"][5:], 1.0)
    # the teacher weight follows its keypoint through the flip: the nose (0) keeps 0.5,
    # every labelled limb point keeps 1
    ds = TopDownDataset(t, COCO_SPEC, train=True, augment=AugmentConfig(flip_prob=1.0, half_body_prob=0, scale_prob=0,
                                                                         rotate_prob=0, shift_prob=0))
    w = ds[0]["target_weight"].numpy()
    assert w[0] == pytest.approx(0.5) and (w[5:] == 1).all()
    # bad per-keypoint labels name the file
    write_coco(tmp_path / "bad", 1, labels="hx" + "h" * 15)
    bad = parse_source(f"bad=coco:{tmp_path / 'bad' / 'person_keypoints.json'}")
    with pytest.raises(DataError, match="keypoint_labels"):
        source_samples(bad, COCO_SPEC)


def test_missing_images_of_a_source(tmp_path):
    path = write_coco(tmp_path / "c", 2)
    (tmp_path / "c" / "images" / "2.jpg").unlink()
    with pytest.raises(DataError, match=r"2.jpg.*not found"):
        source_samples(parse_source(f"c=coco:{path}"), COCO_SPEC)


@pytest.mark.parametrize("name,msg", [("../../../x.jpg", "climbs out"), ("/etc/passwd", "is absolute"),
                                      ("a/../../x.jpg", "climbs out"), ("C:\\x.jpg", "is absolute"), ("", "non-empty")])
def test_file_name_outside_the_image_folder_is_refused(tmp_path, name, msg):
    path = write_coco(tmp_path, 1)
    d = json.loads(path.read_text())
    d["images"][0]["file_name"] = name
    path.write_text(json.dumps(d))
    with pytest.raises(DataError, match=msg) as e:
        CocoIndex(path, COCO_SPEC)
    assert str(path) in str(e.value)


def test_file_name_in_a_subfolder_is_fine(tmp_path):
    path = write_coco(tmp_path, 1)
    d = json.loads(path.read_text())
    d["images"][0]["file_name"] = "sub/./../images/1.jpg"
    path.write_text(json.dumps(d))
    CocoIndex(path, COCO_SPEC)


# ---------------------------------------------------------------- training with a mix


def _mix_cfg(tmp_path, **kw):
    from starpose.train import TrainConfig

    write_lsp(tmp_path / "lsp", 6)
    write_coco(tmp_path / "c", 2)
    (tmp_path / "holdout.json").write_text(json.dumps({"lsp": [6], "c": [2]}))
    mix = write_mix(tmp_path, [{"name": "lsp", "format": "lsp", "path": "{d}/lsp", "weight": 2},
                               {"name": "c", "format": "coco", "path": "{d}/c/person_keypoints.json", "weight": 1}],
                    holdout="holdout.json", epoch_size=6)
    base = dict(variant="starpose_t", mix=str(mix), batch_size=3, base_lr=1e-3, auto_scale_lr_base_batch=0,
                warmup_iters=1, num_workers=0, val_interval=1, lr_steps=(), ema_decay=0.9, threads=2, epochs=2)
    base.update(kw)
    return TrainConfig(**base)


def test_mix_training_resumes_exactly_and_records_lineage(tmp_path):
    from safetensors import safe_open

    from starpose.train.loop import train

    cfg = _mix_cfg(tmp_path)
    logs = []
    straight = train(cfg, tmp_path / "a", progress=False, log=logs.append)
    assert any("lsp 4 of 5" in line and "c 2 of 1" in line for line in logs), logs
    assert any("validation: lsp (1 people, pck), c (1 people, oks)" in line for line in logs), logs
    train(cfg.override(epochs=1), tmp_path / "b", progress=False, log=lambda s: None)
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False, log=lambda s: None)
    assert straight.history[-1]["loss"] == pytest.approx(resumed.history[-1]["loss"], rel=1e-5)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for k in a["ema"]["module"]:
        torch.testing.assert_close(a["ema"]["module"][k], b["ema"]["module"][k])
    assert "val_score" in straight.history[-1]
    assert "val_no_flip" not in straight.history[-1] and "val_score_flip" not in straight.history[-1]
    with safe_open(str(tmp_path / "a" / "final.safetensors"), "pt") as f:
        meta = f.metadata()
    lineage = json.loads(meta["lineage"])
    assert lineage[-1]["people_seen"] == 2 * 6 and lineage[-1]["epochs"] == 2
    # the run's seed, planned length and validation score, for recipes/default_weights/lineage.py's table
    assert lineage[-1]["seed"] == cfg.seed and lineage[-1]["of_epochs"] == 2
    assert lineage[-1]["val_score"] == pytest.approx(straight.history[-1]["val_score"], abs=1e-4)
    assert json.loads(meta["mix"])["sources"][0] == {"name": "lsp", "format": "lsp", "labels": "human", "weight": 2,
                                                       "teacher_weight": 1.0}
    assert str(tmp_path) not in json.dumps(meta), "weights metadata must not hold machine paths"


def test_cli_train_with_mix_rejects_bad_inputs_before_training(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main

    cfg = _mix_cfg(tmp_path)
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--source-weight", "zzz=2", "--epochs", "1",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code != 0 and "unknown source" in r.output and "zzz" in r.output
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--source-weight", "lsp=0", "--work-dir", str(tmp_path / "w")])
    assert r.exit_code != 0 and "weight must be a number > 0" in r.output
    r = CliRunner().invoke(main, ["train", "--source", f"x=lsp:{tmp_path / 'nothere'}", "--work-dir", str(tmp_path / "w")])
    assert r.exit_code != 0 and "nothere" in r.output and "not found" in r.output
    assert not (tmp_path / "w").exists(), "nothing is written before the inputs are checked"
    r = CliRunner().invoke(main, ["train", "--source", f"x=lsp:{tmp_path / 'lsp'}@2", "--source",
                                  f"y=coco:{tmp_path / 'c' / 'person_keypoints.json'}", "--epochs", "1",
                                  "--batch-size", "3", "--epoch-size", "3", "--quiet", "--threads", "2",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 0, r.output
    assert "x 2 of 6" in r.output and "y 1 of 2" in r.output


# ---------------------------------------------------------------- EMA


def test_ema_tracks_the_weights():
    from starpose.train.ema import ModelEMA

    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(m, decay=0.5)
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    w0 = ema.module[0].weight.clone()
    ema.update(m)  # updates=1: decay min(0.5, 2/11)
    d = 2 / 11
    torch.testing.assert_close(ema.module[0].weight, w0 * d + (1 - d) * torch.ones_like(w0))
    for _ in range(200):
        ema.update(m)
    torch.testing.assert_close(ema.module[0].weight, torch.ones_like(w0))
    assert ema.module[1].num_batches_tracked == m[1].num_batches_tracked
    with pytest.raises(ValueError):
        ModelEMA(m, decay=1.0)


# ---------------------------------------------------------------- eval --dataset lsp


def test_cli_eval_lsp_scores_the_chosen_people(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main

    root = tmp_path / "lspet"
    write_lsp(root, 6)
    (tmp_path / "holdout.json").write_text(json.dumps({"lspet": [2, 5]}))
    out = tmp_path / "m.json"
    r = CliRunner().invoke(main, ["eval", "--dataset", "lsp", "--data-root", str(root), "--ids",
                                  f"{tmp_path / 'holdout.json'}:lspet", "--weights", "random", "--no-flip",
                                  "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "lsp (2 people with a labelled torso" in r.output and "PCK@0.2" in r.output
    saved = json.loads(out.read_text())
    assert saved["num_people"] == 2 and 0.0 <= saved["metrics"]["PCK@0.2"] <= 100.0
    r = CliRunner().invoke(main, ["eval", "--dataset", "lsp", "--data-root", str(root), "--ids", "1-3,6",
                                  "--weights", "random", "--no-flip"])
    assert r.exit_code == 0 and "lsp (4 people" in r.output, r.output


@pytest.mark.parametrize("args, msg", [
    (["--ids", "3-1"], "ranges go up"),
    (["--ids", "x"], "expected N or N-M"),
    (["--ids", "900-901"], "no labelled people among --ids 900-901"),
    (["--boxes", "ours"], "--dataset lsp is scored on boxes around the labelled joints"),
])
def test_cli_eval_lsp_bad_options(tmp_path, args, msg):
    from click.testing import CliRunner

    from starpose.cli import main

    write_lsp(tmp_path, 3)
    r = CliRunner().invoke(main, ["eval", "--dataset", "lsp", "--data-root", str(tmp_path), "--weights", "random",
                                  *args])
    assert r.exit_code != 0 and msg in r.output, r.output


def test_cli_eval_lsp_reads_the_ann_file_it_is_given(tmp_path):
    """``--ann-file`` names the joints file itself, whatever its name (images/ beside it); a file that is
    not a MATLAB file is an error naming it, not a search for joints.mat in its folder."""
    from click.testing import CliRunner

    from starpose.cli import main

    write_lsp(tmp_path, 3)
    (tmp_path / "joints.mat").rename(tmp_path / "lspet_joints.mat")
    r = CliRunner().invoke(main, ["eval", "--dataset", "lsp", "--ann-file", str(tmp_path / "lspet_joints.mat"),
                                  "--weights", "random", "--no-flip"])
    assert r.exit_code == 0 and "lsp (3 people" in r.output, r.output
    (tmp_path / "notes.json").write_text("{}")
    r = CliRunner().invoke(main, ["eval", "--dataset", "lsp", "--ann-file", str(tmp_path / "notes.json"),
                                  "--weights", "random"])
    assert r.exit_code != 0 and f"{tmp_path / 'notes.json'}: not a readable MATLAB file" in r.output, r.output


def test_cli_eval_lsp_names_the_missing_joints_file(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main

    r = CliRunner().invoke(main, ["eval", "--dataset", "lsp", "--data-root", str(tmp_path)])
    assert r.exit_code != 0 and str(tmp_path / "joints.mat") in r.output
    r = CliRunner().invoke(main, ["eval", "--dataset", "mpii", "--ids", "1-2"])
    assert r.exit_code != 0 and "--ids is for --dataset lsp, coco or crowdpose" in r.output


def test_cli_eval_coco_scores_only_the_chosen_photos(tmp_path):
    """``eval --ids FILE.json:KEY`` on a COCO file: the held-out photos of a holdout file, as the
    recipe's validation scores them; the annotation file itself is left as it was."""
    from click.testing import CliRunner

    from starpose.cli import main

    ann = write_coco(tmp_path, 4)
    before = ann.read_text()
    (tmp_path / "holdout.json").write_text(json.dumps({"coco": [2, 4, 99]}))

    def run(*extra):
        out = tmp_path / "m.json"
        r = CliRunner().invoke(main, ["eval", "--ann-file", str(ann), "--img-dir", str(tmp_path / "images"),
                                      "--weights", "random", "--no-flip", "--json", str(out), *extra])
        assert r.exit_code == 0, r.output
        return r.output, json.loads(out.read_text())

    text, saved = run("--ids", f"{tmp_path / 'holdout.json'}:coco")
    assert "coco (2 people, gt boxes" in text
    assert saved["num_people"] == 2 and saved["ids"].endswith("holdout.json:coco")
    assert sum(v["labelled"] for v in saved["per_keypoint"].values()) == 2 * 13
    _, everyone = run()
    assert everyone["num_people"] == 4 and everyone["ids"] is None
    _, ranges = run("--ids", "1-3")
    assert ranges["num_people"] == 3
    assert ann.read_text() == before


@pytest.mark.parametrize("args, msg", [
    (["--ids", "7-9"], "none of the 3 image ids of --ids is in it"),
    (["--ids", "1", "--boxes", "det", "--det-file", "DETS"], "--ids chooses photos with --boxes gt or ours"),
])
def test_cli_eval_coco_ids_errors(tmp_path, args, msg):
    from click.testing import CliRunner

    from starpose.cli import main

    ann = write_coco(tmp_path, 2)
    dets = tmp_path / "dets.json"
    dets.write_text("[]")
    args = [str(dets) if a == "DETS" else a for a in args]
    r = CliRunner().invoke(main, ["eval", "--ann-file", str(ann), "--img-dir", str(tmp_path / "images"),
                                  "--weights", "random", *args])
    assert r.exit_code != 0 and msg in r.output, r.output
    if "none of" in msg:
        assert str(ann) in r.output


# ---------------------------------------------------------------- detector boxes (train --det-box-prob)


def _boxes_file(path: Path, boxes: dict) -> Path:
    path.write_text(json.dumps({"source": "c", "boxes": boxes}))
    return path


def test_detector_boxes_are_attached_and_cropped_from(tmp_path):
    from starpose.processing import bbox_xywh_to_cs

    coco = write_coco(tmp_path / "c", 2)
    det = [20.0, 14.0, 80.0, 170.0]
    _boxes_file(tmp_path / "boxes.json", {"1": det + [0.9, 0.8]})
    mix = load_mix(write_mix(tmp_path, [{"name": "c", "format": "coco", "path": "{d}/c/person_keypoints.json",
                                         "boxes": "{d}/boxes.json"}]))
    assert mix.summary()["sources"][0]["detector_boxes"] is True
    samples = source_samples(mix.sources[0], COCO_SPEC)
    assert samples[0].extra["det_box"].tolist() == det and "det_box" not in samples[1].extra
    gt_c, gt_s = bbox_xywh_to_cs(samples[0].bbox, COCO_SPEC.input_size, COCO_SPEC.bbox_padding)
    det_c, det_s = bbox_xywh_to_cs(np.array(det), COCO_SPEC.input_size, COCO_SPEC.bbox_padding)
    assert not np.allclose(gt_c, det_c)
    only = dict(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0)
    always = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(**only, det_box_prob=1.0))
    never = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(**only))
    np.testing.assert_allclose(always[0]["center"].numpy(), det_c)
    np.testing.assert_allclose(always[0]["scale"].numpy(), det_s)
    np.testing.assert_allclose(never[0]["center"].numpy(), gt_c)
    # a person without a detector box crops from their own, whatever the probability
    np.testing.assert_allclose(always[1]["center"].numpy(), never[1]["center"].numpy())
    # half of the draws with p = 0.5, and the other augmentations' draws unchanged by it
    half = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(det_box_prob=0.5))
    full = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig())
    from_det = 0
    for key in range(0, 80, 2):  # person 0
        same = np.allclose(half[key]["center"].numpy(), full[key]["center"].numpy())
        from_det += not same
    assert 10 <= from_det <= 30, from_det
    for key in range(1, 21, 2):  # person 1 has no detector box: identical samples
        torch.testing.assert_close(half[key]["image"], full[key]["image"])
    assert coco.is_file()


@pytest.mark.parametrize("content,msg", [
    (None, "detector-box file not found"),
    ("[1, 2]", "'boxes' object"),
    ({"1": [1, 2, "x", 4]}, "must be"),
    ({"1": [1, 2, 0, 4]}, "w, h > 0"),
    ({"1": [1, 2]}, "must be"),
    ({"77": [1, 2, 30, 40]}, "none of its 1 boxes belongs to a person of source 'c'"),
])
def test_bad_detector_box_files_are_refused_naming_them(tmp_path, content, msg):
    write_coco(tmp_path / "c", 2)
    p = tmp_path / "boxes.json"
    if isinstance(content, dict):
        _boxes_file(p, content)
    elif content is not None:
        p.write_text(content)
    mix = load_mix(write_mix(tmp_path, [{"name": "c", "format": "coco", "path": "{d}/c/person_keypoints.json",
                                         "boxes": "{d}/boxes.json"}]))
    with pytest.raises(DataError, match=msg) as e:
        source_samples(mix.sources[0], COCO_SPEC)
    assert "boxes.json" in str(e.value)


def test_cli_det_box_prob_needs_a_mix_with_boxes(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main

    cfg = _mix_cfg(tmp_path)
    r = CliRunner().invoke(main, ["train", "--source", f"x=lsp:{tmp_path / 'lsp'}", "--det-box-prob", "0.5",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "--det-box-prob" in r.output and "--mix" in r.output
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--det-box-prob", "0.5", "--no-aug",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "--no-aug" in r.output
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--det-box-prob", "1.5", "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "1.5" in r.output
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--det-box-prob", "0.5", "--epochs", "1", "--quiet",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 1 and "needs detector boxes" in r.output and "detector_boxes.py" in r.output
    assert not (tmp_path / "w").exists(), "nothing is written before the inputs are checked"


def test_training_with_detector_boxes_records_it(tmp_path):
    from safetensors import safe_open

    from starpose.train.loop import train

    cfg = _mix_cfg(tmp_path, epochs=1)
    _boxes_file(tmp_path / "c_boxes.json", {"1": [20.0, 14.0, 80.0, 170.0, 0.9, 0.8]})
    d = json.loads(Path(cfg.mix).read_text())
    d["sources"][1]["boxes"] = "{d}/c_boxes.json"
    Path(cfg.mix).write_text(json.dumps(d))
    logs = []
    train(cfg.override(det_box_prob=0.5), tmp_path / "a", progress=False, log=logs.append)
    assert any("detector boxes: 1 of 6 people, used 50% of the time" in line for line in logs), logs
    with safe_open(str(tmp_path / "a" / "final.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["lineage"])[-1]["det_box_prob"] == 0.5
    assert json.loads(meta["mix"])["sources"][1]["detector_boxes"] is True


def test_detector_boxes_recipe_matches_by_iou():
    from conftest import load_recipe

    mod = load_recipe("default_weights/detector_boxes.py")
    det = np.array([[0, 0, 10, 10], [100, 100, 50, 100], [105, 95, 50, 100]], np.float64)
    np.testing.assert_allclose(mod.iou_xywh(np.array([0, 0, 10, 10.0]), det), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(mod.iou_xywh(np.array([5, 0, 10, 10.0]), det[:1]), [50 / 150])
    got = mod.match_people([np.array([100, 100, 50, 100.0]), np.array([0, 0, 30, 30.0]), None,
                            np.array([300, 300, 10, 10.0])], det, 0.5)
    assert got[0] == (1, 1.0)
    assert got[1] is None  # IoU 100/900 with the small box: a miss
    assert got[2] is None and got[3] is None
    assert mod.match_people([np.array([0, 0, 1, 1.0])], np.zeros((0, 4)), 0.5) == [None]


def test_val_no_flip_picks_best_by_the_mean_of_both_scores(tmp_path):
    from click.testing import CliRunner
    from safetensors import safe_open

    from starpose.cli import main
    from starpose.evaluation.holdout import evaluate_sets, selection_score
    from starpose.models.weights import load_model
    from starpose.train.loop import _validation_sets, build_mix, train

    cfg = _mix_cfg(tmp_path, epochs=1, val_no_flip=True)
    logs = []
    res = train(cfg, tmp_path / "run", progress=False, log=logs.append)
    rec = res.history[-1]
    assert any("best by the mean of the flip-test and one-pass scores" in line for line in logs), logs
    assert set(rec["val_no_flip"]) == set(rec["val"]) == {"lsp", "c"}
    assert rec["val_score"] == pytest.approx((rec["val_score_flip"] + rec["val_score_no_flip"]) / 2)
    # The one-pass numbers are those of the saved weights without flip, the flip numbers with it.
    from starpose import COCO_SPEC

    model = load_model("starpose_t", str(tmp_path / "run" / "best.safetensors"))
    sets = _validation_sets(cfg, build_mix(cfg), COCO_SPEC)
    plain = evaluate_sets(model, sets, COCO_SPEC, flip=False)
    assert selection_score(plain, sets) == pytest.approx(rec["val_score_no_flip"], abs=1e-6)
    assert selection_score(evaluate_sets(model, sets, COCO_SPEC), sets) == pytest.approx(rec["val_score_flip"], abs=1e-6)
    with safe_open(str(tmp_path / "run" / "best.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["lineage"])[-1]["val_no_flip"] is True
    # It needs a mix's held-out people and the flip test.
    with pytest.raises(ValueError, match="val_no_flip .* needs mix training with the flip test on"):
        train(cfg.override(flip_test=False), tmp_path / "run3", progress=False, log=lambda s: None)
    r = CliRunner().invoke(main, ["train", "--ann-file", str(tmp_path / "c" / "person_keypoints.json"),
                                  "--img-dir", str(tmp_path / "c" / "images"), "--val-no-flip",
                                  "--work-dir", str(tmp_path / "run4")])
    assert r.exit_code != 0 and "--val-no-flip validates on a mix's held-out people" in r.output
    assert not (tmp_path / "run4").exists()


def test_flip_test_keeps_its_one_pass_prediction(tmp_path):
    """``with_plain``: the flip test's unflipped pass is the one-pass prediction, kept beside it, so the
    two validations cost the flip test alone; both equal separate runs with and without flip."""
    from starpose import COCO_SPEC, create_model
    from starpose.evaluation.holdout import evaluate_sets, predict_sets
    from starpose.train.loop import _validation_sets, build_mix

    cfg = _mix_cfg(tmp_path)
    sets = _validation_sets(cfg, build_mix(cfg), COCO_SPEC)
    torch.manual_seed(0)
    model = create_model("starpose_t").eval()
    flip, plain = predict_sets(model, sets, COCO_SPEC, with_plain=True)
    alone_flip = predict_sets(model, sets, COCO_SPEC, flip=True)
    alone_plain = predict_sets(model, sets, COCO_SPEC, flip=False)
    for vs in sets:
        for got, want in ((flip, alone_flip), (plain, alone_plain)):
            np.testing.assert_allclose(np.stack(got[vs.name][0]), np.stack(want[vs.name][0]), atol=1e-5)
            assert got[vs.name][1] == want[vs.name][1]
        # the flip test changed the prediction: the two are not the same pass twice
        assert not np.allclose(np.stack(flip[vs.name][0]), np.stack(plain[vs.name][0]))
    both = evaluate_sets(model, sets, COCO_SPEC, with_plain=True)
    alone = evaluate_sets(model, sets, COCO_SPEC, flip=False)
    for vs in sets:
        assert both[1][vs.name] == pytest.approx(alone[vs.name], abs=1e-6)
    with pytest.raises(ValueError, match="with_plain keeps the flip test's unflipped pass"):
        predict_sets(model, sets, COCO_SPEC, flip=False, with_plain=True)
