"""What every request handler shares: who is asking, refusals as pages or JSON, templates.

Who is asking: an API call carries ``Authorization: Bearer <team token>`` (the Python client,
``curl``); a browser signs in once with the token and then carries a signed, HTTP-only
cookie that names the team. Cookie-carrying forms are protected against cross-site posts by
tornado's XSRF check; bearer calls carry no cookie, so they need none.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine
from tornado.web import RequestHandler

from . import pages, phase
from .errors import Refused
from .rules import load_rules
from .teams import team_by_id, team_for_token
from .tokens import verify_token

log = logging.getLogger("trashkit.competition")

#: the columns of a submission a team may always see (private ones only once revealed)
PUBLIC_COLUMNS = (
    "id",
    "state",
    "kind",
    "filename",
    "image_size",
    "created_at",
    "scored_at",
    "message",
    "attempts",
    "public_f1",
    "public_score",
    "macs",
    "seconds_per_image",
    "final_pick",
)
PRIVATE_COLUMNS = ("private_f1", "private_score")


class Site:
    """The competition a server serves: folder, database, rules, admin hash, a thread pool
    for the slow parts of an upload (the checks, the insert)."""

    def __init__(self, folder: str | Path, engine: Engine):
        self.folder = Path(folder)
        self.engine = engine
        self.rules = load_rules(folder)
        self.admin_hash = json.loads((self.folder / "admin.json").read_text())["admin_token_hash"]
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="checks")

    def cookie_secret(self) -> str:
        """The secret that signs cookies (written by ``create``, mode 0600)."""
        return json.loads((self.folder / "secret.json").read_text())["cookie_secret"]


def view(row: dict, private: bool) -> dict:
    """A submission as its team may see it now."""
    keys = PUBLIC_COLUMNS + (PRIVATE_COLUMNS if private else ())
    return {k: row.get(k) for k in keys}


class Base(RequestHandler):
    """Shared behaviour: identity, refusals, template namespace."""

    @property
    def site(self) -> Site:
        return self.settings["site"]

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header, if any."""
        auth = self.request.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def wants_json(self) -> bool:
        accept = self.request.headers.get("Accept", "")
        return (
            bool(self.bearer())
            or self.request.path.startswith("/api/")
            or ("application/json" in accept)
        )

    def check_xsrf_cookie(self) -> None:
        """Bearer calls carry no cookie, so no cross-site risk; forms are checked."""
        if self.bearer() is None:
            super().check_xsrf_cookie()

    def team(self, required: bool = True) -> dict | None:
        """The team asking: by bearer token, else by signed cookie."""
        token = self.bearer()
        if token is not None:
            found = team_for_token(self.site.engine, token)
            if found is None:
                raise Refused("unknown or forged team token; check the token you were given", 401)
            return found
        cookie = self.get_signed_cookie("team", max_age_days=30)
        found = team_by_id(self.site.engine, int(cookie)) if cookie else None
        if found is None and required:
            raise Refused("sign in with your team token first (Team page)", 401)
        return found

    def is_admin(self) -> bool:
        """The admin token as bearer, or the signed admin cookie."""
        token = self.bearer()
        if token is not None:
            return verify_token(token, self.site.admin_hash)
        return self.get_signed_cookie("admin", max_age_days=1) == b"1"

    def closed(self) -> bool:
        return phase.is_closed(self.site.engine, self.site.rules)

    def private(self) -> bool:
        return phase.private_visible(self.site.engine, self.site.rules)

    def get_template_namespace(self) -> dict:
        ns = super().get_template_namespace()
        rules = self.site.rules
        ns.update(pages.HELPERS, rules=rules, closed=self.closed(), refresh=None)
        ns.update(message=None, message_class="ok", closes=phase.closed_at(self.site.engine, rules))
        ns["cost"] = lambda row: pages.cost(row, rules.edition)
        return ns

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Refused):
            self.set_status(exc.status)
            text = str(exc)
        else:
            text = self._reason
        if self.wants_json():
            self.finish({"error": text})
        else:
            self.render(
                "message.html", heading="Refused", message=text, message_class="error", back="/"
            )

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, Refused):
            log.info("refused %s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)
