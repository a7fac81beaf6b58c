"""The visible, editable table that maps detection categories to classification classes.

The table is data (YAML under ``trashkit/data/mappings/``), not code: a lecturer can open
``taco.yaml`` next to the notebook, change one line, and re-run chapter 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAPPING_DIR = Path(__file__).with_name("mappings")


def available_mappings() -> list[str]:
    """Names of the tables shipped with trashkit (pass a path for your own)."""
    return sorted(p.stem for p in MAPPING_DIR.glob("*.yaml"))


def load_mapping(name_or_path: str | Path | dict) -> dict[str, Any]:
    """Load a mapping table by shipped name (``"taco"``), by path, or pass a dict through.

    The result has ``classes`` (list), ``supercategories`` and ``categories`` (dicts of
    name -> class or None). Unknown classes in the table are an error naming the entry.
    """
    if isinstance(name_or_path, dict):
        table, origin = dict(name_or_path), "<dict>"
    else:
        path = Path(name_or_path)
        if not path.suffix:
            path = MAPPING_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise FileNotFoundError(
                f"mapping table {name_or_path!r} not found (shipped: {available_mappings()})"
            )
        table, origin = yaml.safe_load(path.read_text()) or {}, str(path)
    if not table.get("classes"):
        raise ValueError(f"mapping table {origin}: field 'classes' is missing or empty")
    table.setdefault("supercategories", {})
    table.setdefault("categories", {})
    classes = set(table["classes"])
    for section in ("supercategories", "categories"):
        for key, cls in (table[section] or {}).items():
            if cls is not None and cls not in classes:
                raise ValueError(
                    f"mapping table {origin}: {section}.{key} -> {cls!r} is not "
                    f"one of classes {table['classes']}"
                )
    table["origin"] = origin
    return table


def resolve_mapping(table: dict[str, Any], categories: list[dict]) -> dict[int, str | None]:
    """COCO category id -> class name (None = dropped), name overrides before supercategory."""
    out: dict[int, str | None] = {}
    for cat in categories:
        name, sup = cat.get("name"), cat.get("supercategory")
        if name in table["categories"]:
            out[int(cat["id"])] = table["categories"][name]
        else:
            out[int(cat["id"])] = table["supercategories"].get(sup)
    return out
