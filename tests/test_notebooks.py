"""Committed notebooks carry no outputs, have a tagged parameters cell, and execute headless."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from chapters import execute as execute_notebook
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_chapter_is_here_and_tested():
    assert [p.name for p in NOTEBOOKS] == [
        "01_eda.ipynb",
        "02_flops_macs.ipynb",
        "03_shufflenetv2_guidelines.ipynb",
        "04_train.ipynb",
        "05_score.ipynb",
        "06_automl.ipynb",
        "07_compress.ipynb",
        "08_metric_learning.ipynb",
    ]
    tests = {p.name for p in (REPO / "tests").glob("test_chapter0*.py")}
    assert tests == {f"test_chapter{p.name[:2]}.py" for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_with_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        f"{path.name} has outputs: strip them (make strip)"
    )
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


def execute(name: str, out_dir: Path, home: Path, **params) -> nbformat.NotebookNode:
    """Run chapter ``name`` with papermill in a clean TRASHKIT_HOME into ``out_dir``."""
    return execute_notebook(REPO / "notebooks" / name, out_dir / name, home, **params)


def _text(nb, rich: bool = False) -> str:
    """Printed output of the code cells; with ``rich``, displayed objects' text too."""
    kinds = ("stream", "display_data", "execute_result") if rich else ("stream",)
    return "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") in kinds
    )


#: what DataLoader workers forked again inside a Jupyter kernel used to print (issue 10.14)
WORKER_NOISE = ("can only test a child process", "is killed by signal", "Traceback")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, wrong, right",
    [("04_train.ipynb", "epoch", "epochs"), ("02_flops_macs.ipynb", "quik", "quick")],
)
def test_a_misspelled_parameter_stops_the_chapter(tmp_path, tiny_home, name, wrong, right):
    import papermill as pm

    with pytest.raises(
        pm.PapermillExecutionError, match=rf"unknown parameter '{wrong}' — did you mean '{right}'\?"
    ):
        execute(name, tmp_path, tiny_home, output_dir=str(tmp_path / "run"), **{wrong: 1})
    assert not (tmp_path / "run").exists()  # stopped before doing anything
