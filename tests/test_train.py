"""Training learns, checkpoints are atomic and loadable with weights_only, resume is exact."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from starpose import COCO_SPEC, create_model
from starpose.cli import main
from starpose.evaluation.runner import evaluate_coco_style
from starpose.models.checkpoint import load_into
from starpose.train import TrainConfig, get_recipe, list_recipes, lr_factor, train
from starpose.train.checkpoint import load_checkpoint

from conftest import COCO_DIR, COCO_JSON, shared


def fixture_cfg(**kw) -> TrainConfig:
    base = dict(variant="starpose_t", train_ann=str(shared(COCO_JSON)), train_images=str(shared(COCO_DIR)), batch_size=12,
                base_lr=5e-3, auto_scale_lr_base_batch=0, warmup_iters=5, augment=False, num_workers=0,
                val_interval=0, lr_steps=())
    base.update(kw)
    return TrainConfig(**base)


def test_schedule_warmup_and_steps():
    cfg = get_recipe("coco_256x192_t")
    assert lr_factor(cfg, 0, 0) == pytest.approx(0.001)
    assert lr_factor(cfg, 0, 250) == pytest.approx(0.001 + 0.999 * 0.5)
    assert lr_factor(cfg, 10, 10_000) == 1.0
    assert lr_factor(cfg, 220, 10**6) == pytest.approx(0.1)
    assert lr_factor(cfg, 255, 10**6) == pytest.approx(0.05)
    assert cfg.lr() == pytest.approx(1e-3 * 192 / 512)
    assert {"coco_256x192_t", "coco_384x288_l", "crowdpose_256x192_s", "mpii_256x256_m"} <= set(list_recipes())


def test_training_learns_the_fixture(tmp_path):
    """Overfitting 12 real people proves targets, loss, decoding and coordinate mapping agree."""
    torch.set_num_threads(2)
    result = train(fixture_cfg(epochs=30, batch_size=4, base_lr=3e-3), tmp_path, progress=False, log=lambda s: None)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] / 10
    model = create_model("starpose_t")
    load_into(model, result.final_weights)
    metrics = evaluate_coco_style(model.eval(), COCO_SPEC, shared(COCO_JSON), shared(COCO_DIR), flip=False)["metrics"]
    assert metrics["AP"] >= 0.8, metrics
    ckpt = load_checkpoint(tmp_path / "last.pt")  # weights_only load
    assert ckpt["epoch"] == 30 and not list(tmp_path.glob("*.tmp"))


def test_resume_continues_exactly(tmp_path):
    cfg = fixture_cfg(epochs=3, batch_size=4, augment=True)
    straight = train(cfg, tmp_path / "a", progress=False, log=lambda s: None)
    first = train(cfg.override(epochs=2), tmp_path / "b", progress=False, log=lambda s: None)
    assert first.epochs_run == 2
    # What a run SIGKILLed in the middle of writing its checkpoint leaves behind (atomic_write's names),
    # and a file of the user's that only looks alike: the resumed run removes the first two only.
    killed = [tmp_path / "b" / ".last.pt.k3x9q1.tmp", tmp_path / "b" / ".history.json.ab12cd.tmp"]
    for p in killed:
        p.write_bytes(b"half a checkpoint")
    (tmp_path / "b" / ".notes.txt.tmp").write_text("mine")
    logs = []
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False, log=logs.append)
    assert resumed.epochs_run == 1 and "resumed" in logs[0]
    assert not any(p.exists() for p in killed) and (tmp_path / "b" / ".notes.txt.tmp").exists()
    assert any("removed 2 temporary file(s) a killed run left" in m for m in logs), logs
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert [h["loss"] for h in straight.history] == pytest.approx([h["loss"] for h in resumed.history], rel=1e-5)


def test_resume_with_other_model_options_names_them(tmp_path):
    """A --resume whose checkpoint holds another model (here another input size) says which option differs."""
    small = fixture_cfg(epochs=1, batch_size=4).override(input_size=(64, 96))  # (w, h)
    train(small, tmp_path / "run", progress=False, log=lambda s: None)
    with pytest.raises(ValueError, match=r"last.pt: it holds another model than these options build \(input_size "
                                         r"96x64 \(this run: 256x192\)\); resume with the options the run started"):
        train(fixture_cfg(epochs=2, batch_size=4), tmp_path / "run", resume=True, progress=False, log=lambda s: None)


def test_a_checkpoint_that_is_not_one_is_named(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"last.pt: not a readable training checkpoint \(torch.save writes a zip"):
        load_checkpoint(bad)


def test_augmentation_reaches_dataloader_workers_every_epoch(tmp_path):
    """Augmentation is a function of (seed, epoch, index) only: training with a worker process
    gives the same weights as training in the main process. (Persistent workers once kept the
    first epoch's augmentation for the whole run.)"""
    cfg = fixture_cfg(epochs=3, batch_size=4, augment=True, photometric=True)
    main_process = train(cfg, tmp_path / "w0", progress=False, log=lambda s: None)
    one_worker = train(cfg.override(num_workers=1), tmp_path / "w1", progress=False, log=lambda s: None)
    assert [h["loss"] for h in main_process.history] == pytest.approx([h["loss"] for h in one_worker.history],
                                                                      rel=1e-5)
    a = torch.load(tmp_path / "w0" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "w1" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_cli_train_then_eval(tmp_path):
    runner = CliRunner()
    work = tmp_path / "run"
    r = runner.invoke(main, ["train", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)), "--epochs", "1",
                             "--batch-size", "6", "--workers", "0", "--work-dir", str(work), "--quiet",
                             "--val-ann-file", str(shared(COCO_JSON)), "--val-img-dir", str(shared(COCO_DIR)), "--val-interval", "1"])
    assert r.exit_code == 0, r.output
    assert (work / "final.safetensors").is_file() and (work / "best.safetensors").is_file()
    hist = json.loads((work / "history.json").read_text())
    assert "AP" in hist[0]["val"]
    out = tmp_path / "metrics.json"
    r = runner.invoke(main, ["eval", "--dataset", "coco", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
                             "--boxes", "det", "--det-file", str(shared(COCO_DIR) / "test_coco_det_AP_H_56.json"),
                             "--weights", str(work / "final.safetensors"), "--json", str(out),
                             "--results", str(tmp_path / "res.json")])
    assert r.exit_code == 0, r.output
    metrics = json.loads(out.read_text())["metrics"]
    assert "AP" in r.output
    # The reported numbers are pycocotools' on the results file eval wrote (checked here directly).
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(shared(COCO_JSON)))
    ev = COCOeval(gt, gt.loadRes(str(tmp_path / "res.json")), "keypoints")
    ev.params.kpt_oks_sigmas = np.asarray(COCO_SPEC.sigmas)
    ev.evaluate(), ev.accumulate(), ev.summarize()
    names = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
    np.testing.assert_allclose([metrics[n] for n in names], ev.stats, rtol=0, atol=1e-9)
    results = json.loads((tmp_path / "res.json").read_text())
    assert results and all(len(d["keypoints"]) == 51 and np.isfinite(d["keypoints"]).all() for d in results)


def test_cli_reports_missing_inputs_before_training(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["train", "--config", "coco_256x192_t", "--data-root", str(tmp_path)])
    assert r.exit_code != 0
    assert "person_keypoints_train2017.json" in r.output and str(tmp_path) in r.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": []}))
    r = runner.invoke(main, ["train", "--ann-file", str(bad), "--img-dir", str(tmp_path)])
    assert r.exit_code != 0 and "bad.json" in r.output and "missing 'annotations'" in r.output
    r = runner.invoke(main, ["train", "--config", "nope"])
    assert r.exit_code != 0 and "unknown config" in r.output
    r = runner.invoke(main, ["eval", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
                             "--weights", str(tmp_path / "missing.safetensors")])
    assert r.exit_code != 0 and "missing.safetensors" in r.output


def test_bf16_autocast_step_keeps_float32_weights():
    """`train --bf16` on a CPU: the forward pass runs in bfloat16, the loss, gradients, weights and
    optimizer state stay float32, and the loss is the float32 loss to bfloat16's precision."""
    from starpose.data.targets import KLDiscretLoss
    from starpose.train.loop import train_step

    torch.manual_seed(0)
    batch = {"image": torch.randn(2, 3, 64, 64), "target_weight": torch.ones(2, 17)}
    model = create_model("starpose_t", input_size=(64, 64)).train()
    with torch.no_grad():
        px, py = model(batch["image"])
    batch["target_x"] = torch.softmax(torch.randn_like(px), -1)
    batch["target_y"] = torch.softmax(torch.randn_like(py), -1)
    losses = {}
    for amp in (False, True):
        torch.manual_seed(1)  # the same stochastic-depth draws in both passes
        net = create_model("starpose_t", input_size=(64, 64)).train()
        net.load_state_dict(model.state_dict())
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        seen = []
        conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        losses[amp] = train_step(net, batch, opt, KLDiscretLoss(use_target_weight=True), scaler,
                                 torch.device("cpu"), use_amp=amp)
        assert seen == [torch.bfloat16 if amp else torch.float32]
        assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in net.parameters())
        assert all(v.dtype == torch.float32 for s in opt.state.values() for v in s.values() if v.is_floating_point())
    assert np.isfinite(losses[True]) and losses[True] == pytest.approx(losses[False], rel=0.05)
    assert TrainConfig().bf16 is False
