"""The scoring queue: the submissions table is the queue, a claim is a lease.

Why the database and no broker: the lecturer runs one server and a worker or two; a queue in
the tables they already have cannot lose a job between two systems. The rules that make a job
scored exactly once:

* a worker *claims* a job atomically: on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``
  (workers on several machines never wait for each other), on SQLite the same select inside
  ``BEGIN IMMEDIATE`` (one writer at a time); the ``UPDATE`` re-checks that the job is still
  claimable, so two workers can never both get it;
* a claim is a lease with a fresh random claim id; the worker extends it while the model runs;
  a worker killed with SIGKILL simply stops extending it, and the job becomes claimable again
  when the lease runs out (attempts counts the tries; after MAX_ATTEMPTS it fails for good);
* the result is written by one ``UPDATE ... WHERE claim = <my claim id>``: a worker whose
  lease was taken over writes nothing, and ``writes`` counts the result writes (always 1).
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, and_, or_, select, update

from .store import submissions as subs

MAX_ATTEMPTS = 3
LEASE_S = 60.0


def _claimable(now: float):
    return or_(subs.c.state == "queued", and_(subs.c.state == "running", subs.c.lease_until < now))


def claim(engine: Engine, worker: str, lease_s: float = LEASE_S) -> dict | None:
    """Claim the oldest claimable job for ``worker``; the submission row, or None if none."""
    for _ in range(MAX_ATTEMPTS + 1):
        now = time.time()
        with engine.connect().execution_options(immediate=True) as conn, conn.begin():
            cand = conn.execute(
                select(subs.c.id, subs.c.attempts)
                .where(_claimable(now))
                .order_by(subs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if cand is None:
                return None
            if cand.attempts >= MAX_ATTEMPTS:
                _give_up(conn, cand.id, now)
                continue
            token = uuid.uuid4().hex
            done = conn.execute(
                update(subs)
                .where(subs.c.id == cand.id, _claimable(now))
                .values(
                    state="running",
                    claim=token,
                    claimed_by=worker[:120],
                    lease_until=now + lease_s,
                    attempts=subs.c.attempts + 1,
                )
            )
            if done.rowcount != 1:
                return None
            return dict(conn.execute(select(subs).where(subs.c.id == cand.id)).mappings().one())
    return None


def _give_up(conn, job_id: int, now: float) -> None:
    """A job whose scoring was interrupted MAX_ATTEMPTS times: failed, said so, never lost."""
    conn.execute(
        update(subs)
        .where(subs.c.id == job_id, _claimable(now))
        .values(
            state="failed",
            message=f"scoring was interrupted {MAX_ATTEMPTS} times (worker stopped or "
            "killed); ask the lecturer to look at the workers",
            writes=subs.c.writes + 1,
            scored_at=now,
            claim=None,
            lease_until=None,
        )
    )


def _mine(job_id: int, token: str):
    return and_(subs.c.id == job_id, subs.c.claim == token, subs.c.state == "running")


def extend(engine: Engine, job_id: int, token: str, lease_s: float = LEASE_S) -> bool:
    """Extend a lease while the model runs; False when the claim was lost."""
    with engine.begin() as conn:
        res = conn.execute(
            update(subs).where(_mine(job_id, token)).values(lease_until=time.time() + lease_s)
        )
    return res.rowcount == 1


def finish(engine: Engine, job_id: int, token: str, state: str, values: dict) -> bool:
    """Write a job's result if this claim still holds it; False (nothing written) if not."""
    with engine.begin() as conn:
        res = conn.execute(
            update(subs)
            .where(_mine(job_id, token))
            .values(
                **values,
                state=state,
                writes=subs.c.writes + 1,
                scored_at=time.time(),
                claim=None,
                lease_until=None,
            )
        )
    return res.rowcount == 1


def release(engine: Engine, job_id: int, token: str) -> bool:
    """Hand a job back untouched (a worker told to stop): queued again, the try not counted."""
    with engine.begin() as conn:
        res = conn.execute(
            update(subs)
            .where(_mine(job_id, token))
            .values(state="queued", claim=None, lease_until=None, attempts=subs.c.attempts - 1)
        )
    return res.rowcount == 1
