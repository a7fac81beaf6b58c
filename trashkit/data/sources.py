"""Turn a notebook's ``source`` parameter into something the pipeline can read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..paths import data_dir
from .folders import detect_layout
from .synthetic import default_dataset


@dataclass
class Source:
    """A resolved data source.

    kind: "coco", "competition" or "imagefolder". For COCO sources ``image_root`` is where
    the ``file_name`` entries live and ``folder`` is set once crops exist (the default data
    ships them); for folder sources ``folder`` is the labelled root.
    """

    kind: str
    path: Path
    image_root: Path | None = None
    folder: Path | None = None
    mapping: str | None = None
    synthetic: bool = False


def resolve_source(
    source: str | Path = "default", image_root: str | Path | None = None, mapping: str | None = None
) -> Source:
    """``"default"`` builds (once) the synthetic default; otherwise a folder or a COCO json.

    For a COCO json without ``image_root`` the folder holding the json is assumed (TACO's
    layout); whether the images are really there is reported by the crop step.
    """
    if str(source) == "default":
        paths = default_dataset(data_dir() / "synthetic")
        return Source(
            "coco",
            paths["coco"],
            paths["images"],
            paths["crops"],
            mapping or "synthetic",
            synthetic=True,
        )
    path = Path(source).expanduser()
    kind = detect_layout(path)
    if kind == "coco":
        root = Path(image_root) if image_root else path.parent
        return Source("coco", path, root, None, mapping or "taco")
    return Source(kind, path, None, path, mapping)
