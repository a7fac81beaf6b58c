"""torchrun for real: two CPU processes (gloo), DistributedDataParallel, rank-0 checkpoints,
and a resume after one process is killed (no mock: real processes, real signals)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import REPO
from trashkit.checkpoint import load_checkpoint

TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed"),
]


def torchrun(out: Path, crops: Path, home: Path, *extra: str, epochs: int = 4):
    """Start ``torchrun --nproc_per_node 2 -m trashkit train`` (returns the Popen)."""
    cmd = [
        str(TORCHRUN),
        "--nproc_per_node",
        "2",
        "-m",
        "trashkit",
        "train",
        "--output-dir",
        str(out),
        *extra,
        "--set",
        f"data={crops}",
        "model=tiny",
        "image_size=48",
        f"epochs={epochs}",
        "batch_size=8",
        "workers=0",
        "seed=3",
    ]
    env = {**os.environ, "TRASHKIT_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def rank_pid(torchrun_pid: int, rank: int) -> int | None:
    """The worker process torchrun started for ``rank`` (found by its RANK variable)."""
    import psutil

    for child in psutil.Process(torchrun_pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "trashkit" in " ".join(child.cmdline()):
                return child.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def test_two_processes_train_and_resume_after_a_kill(tmp_path, tiny_crops, tiny_home):
    full = torchrun(tmp_path / "full", tiny_crops, tiny_home)
    log = finish(full)
    assert full.returncode == 0, log[-3000:]
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert len(pd.read_csv(tmp_path / "full" / "history.csv")) == 4
    assert log.count("epoch   2/4") == 1, "only rank 0 logs and checkpoints"
    assert not list((tmp_path / "full").glob("*.tmp")) and not list(
        (tmp_path / "full").glob(".*.tmp")
    )
    # the same run, with rank 1 killed after its first epoch
    proc = torchrun(tmp_path / "cut", tiny_crops, tiny_home)
    history = tmp_path / "cut" / "history.csv"
    deadline = time.time() + 180
    while not history.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    victim = rank_pid(proc.pid, 1)
    assert victim is not None, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    finish(proc)
    assert proc.returncode != 0 and not (tmp_path / "cut" / "metrics.json").exists()
    done = len(pd.read_csv(history))
    assert 1 <= done < 4
    again = torchrun(tmp_path / "cut", tiny_crops, tiny_home, "--resume")
    log = finish(again)
    assert again.returncode == 0, log[-3000:]
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert resumed["world_size"] == 2 and len(pd.read_csv(history)) == 4
    a = load_checkpoint(tmp_path / "full" / "last.pt").weights
    b = load_checkpoint(tmp_path / "cut" / "last.pt").weights
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from uninterrupted"
    assert resumed["val_macro_f1"] == metrics["val_macro_f1"]
    shutil.rmtree(tmp_path / "cut", ignore_errors=True)
