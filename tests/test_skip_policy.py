"""The conftest's skip policy: a skip whose reason is not on ALLOWED_SKIPS fails the run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED, TESTS, shared, skip_allowed


def test_the_shared_folder_reason_is_allowed_exactly_as_shared_words_it(monkeypatch):
    import conftest

    monkeypatch.setattr(conftest, "SHARED", SHARED.with_name("no-such-shared-folder"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        shared("fixtures/coco/test_coco.json")
    assert "no-such-shared-folder" in skipped.value.msg
    assert skip_allowed(skipped.value.msg)


@pytest.mark.parametrize("reason", [
    "could not import 'executorch.exir': No module named 'executorch'",
    "the export extra is not installed (pip install 'starpose-mobile[export]')",
    "kotlinc not found: npm install --prefix .tools kotlin-compiler@2.4.20",
    "needs /somewhere/else, which is absent",
])
def test_other_reasons_are_not_allowed(reason):
    assert not skip_allowed(reason)


def test_a_run_with_a_disallowed_skip_fails(tmp_path: Path):
    """End to end: this conftest's hooks in a small pytest run (its own process)."""
    (tmp_path / "conftest.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('starpose_tests_conftest', {str(TESTS / 'conftest.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
        "pytest_runtest_makereport = mod.pytest_runtest_makereport\n"
        "pytest_make_collect_report = mod.pytest_make_collect_report\n")
    (tmp_path / "test_x.py").write_text(
        "import sys\nimport pytest\n\n"
        "def test_allowed():\n    pytest.skip('java not found: the Kotlin core tests need a Java 17+ runtime')\n\n"
        "@pytest.mark.skipif(True, reason=\"Core ML predict() needs Apple's Core ML framework: macOS only\")\n"
        "def test_allowed_marker():\n    pass\n\n"
        "def test_broken_extra():\n    pytest.importorskip('no_such_module_for_the_skip_policy')\n\n"
        "@pytest.mark.xfail(reason='expected')\ndef test_xfail():\n    assert False\n")
    (tmp_path / "test_module_skip.py").write_text(
        "import pytest\npytest.importorskip('no_such_module_either')\n\ndef test_never():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")

    def run(name: str) -> tuple[int, str]:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        return proc.returncode, proc.stdout + proc.stderr

    rc, out = run("test_x.py")
    assert rc == 1, out
    assert "FAILED test_x.py::test_broken_extra" in out and "not on the allow-list" in out
    assert "1 failed" in out and "2 skipped" in out and "1 xfailed" in out, out
    rc, out = run("test_module_skip.py")
    assert rc == 2 and "ERROR test_module_skip.py" in out and "no_such_module_either" in out, out
