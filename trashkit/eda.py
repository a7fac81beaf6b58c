"""Figures and small tables for chapter 1 (the dataset story). Uses only the data layer.

Why a module: the chapter's cells stay short enough to read aloud; anything longer than a
few lines (a figure, a join of the crop table with itself) lives here, with a test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from .data.coco import safe_image_path, split_step
from .data.folders import ImageFolderScan
from .data.images import BadImage, open_rgb
from .data.split import grouped_split

if TYPE_CHECKING:  # only for the crop browser's annotation: widgets load when it is used
    import ipywidgets


def class_distribution(counts: pd.Series, title: str = "class distribution") -> plt.Figure:
    """Bar chart sorted by count, with the top-3 share in the title (the brief's ~79%)."""
    counts = counts.sort_values(ascending=False)
    share = counts.iloc[:3].sum() / max(1, counts.sum())
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(counts.index.astype(str), counts.values, color="tab:green")
    for i, v in enumerate(counts.values):
        ax.text(i, v, f"{v}\n{v / counts.sum():.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_title(f"{title}: {counts.sum()} items, top-3 classes hold {share:.0%}")
    ax.set_ylabel("count")
    ax.margins(y=0.25)
    fig.tight_layout()
    return fig


def top3_share(counts: pd.Series) -> float:
    """Share of the three largest classes: the brief's imbalance figure (about 0.79)."""
    return float(counts.sort_values(ascending=False).iloc[:3].sum() / max(1, counts.sum()))


def mapping_overview(table: dict) -> pd.DataFrame:
    """A mapping table read the other way round: per class, what feeds it.

    Why: the YAML lists one line per supercategory (TACO has 28), too wide to read as a row;
    one row per class (and one for "(dropped)") shows at a glance which detection groups make
    up each class and which are left out. Name exceptions get their own column.
    """
    rows = {}
    for section, column in (
        ("supercategories", "supercategories"),
        ("categories", "categories (by name)"),
    ):
        for name, cls in (table.get(section) or {}).items():
            rows.setdefault(cls or "(dropped)", {}).setdefault(column, []).append(str(name))
    order = [c for c in table["classes"] if c in rows] + (
        ["(dropped)"] if "(dropped)" in rows else []
    )
    return pd.DataFrame(
        {c: {k: ", ".join(v) for k, v in rows[c].items()} for c in order},
        index=["supercategories", "categories (by name)"],
    ).T.fillna("")


def size_distributions(
    widths: Sequence[float],
    heights: Sequence[float],
    hue: Sequence[str] | None = None,
    aspect_bound: float | None = None,
    title: str = "crop sizes",
) -> plt.Figure:
    """Width, height and long/short aspect histograms (log x: crop sizes span decades)."""
    import seaborn as sns

    w, h = np.asarray(widths, float), np.asarray(heights, float)
    df = pd.DataFrame({"width": w, "height": h, "aspect (long/short)": np.maximum(w / h, h / w)})
    if hue is not None:
        df["class"] = list(hue)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for ax, col in zip(axes, df.columns[:3]):
        sns.histplot(
            df,
            x=col,
            hue="class" if hue is not None else None,
            ax=ax,
            bins=40,
            log_scale=col != "aspect (long/short)",
            element="step",
            fill=False,
            legend=ax is axes[-1],
        )
    if aspect_bound is not None:
        axes[2].axvline(aspect_bound, color="red", ls="--", label=f"bound {aspect_bound}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def labels_from_confusion(confusion: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` arrays that have ``confusion`` (rows = true class) as their matrix.

    Why: a toy is easiest to write as a confusion matrix, while the metric helpers take one
    label per item; cell ``(t, p)`` becomes that many items of true class t predicted as p.
    """
    cm = np.asarray(confusion, dtype=int)
    k = len(cm)
    true = np.repeat(np.arange(k), k)  # the row of each cell, cells in reading order
    pred = np.tile(np.arange(k), k)  # ... and its column
    return np.repeat(true, cm.ravel()), np.repeat(pred, cm.ravel())


def _thumb(path: Path, size: int) -> Image.Image:
    try:
        return open_rgb(path, draft_size=(size, size)).resize((size, size))
    except BadImage:
        return Image.new("RGB", (size, size), (255, 0, 0))


def sample_grid(
    scan: ImageFolderScan, per_class: int = 8, size: int = 96, seed: int = 0
) -> plt.Figure:
    """A row of random examples per class (seeded, so the figure is reproducible)."""
    rng = np.random.default_rng(seed)
    rows = len(scan.classes)
    fig, axes = plt.subplots(rows, per_class, figsize=(per_class * 1.2, rows * 1.3), squeeze=False)
    by_class = {k: [s.path for s in scan.samples if s.label == k] for k in range(rows)}
    for k, cls in enumerate(scan.classes):
        paths = by_class[k]
        pick = rng.choice(len(paths), min(per_class, len(paths)), replace=False) if paths else []
        for j, ax in enumerate(axes[k]):
            ax.axis("off")
            if j < len(pick):
                ax.imshow(_thumb(paths[pick[j]], size))
        axes[k][0].set_title(f"{cls} ({len(paths)})", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def image_sizes(paths: Sequence[Path]) -> pd.DataFrame:
    """Width/height from image headers only (no decoding), for folder datasets.

    Unreadable files are left out here: the folder scan and the cache report them by name.
    """
    rows = []
    for p in paths:
        try:
            with Image.open(p) as im:
                rows.append((str(p), *im.size))
        except Exception:  # noqa: BLE001, S112 - reported by the scan, not here
            continue
    return pd.DataFrame(rows, columns=["path", "width", "height"])


def draw_boxes(
    boxes: dict[str, Sequence[float]],
    size: tuple[int, int] | None = None,
    shade_overlap: bool = True,
) -> plt.Figure:
    """Named ``[x, y, w, h]`` boxes on a unit grid, y pointing down as in an image.

    Why: the chapter's IoU example is meant to be checked with a pencil, and counting grid
    squares is that check. With two boxes and ``shade_overlap`` the intersection is hatched.
    """
    arr = np.asarray(list(boxes.values()), dtype=float).reshape(-1, 4)
    if size is None:
        size = (
            math.ceil((arr[:, 0] + arr[:, 2]).max()) + 1,
            math.ceil((arr[:, 1] + arr[:, 3]).max()) + 1,
        )
    fig, ax = plt.subplots(figsize=(0.5 * size[0] + 1, 0.5 * size[1] + 0.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, (x, y, w, h)) in enumerate(boxes.items()):
        c = colors[k % len(colors)]
        ax.add_patch(
            plt.Rectangle(
                (x, y),
                w,
                h,
                fill=False,
                lw=2.5,
                ec=c,
                label=f"{name} = [{x:g}, {y:g}, {w:g}, {h:g}]",
            )
        )
        ax.text(x + 0.1, y + 0.1, name, color=c, va="top", fontsize=11, fontweight="bold")
    if shade_overlap and len(arr) == 2:
        (ax0, ay0, aw, ah), (bx0, by0, bw, bh) = arr
        x0, y0 = max(ax0, bx0), max(ay0, by0)
        x1, y1 = min(ax0 + aw, bx0 + bw), min(ay0 + ah, by0 + bh)
        if x1 > x0 and y1 > y0:
            ax.add_patch(
                plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, hatch="//", lw=0, ec="gray")
            )
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)  # image coordinates: y grows downwards
    ax.set_xticks(range(size[0] + 1))
    ax.set_yticks(range(size[1] + 1))
    ax.grid(True, lw=0.5, alpha=0.5)
    ax.set_aspect("equal")
    ax.xaxis.tick_top()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


#: the columns of :func:`overlap_pairs`
PAIR_COLUMNS = [
    "image_id",
    "dropped",
    "dropped_class",
    "kept",
    "kept_class",
    "iou",
    "area_ratio",
    "small_inside",
    "large_other",
]


def _pairs_with_boxes(table: pd.DataFrame) -> pd.DataFrame:
    """Each row the IoU rule dropped, joined with the kept box it lost to (``*_kept``).

    Why a join on ``(image_id, ann_id)``: annotation ids repeat across images in the real
    TACO file, so the id alone can name two boxes.
    """
    drops = table[table.status == "overlap"]
    drops = drops.assign(partner=drops.partner.astype("int64"))
    boxes = table[["image_id", "ann_id", "category", "cls", "x", "y", "w", "h", "area"]]
    pairs = drops.merge(
        boxes,
        left_on=["image_id", "partner"],
        right_on=["image_id", "ann_id"],
        suffixes=("", "_kept"),
        validate="many_to_one",
    )
    ix = (
        np.minimum(pairs.x + pairs.w, pairs.x_kept + pairs.w_kept)
        - np.maximum(pairs.x, pairs.x_kept)
    ).clip(lower=0)
    iy = (
        np.minimum(pairs.y + pairs.h, pairs.y_kept + pairs.h_kept)
        - np.maximum(pairs.y, pairs.y_kept)
    ).clip(lower=0)
    return pairs.assign(inter=ix * iy)


def overlap_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Every crop the IoU rule dropped, beside the smaller crop it lost to.

    Why: the chapter argues that the larger box of an overlapping pair mostly *contains* the
    smaller one, plus background or other objects, so the smaller crop is the cleaner
    example. ``small_inside`` is the share of the kept (smaller) box lying inside the dropped
    one, ``large_other`` the share of the dropped box that is not the smaller box, and
    ``area_ratio`` dropped area / kept area (at most 1 / threshold when one box holds the
    other).
    """
    if not (table.status == "overlap").any():
        return pd.DataFrame(columns=PAIR_COLUMNS)
    p = _pairs_with_boxes(table)
    return pd.DataFrame(
        {
            "image_id": p.image_id,
            "dropped": p.category,
            "dropped_class": p.cls,
            "kept": p.category_kept,
            "kept_class": p.cls_kept,
            "iou": p.iou,
            "area_ratio": p.area / p.area_kept,
            "small_inside": p.inter / p.area_kept,
            "large_other": 1 - p.inter / p.area,
        }
    ).reset_index(drop=True)


def photo_leakage(table: pd.DataFrame) -> pd.Series:
    """How many validation crops come from a photo that also gave a training crop.

    Why: crops of one photo share its background, light and camera (sometimes the same
    object, boxed twice). A split made crop by crop puts such siblings on both sides, so the
    validation set is easier than a test set of new photos would be.
    """
    kept = table[table.split.isin(["train", "val"])]
    val = kept[kept.split == "val"]
    shared = val.image_id.isin(set(kept.image_id[kept.split == "train"]))
    both = kept.groupby("image_id").split.nunique().gt(1)
    share = float(shared.mean()) if len(val) else 0.0
    return pd.Series(
        {
            "val crops": len(val),
            "val crops sharing a photo with train": int(shared.sum()),
            "share of val crops": round(share, 4),
            "photos with crops": len(both),
            "photos on both sides": int(both.sum()),
        },
        dtype=object,
    )


def headline_figures(table: pd.DataFrame) -> pd.Series:
    """The figures where the synthetic default and real data differ most, as shares.

    Why: chapter 1 shows this run's figures beside the TACO reference, so a number measured
    on the generated demo data is never read as a fact about trash. "Mapped" boxes are those
    that reach step 3 (kept, or dropped by step 3 or 4).
    """
    mapped = table.status.isin(["kept", "overlap", "aspect"])
    kept = table[table.status == "kept"]
    n = max(1, int(mapped.sum()))
    return (
        pd.Series(
            {
                "step 3 drops (share of mapped boxes)": (table.status == "overlap").sum() / n,
                "step 4 drops (share of mapped boxes)": (table.status == "aspect").sum() / n,
                "top-3 share of the kept crops": top3_share(kept.cls.value_counts()),
                "kept crops per photo (mean)": len(kept) / max(1, kept.image_id.nunique()),
                "leaked val crops (crop-by-crop split)": photo_leakage(table)["share of val crops"],
            }
        )
        .astype(float)
        .round(3)
    )


#: the chapter's presets: "quick" keeps the parameters cell as it is, "full" is what the
#: Reference results were measured with (parameters given with -p still win)
PRESETS = {
    "quick": {},
    "full": {
        "iou_threshold": 0.4,
        "aspect_bound": 4.0,
        "val_fraction": 0.2,
        "seed": 42,
        "split_seeds": 20,
    },
}


def preset_values(preset: str, given: set[str] | frozenset[str] = frozenset()) -> dict:
    """The parameter values ``preset`` sets, leaving out those given explicitly (``-p``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    return {k: v for k, v in PRESETS[preset].items() if k not in given}


def photo_split(table: pd.DataFrame, val_fraction: float = 0.2, seed: int = 42) -> pd.DataFrame:
    """The crop table with step 5 redone BY PHOTO: all kept crops of one photo on one side.

    Why: :func:`photo_leakage` shows that a crop-by-crop split puts most photos on both
    sides; :func:`trashkit.data.split.grouped_split` (scikit-learn's StratifiedGroupKFold)
    keeps each photo whole and still balances the classes as well as whole photos allow.
    """
    df = table.copy()
    kept = df.index[df.status == "kept"]
    train, val = grouped_split(
        df.loc[kept, "cls"].to_numpy(), df.loc[kept, "image_id"].to_numpy(), val_fraction, seed
    )
    df["split"] = None
    df.loc[kept[train], "split"] = "train"
    df.loc[kept[val], "split"] = "val"
    df.attrs.update(seed=seed, val_fraction=val_fraction, split_by="photo")
    return df


def split_comparison(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per named split of the same crops: each class's validation share, the
    largest distance of a class's share from the overall share, and the photo leakage.

    Why: a split by photo buys zero leakage and may pay in stratification; this table puts
    the two side by side.
    """
    rows = {}
    for name, table in splits.items():
        kept = table[table.split.isin(["train", "val"])]
        shares = kept.groupby("cls").split.apply(lambda s: float((s == "val").mean()))
        overall = float((kept.split == "val").mean()) if len(kept) else 0.0
        leak = photo_leakage(table)
        rows[name] = {
            **shares.round(3).to_dict(),
            "all classes": round(overall, 3),
            "largest class deviation": round(float((shares - overall).abs().max()), 3),
            "val crops": leak["val crops"],
            "val crops sharing a photo with train": leak["share of val crops"],
        }
    return pd.DataFrame(rows).T


def split_seed_study(
    table: pd.DataFrame, val_fraction: float, seeds: Sequence[int]
) -> pd.DataFrame:
    """The crop-by-crop split and the split by photo over several seeds: per seed, each
    one's photo leakage and largest class deviation (:func:`split_comparison`'s columns).

    Why: one seed is one draw; the spread over seeds says how much of a difference between
    the two splits is the method and how much is luck.
    """
    rows = []
    for s in seeds:
        both = {
            "crop": split_step(table, val_fraction, s),
            "photo": photo_split(table, val_fraction, s),
        }
        cmp = split_comparison(both)
        rows.append(
            {
                "seed": s,
                "leakage, crop split": cmp.loc["crop", "val crops sharing a photo with train"],
                "leakage, photo split": cmp.loc["photo", "val crops sharing a photo with train"],
                "largest class deviation, crop split": cmp.loc["crop", "largest class deviation"],
                "largest class deviation, photo split": cmp.loc["photo", "largest class deviation"],
            }
        )
    return pd.DataFrame(rows).set_index("seed").astype(float)


def _scene(
    file_name: str, image_root: Path | str | None, box: tuple[int, int, int, int]
) -> Image.Image:
    """The photo cut to ``box``, or a grey canvas when the photo is absent or unsafe.

    Why :func:`safe_image_path`: a COCO ``file_name`` is data from anyone and must never
    make us open a file outside the image root.
    """
    path = safe_image_path(image_root, file_name) if image_root is not None else None
    if path is not None and path.is_file():
        try:
            img = open_rgb(path)
        except BadImage:
            pass
        else:  # the padded box may reach past the photo's edge: stop at the edge
            return img.crop((box[0], box[1], min(box[2], img.width), min(box[3], img.height)))
    return Image.new("RGB", (box[2] - box[0], box[3] - box[1]), (200, 200, 200))


def overlap_examples(
    table: pd.DataFrame, image_root: Path | str | None, n: int = 4, seed: int = 0
) -> plt.Figure | None:
    """Pairs removed by the IoU rule: the dropped (larger, red) and kept (green) box.

    Drawn on the scene when the image exists, otherwise on a grey canvas, so the TACO
    annotations alone still show what the rule does. Titles name the detection categories
    (e.g. a paper cup dropped for the plastic lid inside it) and their classes.
    """
    if not (table.status == "overlap").any():
        return None
    pairs = _pairs_with_boxes(table)
    pairs = pairs.sample(min(n, len(pairs)), random_state=seed)
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.4 * len(pairs), 3.6), squeeze=False)
    for ax, r in zip(axes[0], pairs.itertuples()):
        x0, y0 = min(r.x, r.x_kept), min(r.y, r.y_kept)
        x1 = max(r.x + r.w, r.x_kept + r.w_kept)
        y1 = max(r.y + r.h, r.y_kept + r.h_kept)
        pad = 0.15 * max(x1 - x0, y1 - y0)
        box = (int(max(0, x0 - pad)), int(max(0, y0 - pad)), int(x1 + pad) + 1, int(y1 + pad) + 1)
        canvas = _scene(r.file_name, image_root, box)
        d = ImageDraw.Draw(canvas)
        lw = max(2, int((box[2] - box[0]) / 100))
        for (x, y, w, h), color in (
            ((r.x, r.y, r.w, r.h), "red"),
            ((r.x_kept, r.y_kept, r.w_kept, r.h_kept), "lime"),
        ):
            d.rectangle(
                (x - box[0], y - box[1], x + w - box[0], y + h - box[1]), outline=color, width=lw
            )
        ax.imshow(canvas)
        ax.set_title(
            f"IoU {r.iou:.2f}\ndrop {r.category} ({r.cls}, red)\n"
            f"keep {r.category_kept} ({r.cls_kept}, green)",
            fontsize=8,
        )
        ax.axis("off")
    fig.tight_layout()
    return fig


def crop_browser(scan: ImageFolderScan, per_page: int = 24, size: int = 96) -> ipywidgets.VBox:
    """An ipywidgets pager over one class's images (interactive sessions only)."""
    from io import BytesIO

    import ipywidgets as w

    cls = w.Dropdown(options=scan.classes, description="class")
    page = w.IntSlider(0, 0, 0, description="page")
    grid = w.GridBox(layout=w.Layout(grid_template_columns=f"repeat(8, {size + 4}px)"))

    def render(*_: object) -> None:
        paths = [s.path for s in scan.samples if scan.classes[s.label] == cls.value]
        page.max = max(0, math.ceil(len(paths) / per_page) - 1)
        items = []
        for p in paths[page.value * per_page : (page.value + 1) * per_page]:
            buf = BytesIO()
            _thumb(p, size).save(buf, format="PNG")
            items.append(
                w.VBox(
                    [w.Image(value=buf.getvalue(), width=size, height=size), w.Label(p.name[:14])]
                )
            )
        grid.children = items

    cls.observe(render, "value")
    page.observe(render, "value")
    render()
    return w.VBox([w.HBox([cls, page]), grid])
