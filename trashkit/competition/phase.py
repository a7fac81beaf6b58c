"""Where the competition stands: open or closed, private leaderboard hidden or shown.

Closed when the rules' closing time has passed or the lecturer closed it early; the private
leaderboard is shown after the close (``reveal_at_close``, the default) or once the lecturer
reveals it. Why the admin actions live in the database and not in rules.json: every server and
worker process sees them at once, on every machine sharing the database.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine

from .rules import Rules
from .store import get_setting, set_setting


def closed_at(engine: Engine, rules: Rules) -> float:
    """When submissions stop: the rules' time, or the lecturer's earlier close."""
    early = get_setting(engine, "closed_at")
    return min(rules.closes_at(), float(early)) if early else rules.closes_at()


def is_closed(engine: Engine, rules: Rules, now: float | None = None) -> bool:
    """True once no submission is accepted any more."""
    return (time.time() if now is None else now) >= closed_at(engine, rules)


def private_visible(engine: Engine, rules: Rules, now: float | None = None) -> bool:
    """True when pages may show private F1 and the private leaderboard."""
    if get_setting(engine, "revealed") == "1":
        return True
    return rules.reveal_at_close and is_closed(engine, rules, now)


def close_now(engine: Engine) -> float:
    """The lecturer's close: from now on submissions are refused."""
    now = time.time()
    set_setting(engine, "closed_at", repr(now))
    return now


def reveal(engine: Engine) -> None:
    """Show the private leaderboard (even before the close, if the lecturer wants)."""
    set_setting(engine, "revealed", "1")
