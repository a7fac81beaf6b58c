"""Determinism, exact resume, the run-folder rules, and the errors a user meets first."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from conftest import tiny_config
from trashkit.checkpoint import load_checkpoint
from trashkit.train import StopAfter, TrainConfig, train

KEYS = ("val_macro_f1", "val_acc", "best_epoch", "macs", "params")


def weights(path):
    return load_checkpoint(path).weights


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_same_seed_same_metrics_bit_for_bit(tmp_path, tiny_crops, isolated_home, trained_run):
    first, m1 = trained_run
    m2 = train(tiny_config(tiny_crops), tmp_path / "b", progress=False)
    assert {k: m1[k] for k in KEYS} == {k: m2[k] for k in KEYS}
    assert same_weights(weights(first / "last.pt"), weights(tmp_path / "b" / "last.pt"))


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path, tiny_crops, isolated_home, trained_run):
    first, m1 = trained_run
    stopped = train(
        tiny_config(tiny_crops), tmp_path / "c", progress=False, callbacks=[StopAfter(1)]
    )
    assert stopped["epoch"] == 1 and "stopped" in stopped
    assert json.loads((tmp_path / "c" / "config.json").read_text())["epochs"] == 3
    assert not (tmp_path / "c" / "metrics.json").exists()
    m3 = train(None, tmp_path / "c", resume=True, progress=False)
    assert {k: m1[k] for k in KEYS} == {k: m3[k] for k in KEYS}
    for name in ("last.pt", "best.pt"):
        assert same_weights(weights(first / name), weights(tmp_path / "c" / name)), name
    cols = ["train_loss", "val_loss", "val_macro_f1"]  # every epoch, not only the end state
    assert pd.read_csv(first / "history.csv")[cols].equals(
        pd.read_csv(tmp_path / "c" / "history.csv")[cols]
    )


@pytest.mark.slow
def test_another_seed_changes_the_run(tmp_path, tiny_crops, isolated_home, trained_run):
    first, _ = trained_run
    train(tiny_config(tiny_crops, seed=8), tmp_path / "d", progress=False)
    assert not same_weights(weights(first / "last.pt"), weights(tmp_path / "d" / "last.pt"))


@pytest.mark.slow
def test_a_run_writes_its_files(trained_run):
    out, metrics = trained_run
    for f in (
        "config.json",
        "metrics.json",
        "best.pt",
        "last.pt",
        "history.csv",
        "curves.png",
        "confusion.png",
        "confusion.csv",
    ):
        assert (out / f).is_file(), f
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["val_macro_f1"] == metrics["val_macro_f1"] and saved["world_size"] == 1
    assert saved["val_classes"] and set(saved["val_per_class_f1"]) == set(saved["classes"])


def test_misspelled_parameter_is_named():
    with pytest.raises(
        TypeError,
        match=r"unknown training parameter 'epoch' \(did you mean "
        r"'epochs'\?\)",
    ):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("loss", "hinge", "one of"),
        ("image_size", 32.7, "an integer"),
        ("epochs", "2", "an integer >= 1"),
        ("epochs", True, "an integer"),
        ("lr", -1, "a positive number"),
        ("momentum", [0.95, 0.85], "pair"),
        ("amp", "fp8", "one of"),
        ("val_fraction", 1.5, "between 0 and 1"),
    ],
)
def test_wrong_types_and_ranges_name_the_parameter(key, value, expected):
    with pytest.raises(ValueError, match=rf"training parameter {key}=.*invalid.*{expected}"):
        TrainConfig.from_dict({key: value})


@pytest.mark.slow
def test_a_new_run_never_reuses_a_folder(tmp_path, trained_run, tiny_crops, isolated_home):
    out, _ = trained_run
    before = (out / "best.pt").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(tiny_config(tiny_crops, epochs=1), out, progress=False)
    assert (out / "best.pt").read_bytes() == before


@pytest.mark.slow
def test_resume_refuses_a_different_explicit_parameter(trained_run, tiny_crops, isolated_home):
    out, _ = trained_run
    with pytest.raises(ValueError, match=r"config differs.*'epochs': \(3, 5\)"):
        train({"epochs": 5}, out, resume=True, progress=False)
