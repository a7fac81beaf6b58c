"""Teams: names that are safe everywhere, tokens shown once, and finding a team by token.

A team name is display text only (pages escape it; no file is ever named after it), but the
lecturer's CSV may come from a spreadsheet: names with path characters, control characters
or surrounding blanks are refused with the reason, so nothing odd reaches a page, a log line
or a shell.
"""

from __future__ import annotations

import csv
import time
import unicodedata
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from .store import teams
from .tokens import hash_token, new_token, selector_of, verify_token

MAX_NAME = 60


def check_name(name: object) -> str:
    """The team name, normalised (NFC, stripped), or a ValueError saying what is wrong."""
    if not isinstance(name, str):
        raise ValueError(f"a team name must be text, got {name!r}")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise ValueError("a team name cannot be empty")
    if len(clean) > MAX_NAME:
        raise ValueError(f"team name {clean[:20]!r}... is longer than {MAX_NAME} characters")
    bad = [c for c in clean if c in "/\\" or unicodedata.category(c).startswith("C")]
    if bad or ".." in clean:
        what = repr(bad[0]) if bad else "'..'"
        raise ValueError(
            f"team name {clean!r} holds {what}: path characters (/, \\, ..) and control "
            "characters are not allowed in names"
        )
    return clean


def add_team(engine: Engine, name: str) -> str:
    """Register a team; returns its token (shown once, stored only hashed)."""
    clean = check_name(name)
    token = new_token("team")
    row = {
        "name": clean,
        "selector": selector_of(token),
        "token_hash": hash_token(token),
        "created_at": time.time(),
    }
    try:
        with engine.begin() as conn:
            conn.execute(teams.insert().values(**row))
    except IntegrityError:
        raise ValueError(f"a team named {clean!r} already exists") from None
    return token


def read_team_csv(path: str | Path) -> list[str]:
    """Team names from a CSV with a ``name`` column (or one name per line, no header); every
    name is checked before any team is added, so a bad row adds nothing."""
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(text.splitlines()))
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if rows and [c.strip().lower() for c in rows[0]][:1] == ["name"]:
        rows = rows[1:]
    names = [check_name(r[0]) for r in rows]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{path}: team name(s) listed twice: {dupes}")
    return names


def add_teams(engine: Engine, names: list[str]) -> dict[str, str]:
    """Register several teams; ``{name: token}``. Existing names are refused up front."""
    with engine.connect() as conn:
        taken = set(conn.execute(select(teams.c.name)).scalars())
    clash = sorted(set(names) & taken)
    if clash:
        raise ValueError(f"team(s) already registered: {clash}; nothing was added")
    return {name: add_team(engine, name) for name in names}


def team_for_token(engine: Engine, token: object) -> dict | None:
    """The team (id, name) a token belongs to, or None for a forged, unknown or malformed one."""
    selector = selector_of(token)
    if selector is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(teams).where(teams.c.selector == selector)).mappings().first()
    if row is None or not verify_token(token, row["token_hash"]):
        return None
    return {"id": row["id"], "name": row["name"]}


def team_by_id(engine: Engine, team_id: int) -> dict | None:
    """A team's id and name (what a signed cookie names)."""
    with engine.connect() as conn:
        row = conn.execute(select(teams.c.id, teams.c.name).where(teams.c.id == team_id)).first()
    return {"id": row.id, "name": row.name} if row else None
