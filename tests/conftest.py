"""Shared fixtures: tiny generated data so every test runs on a machine with no dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
TACO = SHARED / "taco" / "annotations.json"
TRASHNET = SHARED / "trashnet"

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory) -> Path:
    """A 40-scene synthetic COCO dataset (deterministic)."""
    from trashkit.data import make_synthetic_coco

    return make_synthetic_coco(tmp_path_factory.mktemp("coco"), n_images=40, seed=3)


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    """A TRASHKIT_HOME with a small default dataset, for notebook smoke runs."""
    home = tmp_path_factory.mktemp("home")
    from trashkit.data import default_dataset

    default_dataset(home / "data" / "synthetic", n_train_images=60, n_test_images=12)
    return home


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available")


@pytest.fixture(scope="session")
def tiny_crops(tiny_home) -> Path:
    """The competition-layout crops of ``tiny_home``'s default dataset."""
    from trashkit.data import default_dataset

    return default_dataset(tiny_home / "data" / "synthetic", n_train_images=60, n_test_images=12)[
        "crops"
    ]


@pytest.fixture()
def isolated_home(tiny_home, monkeypatch):
    """Point TRASHKIT_HOME (caches, outputs, default data) at the tiny home."""
    monkeypatch.setenv("TRASHKIT_HOME", str(tiny_home))
    return tiny_home


#: the smallest training run that still exercises the whole recipe (shared by the tests)
TINY_TRAIN = dict(model="tiny", image_size=48, epochs=3, batch_size=32, workers=2, seed=7)


def tiny_config(crops: Path, **overrides) -> dict:
    return {**TINY_TRAIN, "data": str(crops), **overrides}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_home, tiny_crops):
    """One tiny training run per test module: ``(run folder, metrics)``."""
    from trashkit.train import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(tiny_home))
        out = tmp_path_factory.mktemp("trained") / "run"
        metrics = train(tiny_config(tiny_crops), out, progress=False)
    return out, metrics
