"""Where the study lives and how workers share it: storage URLs, creating or joining the
study, running a worker until the study holds ``n_trials`` finished trials."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .config import SearchConfig
from .objective import SurplusTrial, make_objective

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url(cfg: SearchConfig, out: Path) -> str:
    """The study's database URL, checked before any connection is tried.

    Accepted: ``sqlite:///path/study.db`` (the default, in the run folder),
    ``postgresql://user:pw@host:port/db`` (SQLAlchemy's default PostgreSQL driver, psycopg 3:
    ``pip install -e ".[postgres]"`` installs it), ``postgresql+psycopg2://...``, and any
    other URL SQLAlchemy and Optuna accept.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    try:
        make_url(url)
    except ArgumentError:
        raise ValueError(
            f"SearchConfig.storage {url!r} is not a database URL; examples: "
            "sqlite:///outputs/search/study.db, "
            "postgresql://user:password@127.0.0.1:5432/trashkit"
        ) from None
    return url


def storage_for(cfg: SearchConfig, out: Path) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats (a killed worker's trial is retried on resume) and a
    connect timeout (a server that accepts the connection but never answers fails after
    ``cfg.connect_timeout`` seconds instead of hanging the worker forever)."""
    url = storage_url(cfg, out)
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    else:
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": cfg.connect_timeout}}
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=kwargs,
        heartbeat_interval=cfg.heartbeat_interval,
        grace_period=cfg.grace_period,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=2
        ),
    )


def where(url: str) -> str:
    """A storage URL as it may be shown: driver, user, host, port, database; never the
    password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _unreachable(exc: Exception, url: str, timeout: int) -> ConnectionError:
    """The error for a database that cannot be reached, naming the host, never the password."""
    from sqlalchemy.engine import make_url

    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    password = make_url(url).password
    if password:
        text = text.replace(str(password), "***")
    return ConnectionError(
        f"cannot reach the study's database at {where(url)} within {timeout} s: {text}"
    )


def _creation_race(exc: Exception) -> bool:
    """True for the errors two workers creating one database's tables at once can get (a
    duplicate table or row, SQLite's lock); False for a server that cannot be reached."""
    from sqlalchemy.exc import IntegrityError

    text = str(exc).lower()
    return isinstance(exc, IntegrityError) or "already exists" in text or "locked" in text


def load_study(cfg: SearchConfig, out: Path, attempts: int = 5) -> optuna.Study:
    """Create or join the study. Workers that start together on a fresh database race to
    create its tables; the loser gets an integrity error and simply tries again. A URL that
    is not a URL, or names a driver that is not installed, fails at once."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    kind = {"nsga2": optuna.samplers.NSGAIISampler, "tpe": optuna.samplers.TPESampler}
    sampler = kind[cfg.sampler](seed=cfg.seed)
    for attempt in range(attempts):
        try:
            study = optuna.create_study(
                storage=storage_for(cfg, out),
                study_name=cfg.study_name,
                directions=["maximize", "minimize"],
                sampler=sampler,
                load_if_exists=True,
            )
            break
        except (IntegrityError, OperationalError) as exc:
            if not _creation_race(exc):
                raise _unreachable(exc, storage_url(cfg, out), cfg.connect_timeout) from None
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random() * (attempt + 1))
    if study.trials:  # resuming: the same seed would draw the first trials' architectures again
        study.sampler = kind[cfg.sampler](seed=cfg.seed + len(study.trials))
    study.set_metric_names(["val_macro_f1", cfg.objective])
    study.set_user_attr("search_config", json.loads(json.dumps(asdict(cfg), default=list)))
    return study


def finished(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=FINISHED)


def run_search(cfg: SearchConfig, output_dir: str | Path) -> optuna.Study:
    """Work on the study until it holds ``n_trials`` finished trials (resumable, shareable).

    Run it in as many processes / machines as you like with the same ``storage`` and
    ``study_name``; each trial trains in ``output_dir/trial_NNNN/``.
    """
    out = Path(output_dir)
    storage_url(cfg, out)  # a malformed URL fails before anything is created
    out.mkdir(parents=True, exist_ok=True)
    study = load_study(cfg, out)
    optuna.storages.fail_stale_trials(study)

    def stop_when_done(st: optuna.Study, _trial) -> None:
        if len(finished(st)) >= cfg.n_trials:
            st.stop()

    if len(finished(study)) < cfg.n_trials:
        study.optimize(
            make_objective(cfg, out),
            n_trials=None,
            catch=(SurplusTrial,),
            callbacks=[stop_when_done],
            gc_after_trial=True,
        )
    return study
