"""Static checks of the Android app (android_demo/app), which cannot be built here (no Android SDK):
every Kotlin file and Gradle script parses with a real Kotlin grammar, every version-catalog alias a
build script uses exists, resources referenced from Kotlin exist, and the app uses only declarations
the core really has. The core itself is compiled and run by tests/test_android_core.py.
"""
from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import syntax_errors

REPO = Path(__file__).resolve().parents[1]
ANDROID = REPO / "android_demo"
APP = ANDROID / "app"
CORE = ANDROID / "core"
KOTLIN_FILES = sorted(p for p in ANDROID.rglob("*.kt*") if p.suffix in (".kt", ".kts") and "build" not in p.parts)


def _kotlin_parser():
    import tree_sitter as ts
    import tree_sitter_kotlin as grammar
    return ts.Parser(ts.Language(grammar.language()))


def test_kotlin_sources_exist() -> None:
    names = {p.relative_to(ANDROID).as_posix() for p in KOTLIN_FILES}
    for required in (
        "settings.gradle.kts",
        "app/build.gradle.kts",
        "core/build.gradle.kts",
        "app/src/main/kotlin/org/starpose/demo/MainActivity.kt",
        "app/src/main/kotlin/org/starpose/demo/ml/PoseEstimator.kt",
        "app/src/main/kotlin/org/starpose/demo/ml/ExecuTorchPoseEstimator.kt",
        "app/src/main/kotlin/org/starpose/demo/ml/LiteRtPoseEstimator.kt",
        "app/src/main/kotlin/org/starpose/demo/camera/CameraController.kt",
        "app/src/main/kotlin/org/starpose/demo/ui/OverlayView.kt",
    ):
        assert required in names


@pytest.mark.parametrize("path", KOTLIN_FILES, ids=[p.relative_to(ANDROID).as_posix() for p in KOTLIN_FILES])
def test_kotlin_file_parses(path: Path) -> None:
    errors = syntax_errors(_kotlin_parser(), path.read_bytes())
    assert not errors, f"{path.relative_to(REPO)}: " + "; ".join(errors[:5])


def test_kotlin_parser_rejects_broken_code() -> None:
    parser = _kotlin_parser()
    good = b"package a\n\nclass A(val x: Int) {\n    fun f(): Int = x * 2\n}\n"
    assert syntax_errors(parser, good) == []
    for bad in (
        b"package a\n\nclass A(val x: Int) {\n    fun f(: Int = x * 2\n}\n",  # broken parameter list
        b"fun f() {\n    val x = listOf(1, 2\n}\n",  # unclosed call
        b"class B {\n    fun g() = when (x) { 1 -> }\n}\n",  # empty branch
    ):
        assert syntax_errors(parser, bad), bad


def _catalog() -> dict:
    return tomllib.loads((ANDROID / "gradle" / "libs.versions.toml").read_text())


def test_version_catalog_covers_every_alias_the_build_uses() -> None:
    cat = _catalog()
    versions = cat["versions"]
    libs = {k.replace("-", ".").replace("_", "."): v for k, v in cat["libraries"].items()}
    plugins = {k.replace("-", ".").replace("_", "."): v for k, v in cat["plugins"].items()}
    for entry in list(cat["libraries"].values()) + list(cat["plugins"].values()):
        ref = entry.get("version", {}).get("ref") if isinstance(entry.get("version"), dict) else None
        assert ref is None or ref in versions, f"version.ref {ref} missing from [versions]"
    used = 0
    for script in ANDROID.rglob("*.gradle.kts"):
        text = re.sub(r"//.*", "", script.read_text())
        for alias in re.findall(r"\blibs\.plugins\.(\w+(?:\.\w+)*)", text):
            assert alias in plugins, f"{script.name}: libs.plugins.{alias} is not in the catalog"
            used += 1
        for alias in re.findall(r"\blibs\.(?!plugins\.)(\w+(?:\.\w+)*)", text):
            assert alias in libs, f"{script.name}: libs.{alias} is not in the catalog"
            used += 1
    assert used >= 15
    for key in ("agp", "kotlin", "camerax", "executorch", "litert"):
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?(-[\w.]+)?", versions[key]), (key, versions[key])


def test_runtime_versions_are_not_older_than_the_exporters() -> None:
    """An ExecuTorch runtime older than the Python package that wrote the .pte may refuse it."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["export"]
    pins = dict(re.match(r"([\w-]+)==([\w.]+)", p).groups() for p in extras if "==" in p)
    assert _catalog()["versions"]["executorch"] == pins["executorch"]


def _xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def test_resources_parse_and_kotlin_references_exist() -> None:
    res = APP / "src" / "main" / "res"
    android = "{http://schemas.android.com/apk/res/android}"
    ids: set[str] = set()
    custom_views: set[str] = set()
    for layout in (res / "layout").glob("*.xml"):
        for el in _xml(layout).iter():
            if (v := el.get(f"{android}id", "")).startswith("@+id/"):
                ids.add(v[5:])
            if el.tag.startswith("org.starpose."):
                custom_views.add(el.tag)
    strings = {el.get("name") for el in _xml(res / "values" / "strings.xml").iter("string")}
    styles = {el.get("name") for f in (res / "values").glob("*.xml") for el in _xml(f).iter("style")}
    layouts = {p.stem for p in (res / "layout").glob("*.xml")}
    kotlin = "\n".join(p.read_text() for p in (APP / "src").rglob("*.kt"))
    for kind, known in (("id", ids), ("string", strings), ("layout", layouts)):
        for name in re.findall(rf"\bR\.{kind}\.(\w+)", kotlin):
            assert name in known, f"R.{kind}.{name} is not defined in res/"
    for view in custom_views:
        pkg, cls = view.rsplit(".", 1)
        assert re.search(rf"^package {re.escape(pkg)}$", kotlin, re.M) and re.search(rf"\bclass {cls}\b", kotlin), view
    manifest = _xml(APP / "src" / "main" / "AndroidManifest.xml")
    for act in manifest.iter("activity"):
        cls = act.get(f"{android}name").lstrip(".")
        assert re.search(rf"\bclass {cls}\b", kotlin), f"manifest activity {cls} has no class"
    theme = manifest.find("application").get(f"{android}theme")
    assert theme.startswith("@style/") and theme[7:] in styles
    perms = {p.get(f"{android}name") for p in manifest.iter("uses-permission")}
    assert "android.permission.CAMERA" in perms


def _core_declarations() -> set[str]:
    text = "\n".join(p.read_text() for p in (CORE / "src" / "main").rglob("*.kt"))
    return set(re.findall(r"^(?:[a-z]+ )*(?:class|object|interface|fun|val|var) (?:<[^>]+> )?(\w+)", text, re.M))


def test_app_uses_only_what_the_core_declares() -> None:
    declared = _core_declarations()
    assert {"PosePipeline", "ModelMetadata", "warpAffineBilinear", "OneEuroFilter", "RoiTracker"} <= declared
    for path in (APP / "src").rglob("*.kt"):
        for name in re.findall(r"^import org\.starpose\.core\.(\w+)", path.read_text(), re.M):
            assert name in declared, f"{path.name} imports org.starpose.core.{name}, which the core does not declare"
