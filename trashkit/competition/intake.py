"""Taking in a checked upload: the daily quota, the stored file and the queued job, at once.

Why one transaction: two uploads of one team arriving together must not both slip under the
quota. The team's row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN
IMMEDIATE`` on SQLite), then today's accepted submissions are counted and the new row is
inserted; the file is written under ``submissions/<id><ext>`` (the id, never a name a student
chose) before the commit, and removed if the commit fails. Only accepted uploads count towards
the quota: a refused one never reaches this module. A client that retries with the same
idempotency key gets its first submission back, not a second one.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select

from ..runs import write_atomic
from .errors import Refused
from .rules import Rules
from .store import submissions as subs
from .store import teams

if TYPE_CHECKING:  # the checks import PyTorch; the server imports them on the first upload
    from .checks import Checked


def utc_day(ts: float) -> str:
    """The UTC day a timestamp falls on (the quota's day)."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


def next_reset(ts: float) -> str:
    """When the quota starts again: the next midnight UTC."""
    day = datetime.fromtimestamp(ts, timezone.utc).date() + timedelta(days=1)
    return f"{day.isoformat()} 00:00 UTC"


def used_today(engine: Engine, team_id: int, now: float | None = None) -> int:
    """Accepted submissions of a team on the current UTC day."""
    day = utc_day(time.time() if now is None else now)
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(subs.c.team_id == team_id, subs.c.day == day)
        ).scalar_one()


def already_sent(engine: Engine, team_id: int, key: str | None) -> bool:
    """True when this team already stored an upload under this idempotency key (a retry)."""
    with engine.connect() as conn:
        return _existing(conn, team_id, key) is not None


def _existing(conn, team_id: int, key: str | None) -> dict | None:
    if not key:
        return None
    row = (
        conn.execute(select(subs).where(subs.c.team_id == team_id, subs.c.client_key == key))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def check_quota(used: int, rules: Rules, now: float | None = None) -> None:
    """Refuse when ``used`` accepted submissions today reach the daily limit. The server
    asks this before reading an upload (a cheap early answer) and again, atomically, in
    :func:`accept`."""
    now = time.time() if now is None else now
    if used >= rules.daily_limit:
        raise Refused(
            f"daily limit reached: {used} of {rules.daily_limit} submissions accepted today "
            f"(UTC); the next one is possible from {next_reset(now)}",
            status=429,
        )


def _row(team_id: int, now: float, checked: Checked, client_key: str | None) -> dict:
    """The new submission's columns: queued, not yet tried."""
    return {
        "team_id": team_id,
        "created_at": now,
        "day": utc_day(now),
        "client_key": client_key or None,
        "kind": checked.kind,
        "filename": checked.filename,
        "sha256": checked.sha256,
        "size_bytes": checked.size_bytes,
        "image_size": checked.image_size,
        "state": "queued",
        "attempts": 0,
        "writes": 0,
        "final_pick": False,
    }


def accept(
    engine: Engine,
    folder: str | Path,
    rules: Rules,
    team: dict,
    checked: Checked,
    data: bytes,
    client_key: str | None = None,
) -> tuple[dict, bool]:
    """Store an accepted upload and queue its job: ``(submission row, is_new)``."""
    now = time.time()
    written: list[Path] = []
    try:
        with engine.connect().execution_options(immediate=True) as conn, conn.begin():
            conn.execute(select(teams.c.id).where(teams.c.id == team["id"]).with_for_update())
            earlier = _existing(conn, team["id"], client_key)
            if earlier is not None:
                return earlier, False
            used = conn.execute(
                select(func.count()).where(subs.c.team_id == team["id"], subs.c.day == utc_day(now))
            ).scalar_one()
            check_quota(used, rules, now)
            row = _row(team["id"], now, checked, client_key)
            new_id = conn.execute(subs.insert().values(**row)).inserted_primary_key[0]
            path = stored_path(folder, new_id, checked.ext)
            path.parent.mkdir(exist_ok=True)
            written.append(path)
            write_atomic(path, data)
    except BaseException:
        for path in written:  # the row was rolled back: so is the file
            path.unlink(missing_ok=True)
        raise
    return {**row, "id": new_id}, True


def stored_path(folder: str | Path, sub_id: int, ext: str) -> Path:
    """Where an accepted upload is kept: named by its id only."""
    return Path(folder) / "submissions" / f"{int(sub_id)}{ext}"


def find_stored(folder: str | Path, sub_id: int) -> Path:
    """The stored file of a submission, whatever its extension."""
    for ext in (".pt", ".pth", ".onnx"):
        path = stored_path(folder, sub_id, ext)
        if path.is_file():
            return path
    raise FileNotFoundError(f"submission {sub_id}: stored file missing")
