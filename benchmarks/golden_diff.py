"""How close this network's outputs are to the release's golden tensors.

The golden files (``../shared/reference/starpose_{t,cpmini}_golden.safetensors``) hold a state
dict of *random* weights (randomized BatchNorm/LayerNorm statistics, so every parameter matters),
an input, and what the release's own code (the authors' MMPose fork) computed from them: the
backbone output and both SimCC vectors. This loads those weights into ``starpose.StarPose`` and
records the largest absolute difference of each output; tests/test_golden.py requires <= 1e-4.

    python -m benchmarks.golden_diff          # writes benchmarks/results/golden_diff.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .common import RESULTS, machine_info, write_json

CASES = ("t", "cpmini")


def measure(reference: Path, name: str) -> dict[str, float]:
    from safetensors.torch import load_file

    from starpose import StarPose, StarPoseConfig

    g = load_file(str(reference / f"starpose_{name}_golden.safetensors"))
    c = json.loads((reference / f"starpose_{name}_manifest.json").read_text())["config"]
    model = StarPose(StarPoseConfig(embed_dims=c["embed_dims"], num_layers=tuple(c["num_layers"]),
                                    prm_ratio=tuple(c["prm_ratio"]), dr_ratio=tuple(c["dr_ratio"]),
                                    structure=c["structure"]))
    model.load_state_dict({k[len("model."):]: v for k, v in g.items() if k.startswith("model.")}, strict=True)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(g["input"])
        sx, sy = model.forward_head(feats)
    return {"backbone_out": float((feats - g["backbone_out"]).abs().max()),
            "simcc_x": float((sx - g["simcc_x"]).abs().max()), "simcc_y": float((sy - g["simcc_y"]).abs().max())}


def main(argv: list[str] | None = None) -> Path:
    from starpose.sample_data import SHARED_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=SHARED_DIR / "reference",
                        help="the folder with the golden files (default: ../shared/reference)")
    parser.add_argument("--out", type=Path, default=RESULTS / "golden_diff.json")
    args = parser.parse_args(argv)
    if not args.reference.is_dir():
        parser.error(f"{args.reference}: no such folder (the project's shared reference data)")
    results = {name: measure(args.reference, name) for name in CASES}
    worst = max(v for r in results.values() for v in r.values())
    for name, r in results.items():
        print(f"starpose_{name}: " + ", ".join(f"{k} {v:.1e}" for k, v in r.items()), flush=True)
    payload = {"benchmark": "golden_diff", "weights": "random (the golden files' own state dicts)",
               "test_tolerance": 1e-4, "max_abs_diff": worst, "results": results,
               "machine": machine_info(threads=torch.get_num_threads())}
    return write_json(args.out, payload)


if __name__ == "__main__":
    print(main())
