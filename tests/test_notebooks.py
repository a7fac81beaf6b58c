"""Committed notebooks carry no outputs, have a tagged parameters cell, and execute headless."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:7] == ["01_eda.ipynb", "02_flops_macs.ipynb",
                                              "03_shufflenetv2_guidelines.ipynb",
                                              "04_train.ipynb", "05_score.ipynb",
                                              "06_automl.ipynb", "07_compress.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_with_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{path.name} has outputs: strip them (make strip)"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


def execute(name: str, out_dir: Path, home: Path, **params) -> nbformat.NotebookNode:
    """Run a chapter with papermill in a clean TRASHKIT_HOME; return the executed notebook."""
    import papermill as pm
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(home))
        out = out_dir / name
        pm.execute_notebook(str(REPO / "notebooks" / name), str(out), parameters=params,
                            kernel_name="python3", cwd=str(REPO / "notebooks"),
                            progress_bar=False)
    return nbformat.read(out, as_version=4)


def _text(nb, rich: bool = False) -> str:
    """Printed output of the code cells; with ``rich``, displayed objects' text too."""
    kinds = ("stream", "display_data", "execute_result") if rich else ("stream",)
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") in kinds)


#: what DataLoader workers forked again inside a Jupyter kernel used to print (issue 10.14)
WORKER_NOISE = ("can only test a child process", "is killed by signal", "Traceback")


@pytest.mark.slow
def test_train_and_score_chapters(tmp_path, tiny_home, capfd):
    nb = execute("04_train.ipynb", tmp_path, tiny_home, output_dir=str(tmp_path / "train"),
                 epochs=3, model="tiny", image_size=64)
    assert "val_macro_f1" in _text(nb)
    seen = _text(nb, rich=True) + "".join(capfd.readouterr())  # the notebook and stderr
    for noise in WORKER_NOISE:
        assert noise not in seen, f"training in a kernel printed {noise!r}"
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["input_size"] == 64 and metrics["macs"] > 0
    execute("05_score.ipynb", tmp_path, tiny_home, checkpoint=str(tmp_path / "train" / "best.pt"),
            output_dir=str(tmp_path / "score"), latency_runs=3, interactive=False)
    scores = json.loads((tmp_path / "score" / "scores.json").read_text())
    for key in ("f1", "macs", "params", "latency_ms", "submit_time_s", "score_macs",
                "score_time"):
        assert scores[key] is not None, key
    assert (tmp_path / "score" / "submission.csv").is_file()
    assert (tmp_path / "score" / "leaderboard.csv").is_file()


@pytest.mark.slow
def test_automl_chapter_smoke(tmp_path, tiny_home):
    nb = execute("06_automl.ipynb", tmp_path, tiny_home, output_dir=str(tmp_path / "run"),
                 n_trials=3, epochs=1, image_sizes=[32], budget=20_000_000)
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(trials) == 3
    assert (trials.state == "COMPLETE").any()  # at 32 px everything fits 20M MACs
    shown = _text(nb, rich=True)
    assert "MACs %" in shown and "config(s) to" in shown  # the chosen trial, line by line
    assert list((tmp_path / "run" / "exported").glob("trial_*.yaml"))
    assert (tmp_path / "run" / "space_macs.png").is_file()


@pytest.mark.slow
def test_compress_chapter_smoke(tmp_path, tiny_home, isolated_home):
    # a tiny original first, then every technique for one epoch each
    from trashkit.train import train
    train({"model": "tiny", "image_size": 48, "epochs": 1, "batch_size": 32},
          tmp_path / "orig", progress=False)
    execute("07_compress.ipynb", tmp_path, tiny_home, output_dir=str(tmp_path / "run"),
            checkpoint=str(tmp_path / "orig" / "best.pt"), train_epochs=1, finetune_epochs=1,
            student="tiny", latency_runs=3)
    table = pd.read_csv(tmp_path / "run" / "variants.csv").set_index("variant")
    assert {"original", "pruned", "decomposed", "ONNX Runtime fp32", "ONNX Runtime int8",
            "ArcFace head"} <= set(table.index)
    assert pd.isna(table.loc["ONNX Runtime int8", "MACs"])
    assert "not countable" in table.loc["ONNX Runtime int8", "note"]
    assert table.loc["pruned", "MACs"] <= 0.6 * table.loc["original", "MACs"]


@pytest.mark.slow
@pytest.mark.parametrize("name, wrong, right", [("04_train.ipynb", "epoch", "epochs"),
                                                ("02_flops_macs.ipynb", "quik", "quick")])
def test_a_misspelled_parameter_stops_the_chapter(tmp_path, tiny_home, name, wrong, right):
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError,
                       match=rf"unknown parameter '{wrong}' — did you mean '{right}'\?"):
        execute(name, tmp_path, tiny_home, output_dir=str(tmp_path / "run"), **{wrong: 1})
    assert not (tmp_path / "run").exists()  # stopped before doing anything
