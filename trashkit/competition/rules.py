"""A competition folder and its rules: ``competition create`` and everything that reads them.

Why a folder: the lecturer's whole competition lives in one place they can back up or move.
``rules.json`` is public (the server's rules page and the students' chapter read it); the
hidden labels and the copied test images sit under ``hidden/``, a folder no page ever serves;
``admin.json`` (mode 0600) holds the admin token's hash and the cookie secret.

The public/private split is drawn once, seeded and stratified by class
(:func:`trashkit.data.stratified_split`), and recorded per image in ``hidden/labels.csv``, so
the lecturer can show after the close exactly which images counted where.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..runs import write_json
from .tokens import hash_token, new_token

# trashkit.data and trashkit.scoring import PyTorch: they are imported where they are used, so
# the web server (which reads rules) starts in a second and comes back fast after a restart

EDITIONS = ("macs", "time")
#: the smallest and largest input side a checkpoint may choose when the rules leave it free
SIZE_RANGE = (32, 512)
FORMULAS = {
    "macs": (
        "score = MACs / MACs_baseline + score_F1, where score_F1 = 1 if F1 < 0.5; "
        "1 - F1 / F1_baseline if 0.5 <= F1 < F1_baseline; "
        "0.5 * (1 - F1 / F1_baseline) if F1 >= F1_baseline. Lower is better."
    ),
    "time": (
        "score = 0.5 * time / time_baseline + sigmoid(20 * (F1_baseline - F1)), where time is "
        "the per-image time x time_images. Lower is better."
    ),
}
#: what the server allows a submission by default (each overridable in rules.json)
DEFAULT_LIMITS = {
    "upload_mb": 100,  # a 50M-parameter float32 model (checkpoint.MAX_PARAMS) is 200 MB
    "uncompressed_mb": 400,
    "run_timeout_s": 300,
    "run_memory_mb": 6144,
    "threads": 1,
}


@dataclass
class Rules:
    """Everything a submission is judged by; ``rules.json`` holds exactly these fields."""

    edition: str
    classes: list[str]
    closes: str
    input_size: int | None = None
    public_fraction: float = 0.5
    seed: int = 0
    daily_limit: int = 5
    final_picks: int = 2
    baselines: dict = field(default_factory=dict)
    formula: str = ""
    limits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    n_public: int = 0
    n_private: int = 0
    title: str = "trashkit class competition"
    reveal_at_close: bool = True

    def closes_at(self) -> float:
        """The closing time as a UNIX timestamp (the rules store it with its time zone)."""
        return parse_closing(self.closes).timestamp()

    def score(self, f1: float, macs: float | None, seconds_per_image: float | None) -> float:
        """This edition's score (lower is better) with the rules' baselines."""
        from ..scoring import score_macs, score_time

        b = self.baselines
        if self.edition == "macs":
            return score_macs(f1, float(macs), b["macs"], b["f1"])
        return score_time(f1, float(seconds_per_image) * b["time_images"], b["time_s"], b["f1"])

    def size_problem(self, size: object) -> str | None:
        """Why an input side breaks the input-size rule, or None when it is allowed."""
        if not isinstance(size, int) or isinstance(size, bool):
            return f"the input size must be an integer, got {size!r}"
        if self.input_size is not None and size != self.input_size:
            return (
                f"input size {size} px: this competition scores every model at exactly "
                f"{self.input_size} px"
            )
        lo, hi = SIZE_RANGE
        if not lo <= size <= hi:
            return f"input size {size} px is outside the allowed {lo}..{hi} px"
        return None


def default_baselines(edition: str) -> dict:
    """The back-derived baselines of trashkit.scoring for ``edition`` (overridable)."""
    from ..scoring import (
        COMPETITION_TEST_IMAGES,
        F1_BASELINE_MACS,
        F1_BASELINE_TIME,
        MACS_BASELINE,
        TIME_BASELINE,
    )

    if edition == "macs":
        return {"macs": MACS_BASELINE, "f1": F1_BASELINE_MACS}
    return {"time_s": TIME_BASELINE, "f1": F1_BASELINE_TIME, "time_images": COMPETITION_TEST_IMAGES}


def parse_closing(text: str) -> datetime:
    """An ISO 8601 closing time that names its time zone (a bare date closes at its midnight
    UTC). Why insist on a zone: a class spread over time zones must agree on the minute."""
    try:
        when = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(
            f"closing time {text!r} is not ISO 8601; e.g. 2026-12-01T18:00+09:00"
        ) from None
    if len(str(text).strip()) == 10:
        return when.replace(tzinfo=timezone.utc)
    if when.tzinfo is None:
        raise ValueError(
            f"closing time {text!r} has no time zone; add one, e.g. {text}+09:00 or {text}Z"
        )
    return when


def load_rules(folder: str | Path) -> Rules:
    """``rules.json`` of a competition folder (unknown keys are an error naming them)."""
    path = Path(folder) / "rules.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a competition folder (no rules.json)")
    data = json.loads(path.read_text())
    known = set(Rules.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
    rules = Rules(**data)
    rules.limits = {**DEFAULT_LIMITS, **rules.limits}
    return rules


def check_options(edition: str, public_fraction: float, daily_limit: int, final_picks: int):
    """Refuse impossible settings before anything is copied."""
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    if not 0 < public_fraction < 1:
        raise ValueError(f"public fraction must be strictly between 0 and 1, got {public_fraction}")
    if daily_limit < 1 or final_picks < 1:
        raise ValueError("daily limit and final picks must be at least 1")


def _copy_hidden(scan, public: set[int], hidden: Path) -> list[dict]:
    """Copy every test image under ``hidden/images`` with a plain numbered name (the
    original name, whatever characters it holds, is only recorded in labels.csv)."""
    (hidden / "images").mkdir(parents=True)
    rows = []
    for i, s in enumerate(scan.samples):
        name = f"{i:06d}{Path(s.path).suffix.lower()}"
        shutil.copyfile(s.path, hidden / "images" / name)
        half = "public" if i in public else "private"
        rows.append({"file": name, "label": scan.classes[s.label], "half": half})
        rows[-1]["source"] = str(Path(s.path).relative_to(scan.root))
    with open(hidden / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "label", "half", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _new_folder(folder: Path) -> None:
    """A competition is never created over an existing one."""
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} already holds files; create a competition in a new folder")
    folder.mkdir(parents=True, exist_ok=True)


def write_private(path: Path, text: str) -> None:
    """A new file only the lecturer's account can read (mode 0600 from its first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def create_competition(
    folder: str | Path,
    test: str | Path,
    edition: str = "macs",
    closes: str = "",
    public_fraction: float = 0.5,
    seed: int = 0,
    daily_limit: int = 5,
    final_picks: int = 2,
    input_size: int | None = None,
    baselines: dict | None = None,
    db: str | None = None,
) -> tuple[Rules, str]:
    """Make a competition folder from a labelled test folder (``<Class>/*.jpg``).

    Returns ``(rules, admin token)``; the token is shown once and stored only hashed.
    """
    from ..data import load_source, stratified_split

    check_options(edition, public_fraction, daily_limit, final_picks)
    parse_closing(closes)
    folder = Path(folder)
    scan = load_source(test)
    labels = [s.label for s in scan.samples]
    _, public_idx = stratified_split(labels, public_fraction, seed)
    rules = Rules(
        edition=edition,
        classes=list(scan.classes),
        closes=closes,
        input_size=input_size,
        public_fraction=public_fraction,
        seed=seed,
        daily_limit=daily_limit,
        final_picks=final_picks,
        baselines={**default_baselines(edition), **(baselines or {})},
        formula=FORMULAS[edition],
        n_public=len(public_idx),
        n_private=len(labels) - len(public_idx),
    )
    if input_size is not None and rules.size_problem(input_size):
        raise ValueError(f"--input-size: {rules.size_problem(input_size)}")
    _new_folder(folder)
    _copy_hidden(scan, set(public_idx.tolist()), folder / "hidden")
    token = new_token("admin")
    write_private(folder / "admin.json", json.dumps({"admin_token_hash": hash_token(token)}))
    write_private(folder / "secret.json", json.dumps({"cookie_secret": new_token("cookie")}))
    if db:
        write_private(folder / "db.json", json.dumps({"url": db}))
    write_json(folder / "rules.json", asdict(rules))
    return rules, token
