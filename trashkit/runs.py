"""One output folder per run, never overwriting an earlier one (a leaf module)."""

from __future__ import annotations

import re
import time
from pathlib import Path

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


def resolve_output_dir(output_dir: str | Path | None, name: str) -> Path:
    """A notebook's ``output_dir`` parameter: None -> a new run folder; a path -> that folder,
    which must not already hold files (an earlier run's outputs are never overwritten)."""
    if output_dir in (None, ""):
        return new_run_dir(name)
    path = Path(output_dir)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"output_dir {path} already holds files from an earlier run; "
                              "pick a new folder or leave output_dir empty for a fresh one")
    path.mkdir(parents=True, exist_ok=True)
    return path
