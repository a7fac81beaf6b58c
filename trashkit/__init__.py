"""trashkit: a teaching workbook about model optimization for a trash-sorting robot.

The package is layered; a module imports only from layers above it in this list::

    paths, runs   where files go; one output folder per run        (import nothing of ours)
    data          COCO -> crops, folders, synthetic default, cache, augmentation
    complexity    analytic counter, official MACs, latency, guideline studies
    models        families, YAML backbone description, ArcFace head    (uses complexity)
    train         recipe, checkpoints, resume, distillation  (data, models, complexity)
    scoring       F1, both scores, submission, leaderboard      (models, complexity)
    search        Optuna                                        (train, models, complexity)
    compress      pruning, decomposition, ONNX Runtime, int8    (train, scoring, models)
    eda           chapter-1 figures                              (data)

Notebooks sit on top and may call anything; nothing here imports a notebook.
"""

__version__ = "0.1.0"

CLASSES_6 = ("Metal", "Paper", "Paperpack", "Plastic", "Plasticbag", "Styrofoam")
CLASSES_9 = ("Battery", "Clothing", "Glass", "Metal", "Paper", "Paperpack", "Plastic",
             "Plasticbag", "Styrofoam")
