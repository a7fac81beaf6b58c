"""The competition on a real PostgreSQL server (a bigger class, workers on several machines):
the same quota, claim, lease and exactly-once tests as on SQLite, with ``SELECT ... FOR
UPDATE SKIP LOCKED`` doing the claiming, and one submission served and scored end to end.

Uses TRASHKIT_TEST_POSTGRES_URL (``.ci/run`` starts a server with ``.ci/postgres.sh``); each
test gets its own schema, dropped afterwards. Skipped, with the reason, when it is unset."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text

from test_competition import CLASSES, closes_in, ckpt_bytes, labelled  # noqa: F401 (fixtures)
from test_competition import (
    test_a_job_interrupted_too_often_fails_with_a_message as _gives_up,
    test_an_expired_lease_is_retried_and_a_stale_claim_writes_nothing as _lease,
    test_concurrent_claims_give_each_job_to_one_worker as _claims,
    test_private_board_uses_final_picks_or_the_best_public_ones as _boards,
    test_quota_counts_accepted_uploads_per_utc_day_and_retries_are_free as _quota,
)
from trashkit.competition.rules import create_competition
from trashkit.competition.store import open_store
from trashkit.competition.teams import add_team

URL = os.environ.get("TRASHKIT_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="TRASHKIT_TEST_POSTGRES_URL is not set (.ci/postgres.sh starts a server)"
)


@pytest.fixture()
def pg_url():
    """A URL whose connections live in a fresh schema of the test database."""
    schema = f"competition_test_{secrets.token_hex(4)}"
    admin = create_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in URL else "?"
    yield f"{URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture()
def comp(labelled, tmp_path, pg_url):  # noqa: F811 (the PostgreSQL twin of test_competition's)
    folder = tmp_path / "comp"
    rules, admin = create_competition(
        folder, labelled, "macs", closes_in(1), seed=5, daily_limit=3, db=pg_url
    )
    engine = open_store(pg_url)
    token = add_team(engine, "<img src=x onerror=alert(1)> Team")
    yield {"folder": folder, "rules": rules, "admin": admin, "engine": engine, "token": token}
    engine.dispose()


def test_tables_live_in_postgresql(comp):
    assert comp["engine"].dialect.name == "postgresql"
    assert (comp["folder"] / "db.json").is_file() and not (
        comp["folder"] / "competition.db"
    ).exists()


def test_quota_and_idempotency_on_postgresql(comp, ckpt_bytes):  # noqa: F811
    _quota(comp, ckpt_bytes)


def test_skip_locked_claims_give_each_job_to_one_worker(comp, ckpt_bytes):  # noqa: F811
    _claims(comp, ckpt_bytes)


def test_leases_and_exactly_once_writes_on_postgresql(comp, ckpt_bytes):  # noqa: F811
    _lease(comp, ckpt_bytes)
    _gives_up(comp, ckpt_bytes)


def test_private_board_on_postgresql(comp):
    _boards(comp)


@pytest.mark.slow
def test_a_submission_is_served_and_scored_on_postgresql(comp, tmp_path):
    from trashkit.competition import client
    from trashkit.competition.sample import random_checkpoint
    from trashkit.competition.server import serve_in_thread
    from trashkit.competition.worker import Worker

    url, stop = serve_in_thread(comp["folder"], comp["engine"])
    try:
        model = random_checkpoint(tmp_path / "m.pt", CLASSES, 48)
        sub = client.submit(url, comp["token"], model)
        assert Worker(comp["folder"], comp["engine"]).run(max_jobs=1) == 1
        done = client.result(url, comp["token"], sub["id"])
    finally:
        stop()
    assert done["state"] == "scored" and 0 <= done["public_f1"] <= 1 and done["macs"] > 0
