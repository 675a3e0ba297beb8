"""Multi-process training with torchrun + gloo on CPU follows the 1-process curve."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import COCO_DIR, COCO_JSON, shared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Run under torchrun: the real `starpose-mobile train`, with torch's DistributedDataParallel
# subclassed only to keep a handle on the wrapped model, whose parameters each rank then saves
# (rank<N>.safetensors) so the test can compare them across ranks.
_RANK_SAVER = """
import os, sys
import torch
from safetensors.torch import save_file

kept = []


class KeepingDDP(torch.nn.parallel.DistributedDataParallel):
    def __init__(self, module, *args, **kwargs):
        super().__init__(module, *args, **kwargs)
        kept.append(module)


torch.nn.parallel.DistributedDataParallel = KeepingDDP
from starpose.cli import main

try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    if kept:
        work = sys.argv[sys.argv.index("--work-dir") + 1]
        params = {n: p.detach().clone().contiguous() for n, p in kept[0].named_parameters()}
        save_file(params, os.path.join(work, "rank%s.safetensors" % os.environ["RANK"]))
"""


def _train(work, nproc: int, batch: int) -> list[float]:
    args = ["train", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)), "--epochs", "4", "--batch-size",
            str(batch), "--lr", "3e-3", "--no-scale-lr", "--warmup-iters", "1", "--no-aug", "--workers", "0",
            "--seed", "1", "--work-dir", str(work), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "starpose.cli", *args]
    else:
        saver = work.parent / f"{work.name}_rank_saver.py"
        saver.write_text(_RANK_SAVER)
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
               "--master-addr=127.0.0.1", f"--master-port={_free_port()}", str(saver), *args]
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
    # Gradients are synchronised: after the last step both ranks hold the same parameters, although
    # each saw other people and drew its own stochastic depth (BatchNorm statistics may differ).
    from safetensors.torch import load_file

    r0, r1 = (load_file(str(tmp_path / "two" / f"rank{r}.safetensors")) for r in (0, 1))
    assert sorted(r0) == sorted(r1) and len(r0) > 100
    for name in r0:
        assert torch.equal(r0[name], r1[name]), name
    final = load_file(str(tmp_path / "two" / "final.safetensors"))
    assert all(torch.equal(final[n], r0[n]) for n in r0 if n in final)
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
