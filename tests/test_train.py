"""Determinism, exact resume, and the errors a user meets first."""

from __future__ import annotations

import json

import pytest
import torch

from trashkit.scoring import evaluate, leaderboard, load_checkpoint
from trashkit.train import TrainConfig, train

BASE = dict(model="tiny", image_size=48, epochs=3, batch_size=32, workers=2, seed=7)


def cfg(crops, **kw):
    return {**BASE, "data": str(crops), **kw}


def weights(path):
    return torch.load(path, weights_only=False)["model"]


def same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_same_seed_same_metrics_and_resume_equals_uninterrupted(tmp_path, tiny_crops,
                                                                 isolated_home):
    m1 = train(cfg(tiny_crops), tmp_path / "a", progress=False)
    m2 = train(cfg(tiny_crops), tmp_path / "b", progress=False)
    keys = ("val_macro_f1", "val_acc", "best_epoch", "macs", "params")
    assert {k: m1[k] for k in keys} == {k: m2[k] for k in keys}
    assert same_weights(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))
    # a crash after epoch 1, then resume
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tiny_crops), tmp_path / "c", progress=False, stop_after=1)
    assert json.loads((tmp_path / "c" / "config.json").read_text())["epochs"] == 3
    assert not (tmp_path / "c" / "metrics.json").exists()
    m3 = train(None, tmp_path / "c", resume=True, progress=False)
    assert {k: m1[k] for k in keys} == {k: m3[k] for k in keys}
    assert same_weights(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "c" / "last.pt"))
    assert same_weights(weights(tmp_path / "a" / "best.pt"), weights(tmp_path / "c" / "best.pt"))
    # the per-epoch losses agree too (not only the end state)
    import pandas as pd
    ha = pd.read_csv(tmp_path / "a" / "history.csv")
    hc = pd.read_csv(tmp_path / "c" / "history.csv")
    assert ha[["train_loss", "val_loss", "val_macro_f1"]].equals(
        hc[["train_loss", "val_loss", "val_macro_f1"]])
    # a different seed really changes the run
    m4 = train(cfg(tiny_crops, seed=8), tmp_path / "d", progress=False)
    assert not same_weights(weights(tmp_path / "a" / "last.pt"),
                            weights(tmp_path / "d" / "last.pt"))
    # outputs of every run
    for f in ("config.json", "metrics.json", "best.pt", "last.pt", "history.csv", "curves.png",
              "confusion.png"):
        assert (tmp_path / "a" / f).is_file(), f
    # scoring the checkpoint, the submission and the leaderboard
    res = evaluate(tmp_path / "a" / "best.pt", tiny_crops, tiny_crops / "test" / "NoLabel",
                   tmp_path / "score", latency_runs=3, progress=False)
    assert res["macs"] == m1["macs"] and 0 <= res["f1"] <= 1
    sub = (tmp_path / "score" / "submission.csv").read_text().splitlines()
    assert sub[0] == "file,label" and len(sub) == 1 + res["n_test"]
    board = leaderboard(tmp_path)
    assert len(board) == 4 and board.score_macs.is_monotonic_increasing


def test_misspelled_parameter_is_named():
    with pytest.raises(TypeError, match=r"unknown training parameter 'epoch' \(did you mean "
                                        r"'epochs'\?\)"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="loss='hinge'"):
        TrainConfig.from_dict({"loss": "hinge"})


@pytest.mark.slow
def test_run_folder_is_never_reused_and_checkpoint_errors(tmp_path, tiny_crops, isolated_home):
    train(cfg(tiny_crops, epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(cfg(tiny_crops, epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="config differs"):
        train(cfg(tiny_crops, epochs=5), tmp_path / "run", resume=True, progress=False)
    # a checkpoint whose weights do not fit its declared model
    ck = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    ck["config"]["model"] = "mbv3_reduced"
    torch.save(ck, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match=r"wrong.pt does not fit model 'mbv3_reduced'"):
        load_checkpoint(tmp_path / "wrong.pt")
    # data with a class the model does not know
    import shutil
    data = tmp_path / "data"
    shutil.copytree(tiny_crops / "val", data)
    (data / "Glass").mkdir()
    shutil.copy(next((data / "Paper").iterdir()), data / "Glass" / "x.jpg")
    with pytest.raises(ValueError, match=r"class\(es\) \['Glass'\] that the model"):
        evaluate(tmp_path / "run" / "best.pt", data, latency_runs=2, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt is not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
