"""A competition to try on the synthetic default: its hidden test crops, labelled, and
stand-in submissions.

Why this exists: a lecturer (and the tests, and the load benchmark) can rehearse the whole
competition before the real test set arrives. The synthetic default dataset keeps the labels
of its ``test/NoLabel`` crops in ``test_labels.csv``; :func:`labelled_test_folder` lays them
out as ``<Class>/*.jpg``, the folder ``competition create --test`` takes.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import torch

from ..checkpoint import Checkpoint, save_checkpoint
from ..data import TEST_DIR, default_dataset
from ..models import build_model


def labelled_test_folder(crops: str | Path, out: str | Path) -> Path:
    """Copy the synthetic default's test crops into ``out/<Class>/`` by their hidden labels
    (``crops`` is the default dataset's ``crops`` folder; the labels sit beside it)."""
    crops, out = Path(crops), Path(out)
    labels = crops.parent / "test_labels.csv"
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        src = crops / TEST_DIR / r["file"]
        if src.is_file():
            (out / r["label"]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / r["label"] / r["file"])
    return out


def synthetic_test_folder(out: str | Path, root: str | Path = "data/synthetic", **sizes) -> Path:
    """Build (once) the synthetic default and lay out its labelled test crops in ``out``."""
    crops = default_dataset(root, **sizes)["crops"]
    return labelled_test_folder(crops, out)


def random_checkpoint(
    path: str | Path, classes: list[str], image_size: int = 48, model: str = "tiny", seed: int = 0
) -> Path:
    """An untrained checkpoint of a trashkit model (a valid submission that scores badly):
    for rehearsals and load tests, where no training time can be spent."""
    torch.manual_seed(seed)
    net = build_model(model, len(classes)).eval()
    ckpt = Checkpoint(
        weights=net.state_dict(),
        classes=list(classes),
        config={"model": model, "image_size": image_size, "seed": seed},
        image_size=image_size,
    )
    return save_checkpoint(path, ckpt)
