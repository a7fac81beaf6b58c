"""Where trashkit keeps data, caches and run outputs (a leaf module: imports nothing of ours).

``TRASHKIT_HOME`` wins; otherwise the source checkout (the folder holding pyproject.toml),
so a notebook executed from ``notebooks/`` and a test run from the repository agree;
otherwise ``~/.trashkit`` for a plain pip install.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("TRASHKIT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and (repo / "trashkit").is_dir():
        return repo
    return Path.home() / ".trashkit"


def data_dir() -> Path:
    return home() / "data"


def cache_dir() -> Path:
    return data_dir() / "cache"


def outputs_dir() -> Path:
    return home() / "outputs"
