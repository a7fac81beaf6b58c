"""Grading on the server: the hidden test set, its decoded images, and a model's scores.

The labels never leave this module's process: the model process gets the decoded images of
``hidden/images`` (one ``.npy`` per input size, decoded once with
:func:`trashkit.data.decode_resized`, exactly as training decodes), and the macro-F1 of the
public and private halves is computed here, with :func:`trashkit.metrics.macro_f1`, from the
predictions it returns. The score is the rules' edition formula (:meth:`.rules.Rules.score`),
on the same MACs or per-image time for both halves.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import decode_resized
from ..metrics import macro_f1
from .rules import Rules


@dataclass
class HiddenSet:
    """The hidden test images in their recorded order, labels as rule class indices."""

    files: list[Path]
    labels: np.ndarray
    public: np.ndarray  # bool mask: the public half


def load_hidden(folder: str | Path, rules: Rules) -> HiddenSet:
    """``hidden/labels.csv`` of a competition folder."""
    folder = Path(folder)
    with open(folder / "hidden" / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    index = {c: i for i, c in enumerate(rules.classes)}
    return HiddenSet(
        files=[folder / "hidden" / "images" / r["file"] for r in rows],
        labels=np.array([index[r["label"]] for r in rows], dtype=np.int64),
        public=np.array([r["half"] == "public" for r in rows]),
    )


def image_cache(folder: str | Path, hidden: HiddenSet, size: int) -> Path:
    """The decoded images at ``size`` px (built once per size, written atomically so two
    workers building it at once both end with the same complete file)."""
    path = Path(folder) / "cache" / f"test-{size}.npy"
    if path.is_file():
        return path
    path.parent.mkdir(exist_ok=True)
    images = np.stack([decode_resized(f, size) for f in hidden.files])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, images)
    os.replace(tmp, path)
    return path


class BadResult(ValueError):
    """A model process answered with something that is not one class per image."""


def predictions(result: dict, hidden: HiddenSet, rules: Rules) -> np.ndarray:
    """The model's predictions as rule class indices (a checkpoint's own class order is
    mapped by name), checked: one valid class per hidden image."""
    pred = np.asarray(result.get("pred", []), dtype=np.int64)
    classes = list(result.get("classes", []))
    if len(pred) != len(hidden.labels) or sorted(classes) != sorted(rules.classes):
        raise BadResult(
            f"the model returned {len(pred)} predictions for {len(hidden.labels)} images"
        )
    if len(pred) and (pred.min() < 0 or pred.max() >= len(classes)):
        raise BadResult("the model predicted a class index outside the class list")
    remap = np.array([rules.classes.index(c) for c in classes], dtype=np.int64)
    return remap[pred]


def grade(result: dict, hidden: HiddenSet, rules: Rules) -> dict:
    """Public and private macro-F1 and scores of one model's raw result (database columns)."""
    pred = predictions(result, hidden, rules)
    n = len(rules.classes)
    pub, priv = hidden.public, ~hidden.public
    public_f1 = macro_f1(hidden.labels[pub], pred[pub], n)
    private_f1 = macro_f1(hidden.labels[priv], pred[priv], n)
    macs, secs = result.get("macs"), result.get("seconds_per_image")
    return {
        "public_f1": float(public_f1),
        "private_f1": float(private_f1),
        "macs": float(macs) if macs is not None else None,
        "seconds_per_image": float(secs) if secs is not None else None,
        "public_score": float(rules.score(public_f1, macs, secs)),
        "private_score": float(rules.score(private_f1, macs, secs)),
        "message": None,
    }
