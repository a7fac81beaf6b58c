"""What every exercise check shares: one error type and three small helpers."""

from __future__ import annotations

import math


class ExerciseError(AssertionError):
    """An answer that is not right yet; the message says what is wrong and how to look."""


class NotSolved(ExerciseError, NotImplementedError):
    """The exercise still holds the student copy's stub (still a NotImplementedError, so a
    student copy stops with the same kind of error whichever cell meets the stub first)."""


def ok(message: str) -> str:
    """Print and return a success line (a check that passes says what it verified)."""
    line = f"✓ {message}"
    print(line)
    return line


def require(condition: bool, message: str) -> None:
    """Raise :class:`ExerciseError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


def close(got: float, expected: float, rel: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """``got`` equals ``expected`` up to rounding (numbers a student computes by hand)."""
    try:
        return math.isclose(float(got), float(expected), rel_tol=rel, abs_tol=abs_tol)
    except (TypeError, ValueError):
        return False


def call(fn, *args, name: str = "your function"):
    """Call the student's function; a stub or a crash becomes a readable ExerciseError."""
    try:
        return fn(*args)
    except NotImplementedError as exc:
        raise NotSolved(f"{name} is not written yet ({exc})") from None
    except ExerciseError:
        raise
    except Exception as exc:  # the student's code crashed: show where, not a bare traceback
        raise ExerciseError(f"{name}{args!r} raised {type(exc).__name__}: {exc}") from exc
