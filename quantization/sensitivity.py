"""Which part of the network costs int8 its accuracy: PTQ with one part at a time left float.

Each configuration is the ExecuTorch scheme's post-training int8 (``int8-ptq``: prepare →
calibrate → convert, :func:`quantization.pt2e.quantize_ptq`) with extra module paths left float;
the converted graph runs eagerly (PyTorch's reference int8 arithmetic, no lowering) on the
parity crops ``verify`` uses, against the fp32 deploy network, and is measured by ``verify``'s own
parity code with its int8 limits (:data:`mobile_export.parity.THRESHOLDS`): mean keypoint pixels,
identical SimCC argmax, PCK@0.05 agreement, max score and SimCC differences, as for an artifact
exported with ``--raw-outputs``. Eager reference int8 is not the XNNPACK
kernels, so a part that matters here is the place to look, not a promise about the ``.pte``.

    python -m quantization.sensitivity                       # packaged starpose_t, default parts
    python -m quantization.sensitivity --weights W --float backbone.layers.0 --float backbone.layers.0,backbone.layers.3

Default configurations: nothing extra float (the shipped scheme), the stem, each backbone stage,
the head's final convolution, and everything but the stem and that convolution.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

__all__ = ["default_parts", "sensitivity", "main"]


def default_parts(network: torch.nn.Module) -> list[tuple[str, ...]]:
    """The configurations measured by default for an int8-ready deploy network: (), the stem,
    each stage, the head's final convolution, all stages at once."""
    names = {n for n, _ in network.named_modules()}
    stages = sorted((n for n in names if n.startswith("backbone.layers.") and n.count(".") == 2),
                    key=lambda n: int(n.rsplit(".", 1)[1]))
    parts: list[tuple[str, ...]] = [()]
    parts += [(n,) for n in ("backbone.stem", *stages, "head.final_layer") if n in names]
    if len(stages) > 1:
        parts.append(tuple(stages))
    return parts


def _reference_int8_runner(qnet: torch.nn.Module, spec):
    """The converted graph as a parity :class:`~mobile_export.base.Runner`: one uint8 crop in,
    keypoints, scores and the SimCC vectors out (what a ``--raw-outputs`` artifact gives)."""
    from starpose.processing import decode_simcc, normalize_image

    def run(crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]:
        x = torch.from_numpy(normalize_image(crop, spec.mean, spec.std)[None])
        with torch.no_grad():
            sx, sy = (t.numpy() for t in qnet(x))
        kp, sc = decode_simcc(sx, sy, spec.simcc_split_ratio)
        return {"keypoints": kp, "scores": sc, "simcc_x": sx, "simcc_y": sy}

    return run


def sensitivity(network: torch.nn.Module, crops: list, calibration: Iterable[torch.Tensor] | None,
                parts: list[tuple[str, ...]], progress=print) -> list[dict[str, Any]]:
    """One row per entry of ``parts`` (module paths left float on top of the scheme's own), measured
    by ``verify``'s own :func:`mobile_export.parity.measure_parity` against ``network`` with the
    int8 thresholds (``verify_int8``: would ``verify`` pass it). ``calibration``: normalized crops
    (the parity crops themselves when None, as ``export --precision int8`` does on the fixture)."""
    from mobile_export.parity import measure_parity
    from starpose.processing import normalize_image

    from .pt2e import quantize_ptq
    from .schemes import check_float_modules, get_scheme, with_float_modules

    if not crops:
        raise ValueError("no parity crops to measure on")
    spec = network.spec
    scheme = get_scheme("int8-ptq")
    named = [p for part in parts for p in part]
    if named:  # every path checked before the first (slow) configuration
        check_float_modules(network, with_float_modules(scheme, named))
    if calibration is None:
        x = torch.from_numpy(np.stack([normalize_image(c.image, spec.mean, spec.std) for c in crops]))
        batches = [x[i:i + 8] for i in range(0, len(x), 8)]
    else:
        batches = list(calibration)
    meta = {"spec": spec.to_dict(), "affine_input": {"present": False}, "format": "pt2e-reference",
            "precision": "int8", "backend": "eager"}
    rows = []
    for part in parts:
        t0 = time.perf_counter()
        qnet = quantize_ptq(network, with_float_modules(scheme, part) if part else scheme, batches)
        label = "+".join(part) or "(scheme only)"
        r = measure_parity(_reference_int8_runner(qnet, spec), network, meta, crops, artifact=label)
        row = {"float": list(part), "mean_kpt_px": round(r.mean_kpt_px, 4), "argmax_agreement": round(r.argmax_agreement, 4),
               "pck_agreement": round(r.pck_agreement, 4), "score_max_abs": round(r.score_max_abs, 4),
               "raw_max_abs": round(r.raw_max_abs, 4), "verify_int8": r.passed,
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        progress(f"{label:60s} px {r.mean_kpt_px:.2f}  argmax {r.argmax_agreement:.1%}  PCK {r.pck_agreement:.1%}  "
                 f"score {r.score_max_abs:.2f}  SimCC {r.raw_max_abs:.2f}  {'pass' if r.passed else 'fail: ' + '; '.join(r.failures)}")
    return rows


def main(argv: list[str] | None = None) -> Path | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="starpose_t")
    ap.add_argument("--weights", default="default", help="default (packaged) | random | PATH")
    ap.add_argument("--crops", type=Path, default=None,
                    help="COCO keypoints json whose boxes give the parity crops (default: verify's)")
    ap.add_argument("--float", dest="parts", action="append", default=None,
                    help="comma-separated module paths left float together (repeatable; default: per part)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from mobile_export.parity import coco_crops, default_crop_source
    from mobile_export.source import deploy_network, resolve_model

    from .rewrite import int8_ready

    model, info = resolve_model(args.variant, args.weights)
    network = deploy_network(model)
    source = args.crops or default_crop_source()
    if not Path(source).is_file():
        raise SystemExit(f"{source}: no such COCO keypoints file")
    crops = coco_crops(Path(source), network.spec)
    parts = ([tuple(p for p in s.split(",") if p) for s in args.parts] if args.parts
             else default_parts(int8_ready(network)))
    source = os.path.relpath(source)  # the results name no machine folder
    print(f"{args.variant} ({args.weights}): {len(crops)} parity crops from {source}; int8-ptq calibrated on them")
    rows = sensitivity(network, crops, None, parts)
    if args.out is None:
        return None
    from mobile_export.base import Staging

    with Staging(args.out.parent) as stage:
        stage.write_text(args.out.name, json.dumps({"variant": args.variant, "weights": args.weights,
                                                     "crops": str(source), "rows": rows}, indent=1) + "\n")
        stage.commit()
    print(f"results: {args.out}")
    return args.out


if __name__ == "__main__":
    main()
