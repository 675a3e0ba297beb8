"""Damaged artifacts of every format fail ``verify`` cleanly: exit code 1, a FAIL line naming the
file, no Python traceback, no killed process.

Each format's artifact (and for the ``.mlpackage`` its spec and its weight file) is cut short and
has bytes flipped at several offsets, with its sidecar. Without ``manifest.json`` every reader
(the metadata in the format's own slot, the model, the runtime load) meets the damage itself:
all the damaged copies go into one directory and one ``starpose-mobile verify`` process, so a
crash in any native runtime would show as a signal or a missing artifact. With the manifest the
integrity check refuses them before any runtime sees them.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import executorch.exir  # noqa: F401  (an extra the test command installs: a broken install fails here)
import coremltools  # noqa: F401  (an extra the test command installs: a broken install fails here)
import litert_torch  # noqa: F401  (an extra the test command installs: a broken install fails here)
import onnxruntime  # noqa: F401  (an extra the test command installs: a broken install fails here)

from click.testing import CliRunner  # noqa: E402

from starpose.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FILES = ["starpose_t_xnnpack_fp32.pte", "starpose_t_coreml_fp32.pte", "starpose_t_fp32.tflite", "starpose_t_fp32.onnx",
         "starpose_t_fp32.pt", "starpose_t_fp32.ptl"]
MLPACKAGE = "starpose_t_fp32.mlpackage"
MLPACKAGE_PARTS = {"spec": "Data/com.apple.CoreML/model.mlmodel", "weights": "Data/com.apple.CoreML/weights/weight.bin"}

# (tag, kind, where): "cut" keeps the first `where` bytes (a fraction when < 1); "flip" inverts 8
# bytes from `where` (a fraction of the size when < 1, from the end when negative).
DAMAGE = [("cut100k", "cut", 100_000), ("cut50", "cut", 0.5), ("flip4", "flip", 4), ("flip33", "flip", 1 / 3),
          ("flipend", "flip", -100)]
# flips that hit what every reader needs (a file identifier, a zip central directory, a blob
# header): the copy must FAIL. Elsewhere a flip may land on bytes nothing reads (a producer
# string, a float's low mantissa): such a copy may pass, but must still be reported, not crash.
MUST_FAIL_FLIPS = {("starpose_t_xnnpack_fp32.pte", "flip4"), ("starpose_t_coreml_fp32.pte", "flip4"),
                   ("starpose_t_fp32.tflite", "flip4"), ("starpose_t_fp32.pt", "flipend"),
                   ("starpose_t_fp32.ptl", "flipend"), ("weights", "flip64")}
MLPACKAGE_DAMAGE = DAMAGE + [("flip64", "flip", 64)]  # 64: the first weight blob's header in weight.bin


def damage(path: Path, kind: str, where: float) -> None:
    data = bytearray(path.read_bytes())
    n = len(data)
    at = int(where * n) if 0 < abs(where) < 1 else int(where)
    if kind == "cut":
        path.write_bytes(bytes(data[:min(at, n - 1)]))
        return
    at = at if at >= 0 else n + at
    for i in range(at, min(at + 8, n)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _verify_cli(path: Path) -> subprocess.CompletedProcess:
    """``starpose-mobile verify`` in its own process: a native crash is a signal, not a test crash."""
    return subprocess.run([sys.executable, "-m", "starpose.cli", "verify", str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)


def _verdicts(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(\S+) \[\w+\] — (PASS|SKIP|FAIL)$", output, flags=re.M))


@pytest.fixture(scope="module")
def damaged_without_manifest(export_dir, tmp_path_factory):
    """Every damaged copy, with its sidecar, in one directory without a manifest, checked by one
    ``verify`` process; returns (completed process, {copy name: (artifact or part, tag)})."""
    out = tmp_path_factory.mktemp("damaged")
    made: dict[str, tuple[str, str]] = {}
    for name in FILES:
        for tag, kind, where in DAMAGE:
            copy = f"{tag}_{name}"
            shutil.copy(export_dir / name, out / copy)
            shutil.copy(export_dir / f"{name}.json", out / f"{copy}.json")
            damage(out / copy, kind, where)
            made[copy] = (name, tag)
    for part, rel in MLPACKAGE_PARTS.items():
        for tag, kind, where in MLPACKAGE_DAMAGE:
            copy = f"{part}-{tag}_{MLPACKAGE}"
            shutil.copytree(export_dir / MLPACKAGE, out / copy)
            shutil.copy(export_dir / f"{MLPACKAGE}.json", out / f"{copy}.json")
            damage(out / copy / rel, kind, where)
            made[copy] = (part, tag)
    return _verify_cli(out), made


def test_damage_without_manifest_fails_cleanly_in_every_format(damaged_without_manifest):
    proc, made = damaged_without_manifest
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit code {proc.returncode} (negative: killed by a signal)\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    verdicts = _verdicts(proc.stdout)
    assert set(verdicts) == set(made), f"not reported: {sorted(set(made) - set(verdicts))}"
    assert f"{len(made)} artifact(s)" in proc.stdout
    for copy, (what, tag) in made.items():
        if tag.startswith("cut") or (what, tag) in MUST_FAIL_FLIPS:
            assert verdicts[copy] == "FAIL", f"{copy} passed:\n{proc.stdout}"
    # every FAIL names its file in a FAIL line
    for block in proc.stdout.split("\n\n"):
        head = block.strip().splitlines()[0] if block.strip() else ""
        if head.endswith("— FAIL"):
            assert re.search(r"^\s+FAIL ", block, flags=re.M), block
            copy = head.split(" ")[0]
            assert copy in block.split("\n", 1)[1], block


def test_the_issue_case_truncated_tflite_without_manifest(damaged_without_manifest):
    """The reported case: a .tflite cut to 100,000 bytes, with its sidecar, no manifest."""
    proc, _ = damaged_without_manifest
    block = next(b for b in proc.stdout.split("\n\n") if b.startswith("cut100k_starpose_t_fp32.tflite"))
    assert "FAIL metadata" in block and "cut100k_starpose_t_fp32.tflite: not a readable TFLite flatbuffer" in block


@pytest.mark.parametrize("tag,kind,where", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damage_with_manifest_fails_integrity_before_any_runtime(export_dir, tmp_path, tag, kind, where):
    out = tmp_path / "models"
    shutil.copytree(export_dir, out)
    for name in FILES:
        damage(out / name, kind, where)
    damage(out / MLPACKAGE / MLPACKAGE_PARTS["weights"], kind, where)
    r = CliRunner().invoke(main, ["verify", str(out)])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    verdicts = _verdicts(r.output)
    assert verdicts == {name: "FAIL" for name in [*FILES, MLPACKAGE]}, r.output
    for name in FILES:
        assert re.search(rf"FAIL integrity: {re.escape(name)}: (size|sha256)", r.output), r.output
    assert "not loaded: the files differ from the manifest" in r.output
