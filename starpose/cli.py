"""``starpose-mobile``: the command line. Each command is a thin call into its package, imported
lazily, so that the core never depends on the exporters or their heavy optional dependencies.

Every command checks its input paths before it imports torch or loads a model, and prints its
own progress; what the libraries underneath print is captured and shown only with ``--verbose``
(accepted by every command) or when their call fails (:mod:`starpose._quiet`)."""
from __future__ import annotations

import contextlib
import sys

import click

from . import __version__, _quiet


def require_extra(module: str, extra: str) -> None:
    """Import ``module`` or exit with a message naming the extra that provides it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as e:
        raise click.ClickException(
            f"{module} is not installed ({e}); install it with: pip install 'starpose-mobile[{extra}]'"
        ) from e


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _quiet.set_verbose(True)


def _verbose_option() -> click.Option:
    return click.Option(["--verbose"], is_flag=True, expose_value=False, is_eager=True, callback=_set_verbose,
                        help="Show everything the libraries underneath print (converter progress, native logs).")


class _Group(click.Group):
    """Adds ``--verbose`` to every command (before or after the command name)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "verbose" for p in cmd.params):
            cmd.params.append(_verbose_option())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context):
        _quiet.clear_held()  # warnings held back belong to this command only
        try:
            return super().invoke(ctx)
        except BaseException as e:
            if getattr(e, "exit_code", getattr(e, "code", 1)) not in (0, None):
                _show_held()
            raise


def _show_held() -> None:
    """Library warnings held back during a command that then failed."""
    held = _quiet.held_output()
    if held and not _quiet.verbose():
        click.echo(f"--- warnings from the libraries (held back) ---\n{held.rstrip()}", err=True)


def _check_paths(*items: tuple[str, str | None, str]) -> None:
    """Fail at once, before torch is imported or a model loads, when an input path is missing.
    Each item: (what, path or None, "file" | "dir" | "any")."""
    from pathlib import Path

    for what, path, kind in items:
        if path is None:
            continue
        p = Path(path)
        want = {"file": "file", "dir": "folder", "any": "file or folder"}[kind]
        if not p.exists():
            raise click.ClickException(f"{p}: no such {want} ({what})")
        if (kind == "file" and not p.is_file()) or (kind == "dir" and not p.is_dir()):
            raise click.ClickException(f"{p}: expected a {want}, found a {'folder' if p.is_dir() else 'file'} ({what})")


def _given_options(ctx: click.Context) -> set[str]:
    """Names of the options the user gave on the command line (not their defaults)."""
    from click.core import ParameterSource

    return {name for name in ctx.params
            if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)}


def _check_weights(weights: str | None) -> None:
    """``--weights``: ``default``, ``random`` or an existing file."""
    if weights not in (None, "default", "random"):
        _check_paths(("--weights", weights, "file"))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="starpose-mobile")
@click.option("--verbose", is_flag=True, expose_value=False, is_eager=True, callback=_set_verbose,
              help="Show everything the libraries underneath print (also accepted after the command name).")
def main() -> None:
    """StarPose Mobile: on-device human pose estimation (train, evaluate, export, verify, bench)."""
    _quiet.install_cli_warnings()


@main.command("models")
def models_cmd() -> None:
    """List the registered variants with their parameter counts."""
    from .models import create_model, list_models
    from .models.weights import available_pretrained

    have = set(available_pretrained())
    for name in list_models():
        m = create_model(name)
        n = sum(p.numel() for p in m.parameters())
        click.echo(f"{name:12s} {n:>10,d} params   pretrained: {'yes' if name in have else 'no'}")



def _finite(value: float | None, option: str) -> float | None:
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param_hint=option)
    return value


def _finite_option(ctx, param, value: float | None) -> float | None:
    """Option callback: a finite number (click's FloatRange lets nan and inf through)."""
    return _finite(value, param.opts[0])


def _positive(ctx, param, value: float | None) -> float | None:
    """Option callback: a finite number above 0 (a learning rate)."""
    if value is not None and not value > 0:
        raise click.BadParameter(f"{value} is not above 0", param_hint=param.opts[0])
    return _finite(value, param.opts[0])


def _check_out_path(ctx, param, value: str | None) -> str | None:
    """Option callback for a file or folder a command writes: a name whose folder cannot be made (a file stands
    where a folder of its path should be) fails now, not after the work."""
    from pathlib import Path

    if value is None:
        return value
    for parent in Path(value).parents:
        if parent.exists():
            if not parent.is_dir():
                raise click.BadParameter(f"{value}: {parent} is a file, so no folder can be made there",
                                         param_hint=param.opts[0])
            break
    return value


def _check_size(ctx, param, value: str | None) -> tuple[int, int] | None:
    """Option callback: a HEIGHTxWIDTH value is checked as it is parsed, before any other check runs, and
    reaches the command as (width, height)."""
    return _split_size(value, param.opts[0])


MAX_INPUT_SIDE = 2048  # an input side beyond this is a typo (100000x100000 would allocate 28 GiB per frame)


def _split_size(value: str | None, option: str = "--input-size") -> tuple[int, int] | None:
    """``256x192`` (h x w, as the paper writes it) → (w, h); both sides positive multiples of 32 (the
    networks' stride) up to ``MAX_INPUT_SIDE``, else a usage error naming ``option``."""
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError as e:
        raise click.BadParameter(f"expected HEIGHTxWIDTH such as 256x192, got {value!r}", param_hint=option) from e
    if not all(0 < v <= MAX_INPUT_SIDE and v % 32 == 0 for v in (h, w)):
        raise click.BadParameter(f"{value}: each side must be a multiple of 32 from 32 to {MAX_INPUT_SIDE}",
                                 param_hint=option)
    return (w, h)


@main.command("train")
@click.option("--config", "config_name", default=None, help="Named recipe, e.g. coco_256x192_t (see --list-configs).")
@click.option("--list-configs", is_flag=True, help="List the named recipes and exit.")
@click.option("--data-root", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Folder holding coco/, crowdpose/, mpii/ (recipe paths are relative to it).")
@click.option("--ann-file", type=click.Path(dir_okay=False), help="COCO person_keypoints json to train on (overrides the recipe).")
@click.option("--img-dir", type=click.Path(file_okay=False), help="Folder of the training images.")
@click.option("--val-ann-file", type=click.Path(dir_okay=False), help="Validation annotations.")
@click.option("--val-img-dir", type=click.Path(file_okay=False), help="Validation images.")
@click.option("--val-det-file", type=click.Path(dir_okay=False), help="COCO-results person detections for validation.")
@click.option("--dataset", type=click.Choice(["coco", "crowdpose", "mpii"]), default=None)
@click.option("--variant", default=None, help="starpose_t | starpose_s | starpose_m | starpose_l")
@click.option("--input-size", default=None, callback=_check_size, help="HEIGHTxWIDTH, e.g. 256x192.")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--lr", "base_lr", type=float, default=None, callback=_positive,
              help="Base lr (scaled by batch/512 unless --no-scale-lr).")
@click.option("--no-scale-lr", is_flag=True, help="Use --lr as is instead of scaling it by total batch / 512.")
@click.option("--warmup-iters", type=click.IntRange(min=0), default=None)
@click.option("--lr-steps", default=None, help="EPOCH:FACTOR,... e.g. 220:0.1,250:0.5 (the recipe's); 'none' for constant.")
@click.option("--val-interval", type=click.IntRange(min=0), default=None, help="Validate every N epochs (0: never).")
@click.option("--workers", "num_workers", type=click.IntRange(min=0), default=None)
@click.option("--seed", type=click.IntRange(min=0), default=None)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None, callback=_finite_option, help="AdamW decoupled weight decay (recipes: 0).")
@click.option("--no-aug", is_flag=True, help="Disable augmentation (flip, half-body, bbox jitter).")
@click.option("--photometric", is_flag=True,
              help="Add HSV jitter, blur and coarse-dropout occlusion (RTMPose stage 1; not in the release recipe).")
@click.option("--det-box-prob", type=click.FloatRange(0.0, 1.0), default=None,
              help="Crop a person from the bundled detector's box instead of the labelled one this often "
                   "(mix sources with a \"boxes\" file, made by recipes/default_weights/detector_boxes.py).")
@click.option("--truncate-prob", type=click.FloatRange(0.0, 1.0), default=None,
              help="Let the photo's edge cut through the person this often, as in photos that cut people off: "
                   "the keypoints beyond it are unlabelled (no loss) and the box ends at it.")
@click.option("--distractor-prob", type=click.FloatRange(0.0, 1.0), default=None,
              help="Paste a person from another training photo beside the person this often, as a neighbour "
                   "in a crowd (behind or in front, unlabelled): the model learns to answer for the centred person.")
@click.option("--val-no-flip", is_flag=True,
              help="Also validate each epoch with one pass per person (as predict and the exported artifacts "
                   "run) besides the flip test, and pick best.safetensors by the mean of the two scores (--mix).")
@click.option("--init-weights", type=click.Path(dir_okay=False), default=None, help="Start from these weights.")
@click.option("--mix", "mix_file", type=click.Path(dir_okay=False), default=None,
              help="Mix file: several sources, each drawn with its weight (e.g. recipes/default_weights/people_mix.json).")
@click.option("--source", "sources", multiple=True, metavar="NAME=FORMAT:PATH[@WEIGHT]",
              help="A source to train on (FORMAT coco: a person_keypoints json; lsp: a folder with joints.mat); repeatable, adds to --mix.")
@click.option("--source-weight", "source_weights", multiple=True, metavar="NAME=WEIGHT",
              help="Override the sampling weight of a --mix source; repeatable.")
@click.option("--root", "roots", multiple=True, metavar="NAME=PATH", help="Override a {NAME} root of the --mix file.")
@click.option("--swap-tolerant", "swap_tolerant", multiple=True, metavar="NAME",
              help="A --mix/--source source whose labels swap left and right now and then (LSPET's): its "
                   "people's arms and legs each take the better of the labelled and the swapped "
                   "assignment in the loss; repeatable (a mix file can say \"swap_tolerant\": true).")
@click.option("--epoch-size", type=click.IntRange(min=1), default=None, help="People drawn per epoch of a mix.")
@click.option("--ema", "ema_decay", type=click.FloatRange(0, 1, max_open=True), default=None, callback=_finite_option,
              help="EMA decay of the weights (e.g. 0.9995; 0 = off).")
@click.option("--lr-schedule", type=click.Choice(["step", "cosine"]), default=None,
              help="step: --lr-steps; cosine: from --lr to 1%% of it at the last epoch.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="PyTorch intra-op threads.")
@click.option("--bf16", is_flag=True,
              help="On a CPU: run the forward pass in bfloat16 autocast (weights, loss and optimizer stay "
                   "float32). Fast only with AVX512-BF16 or AMX; CUDA uses float16 AMP regardless.")
@click.option("--work-dir", type=click.Path(file_okay=False),
              callback=_check_out_path, default="runs/train", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from WORK_DIR/last.pt.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(config_name, list_configs, data_root, ann_file, img_dir, val_ann_file, val_img_dir, val_det_file,
              dataset, variant, input_size, epochs, batch_size, base_lr, no_scale_lr, warmup_iters, lr_steps,
              val_interval, num_workers, seed, weight_decay, photometric, det_box_prob, truncate_prob, distractor_prob, no_aug,
              val_no_flip, init_weights,
              mix_file, sources,
              source_weights, roots, swap_tolerant, epoch_size, ema_decay, lr_schedule, threads, bf16, work_dir, resume, quiet) -> None:
    """Train a variant on a COCO-format folder, a mix of sources (--mix, --source) or a named
    recipe. Multi-process: run it under ``torchrun --nproc-per-node N``."""
    if not list_configs:
        if config_name:
            from .train.config import list_recipes as _names  # no torch: the name is checked first

            if config_name not in _names():
                raise click.BadParameter(f"unknown config {config_name!r}; known: {', '.join(_names())}",
                                         param_hint="--config")
        _check_paths(("--ann-file", ann_file, "file"), ("--img-dir", img_dir, "dir"),
                     ("--val-ann-file", val_ann_file, "file"), ("--val-img-dir", val_img_dir, "dir"),
                     ("--val-det-file", val_det_file, "file"), ("--init-weights", init_weights, "file"),
                     ("--data-root", data_root if config_name else None, "dir"))

    from pathlib import Path

    from .train import TrainConfig, get_recipe, list_recipes
    from .train.loop import train

    if list_configs:
        click.echo("\n".join(list_recipes()))
        return
    if config_name:
        try:
            cfg = get_recipe(config_name).resolve(data_root)
        except KeyError as e:
            raise click.BadParameter(str(e.args[0]), param_hint="--config") from e
    else:
        if not (mix_file or sources) and (not ann_file or not img_dir):
            raise click.UsageError("give --config NAME, --mix FILE / --source ..., or --ann-file and --img-dir")
        cfg = TrainConfig()
    if (mix_file or sources) and (ann_file or img_dir or config_name):
        raise click.UsageError("--mix/--source replace --ann-file/--img-dir/--config; give one or the other")
    if (source_weights or roots) and not mix_file:
        raise click.UsageError("--source-weight and --root change a --mix file; give --mix")
    if swap_tolerant and not (mix_file or sources):
        raise click.UsageError("--swap-tolerant marks sources of --mix/--source; give one")
    if epoch_size and not (mix_file or sources):
        raise click.UsageError("--epoch-size is for --mix/--source training")
    if det_box_prob and not mix_file:
        raise click.UsageError("--det-box-prob reads the detector boxes named by a --mix file's sources; give --mix")
    if det_box_prob and no_aug:
        raise click.UsageError("--det-box-prob is an augmentation; it does nothing with --no-aug")
    if truncate_prob and no_aug:
        raise click.UsageError("--truncate-prob is an augmentation; it does nothing with --no-aug")
    if distractor_prob and no_aug:
        raise click.UsageError("--distractor-prob is an augmentation; it does nothing with --no-aug")
    if val_no_flip and not (mix_file or sources):
        raise click.UsageError("--val-no-flip validates on a mix's held-out people; give --mix or --source")
    cfg = cfg.override(
        mix=str(Path(mix_file).resolve()) if mix_file else None, sources=tuple(sources) or None,
        mix_weights=_pairs(source_weights, float, "--source-weight"), mix_roots=_pairs(roots, str, "--root"),
        swap_tolerant=tuple(swap_tolerant) or None, epoch_size=epoch_size, ema_decay=ema_decay, lr_schedule=lr_schedule, threads=threads,
        bf16=True if bf16 else None,
    )
    cfg = cfg.override(
        train_ann=ann_file, train_images=img_dir, val_ann=val_ann_file, val_images=val_img_dir,
        val_det=val_det_file, dataset=dataset, variant=variant, input_size=input_size, epochs=epochs,
        batch_size=batch_size, base_lr=base_lr, warmup_iters=warmup_iters, val_interval=val_interval,
        num_workers=num_workers, seed=seed, init_weights=init_weights, weight_decay=weight_decay,
        photometric=True if photometric else None, det_box_prob=det_box_prob, truncate_prob=truncate_prob,
        distractor_prob=distractor_prob, val_no_flip=True if val_no_flip else None,
        augment=False if no_aug else None, auto_scale_lr_base_batch=0 if no_scale_lr else None,
        lr_steps=_parse_lr_steps(lr_steps),
    )
    if cfg.val_ann and not cfg.val_images:
        raise click.UsageError("--val-ann-file needs --val-img-dir")
    _check_inputs(cfg)
    try:
        result = train(cfg, work_dir, resume=resume, progress=not quiet, log=click.echo)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    if result.final_weights:
        click.echo(f"weights: {result.final_weights}")


def _pairs(values, cast, option: str):
    """``NAME=VALUE`` options → a sorted tuple of pairs (None when none were given)."""
    out = {}
    for v in values:
        name, sep, val = v.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {v!r}", param_hint=option)
        try:
            out[name] = cast(val)
        except ValueError as e:
            raise click.BadParameter(f"{v!r}: {val!r} is not a {cast.__name__}", param_hint=option) from e
    return tuple(sorted(out.items())) or None


def _parse_lr_steps(value: str | None):
    if value is None:
        return None
    if value.strip().lower() == "none":
        return ()
    try:
        return tuple((int(e), float(f)) for e, f in (part.split(":") for part in value.split(",")))
    except ValueError as e:
        raise click.BadParameter(f"expected EPOCH:FACTOR[,EPOCH:FACTOR...], got {value!r}", param_hint="--lr-steps") from e


# A validation file with no one to score fails before training, not at the first validation.
VAL_NEEDS_PEOPLE = "the validation would have nothing to score"


def _check_inputs(cfg) -> None:
    """Fail before training starts when an input file is missing, naming the expected path."""
    from pathlib import Path

    from .data.coco import CocoIndex, require_labelled_people
    from .data.errors import DataError
    from .spec import SPECS

    if cfg.mix or cfg.sources:
        from .train.loop import build_mix, build_mix_samples

        try:
            mix = build_mix(cfg)
            build_mix_samples(mix, SPECS[cfg.dataset])
        except (DataError, ValueError) as e:
            raise click.ClickException(str(e)) from e
        checks = []
    else:
        checks = [("training annotations", cfg.train_ann, "file"), ("training images", cfg.train_images, "dir")]
    if cfg.val_ann:
        checks += [("validation annotations", cfg.val_ann, "file"), ("validation images", cfg.val_images, "dir")]
    if cfg.val_det:
        checks.append(("validation detections", cfg.val_det, "file"))
    if cfg.val_gt_mat:
        checks.append(("MPII ground truth", cfg.val_gt_mat, "file"))
    for what, path, kind in checks:
        p = Path(path)
        ok = p.is_file() if kind == "file" else p.is_dir()
        if not ok:
            raise click.ClickException(f"{what}: expected a {kind} at {p}, found {'nothing' if not p.exists() else 'something else'}")
    try:
        if cfg.mix or cfg.sources:
            if cfg.val_ann:
                require_labelled_people(CocoIndex(cfg.val_ann, SPECS[cfg.dataset]), VAL_NEEDS_PEOPLE)
        elif cfg.dataset == "mpii":
            from .data.mpii import mpii_samples

            mpii_samples(cfg.train_ann, cfg.train_images)
        else:
            CocoIndex(cfg.train_ann, SPECS[cfg.dataset])
            if cfg.val_ann:
                require_labelled_people(CocoIndex(cfg.val_ann, SPECS[cfg.dataset]), VAL_NEEDS_PEOPLE)
    except DataError as e:
        raise click.ClickException(str(e)) from e


_EVAL_RECIPE = {"coco": "coco_256x192_t", "crowdpose": "crowdpose_256x192_t", "mpii": "mpii_256x256_t"}


@main.command("eval")
@click.option("--dataset", type=click.Choice(["coco", "crowdpose", "mpii", "lsp"]), default="coco", show_default=True,
              help="lsp: LSP / LSPET (--data-root holds joints.mat and images/), PCK@0.2 by torso size.")
@click.option("--data-root", type=click.Path(file_okay=False), default="data", show_default=True)
@click.option("--ids", default=None, metavar="RANGES | FILE.json:KEY",
              help="lsp: the people to score, e.g. 1001-2000 (LSP's test half) or holdout.json:lspet; coco, "
                   "crowdpose: the photos to score (image ids), e.g. "
                   "recipes/default_weights/holdout.json:coco.")
@click.option("--ann-file", type=click.Path(dir_okay=False), help="Annotations (default: the data set's val file under --data-root).")
@click.option("--img-dir", type=click.Path(file_okay=False), help="Images folder (default: the data set's).")
@click.option("--boxes", type=click.Choice(["gt", "det", "ours"]), default="gt", show_default=True,
              help="gt: labelled boxes; det: a detection file (--det-file); ours: the bundled person detector.")
@click.option("--det-file", type=click.Path(dir_okay=False), help="COCO-results detections (default: the data set's).")
@click.option("--detector-input", default=None, callback=_check_size, metavar="HEIGHTxWIDTH",
              help="--boxes ours: the detector's input before it is turned to each photo (default 224x160; "
                   "larger inputs find more small people: 416x416 at about 4.8x the detector's time, "
                   "docs/DETECTOR.md).")
@click.option("--gt-mat", type=click.Path(dir_okay=False), help="MPII mpii_gt_val.mat (default: the data set's).")
@click.option("--variant", default="starpose_t", show_default=True)
@click.option("--weights", default="default", show_default=True, help="default | random | PATH")
@click.option("--input-size", default=None, callback=_check_size, help="HEIGHTxWIDTH (default: the data set's).")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Test-time horizontal flip.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--results", "results_out", type=click.Path(dir_okay=False),
              callback=_check_out_path, help="Write the keypoint results (COCO format) here.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), callback=_check_out_path,
              help="Write the metric table as JSON here.")
def eval_cmd(dataset, data_root, ids, ann_file, img_dir, boxes, det_file, detector_input, gt_mat, variant, weights,
             input_size, flip, batch_size, results_out, json_out) -> None:
    """Evaluate on COCO / CrowdPose (OKS AP with GT, detection-file or bundled-detector boxes), MPII
    (PCKh) or LSP / LSPET (PCK@0.2 by torso size)."""
    if ids and dataset == "mpii":
        raise click.UsageError("--ids is for --dataset lsp, coco or crowdpose")
    if ids and boxes == "det":
        raise click.UsageError("--ids chooses photos with --boxes gt or ours; with --boxes det, give an "
                               "annotation file and a detection file of those photos")
    if detector_input is not None and boxes != "ours":
        raise click.UsageError("--detector-input is for --boxes ours")
    detector_spec = _detector_spec(detector_input)
    if dataset == "lsp":
        if boxes != "gt" or det_file or gt_mat or results_out:
            raise click.UsageError("--dataset lsp is scored on boxes around the labelled joints: --boxes det/ours, "
                                   "--det-file, --gt-mat and --results do not apply")
        _eval_lsp(data_root, ann_file, img_dir, ids, variant, weights, input_size, flip, batch_size, json_out)
        return
    if dataset == "mpii" and boxes != "gt":
        raise click.UsageError(f"--boxes {boxes} is for --dataset coco or crowdpose: MPII is evaluated on its "
                               "labelled person centres and scales")
    if det_file and boxes != "det":
        raise click.UsageError(f"--det-file is for --boxes det (here --boxes {boxes})")
    if gt_mat and dataset != "mpii":
        raise click.UsageError("--gt-mat is for --dataset mpii")
    uses_recipe = not (ann_file and img_dir) or (boxes == "det" and not det_file)  # paths under --data-root
    _check_paths(("--ann-file", ann_file, "file"), ("--img-dir", img_dir, "dir"), ("--det-file", det_file, "file"),
                 ("--gt-mat", gt_mat, "file"), ("--data-root", data_root if uses_recipe else None, "dir"))
    image_ids = _parse_ids(ids)
    _check_weights(weights)

    from .data.errors import DataError
    from .models.checkpoint import CheckpointError
    from .models.weights import load_model
    from .spec import SPECS
    from .train.config import get_recipe

    require_extra("pycocotools", "eval")
    recipe = get_recipe(_EVAL_RECIPE[dataset]).resolve(data_root)
    ann_file = ann_file or recipe.val_ann
    img_dir = img_dir or recipe.val_images
    _check_paths(("annotations", ann_file, "file"), ("images", img_dir, "dir"),
                 ("detections", (det_file or recipe.val_det) if boxes == "det" and dataset != "mpii" else None, "file"))
    spec = SPECS[dataset].with_input_size(*(input_size or recipe.input_size))
    try:  # a weights file runs at the input size it was trained at unless --input-size says otherwise
        model = load_model(variant, weights, spec=spec, **({"input_size": input_size} if input_size else {}))
    except (CheckpointError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    spec = model.spec
    try:
        if dataset == "mpii":
            from .evaluation.pckh import evaluate_mpii

            out = evaluate_mpii(model, spec, ann_file, img_dir, gt_mat or recipe.val_gt_mat or None, flip=flip,
                                batch_size=batch_size, results_out=results_out, progress=True)
        else:
            from .evaluation.runner import evaluate_coco_style

            det = (det_file or recipe.val_det) if boxes == "det" else None
            with _photo_subset(ann_file, image_ids, spec) as scored, \
                    _our_boxes(boxes, scored, img_dir, detector_spec) as ours:
                out = evaluate_coco_style(model, spec, scored, img_dir, ours or det,
                                          mode=dataset if dataset == "crowdpose" else "coco", flip=flip,
                                          batch_size=batch_size, results_out=results_out, progress=True)
    except DataError as e:
        raise click.ClickException(str(e)) from e
    metrics = out["metrics"]
    width = max(len(k) for k in metrics)
    click.echo(f"{dataset} ({out['num_people']} people, {boxes} boxes, flip {'on' if flip else 'off'}, {variant}, weights {weights})")
    for k, v in metrics.items():
        click.echo(f"  {k:<{width}}  {v:.4f}")
    per_keypoint = out.get("per_keypoint")
    if per_keypoint:
        click.echo("  per keypoint: OKS similarity, mean over the people who label it (1 = exact; how many in brackets)")
        name_width = max(len(k) for k in per_keypoint)
        for name, v in per_keypoint.items():
            sim = "   -  " if v["similarity"] is None else f"{v['similarity']:.3f}"
            click.echo(f"    {name:<{name_width}}  {sim}  ({v['labelled']})")
    if json_out:
        from .evaluation.oks import write_results

        table = {"dataset": dataset, "boxes": boxes, "ids": ids, "flip": flip, "variant": variant, "weights": weights,
                 "num_people": out["num_people"], "metrics": metrics}
        if per_keypoint:
            table["per_keypoint"] = per_keypoint
        write_results(table, json_out)
        click.echo(f"metrics: {json_out}")


@contextlib.contextmanager
def _photo_subset(ann_file: str, image_ids: set[int] | None, spec):
    """The annotation file ``eval`` scores, read and checked by :class:`~starpose.data.coco.CocoIndex` before
    anything runs (a file with no labelled people is a DataError naming it): ``ann_file`` itself, or with
    ``--ids`` a temporary copy that keeps only those photos and their annotations."""
    import json
    import tempfile
    from pathlib import Path

    from .data.coco import CocoIndex, labelled_people, require_labelled_people
    from .data.errors import DataError

    index = CocoIndex(ann_file, spec)
    if image_ids is None:
        require_labelled_people(index, "OKS AP has nothing to score", ann_file)
        yield ann_file
        return
    images = [im for i, im in index.images.items() if i in image_ids]
    if not images:
        raise DataError(ann_file, f"none of the {len(image_ids)} image ids of --ids is in it")
    anns = [a for a in index.annotations if int(a["image_id"]) in image_ids]
    if not labelled_people(anns, spec.num_keypoints):
        raise DataError(ann_file, f"the {len(images)} photos of --ids hold no labelled people (not a crowd, at least "
                                  "one keypoint): OKS AP has nothing to score")
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / Path(ann_file).name
        subset.write_text(json.dumps({**index.data, "images": images, "annotations": anns}))
        yield str(subset)


def _parse_ids(value: str | None) -> set[int] | None:
    """``--ids``: ``1001-2000,2005`` or ``FILE.json:KEY`` (a list of ids under KEY, e.g. a holdout file)."""
    import json
    from pathlib import Path

    if not value:
        return None
    path, sep, key = value.rpartition(":")
    if sep and path.endswith(".json"):
        _check_paths(("--ids", path, "file"))
        try:
            data = json.loads(Path(path).read_text())
            got = data[key]
            got = got.get("ids", got) if isinstance(got, dict) else got
            return {int(i) for i in got}
        except (ValueError, KeyError, TypeError) as e:
            raise click.BadParameter(f"{path}: no list of ids under {key!r} ({e})", param_hint="--ids") from e
    out: set[int] = set()
    for part in value.split(","):
        a, dash, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b if dash else a)
        except ValueError as e:
            raise click.BadParameter(f"{part!r}: expected N or N-M", param_hint="--ids") from e
        if lo < 1 or hi < lo:
            raise click.BadParameter(f"{part!r}: ids start at 1 and ranges go up", param_hint="--ids")
        out.update(range(lo, hi + 1))
    return out


def _eval_lsp(data_root, ann_file, img_dir, ids, variant, weights, input_size, flip, batch_size, json_out) -> None:
    """``eval --dataset lsp``: PCK@0.2 (torso) of the 12 limb joints, boxes around the labelled joints."""
    from pathlib import Path

    joints = Path(ann_file) if ann_file else Path(data_root) / "joints.mat"
    images = Path(img_dir) if img_dir else joints.parent / "images"
    _check_paths(("joints (--ann-file or DATA_ROOT/joints.mat)", str(joints), "file"),
                 ("images (--img-dir or images/ beside joints.mat)", str(images), "dir"))
    keep = _parse_ids(ids)
    _check_weights(weights)

    from .data.errors import DataError
    from .data.lsp import lsp_samples
    from .evaluation.holdout import ValSet, evaluate_sets
    from .models.checkpoint import CheckpointError
    from .models.weights import load_model
    from .spec import SPECS

    spec = SPECS["coco"]
    try:
        samples = lsp_samples(joints, ids=keep, images=images)
    except DataError as e:
        raise click.ClickException(str(e)) from e
    if not samples:
        raise click.ClickException(f"{joints}: no labelled people" + (f" among --ids {ids}" if ids else ""))
    try:
        model = load_model(variant, weights, spec=spec, **({"input_size": input_size} if input_size else {}))
    except (CheckpointError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    spec = model.spec
    vs = ValSet("lsp", "pck", samples)
    try:
        metrics = evaluate_sets(model, [vs], spec, flip=flip, batch_size=batch_size, progress=True)["lsp"]
    except DataError as e:
        raise click.ClickException(str(e)) from e
    people, skipped = int(metrics.pop("people")), int(metrics.pop("people_skipped"))
    click.echo(f"lsp ({people} people with a labelled torso, {skipped} without, boxes around the labelled joints, "
               f"flip {'on' if flip else 'off'}, {variant}, weights {weights})")
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        click.echo(f"  {k:<{width}}  {v:.2f}")
    if json_out:
        from .evaluation.oks import write_results

        write_results({"dataset": "lsp", "boxes": "gt", "flip": flip, "variant": variant, "weights": weights,
                       "num_people": people, "people_without_torso": skipped, "metrics": metrics}, json_out)
        click.echo(f"metrics: {json_out}")


class _our_boxes:
    """``eval --boxes ours``: the bundled detector's boxes of every image, in a temporary COCO
    results file for the evaluation (None for the other box sources)."""

    def __init__(self, boxes: str, ann_file: str, img_dir: str, spec=None) -> None:
        self.boxes, self.ann_file, self.img_dir, self.spec = boxes, ann_file, img_dir, spec
        self._tmp = None

    def __enter__(self):
        if self.boxes != "ours":
            return None
        import tempfile
        from pathlib import Path

        from .detect import load_detector
        from .detect.coco import detect_coco_images
        from .evaluation.oks import write_results

        dets = detect_coco_images(load_detector(spec=self.spec), self.ann_file, self.img_dir, progress=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="starpose-ours-")
        path = Path(self._tmp.name) / "person_detections.json"
        write_results(dets, path)
        return path

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _export_formats() -> list[str]:
    from mobile_export.formats import FORMATS

    return [*FORMATS, "all"]


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(_export_formats()), required=True, help="Artifact format, or all.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--variant", default="starpose_t", show_default=True)
@click.option("--weights", default="default", show_default=True,
              help="default (packaged) | random (seeded init, latency work) | PATH (.pth / .safetensors)")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of --weights random.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              callback=_check_out_path, default="out/models", show_default=True)
@click.option("--affine", is_flag=True, help="Add the crop→image matrix input: keypoints in image pixels.")
@click.option("--raw-outputs", is_flag=True, help="Also output the SimCC vectors (debugging / parity).")
@click.option("--scheme", type=click.Choice(["ptq", "qat", "dynamic"]), default="ptq", show_default=True,
              help="int8 only: post-training, quantization-aware (--qat-checkpoint), or dynamic range (TFLite).")
@click.option("--calib-data", type=click.Path(exists=True), default=None,
              help="int8 only: COCO keypoints json (or folder) of people to calibrate on; default: the test fixture.")
@click.option("--calib-images", type=click.Path(file_okay=False, exists=True), default=None,
              help="int8 only: images folder of --calib-data (default: next to the json).")
@click.option("--calib-limit", type=click.IntRange(min=1), default=None,
              help="int8 only: calibrate on at most N people, spread evenly over --calib-data (default: all).")
@click.option("--qat-checkpoint", type=click.Path(dir_okay=False, exists=True), default=None,
              help="int8 --scheme qat: the qat_last.pt written by `starpose-mobile qat`.")
@click.option("--int8-depthwise", is_flag=True,
              help="int8 only: quantize the depthwise convolutions too (smaller; faster for starpose_m/l and "
                   "where int8 depthwise kernels are fast, slower for t/s on x86).")
@click.option("--int8-float", "int8_float", multiple=True, metavar="MODULE",
              help="int8 ptq/dynamic only: leave this module path float too (repeatable), e.g. backbone.layers.3: "
                   "closer to fp32, larger artifact (docs/QUANTIZATION.md).")
@click.option("--detector/--no-detector", default=True, show_default=True,
              help="Also export the bundled person detector in the chosen formats that hold it "
                   "(executorch, tflite, coreml; fp32/fp16).")
@click.option("--detector-input", default=None, callback=_check_size, metavar="HEIGHTxWIDTH",
              help="The detector artifact's input, e.g. 160x224 for an app whose camera frames are landscape, "
                   "256x192 to find more small people at 1.35x the time (default 224x160: an upright phone "
                   "frame; multiples of 32).")
def export_cmd(fmt, precision, variant, weights, seed, out_dir, affine, raw_outputs, scheme, calib_data,
               calib_images, calib_limit, qat_checkpoint, int8_depthwise, int8_float, detector, detector_input) -> None:
    """Export VARIANT as phone-ready artifacts (uint8 RGB crop in, keypoints out) + manifest.json."""
    given = _given_options(click.get_current_context())
    if precision != "int8" and given & {"scheme", "qat_checkpoint"}:
        raise click.UsageError("--scheme and --qat-checkpoint are for --precision int8")
    if qat_checkpoint is not None and scheme != "qat":
        raise click.UsageError(f"--qat-checkpoint is for --precision int8 --scheme qat, not --scheme {scheme}")
    if "seed" in given and weights != "random":
        raise click.UsageError("--seed is for --weights random")
    _check_weights(weights)

    from mobile_export.base import MissingExtraError
    from mobile_export.export import export_formats, formats_for
    from mobile_export.source import WeightsError, resolve_model

    if int8_float and precision != "int8":
        raise click.UsageError("--int8-float is for --precision int8")
    if int8_float and scheme == "qat":
        raise click.UsageError("--int8-float is for --scheme ptq or dynamic: a QAT checkpoint was trained with "
                               "its own float parts")
    if calib_images is not None and calib_data is None:
        raise click.UsageError("--calib-images needs --calib-data")
    detector_spec = _detector_spec(detector_input)
    if detector_input is not None and (precision == "int8" or not detector):
        raise click.UsageError("--detector-input is for exports with the detector (--detector, fp32 or fp16)")
    if precision == "int8":
        _export_int8(fmt, variant, weights, seed, out_dir, affine, raw_outputs, scheme, calib_data, qat_checkpoint,
                     int8_depthwise, calib_limit, int8_float, calib_images)
        return
    if int8_depthwise:
        raise click.UsageError("--int8-depthwise is for --precision int8")
    if calib_limit is not None or calib_data is not None:
        raise click.UsageError("--calib-data, --calib-images and --calib-limit are for --precision int8")
    try:
        exporters = formats_for(fmt, precision)
        with _quiet.captured("importing the exporters"):
            for e in exporters:
                e.check_available()
        model, info = resolve_model(variant, weights, seed=seed)
    except (MissingExtraError, WeightsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"exporting {variant} ({info.name}) as {', '.join(e.name for e in exporters)} [{precision}] → {out_dir}")
    try:
        export_formats(model, info, exporters, out_dir, precision=precision, affine=affine, raw=raw_outputs,
                       progress=click.echo)
        if detector:
            _export_detector([e.name for e in exporters], out_dir, precision, detector_spec)
    except MissingExtraError as e:
        raise click.ClickException(str(e)) from e


def _detector_spec(size: tuple[int, int] | None):
    """``--detector-input`` ((width, height), parsed by ``_check_size``) → the packaged detector's spec at that input."""
    from .detect.spec import PERSON_DETECTOR_SPEC

    if size is None:
        return PERSON_DETECTOR_SPEC
    try:
        return PERSON_DETECTOR_SPEC.with_input_size(*size)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--detector-input") from e


def _export_detector(formats: list[str], out_dir: str, precision: str, spec) -> None:
    """The person detector next to the pose artifacts, in those of ``formats`` that hold it."""
    from mobile_export.detector import DETECTOR_FORMATS, export_detector

    chosen = tuple(f for f in formats if f in DETECTOR_FORMATS)
    if not chosen:
        return
    from mobile_export.export import wrote_line

    click.echo(f"exporting the person detector ({spec.input_size[1]}x{spec.input_size[0]} input, h x w) as "
               f"{', '.join(chosen)} [{precision}] → {out_dir}")

    for p in export_detector(out_dir, chosen, precision=precision, spec=spec, progress=click.echo):
        if not p.name.endswith(".json"):
            click.echo(wrote_line(p))


def _calibration_source(calib_data: str | None, calib_images: str | None = None):
    """``--calib-data`` (images in ``--calib-images`` or next to it), or in a source checkout the project's COCO fixture (read in place from the
    shared data folder beside it) with a warning; without either, a usage error."""
    from mobile_export.parity import default_coco_json
    from quantization.calibration import resolve_coco_source

    if calib_data is None:
        fixture = default_coco_json()
        if fixture is None:
            raise click.UsageError(
                "int8 needs calibration people: pass --calib-data (a COCO keypoints json with its images, or a "
                "folder holding one); the default, the project's COCO fixture in ../shared/fixtures/coco beside a "
                "source checkout, is not on this machine")
        click.echo(f"calibrating on the COCO fixture {fixture} (a handful of people); pass --calib-data for a real set")
        calib_data = str(fixture)
    return resolve_coco_source(calib_data, calib_images)


def _export_int8(fmt, variant, weights, seed, out_dir, affine, raw, scheme_name, calib_data, qat_checkpoint,
                 int8_depthwise=False, calib_limit=None, int8_float=(), calib_images=None) -> None:
    """``export --precision int8``: the quantization package's exporters for one scheme."""
    from pathlib import Path

    from mobile_export.base import MissingExtraError
    from mobile_export.source import WeightsError, resolve_model

    from .data.errors import DataError

    try:
        from quantization import get_scheme, with_float_modules, with_int8_depthwise
        from quantization.run import export_int8

        scheme = get_scheme(scheme_name)
        if int8_depthwise:
            scheme = with_int8_depthwise(scheme)
        if int8_float:
            scheme = with_float_modules(scheme, int8_float)
        calibration = (None if scheme_name == "dynamic" and calib_data is None
                       else _calibration_source(calib_data, calib_images))
        model, info = resolve_model(variant, weights, seed=seed)
        click.echo(f"exporting {variant} ({info.name}) as int8 [{scheme.name}] → {out_dir}")
        export_int8(model, info, scheme, fmt, out_dir, calibration=calibration,
                    qat_checkpoint=Path(qat_checkpoint) if qat_checkpoint else None, calibration_limit=calib_limit,
                    affine=affine, raw=raw, log=click.echo)
    except (MissingExtraError, WeightsError, DataError, ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from e


@main.command("qat")
@click.option("--variant", default="starpose_t", show_default=True)
@click.option("--weights", default="default", show_default=True, help="Float weights to start from: default | random | PATH")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of --weights random and of the data order.")
@click.option("--data", "data", type=click.Path(exists=True), required=True,
              help="Training people: a COCO keypoints json (images next to it) or a folder holding one.")
@click.option("--images", type=click.Path(file_okay=False, exists=True), default=None, help="Images folder of --data.")
@click.option("--val-data", type=click.Path(exists=True), default=None, help="Validation people for the report (default: --data).")
@click.option("--val-images", type=click.Path(file_okay=False, exists=True), default=None,
              help="Images folder of --val-data (default: next to it).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True, callback=_positive)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many optimizer steps (smoke runs).")
@click.option("--no-augment", is_flag=True, help="Train on plain crops (no flip / half body / box jitter).")
@click.option("--targets", type=click.Choice(["labels", "fp32"]), default="labels", show_default=True,
              help="Train toward the data set's keypoints, or toward the float model's own SimCC outputs "
                   "(self-distillation: keeps int8 close to fp32; the keypoint labels are not used).")
@click.option("--formats", default="executorch,tflite", show_default=True,
              help="Comma-separated int8 artifact formats (executorch, tflite, coreml).")
@click.option("--no-ptq", is_flag=True, help="Skip the post-training int8 artifacts (and their report rows).")
@click.option("--calib-limit", type=click.IntRange(min=1), default=None,
              help="Calibrate (PTQ; TFLite int8 of both schemes) on at most N people of --data, spread evenly over the file (default: all).")
@click.option("--int8-depthwise", is_flag=True,
              help="Quantize the depthwise convolutions too (see `export --int8-depthwise`); the QAT checkpoint "
                   "records it and `export --scheme qat` must repeat it.")
@click.option("--no-report", is_flag=True, help="Skip the fp32/PTQ/QAT report.")
@click.option("--resume", is_flag=True, help="Continue from OUT/qat_last.pt.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              callback=_check_out_path, default="runs/qat", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def qat_cmd(variant, weights, seed, data, images, val_data, val_images, epochs, batch_size, lr, max_steps, no_augment, targets,
            formats,
            no_ptq, calib_limit, int8_depthwise, no_report, resume, out_dir, quiet) -> None:
    """Quantization-aware training of VARIANT's deploy graph, then int8 artifacts (QAT and PTQ),
    the fp32 artifacts they replace, and a report (OKS AP, size, parity) in OUT."""
    from mobile_export.base import MissingExtraError
    from mobile_export.source import WeightsError, resolve_model

    from .data.errors import DataError

    _check_weights(weights)
    require_extra("executorch", "export")
    require_extra("pycocotools", "eval")
    names = tuple(f.strip() for f in formats.split(",") if f.strip())
    unknown = set(names) - {"executorch", "tflite", "coreml"}
    if unknown:
        raise click.BadParameter(f"unknown format(s) {sorted(unknown)}", param_hint="--formats")
    try:
        from quantization.calibration import resolve_coco_source
        from quantization.qat import QATConfig
        from quantization.run import run_qat

        source = resolve_coco_source(data, images)
        if val_images and not val_data:
            raise click.BadParameter("--val-images needs --val-data", param_hint="--val-images")
        val = resolve_coco_source(val_data, val_images) if val_data else None
        cfg = QATConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_steps=max_steps, augment=not no_augment,
                        seed=seed, targets=targets)
        model, info = resolve_model(variant, weights, seed=seed)
        run = run_qat(model, info, source, out_dir, cfg, val=val, formats=names, ptq=not no_ptq, report=not no_report,
                      calibration_limit=calib_limit, resume=resume, int8_depthwise=int8_depthwise,
                      progress=not quiet, log=click.echo)
    except (MissingExtraError, WeightsError, DataError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"QAT checkpoint: {run.qat.checkpoint}")
    if run.report is not None:
        click.echo(run.report.markdown())


@main.command("verify")
@click.argument("path", type=click.Path(exists=True))
@click.option("--weights", default=None, help="Weights file the artifact was exported from (random/packaged ones are rebuilt).")
@click.option("--coco-json", type=click.Path(dir_okay=False, exists=True), default=None,
              help="COCO keypoints json (images next to it) for the parity crops; default: the COCO fixture in "
                   "../shared/fixtures beside a source checkout, else the packaged sample photos' people.")
@click.option("--images", "images", type=click.Path(file_okay=False, exists=True), default=None,
              help="Images folder of --coco-json (default: next to it).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, callback=_check_out_path,
              help="Also write the reports as JSON.")
def verify_cmd(path, weights, coco_json, images, json_out) -> None:
    """Check an artifact or export directory: manifest sha256, metadata, inputs/outputs, and parity
    against the eager model on real person crops. Exits non-zero when anything fails."""
    _check_weights(weights)
    if images is not None and coco_json is None:
        raise click.UsageError("--images needs --coco-json")

    from mobile_export.verify import verify

    try:
        report = verify(path, weights=weights, coco_json=coco_json, image_dir=images)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(report.render())
    if json_out:
        report.write_json(json_out)
    if not report.ok:
        sys.exit(1)



def _thread_counts(ctx, param, value: str) -> list[int]:
    """Option callback for ``bench --threads``: comma-separated counts, each at least 1."""
    try:
        counts = [int(t) for t in value.split(",") if t.strip()]
    except ValueError as e:
        raise click.BadParameter(f"expected comma-separated integers such as 1,2, got {value!r}") from e
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{value}: each thread count must be 1 or more")
    return counts


@main.command("bench")
@click.argument("artifacts", nargs=-1, type=click.Path(exists=True))
@click.option("--threads", "counts", default="1", show_default=True, callback=_thread_counts,
              help="Thread counts, comma-separated, e.g. 1,2,4.")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True,
              help="Timed runs per target and thread count.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Interleaved rounds the runs are split into (at most --runs).")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True, help="Untimed runs after loading.")
@click.option("--eager/--no-eager", default=None,
              help="Also time the eager PyTorch bundle of --variant (default: on when no ARTIFACTS are given).")
@click.option("--variant", default="starpose_t", show_default=True, help="Variant of the eager target.")
@click.option("--weights", default="default", show_default=True, help="Weights of the eager target: default | random | PATH.")
@click.option("--baseline", default=None, help="Target name the ratios are taken against (default: the first).")
@click.option("--affinity", is_flag=True, help="Also pin each benchmark process to the first N cores (Linux).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, callback=_check_out_path,
              help="Write the results as JSON.")
def bench_cmd(artifacts, counts, runs, rounds, warmup, eager, variant, weights, baseline, affinity, json_out) -> None:
    """Latency of ARTIFACTS (files or export directories) in their runtimes, one process per
    artifact and thread count, interleaved rounds: median, p10/p90, ratio to a baseline, size,
    peak memory, load and export time. Without ARTIFACTS: the eager model of --variant.

    \b
    starpose-mobile export --format all --out out/models
    starpose-mobile bench out/models --threads 1,2 --json out/bench.json
    """
    _check_weights(weights)

    from mobile_export.bench import collect_targets, eager_target, run_bench

    try:
        targets = collect_targets(artifacts)
        if eager or (eager is None and not artifacts):
            targets.insert(0, eager_target(variant, weights))
        click.echo(f"benchmarking {len(targets)} target(s) at {','.join(map(str, counts))} thread(s): "
                   f"{runs} runs in {rounds} rounds each")
        report = run_bench(targets, threads=counts, runs=runs, rounds=rounds, warmup=warmup, affinity=affinity,
                           baseline=baseline, progress=click.echo)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(report.render())
    if json_out:
        click.echo(f"results: {report.write_json(json_out)}")
    if not any(r.status == "ok" for r in report.rows):
        raise click.ClickException("no target could be benchmarked on this machine (see the reasons above)")


def _check_out_folder(out_dir: str) -> None:
    """``predict --out`` is a folder; a name like ``pose.jpg`` that is not one yet is a mistake to catch early
    (predict would make a folder of that name)."""
    from pathlib import Path

    from .fileio import IMAGE_EXTS, VIDEO_EXTS

    out = Path(out_dir)
    if out.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS and not out.is_dir():
        raise click.UsageError(f"--out {out_dir}: looks like a file name; --out is the folder the overlays and "
                               "results.json go in (e.g. --out out/predict)")


@main.command("predict")
@click.argument("sources", nargs=-1, type=click.Path(path_type=str))
@click.option("--sample", is_flag=True, help="Run on the sample photos shipped with the package.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              callback=_check_out_path, default="out/predict", show_default=True)
@click.option("--variant", default="starpose_t", show_default=True)
@click.option("--weights", default="default", show_default=True, help="default | random | PATH")
@click.option("--det", "detections", type=click.Path(dir_okay=False), default=None,
              help="COCO-results person detections (image_id = the file's numeric stem, or file_name).")
@click.option("--det-thr", type=click.FloatRange(0, 1), default=None,
              help="Minimum person box score (default: 0.3 for --det files, the bundled detector's own threshold).")
@click.option("--detector/--no-detector", default=True, show_default=True,
              help="Find every person with the bundled detector (off: one person, whole frame then ROI tracking).")
@click.option("--max-people", type=click.IntRange(min=1), default=10, show_default=True,
              help="At most this many people per photo / tracked on video (bundled detector).")
@click.option("--detect-every", type=click.IntRange(min=1), default=5, show_default=True,
              help="Video: run the detector every N frames (and when a track is lost); track ROIs in between.")
@click.option("--detector-input", default=None, callback=_check_size, metavar="HEIGHTxWIDTH",
              help="The detector's input before it is turned to each photo (default 224x160; larger inputs find "
                   "more small people: 416x416 at about 4.8x the detector's time, docs/DETECTOR.md).")
@click.option("--kpt-thr", type=float, default=None, callback=lambda ctx, param, v: _finite(v, "--kpt-thr"),
              help="Keypoint score to draw (default: the weights' calibrated value).")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Test-time flip averaging.")
@click.option("--smooth/--no-smooth", default=True, show_default=True, help="One Euro smoothing on video.")
@click.option("--skip-bad", is_flag=True,
              help="Leave out files that cannot be read (each named on stderr and in skipped.json) instead of "
                   "stopping at the first; fails only when none could be read.")
def predict_cmd(sources, sample, out_dir, variant, weights, detections, det_thr, detector, max_people, detect_every,
                detector_input, kpt_thr, flip, smooth, skip_bad) -> None:
    """Predict keypoints on images, folders or videos; write overlays and COCO results JSON."""
    from pathlib import Path

    from .sample_data import sample_photos

    paths = [Path(s) for s in sources]
    if sample:
        paths += sample_photos()
    if not paths:
        raise click.UsageError("give images, folders or videos (or --sample)")
    _check_paths(*(("input", str(p), "any") for p in paths), ("--det", detections, "file"))
    _check_weights(weights)
    if detector_input is not None and (detections or not detector):
        raise click.UsageError("--detector-input is for the bundled detector (not with --det or --no-detector)")
    _check_out_folder(out_dir)
    detector_spec = _detector_spec(detector_input)

    from .data.errors import DataError
    from .models.checkpoint import CheckpointError
    from .models.weights import default_keypoint_threshold, load_model
    from .predict import PosePredictor, predict_paths

    try:
        model = load_model(variant, weights)
    except (CheckpointError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    thr = kpt_thr if kpt_thr is not None else default_keypoint_threshold(variant, weights)
    people = None
    if detector and not detections:
        from .detect import load_detector

        people = load_detector(spec=detector_spec)
    try:
        out = predict_paths(PosePredictor(model, model.spec, flip=flip), paths, Path(out_dir),
                            Path(detections) if detections else None, 0.3 if det_thr is None else det_thr, thr, smooth,
                            detector=people, max_people=max_people, box_threshold=det_thr, detect_every=detect_every,
                            skip_bad=skip_bad)
    except DataError as e:
        raise click.ClickException(str(e)) from e
    for p in out["overlays"]:
        click.echo(f"overlay: {p}")
    click.echo(f"results: {out['results']} ({out['num_poses']} poses, COCO keypoint results format)")
    for bad in out["skipped"]:
        click.echo(f"skipped: {bad['file']}: {bad['problem']}", err=True)
    if out["skipped"]:
        click.echo(f"skipped {len(out['skipped'])} of {len(out['skipped']) + len(out['overlays'])} inputs "
                   f"(listed in {out['skipped_file']})", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
