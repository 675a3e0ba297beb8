"""The Android app's pure-Kotlin core (android_demo/core), compiled with kotlinc and run on the JVM
against the shared golden fixture (tests/golden), exactly as the numpy reference wrote it.

kotlinc is slow (~25 s on two cores), so the test jar is cached by a hash of the Kotlin sources in
the system temp folder. Without kotlinc the tests skip and say how to install it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "android_demo" / "core"
GOLDEN = REPO / "tests" / "golden"
MAIN_CLASS = "org.starpose.core.GoldenTestsKt"
INSTALL_HINT = (
    "install it with `npm install --prefix .tools kotlin-compiler@2.4.20` in the repository root "
    "(needs Java 17+), or point KOTLINC at a kotlinc"
)


def find_kotlinc() -> str | None:
    for cand in (
        os.environ.get("KOTLINC"),
        str(REPO / ".tools" / "node_modules" / "kotlin-compiler" / "bin" / "kotlinc"),
        shutil.which("kotlinc"),
    ):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def _sources() -> list[Path]:
    return sorted(p for p in (CORE / "src").rglob("*.kt"))


def _source_hash(kotlinc: str) -> str:
    h = hashlib.sha256()
    build_txt = Path(kotlinc).resolve().parent.parent / "build.txt"
    h.update((build_txt.read_text() if build_txt.is_file() else kotlinc).encode())
    for p in _sources():
        h.update(p.relative_to(CORE).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:20]


@pytest.fixture(scope="session")
def core_jar() -> Path:
    kotlinc = find_kotlinc()
    if kotlinc is None:
        pytest.skip(f"kotlinc not found: {INSTALL_HINT}")
    if shutil.which("java") is None:
        pytest.skip("java not found: the Kotlin core tests need a Java 17+ runtime")
    cache = Path(tempfile.gettempdir()) / "starpose-mobile-kotlin"
    cache.mkdir(parents=True, exist_ok=True)
    jar = cache / f"core-tests-{_source_hash(kotlinc)}.jar"
    if jar.is_file():
        return jar
    tmp = cache / f".{jar.name}.{os.getpid()}.tmp.jar"
    cmd = [kotlinc, *(str(p) for p in _sources()), "-include-runtime", "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ": error:" in ln]
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        pytest.fail(f"kotlinc failed ({proc.returncode}):\n" + "\n".join(errors or [proc.stderr[-4000:]]))
    os.replace(tmp, jar)
    return jar


def run_core_tests(jar: Path, golden: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["java", "-cp", str(jar), MAIN_CLASS, str(golden)], capture_output=True, text=True, timeout=300
    )


def _result_lines(out: str) -> dict[str, str]:
    return {m.group(2): m.group(1) for m in re.finditer(r"^(PASS|FAIL) (\w+)", out, re.M)}


# Each golden section and the runner test that consumes it.
SECTIONS = {
    ("processing.json", "boxes_xywh"): "boxes_xywh",
    ("processing.json", "boxes_xyxy"): "boxes_xyxy",
    ("processing.json", "affine"): "affine",
    ("processing.json", "warp"): "warp",
    ("processing.json", "normalize"): "normalize",
    ("processing.json", "simcc"): "simcc",
    ("tracking.json", "one_euro"): "one_euro",
    ("tracking.json", "roi"): "roi",
    ("tracking.json", "skeleton"): "skeleton",
    ("tracking.json", "pipeline"): "pipeline",
    ("metadata_cases.json", "valid"): "metadata_valid",
    ("metadata_cases.json", "invalid"): "metadata_invalid",
}


def test_core_has_no_android_imports() -> None:
    """The core must compile on a plain JVM: no android.*, androidx.* or runtime imports."""
    offenders = [
        f"{p.relative_to(REPO)}: {ln.strip()}"
        for p in (CORE / "src" / "main").rglob("*.kt")
        for ln in p.read_text().splitlines()
        if re.match(r"\s*import\s+(android|androidx|org\.pytorch|org\.tensorflow|com\.google)\.", ln)
    ]
    assert not offenders, offenders


def test_every_golden_section_has_a_kotlin_test() -> None:
    for (name, key) in SECTIONS:
        assert key in json.loads((GOLDEN / name).read_text()), f"{name} lost section {key}"
    top = {
        (name, key)
        for name in ("processing.json", "tracking.json", "metadata_cases.json")
        for key, val in json.loads((GOLDEN / name).read_text()).items()
        if isinstance(val, (list, dict)) and key not in ("tolerance", "spec", "warp_image")
    }
    assert top <= set(SECTIONS), f"golden sections without a Kotlin test: {sorted(top - set(SECTIONS))}"


def test_kotlin_core_matches_golden(core_jar: Path) -> None:
    proc = run_core_tests(core_jar, GOLDEN)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    results = _result_lines(out)
    missing = [t for t in SECTIONS.values() if results.get(t) != "PASS"]
    assert not missing, f"tests not passed: {missing}\n{out[-4000:]}"
    assert re.search(r"^(\d+) passed, 0 failed$", out, re.M), out[-2000:]


def _bump(doc: dict, path: list, delta: float) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] += delta


PERTURBATIONS = [
    ("processing.json", ["boxes_xywh", 2, "scale", 0], 1e-6, "boxes_xywh"),
    ("processing.json", ["affine", 2, "inverse", 1, 2], 1e-6, "affine"),
    ("processing.json", ["warp", 1, "crop_hwc", 40], 3, "warp"),
    ("processing.json", ["simcc", 0, "keypoints", 10], 0.5, "simcc"),
    ("processing.json", ["simcc", 0, "scores", 4], 1e-7, "simcc"),
    ("tracking.json", ["one_euro", 1, "outputs", 12, 3], 1e-6, "one_euro"),
    ("tracking.json", ["roi", "frames", 5, "next_box", 2], 1e-6, "roi"),
    ("tracking.json", ["pipeline", "frames", 4, "smoothed", 7], 1e-6, "pipeline"),
    ("metadata_cases.json", ["valid", 0, "expect", "num_keypoints"], 1, "metadata_valid"),
]


@pytest.mark.parametrize("name,path,delta,test", PERTURBATIONS, ids=[p[3] + "-" + str(p[1][0]) for p in PERTURBATIONS])
def test_kotlin_core_fails_on_a_perturbed_golden_value(
    core_jar: Path, tmp_path: Path, name: str, path: list, delta: float, test: str
) -> None:
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    doc = json.loads((golden / name).read_text())
    _bump(doc, path, delta)
    (golden / name).write_text(json.dumps(doc))
    proc = run_core_tests(core_jar, golden)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    results = _result_lines(out)
    assert results.get(test) == "FAIL", f"{test} did not fail:\n{out[-3000:]}"
    assert [t for t, r in results.items() if r == "FAIL"] == [test], out[-3000:]


def test_kotlin_core_fails_on_a_dropped_skeleton_line(core_jar: Path, tmp_path: Path) -> None:
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    doc = json.loads((golden / "tracking.json").read_text())
    doc["skeleton"][2]["lines"].pop(3)
    (golden / "tracking.json").write_text(json.dumps(doc))
    proc = run_core_tests(core_jar, golden)
    assert proc.returncode == 1 and _result_lines(proc.stdout).get("skeleton") == "FAIL", proc.stdout[-3000:]


def test_kotlin_core_reports_a_missing_fixture(core_jar: Path, tmp_path: Path) -> None:
    proc = run_core_tests(core_jar, tmp_path)
    assert proc.returncode == 2 and "golden fixture not found" in proc.stderr
