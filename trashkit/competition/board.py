"""Leaderboards and a team's history, as plain rows for the pages and the API.

Public leaderboard: each team's best public score over all its scored submissions (lower is
better; ties go to the earlier submission). Private leaderboard (only once the phase allows
it): each team's best private score over its *final picks*; a team that picked none is ranked
on its best ``final_picks`` submissions by public score, and the row says so.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from .errors import Refused
from .rules import Rules
from .store import submissions as subs
from .store import teams


def _scored(engine: Engine) -> list[dict]:
    """Every scored submission with its team's name."""
    query = (
        select(subs, teams.c.name.label("team"))
        .join(teams, teams.c.id == subs.c.team_id)
        .where(subs.c.state == "scored")
        .order_by(subs.c.id)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _by_team(rows: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["team_id"], []).append(r)
    return out


def _ranked(rows: list[dict], key: str) -> list[dict]:
    rows.sort(key=lambda r: (r[key], r["created_at"], r["id"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def public_board(engine: Engine) -> list[dict]:
    """One row per team: its best public submission (no private number in it)."""
    best = []
    for mine in _by_team(_scored(engine)).values():
        top = min(mine, key=lambda r: (r["public_score"], r["created_at"], r["id"]))
        best.append({**_public_part(top), "entries": len(mine)})
    return _ranked(best, "score")


def _public_part(r: dict) -> dict:
    """The columns anyone may see now."""
    return {
        "team": r["team"],
        "submission": r["id"],
        "score": r["public_score"],
        "f1": r["public_f1"],
        "macs": r["macs"],
        "seconds_per_image": r["seconds_per_image"],
        "created_at": r["created_at"],
        "id": r["id"],
    }


def picks_of(mine: list[dict], n_picks: int) -> tuple[list[dict], bool]:
    """A team's final picks, or its best ``n_picks`` by public score: ``(rows, chosen)``."""
    chosen = [r for r in mine if r["final_pick"]]
    if chosen:
        return chosen, True
    by_public = sorted(mine, key=lambda r: (r["public_score"], r["created_at"], r["id"]))
    return by_public[:n_picks], False


def private_board(engine: Engine, rules: Rules) -> list[dict]:
    """One row per team: the best private score among its final picks."""
    out = []
    for mine in _by_team(_scored(engine)).values():
        picks, chosen = picks_of(mine, rules.final_picks)
        top = min(picks, key=lambda r: (r["private_score"], r["created_at"], r["id"]))
        out.append(
            {
                **_public_part(top),
                "score": top["private_score"],
                "f1": top["private_f1"],
                "public_score": top["public_score"],
                "picks": [p["id"] for p in picks],
                "picked_by_team": chosen,
            }
        )
    return _ranked(out, "score")


def history(engine: Engine, team_id: int) -> list[dict]:
    """Every accepted submission of a team, newest first (private columns included: the
    page decides what to show)."""
    query = select(subs).where(subs.c.team_id == team_id).order_by(subs.c.id.desc())
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def set_picks(engine: Engine, rules: Rules, team_id: int, ids: list[int]) -> list[int]:
    """Replace a team's final picks; only its own scored submissions, at most ``final_picks``."""
    ids = sorted({int(i) for i in ids})
    if len(ids) > rules.final_picks:
        raise Refused(f"at most {rules.final_picks} final picks, got {len(ids)}")
    with engine.begin() as conn:
        ok = set(
            conn.execute(
                select(subs.c.id).where(
                    subs.c.team_id == team_id, subs.c.state == "scored", subs.c.id.in_(ids)
                )
            ).scalars()
        )
        wrong = [i for i in ids if i not in ok]
        if wrong:
            raise Refused(f"submission(s) {wrong} are not scored submissions of your team")
        conn.execute(update(subs).where(subs.c.team_id == team_id).values(final_pick=False))
        if ids:
            conn.execute(update(subs).where(subs.c.id.in_(ids)).values(final_pick=True))
    return ids


def counts(engine: Engine) -> dict[str, int]:
    """How many submissions are in each job state (the admin page, the load test)."""
    from sqlalchemy import func

    with engine.connect() as conn:
        rows = conn.execute(select(subs.c.state, func.count()).group_by(subs.c.state)).all()
    return {state: n for state, n in rows}
