"""Figures and small tables for chapter 1 (the dataset story). Uses only the data layer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from .data.folders import ImageFolderScan
from .data.images import BadImage, open_rgb


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
    return float(counts.sort_values(ascending=False).iloc[:3].sum() / max(1, counts.sum()))


def size_distributions(widths: Sequence[float], heights: Sequence[float],
                       hue: Sequence[str] | None = None, aspect_bound: float | None = None,
                       title: str = "crop sizes") -> plt.Figure:
    """Width, height and long/short aspect histograms (log x: crop sizes span decades)."""
    import seaborn as sns
    w, h = np.asarray(widths, float), np.asarray(heights, float)
    df = pd.DataFrame({"width": w, "height": h, "aspect (long/short)": np.maximum(w / h, h / w)})
    if hue is not None:
        df["class"] = list(hue)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for ax, col in zip(axes, df.columns[:3]):
        sns.histplot(df, x=col, hue="class" if hue is not None else None, ax=ax, bins=40,
                     log_scale=col != "aspect (long/short)", element="step", fill=False,
                     legend=ax is axes[-1])
    if aspect_bound is not None:
        axes[2].axvline(aspect_bound, color="red", ls="--", label=f"bound {aspect_bound}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _thumb(path: Path, size: int) -> Image.Image:
    try:
        return open_rgb(path, draft_size=(size, size)).resize((size, size))
    except BadImage:
        return Image.new("RGB", (size, size), (255, 0, 0))


def sample_grid(scan: ImageFolderScan, per_class: int = 8, size: int = 96,
                seed: int = 0) -> plt.Figure:
    """A row of random examples per class (seeded, so the figure is reproducible)."""
    rng = np.random.default_rng(seed)
    rows = len(scan.classes)
    fig, axes = plt.subplots(rows, per_class, figsize=(per_class * 1.2, rows * 1.3),
                             squeeze=False)
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
    """Width/height from image headers only (no decoding), for folder datasets."""
    rows = []
    for p in paths:
        try:
            with Image.open(p) as im:
                rows.append((str(p), *im.size))
        except Exception:  # noqa: BLE001 - unreadable files are reported by the cache
            continue
    return pd.DataFrame(rows, columns=["path", "width", "height"])


def overlap_examples(table: pd.DataFrame, image_root: Path | str | None, n: int = 4,
                     seed: int = 0) -> plt.Figure | None:
    """Pairs removed by the IoU rule: the dropped (larger, red) and kept (green) box.

    Drawn on the scene when the image exists, otherwise on a grey canvas of the image's size,
    so the TACO annotations alone still show what the rule does.
    """
    drops = table[table.status == "overlap"]
    if drops.empty:
        return None
    drops = drops.sample(min(n, len(drops)), random_state=seed)
    by_id = table.set_index("ann_id")
    fig, axes = plt.subplots(1, len(drops), figsize=(3.4 * len(drops), 3.4), squeeze=False)
    for ax, row in zip(axes[0], drops.itertuples()):
        kept = by_id.loc[row.partner]
        x0 = min(row.x, kept.x)
        y0 = min(row.y, kept.y)
        x1 = max(row.x + row.w, kept.x + kept.w)
        y1 = max(row.y + row.h, kept.y + kept.h)
        pad = 0.15 * max(x1 - x0, y1 - y0)
        box = (int(max(0, x0 - pad)), int(max(0, y0 - pad)), int(x1 + pad), int(y1 + pad))
        path = Path(image_root) / row.file_name if image_root is not None else None
        if path is not None and path.is_file():
            canvas = open_rgb(path)
        else:
            canvas = Image.new("RGB", (int(box[2]) + 1, int(box[3]) + 1), (200, 200, 200))
        canvas = canvas.crop(box)
        d = ImageDraw.Draw(canvas)
        lw = max(2, int((box[2] - box[0]) / 100))
        for r, color in ((row, "red"), (kept, "lime")):
            d.rectangle((r.x - box[0], r.y - box[1], r.x + r.w - box[0], r.y + r.h - box[1]),
                        outline=color, width=lw)
        ax.imshow(canvas)
        ax.set_title(f"IoU {row.iou:.2f}: drop {row.cls} (red, larger)\nkeep {kept.cls}",
                     fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def crop_browser(scan: ImageFolderScan, per_page: int = 24, size: int = 96):
    """An ipywidgets pager over one class's images (interactive sessions only)."""
    import ipywidgets as w
    from io import BytesIO

    cls = w.Dropdown(options=scan.classes, description="class")
    page = w.IntSlider(0, 0, 0, description="page")
    grid = w.GridBox(layout=w.Layout(grid_template_columns=f"repeat(8, {size + 4}px)"))

    def render(*_):
        paths = [s.path for s in scan.samples if scan.classes[s.label] == cls.value]
        page.max = max(0, math.ceil(len(paths) / per_page) - 1)
        items = []
        for p in paths[page.value * per_page:(page.value + 1) * per_page]:
            buf = BytesIO()
            _thumb(p, size).save(buf, format="PNG")
            items.append(w.VBox([w.Image(value=buf.getvalue(), width=size, height=size),
                                 w.Label(p.name[:14])]))
        grid.children = items

    cls.observe(render, "value")
    page.observe(render, "value")
    render()
    return w.VBox([w.HBox([cls, page]), grid])
