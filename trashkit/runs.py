"""One output folder per run, written atomically, never overwritten (a leaf module).

Two promises every chapter relies on: a run never overwrites what an earlier run wrote, and a
file a run writes is either complete or absent (an interrupted write leaves the previous
version, never half a CSV that breaks the next resume).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .paths import outputs_dir


def run_id(name: str = "") -> str:
    """A sortable, readable id: ``20261123-101500-name``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    return f"{stamp}-{name}" if name else stamp


def new_run_dir(name: str = "", base: Path | str | None = None) -> Path:
    """Create and return a fresh folder under ``base`` (default ``outputs/``).

    If the id is taken (two runs in one second) a suffix ``-2``, ``-3`` ... is added; the
    folder is created with ``exist_ok=False`` so two processes can never share one.
    """
    base = Path(base) if base is not None else outputs_dir()
    base.mkdir(parents=True, exist_ok=True)
    rid = run_id(name)
    for k in range(1, 1000):
        path = base / (rid if k == 1 else f"{rid}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run folder under {base}")


def is_empty_dir(path: Path) -> bool:
    """True for a folder that does not exist yet or holds nothing (but its run lock)."""
    return not path.exists() or (
        path.is_dir() and not any(p.name != ".lock" for p in path.iterdir())
    )


def resolve_output_dir(output_dir: str | Path | None, name: str) -> Path:
    """A notebook's ``output_dir`` parameter: None -> a new run folder; a path -> that folder,
    which must not already hold files (an earlier run's outputs are never overwritten)."""
    if output_dir in (None, ""):
        return new_run_dir(name)
    path = Path(output_dir)
    if not is_empty_dir(path):
        raise FileExistsError(
            f"output_dir {path} already holds files from an earlier run; "
            "pick a new folder or leave output_dir empty for a fresh one"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and one ``os.replace``.

    Why: a process killed mid-write must leave either the old file or the new one, never a
    truncated file that the next step (a resume, a leaderboard) chokes on.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic, indented JSON (``default=str`` so paths and numpy scalars never crash a run)."""
    return write_atomic(path, json.dumps(obj, indent=2, default=str))


def write_csv(path: str | Path, frame, **kwargs) -> Path:
    """Atomic ``DataFrame.to_csv`` (the frame is rendered in memory first)."""
    return write_atomic(path, frame.to_csv(**kwargs))


LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """Another process holds the run folder; the message names it."""


class RunLock:
    """An exclusive lock on a run folder, held for the life of a run.

    ``fcntl.flock`` on ``<folder>/.lock``: the kernel releases it when the process ends, even
    on ``kill -9``, so a crashed run never leaves a folder stuck, while a second process (a
    second training started into the same folder, a ``--resume`` of a run still training)
    gets :class:`RunLocked` naming the holder written in the file (pid, host, start, command).
    """

    def __init__(self, folder: str | Path):
        import fcntl
        import socket
        import sys

        self.path = Path(folder) / LOCK_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise RunLocked(
                f"{folder} is in use by {holder}; wait for it to finish or choose another folder"
            ) from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        command = " ".join(sys.argv)[:200]
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"process {os.getpid()} on {socket.gethostname()} since {stamp} ({command})")
        self._fh.flush()

    def release(self) -> None:
        """Let the next process in (the file stays: it only ever names the last holder)."""
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete what interrupted :func:`write_atomic` calls left in ``folder`` (call it while
    holding the folder's :class:`RunLock`: then no write of ours is in flight there)."""
    stale = [p for p in Path(folder).glob(".*.tmp") if re.fullmatch(r"\..+\.\d+\.tmp", p.name)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
