"""The leaderboard joins a training run's metrics.json with chapter 5's scores.json."""

import json

from trashkit.scoring import leaderboard


def write(path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def test_scored_run_keeps_its_resolved_data_folder(tmp_path):
    run = tmp_path / "outputs" / "x-train"
    resolved = "/data/synthetic/v1/crops"
    write(
        run / "metrics.json",
        {
            "val_macro_f1": 0.5,
            "model": "tiny",
            "data": resolved,
            "macs": 1000,
            "params": 10,
            "input_size": 64,
            "epochs": 3,
        },
    )
    write(
        tmp_path / "outputs" / "y-score" / "scores.json",
        {
            "checkpoint": str(run / "best.pt"),
            "model": "tiny",
            "data": "default",
            "f1": 0.4,
            "f1_source": "test split",
            "macs": 1000,
            "params": 10,
            "input_size": 64,
        },
    )
    board = leaderboard(tmp_path / "outputs")
    assert len(board) == 1, board  # one run, not one row per json file
    row = board.iloc[0]
    assert row["data"] == resolved  # chapter 7 filters runs on the resolved folder
    assert row["f1"] == 0.4 and row["f1 on"] == "test split"  # the scored F1 replaces val's


def test_scores_without_training_run_keep_their_own_data(tmp_path):
    write(
        tmp_path / "s" / "scores.json",
        {
            "checkpoint": "/elsewhere/best.pt",
            "model": "m",
            "data": "/d",
            "f1": 0.7,
            "macs": 5,
            "params": 1,
            "input_size": 32,
        },
    )
    board = leaderboard(tmp_path)
    assert list(board["data"]) == ["/d"] and list(board["f1 on"]) == ["?"]
