"""``python -m trashkit competition serve DIR``: the web server, and its workers if asked.

One tornado process serves every page and upload; scoring never runs in a request. By
default ``serve`` also starts one worker process (``--workers N``; 0 when the workers run
elsewhere) and starts it again if it dies. It binds 127.0.0.1 unless told otherwise and
prints its URL. SIGTERM or Ctrl-C stops the server and its workers; a job a worker was
scoring goes back to the queue (see :mod:`.worker`).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.web import Application

from . import api, handlers, pages
from .store import db_url, open_store
from .web import Site


def make_app(folder: str | Path, engine: Engine) -> Application:
    """The tornado application of a competition folder."""
    site = Site(folder, engine)
    routes = [
        (r"/", handlers.Index),
        (r"/leaderboard", handlers.Leaderboard),
        (r"/rules", handlers.RulesPage),
        (r"/team", handlers.TeamPage),
        (r"/login", handlers.Login),
        (r"/logout", handlers.Logout),
        (r"/picks", handlers.Picks),
        (r"/admin", handlers.Admin),
        (r"/admin/login", handlers.AdminLogin),
        (r"/admin/(close|reveal)", handlers.AdminAction),
        (r"/submit", api.Submit),
        (r"/api/submissions/([0-9]{1,12})", api.SubmissionApi),
        (r"/api/team", api.TeamApi),
        (r"/api/picks", api.PicksApi),
        (r"/api/rules", api.RulesApi),
        (r"/api/leaderboard", api.LeaderboardApi),
    ]
    return Application(
        routes,
        site=site,
        cookie_secret=site.cookie_secret(),
        xsrf_cookies=True,
        template_loader=pages.loader(),
        compress_response=False,
    )


def worker_command(folder: str | Path, db: str | None) -> list[str]:
    """The command line of one worker process for this competition."""
    cmd = [sys.executable, "-m", "trashkit", "competition", "worker", str(folder)]
    return cmd + (["--db", db] if db else [])


class Workers:
    """Worker processes started by ``serve``, restarted when one dies."""

    def __init__(self, cmd: list[str], n: int):
        self.cmd, self.procs = cmd, [subprocess.Popen(cmd) for _ in range(n)]

    def keep_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                print(f"worker {proc.pid} ended ({proc.returncode}); starting another", flush=True)
                self.procs[i] = subprocess.Popen(self.cmd)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _serve(folder: Path, host: str, port: int, db: str | None, n_workers: int) -> None:
    engine = open_store(db_url(folder, db))
    app = make_app(folder, engine)
    limit = int(app.settings["site"].rules.limits["upload_mb"] * 2**20 + api.ENVELOPE)
    server = HTTPServer(app, max_body_size=limit, body_timeout=600)
    sockets = bind_sockets(port, host)
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    print(f"competition server: http://{host}:{bound}/  (Ctrl-C stops it)", flush=True)
    workers = Workers(worker_command(folder, db), n_workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            workers.keep_alive()
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except asyncio.TimeoutError:
                pass
    finally:
        server.stop()
        workers.stop()
        engine.dispose()


def serve(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    db: str | None = None,
    workers: int = 1,
) -> None:
    """Run the server (and ``workers`` worker processes) until SIGTERM or Ctrl-C."""
    asyncio.run(_serve(Path(folder), host, port, db, workers))


def serve_in_thread(folder: str | Path, engine: Engine, host: str = "127.0.0.1"):
    """A server on a free port in a background thread: ``(url, stop)``. For tests and a
    notebook's rehearsal; no workers are started (run a :class:`.worker.Worker` beside it)."""
    ready, box = threading.Event(), {}

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        app = make_app(folder, engine)
        limit = int(app.settings["site"].rules.limits["upload_mb"] * 2**20 + api.ENVELOPE)
        server = HTTPServer(app, max_body_size=limit)
        sockets = bind_sockets(0, host)
        server.add_sockets(sockets)
        box.update(url=f"http://{host}:{sockets[0].getsockname()[1]}", loop=IOLoop.current())
        ready.set()
        IOLoop.current().start()
        server.stop()

    thread = threading.Thread(target=run, daemon=True, name="competition-server")
    thread.start()
    ready.wait(30)

    def stop() -> None:
        box["loop"].add_callback(box["loop"].stop)
        thread.join(10)

    stop_fn: Callable[[], None] = stop
    return box["url"], stop_fn
