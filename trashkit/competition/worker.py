"""The scoring worker: claim a job, run the model in its own process, write the result.

``python -m trashkit competition worker DIR``; start one per core you can spare, on this
machine or (with a shared PostgreSQL database and the competition folder on a shared disk)
on others. A lease heartbeat runs beside the model; SIGTERM or Ctrl-C stops the worker
cleanly: the model process is killed and the job handed back untouched, for the next worker.
A worker killed without warning (SIGKILL, power loss) loses nothing either: its lease runs
out and another worker takes the job (see :mod:`.queue`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from . import queue
from .grading import BadResult, grade, image_cache, load_hidden
from .intake import find_stored
from .rules import Rules, load_rules
from .runner import Runner


class Worker:
    """One scoring loop over a competition folder and its database."""

    def __init__(
        self,
        folder: str | Path,
        engine: Engine,
        runner_cmd: list[str] | None = None,
        lease_s: float = queue.LEASE_S,
        poll_s: float = 1.0,
    ):
        self.folder = Path(folder)
        self.engine = engine
        self.rules: Rules = load_rules(folder)
        self.hidden = load_hidden(folder, self.rules)
        self.runner = Runner(runner_cmd)
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.name = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        self.stop = threading.Event()
        self.current: tuple[int, str] | None = None

    def job_for(self, sub: dict, out: Path) -> dict:
        """The model process's job: the model file, the images, the limits. No labels."""
        limits = self.rules.limits
        return {
            "model": str(sub.get("path") or find_stored(self.folder, sub["id"])),
            "kind": sub["kind"],
            "images": str(image_cache(self.folder, self.hidden, sub["image_size"])),
            "image_size": sub["image_size"],
            "classes": self.rules.classes,
            "threads": int(limits["threads"]),
            "timed": self.rules.edition == "time",
            "memory_mb": int(limits["run_memory_mb"]),
            "out": str(out),
        }

    def score(self, sub: dict) -> tuple[str, dict]:
        """Run one submission's model; ``(final state, result columns)``. ``sub["path"]``, when
        given, is scored instead of the stored upload (the audit's re-trained checkpoint)."""
        out = Path(tempfile.mkdtemp(prefix=f"trashkit-job{sub['id']}-"))
        try:
            ran = self.runner.run(self.job_for(sub, out), self.rules.limits["run_timeout_s"])
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if ran["state"] != "ok":
            return ran["state"], {"message": ran["message"]}
        try:
            return "scored", grade(ran["result"], self.hidden, self.rules)
        except BadResult as exc:
            return "failed", {"message": str(exc)}

    def _heartbeat(self, job_id: int, token: str, done: threading.Event) -> None:
        """Extend the lease while the model runs (a third of the lease at a time)."""
        while not done.wait(self.lease_s / 3):
            if not queue.extend(self.engine, job_id, token, self.lease_s):
                return

    def step(self) -> bool:
        """Claim and score one job; False when the queue was empty."""
        sub = queue.claim(self.engine, self.name, self.lease_s)
        if sub is None:
            return False
        self.current = (sub["id"], sub["claim"])
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(sub["id"], sub["claim"], done))
        beat.start()
        try:
            state, values = self.score(sub)
        finally:
            done.set()
            beat.join()
        self.current = None
        if self.stop.is_set() and state != "scored":
            queue.release(self.engine, sub["id"], sub["claim"])
        else:
            queue.finish(self.engine, sub["id"], sub["claim"], state, values)
        return True

    def run(self, max_jobs: int | None = None, idle_exit_s: float | None = None) -> int:
        """Loop until stopped (or ``max_jobs`` done, or idle for ``idle_exit_s``)."""
        done, idle_since = 0, time.monotonic()
        try:
            while not self.stop.is_set() and (max_jobs is None or done < max_jobs):
                if self.step():
                    done, idle_since = done + 1, time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                else:
                    self.stop.wait(self.poll_s)
        finally:
            self.runner.close()
        return done

    def handle_signals(self) -> None:
        """SIGTERM / SIGINT: stop after handing the current job back (main thread only)."""

        def _stop(signum, _frame):
            self.stop.set()
            self.runner.close()
            if self.current is not None:
                self.runner.abort()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
