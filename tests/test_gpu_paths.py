"""The GPU code paths that do not need a GPU, on the CPU (issue 16): the device-side batch
path, channels-last, the mixed-precision choice and the deterministic switches."""

from __future__ import annotations

import os

import pytest
import torch

from conftest import tiny_config
from trashkit.checkpoint import load_checkpoint
from trashkit.train import TrainConfig, train
from trashkit.train.setup import amp_dtype, make_deterministic


@pytest.mark.slow
def test_device_path_trains_exactly_like_the_worker_path(tmp_path, tiny_crops, isolated_home):
    """Batches gathered and augmented in-process on the training device (what a GPU run
    does) give the very same run as batches built by CPU worker processes."""
    runs = {}
    for where in ("workers", "device"):
        train(tiny_config(tiny_crops, epochs=2, augment_on=where), tmp_path / where, progress=False)
        runs[where] = load_checkpoint(tmp_path / where / "last.pt").weights
    assert all(torch.equal(runs["workers"][k], runs["device"][k]) for k in runs["workers"])


@pytest.mark.slow
def test_channels_last_trains_to_the_same_predictions(
    tmp_path, tiny_crops, isolated_home, trained_run
):
    _, base = trained_run
    m = train(tiny_config(tiny_crops, channels_last=True), tmp_path / "cl", progress=False)
    assert m["val_macro_f1"] == pytest.approx(base["val_macro_f1"], abs=0.05)
    assert m["macs"] == base["macs"]


def test_mixed_precision_choice(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert amp_dtype(TrainConfig(amp="auto"), cpu) is None  # never on the CPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype(TrainConfig(amp="auto"), cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype(TrainConfig(amp="auto"), cuda) == torch.float16
    assert amp_dtype(TrainConfig(amp="bf16"), cuda) == torch.bfloat16
    assert amp_dtype(TrainConfig(amp="off"), cuda) is None


def test_deterministic_switches(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    try:
        make_deterministic(TrainConfig(deterministic=True), torch.device("cuda"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        make_deterministic(TrainConfig(deterministic=False), torch.device("cuda"))
        assert torch.backends.cudnn.benchmark  # fastest kernels when determinism is not asked
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]
