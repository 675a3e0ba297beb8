"""The training loop: AdamW, linear warm-up, step schedule, SimCC KL loss, atomic checkpoints,
exact resume, optional DDP (``torchrun``; gloo on CPU, nccl on GPU) and AMP on CUDA."""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..data.coco import CocoIndex, coco_gt_samples
from ..data.targets import KLDiscretLoss
from ..data.topdown import TopDownDataset, collate
from ..data.transforms import AugmentConfig
from ..spec import SPECS, PoseSpec
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .config import TrainConfig

__all__ = ["train", "TrainResult", "build_model", "lr_factor", "build_train_samples", "EpochShuffle"]


@dataclass
class TrainResult:
    work_dir: Path
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    final_weights: Path | None = None
    best_metric: float | None = None


def lr_factor(cfg: TrainConfig, epoch: int, iteration: int) -> float:
    """Multiplier of the base lr: linear warm-up over ``warmup_iters`` from ``warmup_ratio``,
    then the product of the step factors whose epoch has been reached."""
    f = 1.0
    for step_epoch, mult in cfg.lr_steps:
        if epoch >= step_epoch:
            f *= mult
    if cfg.warmup_iters and iteration < cfg.warmup_iters:
        k = iteration / cfg.warmup_iters
        f *= cfg.warmup_ratio + (1.0 - cfg.warmup_ratio) * k
    return f


def build_model(cfg: TrainConfig, spec: PoseSpec) -> torch.nn.Module:
    from ..models import create_model
    from ..models.checkpoint import load_into

    model = create_model(cfg.variant, spec=spec.with_input_size(*cfg.input_size))
    if cfg.init_weights:
        load_into(model, cfg.init_weights)
    return model


def build_train_samples(cfg: TrainConfig, spec: PoseSpec):
    if cfg.dataset == "mpii":
        from ..data.mpii import mpii_samples

        return mpii_samples(cfg.train_ann, cfg.train_images)
    return coco_gt_samples(CocoIndex(cfg.train_ann, spec), cfg.train_images)


class EpochShuffle(Sampler[int]):
    """Single-process shuffling that depends only on (seed, epoch): resume reproduces the order."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _augment_config(cfg: TrainConfig) -> AugmentConfig:
    if not cfg.augment:
        return AugmentConfig.none()
    return AugmentConfig.with_photometric() if cfg.photometric else AugmentConfig()


def train(
    cfg: TrainConfig,
    work_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    max_iters_per_epoch: int | None = None,
) -> TrainResult:
    """Train ``cfg`` into ``work_dir`` (``last.pt`` each epoch, ``best.safetensors`` on the best
    validation metric, ``final.safetensors`` at the end, ``history.json``)."""
    work_dir = Path(work_dir)
    world, rank, local_rank = _dist_info()
    distributed = world > 1
    if distributed and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    is_main = rank == 0

    spec = SPECS[cfg.dataset].with_input_size(*cfg.input_size)
    _seed_all(cfg.seed)
    samples = build_train_samples(cfg, spec)
    if not samples:
        raise ValueError(f"{cfg.train_ann}: no person with labelled keypoints to train on")
    dataset = TopDownDataset(
        samples, spec, train=True, augment=_augment_config(cfg), seed=cfg.seed
    )
    if distributed:
        sampler: Sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    else:
        sampler = EpochShuffle(len(dataset), cfg.seed)
    loader = DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers, collate_fn=collate,
        drop_last=len(dataset) >= cfg.batch_size * world * 2,
        # Not persistent: each epoch's workers get a fresh copy of the dataset, so they see its
        # set_epoch(); persistent workers would keep augmenting with the epoch they started with.
        persistent_workers=False,
    )

    model = build_model(cfg, spec).to(device)
    lr = cfg.lr(world)
    # AdamW: decoupled weight decay (with weight_decay 0, the default, exactly Adam)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    criterion = KLDiscretLoss(use_target_weight=True)

    start_epoch, iteration, history, best = 0, 0, [], None
    last = work_dir / "last.pt"
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state and use_amp:
            scaler.load_state_dict(state["scaler"])
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        history = json.loads(state.get("history", "[]"))
        best = state.get("best")
        torch.set_rng_state(state["torch_rng"])
        if is_main:
            log(f"resumed from {last} at epoch {start_epoch} (iteration {iteration})")
    train_model = model
    if distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None
        )

    if is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        n_params = sum(p.numel() for p in model.parameters())
        log(f"training {cfg.variant} ({n_params:,} params) on {len(dataset)} people, {world} process(es), "
            f"lr {lr:.2e}, batch {cfg.batch_size}x{world}, {cfg.epochs} epochs, device {device}")

    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        train_model.train()
        t0 = time.time()
        tot, count = 0.0, 0
        it = loader
        bar = None
        if progress and is_main:
            from tqdm import tqdm

            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
            it = bar
        for step, batch in enumerate(it):
            if max_iters_per_epoch is not None and step >= max_iters_per_epoch:
                break
            for g in optimizer.param_groups:
                g["lr"] = lr * lr_factor(cfg, epoch, iteration)
            images = batch["image"].to(device, non_blocking=True)
            targets = (batch["target_x"].to(device), batch["target_y"].to(device))
            weights = batch["target_weight"].to(device)
            with torch.autocast(device.type, enabled=use_amp):
                pred = train_model(images)
            loss = criterion((pred[0].float(), pred[1].float()), targets, weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, iteration {iteration}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            iteration += 1
            tot += float(loss.item())  # the loss sums over the batch: tot / count is per person
            count += images.shape[0]
            if bar is not None:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
        if distributed:
            t = torch.tensor([tot, count], dtype=torch.float64, device=device)
            dist.all_reduce(t)
            tot, count = float(t[0]), float(t[1])
        record = {"epoch": epoch + 1, "loss": tot / max(count, 1), "lr": optimizer.param_groups[0]["lr"],
                  "seconds": round(time.time() - t0, 2), "iterations": iteration}
        if is_main and cfg.val_ann and cfg.val_interval and ((epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs):
            metrics = evaluate_config(model, cfg, spec)
            record["val"] = metrics
            key = "PCKh" if cfg.dataset == "mpii" else "AP"
            if best is None or metrics.get(key, -1) > best:
                best = metrics.get(key, -1)
                save_weights(work_dir / "best.safetensors", model, {"variant": cfg.variant, "epoch": str(epoch + 1)})
        history.append(record)
        if is_main:
            log(json.dumps(record))
            if (epoch + 1) % cfg.checkpoint_interval == 0 or epoch + 1 == cfg.epochs:
                save_checkpoint(last, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), "epoch": epoch + 1, "iteration": iteration,
                    "history": json.dumps(history), "best": best, "torch_rng": torch.get_rng_state(),
                    "config": json.dumps(cfg.to_dict()),
                })
            (work_dir / "history.json").write_text(json.dumps(history, indent=1))
        if distributed:
            dist.barrier()
    final = None
    if is_main:
        final = save_weights(work_dir / "final.safetensors", model, {"variant": cfg.variant})
    return TrainResult(work_dir=work_dir, epochs_run=cfg.epochs - start_epoch, history=history,
                       final_weights=final, best_metric=best)


def evaluate_config(model: torch.nn.Module, cfg: TrainConfig, spec: PoseSpec) -> dict:
    """The validation metric of ``cfg``'s data set (COCO/CrowdPose OKS AP, MPII PCKh)."""
    if cfg.dataset == "mpii":
        from ..evaluation.pckh import evaluate_mpii

        return evaluate_mpii(model, spec, cfg.val_ann, cfg.val_images, cfg.val_gt_mat or None,
                             flip=cfg.flip_test)["metrics"]
    from ..evaluation.runner import evaluate_coco_style

    out = evaluate_coco_style(model, spec, cfg.val_ann, cfg.val_images, cfg.val_det or None,
                              mode="crowdpose" if cfg.dataset == "crowdpose" else "coco", flip=cfg.flip_test)
    return out["metrics"]
