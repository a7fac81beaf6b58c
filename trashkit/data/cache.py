"""A decoded, resized uint8 cache: JPEGs are decoded once, never once per epoch.

Decoding a 384x512 JPEG costs far more than any augmentation of a 156x156 image, so the
training loader reads from one ``N x 3 x S x S`` uint8 array (memory-mapped ``.npy``). The
cache key covers every file's path, size and modification time plus the image size, so a
changed, added or removed file, or a new resolution, builds a new cache instead of serving
stale pixels. Corrupt and missing files (a dangling link, a file deleted after the scan) are
skipped and reported by name with the reason; the rest of the data is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .folders import Sample
from .images import BadImage, missing_reason, open_rgb

CACHE_VERSION = 1


@dataclass
class ImageCache:
    """Decoded images (``images[i]`` is 3 x S x S uint8) with their labels and paths."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]
    size: int
    key: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    build_seconds: float = 0.0
    from_disk: bool = False
    #: soft targets (``N x classes`` probabilities) a training loader hands out instead of
    #: ``labels`` when present: a teacher's answers (``trashkit.train.bank``)
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of cached images (skipped files are not counted)."""
        return len(self.labels)


def cache_key(samples: Sequence[Sample], size: int) -> str:
    """Fingerprint of the file list (path, bytes, mtime) and the output size.

    Two folders of symbolic links to the same photos get two caches: the cache returns the
    paths it was built from, and each folder's split must find its own paths there.

    A file that vanished since the scan enters the key as missing instead of raising, so a
    dangling link or a deleted file never stops training here (the build reports it).
    """
    h = hashlib.sha1(f"v{CACHE_VERSION}|{size}".encode())
    for s in samples:
        try:
            st = os.stat(s.path)
            stamp = f"{st.st_size}|{st.st_mtime_ns}"
        except FileNotFoundError:
            stamp = "missing"
        # the path as scanned (the cache hands these back) and the file it leads to
        h.update(f"|{Path(s.path).absolute()}|{Path(s.path).resolve()}|{stamp}|{s.label}".encode())
    return h.hexdigest()[:16]


def decode_resized(path: Path, size: int) -> np.ndarray:
    """Decode a file to the cache's ``3 x size x size`` uint8 layout (also used at inference,
    so evaluation sees exactly the pixels training saw)."""
    img = open_rgb(path, draft_size=(size, size))
    img = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))


def _split_missing(samples: Sequence[Sample]) -> tuple[list[Sample], list[tuple[str, str]]]:
    """Samples whose file exists now, and ``(path, reason)`` for those that do not.

    Why before the key: a dangling symbolic link or a file deleted after the folder scan is
    one lost image, not a reason to stop training.
    """
    present, missing = [], []
    for s in samples:
        if Path(s.path).exists():  # follows links: a dangling one does not exist
            present.append(s)
        else:
            missing.append((str(s.path), missing_reason(s.path)))
    return present, missing


def _decode_all(
    samples: Sequence[Sample], size: int, workers: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode every sample (PIL releases the GIL, so threads help): images, ok mask, skips."""
    out = np.empty((len(samples), 3, size, size), dtype=np.uint8)
    ok = np.zeros(len(samples), dtype=bool)
    skipped: list[tuple[str, str]] = []

    def work(i: int) -> tuple[int, str | None]:
        """Decode sample ``i`` into its slot; a bad file gives its reason instead."""
        try:
            out[i] = decode_resized(samples[i].path, size)
            return i, None
        except BadImage as exc:
            return i, exc.reason

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, err in tqdm(
            pool.map(work, range(len(samples))),
            total=len(samples),
            desc=f"caching {size}px",
            unit="img",
            disable=not progress,
        ):
            if err is None:
                ok[i] = True
            else:
                skipped.append((str(samples[i].path), err))
    return out, ok, skipped


def _warn_skipped(skipped: list[tuple[str, str]]) -> None:
    """One warning per skipped file, so a notebook shows what was left out and why."""
    for path, why in skipped:
        warnings.warn(f"skipped {path}: {why}", stacklevel=3)


def build_cache(
    samples: Sequence[Sample],
    size: int,
    cache_dir: Path | str,
    workers: int = 2,
    progress: bool = True,
) -> ImageCache:
    """Load the cache for ``(samples, size)`` from ``cache_dir`` or build it.

    Images are resized to ``size x size`` (crops vary in aspect; like the competition's
    baselines we stretch rather than pad). Building decodes in ``workers`` threads and writes
    atomically, so an interrupted build leaves no half cache behind. Missing files (dangling
    links, files deleted since the scan) and undecodable ones are skipped and listed in
    ``skipped`` with the reason; the rest is kept.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    samples, missing = _split_missing(samples)
    _warn_skipped(missing)
    key = cache_key(samples, size)
    npy, meta = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if npy.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        return ImageCache(
            np.load(npy, mmap_mode="r"),
            np.array(info["labels"], dtype=np.int64),
            info["paths"],
            size,
            key,
            missing + [tuple(s) for s in info["skipped"]],
            info["build_seconds"],
            from_disk=True,
        )
    t0 = time.perf_counter()
    out, ok, skipped = _decode_all(samples, size, workers, progress)
    _warn_skipped(skipped)
    kept = [s for s, good in zip(samples, ok) if good]
    labels = np.array([s.label for s in kept], dtype=np.int64)
    paths = [str(s.path) for s in kept]
    seconds = time.perf_counter() - t0
    tmp = cache_dir / f".{key}.{os.getpid()}.tmp.npy"
    np.save(tmp, out[ok])
    meta.with_suffix(".json.tmp").write_text(
        json.dumps(
            {
                "labels": labels.tolist(),
                "paths": paths,
                "skipped": skipped,
                "size": size,
                "build_seconds": seconds,
            }
        )
    )
    os.replace(meta.with_suffix(".json.tmp"), meta)
    os.replace(tmp, npy)
    return ImageCache(
        np.load(npy, mmap_mode="r"), labels, paths, size, key, missing + skipped, seconds
    )
