"""Automatic checks for the chapters' exercises (one module per chapter: ``ch01`` ... ``ch07``).

An exercise cell in a chapter looks like this (nbgrader's markers; ``make student`` replaces
what lies between them with ``raise NotImplementedError(...)``)::

    def iou_corners(a, b):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

    ch01.check_iou_corners(iou_corners)

A check either prints one line starting with "✓" or raises :class:`ExerciseError` saying
*what* is wrong (the input it tried, what it expected, what it got, a hint) - never just
"False". "Predict before you run" exercises take the student's prediction and the measured
value, and explain the difference either way.
"""

from .core import ExerciseError, NotSolved, close, ok, require

__all__ = ["ExerciseError", "NotSolved", "close", "ok", "require"]
