"""``python -m trashkit competition ...``: the lecturer's and the students' commands.

Lecturer: create, add-team, add-teams, serve, worker, status, close, reveal, audit.
Student: submit. Imports are made inside each command, so ``python -m trashkit --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _lecturer_commands(sub) -> None:
    """create, add-team(s), serve, worker."""
    cr = sub.add_parser("create", help="make a competition folder from a labelled test folder")
    cr.add_argument("dir")
    cr.add_argument("--test", required=True, help="labelled test images: <Class>/*.jpg")
    cr.add_argument("--edition", choices=("macs", "time"), default="macs")
    cr.add_argument(
        "--closes", required=True, help="ISO 8601 with a time zone, e.g. 2026-12-01T18:00+09:00"
    )
    cr.add_argument("--public-fraction", type=float, default=0.5)
    cr.add_argument("--seed", type=int, default=0)
    cr.add_argument("--daily-limit", type=int, default=5)
    cr.add_argument("--final-picks", type=int, default=2)
    cr.add_argument("--input-size", type=int, default=None, help="fix every model's input side")
    cr.add_argument(
        "--baseline",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override a baseline, e.g. macs=2e7 f1=0.8",
    )
    cr.add_argument("--db", default=None, help="postgresql://... (default: SQLite in DIR)")
    at = sub.add_parser("add-team", help="register one team; prints its token")
    at.add_argument("dir")
    at.add_argument("name")
    ats = sub.add_parser("add-teams", help="register a CSV of teams (a 'name' column)")
    ats.add_argument("dir")
    ats.add_argument("csv")
    ats.add_argument("--out", required=True, help="new CSV of name,token (mode 0600) to hand out")
    sv = sub.add_parser("serve", help="the web server (and its workers)")
    sv.add_argument("dir")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="worker processes to start (0: none)")
    wk = sub.add_parser("worker", help="a scoring worker (one per core you can spare)")
    wk.add_argument("dir")
    wk.add_argument("--lease", type=float, default=60.0, help="seconds a claim holds")
    wk.add_argument(
        "--nice", type=int, default=10, help="lower the worker's CPU priority (pages stay fast)"
    )
    wk.add_argument(
        "--idle-exit", type=float, default=None, help="stop after this many idle seconds"
    )
    for p in (at, ats, sv, wk):
        p.add_argument("--db", default=None, help="database URL (default: the one create recorded)")


def _other_commands(sub) -> None:
    """status, close, reveal, audit, submit."""
    for name, text in (
        ("status", "teams, jobs and the public leaderboard"),
        ("close", "close the competition now"),
        ("reveal", "show the private leaderboard"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("dir")
        p.add_argument("--db", default=None)
    au = sub.add_parser("audit", help="re-run a team's training from its config and compare F1")
    au.add_argument("dir")
    au.add_argument("team")
    au.add_argument("--data", required=True, help="the training data the teams were given")
    au.add_argument("--submission", type=int, default=None, help="default: its private-board entry")
    au.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="change the config (breaks reproducibility: for rehearsals only)",
    )
    au.add_argument("--db", default=None)
    sb = sub.add_parser("submit", help="upload a checkpoint or ONNX file (students)")
    sb.add_argument("server", help="the server's URL, e.g. http://127.0.0.1:8000")
    sb.add_argument("path")
    sb.add_argument(
        "--token", default=os.environ.get("TRASHKIT_TOKEN"), help="default: $TRASHKIT_TOKEN"
    )
    sb.add_argument("--wait", action="store_true", help="wait for the score")


def add_parser(sub) -> None:
    """The ``competition`` command group under trashkit's sub-commands."""
    comp = sub.add_parser("competition", help="run the class competition (lecturers) or submit")
    csub = comp.add_subparsers(dest="competition_cmd", required=True)
    _lecturer_commands(csub)
    _other_commands(csub)


def _engine(args):
    from .store import db_url, open_store

    return open_store(db_url(args.dir, getattr(args, "db", None)))


def _pairs(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs; values read as JSON where they can (numbers, true, null)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _create(args) -> int:
    from .rules import create_competition

    baselines = _pairs(args.baseline)
    unknown = sorted(set(baselines) - {"macs", "f1", "time_s", "time_images"})
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: macs, f1, time_s, time_images")
    rules, token = create_competition(
        args.dir,
        args.test,
        edition=args.edition,
        closes=args.closes,
        public_fraction=args.public_fraction,
        seed=args.seed,
        daily_limit=args.daily_limit,
        final_picks=args.final_picks,
        input_size=args.input_size,
        baselines=baselines,
        db=args.db,
    )
    _engine(args).dispose()
    print(
        f"competition created in {args.dir}: {rules.n_public} public + {rules.n_private} "
        f"private images, classes {', '.join(rules.classes)}, closes {rules.closes}"
    )
    print(f"admin token (shown once, stored hashed; keep it secret): {token}")
    return 0


def _add_teams(args) -> int:
    import csv
    import io
    from pathlib import Path

    from .rules import write_private
    from .teams import add_teams, read_team_csv

    names = read_team_csv(args.csv)
    if Path(args.out).exists():
        raise FileExistsError(f"{args.out} already exists; a token file is never overwritten")
    tokens = add_teams(_engine(args), names)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["name", "token"])
    writer.writerows(tokens.items())
    write_private(Path(args.out), text.getvalue())
    print(f"{len(tokens)} teams added; hand out the tokens in {args.out} (mode 0600)")
    return 0


def _status(args) -> int:
    from . import board, phase
    from .rules import load_rules
    from sqlalchemy import func, select

    from .store import teams

    engine, rules = _engine(args), load_rules(args.dir)
    with engine.connect() as conn:
        n_teams = conn.execute(select(func.count()).select_from(teams)).scalar_one()
    state = "closed" if phase.is_closed(engine, rules) else "open"
    shown = "shown" if phase.private_visible(engine, rules) else "hidden"
    print(f"{rules.title}: {rules.edition} edition, {state}, private leaderboard {shown}")
    print(f"teams: {n_teams}; jobs: {board.counts(engine) or 'none yet'}")
    for r in board.public_board(engine)[:10]:
        print(f"  {r['rank']:>3}  {r['score']:.4f}  F1 {r['f1']:.4f}  {r['team']}")
    return 0


def _worker(args) -> int:
    from .worker import Worker

    if args.nice:
        os.nice(args.nice)  # inherited by the model processes: the web server comes first
    worker = Worker(args.dir, _engine(args), lease_s=args.lease)
    worker.handle_signals()
    print(f"worker {worker.name} scoring jobs of {args.dir}", flush=True)
    done = worker.run(idle_exit_s=args.idle_exit)
    print(f"worker {worker.name} stopped after {done} job(s)", flush=True)
    return 0


def _audit(args) -> int:
    from .audit import audit

    report = audit(args.dir, _engine(args), args.team, args.data, args.submission, _pairs(args.set))
    sub, new = report["submitted"], report["rerun"]
    print(f"audit of {args.team!r}, submission #{report['submission']} (run: {report['run_dir']})")
    for key in ("public_f1", "private_f1"):
        a, b = sub[key], new[key]
        diff = f"{b - a:+.4f}" if a is not None and b is not None else "n/a"
        print(f"  {key:<11} submitted {a}  re-run {b}  difference {diff}")
    print(f"  weights bit-identical: {report['weights_identical']}")
    return 0


def _submit(args) -> int:
    from .client import submit

    if not args.token:
        raise ValueError("no token: pass --token or set TRASHKIT_TOKEN")
    answer = submit(args.server, args.token, args.path, wait=args.wait)
    print(json.dumps(answer, indent=2))
    return 0


def _simple(args) -> int:
    """serve, add-team, close, reveal."""
    if args.competition_cmd == "serve":
        from .server import serve

        serve(args.dir, args.host, args.port, args.db, args.workers)
    elif args.competition_cmd == "add-team":
        from .teams import add_team

        token = add_team(_engine(args), args.name)
        print(f"team {args.name.strip()!r} added; its token (shown once): {token}")
    elif args.competition_cmd == "close":
        from .phase import close_now

        close_now(_engine(args))
        print("competition closed: no more submissions")
    else:
        from .phase import reveal

        reveal(_engine(args))
        print("private leaderboard revealed")
    return 0


COMMANDS = {
    "create": _create,
    "add-teams": _add_teams,
    "status": _status,
    "worker": _worker,
    "audit": _audit,
    "submit": _submit,
}


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``competition`` command."""
    return COMMANDS.get(args.competition_cmd, _simple)(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m trashkit.competition ...`` (the same commands without trashkit's others)."""
    ap = argparse.ArgumentParser(prog="python -m trashkit.competition")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    args = ap.parse_args(["competition", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError, ConnectionError) as exc:
        print(f"competition {args.competition_cmd}: error: {exc}", file=sys.stderr)
        return 2
