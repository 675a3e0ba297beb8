"""The iOS side (ios_demo) cannot be compiled here (no Swift toolchain on Linux in this project), so
every .swift file is parsed with a real Swift grammar (tree-sitter-swift) and a syntax error fails;
the XCTest suite is checked to consume every golden section, the Swift core to declare the same
API as the Kotlin core (which is compiled and run by tests/test_android_core.py), and the package
and Xcode project spec to point at files that exist. `swift test` on macOS runs the XCTests.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from conftest import syntax_errors

REPO = Path(__file__).resolve().parents[1]
IOS = REPO / "ios_demo"
KIT = IOS / "StarPoseKit"
GOLDEN = REPO / "tests" / "golden"
XCTEST = KIT / "Tests" / "StarPoseCoreTests" / "GoldenTests.swift"
SWIFT_FILES = sorted(p for p in IOS.rglob("*.swift") if ".build" not in p.parts)
HINT = "install the dev extra: pip install 'starpose-mobile[dev]'"


@pytest.fixture(scope="module")
def parser():
    import tree_sitter as ts
    import tree_sitter_swift as grammar
    return ts.Parser(ts.Language(grammar.language()))


def declarations(parser, path: Path) -> dict[str, set[str]]:
    """Names of functions and types declared in a Swift file (any nesting)."""
    found: dict[str, set[str]] = {"func": set(), "type": set()}

    def walk(node) -> None:
        if node.type in ("function_declaration", "class_declaration", "protocol_declaration"):
            name = node.child_by_field_name("name")
            if name is not None:
                kind = "func" if node.type == "function_declaration" else "type"
                found[kind].add(name.text.decode())
        for child in node.children:
            walk(child)

    walk(parser.parse(path.read_bytes()).root_node)
    return found


def test_swift_sources_exist() -> None:
    names = {p.relative_to(IOS).as_posix() for p in SWIFT_FILES}
    for required in (
        "StarPoseKit/Package.swift",
        "StarPoseKit/Sources/StarPoseKit/PoseEstimator.swift",
        "StarPoseKit/Sources/StarPoseKit/CoreMLPoseEstimator.swift",
        "StarPoseKit/Sources/StarPoseKit/ExecuTorchPoseEstimator.swift",
        "StarPoseKit/Sources/StarPoseCore/Pipeline.swift",
        "StarPoseKit/Tests/StarPoseCoreTests/GoldenTests.swift",
        "App/StarPoseDemo/StarPoseDemoApp.swift",
        "App/StarPoseDemo/CameraModel.swift",
    ):
        assert required in names


@pytest.mark.parametrize("path", SWIFT_FILES, ids=[p.relative_to(IOS).as_posix() for p in SWIFT_FILES])
def test_swift_file_parses(parser, path: Path) -> None:
    errors = syntax_errors(parser, path.read_bytes())
    assert not errors, f"{path.relative_to(REPO)}: " + "; ".join(errors[:5])


@pytest.mark.parametrize(
    "snippet",
    [
        "func f(_ x: Int -> Int { x }\n",  # unclosed parameter list
        "struct A {\n    let x: Int =\n}\n",  # missing initial value
        "let y = [1, 2, 3\n",  # unclosed array
        "if x { print(1) } else if { }\n",  # missing condition
        "class B { func g() { let = 3 } }\n",  # missing pattern
    ],
)
def test_swift_parser_rejects_broken_code(parser, snippet: str) -> None:
    assert syntax_errors(parser, snippet.encode()), snippet


def test_swift_parser_accepts_the_constructs_we_use(parser) -> None:
    ok = b"""
import Foundation
#if canImport(CoreML)
import CoreML
#endif
public struct S { public subscript(_ k: String) -> Int { get throws { 1 } } }
func f(_ v: [UInt8]) throws -> Int { try v.withUnsafeBytes { buf in buf.count } }
let t = (1, 2.0, "x"); var v = (0.0, 0.0); v.0 += 1
"""
    assert syntax_errors(parser, ok) == []


def _golden_sections() -> set[str]:
    out = set()
    for name in ("processing.json", "tracking.json", "metadata_cases.json"):
        for key, val in json.loads((GOLDEN / name).read_text()).items():
            if isinstance(val, (list, dict)) and key not in ("tolerance", "spec", "warp_image"):
                out.add(f"metadata_{key}" if name == "metadata_cases.json" else key)
    return out


def test_xctest_covers_every_golden_section(parser) -> None:
    tests = {n[len("test_"):] for n in declarations(parser, XCTEST)["func"] if n.startswith("test_")}
    missing = _golden_sections() - tests
    assert not missing, f"golden sections without an XCTest: {sorted(missing)}"
    # and the same unit checks as the Kotlin runner
    kotlin = (REPO / "android_demo/core/src/test/kotlin/org/starpose/core/GoldenTests.kt").read_text()
    kotlin_tests = set(re.findall(r'r\.test\("(\w+)"\)', kotlin))
    assert kotlin_tests == tests, f"Kotlin-only: {sorted(kotlin_tests - tests)}, Swift-only: {sorted(tests - kotlin_tests)}"


def test_xctest_finds_the_golden_folder() -> None:
    """GoldenTests.swift walks five components up from its own path to the repository root."""
    rel = XCTEST.relative_to(REPO)
    assert len(rel.parts) == 5
    text = XCTEST.read_text()
    assert "for _ in 0..<5 { url.deleteLastPathComponent() }" in text
    assert 'appendingPathComponent("tests/golden")' in text
    assert (REPO / "tests" / "golden" / "processing.json").is_file()


SHARED_API = {
    "func": {
        "fixAspectRatio", "bboxXywhToCs", "bboxXyxyToCs", "getWarpMatrix", "warpAffineBilinear", "normalizeImage",
        "decodeSimcc", "keypointsToImage", "torsoIndices", "roiFromKeypoints", "fullFrameBox", "skeletonDrawList",
    },
    "type": {
        "Affine", "Box", "CenterScale", "RgbImage", "Keypoints", "OneEuroFilter", "RoiTracker", "RoiParams",
        "FilterParams", "ModelMetadata", "PoseSpecInfo", "InputInfo", "ModelOutput", "PreparedInput", "PoseResult",
        "PosePipeline", "FrameStats", "DrawList", "Side", "Layout",
    },
}


def test_swift_core_mirrors_the_kotlin_core(parser) -> None:
    swift: dict[str, set[str]] = {"func": set(), "type": set()}
    for path in (KIT / "Sources" / "StarPoseCore").glob("*.swift"):
        for kind, names in declarations(parser, path).items():
            swift[kind] |= names
    kotlin_text = "\n".join(p.read_text() for p in (REPO / "android_demo/core/src/main").rglob("*.kt"))
    kotlin_funcs = set(re.findall(r"^fun (\w+)", kotlin_text, re.M))
    kotlin_types = set(re.findall(r"^(?:[a-z]+ )*(?:class|object|interface) (\w+)", kotlin_text, re.M))
    for kind, kotlin in (("func", kotlin_funcs), ("type", kotlin_types)):
        assert SHARED_API[kind] <= kotlin, f"Kotlin core lacks {sorted(SHARED_API[kind] - kotlin)}"
        assert SHARED_API[kind] <= swift[kind], f"Swift core lacks {sorted(SHARED_API[kind] - swift[kind])}"


def test_package_manifest(parser) -> None:
    text = (KIT / "Package.swift").read_text()
    targets = set(re.findall(r'\.(?:target|testTarget)\(name: "(\w+)"', text))
    assert targets == {"StarPoseCore", "StarPoseKit", "StarPoseCoreTests"}
    for t in targets:
        folder = KIT / ("Tests" if t.endswith("Tests") else "Sources") / t
        assert any(folder.glob("*.swift")), f"target {t} has no sources in {folder}"
    assert ".iOS(.v17)" in text  # the ExecuTorch package needs iOS 17 / macOS 14
    # The ExecuTorch runtime must not be older than the Python package that wrote the .pte.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["export"]
    et = next(p.split("==")[1] for p in extras if p.startswith("executorch=="))
    assert f'"swiftpm-{et}"' in text


def test_xcode_project_spec() -> None:
    import yaml
    spec = yaml.safe_load((IOS / "App" / "project.yml").read_text())
    app_dir = IOS / "App"
    pkg = spec["packages"]["StarPoseKit"]["path"]
    assert (app_dir / pkg / "Package.swift").is_file()
    target = spec["targets"]["StarPoseDemo"]
    sources = [s if isinstance(s, str) else s["path"] for s in target["sources"]]
    assert all((app_dir / s).is_dir() for s in sources)
    products = set(re.findall(r'\.library\(name: "(\w+)"', (KIT / "Package.swift").read_text()))
    for dep in target["dependencies"]:
        assert dep["product"] in products
    settings = target["settings"]["base"]
    assert settings["INFOPLIST_KEY_NSCameraUsageDescription"]
    assert "-all_load" in settings["OTHER_LDFLAGS"]
    assert spec["options"]["deploymentTarget"]["iOS"] == "17.0"
