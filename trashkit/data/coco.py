"""The dataset story: a COCO detection file becomes a classification dataset of crops.

Five steps, each one a column of the crop table so that nothing is lost silently:

1. **crop** every annotated box (boxes outside the image are clipped; empty boxes dropped);
2. **map** detection categories to classes with the editable table (:mod:`.mapping`);
3. **overlap**: where two crops of one image overlap with IoU >= threshold, drop the larger;
4. **aspect**: drop crops whose long/short side ratio exceeds a bound;
5. **split** train/val, stratified by class, with a fixed seed.

Everything except the actual JPEG writing works on annotations alone, which is how chapter 1
studies the real TACO file without its 1,500 photos.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .images import BadImage, open_rgb
from .mapping import load_mapping, resolve_mapping
from .split import stratified_split

#: status values in pipeline order; "kept" survives every step
DROP_STEPS = ("bad_box", "missing_image", "unknown_category", "unmapped", "overlap", "aspect")
STEP_NAMES = {
    "annotations": "0 annotations in file",
    "bad_box": "1 crop: valid boxes",
    "missing_image": "1 crop: image listed",
    "unknown_category": "2 map: known category",
    "unmapped": "2 map: mapped to a class",
    "overlap": "3 overlap: IoU rule",
    "aspect": "4 aspect: ratio bound",
}
UNMAPPED = "(unmapped)"


@dataclass
class CocoDataset:
    """The parts of a COCO file we use, with the file it came from for error messages."""

    path: Path
    images: dict[int, dict]
    annotations: list[dict]
    categories: list[dict]
    info: dict = field(default_factory=dict)


def load_coco(path: Path | str) -> CocoDataset:
    """Read a COCO annotation file; missing top-level fields are an error naming them."""
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
    images = {int(im["id"]): im for im in raw["images"]}
    return CocoDataset(path, images, raw["annotations"], raw["categories"], raw.get("info", {}))


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


def overlap_drops(boxes: np.ndarray, ids: np.ndarray,
                  threshold: float) -> list[tuple[int, int, float]]:
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
    larger = (area[:, None] > area[None]) | ((area[:, None] == area[None]) &
                                              (ids[:, None] > ids[None]))
    beats = (iou >= threshold) & larger
    out = []
    for i in np.flatnonzero(beats.any(axis=1)):
        partners = np.flatnonzero(beats[i])
        j = partners[np.argmax(iou[i, partners])]
        out.append((int(i), int(j), float(iou[i, j])))
    return out


def _clip_box(bbox: list[float], width: float, height: float) -> tuple[float, ...] | None:
    """Clip ``[x, y, w, h]`` to the image; None when nothing of positive size remains."""
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1 - x0, y1 - y0


def build_crop_table(coco: CocoDataset | str | Path, mapping: str | Path | dict = "taco",
                     iou_threshold: float = 0.4, aspect_bound: float = 4.0,
                     val_fraction: float = 0.2, seed: int = 42) -> pd.DataFrame:
    """Run steps 1-5 on annotations alone; one row per annotation with its fate.

    Columns: ann_id, image_id, file_name, category_id, category, supercategory, cls, x, y, w,
    h, area, aspect, clipped, status (one of ``DROP_STEPS`` or "kept"), partner (the kept box
    a dropped overlap lost to), iou, split ("train"/"val" for kept rows).
    """
    if not isinstance(coco, CocoDataset):
        coco = load_coco(coco)
    if iou_threshold <= 0 or iou_threshold > 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if aspect_bound < 1:
        raise ValueError(f"aspect_bound must be >= 1, got {aspect_bound}")
    table = load_mapping(mapping)
    cat_class = resolve_mapping(table, coco.categories)
    cats = {int(c["id"]): c for c in coco.categories}
    rows = []
    for ann in coco.annotations:
        cid = int(ann["category_id"])
        cat = cats.get(cid, {})
        image = coco.images.get(int(ann["image_id"]))
        row = dict(ann_id=int(ann["id"]), image_id=int(ann["image_id"]),
                   file_name=image["file_name"] if image else None, category_id=cid,
                   category=cat.get("name"), supercategory=cat.get("supercategory"),
                   cls=cat_class.get(cid), clipped=False, status="kept",
                   partner=pd.NA, iou=np.nan, split=None)
        box = None
        if image is None:
            row["status"] = "missing_image"
            x, y, w, h = ann["bbox"]
        else:
            box = _clip_box(ann["bbox"], image["width"], image["height"])
            x, y, w, h = box if box else ann["bbox"]
            row["clipped"] = bool(box) and not np.allclose(box, [float(v) for v in ann["bbox"]])
        row.update(x=float(x), y=float(y), w=float(w), h=float(h))
        if image is not None and box is None:
            row["status"] = "bad_box"
        elif row["status"] == "kept" and cid not in cats:
            row["status"] = "unknown_category"
        elif row["status"] == "kept" and row["cls"] is None:
            row["status"] = "unmapped"
        rows.append(row)
    df = pd.DataFrame(rows, columns=["ann_id", "image_id", "file_name", "category_id",
                                     "category", "supercategory", "cls", "x", "y", "w", "h",
                                     "clipped", "status", "partner", "iou", "split"])
    df["area"] = df.w * df.h
    df["aspect"] = np.maximum(df.w / df.h, df.h / df.w).where((df.w > 0) & (df.h > 0))
    # step 3: the IoU rule among mapped boxes of each image
    live = df[df.status == "kept"]
    for _, group in live.groupby("image_id", sort=True):
        boxes = group[["x", "y", "w", "h"]].to_numpy()
        for i, j, iou in overlap_drops(boxes, group.ann_id.to_numpy(), iou_threshold):
            idx = group.index[i]
            df.loc[idx, ["status", "partner", "iou"]] = ["overlap", group.ann_id.iloc[j], iou]
    # step 4: aspect ratio
    df.loc[(df.status == "kept") & (df.aspect > aspect_bound), "status"] = "aspect"
    # step 5: stratified seeded split of what survived
    kept = df.index[df.status == "kept"]
    tr, va = stratified_split(df.loc[kept, "cls"].to_numpy(), val_fraction, seed)
    df.loc[kept[tr], "split"] = "train"
    df.loc[kept[va], "split"] = "val"
    df.attrs.update(mapping=table["origin"], classes=list(table["classes"]),
                    iou_threshold=iou_threshold, aspect_bound=aspect_bound, seed=seed,
                    source=str(coco.path),
                    unknown_category_ids=sorted(set(df.category_id[df.status ==
                                                                   "unknown_category"])))
    return df


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
    """What :func:`export_crops` did; ``missing_images`` is why a crop step may do nothing."""

    out_dir: Path
    written: int = 0
    missing_images: list[str] = field(default_factory=list)
    bad_images: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = f"{self.written} crops written to {self.out_dir}"
        if self.missing_images:
            s += (f"; IMAGES MISSING: {len(self.missing_images)} image file(s) not found, e.g. "
                  f"{self.missing_images[0]} (annotation-only statistics are still valid)")
        if self.bad_images:
            s += f"; {len(self.bad_images)} unreadable image(s): {self.bad_images[:3]}"
        return s


def _crop_folder(out_dir: Path, split: str, cls: str) -> Path:
    return out_dir / "test" / "NoLabel" if split == "test" else out_dir / split / cls


def export_crops(df: pd.DataFrame, image_root: Path | str | None, out_dir: Path | str,
                 quality: int = 95, workers: int = 2) -> CropExport:
    """Step 1 for real: cut every kept box out of its image into the competition layout.

    Writes ``out_dir/{train,val}/<Class>/<image_id>_<ann_id>.jpg`` (rows whose split is
    "test" go to ``out_dir/test/NoLabel``). Refuses a non-empty ``out_dir`` so an earlier
    export is never overwritten. Missing and unreadable images are reported, not fatal.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} already holds files; choose a new output folder")
    result = CropExport(out_dir)
    rows = df[df.status == "kept"]
    if image_root is None:
        result.missing_images = sorted(rows.file_name.unique())
        return result
    image_root = Path(image_root)

    def work(item: tuple[str, pd.DataFrame]) -> tuple[int, str | None, str | None]:
        file_name, group = item
        path = image_root / file_name
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
            img.crop((x0, y0, x1, y1)).save(folder / f"{r.image_id}_{r.ann_id}.jpg",
                                            quality=quality)
            n += 1
        return n, None, None

    groups = list(rows.groupby("file_name", sort=True))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for n, missing, bad in tqdm(pool.map(work, groups), total=len(groups),
                                    desc="cropping", unit="image"):
            result.written += n
            if missing:
                result.missing_images.append(missing)
            if bad:
                result.bad_images.append(bad)
    return result
