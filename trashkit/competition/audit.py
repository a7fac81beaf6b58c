"""``competition audit DIR TEAM``: re-run a team's training and score the re-run like theirs.

The course re-ran the top teams' code to check that their result came from the data given.
trashkit makes that a command: a trashkit checkpoint carries the whole training config
(``config.json``), so the audit trains again from it on the lecturer's training data, scores
the new ``best.pt`` on the hidden test set exactly as the worker scores submissions, and
reports both F1s side by side (and whether the weights came out bit-identical: trashkit's
training is deterministic on a CPU, so a faithful config reproduces the run exactly).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from sqlalchemy import Engine, select

from ..checkpoint import load_checkpoint
from ..runs import new_run_dir, write_json
from ..train import TrainConfig, train
from .board import history, picks_of
from .intake import find_stored
from .store import teams
from .worker import Worker


def audited_submission(engine: Engine, team: str, n_picks: int, sub_id: int | None) -> dict:
    """The submission to audit: the one asked for, else the team's private-board entry."""
    with engine.connect() as conn:
        team_id = conn.execute(select(teams.c.id).where(teams.c.name == team)).scalar()
    if team_id is None:
        raise ValueError(f"no team named {team!r}")
    rows = history(engine, team_id)
    if sub_id is not None:
        rows = [r for r in rows if r["id"] == sub_id]
        if not rows:
            raise ValueError(f"team {team!r} has no submission #{sub_id}")
        return rows[0]
    scored = [r for r in rows if r["state"] == "scored"]
    if not scored:
        raise ValueError(f"team {team!r} has no scored submission to audit")
    picks, _ = picks_of(scored, n_picks)
    return min(picks, key=lambda r: (r["private_score"], r["created_at"]))


def rerun_config(ckpt_config: dict, data: str | Path, overrides: dict | None) -> TrainConfig:
    """The team's config with the lecturer's data (and nothing else changed unless asked)."""
    cfg = {**ckpt_config, "data": str(data), **(overrides or {})}
    for key in ("init_from", "teacher"):
        if cfg.get(key):
            raise ValueError(
                f"the config starts from another checkpoint ({key}={cfg[key]!r}); audit that "
                "one first, then pass its path with --set {key}=PATH"
            )
    return TrainConfig.from_dict(cfg)


def same_weights(a: dict, b: dict) -> bool:
    """True when two state dicts hold identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _numbers(row: dict) -> dict:
    keys = ("public_f1", "private_f1", "public_score", "private_score", "macs")
    return {k: row.get(k) for k in keys}


def audit(
    folder: str | Path,
    engine: Engine,
    team: str,
    data: str | Path,
    submission: int | None = None,
    overrides: dict | None = None,
) -> dict:
    """Re-train the team's submission from its config on ``data``; the comparison (also
    written to ``audits/<run>/audit.json``)."""
    worker = Worker(folder, engine)
    try:
        sub = audited_submission(engine, team, worker.rules.final_picks, submission)
        if sub["kind"] != "checkpoint":
            raise ValueError("an ONNX submission carries no training config; nothing to re-run")
        ckpt = load_checkpoint(find_stored(folder, sub["id"]))
        cfg = rerun_config(ckpt.config, data, overrides)
        out = new_run_dir(f"sub{sub['id']}", base=Path(folder) / "audits")
        t0 = time.time()
        train(cfg, out / "run", progress=False)
        rerun = load_checkpoint(out / "run" / "best.pt")
        state, values = worker.score(
            {**sub, "path": out / "run" / "best.pt", "image_size": rerun.image_size}
        )
    finally:
        worker.runner.close()
    report = {
        "team": team,
        "submission": sub["id"],
        "submitted": _numbers(sub),
        "rerun": {**_numbers(values), "state": state, "message": values.get("message")},
        "weights_identical": same_weights(ckpt.weights, rerun.weights),
        "overrides": overrides or {},
        "train_seconds": round(time.time() - t0, 1),
        "run_dir": str(out / "run"),
    }
    write_json(out / "audit.json", report)
    return report
