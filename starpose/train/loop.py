"""The training loop: AdamW, linear warm-up, step schedule, SimCC KL loss, atomic checkpoints,
exact resume, optional DDP (``torchrun``; gloo on CPU, nccl on GPU) and AMP on CUDA."""
from __future__ import annotations

import dataclasses
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
from ..data.targets import KLDiscretLoss, limb_swap_groups
from ..data.topdown import TopDownDataset, collate
from ..data.transforms import AugmentConfig
from ..fileio import atomic_write_json, remove_stale_temps, stale_temps_line
from ..spec import SPECS, PoseSpec
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .config import TrainConfig

__all__ = ["train", "TrainResult", "build_model", "lr_factor", "build_train_samples", "build_mix", "EpochShuffle",
           "tune_allocator", "train_step"]


@dataclass
class TrainResult:
    work_dir: Path
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    final_weights: Path | None = None
    best_metric: float | None = None


def lr_factor(cfg: TrainConfig, epoch: int, iteration: int) -> float:
    """Multiplier of the base lr: linear warm-up over ``warmup_iters`` from ``warmup_ratio``,
    then the product of the step factors whose epoch has been reached (``lr_schedule="step"``),
    or a cosine from 1 at epoch 0 to ``min_lr_ratio`` at the last epoch (``"cosine"``)."""
    f = 1.0
    if cfg.lr_schedule == "cosine":
        t = min(max(epoch / max(cfg.epochs - 1, 1), 0.0), 1.0)
        f = cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
    elif cfg.lr_schedule != "step":
        raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r} (step or cosine)")
    for step_epoch, mult in cfg.lr_steps if cfg.lr_schedule == "step" else ():
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


def build_mix(cfg: TrainConfig):
    """The mix of ``cfg`` (mix file, ``--source`` entries, or both), or None for a single file."""
    from ..data.mix import Mix, load_mix, parse_source

    if not cfg.mix and not cfg.sources:
        return None
    extra = [parse_source(t) for t in cfg.sources]
    if cfg.mix:
        mix = load_mix(cfg.mix, dict(cfg.mix_roots), dict(cfg.mix_weights))
        names = {s.name for s in mix.sources}
        clash = [s.name for s in extra if s.name in names]
        if clash:
            raise ValueError(f"--source {clash[0]!r} repeats a source of the mix {cfg.mix}")
        mix = Mix(name=mix.name, sources=mix.sources + tuple(extra), epoch_size=mix.epoch_size,
                  holdout=mix.holdout, file=mix.file, roots=mix.roots)
    else:
        if cfg.mix_weights:
            raise ValueError("--source-weight needs --mix (give --source NAME=FORMAT:PATH@WEIGHT instead)")
        mix = Mix(name="sources", sources=tuple(extra))
    if cfg.epoch_size:
        mix = Mix(name=mix.name, sources=mix.sources, epoch_size=cfg.epoch_size, holdout=mix.holdout,
                  file=mix.file, roots=mix.roots)
    if cfg.swap_tolerant:
        names = [s.name for s in mix.sources]
        unknown = sorted(set(cfg.swap_tolerant) - set(names))
        if unknown:
            raise ValueError(f"--swap-tolerant names unknown source(s) {unknown} (the mix has {names})")
        mix = dataclasses.replace(mix, sources=tuple(
            dataclasses.replace(s, swap_tolerant=True) if s.name in cfg.swap_tolerant else s for s in mix.sources))
    return mix


def build_mix_samples(mix, spec: PoseSpec) -> tuple[list, list[int]]:
    """Training people of every source (held-out photos left out), concatenated; and their sizes."""
    from ..data.errors import DataError
    from ..data.mix import load_holdout, source_samples

    holdout = load_holdout(mix.holdout) if mix.holdout else {}
    samples, sizes = [], []
    for src in mix.sources:
        part = source_samples(src, spec, holdout=holdout, split="train")
        if not part:
            raise DataError(src.path, f"source {src.name!r} has no person with labelled keypoints to train on")
        samples.extend(part)
        sizes.append(len(part))
    return samples, sizes


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


def tune_allocator() -> str:
    """Keep large tensor buffers in the process between iterations.

    glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh mmap and
    unmaps it on free, so each training step page-faults its largest activations back in
    (measured: several hundred thousand minor faults per step, 15-25% of the step time at batch
    32). With tcmalloc preloaded (``LD_PRELOAD=libtcmalloc_minimal.so.4``, what
    ``benchmarks.train_speed`` measures fastest) nothing is needed; otherwise glibc is told not to
    use mmap for large blocks and not to trim the heap. ``STARPOSE_MALLOC_TUNING=0`` leaves the
    allocator alone. Returns what was done."""
    import ctypes
    import ctypes.util

    if os.environ.get("STARPOSE_MALLOC_TUNING", "1") == "0":
        return "default allocator"
    if "tcmalloc" in os.environ.get("LD_PRELOAD", "") or "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return "preloaded " + os.path.basename(os.environ["LD_PRELOAD"].split(":")[0])
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "default allocator"
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    ok = mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, 1 << 30) and mallopt(m_top_pad, 64 << 20)
    return "glibc without mmap/trim" if ok else "default allocator"


def _augment_config(cfg: TrainConfig) -> AugmentConfig:
    if not cfg.augment:
        return AugmentConfig.none()
    aug = AugmentConfig.with_photometric() if cfg.photometric else AugmentConfig()
    return dataclasses.replace(aug, det_box_prob=cfg.det_box_prob, truncate_prob=cfg.truncate_prob,
                               distractor_prob=cfg.distractor_prob)


def _resume_mismatch(last: Path, config_file: Path, cfg: TrainConfig, error: RuntimeError) -> str:
    """The error for a ``--resume`` whose checkpoint holds another model than the options build: which of the
    model-shaping options differ from the run's ``config.json``, else the first line torch gave."""
    shaping = ("variant", "input_size", "num_keypoints")
    differing = []
    try:
        saved = json.loads(config_file.read_text())
        now = cfg.to_dict()
        shown = {"input_size": lambda v: f"{v[1]}x{v[0]}" if isinstance(v, list) and len(v) == 2 else v}
        differing = [f"{k} {shown.get(k, str)(saved[k])} (this run: {shown.get(k, str)(now.get(k))})"
                     for k in shaping if k in saved and saved[k] != now.get(k)]
    except (OSError, ValueError):
        pass
    detail = "; ".join(differing) if differing else str(error).strip().splitlines()[-1].strip()
    return (f"{last}: it holds another model than these options build ({detail}); resume with the options the run "
            f"started with (they are in {config_file})")


# The files a run writes into its work_dir (all through atomic_write).
_RUN_FILES = ("last.pt", "best.safetensors", "final.safetensors", "history.json", "config.json", "mix.json")


def train(
    cfg: TrainConfig,
    work_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    max_iters_per_epoch: int | None = None,
    note_every_s: float = 600.0,
) -> TrainResult:
    """Train ``cfg`` into ``work_dir`` (``last.pt`` each epoch, ``best.safetensors`` on the best
    validation metric, ``final.safetensors`` at the end, ``history.json``). Without a progress
    bar, a line with the running loss and speed is logged every ``note_every_s`` seconds."""
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
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    allocator = tune_allocator() if device.type == "cpu" else "cuda"
    mix = build_mix(cfg)
    if mix is not None:
        if cfg.dataset != "coco":
            raise ValueError("training mixes are COCO-17 (--dataset coco)")
        samples, sizes = build_mix_samples(mix, spec)
    else:
        samples, sizes = build_train_samples(cfg, spec), None
    if not samples:
        raise ValueError(f"{cfg.train_ann}: no person with labelled keypoints to train on")
    if not 0.0 <= cfg.det_box_prob <= 1.0:
        raise ValueError(f"det_box_prob must be in [0, 1], got {cfg.det_box_prob}")
    if not 0.0 <= cfg.truncate_prob <= 1.0:
        raise ValueError(f"truncate_prob must be in [0, 1], got {cfg.truncate_prob}")
    if not 0.0 <= cfg.distractor_prob <= 1.0:
        raise ValueError(f"distractor_prob must be in [0, 1], got {cfg.distractor_prob}")
    if cfg.val_no_flip and not (mix is not None and cfg.flip_test):
        raise ValueError("val_no_flip compares the flip test with one pass on the held-out people of a mix: "
                         "it needs mix training with the flip test on")
    if cfg.distractor_prob and cfg.augment and is_main:
        log(f"neighbours: an unlabelled person from another photo stands beside {cfg.distractor_prob:.0%} of the people")
    if cfg.truncate_prob and cfg.augment and is_main:
        log(f"frame truncation: the photo's edge cuts through {cfg.truncate_prob:.0%} of the people "
            "(keypoints beyond it unlabelled, box clipped)")
    if cfg.det_box_prob and cfg.augment:
        with_box = sum(1 for s in samples if s.extra and s.extra.get("det_box") is not None)
        if not with_box:
            raise ValueError("--det-box-prob needs detector boxes: give the mix's sources a \"boxes\" file "
                             "(recipes/default_weights/detector_boxes.py)")
        if is_main:
            log(f"detector boxes: {with_box} of {len(samples)} people, used {cfg.det_box_prob:.0%} of the time")
    dataset = TopDownDataset(
        samples, spec, train=True, augment=_augment_config(cfg), seed=cfg.seed
    )
    if mix is not None:
        from ..data.mix import MixSampler

        sampler: Sampler = MixSampler(sizes, [s.weight for s in mix.sources], mix.epoch_size, seed=cfg.seed,
                                      rank=rank, world=world)
    elif distributed:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    else:
        sampler = EpochShuffle(len(dataset), cfg.seed)
    per_epoch = len(sampler) if mix is not None else len(dataset)
    loader = DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers, collate_fn=collate,
        drop_last=per_epoch >= cfg.batch_size * world * 2,
        # Not persistent: each epoch's workers get a fresh copy of the dataset, so they see its
        # set_epoch(); persistent workers would keep augmenting with the epoch they started with.
        persistent_workers=False,
    )

    model = build_model(cfg, spec).to(device)
    lineage = _init_lineage(cfg.init_weights)
    lr = cfg.lr(world)
    # AdamW: decoupled weight decay (with weight_decay 0, the default, exactly Adam)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    # Mixed precision: float16 with a loss scaler on CUDA (--amp, the default there); bfloat16 on a
    # CPU with --bf16 (no scaler: bfloat16 has float32's range). Weights, optimizer, loss and
    # validation stay float32 either way.
    cpu_bf16 = cfg.bf16 and device.type == "cpu"
    use_amp = (cfg.amp and device.type == "cuda") or cpu_bf16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not cpu_bf16)
    swap_groups = ()
    if mix is not None and any(src.swap_tolerant for src in mix.sources):
        swap_groups = limb_swap_groups(spec.keypoint_names)
        if not swap_groups:
            raise ValueError(f"the mix marks sources swap_tolerant, but the {spec.name} keypoints have no "
                             "left/right arms or legs to swap")
    criterion = KLDiscretLoss(use_target_weight=True, swap_groups=swap_groups)
    ema = None
    if cfg.ema_decay:
        from .ema import ModelEMA

        ema = ModelEMA(model, cfg.ema_decay)

    start_epoch, iteration, history, best = 0, 0, [], None
    last = work_dir / "last.pt"
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        state = load_checkpoint(last)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ValueError(_resume_mismatch(last, work_dir / "config.json", cfg, e)) from e
        optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        if ema is not None:
            if "ema" in state:
                ema.load_state_dict(state["ema"])
            else:
                ema = type(ema)(model, cfg.ema_decay)
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        history = json.loads(state.get("history", "[]"))
        best = state.get("best")
        if "lineage" in state:
            lineage = json.loads(state["lineage"])
        torch.set_rng_state(state["torch_rng"])
        if is_main:
            log(f"resumed from {last} at epoch {start_epoch} (iteration {iteration})")
    train_model = model
    if distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None
        )
    val_sets = _validation_sets(cfg, mix, spec) if is_main else []

    if is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        # A run killed while writing one of its files (SIGKILL, out of memory) left that write's temporary
        # file; the previous file is intact, and this process is the folder's only writer from here on.
        stale = remove_stale_temps(work_dir, _RUN_FILES)
        if stale:
            log(stale_temps_line(stale, work_dir))
        atomic_write_json(work_dir / "config.json", cfg.to_dict(), indent=1)
        if mix is not None:
            atomic_write_json(work_dir / "mix.json", mix.to_dict(), indent=1)
        n_params = sum(p.numel() for p in model.parameters())
        log(f"training {cfg.variant} ({n_params:,} params) on {len(dataset)} people, {world} process(es), "
            f"lr {lr:.2e}, batch {cfg.batch_size}x{world}, {cfg.epochs} epochs, device {device}, "
            f"{torch.get_num_threads()} thread(s), {cfg.num_workers} loader worker(s), {allocator}"
            + (", bfloat16 autocast" if cpu_bf16 else ""))
        if cpu_bf16 and not _cpu_has_fast_bf16():
            log("warning: --bf16 on a CPU without AVX512-BF16 or AMX: oneDNN emulates bfloat16, which is "
                "usually slower than float32 (benchmarks.train_speed measures it)")
        if mix is not None:
            counts = sampler.counts()
            log(f"mix {mix.name}: {per_epoch * world} people per epoch; " + ", ".join(
                f"{s.name} {c} of {n} ({s.labels})" for s, c, n in zip(mix.sources, counts, sizes)))
            if swap_groups:
                log("left/right swaps forgiven (arms, legs each) for: "
                    + ", ".join(s.name for s in mix.sources if s.swap_tolerant))
        if val_sets:
            log("validation: " + ", ".join(f"{v.name} ({len(v.samples)} people, {v.metric})" for v in val_sets)
                + ("; best by the mean of the flip-test and one-pass scores" if cfg.val_no_flip else ""))

    people_per_step = cfg.batch_size * world
    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        train_model.train()
        t0 = time.time()
        tot, count = 0.0, 0
        it = loader
        bar = None
        last_note = time.time()
        if progress and is_main:
            from tqdm import tqdm

            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
            it = bar
        for step, batch in enumerate(it):
            if max_iters_per_epoch is not None and step >= max_iters_per_epoch:
                break
            for g in optimizer.param_groups:
                g["lr"] = lr * lr_factor(cfg, epoch, iteration)
            loss = train_step(train_model, batch, optimizer, criterion, scaler, device, use_amp)
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, iteration {iteration}")
            if ema is not None:
                ema.update(model)
            iteration += 1
            tot += loss  # the loss sums over the batch: tot / count is per person
            count += batch["image"].shape[0]
            if bar is not None:
                bar.set_postfix(loss=f"{loss / batch['image'].shape[0]:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
            elif is_main and note_every_s and time.time() - last_note >= note_every_s:
                last_note = time.time()
                log(f"epoch {epoch + 1} step {step + 1}/{len(loader)}: loss {tot / max(count, 1):.5f}, "
                    f"{count / max(last_note - t0, 1e-9):.1f} people/s")
        if distributed:
            t = torch.tensor([tot, count], dtype=torch.float64, device=device)
            dist.all_reduce(t)
            tot, count = float(t[0]), float(t[1])
        seconds = time.time() - t0
        record = {"epoch": epoch + 1, "loss": tot / max(count, 1), "lr": optimizer.param_groups[0]["lr"],
                  "seconds": round(seconds, 2), "iterations": iteration,
                  "people_per_s": round(count / max(seconds, 1e-9), 2)}
        if is_main and cfg.val_interval and ((epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs):
            eval_model = ema.module if ema is not None else model
            if val_sets:
                from ..evaluation.holdout import evaluate_sets, selection_score

                if cfg.val_no_flip:  # one set of forward passes: the flip test's unflipped pass is the one pass
                    results, plain = evaluate_sets(eval_model, val_sets, spec, flip=True, with_plain=True)
                else:
                    results, plain = evaluate_sets(eval_model, val_sets, spec, flip=cfg.flip_test), None
                record["val"] = results
                selection = [v for v in val_sets if not v.name.startswith("extra:")] or val_sets
                metric = selection_score(results, selection)
                if plain is not None:
                    record["val_no_flip"] = plain
                    record["val_score_flip"] = metric
                    record["val_score_no_flip"] = selection_score(plain, selection)
                    metric = (metric + record["val_score_no_flip"]) / 2.0
                record["val_score"] = metric
            elif cfg.val_ann:
                metrics = evaluate_config(eval_model, cfg, spec)
                record["val"] = metrics
                metric = metrics.get("PCKh" if cfg.dataset == "mpii" else "AP", -1)
            else:
                metric = None
            if metric is not None and (best is None or metric > best):
                best = metric
                meta = _weights_metadata(cfg, mix, lineage, epoch + 1, iteration * people_per_step, record)
                save_weights(work_dir / "best.safetensors", eval_model, meta)
                record["best"] = True
        history.append(record)
        if is_main:
            log(json.dumps(record))
            if (epoch + 1) % cfg.checkpoint_interval == 0 or epoch + 1 == cfg.epochs:
                state = {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), "epoch": epoch + 1, "iteration": iteration,
                    "history": json.dumps(history), "best": best, "torch_rng": torch.get_rng_state(),
                    "config": json.dumps(cfg.to_dict()), "lineage": json.dumps(lineage),
                }
                if ema is not None:
                    state["ema"] = ema.state_dict()
                save_checkpoint(last, state)
            atomic_write_json(work_dir / "history.json", history, indent=1)
        if distributed:
            dist.barrier()
    final = None
    if is_main:
        final_model = ema.module if ema is not None else model
        meta = _weights_metadata(cfg, mix, lineage, cfg.epochs, iteration * people_per_step,
                                 history[-1] if history else {})
        final = save_weights(work_dir / "final.safetensors", final_model, meta)
    return TrainResult(work_dir=work_dir, epochs_run=cfg.epochs - start_epoch, history=history,
                       final_weights=final, best_metric=best)


def _cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers: absent from some builds
        return False


def train_step(model: torch.nn.Module, batch: dict, optimizer: torch.optim.Optimizer, criterion: torch.nn.Module,
               scaler: torch.amp.GradScaler, device: torch.device, use_amp: bool = False) -> float:
    """One optimizer step on a collated batch; returns the batch's summed loss (not checked for
    finiteness: the caller decides). ``benchmarks.train_speed`` times exactly this. ``use_amp``
    autocasts the forward pass (float16 on CUDA, bfloat16 on a CPU); the loss is float32."""
    images = batch["image"].to(device, non_blocking=True)
    targets = (batch["target_x"].to(device), batch["target_y"].to(device))
    weights = batch["target_weight"].to(device)
    with torch.autocast(device.type, enabled=use_amp):
        pred = model(images)
    loss = criterion((pred[0].float(), pred[1].float()), targets, weights, swap_mask=batch.get("swap_tolerant"))
    if not torch.isfinite(loss):
        return float(loss.item())
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.item())


def _validation_sets(cfg: TrainConfig, mix, spec: PoseSpec) -> list:
    """The mix's held-out people (human labels), plus ``val_ann`` as an extra, reported set."""
    if mix is None:
        return []
    from ..evaluation.holdout import coco_gt_set, validation_sets

    sets = validation_sets(mix, spec)
    if cfg.val_ann:
        sets.append(coco_gt_set("extra:" + Path(cfg.val_ann).stem, cfg.val_ann, cfg.val_images, spec))
    return sets


def _init_lineage(init_weights: str) -> list[dict]:
    """The runs behind ``init_weights`` (from its safetensors metadata), oldest first."""
    if not init_weights or not str(init_weights).endswith(".safetensors"):
        return [{"init": Path(init_weights).name}] if init_weights else []
    from safetensors import safe_open

    with safe_open(str(init_weights), "pt") as f:
        meta = f.metadata() or {}
    past = json.loads(meta["lineage"]) if "lineage" in meta else []
    if not past:
        past = [{k: meta[k] for k in ("recipe", "epochs", "status", "coco_fixture_ap_gt_boxes") if k in meta}]
    return past


def _weights_metadata(cfg: TrainConfig, mix, lineage: list[dict], epochs: int, people_seen: int,
                      record: dict) -> dict[str, str]:
    """safetensors metadata: what these weights are and where they come from."""
    run = {"epochs": epochs, "people_seen": people_seen, "batch_size": cfg.batch_size, "base_lr": cfg.base_lr,
           "lr_schedule": cfg.lr_schedule, "ema_decay": cfg.ema_decay, "weight_decay": cfg.weight_decay,
           "photometric": cfg.photometric, **({"det_box_prob": cfg.det_box_prob} if cfg.det_box_prob else {}),
           **({"truncate_prob": cfg.truncate_prob} if cfg.truncate_prob else {}),
           **({"distractor_prob": cfg.distractor_prob} if cfg.distractor_prob else {}),
           **({"val_no_flip": True} if cfg.val_no_flip else {}),
           "mix": mix.describe() if mix is not None else Path(cfg.train_ann).name,
           "seed": cfg.seed, "of_epochs": cfg.epochs,
           **{k: round(float(record[k]), 4) for k in ("val_score", "val_score_flip", "val_score_no_flip")
              if record.get(k) is not None}}
    return {"variant": cfg.variant, "epoch": str(epochs), "people_seen": str(people_seen),
            "lineage": json.dumps(lineage + [run]), "val": json.dumps(record.get("val", {})),
            "val_score": str(record.get("val_score", "")),
            "mix": json.dumps(mix.summary()) if mix is not None else ""}


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
