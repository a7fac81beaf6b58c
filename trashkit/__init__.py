"""trashkit: a teaching workbook about model optimization for a trash-sorting robot.

The package is layered; a module imports only from the layers below it (``lint-imports``
checks this, with the contract in pyproject.toml; modules on one line are independent)::

    __main__                       command line: demo, book, student, train, search
    book | exercises               the HTML book and student copies | the chapters' checks
    search | compress              Optuna (ch. 6) | pruning, decomposition, ONNX, int8 (ch. 7)
    scoring                        both competition scores, submission, leaderboard (ch. 5)
    train                          the recipe, split by concept: config, losses, callbacks,
                                   setup, loop, report, distributed (ch. 4)
    embeddings | eda               metric learning: embeddings, nearest-neighbour prediction |
                                   chapter-1 figures
    checkpoint | metrics           one checkpoint type (plain data, safe to load) | one
                                   prediction path and macro-F1 for every chapter
    models                         families, the YAML backbone table, the ArcFace head
    data | complexity              files -> crops -> cache -> splits -> augmented batches |
                                   analytic counter, official MACs, latency, guidelines
    runs | plots | notebook        run folders and atomic writes | shared figures |
                                   papermill parameter check
    paths                          where data, caches and outputs live

Notebooks sit on top and may call anything; nothing here imports a notebook.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # one version, pyproject.toml's, read from the installed package's metadata
    __version__ = version("trashkit")
except PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"
