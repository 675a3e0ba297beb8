"""Multi-process training with torchrun + gloo on CPU follows the 1-process curve."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import COCO_DIR, COCO_JSON, shared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(work, nproc: int, batch: int) -> list[float]:
    args = ["train", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)), "--epochs", "4", "--batch-size",
            str(batch), "--lr", "3e-3", "--no-scale-lr", "--warmup-iters", "1", "--no-aug", "--workers", "0",
            "--seed", "1", "--work-dir", str(work), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "starpose.cli", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
               "--master-addr=127.0.0.1", f"--master-port={_free_port()}", "-m", "starpose.cli", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return [h["loss"] for h in json.loads((work / "history.json").read_text())]


def test_two_process_gloo_matches_one_process(tmp_path):
    single = _train(tmp_path / "one", 1, 12)
    double = _train(tmp_path / "two", 2, 6)  # same global batch: 2 x 6
    assert len(single) == len(double) == 4
    assert single[-1] < single[0] and double[-1] < double[0]
    for a, b in zip(single, double):  # same shape; stochastic depth draws differ per process
        assert abs(a - b) <= 0.25 * max(a, b), (single, double)
    assert (tmp_path / "two" / "final.safetensors").is_file()
    assert not (tmp_path / "two" / "last.pt.tmp").exists()


def test_killed_run_resumes_without_losing_an_epoch(tmp_path):
    """SIGKILL a training process after its first checkpoint; --resume continues from it."""
    import signal
    import time

    work = tmp_path / "run"
    args = [sys.executable, "-m", "starpose.cli", "train", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
            "--epochs", "3", "--batch-size", "6", "--workers", "0", "--no-aug", "--work-dir", str(work), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args + ["--epochs", "50"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while not (work / "history.json").is_file() and time.time() < deadline:
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    import torch

    assert (work / "last.pt").is_file(), "no epoch finished before the deadline"
    done = torch.load(work / "last.pt", weights_only=True)["epoch"]
    r = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"resumed from {work / 'last.pt'} at epoch {done}" in r.stdout
    history = json.loads((work / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, max(3, done) + 1))
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]
