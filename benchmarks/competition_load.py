"""Load test of the class competition server: many students, two workers, a crash and a restart.

    python benchmarks/competition_load.py --students 100 --duration 60 --daily-limit 2

Everything runs on this machine and talks to 127.0.0.1 only: a rehearsal competition on the
synthetic default's test crops, ``competition serve --workers 0`` on a free loopback port, two
``competition worker`` processes, and one thread per simulated student that, until the time is
up, reads pages (home, leaderboard, rules, its team), submits stand-in checkpoints (until the
daily limit refuses them) and now and then a bad file (a pickle, a checkpoint for the wrong
classes). Mid-run one worker is killed with SIGKILL while it scores a job (and a new one
started), and the server is killed and started again on the same port; clients retry dropped
connections with the same idempotency key. Then the queue is drained and the database checked:
every accepted submission must be scored exactly once (``writes == 1``), none lost.

Prints throughput, p50/p95 page and upload times, accepted / refused / scored counts, and the
checks. ``run(...)`` returns the same figures (tests/test_competition_load.py runs a small one).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import requests
from sqlalchemy import select

from trashkit.competition import client
from trashkit.competition.rules import create_competition
from trashkit.competition.sample import random_checkpoint, synthetic_test_folder
from trashkit.competition.store import db_url, open_store, submissions
from trashkit.competition.teams import add_team

HOST = "127.0.0.1"  # the only address this benchmark ever talks to
PAGES = ("/", "/leaderboard", "/rules", "/api/team")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare(folder: Path, students: int, daily_limit: int) -> tuple[list[str], list[Path], dict]:
    """The competition, its teams' tokens, stand-in checkpoints and bad files."""
    test = synthetic_test_folder(
        folder / "labelled", folder / "synthetic", n_train_images=60, n_test_images=12
    )
    closes = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ")
    rules, _ = create_competition(folder / "comp", test, "macs", closes, daily_limit=daily_limit)
    engine = open_store(db_url(folder / "comp"))
    tokens = [add_team(engine, f"team {i:03d}") for i in range(students)]
    engine.dispose()
    good = [
        random_checkpoint(folder / f"good{i}.pt", rules.classes, image_size=s, seed=i)
        for i, s in enumerate((40, 48, 56))
    ]
    wrong = random_checkpoint(folder / "wrong.pt", ["A", "B"], image_size=48).read_bytes()
    bad = {"pickle.pt": pickle.dumps({"weights": 1}), "wrong-classes.pt": wrong}
    return tokens, good, bad


class Stats:
    """Thread-safe tallies of what the students saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.page_s: list[float] = []
        self.submit_s: list[float] = []
        self.accepted: dict[int, int] = {}  # submission id -> times the server said accepted
        self.refused: dict[str, int] = {}
        self.errors = 0

    def add(self, field: str, value) -> None:
        with self.lock:
            if field == "accepted":
                self.accepted[value] = self.accepted.get(value, 0) + 1
            elif field == "refused":
                self.refused[value] = self.refused.get(value, 0) + 1
            elif field == "errors":
                self.errors += 1
            else:
                getattr(self, field).append(value)


def student(
    url: str, token: str, good: list[Path], bad: dict, stop: float, stats: Stats, seed: int
):
    """One student until ``stop``: pages, uploads, a bad file now and then."""
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < stop:
        roll = rng.random()
        t0 = time.perf_counter()
        try:
            if roll < 0.6:
                r = session.get(url + rng.choice(PAGES), timeout=60)
                r.raise_for_status()
                stats.add("page_s", time.perf_counter() - t0)
            elif roll < 0.9:
                answer = client.submit(url, token, rng.choice(good))
                stats.add("submit_s", time.perf_counter() - t0)
                stats.add("accepted", answer["id"])
            else:
                name, data = rng.choice(sorted(bad.items()))
                upload(url, token, name, data)
        except client.SubmissionError as exc:
            reason = {429: "daily limit", 400: "bad file", 0: "unreachable"}.get(
                exc.status, str(exc.status)
            )
            stats.add("refused", reason)
        except requests.RequestException:
            stats.add("errors", 1)  # a page during the server restart
        time.sleep(rng.uniform(0.5, 2.0))  # reading time


def upload(url: str, token: str, name: str, data: bytes) -> None:
    """A raw upload of a bad file (the client only sends files from disk)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        client.submit(url, token, path)


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def wait_up(url: str, timeout: float = 120) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            requests.get(url + "/rules", timeout=5)
            return time.monotonic() - t0
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"server at {url} did not come up")


def rows(folder: Path) -> list[dict]:
    engine = open_store(db_url(folder), create=False)
    with engine.connect() as conn:
        out = [dict(r) for r in conn.execute(select(submissions)).mappings()]
    engine.dispose()
    return out


class Cluster:
    """The server and the workers as processes, with the chaos of the run."""

    def __init__(self, folder: Path, workers: int, lease: float):
        self.folder, self.port = folder, free_port()
        self.url = f"http://{HOST}:{self.port}"
        py = [sys.executable, "-m", "trashkit", "competition"]
        self.server_cmd = py + [
            "serve",
            str(folder),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            "0",
        ]
        self.worker_cmd = py + ["worker", str(folder), "--lease", str(lease)]
        self.server = start(self.server_cmd, folder / "server.log")
        self.workers = [start(self.worker_cmd, folder / "workers.log") for _ in range(workers)]
        self.events: list[str] = []

    def kill_worker_mid_job(self, timeout: float = 120) -> int | None:
        """SIGKILL a worker while it holds a running job (whichever claims one first); start a
        new one in its place."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            running = [r for r in rows(self.folder) if r["state"] == "running"]  # one read a poll
            for i, victim in enumerate(self.workers):
                held = [r for r in running if f":{victim.pid}:" in (r["claimed_by"] or "")]
                if held:
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    self.workers[i] = start(self.worker_cmd, self.folder / "workers.log")
                    self.events.append(
                        f"worker {victim.pid} killed (SIGKILL) while scoring job #{held[0]['id']}"
                    )
                    return held[0]["id"]
            time.sleep(0.05)
        self.events.append("no worker held a running job: nothing killed")
        return None

    def restart_server(self) -> float:
        """SIGKILL the server and start it again on the same port; seconds it was down."""
        t0 = time.monotonic()
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()
        self.server = start(self.server_cmd, self.folder / "server.log")
        wait_up(self.url)
        down = time.monotonic() - t0
        self.events.append(f"server killed (SIGKILL) and restarted: down {down:.1f} s")
        return down

    def stop(self) -> None:
        for proc in [self.server, *self.workers]:
            proc.send_signal(signal.SIGTERM)
        for proc in [self.server, *self.workers]:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def drain(folder: Path, timeout: float) -> float:
    """Wait until no job is queued or running; seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if all(r["state"] in ("scored", "failed", "timed_out") for r in rows(folder)):
            return time.monotonic() - t0
        time.sleep(1.0)
    raise TimeoutError(f"the queue did not drain within {timeout:.0f} s")


def chaos(cluster: Cluster, duration: float, out: dict) -> None:
    """Kill a worker mid-job a third of the way in, restart the server at two thirds."""
    time.sleep(duration / 3)
    t0 = time.monotonic()  # on a loaded machine workers start late: wait up to a minute
    out["killed_job"] = cluster.kill_worker_mid_job(timeout=max(duration / 3, 60.0))
    time.sleep(max(0.0, duration / 3 - (time.monotonic() - t0) - 1))
    out["server_down_s"] = cluster.restart_server()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def report(
    stats: Stats,
    db_rows: list[dict],
    duration: float,
    drain_s: float,
    chaos_out: dict,
    events: list[str],
) -> dict:
    ids = {r["id"]: r for r in db_rows}
    accepted = set(stats.accepted)
    scored_once = all(ids.get(i, {}).get("writes") == 1 for i in accepted)
    requests_made = len(stats.page_s) + len(stats.submit_s) + sum(stats.refused.values())
    killed = chaos_out.get("killed_job")
    return {
        "duration_s": duration,
        "requests": requests_made,
        "throughput_rps": requests_made / duration,
        "page_p50_ms": pct(stats.page_s, 50),
        "page_p95_ms": pct(stats.page_s, 95),
        "submit_p50_ms": pct(stats.submit_s, 50),
        "submit_p95_ms": pct(stats.submit_s, 95),
        "accepted": len(accepted),
        "refused": stats.refused,
        "page_errors_during_restart": stats.errors,
        "rows_in_db": len(db_rows),
        "scored": sum(r["state"] == "scored" for r in db_rows),
        "failed_or_timed_out": sum(r["state"] in ("failed", "timed_out") for r in db_rows),
        "accepted_missing_from_db": sorted(accepted - set(ids)),
        "rows_not_written_exactly_once": sorted(i for i, r in ids.items() if r["writes"] != 1),
        "every_accepted_scored_exactly_once": scored_once
        and all(ids[i]["state"] == "scored" for i in accepted if i in ids),
        "killed_job": killed,
        "killed_job_attempts": ids[killed]["attempts"] if killed in ids else None,
        "drain_s": drain_s,
        "events": events,
    }


def run(
    students: int = 100,
    duration: float = 60,
    daily_limit: int = 2,
    workers: int = 2,
    lease: float = 8.0,
    folder: Path | None = None,
    drain_timeout: float = 1800,
) -> dict:
    """The whole scenario; the report as a dict."""
    folder = Path(folder or tempfile.mkdtemp(prefix="trashkit-load-"))
    tokens, good, bad = prepare(folder, students, daily_limit)
    cluster = Cluster(folder / "comp", workers, lease)
    stats, chaos_out = Stats(), {}
    try:
        wait_up(cluster.url)
        stop = time.monotonic() + duration
        threads = [
            threading.Thread(target=student, args=(cluster.url, t, good, bad, stop, stats, i))
            for i, t in enumerate(tokens)
        ]
        threads.append(threading.Thread(target=chaos, args=(cluster, duration, chaos_out)))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        drain_s = drain(folder / "comp", drain_timeout)
    finally:
        cluster.stop()
    return report(stats, rows(folder / "comp"), elapsed, drain_s, chaos_out, cluster.events)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of submitting")
    ap.add_argument("--daily-limit", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for the run (default: a temporary one)"
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    res = run(args.students, args.duration, args.daily_limit, args.workers, folder=args.out)
    print(
        f"machine: {os.cpu_count()} CPU cores; command: python "
        f"benchmarks/competition_load.py {' '.join(sys.argv[1:])}"
    )
    print(json.dumps(res, indent=2, default=str))
    print(f"total wall time {time.time() - t0:.0f} s")
    return (
        0
        if res["every_accepted_scored_exactly_once"] and not res["accepted_missing_from_db"]
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
