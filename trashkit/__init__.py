"""trashkit: a teaching workbook about model optimization for a trash-sorting robot.

The package is layered (lower layers never import higher ones)::

    data        COCO -> crops, folders, synthetic default, cache, augmentation
    runs        one output folder per run, never overwritten
    eda         figures for chapter 1 (uses data)
"""

__version__ = "0.1.0"

CLASSES_6 = ("Metal", "Paper", "Paperpack", "Plastic", "Plasticbag", "Styrofoam")
CLASSES_9 = ("Battery", "Clothing", "Glass", "Metal", "Paper", "Paperpack", "Plastic",
             "Plasticbag", "Styrofoam")
