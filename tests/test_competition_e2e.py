"""The competition end to end on the embedded default (issue 23): create, add teams, submit
chapter 4's checkpoint (and stand-ins, and an ONNX export) over HTTP, score them in model
processes, and check the leaderboard against chapter 5's own evaluation computed offline;
then the audit re-trains the top team and the time edition scores by ONNX Runtime time."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from test_competition import CLASSES, closes_in
from trashkit.competition import board, client
from trashkit.competition.rules import create_competition
from trashkit.competition.sample import labelled_test_folder, random_checkpoint
from trashkit.competition.server import serve_in_thread
from trashkit.competition.store import open_store
from trashkit.competition.teams import add_team
from trashkit.competition.worker import Worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def contest(trained_run, tiny_crops, tmp_path_factory):
    """A MACs-edition competition with four teams, every submission scored."""
    base = tmp_path_factory.mktemp("contest")
    test = labelled_test_folder(tiny_crops, base / "labelled")
    folder = base / "comp"
    rules, admin = create_competition(folder, test, "macs", closes_in(1), seed=2, daily_limit=5)
    engine = open_store(f"sqlite:///{folder / 'competition.db'}")
    run_dir, _ = trained_run
    files = {
        "trained": run_dir / "best.pt",
        "random48": random_checkpoint(base / "r48.pt", CLASSES, 48, seed=1),
        "random40": random_checkpoint(base / "r40.pt", CLASSES, 40, seed=2),
        "onnx": export_of(run_dir / "best.pt", base / "model.onnx"),
    }
    url, stop = serve_in_thread(folder, engine)
    ids = {}
    for team, path in files.items():
        ids[team] = client.submit(url, add_team(engine, team), path)["id"]
    assert Worker(folder, engine).run(max_jobs=len(files)) == len(files)
    yield {
        "folder": folder,
        "engine": engine,
        "rules": rules,
        "files": files,
        "ids": ids,
        "base": base,
        "url": url,
    }
    stop()
    engine.dispose()


def export_of(checkpoint: Path, out: Path) -> Path:
    from trashkit.checkpoint import load_checkpoint
    from trashkit.compress.onnx_rt import export_onnx

    ckpt = load_checkpoint(checkpoint)
    return export_onnx(ckpt.build_model("cpu"), ckpt.image_size, out)


def public_folder(folder: Path, out: Path) -> Path:
    """The public half as a labelled folder, for chapter 5's offline evaluation."""
    with open(folder / "hidden" / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["half"] == "public":
                (out / row["label"]).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(
                    folder / "hidden" / "images" / row["file"], out / row["label"] / row["file"]
                )
    return out


def test_leaderboard_order_equals_chapter_5_scores_computed_offline(contest):
    from trashkit.scoring import evaluate

    rows = {r["team"]: r for r in board.public_board(contest["engine"])}
    assert set(rows) == set(contest["files"])
    public = public_folder(contest["folder"], contest["base"] / "public")
    offline = {}
    for team in ("trained", "random48", "random40"):
        res = evaluate(contest["files"][team], eval_folder=public, latency_runs=1, progress=False)
        offline[team] = res["score_macs"]
        assert rows[team]["f1"] == pytest.approx(res["f1"], abs=1e-12), team
        assert rows[team]["macs"] == res["macs"], team
        assert rows[team]["score"] == pytest.approx(res["score_macs"], abs=1e-12), team
    server_order = [
        r["team"] for r in board.public_board(contest["engine"]) if r["team"] in offline
    ]
    assert server_order == sorted(offline, key=offline.get)


def test_an_onnx_submission_is_scored_with_graph_macs(contest):
    rows = {r["team"]: r for r in board.public_board(contest["engine"])}
    onnx_row, ckpt_row = rows["onnx"], rows["trained"]
    assert onnx_row["f1"] == pytest.approx(ckpt_row["f1"], abs=1e-12)  # same network
    assert 0 < onnx_row["macs"] < ckpt_row["macs"]  # no batch norm or pools in the graph count


def test_private_scores_appear_after_the_close_on_final_picks(contest):
    from trashkit.competition import phase

    engine, rules = contest["engine"], contest["rules"]
    phase.close_now(engine)
    assert phase.private_visible(engine, rules)
    private = board.private_board(engine, rules)
    assert {r["team"] for r in private} == set(contest["files"])
    assert all(not r["picked_by_team"] for r in private)  # nobody picked: best public used
    scores = [r["score"] for r in private]
    assert scores == sorted(scores)


def test_audit_reruns_the_training_and_reproduces_the_f1(
    contest, tiny_crops, tiny_home, monkeypatch
):
    from trashkit.competition.audit import audit

    monkeypatch.setenv("TRASHKIT_HOME", str(tiny_home))
    report = audit(contest["folder"], contest["engine"], "trained", tiny_crops)
    assert report["submission"] == contest["ids"]["trained"]
    assert report["weights_identical"], report
    assert report["rerun"]["public_f1"] == pytest.approx(
        report["submitted"]["public_f1"], abs=1e-12
    )
    assert report["rerun"]["private_f1"] == pytest.approx(
        report["submitted"]["private_f1"], abs=1e-12
    )
    assert (Path(report["run_dir"]).parent / "audit.json").is_file()


def test_time_edition_scores_onnx_runtime_time_per_image(tiny_crops, tmp_path):
    from trashkit.scoring import COMPETITION_TEST_IMAGES, score_time

    test = labelled_test_folder(tiny_crops, tmp_path / "labelled")
    folder = tmp_path / "comp"
    rules, _ = create_competition(folder, test, "time", closes_in(1), seed=4)
    engine = open_store(f"sqlite:///{folder / 'competition.db'}")
    url, stop = serve_in_thread(folder, engine)
    try:
        token = add_team(engine, "timed")
        client.submit(url, token, random_checkpoint(tmp_path / "r.pt", CLASSES, 48))
        assert Worker(folder, engine).run(max_jobs=1) == 1
        row = client.team(url, token)["submissions"][0]
    finally:
        stop()
        engine.dispose()
    assert row["state"] == "scored" and 0 < row["seconds_per_image"] < 1, row
    expected = score_time(
        row["public_f1"], row["seconds_per_image"] * COMPETITION_TEST_IMAGES, 43.15, 0.70
    )
    assert row["public_score"] == pytest.approx(expected, abs=1e-12)
