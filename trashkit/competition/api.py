"""The upload and the JSON API (what :mod:`.client` calls).

POST /submit takes one multipart field ``model``. Its body is streamed: who is asking, whether
the competition is open and the declared ``Content-Length`` are all checked from the headers
alone, so a 2 GB upload is refused before one byte of it is read. The body is then checked in
memory (:func:`.checks.check_upload`) in a thread, and only an accepted upload is stored
(:func:`.intake.accept`). A browser gets the team page back; an API client gets JSON.
"""

from __future__ import annotations

import json
import re

from tornado.httputil import parse_body_arguments
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler, stream_request_body

from . import board
from .errors import Refused
from .intake import accept, already_sent, check_quota, used_today
from .phase import closed_at
from .pages import when
from .web import Base, view

#: room for the multipart envelope around the file
ENVELOPE = 2**20
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


@stream_request_body
class Submit(Base):
    def check_xsrf_cookie(self) -> None:
        """Deferred: a streamed body is not parsed yet; :meth:`post` checks forms."""

    def prepare(self) -> None:
        self._body = bytearray()
        self._team = self.team()
        if self.closed():
            closed = when(closed_at(self.site.engine, self.site.rules))
            raise Refused(f"the competition closed at {closed}; no more submissions", 403)
        key = self.request.headers.get("Idempotency-Key")
        if not already_sent(self.site.engine, self._team["id"], key):  # a retry gets its answer
            check_quota(used_today(self.site.engine, self._team["id"]), self.site.rules)
        length = self.request.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Refused("send the upload with a Content-Length header", 411)
        limit_mb = self.site.rules.limits["upload_mb"]
        if int(length) > limit_mb * 2**20 + ENVELOPE:
            raise Refused(
                f"the upload is {int(length) / 2**20:,.1f} MiB; this competition takes at "
                f"most {limit_mb} MiB per file",
                413,
            )
        self.request.connection.set_max_body_size(int(limit_mb * 2**20 + ENVELOPE))

    def data_received(self, chunk: bytes) -> None:
        if not self._finished:
            self._body.extend(chunk)

    def _upload(self) -> tuple[str, bytes]:
        """The file of the ``model`` field (form fields are XSRF-checked first)."""
        args: dict = {}
        files: dict = {}
        ctype = self.request.headers.get("Content-Type", "")
        parse_body_arguments(ctype, bytes(self._body), args, files, self.request.headers)
        if self.bearer() is None:
            for k, v in args.items():
                self.request.body_arguments.setdefault(k, []).extend(v)
                self.request.arguments.setdefault(k, []).extend(v)
            RequestHandler.check_xsrf_cookie(self)
        if not files.get("model"):
            raise Refused("no file in the upload: send it as the multipart field 'model'")
        f = files["model"][0]
        return f.filename, f.body

    async def post(self) -> None:
        site = self.site
        name, data = self._upload()
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and not _KEY.fullmatch(key):
            raise Refused("Idempotency-Key must be 1-64 letters, digits, - or _")
        from .checks import check_upload  # PyTorch: loaded by the first upload, not at start

        loop = IOLoop.current()
        checked = await loop.run_in_executor(site.pool, check_upload, data, name, site.rules)
        row, new = await loop.run_in_executor(
            site.pool, accept, site.engine, site.folder, site.rules, self._team, checked, data, key
        )
        if not self.wants_json():
            self.redirect(f"/team?submitted={row['id']}", status=303)
            return
        left = site.rules.daily_limit - used_today(site.engine, self._team["id"])
        self.finish(
            {
                **view(row, False),
                "new": new,
                "quota_left": max(0, left),
                "note": "queued for scoring" if new else "already received (same key)",
            }
        )


class SubmissionApi(Base):
    def get(self, sub_id: str) -> None:
        team = self.team()
        rows = [r for r in board.history(self.site.engine, team["id"]) if r["id"] == int(sub_id)]
        if not rows:
            raise Refused(f"your team has no submission #{sub_id}", 404)
        self.finish(view(rows[0], self.private()))


class TeamApi(Base):
    def get(self) -> None:
        team = self.team()
        engine, rules = self.site.engine, self.site.rules
        rows = board.history(engine, team["id"])
        self.finish(
            {
                "team": team["name"],
                "quota_left": max(0, rules.daily_limit - used_today(engine, team["id"])),
                "daily_limit": rules.daily_limit,
                "final_picks": [r["id"] for r in rows if r["final_pick"]],
                "submissions": [view(r, self.private()) for r in rows],
            }
        )


class PicksApi(Base):
    def post(self) -> None:
        team = self.team()
        if self.closed():
            raise Refused("the competition has closed; final picks can no longer change", 403)
        try:
            ids = json.loads(self.request.body or b"{}").get("ids", [])
        except (ValueError, AttributeError):
            raise Refused('send JSON like {"ids": [3, 7]}') from None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise Refused('send JSON like {"ids": [3, 7]}')
        self.finish(
            {"final_picks": board.set_picks(self.site.engine, self.site.rules, team["id"], ids)}
        )


class RulesApi(Base):
    def get(self) -> None:
        from dataclasses import asdict

        self.finish({**asdict(self.site.rules), "closed": self.closed()})


class LeaderboardApi(Base):
    def get(self) -> None:
        engine = self.site.engine
        private = board.private_board(engine, self.site.rules) if self.private() else None
        self.finish({"public": board.public_board(engine), "private": private})
