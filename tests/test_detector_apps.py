"""The demo apps' detector twins: the Kotlin core's detector tests run on tests/golden/detector.json
(and fail on a perturbed value of exactly their section), and the Swift core declares and tests
the same detector API (parsed with tree-sitter here; `swift test` runs it on macOS)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from test_android_core import _result_lines, core_jar, run_core_tests  # noqa: F401 - core_jar is a fixture
from test_ios_swift_parse import declarations, parser  # noqa: F401 - parser is a fixture

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
KOTLIN_TESTS = REPO / "android_demo/core/src/test/kotlin/org/starpose/core/DetectorTests.kt"
SWIFT_TESTS = REPO / "ios_demo/StarPoseKit/Tests/StarPoseCoreTests/DetectorTests.swift"

# detector.json section → the test (Kotlin r.test name = Swift test_ name) that consumes it
SECTIONS = {
    "letterbox": "detector_letterbox",
    "anchors": "detector_anchors",
    "decode": "detector_decode_nms_to_image",
    "nms": "detector_nms",
    "match_by_iou": "detector_match_by_iou",
    "multi_tracker": "detector_multi_tracker",
}
DETECTOR_API = {
    "func": {"letterboxTransform", "letterboxMatrix", "anchorPoints", "decodeDetections", "boxIou", "nms",
             "boxesToImage", "boxIouXywh", "matchByIou"},
    "type": {"DetectorMetadata", "PersonDetectorStep", "Track", "MultiPersonTracker", "PeoplePipeline"},
}


def test_every_detector_section_has_a_test_in_both_cores(parser) -> None:  # noqa: F811
    doc = json.loads((GOLDEN / "detector.json").read_text())
    top = {k for k, v in doc.items() if isinstance(v, (list, dict)) and k not in ("tolerance", "spec")}
    assert top == set(SECTIONS), sorted(top ^ set(SECTIONS))
    kotlin = set(re.findall(r'r\.test\("(\w+)"\)', KOTLIN_TESTS.read_text()))
    swift = {n[len("test_"):] for n in declarations(parser, SWIFT_TESTS)["func"] if n.startswith("test_")}
    assert set(SECTIONS.values()) <= kotlin and kotlin == swift, (sorted(kotlin ^ swift), sorted(kotlin))


def test_swift_core_declares_the_kotlin_detector_api(parser) -> None:  # noqa: F811
    swift: dict[str, set[str]] = {"func": set(), "type": set()}
    for path in (REPO / "ios_demo/StarPoseKit/Sources/StarPoseCore").glob("*.swift"):
        for kind, names in declarations(parser, path).items():
            swift[kind] |= names
    kotlin = "\n".join(p.read_text() for p in (REPO / "android_demo/core/src/main").rglob("*.kt"))
    kotlin_funcs = set(re.findall(r"^fun (\w+)", kotlin, re.M))
    kotlin_types = set(re.findall(r"^(?:[a-z]+ )*(?:class|object|interface) (\w+)", kotlin, re.M))
    assert DETECTOR_API["func"] <= kotlin_funcs and DETECTOR_API["func"] <= swift["func"]
    assert DETECTOR_API["type"] <= kotlin_types and DETECTOR_API["type"] <= swift["type"]


def test_kotlin_detector_tests_pass(core_jar: Path) -> None:  # noqa: F811
    proc = run_core_tests(core_jar, GOLDEN)
    out = proc.stdout + proc.stderr
    results = _result_lines(out)
    want = set(re.findall(r'r\.test\("(\w+)"\)', KOTLIN_TESTS.read_text()))
    assert {t for t in want if results.get(t) != "PASS"} == set(), out[-4000:]
    assert proc.returncode == 0, out[-4000:]


PERTURBATIONS = [
    (["letterbox", 2, "scale"], 1e-6, "detector_letterbox"),
    (["anchors", "centres", 7], 0.5, "detector_anchors"),
    (["decode", "boxes", 40], 1e-6, "detector_decode_nms_to_image"),
    (["decode", "keep", 0], 1, "detector_decode_nms_to_image"),
    (["nms", 2, "keep", 0], 1, "detector_nms"),
    (["match_by_iou", 0, "pairs", 1, 1], 1, "detector_match_by_iou"),
    (["multi_tracker", "frames", 3, "updates", 1, "next_box", 2], 1e-6, "detector_multi_tracker"),
]


@pytest.mark.parametrize("path,delta,test", PERTURBATIONS, ids=[f"{p[2]}-{p[0][0]}-{p[0][-1]}" for p in PERTURBATIONS])
def test_kotlin_detector_fails_on_a_perturbed_value(core_jar: Path, tmp_path: Path, path: list, delta: float,  # noqa: F811
                                                    test: str) -> None:
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    doc = json.loads((golden / "detector.json").read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] += delta
    (golden / "detector.json").write_text(json.dumps(doc))
    proc = run_core_tests(core_jar, golden)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert [t for t, r in _result_lines(out).items() if r == "FAIL"] == [test], out[-3000:]
