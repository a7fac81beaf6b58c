"""Scoring (chapter 5): the competition's formulas, evaluating a checkpoint, the leaderboard.

* :mod:`.formulas`    -- both editions' scores and their back-derived baselines;
* :mod:`.evaluate`    -- macro-F1, official MACs, latency, submit time, the submission file;
* :mod:`.leaderboard` -- every run in one validated table, and finding runs by what made them.
"""

from __future__ import annotations

from .evaluate import (
    checkpoint_sha256,
    evaluate,
    file_batches,
    held_out_split,
    model_cost,
    predict_files,
    resample_halves,
    score_at_size,
    score_folder,
    score_held_out,
    score_run_split,
    submission,
    timed_predictions,
)
from .formulas import (
    COMPETITION_TEST_IMAGES,
    F1_BASELINE_MACS,
    F1_BASELINE_TIME,
    MACS_BASELINE,
    TIME_BASELINE,
    calculator,
    implied_f1_time,
    score_f1_part,
    score_macs,
    score_time,
    solve_macs_baselines,
    solve_time_baseline,
    time_baseline_from_row,
)
from .leaderboard import (
    cross_chapter_runs,
    find_checkpoint,
    find_runs,
    leaderboard,
    plot_cross_chapter,
)

__all__ = [
    "COMPETITION_TEST_IMAGES",
    "F1_BASELINE_MACS",
    "F1_BASELINE_TIME",
    "MACS_BASELINE",
    "TIME_BASELINE",
    "calculator",
    "checkpoint_sha256",
    "cross_chapter_runs",
    "evaluate",
    "file_batches",
    "find_checkpoint",
    "find_runs",
    "held_out_split",
    "implied_f1_time",
    "leaderboard",
    "model_cost",
    "plot_cross_chapter",
    "predict_files",
    "resample_halves",
    "score_at_size",
    "score_f1_part",
    "score_folder",
    "score_held_out",
    "score_macs",
    "score_run_split",
    "score_time",
    "solve_macs_baselines",
    "solve_time_baseline",
    "submission",
    "time_baseline_from_row",
    "timed_predictions",
]
