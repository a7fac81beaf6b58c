"""Checkpoints are safe to share: loading one never runs code, and every network - pruned or
decomposed included - is rebuilt from plain data (issue 10, item 1)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO
from trashkit.checkpoint import (
    VERSION,
    Checkpoint,
    CheckpointError,
    describe_architecture,
    load_checkpoint,
    save_checkpoint,
)
from trashkit.compress import decompose_model, prune_to_macs
from trashkit.models import build_model


class Planted:
    """Unpickling this creates ``marker``: what a hostile checkpoint would do (or worse)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def hostile(path: Path, marker: Path, like: Path | None = None) -> Path:
    """A checkpoint (a copy of ``like`` when given) with a planted object inside."""
    raw = (
        torch.load(like, weights_only=True)
        if like
        else {
            "version": VERSION,
            "model": build_model("tiny", 6).state_dict(),
            "classes": [f"c{i}" for i in range(6)],
            "config": {"model": "tiny"},
            "image_size": 48,
        }
    )
    raw["extra"] = {"note": Planted(marker)}
    torch.save(raw, path)
    return path


def test_loading_never_runs_planted_code(tmp_path):
    marker = tmp_path / "pwned"
    path = hostile(tmp_path / "best.pt", marker)
    with pytest.raises(CheckpointError, match="refused: it contains pickled Python objects"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.slow
def test_every_entry_point_refuses_a_planted_checkpoint(
    tmp_path, trained_run, tiny_crops, isolated_home
):
    from trashkit.compress.pipeline import Baseline
    from trashkit.scoring import evaluate
    from trashkit.train import train

    run, _ = trained_run
    marker = tmp_path / "pwned"
    evil = hostile(tmp_path / "evil.pt", marker, like=run / "best.pt")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    hostile(copy / "last.pt", marker, like=run / "last.pt")
    attempts = {
        "scoring": lambda: evaluate(evil, latency_runs=2, progress=False),
        "resume": lambda: train(None, copy, resume=True, progress=False),
        "chapter 7": lambda: Baseline(evil, tmp_path / "study"),
        "init_from": lambda: train(
            {
                "data": str(tiny_crops),
                "model": "tiny",
                "epochs": 1,
                "image_size": 48,
                "init_from": str(evil),
            },
            tmp_path / "a",
            progress=False,
        ),
        "teacher": lambda: train(
            {
                "data": str(tiny_crops),
                "model": "tiny",
                "epochs": 1,
                "image_size": 48,
                "teacher": str(evil),
            },
            tmp_path / "b",
            progress=False,
        ),
    }
    for name, attempt in attempts.items():
        with pytest.raises(CheckpointError, match="pickled Python objects"):
            attempt()
        assert not marker.exists(), name


def test_torch_load_appears_only_with_weights_only():
    """The package reads checkpoints through trashkit.checkpoint alone, and pretrained
    weights (plain state dicts) in trashkit.models.pretrained; every load is weights_only
    (the checkpoint module's legacy opt-in aside)."""
    calls = {}
    for path in (REPO / "trashkit").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.(load|hub\.load_state_dict_from_url)\((.*?)\)\n", text, re.S):
            calls.setdefault(path.relative_to(REPO).as_posix(), []).append(m.group(2))
    assert sorted(calls) == ["trashkit/checkpoint.py", "trashkit/models/pretrained.py"], calls
    assert "weights_only=not trust_legacy" in " ".join(calls["trashkit/checkpoint.py"])
    assert all("weights_only=True" in c for c in calls["trashkit/models/pretrained.py"])


def _roundtrip(model: torch.nn.Module, tmp_path: Path, name: str) -> torch.nn.Module:
    path = tmp_path / f"{name}.pt"
    save_checkpoint(
        path,
        Checkpoint(
            weights=model.state_dict(),
            classes=list("abcdef"),
            config={"model": "mbv3_reduced"},
            image_size=64,
            architecture=describe_architecture(model),
        ),
    )
    return load_checkpoint(path).build_model()


@pytest.mark.parametrize("how", ["pruned", "decomposed"])
def test_modified_networks_rebuild_from_plain_data(tmp_path, how):
    torch.manual_seed(0)
    base = build_model("mbv3_reduced", 6).eval()
    model = (
        prune_to_macs(base, 64, 0.6)[0] if how == "pruned" else decompose_model(base, 0.5)[0]
    ).eval()
    rebuilt = _roundtrip(model, tmp_path, how)
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(rebuilt(x), model(x))
    assert sum(p.numel() for p in rebuilt.parameters()) < sum(p.numel() for p in base.parameters())


def test_a_layer_that_cannot_be_described_is_refused():
    model = build_model("tiny", 6)
    model.layers.append(torch.nn.PReLU())
    with pytest.raises(CheckpointError, match=r"PReLU\) has weights but cannot be stored"):
        describe_architecture(model)


def test_versions_and_the_legacy_opt_in(tmp_path):
    model = build_model("tiny", 6)
    base = {
        "model": model.state_dict(),
        "classes": list("abcdef"),
        "config": {"model": "tiny"},
        "image_size": 48,
    }
    torch.save({**base, "version": VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="written by a newer trashkit"):
        load_checkpoint(tmp_path / "new.pt")
    torch.save({**base, "version": 1, "module": model}, tmp_path / "old.pt")  # what v1 wrote
    with pytest.raises(CheckpointError, match="trust_legacy=True"):
        load_checkpoint(tmp_path / "old.pt")
    legacy = load_checkpoint(tmp_path / "old.pt", trust_legacy=True)  # explicit opt-in
    x = torch.randn(1, 3, 48, 48)
    assert torch.equal(legacy.build_model()(x), model.eval()(x))


def test_weights_that_do_not_fit_and_junk_files(tmp_path):
    ck = Checkpoint(
        weights=build_model("tiny", 6).state_dict(),
        classes=list("abcdef"),
        config={"model": "mbv3_reduced"},
        image_size=48,
    )
    save_checkpoint(tmp_path / "wrong.pt", ck)
    with pytest.raises(CheckpointError, match=r"do not fit model 'mbv3_reduced'"):
        load_checkpoint(tmp_path / "wrong.pt").build_model()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt refused: it is not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
