"""The competition's database (SQLAlchemy Core): tables, engine, settings.

SQLite in WAL mode by default (one file next to the rules, readers never wait for the one
writer), PostgreSQL when the lecturer gives a URL (a bigger class, workers on several
machines). Every timestamp is a UNIX time in seconds (a float): the same on both databases,
and no time-zone conversion anywhere but the pages.

Why SQLite transactions are begun by hand: Python's sqlite3 starts transactions lazily, so
two workers could both read "job 7 is free" before either writes. A connection opened with
``execution_options(immediate=True)`` begins with ``BEGIN IMMEDIATE`` instead, which takes
the write lock first (see :mod:`.queue` and :mod:`.teams`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

metadata = MetaData()

teams = Table(
    "competition_teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("selector", String(16), nullable=False, unique=True),
    Column("token_hash", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

submissions = Table(
    "competition_submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer, ForeignKey("competition_teams.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("day", String(10), nullable=False),  # UTC day, for the daily quota
    Column("client_key", String(64)),  # the client's idempotency key: a retry is no new row
    Column("kind", String(16), nullable=False),  # checkpoint | onnx
    Column("filename", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("image_size", Integer, nullable=False),
    # the job: queued -> running -> scored | failed | timed_out
    Column("state", String(16), nullable=False, default="queued"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim", String(64)),
    Column("claimed_by", String(120)),
    Column("lease_until", Float),
    Column("message", Text),
    # the results, written once by the worker holding the claim
    Column("public_f1", Float),
    Column("private_f1", Float),
    Column("macs", Float),
    Column("seconds_per_image", Float),
    Column("public_score", Float),
    Column("private_score", Float),
    Column("scored_at", Float),
    Column("writes", Integer, nullable=False, default=0),
    Column("final_pick", Boolean, nullable=False, default=False),
    UniqueConstraint("team_id", "client_key", name="competition_one_key_per_team"),
    Index("competition_by_state", "state", "id"),
    Index("competition_by_team_day", "team_id", "day"),
)

settings = Table(
    "competition_settings",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)

FINAL_STATES = ("scored", "failed", "timed_out")


def db_url(folder: str | Path, given: str | None = None) -> str:
    """The database of a competition: ``given``, else the one ``create --db`` recorded,
    else SQLite next to the rules."""
    if given:
        return given
    recorded = Path(folder) / "db.json"
    if recorded.is_file():
        return json.loads(recorded.read_text())["url"]
    return f"sqlite:///{Path(folder).resolve() / 'competition.db'}"


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout, and transactions that begin when and how we say."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN by the driver
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        immediate = conn.get_execution_options().get("immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_store(url: str, create: bool = True) -> Engine:
    """An engine for ``url``; the tables are created when missing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args=_pg_args(url))
    if create:
        _create_tables(engine)
    return engine


def _pg_args(url: str) -> dict:
    """A connect timeout for PostgreSQL, so an unreachable host fails in seconds."""
    return {"connect_timeout": 10} if url.startswith("postgresql") else {}


def _create_tables(engine: Engine) -> None:
    """``create_all``, tolerant of another process creating the same tables at the same
    moment (a server and a worker started together on PostgreSQL)."""
    for attempt in range(3):
        try:
            metadata.create_all(engine)
            return
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 2:
                raise
            time.sleep(0.5)


def get_setting(engine: Engine, key: str) -> str | None:
    """One admin setting (closed_at, revealed), None when unset."""
    with engine.connect() as conn:
        return conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()


def set_setting(engine: Engine, key: str, value: str) -> None:
    """Insert or replace one setting, in one transaction."""
    with engine.connect().execution_options(immediate=True) as conn, conn.begin():
        conn.execute(settings.delete().where(settings.c.key == key))
        conn.execute(settings.insert().values(key=key, value=value))
