"""Quantization-aware training of the deploy graph (PT2E: ``prepare_qat_pt2e`` → train → ``convert_pt2e``).

The graph being trained is the int8-ready deploy form: BatchNorm is already folded into the
convolutions, so the two BatchNorm traps of PT2E QAT do not arise (pytorch#115715: BN
statistics in a QAT graph; torchao PR 4758: ``move_exported_model_to_eval`` rebuilding BN with
default eps/momentum). :func:`eval_mode_check` proves it on every run: the prepared graph has
no batch-norm op, and switching it to eval and back changes no output.

Training uses the project's own pieces, as ``starpose.train`` does: :class:`TopDownDataset`
crops with the same augmentations and SimCC targets, :class:`KLDiscretLoss`, Adam, linear
warm-up, a progress bar, and atomic checkpoints readable with ``torch.load(weights_only=True)``.
A checkpoint holds the prepared graph's state dict (float weights and fake-quantize state); the
graph itself is rebuilt from the variant (same architecture → same graph) when it is loaded.
Observers are frozen for the last epochs (``freeze_observers_epoch``), so the final epochs train
against fixed quantization grids, as ExecuTorch's and torchao's QAT examples do.

Targets (``QATConfig.targets``): ``labels`` trains on the data set's keypoints (SimCC Gaussian
targets, visibility weights), like float training. ``fp32`` trains the fake-quantized graph to
reproduce the float network it started from: the target of every keypoint is the float
model's own SimCC distribution on the same (augmented) crop, ``softmax(fp32 logits)``, all
keypoints weighted alike. That asks QAT for what the parity gates measure (int8 close to fp32)
instead of re-fitting the labels, which on weak float weights moves the model away from fp32.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from starpose.data import KLDiscretLoss, collate
from starpose.fileio import remove_stale_temps, stale_temps_line
from starpose.train.checkpoint import load_checkpoint, save_checkpoint, save_weights
from starpose.train.loop import EpochShuffle

from .calibration import CocoSource, person_dataset
from .pt2e import QuantizedNetwork, Timings, convert, float_weights, prepare
from .schemes import SCHEMES, QuantizerSpec, Scheme

__all__ = ["QATConfig", "QATResult", "train_qat", "load_qat", "eval_mode_check", "EvalModeReport", "QAT_CHECKPOINT",
           "QAT_TARGETS"]

QAT_TARGETS = ("labels", "fp32")
QAT_CHECKPOINT = "qat_last.pt"
QAT_FLOAT_WEIGHTS = "qat_float.safetensors"
CHECKPOINT_KIND = "starpose-qat"


@dataclass(frozen=True)
class QATConfig:
    """QAT hyper-parameters. ``max_steps`` caps the optimizer steps over all epochs (tests,
    smoke runs); ``freeze_observers_epoch`` freezes the quantization ranges from that epoch on
    (None: never); ``lr`` is Adam's, reached after ``warmup_steps`` of linear warm-up and decayed
    by cosine to ``lr * final_lr_ratio``."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 20
    final_lr_ratio: float = 0.05
    augment: bool = True
    freeze_observers_epoch: int | None = None
    max_steps: int | None = None
    seed: int = 0
    num_workers: int = 0
    targets: str = "labels"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("QAT needs epochs >= 1 and batch_size >= 1")
        if self.targets not in QAT_TARGETS:
            raise ValueError(f"QAT targets must be one of {', '.join(QAT_TARGETS)}, got {self.targets!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be positive, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lr_at(self, step: int, total: int) -> float:
        warmup = min(self.warmup_steps, total // 5)  # short runs (smoke tests) warm up briefly
        if warmup and step < warmup:
            return self.lr * (0.1 + 0.9 * step / warmup)
        span = max(total - warmup, 1)
        t = min(max(step - warmup, 0) / span, 1.0)
        return self.lr * (self.final_lr_ratio + (1 - self.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass(frozen=True)
class EvalModeReport:
    """Outputs of the prepared graph on fixed crops, in eval mode, before and after a round trip
    through train mode (``move_exported_model_to_train`` → ``move_exported_model_to_eval``)."""

    batch_norm_ops: int
    max_abs_change: float
    max_abs_vs_float: float

    @property
    def ok(self) -> bool:
        return self.batch_norm_ops == 0 and self.max_abs_change == 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


_BN_TARGETS = ("batch_norm", "_native_batch_norm_legit", "native_batch_norm", "cudnn_batch_norm")


@torch.no_grad()
def eval_mode_check(prepared: torch.fx.GraphModule, images: torch.Tensor, reference: nn.Module | None = None) -> EvalModeReport:
    """Count batch-norm ops in the prepared graph and compare its eval-mode outputs on
    ``images`` before and after a train/eval round trip, with observers disabled so that the
    forward passes themselves change nothing. ``reference``: the float network, for the
    distance of fake-quantized outputs to float ones. Leaves the graph in eval mode with
    observers as they were."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    bn = sum(1 for n in prepared.graph.nodes
             if n.op == "call_function" and any(t in str(n.target) for t in _BN_TARGETS))
    states = _observer_states(prepared)
    _set_observers(prepared, False)
    move_exported_model_to_eval(prepared)
    before = prepared(images)
    move_exported_model_to_train(prepared)
    move_exported_model_to_eval(prepared)
    after = prepared(images)
    _restore_observers(prepared, states)
    change = max(float((a - b).abs().max()) for a, b in zip(before, after))
    vs_float = float("nan")
    if reference is not None:
        vs_float = max(float((a - r).abs().max()) for a, r in zip(before, reference(images)))
    return EvalModeReport(bn, change, vs_float)


def _fake_quant_modules(model: nn.Module) -> list[nn.Module]:
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    return [m for m in model.modules() if isinstance(m, FakeQuantizeBase)]


def _observer_states(model: nn.Module) -> list[bool]:
    return [bool(m.observer_enabled[0]) for m in _fake_quant_modules(model)]


def _set_observers(model: nn.Module, enabled: bool) -> None:
    from torchao.quantization.pt2e import disable_observer, enable_observer

    model.apply(enable_observer if enabled else disable_observer)


def _restore_observers(model: nn.Module, states: list[bool]) -> None:
    for m, on in zip(_fake_quant_modules(model), states):
        if on:
            m.enable_observer()
        else:
            m.disable_observer()


@dataclass
class QATResult:
    """A finished (or resumed-and-finished) QAT run."""

    prepared: torch.fx.GraphModule
    quantized: QuantizedNetwork
    float_network: nn.Module  # int8-ready float twin with the QAT-trained weights
    checkpoint: Path
    float_weights_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_check: EvalModeReport | None = None
    timings: Timings = field(default_factory=Timings)


def _scheme_qspec(scheme: Scheme) -> QuantizerSpec:
    if not scheme.train or scheme.executorch is None or not scheme.executorch.qat:
        raise ValueError(f"scheme {scheme.name} is not a quantization-aware training scheme")
    return scheme.executorch


def train_qat(
    network: nn.Module,
    source: CocoSource,
    work_dir: str | Path,
    cfg: QATConfig = QATConfig(),
    *,
    scheme: Scheme = SCHEMES["int8-qat"],
    checkpoint_meta: dict[str, str] | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> QATResult:
    """QAT of a deploy ``network`` on the people of ``source`` into ``work_dir``:
    ``qat_last.pt`` after every epoch (atomic), ``qat_float.safetensors`` (the trained float
    weights of the int8-ready network) at the end; returns the converted int8 network too.
    ``checkpoint_meta`` (e.g. variant, source weights' sha256) is stored in the checkpoint."""
    qspec = _scheme_qspec(scheme)
    work_dir = Path(work_dir)
    timings = Timings()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    spec = network.spec
    ckpt_path = work_dir / QAT_CHECKPOINT
    if resume:  # read and checked before the (slow) prepare
        state = _read_checkpoint(ckpt_path)
        trained_on = json.loads(state.get("config", "{}")).get("targets", "labels")
        if trained_on != cfg.targets:
            raise ValueError(f"{ckpt_path}: this QAT run trained on {trained_on} targets; resume it with "
                             f"--targets {trained_on} (or start a new run in another --out)")
    with timings.measure("prepare"):
        prepared = prepare(network, qspec)
    dataset = person_dataset(source, spec, train=True, augment=cfg.augment, seed=cfg.seed)
    sampler = EpochShuffle(len(dataset), cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        collate_fn=collate, drop_last=len(dataset) >= 2 * cfg.batch_size)
    steps_per_epoch = len(loader)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    params = [p for p in prepared.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = KLDiscretLoss(use_target_weight=True)
    targets = _label_targets
    if cfg.targets == "fp32":
        targets = _Fp32Targets(network)
        criterion = KLDiscretLoss(label_softmax=True, use_target_weight=True)
    start_epoch, step, history = 0, 0, []
    if resume:
        _check_same_quantized_ops(ckpt_path, state, prepared, scheme)
        prepared.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]), int(state["iteration"])
        history = json.loads(state.get("history", "[]"))
        log(f"resumed QAT from {ckpt_path} at epoch {start_epoch} (step {step})")
    work_dir.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temps(work_dir, (QAT_CHECKPOINT, QAT_FLOAT_WEIGHTS))  # a killed run's half-writes
    if stale:
        log(stale_temps_line(stale, work_dir))
    probe = next(iter(DataLoader(person_dataset(source, spec), batch_size=4, collate_fn=collate)))["image"]
    log(f"QAT of {getattr(network, 'variant', 'custom')} on {len(dataset)} people ({source}), "
        f"{cfg.epochs} epochs x {steps_per_epoch} steps, batch {cfg.batch_size}, lr {cfg.lr:.1e}, "
        f"targets: {'the fp32 model' if cfg.targets == 'fp32' else 'the labels'}")
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    for epoch in range(start_epoch, cfg.epochs):
        if step >= total_steps:
            break
        if cfg.freeze_observers_epoch is not None and epoch >= cfg.freeze_observers_epoch:
            _set_observers(prepared, False)
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        move_exported_model_to_train(prepared)
        t0 = time.time()
        tot, count = 0.0, 0
        it: Any = loader
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(loader, desc=f"qat {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
            it = bar
        with timings.measure("train"):
            for batch in it:
                if step >= total_steps:
                    break
                for g in optimizer.param_groups:
                    g["lr"] = cfg.lr_at(step, total_steps)
                pred = prepared(batch["image"])
                loss = criterion(pred, *targets(batch))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"QAT loss became {loss.item()} at epoch {epoch + 1}, step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                tot += float(loss.item())
                count += int(batch["image"].shape[0])
                if bar is not None:
                    bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
        if bar is not None:
            bar.close()
        record = {"epoch": epoch + 1, "loss": tot / max(count, 1), "steps": step,
                  "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2)}
        history.append(record)
        log(json.dumps(record))
        move_exported_model_to_eval(prepared)
        save_checkpoint(ckpt_path, {
            "kind": CHECKPOINT_KIND, "model": prepared.state_dict(), "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1, "iteration": step, "history": json.dumps(history),
            "config": json.dumps(cfg.to_dict()), "scheme": scheme.name, "float_depthwise": qspec.float_depthwise,
            **(checkpoint_meta or {}),
        })
    move_exported_model_to_eval(prepared)
    twin = float_weights(prepared, network)
    check = eval_mode_check(prepared, probe, reference=twin)
    if not check.ok:
        raise RuntimeError(f"the prepared QAT graph changes its eval outputs across a train/eval switch: {check}")
    weights_path = save_weights(work_dir / QAT_FLOAT_WEIGHTS, twin,
                                {"variant": str(getattr(network, "variant", "custom")), "kind": "int8-ready deploy form"})
    with timings.measure("convert"):
        converted = convert(prepared)
    quantized = QuantizedNetwork(converted, network, scheme, qspec,
                                 {"source": Path(source.ann_file).name, "crops": len(dataset), "trained_steps": step})
    return QATResult(prepared, quantized, twin, ckpt_path, weights_path, history, check, timings)


def _label_targets(batch: dict[str, Any]) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    return (batch["target_x"], batch["target_y"]), batch["target_weight"]


class _Fp32Targets:
    """The float network's SimCC logits on the batch (softmaxed by the loss), every keypoint
    weighted 1. A frozen copy: training the prepared graph never moves its own target."""

    def __init__(self, network: nn.Module) -> None:
        import copy

        self.teacher = copy.deepcopy(network).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, batch: dict[str, Any]) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        sx, sy = self.teacher(batch["image"])
        return (sx, sy), torch.ones(sx.shape[:2], dtype=sx.dtype)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    state = load_checkpoint(path)  # its errors name the path
    if state.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path}: not a StarPose QAT checkpoint (kind {state.get('kind')!r}; "
                         f"expected '{CHECKPOINT_KIND}', written by `starpose-mobile qat`)")
    return state


def _quantized_tensor_names(state_dict: dict[str, Any]) -> set[str]:
    """Names of the activation fake-quantizers a prepared QAT graph's state holds
    (``activation_post_process_N``): which tensors the scheme quantizes, by count."""
    return {k.split(".", 1)[0] for k in state_dict if k.startswith("activation_post_process_")}


def _check_same_quantized_ops(path: Path, state: dict[str, Any], prepared: nn.Module, scheme: Scheme) -> None:
    """A clear error for a checkpoint whose prepared graph quantized other tensors than this
    version's scheme does (the fake-quantizers are numbered in graph order, so loading it anyway
    would fail on a key or, worse, pair scales with the wrong tensors)."""
    trained, own = _quantized_tensor_names(state["model"]), _quantized_tensor_names(prepared.state_dict())
    if trained != own:
        raise ValueError(f"{path}: this QAT checkpoint quantizes {len(trained)} tensors, this version's "
                         f"{scheme.name} scheme {len(own)}: it was trained with a different choice of int8 ops "
                         f"(before 2026-12-03 the linear attention's key-value summary was int8; it stays float "
                         f"now); run `starpose-mobile qat` again")


def load_qat(path: str | Path, network: nn.Module, *, scheme: Scheme = SCHEMES["int8-qat"]) -> tuple[QATResult, dict[str, Any]]:
    """Rebuild the prepared QAT graph of ``network``'s architecture from a checkpoint written by
    :func:`train_qat` and convert it. ``network`` supplies the architecture (its weights are
    overwritten by the checkpoint's). Returns the result and the checkpoint's extra fields."""
    path = Path(path)
    state = _read_checkpoint(path)
    qspec = _scheme_qspec(scheme)
    trained_float_dw = bool(state.get("float_depthwise", True))  # older checkpoints: the default, float
    if trained_float_dw != qspec.float_depthwise:
        how = "float" if trained_float_dw else "int8 (--int8-depthwise)"
        raise ValueError(f"{path}: this QAT checkpoint was trained with {how} depthwise convolutions; "
                         f"export it with{'out' if trained_float_dw else ''} --int8-depthwise")
    prepared = prepare(network, qspec)
    _check_same_quantized_ops(path, state, prepared, scheme)
    try:
        prepared.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: the checkpoint does not fit {getattr(network, 'variant', 'this network')} ({e})") from e
    from torchao.quantization.pt2e import move_exported_model_to_eval

    move_exported_model_to_eval(prepared)
    twin = float_weights(prepared, network)
    converted = convert(prepared)
    extra = {k: v for k, v in state.items() if isinstance(v, (str, int, float))}
    quantized = QuantizedNetwork(converted, network, scheme, qspec,
                                 {"checkpoint": path.name, "trained_steps": int(state.get("iteration", 0))})
    history = json.loads(state.get("history", "[]"))
    return QATResult(prepared, quantized, twin, path, path.with_name(QAT_FLOAT_WEIGHTS), history), extra
