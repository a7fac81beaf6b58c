"""The load scenario of benchmarks/competition_load.py, small: students submitting at once
against a server on 127.0.0.1 with 2 worker processes, one worker SIGKILLed mid-job and the
server SIGKILLed and restarted mid-run; nothing accepted may be lost or scored twice."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "competition_load", REPO / "benchmarks" / "competition_load.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kill_and_restart_lose_nothing_and_score_each_submission_once(tmp_path):
    bench = load_benchmark()
    res = bench.run(students=8, duration=16, daily_limit=1, workers=2, lease=6.0, folder=tmp_path)
    assert res["accepted"] >= 4, res
    assert res["accepted_missing_from_db"] == [], res
    assert res["rows_not_written_exactly_once"] == [], res
    assert res["every_accepted_scored_exactly_once"], res
    assert res["rows_in_db"] == res["scored"] == res["accepted"], res
    assert sum(res["refused"].values()) > 0, res  # quota or bad-file refusals
    assert res["killed_job"] is not None and res["killed_job_attempts"] == 2, res["events"]
    assert any("server killed" in e for e in res["events"])
    assert res["page_p95_ms"] > 0
