"""Multi-process training with torchrun + gloo on CPU follows the 1-process curve."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import COCO_DIR, COCO_JSON


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(work, nproc: int, batch: int) -> list[float]:
    args = ["train", "--ann-file", str(COCO_JSON), "--img-dir", str(COCO_DIR), "--epochs", "4", "--batch-size",
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
