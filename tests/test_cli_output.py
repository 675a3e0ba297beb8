"""What the commands print, and how soon they fail on a missing input.

- The README's first command (``predict --sample``, ``export --format all``) prints its own
  progress and results in a few dozen lines, nothing of the libraries underneath unless
  ``--verbose``; counted on the real commands in their own processes (native log lines go
  straight to the process's file descriptors, which only a separate process shows as a user
  sees them).
- Every command refuses a missing input path before it imports torch (so within a second or
  two, before any model loads), naming the path.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import export_log

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 40  # the goal for each step of the first command
# Lines the libraries print when they are not captured (coremltools, ExecuTorch, LiteRT, torch).
LIBRARY_MARKERS = ["Running MIL", "Converting PyTorch Frontend", "Failed to load _ML", "scikit-learn version",
                   "has not been tested with coremltools", "TracerWarning", "torchvision is not installed",
                   "cpuinfo", "LiteRT-Torch Convert", "INFO:executorch", "specification version", "absl::",
                   "DeprecationWarning", "UserWarning"]


def _lines(text: str) -> list[str]:
    """Lines as a terminal shows them: a progress bar redrawn in place (``\\r``) is one line."""
    return [line for line in text.splitlines() if line.strip()]


def _run(*args: str, timeout: float = 1800, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "starpose.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=None if env is None else {**os.environ, **env})


def test_predict_sample_prints_a_few_lines(tmp_path):
    proc = _run("predict", "--sample", "--weights", "random", "--out", str(tmp_path))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    lines = _lines(text)
    assert len(lines) <= MAX_LINES, text
    assert not [m for m in LIBRARY_MARKERS if m in text], text
    assert sum(line.startswith("overlay: ") for line in lines) == 2
    assert any(line.startswith("results: ") for line in lines)


def test_export_all_prints_one_line_per_artifact(export_dir):
    """The session's export directory is made by ``starpose-mobile export --format all``
    (conftest.export_dir); this reads what it printed."""
    text = export_log(export_dir).read_text(encoding="utf-8")
    lines = _lines(text)
    assert len(lines) <= MAX_LINES, text
    assert not [m for m in LIBRARY_MARKERS if m in text], text
    artifacts = sorted(p.name for p in export_dir.iterdir() if p.suffix in {".pte", ".mlpackage", ".tflite", ".pt",
                                                                             ".ptl", ".onnx"})
    wrote = sorted(Path(line.split()[1]).name for line in lines if line.startswith("  wrote "))
    assert wrote == artifacts, text
    assert lines[-1] == f"manifest: {export_dir / 'manifest.json'}"


def test_verbose_shows_what_the_libraries_print(tmp_path):
    show = {"PYTHONWARNINGS": "default"}  # so that torch's DeprecationWarning is printed at all
    quiet = _run("export", "--format", "torchscript", "--weights", "random", "--out", str(tmp_path / "q"), env=show)
    loud = _run("export", "--format", "torchscript", "--weights", "random", "--out", str(tmp_path / "v"), "--verbose",
                env=show)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    # torch.jit.trace's own deprecation warning: captured by default, shown with --verbose
    assert "torch.jit.trace" not in quiet.stdout + quiet.stderr
    assert "`torch.jit.trace` is deprecated" in loud.stdout + loud.stderr
    assert "TracerWarning" not in loud.stdout + loud.stderr  # fixed at its source (starpose/models/deploy.py)


MISSING = "no_such_input"


@pytest.mark.parametrize("args", [
    ["predict", f"{MISSING}.jpg"],
    ["predict", "--sample", "--det", f"{MISSING}.json"],
    ["predict", "--sample", "--weights", f"{MISSING}.safetensors"],
    ["predict", "--sample", "--out", f"{MISSING}.jpg"],
    ["eval", "--data-root", MISSING],
    ["eval", "--ann-file", f"{MISSING}.json", "--img-dir", "."],
    ["train", "--ann-file", f"{MISSING}.json", "--img-dir", "."],
    ["train", "--config", "coco_256x192_t", "--data-root", MISSING],
    ["export", "--format", "onnx", "--weights", f"{MISSING}.pth"],
    ["export", "--format", "tflite", "--precision", "int8", "--calib-data", f"{MISSING}.json"],
    ["export", "--format", "tflite", "--precision", "int8", "--calib-data", "README.md", "--calib-images", MISSING],
    ["qat", "--data", f"{MISSING}.json"],
    ["verify", f"{MISSING}.pte"],
    ["verify", ".", "--weights", f"{MISSING}.pth"],
    ["verify", ".", "--coco-json", "README.md", "--images", MISSING],
    ["bench", f"{MISSING}.tflite"],
    ["bench", "--weights", f"{MISSING}.pth"],
], ids=lambda a: " ".join(a))
def test_missing_input_fails_before_torch_is_imported(args):
    code = ("import sys\nfrom starpose.cli import main\n"
            "try:\n    main(sys.argv[1:], prog_name='starpose-mobile')\n"
            "except SystemExit as e:\n"
            "    print('exit', e.code, 'torch imported' if 'torch' in sys.modules else 'torch not imported')\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert "torch not imported" in proc.stdout, proc.stdout + proc.stderr
    assert "exit 0" not in proc.stdout
    assert MISSING in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    print(f"{' '.join(args)}: failed in {seconds:.2f} s")


def test_verify_images_needs_coco_json(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main

    result = CliRunner().invoke(main, ["verify", str(tmp_path), "--images", str(tmp_path)])
    assert result.exit_code == 2 and "--images needs --coco-json" in result.output
