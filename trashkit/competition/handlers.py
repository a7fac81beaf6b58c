"""The HTML pages: home, leaderboard, rules, a team's page, sign-in, final picks, admin.

Plain server-rendered forms: everything works without JavaScript. The private leaderboard
and private columns appear only when :func:`.phase.private_visible` says so; before that they
are stored but shown to nobody, the admin included.
"""

from __future__ import annotations

from . import board, phase
from .errors import Refused
from .intake import used_today
from .store import teams
from sqlalchemy import func, select
from .teams import team_for_token
from .tokens import verify_token
from .web import Base


class Index(Base):
    def get(self) -> None:
        self.render(
            "index.html", heading="Class competition", rows=board.public_board(self.site.engine)
        )


class Leaderboard(Base):
    def get(self) -> None:
        engine = self.site.engine
        private = board.private_board(engine, self.site.rules) if self.private() else None
        self.render(
            "leaderboard.html",
            heading="Leaderboard",
            rows=board.public_board(engine),
            private_rows=private,
        )


class RulesPage(Base):
    def get(self) -> None:
        self.render("rules.html", heading="Rules")


def picks_note(rows: list[dict], n: int) -> str:
    """What the private leaderboard will use for this team, in words."""
    chosen = [f"#{r['id']}" for r in rows if r["final_pick"]]
    if chosen:
        return f"you picked {', '.join(chosen)}; the private leaderboard uses these."
    return (
        f"none picked: the private leaderboard will use your best {n} submissions by public score."
    )


class TeamPage(Base):
    def get(self) -> None:
        team = self.team(required=False)
        if team is None:
            self.render("login.html", heading="Team sign-in", action="/login", label="Team token")
            return
        rules, engine = self.site.rules, self.site.engine
        rows = board.history(engine, team["id"])
        pending = any(r["state"] in ("queued", "running") for r in rows)
        self.render(
            "team.html",
            heading="Your team",
            team=team,
            rows=rows,
            private=self.private(),
            quota_left=max(0, rules.daily_limit - used_today(engine, team["id"])),
            picks_note=picks_note(rows, rules.final_picks),
            refresh=5 if pending else None,
            message=self._notice(),
        )

    def _notice(self) -> str | None:
        sub = self.get_query_argument("submitted", None)
        if sub and sub.isdigit():
            return f"Submission #{sub} accepted and queued; this page refreshes until it is scored."
        if self.get_query_argument("picked", None):
            return "Final picks saved."
        return None


class Login(Base):
    def post(self) -> None:
        team = team_for_token(self.site.engine, self.get_body_argument("token", ""))
        if team is None:
            raise Refused("unknown or forged team token; check the token you were given", 401)
        self.set_signed_cookie(
            "team", str(team["id"]), expires_days=30, httponly=True, samesite="Strict"
        )
        self.redirect("/team")


class Logout(Base):
    def post(self) -> None:
        self.clear_cookie("team")
        self.clear_cookie("admin")
        self.redirect("/")


class Picks(Base):
    def post(self) -> None:
        team = self.team()
        if self.closed():
            raise Refused("the competition has closed; final picks can no longer change", 403)
        ids = [int(i) for i in self.get_body_arguments("pick") if i.isdigit()]
        board.set_picks(self.site.engine, self.site.rules, team["id"], ids)
        self.redirect("/team?picked=1")


class Admin(Base):
    def get(self) -> None:
        if not self.is_admin():
            self.render(
                "login.html", heading="Admin sign-in", action="/admin/login", label="Admin token"
            )
            return
        engine = self.site.engine
        with engine.connect() as conn:
            n_teams = conn.execute(select(func.count()).select_from(teams)).scalar_one()
        self.render(
            "admin.html",
            heading="Admin",
            counts=board.counts(engine),
            n_teams=n_teams,
            private=self.private(),
        )


class AdminLogin(Base):
    def post(self) -> None:
        if not verify_token(self.get_body_argument("token", ""), self.site.admin_hash):
            raise Refused("wrong admin token", 401)
        self.set_signed_cookie("admin", "1", expires_days=1, httponly=True, samesite="Strict")
        self.redirect("/admin")


class AdminAction(Base):
    """POST /admin/close and /admin/reveal (admin cookie or admin bearer token)."""

    def post(self, action: str) -> None:
        if not self.is_admin():
            raise Refused("this needs the admin token", 401)
        if action == "close":
            phase.close_now(self.site.engine)
        else:
            phase.reveal(self.site.engine)
        if self.wants_json():
            self.finish({"done": action})
        else:
            self.redirect("/admin")
