"""benchmarks.box_gap_history: docs/DETECTOR.md's history table is built from the committed per-weights
results files; merging six box_gap runs checks that each (set, input) is there once, with one pose model;
bad files and docs are clear errors that name them and change nothing."""
from __future__ import annotations

import json

import pytest

from benchmarks import box_gap_history as h

PEOPLE = "../shared/people/coco/person_keypoints.json"
FIXTURE = "../shared/fixtures/coco/test_coco.json"


def test_detector_md_table_is_built_from_the_results_files():
    """Adding a results file without `table --write` fails here, naming the fix."""
    text = h.DETECTOR_MD.read_text(encoding="utf-8")
    assert h.current_table(text, h.DETECTOR_MD) == h.table(), (
        "docs/DETECTOR.md's box-gap history differs from benchmarks/results: "
        "run `python -m benchmarks.box_gap_history table --write`")


def _run(ann, hw, gt, ours, holdout=None, interval=None, ratio=None, weights="default"):
    run = {"ann_file": ann, "variant": "starpose_t", "weights": weights, "flip": True,
           "detector_input_hw": list(hw) if hw else None, "AP": {"gt": gt, "ours": ours}}
    if ratio is not None:
        run["ratio_to_gt"] = {"gt": 1.0, "ours": ratio}
    if holdout:
        run["holdout"] = holdout
    if interval:
        run["ours_to_gt_bootstrap"] = {"resamples": 10, "seed": 0, "interval_90": interval}
    return run


def _write(path, runs, date="2026-12-01"):
    path.write_text(json.dumps({"date": date, "benchmark": "box_gap", "machine": {"cpu_model": "x"}, "runs": runs}))
    return path


def _six(scale=1.0, interval=None):
    return [_run(PEOPLE, (224, 160), 0.6, 0.51 * scale, interval=interval),
            _run(PEOPLE, (416, 416), 0.6, 0.54 * scale, interval=interval),
            _run(PEOPLE, (224, 160), 0.2, 0.18 * scale, holdout="coco", interval=interval),
            _run(PEOPLE, (416, 416), 0.2, 0.19 * scale, holdout="coco", interval=interval),
            _run(FIXTURE, (224, 160), 0.25, 0.3 * scale, interval=interval),
            _run(FIXTURE, (416, 416), 0.25, 0.28 * scale, interval=interval)]


def test_rows_per_weights_with_intervals_and_blank_cells(tmp_path):
    _write(tmp_path / "2026-12-01-box-gap-101ep.json", [_run(PEOPLE, None, 0.3, 0.25)])  # before 224x160: no row
    _write(tmp_path / "2026-12-02-box-gap-123ep.json", [_run(PEOPLE, (224, 160), 0.433, 0.34, ratio=0.785),
                                                         _run(FIXTURE, (224, 160), 0.294, 0.251)],
           date="2026-12-02")
    _write(tmp_path / "2026-12-03-box-gap-207ep.json", _six(), date="2026-12-03")
    _write(tmp_path / "2026-12-04-box-gap-207ep-intervals.json", _six(interval=[0.845, 0.9]), date="2026-12-04")
    _write(tmp_path / "2026-12-04-box-gap-207ep-nms-iou.json", _six(0.5))  # a one-off study: not a row
    _write(tmp_path / "2026-12-05-box-gap.json", _six(0.5))  # a single unmerged run: not a row
    rows = h.table(tmp_path).splitlines()
    assert len(rows) == 4, rows
    assert rows[2] == "| 123 | 2026-12-02 | 0.433 | 0.79x |  |  |  |  | 0.294 | 0.85x |  |"  # box_gap's 0.785, halves up
    cells = [c.strip() for c in rows[3].strip("|").split("|")]
    assert cells[:5] == ["207", "2026-12-04", "0.600", "0.85x [0.85, 0.90]", "0.90x [0.85, 0.90]"]  # the -intervals file
    assert cells[5:8] == ["0.200", "0.90x [0.85, 0.90]", "0.95x [0.85, 0.90]"]
    assert cells[8] == "0.250"


def test_merge_orders_the_six_runs_and_refuses_gaps_doubles_and_mixed_weights(tmp_path):
    parts = [_write(tmp_path / f"p{i}.json", [r]) for i, r in enumerate(reversed(_six()))]
    merged = h.merge(parts, "note", "cmd")
    assert [(h.set_of(r, tmp_path), tuple(r["detector_input_hw"])) for r in merged["runs"]] == [
        ("people", (224, 160)), ("people", (416, 416)), ("held", (224, 160)), ("held", (416, 416)),
        ("fixture", (224, 160)), ("fixture", (416, 416))]
    assert merged["weights_note"] == "note" and merged["machine"] == {"cpu_model": "x"}
    with pytest.raises(SystemExit, match="missing runs: fixture at 416x416"):
        h.merge(parts[1:], "note", "cmd")
    with pytest.raises(SystemExit, match=r"p0\.json: fixture at 416x416 is also in .*p0\.json"):
        h.merge(parts + parts[:1], "note", "cmd")
    other = _write(tmp_path / "other.json", [_run(FIXTURE, (416, 416), 0.25, 0.28, weights="mine.safetensors")])
    with pytest.raises(SystemExit, match="different pose models"):
        h.merge(parts[1:] + [other], "note", "cmd")
    odd = _write(tmp_path / "odd.json", [_run(FIXTURE, (320, 320), 0.25, 0.28)])
    with pytest.raises(SystemExit, match=r"odd\.json: detector input \[320, 320\]"):
        h.merge(parts + [odd], "note", "cmd")
    crowd = _write(tmp_path / "crowd.json", [_run("../shared/fixtures/crowdpose/test.json", (224, 160), 0.2, 0.1)])
    with pytest.raises(SystemExit, match=r"crowd\.json: a run on .*crowdpose.*not one of the three sets"):
        h.merge(parts + [crowd], "note", "cmd")


def test_merge_cli_writes_one_file(tmp_path):
    parts = [_write(tmp_path / f"p{i}.json", [r]) for i, r in enumerate(_six())]
    out = tmp_path / "2026-12-09-box-gap-300ep.json"
    assert h.main(["merge", str(out), *map(str, parts), "--note", "starpose_t 300 epochs"]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["runs"]) == 6 and doc["weights_note"] == "starpose_t 300 epochs"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"] == []


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a JSON file"),
    (json.dumps({"runs": []}), "no 'runs' list"),
    (json.dumps({"runs": [{"AP": {"gt": 0.5}}]}), r"a run without AP\['gt'\] and AP\['ours'\]"),
])
def test_bad_results_files_are_named(tmp_path, content, problem):
    bad = tmp_path / "2026-12-01-box-gap-300ep.json"
    bad.write_text(content)
    with pytest.raises(SystemExit, match=rf"2026-12-01-box-gap-300ep\.json: {problem}"):
        h.table(tmp_path)
    with pytest.raises(SystemExit, match="no such results file"):
        h.read_results(tmp_path / "missing.json")


def test_table_write_replaces_only_the_table_and_leaves_a_bad_doc_alone(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    _write(results / "2026-12-03-box-gap-207ep.json", _six())
    doc = tmp_path / "DETECTOR.md"
    doc.write_text(f"# head\n\n{h.BEGIN}\nold\n{h.END}\n\ntail\n")
    assert h.main(["table", "--write", "--results", str(results), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# head\n\n") and text.endswith(f"{h.END}\n\ntail\n") and "old" not in text
    assert h.current_table(text, doc) == h.table(results)
    broken = tmp_path / "broken.md"
    broken.write_text(f"{h.END}\nold\n{h.BEGIN}\n")
    with pytest.raises(SystemExit, match=r"broken\.md: expected one"):
        h.main(["table", "--write", "--results", str(results), "--doc", str(broken)])
    assert broken.read_text() == f"{h.END}\nold\n{h.BEGIN}\n"
    with pytest.raises(SystemExit, match="no <date>-box-gap-<N>ep.json"):
        h.table(tmp_path)  # its results/ is one level down: no files here


def test_run_names_a_missing_shared_folder(tmp_path):
    with pytest.raises(SystemExit, match=r"nothere: no such folder"):
        h.main(["run", "--note", "x", "--shared", str(tmp_path / "nothere"), "--epochs", "1"])
    (tmp_path / "s").mkdir()
    with pytest.raises(SystemExit, match=r"person_keypoints\.json: not found"):
        h.main(["run", "--note", "x", "--shared", str(tmp_path / "s"), "--epochs", "1"])


def test_run_names_the_data_relative_to_the_checkout(tmp_path):
    """Results files name ../shared/..., never the machine's folders."""
    jobs = h.box_gap_commands(h.ROOT.parent / "shared", "default", 1000, tmp_path)
    assert [label for label, _, _ in jobs] == [
        "people at 224x160", "people at 416x416", "held at 224x160", "held at 416x416",
        "fixture at 224x160", "fixture at 416x416"]
    label, cmd, part = jobs[2]
    assert cmd[cmd.index("--ann-file") + 1] == "../shared/people/coco/person_keypoints.json"
    assert cmd[cmd.index("--img-dir") + 1] == "../shared/people/coco/images"
    assert cmd[-2:] == ["--holdout", "coco"] and cmd[cmd.index("--detector-input") + 1] == "224x160"
    assert part.parent == tmp_path
