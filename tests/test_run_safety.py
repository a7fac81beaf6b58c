"""Runs lose nothing: folders are never reused, files are whole or absent, a failed or
interrupted run resumes, and a class too small for the split is said out loud (issue 10)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from conftest import tiny_config
from trashkit.runs import write_atomic
from trashkit.scoring import evaluate
from trashkit.train import StopAfter, train

pytestmark = pytest.mark.slow


def test_a_run_that_failed_before_its_first_epoch_leaves_nothing(
    tmp_path, tiny_crops, isolated_home
):
    data = tmp_path / "data"
    cfg = tiny_config(data, epochs=1)
    with pytest.raises(FileNotFoundError):  # the data is not there yet
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # checked before config.json: no run left behind
    shutil.copytree(tiny_crops, data)
    assert train(cfg, tmp_path / "run", progress=False)["epochs"] == 1


def test_a_run_killed_in_its_first_epoch_restarts_with_corrected_values(
    tmp_path, tiny_crops, isolated_home
):
    """A folder holding only the config of a run that never finished an epoch (killed in
    epoch 1) takes a new run with corrected values, or resumes with its own."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(tiny_config(tiny_crops, epochs=9)))
    (run / ".config.json.4242.tmp").write_text("{half a")  # an interrupted save
    metrics = train(tiny_config(tiny_crops, epochs=1), run, progress=False)
    assert metrics["epochs"] == 1 and not list(run.glob(".*.tmp"))
    again = tmp_path / "again"
    again.mkdir()
    (again / "config.json").write_text(json.dumps(tiny_config(tiny_crops, epochs=1)))
    metrics = train(None, again, resume=True, progress=False)
    assert metrics["epochs"] == 1
    assert any("no epoch had finished" in n for n in metrics["notes"])


def test_a_truncated_history_never_breaks_a_resume(
    tmp_path, tiny_crops, isolated_home, trained_run
):
    first, m1 = trained_run
    train(tiny_config(tiny_crops), tmp_path / "c", progress=False, callbacks=[StopAfter(2)])
    (tmp_path / "c" / "history.csv").write_text("")  # a crash mid-write, or a careless editor
    m2 = train(None, tmp_path / "c", resume=True, progress=False)
    assert m2["val_macro_f1"] == m1["val_macro_f1"]
    cols = ["train_loss", "val_loss", "val_macro_f1"]
    assert pd.read_csv(first / "history.csv")[cols].equals(
        pd.read_csv(tmp_path / "c" / "history.csv")[cols]
    )


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = write_atomic(tmp_path / "scores.json", '{"f1": 0.5}')

    def crash(*_):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, '{"f1": 0.9, "trunc')
    assert json.loads(path.read_text()) == {"f1": 0.5}


def test_nothing_one_run_wrote_is_overwritten(tmp_path, tiny_crops, isolated_home, trained_run):
    run, _ = trained_run
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(run / "best.pt", other / "best.pt")  # another run's checkpoint, no config
    before = (other / "best.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"already holds files \(\['best.pt'\]\)"):
        train(tiny_config(tiny_crops, epochs=1), other, progress=False)
    assert (other / "best.pt").read_bytes() == before
    evaluate(
        run / "best.pt", tiny_crops, out_dir=tmp_path / "score", latency_runs=2, progress=False
    )
    scores = (tmp_path / "score" / "scores.json").read_text()
    with pytest.raises(FileExistsError, match="already holds files from an earlier run"):
        evaluate(
            run / "best.pt", tiny_crops, out_dir=tmp_path / "score", latency_runs=2, progress=False
        )
    assert (tmp_path / "score" / "scores.json").read_text() == scores


def test_a_class_too_small_for_the_split_is_reported(tmp_path, tiny_crops, isolated_home):
    data = tmp_path / "folder"
    for cls in ("Metal", "Paper", "Plastic"):
        shutil.copytree(tiny_crops / "train" / cls, data / cls)
    (data / "Rare").mkdir()
    for img in list((data / "Metal").iterdir())[:2]:
        shutil.copy(img, data / "Rare" / img.name)  # 2 images: none left for validation
    with pytest.warns(UserWarning, match=r"no validation images for class\(es\) Rare \(2 images"):
        metrics = train(
            tiny_config(data, epochs=1, val_fraction=0.2), tmp_path / "run", progress=False
        )
    assert "Rare" not in metrics["val_classes"] and len(metrics["val_classes"]) == 3
    assert any("Rare" in n for n in metrics["notes"])


@pytest.mark.slow
def test_chapter4_resumes_with_only_resume_and_output_dir(
    tmp_path, tiny_crops, tiny_home, isolated_home
):
    """Chapter 4's resume command: no training parameter repeated, the run's own config wins
    (the exercise runs, which are not the run, are switched off to keep the test short)."""
    import papermill as pm

    from test_notebooks import execute

    cfg = tiny_config(tiny_crops, epochs=2, image_size=64)
    train(cfg, tmp_path / "run", progress=False, callbacks=[StopAfter(1)])
    short = dict(ablation_epochs=0, transfer_epochs=0)
    run = str(tmp_path / "run")
    execute("04_train.ipynb", tmp_path, tiny_home, resume=True, output_dir=run, **short)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["input_size"] == 64  # the run's own config
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 2
    with pytest.raises(pm.PapermillExecutionError, match="config differs"):
        execute(
            "04_train.ipynb",
            tmp_path,
            tiny_home,
            resume=True,
            epochs=5,
            output_dir=str(tmp_path / "run"),
        )
