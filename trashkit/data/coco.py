"""The dataset story: a COCO detection file becomes a classification dataset of crops.

Five steps, each a public function that takes the crop table and returns a new one, so a
notebook can run them one at a time and show :func:`class_counts` after each; a row's
``status`` records the step that dropped it, so nothing is lost silently:

1. :func:`crop_step` - one row per annotation; its box is clipped to its image. Refused here:
   ``bad_box`` (bbox missing, not four numbers, empty after clipping, or no usable
   ``image_id``/``category_id``), ``missing_image`` (image id not listed) and ``unsafe_path``
   (a ``file_name`` that climbs out of the image root or is absolute);
2. :func:`map_step` - detection categories become classes through the editable table
   (:mod:`.mapping`): ``unknown_category``, ``unmapped``;
3. :func:`overlap_step` - where two crops of one image overlap with IoU >= threshold, the
   larger is dropped: ``overlap`` (with the ``partner`` it lost to);
4. :func:`aspect_step` - crops whose long/short side ratio exceeds a bound: ``aspect``;
5. :func:`split_step` - train/val, stratified by class, with a fixed seed.

:func:`build_crop_table` runs all five; :func:`step_counts` is the per-class table of what
survives each step. Everything except :func:`export_crops` (the JPEG writing) works on
annotations alone, which is how chapter 1 studies the real TACO file without its photos.
:func:`load_coco` refuses duplicated image or category ids (boxes would be cut from the wrong
photo under the wrong label) with an error naming them.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .folders import TEST_DIR
from .images import BadImage, open_rgb
from .mapping import load_mapping, resolve_mapping
from .split import stratified_split

#: status values in pipeline order; "kept" survives every step
DROP_STEPS = (
    "bad_box",
    "missing_image",
    "unsafe_path",
    "unknown_category",
    "unmapped",
    "overlap",
    "aspect",
)
STEP_NAMES = {
    "annotations": "0 annotations in file",
    "bad_box": "1 crop: valid boxes",
    "missing_image": "1 crop: image listed",
    "unsafe_path": "1 crop: path inside image root",
    "unknown_category": "2 map: known category",
    "unmapped": "2 map: mapped to a class",
    "overlap": "3 overlap: IoU rule",
    "aspect": "4 aspect: ratio bound",
}
UNMAPPED = "(unmapped)"
#: the crop table's columns, in order
COLUMNS = [
    "ann_id",
    "image_id",
    "file_name",
    "category_id",
    "category",
    "supercategory",
    "cls",
    "x",
    "y",
    "w",
    "h",
    "clipped",
    "status",
    "partner",
    "iou",
    "split",
    "area",
    "aspect",
]


@dataclass
class CocoDataset:
    """The parts of a COCO file we use, with the file it came from for error messages.

    ``duplicate_ann_ids`` lists annotation ids used on more than one image (the official TACO
    file has two); rows stay distinct through their ``(image_id, ann_id)`` pair.
    """

    path: Path
    images: dict[int, dict]
    annotations: list[dict]
    categories: list[dict]
    info: dict = field(default_factory=dict)
    duplicate_ann_ids: list[int] = field(default_factory=list)


def _as_int(value: Any) -> int | None:
    """An id as int, or None when missing or not a whole number (a bool is not an id)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _is_number(value: Any) -> bool:
    """JSON numbers only: strings and booleans are not coordinates or sizes."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _entry_ids(raw: dict, kind: str, path: Path) -> list[int]:
    """The integer ids of one COCO section, positions of entries without one are an error.

    Why strict: every later step joins on these ids, so an entry without one cannot be placed.
    """
    entries = raw[kind]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path}: field {kind!r} must be a list of objects")
    ids = [_as_int(e.get("id")) for e in entries]
    bad = [k for k, i in enumerate(ids) if i is None]
    if bad:
        raise ValueError(
            f"{path}: {kind} entries at position(s) {bad[:10]} have no integer "
            f"'id' ({len(bad)} in all)"
        )
    return ids


def _refuse_duplicates(ids: list[int], kind: str, path: Path, why: str) -> None:
    """Error naming the file, the kind of id and every repeated id (``why`` says the harm)."""
    dup = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dup:
        raise ValueError(
            f"{path}: duplicate {kind} id(s) {dup[:20]}"
            f"{f' ({len(dup)} in all)' if len(dup) > 20 else ''}: {why}"
        )


def _check_images(images: dict[int, dict], path: Path) -> None:
    """Every image needs a non-empty ``file_name`` and positive numeric ``width``/``height``.

    Why: they locate the photo and clip its boxes; a raw KeyError deep in step 1 names neither
    the file nor the image.
    """
    rules = {
        "file_name": lambda v: isinstance(v, str) and v.strip() != "",
        "width": lambda v: _is_number(v) and math.isfinite(v) and v > 0,
        "height": lambda v: _is_number(v) and math.isfinite(v) and v > 0,
    }
    for name, ok in rules.items():
        bad = [i for i, im in images.items() if not ok(im.get(name))]
        if bad:
            raise ValueError(
                f"{path}: image id(s) {bad[:10]} have a missing or invalid "
                f"{name!r} ({len(bad)} image(s) in all)"
            )


def _duplicate_annotations(raw: dict, ids: list[int], path: Path) -> list[int]:
    """Annotation ids used twice: an error within one image, reported across images.

    Within one image two crops would share a file name and an overlap partner would be
    ambiguous; across images (two ids in the official TACO file) the ``(image_id, ann_id)``
    pair still tells the rows apart, so they are returned for the report instead.
    """
    pairs = Counter((_as_int(a.get("image_id")), i) for a, i in zip(raw["annotations"], ids))
    same = sorted({i for (_, i), n in pairs.items() if n > 1})
    if same:
        raise ValueError(
            f"{path}: duplicate annotation id(s) {same[:20]} within one image: "
            "their crops and overlap partners would be confused"
        )
    dup = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dup:
        warnings.warn(
            f"{path}: annotation id(s) {dup} are each used on more than one image; "
            "rows are told apart by (image_id, ann_id)",
            stacklevel=3,
        )
    return dup


def load_coco(path: Path | str) -> CocoDataset:
    """Read a COCO annotation file and check the ids every later step joins on.

    Missing top-level fields, entries without an integer id, image entries without a usable
    file name or size, and repeated image or category ids are errors naming the file and the
    ids: with a repeated image id the last entry used to win and boxes were cut from the
    wrong photo under the wrong label.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file {path} does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in raw]
    if missing:
        raise ValueError(f"{path}: not a COCO detection file, missing field(s) {missing}")
    ids = {kind: _entry_ids(raw, kind, path) for kind in ("images", "annotations", "categories")}
    _refuse_duplicates(
        ids["images"], "image", path, "boxes would be cut from whichever entry came last"
    )
    _refuse_duplicates(
        ids["categories"], "category", path, "boxes would get whichever name came last"
    )
    images = dict(zip(ids["images"], raw["images"]))
    _check_images(images, path)
    dup_ann = _duplicate_annotations(raw, ids["annotations"], path)
    return CocoDataset(
        path, images, raw["annotations"], raw["categories"], raw.get("info", {}), dup_ann
    )


def _escapes_root(file_name: str) -> bool:
    """True for a name that leaves any root it is joined to: absolute, drive-qualified, or
    climbing above it with ``..`` (backslashes count as separators, as on Windows)."""
    if "\x00" in file_name:
        return True
    if PurePosixPath(file_name).is_absolute() or PureWindowsPath(file_name).anchor:
        return True
    depth = 0
    for part in file_name.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def safe_image_path(image_root: Path | str, file_name: str) -> Path | None:
    """``image_root / file_name`` resolved, or None when it lies outside ``image_root``.

    Why: a COCO file is data from anyone; a ``file_name`` of ``../../x`` or ``/home/...`` (or a
    symbolic link inside the root pointing out of it) must never make us open a file the user
    did not hand us. Nothing is opened here; symbolic links are followed only to see where
    they lead.
    """
    if not isinstance(file_name, str) or not file_name or _escapes_root(file_name):
        return None
    root = Path(image_root).resolve()
    try:
        path = (root / file_name).resolve()
    except (OSError, RuntimeError):  # a symlink loop: it cannot be opened anyway
        return root / file_name
    return path if path.is_relative_to(root) else None


def iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[x, y, w, h]`` boxes (N x 4) as an N x N matrix."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    inter = iw * ih
    area = boxes[:, 2] * boxes[:, 3]
    union = area[:, None] + area[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def overlap_drops(
    boxes: np.ndarray, ids: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """The IoU rule for one image: ``(dropped_index, kept_partner_index, iou)`` triples.

    Every pair with IoU >= threshold loses its larger box (ties: the higher annotation id), all
    pairs judged at once. So no two surviving boxes overlap at >= threshold, and every dropped
    box was the larger of an overlapping pair. The partner reported is the overlapping smaller
    box with the highest IoU (the one a reader should look at).
    """
    n = len(boxes)
    if n < 2:
        return []
    iou = iou_matrix(boxes)
    np.fill_diagonal(iou, 0.0)
    area = boxes[:, 2] * boxes[:, 3]
    # larger[i, j]: box i loses against box j
    larger = (area[:, None] > area[None]) | (
        (area[:, None] == area[None]) & (ids[:, None] > ids[None])
    )
    beats = (iou >= threshold) & larger
    out = []
    for i in np.flatnonzero(beats.any(axis=1)):
        partners = np.flatnonzero(beats[i])
        j = partners[np.argmax(iou[i, partners])]
        out.append((int(i), int(j), float(iou[i, j])))
    return out


def _parse_bbox(bbox: Any) -> tuple[tuple[float, ...], str | None]:
    """``(x, y, w, h)`` as floats and None, or four NaNs and why the box cannot be read."""
    nan4 = (math.nan,) * 4
    if bbox is None:
        return nan4, "bbox missing"
    if not isinstance(bbox, (list, tuple)):
        return nan4, f"bbox is a {type(bbox).__name__}, not a list"
    if len(bbox) != 4:
        return nan4, f"bbox has {len(bbox)} value(s), not 4"
    if not all(_is_number(v) for v in bbox):
        return nan4, "bbox holds non-numbers"
    return tuple(float(v) for v in bbox), None


def _annotation_row(ann: dict, coco: CocoDataset, cats: dict[int, dict]) -> tuple[dict, str | None]:
    """One annotation's fields, read defensively; the second value says why it is a bad box.

    Why defensive: one malformed annotation among thousands must cost one counted row, not a
    KeyError that stops the chapter.
    """
    image_id, cid = _as_int(ann.get("image_id")), _as_int(ann.get("category_id"))
    (x, y, w, h), why = _parse_bbox(ann.get("bbox"))
    if why is None and image_id is None:
        why = "image_id missing or not an integer"
    if why is None and cid is None:
        why = "category_id missing or not an integer"
    image = coco.images.get(image_id) if image_id is not None else None
    cat = cats.get(cid, {})
    status = "bad_box" if why else ("kept" if image is not None else "missing_image")
    row = dict(
        ann_id=_as_int(ann["id"]),
        image_id=image_id,
        file_name=image["file_name"] if image else None,
        category_id=cid,
        category=cat.get("name"),
        supercategory=cat.get("supercategory"),
        cls=None,
        x=x,
        y=y,
        w=w,
        h=h,
        clipped=False,
        status=status,
        partner=pd.NA,
        iou=np.nan,
        split=None,
        width=image["width"] if image else np.nan,
        height=image["height"] if image else np.nan,
    )
    return row, why


def _clip_boxes(df: pd.DataFrame) -> pd.Series:
    """Clip the boxes of rows still kept to their image, in place; True where nothing of at
    least 1 x 1 px remains (those become bad boxes). Vectorised over all rows at once."""
    raw = df[["x", "y", "w", "h"]].to_numpy(np.float64, copy=True)  # not a view: x..h change
    x, y, w, h = raw.T
    width, height = df.width.to_numpy(np.float64), df.height.to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        x0, y0 = np.maximum(x, 0.0), np.maximum(y, 0.0)
        x1, y1 = np.minimum(x + w, width), np.minimum(y + h, height)
        ok = (
            np.isfinite(raw).all(axis=1)
            & (w > 0)
            & (h > 0)
            & (x1 - x0 >= 1)
            & (y1 - y0 >= 1)
            & df.status.eq("kept").to_numpy()
        )
    box = np.column_stack([x0, y0, x1 - x0, y1 - y0])
    df.loc[ok, ["x", "y", "w", "h"]] = box[ok]
    df.loc[ok, "clipped"] = ~np.isclose(box[ok], raw[ok]).all(axis=1)
    return df.status.eq("kept") & ~ok


def crop_step(coco: CocoDataset | str | Path) -> pd.DataFrame:
    """Step 1 on annotations alone: one row per annotation, its box clipped to its image.

    Every annotation gets a row, broken ones included, because a count that silently shrinks
    hides data problems. ``status`` is "kept", or why not: ``bad_box`` (bbox missing, not four
    numbers, no usable image_id/category_id, or empty once clipped), ``missing_image``
    (image id not listed) or ``unsafe_path`` (``file_name`` absolute or climbing out of the
    image root: never opened). ``attrs`` name the ids: ``bad_box_ann_ids`` (with
    ``bad_box_reasons``), ``unsafe_path_ann_ids`` and ``duplicate_ann_ids``.
    """
    if not isinstance(coco, CocoDataset):
        coco = load_coco(coco)
    cats = {int(c["id"]): c for c in coco.categories}
    rows, reasons = [], {}
    for ann in coco.annotations:
        row, why = _annotation_row(ann, coco, cats)
        rows.append(row)
        if why:
            reasons[row["ann_id"]] = why
    df = pd.DataFrame(rows, columns=COLUMNS[:-2] + ["width", "height"])
    for col in ("image_id", "category_id"):
        df[col] = df[col].astype("Int64" if df[col].isna().any() else np.int64)
    empty = _clip_boxes(df)
    live = df.status.eq("kept")
    unsafe = live & df.file_name.where(live, "").map(_escapes_root)
    df.loc[unsafe, "status"] = "unsafe_path"
    df.loc[empty & ~unsafe, "status"] = "bad_box"
    reasons.update({a: "box empty or outside its image" for a in df.ann_id[empty & ~unsafe]})
    df = df.drop(columns=["width", "height"])
    df["area"] = df.w * df.h
    df["aspect"] = np.maximum(df.w / df.h, df.h / df.w).where((df.w > 0) & (df.h > 0))
    df.attrs.update(
        source=str(coco.path),
        duplicate_ann_ids=list(coco.duplicate_ann_ids),
        bad_box_ann_ids=_ids_with(df, "bad_box"),
        bad_box_reasons={int(k): v for k, v in sorted(reasons.items())},
        unsafe_path_ann_ids=_ids_with(df, "unsafe_path"),
    )
    return df


def _ids_with(df: pd.DataFrame, status: str) -> list[int]:
    """Sorted annotation ids of the rows with ``status``: what a report names."""
    return sorted(int(i) for i in df.ann_id[df.status == status])


def map_step(df: pd.DataFrame, mapping: str | Path | dict, categories: list[dict]) -> pd.DataFrame:
    """Step 2: give every row its class through the editable mapping table.

    ``categories`` are the COCO file's (``coco.categories``): the table matches names first,
    then supercategories. Kept rows whose category id the file does not list become
    ``unknown_category`` (named in ``attrs["unknown_category_ids"]``), those the table maps
    to nothing (e.g. Battery) ``unmapped``.
    """
    table = load_mapping(mapping)
    cat_class = resolve_mapping(table, categories)
    known = {int(c["id"]) for c in categories}
    df = df.copy()
    cids = df.category_id.tolist()
    df["cls"] = pd.Series(
        [cat_class.get(c) if c is not pd.NA else None for c in cids], index=df.index
    )
    live = df.status.eq("kept")
    unknown = live & ~df.category_id.isin(known)
    df.loc[unknown, "status"] = "unknown_category"
    df.loc[live & ~unknown & df.cls.isna(), "status"] = "unmapped"
    df.attrs.update(
        mapping=table["origin"],
        classes=list(table["classes"]),
        unknown_category_ids=sorted({int(c) for c in df.category_id[unknown]}),
    )
    return df


def _check_iou(iou_threshold: float) -> None:
    """IoU lives in (0, 1]: 0 would drop every touching pair, above 1 nothing ever."""
    if iou_threshold <= 0 or iou_threshold > 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")


def _check_aspect(aspect_bound: float) -> None:
    """A long/short side ratio is >= 1, so a bound below 1 would drop every crop."""
    if aspect_bound < 1:
        raise ValueError(f"aspect_bound must be >= 1, got {aspect_bound}")


def overlap_step(df: pd.DataFrame, iou_threshold: float = 0.4) -> pd.DataFrame:
    """Step 3: of two kept crops of one image overlapping at IoU >= threshold, drop the larger.

    Why the larger: it contains most of the smaller object too, so its label is ambiguous.
    Dropped rows get status ``overlap``, the ``partner`` annotation id they lost to and the
    ``iou`` (see :func:`overlap_drops` for the exact rule).
    """
    _check_iou(iou_threshold)
    df = df.copy()
    hits: list[tuple[Any, Any, float]] = []
    for _, group in df[df.status == "kept"].groupby("image_id", sort=True):
        boxes = group[["x", "y", "w", "h"]].to_numpy()
        for i, j, iou in overlap_drops(boxes, group.ann_id.to_numpy(), iou_threshold):
            hits.append((group.index[i], group.ann_id.iloc[j], iou))
    if hits:
        idx, partner, iou = (list(v) for v in zip(*hits))
        df.loc[idx, "status"] = "overlap"
        df.loc[idx, "partner"] = pd.Series(partner, index=idx, dtype=object)
        df.loc[idx, "iou"] = iou
    df.attrs["iou_threshold"] = iou_threshold
    return df


def aspect_step(df: pd.DataFrame, aspect_bound: float = 4.0) -> pd.DataFrame:
    """Step 4: drop kept crops whose long/short side ratio exceeds ``aspect_bound``.

    Why: a square network input stretches a 1:6 sliver (a straw, a box edge) beyond
    recognition. Exactly the bound is kept.
    """
    _check_aspect(aspect_bound)
    df = df.copy()
    df.loc[df.status.eq("kept") & (df.aspect > aspect_bound), "status"] = "aspect"
    df.attrs["aspect_bound"] = aspect_bound
    return df


def split_step(df: pd.DataFrame, val_fraction: float = 0.2, seed: int = 42) -> pd.DataFrame:
    """Step 5: assign the kept rows to "train"/"val", stratified by class, with a fixed seed.

    Why stratified and seeded: every class keeps its share in val, and the same seed gives
    the same split (results must be reproducible). Needs :func:`map_step` first.
    """
    df = df.copy()
    kept = df.index[df.status == "kept"]
    if df.loc[kept, "cls"].isna().any():
        raise ValueError("split_step needs classes: run map_step before it")
    tr, va = stratified_split(df.loc[kept, "cls"].to_numpy(), val_fraction, seed)
    df["split"] = None
    df.loc[kept[tr], "split"] = "train"
    df.loc[kept[va], "split"] = "val"
    df.attrs.update(seed=seed, val_fraction=val_fraction)
    return df


def build_crop_table(
    coco: CocoDataset | str | Path,
    mapping: str | Path | dict = "taco",
    iou_threshold: float = 0.4,
    aspect_bound: float = 4.0,
    val_fraction: float = 0.2,
    seed: int = 42,
) -> pd.DataFrame:
    """Run steps 1-5 on annotations alone; one row per annotation with its fate.

    Columns (``COLUMNS``): ann_id, image_id, file_name, category_id, category, supercategory,
    cls, x, y, w, h, clipped, status (one of ``DROP_STEPS`` or "kept"), partner (the kept box
    a dropped overlap lost to), iou, split ("train"/"val" for kept rows), area, aspect.
    The parameters are checked before any work, so a typo fails at once.
    """
    if not isinstance(coco, CocoDataset):
        coco = load_coco(coco)
    _check_iou(iou_threshold)
    _check_aspect(aspect_bound)
    df = crop_step(coco)
    df = map_step(df, mapping, coco.categories)
    df = overlap_step(df, iou_threshold)
    df = aspect_step(df, aspect_bound)
    return split_step(df, val_fraction, seed)


def class_counts(df: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Rows per class and status after whichever steps have run - the table under each step.

    Why: chapter 1 calls the steps one at a time and shows what each did to every class.
    ``by`` defaults to ``cls`` once :func:`map_step` has run (classes in table order, then
    ``(unmapped)``), before that to the detection ``supercategory``. Columns: ``kept``, one
    per drop reason present (pipeline order), ``train``/``val`` once split; a ``total`` row.
    """
    by = by or ("cls" if "classes" in df.attrs else "supercategory")
    key = df[by].astype(object).where(df[by].notna(), UNMAPPED if by == "cls" else "(none)")
    table = pd.crosstab(key, df.status)
    for split in ("train", "val"):
        if (df.split == split).any():
            table[split] = (df.split == split).groupby(key).sum()
    cols = (
        ["kept"]
        + [s for s in DROP_STEPS if s in table]
        + [s for s in ("train", "val") if s in table]
    )
    table = table.reindex(columns=cols, fill_value=0)
    if by == "cls":
        extra = [UNMAPPED] if UNMAPPED in table.index else []
        table = table.reindex(list(df.attrs.get("classes", [])) + extra, fill_value=0)
    else:
        table = table.sort_values("kept", ascending=False, kind="stable")
    table.loc["total"] = table.sum()
    table.index.name, table.columns.name = by, None
    return table.astype(int)


def step_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Boxes per class that survive each step (rows) - the table chapter 1 opens with.

    Unmapped categories count in a ``(unmapped)`` column until the mapping step removes them;
    the last rows split the survivors into train and val. Each row equals the previous one
    minus what its step dropped, which the tests check on the real TACO file.
    """
    classes = list(df.attrs.get("classes") or sorted(df.cls.dropna().unique()))
    cls = df.cls.fillna(UNMAPPED)
    cols = classes + ([UNMAPPED] if (cls == UNMAPPED).any() else [])
    order = {s: k for k, s in enumerate(DROP_STEPS)}
    stage = df.status.map(lambda s: order.get(s, len(DROP_STEPS)))
    out = {STEP_NAMES["annotations"]: cls.value_counts()}
    for k, step in enumerate(DROP_STEPS):
        out[STEP_NAMES[step]] = cls[stage > k].value_counts()
    for split in ("train", "val"):
        out[f"5 split: {split}"] = cls[df.split == split].value_counts()
    counts = pd.DataFrame(out).T.reindex(columns=cols).fillna(0).astype(int)
    counts["total"] = counts.sum(axis=1)
    return counts


@dataclass
class CropExport:
    """What :func:`export_crops` did; ``missing_images`` is why a crop step may do nothing.

    ``unsafe_ann_ids`` are the annotations whose ``file_name`` leads outside the image root
    (never opened).
    """

    out_dir: Path
    written: int = 0
    missing_images: list[str] = field(default_factory=list)
    bad_images: list[str] = field(default_factory=list)
    unsafe_ann_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the notebook: what was written and every reason something was not."""
        s = f"{self.written} crops written to {self.out_dir}"
        if self.missing_images:
            s += (
                f"; IMAGES MISSING: {len(self.missing_images)} image file(s) not found, e.g. "
                f"{self.missing_images[0]} (annotation-only statistics are still valid)"
            )
        if self.bad_images:
            s += f"; {len(self.bad_images)} unreadable image(s): {self.bad_images[:3]}"
        if self.unsafe_ann_ids:
            s += (
                f"; REFUSED {len(self.unsafe_ann_ids)} annotation(s) whose file_name leads "
                f"outside the image root: ids {self.unsafe_ann_ids[:10]}"
            )
        return s


def _crop_folder(out_dir: Path, split: str, cls: str) -> Path:
    """Where a crop goes in the competition layout; test crops have no label folder."""
    return out_dir / TEST_DIR if split == "test" else out_dir / split / cls


def _export_image(
    item: tuple[str, Path, pd.DataFrame], out_dir: Path, quality: int
) -> tuple[int, str | None, str | None]:
    """Cut one image's kept boxes: (crops written, missing file name, unreadable reason).

    One task per image so each photo is decoded once, whatever its number of boxes.
    """
    file_name, path, group = item
    if not path.is_file():
        return 0, file_name, None
    try:
        img = open_rgb(path)
    except BadImage as exc:
        return 0, None, str(exc)
    n = 0
    for r in group.itertuples():
        x0, y0 = int(math.floor(r.x)), int(math.floor(r.y))
        x1 = min(int(math.ceil(r.x + r.w)), img.width)
        y1 = min(int(math.ceil(r.y + r.h)), img.height)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        folder = _crop_folder(out_dir, r.split, r.cls)
        folder.mkdir(parents=True, exist_ok=True)
        img.crop((x0, y0, x1, y1)).save(folder / f"{r.image_id}_{r.ann_id}.jpg", quality=quality)
        n += 1
    return n, None, None


def export_crops(
    df: pd.DataFrame,
    image_root: Path | str | None,
    out_dir: Path | str,
    quality: int = 95,
    workers: int = 2,
) -> CropExport:
    """Step 1 for real: cut every kept box out of its image into the competition layout.

    Writes ``out_dir/{train,val}/<Class>/<image_id>_<ann_id>.jpg`` (rows whose split is
    "test" go to ``out_dir/test/NoLabel``). Refuses a non-empty ``out_dir`` so an earlier
    export is never overwritten. Missing and unreadable images are reported, not fatal; a
    ``file_name`` that resolves outside ``image_root`` (``..``, absolute, or a symbolic link
    leading out) is never opened and its annotation ids are reported.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} already holds files; choose a new output folder")
    result = CropExport(out_dir, unsafe_ann_ids=_ids_with(df, "unsafe_path"))
    rows = df[df.status == "kept"]
    if image_root is None:
        result.missing_images = sorted(rows.file_name.unique())
        return result
    items = []
    for file_name, group in rows.groupby("file_name", sort=True):
        path = safe_image_path(image_root, file_name)
        if path is None:
            result.unsafe_ann_ids.extend(int(a) for a in group.ann_id)
        else:
            items.append((file_name, path, group))
    result.unsafe_ann_ids.sort()
    work = partial(_export_image, out_dir=out_dir, quality=quality)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for n, missing, bad in tqdm(
            pool.map(work, items), total=len(items), desc="cropping", unit="image"
        ):
            result.written += n
            if missing:
                result.missing_images.append(missing)
            if bad:
                result.bad_images.append(bad)
    return result
