"""The data layer: everything between files on disk and uint8 batches.

It imports nothing of trashkit but ``paths`` (where caches live), so every later chapter
can build on it.
"""

from .images import BadImage, open_rgb, missing_reason, IMAGE_EXTENSIONS
from .folders import (
    ImageFolderScan,
    Sample,
    scan_image_folder,
    scan_unlabelled,
    load_source,
    detect_layout,
    TEST_DIR,
)
from .mapping import load_mapping, resolve_mapping, available_mappings
from .coco import (
    CocoDataset,
    load_coco,
    iou_matrix,
    overlap_drops,
    build_crop_table,
    step_counts,
    export_crops,
    CropExport,
    crop_step,
    map_step,
    overlap_step,
    aspect_step,
    split_step,
    class_counts,
    safe_image_path,
    DROP_STEPS,
)
from .synthetic import make_synthetic_coco, default_dataset, SYNTHETIC_CLASSES
from .cache import ImageCache, build_cache, decode_resized
from .sources import Source, resolve_source
from .split import stratified_split, holdout_split, uncovered_classes
from .augment import BatchAugment, MixBatch, cutout, normalize_batch, IMAGENET_MEAN, IMAGENET_STD
from .loader import (
    CachedDataset,
    EpochBatches,
    make_train_loader,
    make_eval_loader,
    eval_batches,
    default_workers,
)
from .prepare import DataSplit, prepare_split

__all__ = [
    "BadImage",
    "open_rgb",
    "missing_reason",
    "IMAGE_EXTENSIONS",
    "ImageFolderScan",
    "Sample",
    "scan_image_folder",
    "scan_unlabelled",
    "load_source",
    "detect_layout",
    "TEST_DIR",
    "load_mapping",
    "resolve_mapping",
    "available_mappings",
    "CocoDataset",
    "load_coco",
    "iou_matrix",
    "overlap_drops",
    "build_crop_table",
    "step_counts",
    "export_crops",
    "CropExport",
    "crop_step",
    "map_step",
    "overlap_step",
    "aspect_step",
    "split_step",
    "class_counts",
    "safe_image_path",
    "DROP_STEPS",
    "make_synthetic_coco",
    "default_dataset",
    "SYNTHETIC_CLASSES",
    "ImageCache",
    "build_cache",
    "decode_resized",
    "Source",
    "resolve_source",
    "stratified_split",
    "holdout_split",
    "uncovered_classes",
    "BatchAugment",
    "MixBatch",
    "cutout",
    "normalize_batch",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CachedDataset",
    "EpochBatches",
    "make_train_loader",
    "make_eval_loader",
    "eval_batches",
    "default_workers",
    "DataSplit",
    "prepare_split",
]
