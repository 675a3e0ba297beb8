"""Which part of the network costs int8 its accuracy: PTQ with one part at a time left float.

Each configuration is the ExecuTorch scheme's post-training int8 (``int8-ptq``: prepare →
calibrate → convert, :func:`quantization.pt2e.quantize_ptq`) with extra module paths left float;
the converted graph runs eagerly (PyTorch's reference int8 arithmetic, no lowering) on the
parity crops ``verify`` uses, against the fp32 deploy network, and is measured with ``verify``'s
int8 numbers: mean keypoint pixels, identical SimCC argmax, PCK@0.05 agreement, max score
difference (:data:`mobile_export.parity.THRESHOLDS`). Eager reference int8 is not the XNNPACK
kernels, so a part that matters here is the place to look, not a promise about the ``.pte``.

    python -m quantization.sensitivity                       # packaged starpose_t, default parts
    python -m quantization.sensitivity --weights W --float backbone.layers.0 --float backbone.layers.0,backbone.layers.3

Default configurations: nothing extra float (the shipped scheme), the stem, each backbone stage,
the head's final convolution, and everything but the stem and that convolution.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def _metrics(sx, sy, ref: dict[str, np.ndarray], split: float, pck_px: float) -> dict[str, float]:
    from starpose.processing import decode_simcc

    kp, sc = decode_simcc(sx, sy, split)
    d = np.linalg.norm(kp - ref["kp"], axis=-1)
    same = (sx.argmax(-1) == ref["sx"].argmax(-1)) & (sy.argmax(-1) == ref["sy"].argmax(-1))
    return {"mean_kpt_px": float(d.mean()), "argmax_agreement": float(same.mean()),
            "pck_agreement": float((d <= pck_px).mean()), "score_max_abs": float(np.abs(sc - ref["sc"]).max()),
            "raw_max_abs": float(max(np.abs(sx - ref["sx"]).max(), np.abs(sy - ref["sy"]).max()))}


def sensitivity(network: torch.nn.Module, crops: list, calibration: Iterable[torch.Tensor] | None,
                parts: list[tuple[str, ...]], progress=print) -> list[dict[str, Any]]:
    """One row per entry of ``parts`` (module paths left float on top of the scheme's own); each
    row passes or fails ``verify``'s int8 thresholds. ``calibration``: normalized crops (the
    parity crops themselves when None, as ``export --precision int8`` does on the fixture)."""
    from mobile_export.parity import PCK_RADIUS, THRESHOLDS
    from starpose.processing import decode_simcc, normalize_image

    from .pt2e import quantize_ptq
    from .rewrite import int8_ready
    from .schemes import get_scheme

    if not crops:
        raise ValueError("no parity crops to measure on")
    spec = network.spec
    known = {n for n, _ in int8_ready(network).named_modules()}  # the form PT2E captures
    for part in parts:
        unknown = [p for p in part if p not in known]
        if unknown:
            raise ValueError(f"no module {unknown[0]!r} in {type(network).__name__} "
                             f"(e.g. {sorted(n for n in known if n.count('.') <= 2)[:8]})")
    x = torch.from_numpy(np.stack([normalize_image(c.image, spec.mean, spec.std) for c in crops]))
    with torch.no_grad():
        sx, sy = (t.numpy() for t in network(x))
    kp, sc = decode_simcc(sx, sy, spec.simcc_split_ratio)
    ref = {"sx": sx, "sy": sy, "kp": kp, "sc": sc}
    scheme = get_scheme("int8-ptq")
    limits = THRESHOLDS["int8"]
    batches = list(calibration) if calibration is not None else [x[i:i + 8] for i in range(0, len(x), 8)]
    rows = []
    for part in parts:
        t0 = time.perf_counter()
        qspec = dataclasses.replace(scheme.executorch, float_modules=scheme.executorch.float_modules + tuple(part))
        qnet = quantize_ptq(network, scheme, batches, qspec=qspec)
        with torch.no_grad():
            qx, qy = (t.numpy() for t in qnet(x))
        m = _metrics(qx, qy, ref, spec.simcc_split_ratio, PCK_RADIUS * spec.input_h)
        passes = (m["mean_kpt_px"] <= limits.mean_kpt_px and m["argmax_agreement"] >= limits.argmax_agreement
                  and m["pck_agreement"] >= limits.pck_agreement and m["score_max_abs"] <= limits.score_max_abs)
        row = {"float": list(part), **{k: round(v, 4) for k, v in m.items()}, "verify_int8": passes,
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        progress(f"{'+'.join(part) or '(scheme only)':60s} px {m['mean_kpt_px']:.2f}  argmax {m['argmax_agreement']:.1%}  "
                 f"PCK {m['pck_agreement']:.1%}  score {m['score_max_abs']:.2f}  {'pass' if passes else 'fail'}")
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
