"""Refusals before anything is stored: every upload is checked in memory first.

Why so much before a byte is written: a refused submission must cost the team nothing (no
quota, no file, no row) and tell them exactly what to fix. The order is cheapest first: the
name, the size, the container (a torch zip archive is opened with :mod:`zipfile` and its sizes
checked before ``torch.load`` may touch it, so a zip bomb is never inflated), then the safe
checkpoint load (``weights_only``), the class list and input size against the rules, and the
network rebuilt on the meta device against :data:`trashkit.checkpoint.MAX_PARAMS`. ONNX files
go through :mod:`.onnx_checks`.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import CheckpointError, load_checkpoint
from ..complexity import check_countable
from .errors import Refused
from .onnx_checks import check_onnx
from .rules import Rules

CHECKPOINT_EXT = (".pt", ".pth")
ONNX_EXT = (".onnx",)
#: a torch archive inflating to more than this many times its size is a zip bomb
MAX_RATIO = 20
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class Checked:
    """What the checks learnt about an accepted upload."""

    kind: str  # checkpoint | onnx
    ext: str
    image_size: int
    sha256: str
    size_bytes: int
    filename: str


def check_filename(name: object) -> tuple[str, str]:
    """``(name, extension)`` of an upload's file name; path characters are refused."""
    if not isinstance(name, str) or not name.strip():
        raise Refused("the upload has no file name; send the file as the 'model' field")
    bad = [c for c in name if c in "/\\" or unicodedata.category(c).startswith("C")]
    if bad or ".." in name or len(name) > 200:
        raise Refused(
            f"file name {name[:60]!r} holds path or control characters; send a plain name "
            "such as best.pt or model.onnx"
        )
    ext = Path(name).suffix.lower()
    if ext not in CHECKPOINT_EXT + ONNX_EXT:
        raise Refused(
            f"file {name!r}: unknown format {ext or '(no extension)'}; send a trashkit "
            "checkpoint (.pt) or an ONNX file (.onnx)"
        )
    return name, ext


def check_size(n_bytes: int, rules: Rules) -> None:
    """Refuse an upload over the rules' size limit (the server checks Content-Length too)."""
    limit = int(rules.limits["upload_mb"] * 2**20)
    if n_bytes > limit:
        raise Refused(
            f"the upload is {n_bytes / 2**20:,.1f} MiB; this competition takes at most "
            f"{rules.limits['upload_mb']} MiB per file",
            status=413,
        )


def check_archive(data: bytes, rules: Rules) -> None:
    """A torch checkpoint is a zip archive: check its entries' sizes without inflating any."""
    if not data.startswith(b"PK\x03\x04"):
        raise Refused(
            "not a trashkit checkpoint: torch.save writes a zip archive and this file is not "
            "one (an old-style or hand-made pickle can run code when loaded, so it is refused)"
        )
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Refused(f"the checkpoint archive is damaged ({exc})") from None
    limit = rules.limits["uncompressed_mb"] * 2**20
    total = sum(i.file_size for i in infos)
    worst = max((i.file_size / max(1, i.compress_size) for i in infos), default=1.0)
    if len(infos) > MAX_ENTRIES or total > limit or worst > MAX_RATIO:
        raise Refused(
            f"the checkpoint archive would inflate to {total / 2**20:,.0f} MiB in "
            f"{len(infos)} entries (worst compression ratio {worst:,.0f}:1); the limits are "
            f"{rules.limits['uncompressed_mb']} MiB and {MAX_RATIO}:1 (a zip bomb is refused)"
        )
    if any(i.filename.startswith("/") or ".." in i.filename.split("/") for i in infos):
        raise Refused("the checkpoint archive names a path outside itself; it is refused")


def check_checkpoint(data: bytes, name: str, rules: Rules) -> int:
    """Load the checkpoint safely and hold it to the rules; returns its input size."""
    check_archive(data, rules)
    with tempfile.TemporaryDirectory(prefix="trashkit-check-") as tmp:
        path = Path(tmp) / "upload.pt"
        path.write_bytes(data)
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            raise Refused(str(exc).replace(str(path), name)) from None
    missing = [c for c in rules.classes if c not in ckpt.classes]
    extra = [c for c in ckpt.classes if c not in rules.classes]
    if missing or extra:
        raise Refused(
            f"the checkpoint's classes {ckpt.classes} are not this competition's "
            f"{rules.classes} (missing {missing}, unknown {extra})"
        )
    problem = rules.size_problem(ckpt.image_size)
    if problem:
        raise Refused(f"checkpoint input size: {problem}")
    try:
        check_countable(ckpt.build_model("cpu"))
    except (CheckpointError, ValueError, TypeError, RuntimeError) as exc:
        raise Refused(f"the checkpoint's network cannot be used: {exc}") from None
    return ckpt.image_size


def check_upload(data: bytes, filename: object, rules: Rules) -> Checked:
    """Every check of one upload, in order; :class:`Refused` with the reason on the first
    that fails."""
    name, ext = check_filename(filename)
    check_size(len(data), rules)
    if not data:
        raise Refused(f"file {name!r} is empty")
    if ext in CHECKPOINT_EXT:
        kind, size = "checkpoint", check_checkpoint(data, name, rules)
    else:
        kind, size = "onnx", check_onnx(data, rules)
    digest = hashlib.sha256(data).hexdigest()
    return Checked(kind, ext, size, digest, len(data), name)
