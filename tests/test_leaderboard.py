"""The leaderboard joins a training run's metrics.json with chapter 5's scores.json, and
takes neither on trust."""

import json

import pytest

from trashkit.scoring import checkpoint_sha256, find_checkpoint, find_runs, leaderboard

RESOLVED = "/data/synthetic/v1/crops"


def write(path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def training_run(folder, f1=0.5, chapter=4, kind="train", model="tiny"):
    """A finished run's three files (the checkpoint's bytes are all a score can tie to)."""
    write(folder / "config.json", {"model": model, "chapter": chapter, "kind": kind})
    write(
        folder / "metrics.json",
        {
            "val_macro_f1": f1,
            "model": model,
            "data": RESOLVED,
            "macs": 1000,
            "params": 10,
            "input_size": 64,
            "epochs": 3,
        },
    )
    (folder / "best.pt").write_bytes(f"weights of {folder.name}".encode())
    return folder


def scores(path, checkpoint, **fields):
    write(
        path,
        {
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": checkpoint_sha256(checkpoint),
            "model": "tiny",
            "data": "default",
            "f1": 0.4,
            "f1_source": "test split",
            "macs": 1000,
            "params": 10,
            "input_size": 64,
            **fields,
        },
    )


def test_scored_run_keeps_its_resolved_data_folder(tmp_path):
    run = training_run(tmp_path / "outputs" / "x-train")
    scores(tmp_path / "outputs" / "y-score" / "scores.json", run / "best.pt")
    board = leaderboard(tmp_path / "outputs")
    assert len(board) == 1, board  # one run, not one row per json file
    row = board.iloc[0]
    assert row["data"] == RESOLVED  # chapter 7 filters runs on the resolved folder
    assert row["f1"] == 0.4 and row["f1 on"] == "test split"  # the scored F1 replaces val's
    assert (row["chapter"], row["kind"]) == (4, "train") and not board.attrs["rejected"]


def test_runs_are_found_by_their_config_not_their_folder_name(tmp_path):
    training_run(tmp_path / "a-train", chapter=6, kind="trial")
    wanted = training_run(tmp_path / "zzz", chapter=4, kind="train")
    training_run(tmp_path / "c-train", chapter=7, kind="student")
    assert find_runs(tmp_path, chapter=4) == [wanted]
    assert find_checkpoint(tmp_path) == wanted / "best.pt"
    assert len(find_runs(tmp_path)) == 3
    with pytest.raises(FileNotFoundError, match="no finished run of chapter 5"):
        find_checkpoint(tmp_path, chapter=5)
