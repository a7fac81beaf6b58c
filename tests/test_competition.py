"""The class competition (issue 23): rules, refusals, quota, queue, boards, pages. Fast tests
only: no model runs here except the one that sleeps (slow scoring lives in
test_competition_e2e.py, the load scenario in test_competition_load.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import socket
import stat
import sys
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import onnx
import pytest
import requests
import torch
from onnx import TensorProto, helper
from sqlalchemy import func, select

from trashkit.competition import board, checks, phase, queue
from trashkit.competition.errors import Refused
from trashkit.competition.intake import accept, already_sent
from trashkit.competition.rules import create_competition, load_rules
from trashkit.competition.sample import labelled_test_folder, random_checkpoint
from trashkit.competition.store import open_store, submissions
from trashkit.competition.teams import add_team, check_name, read_team_csv, team_for_token

CLASSES = ["Metal", "Paper", "Paperpack", "Plastic", "Plasticbag", "Styrofoam"]


def closes_in(days: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def labelled(tiny_crops, tmp_path_factory) -> Path:
    return labelled_test_folder(tiny_crops, tmp_path_factory.mktemp("labelled") / "test")


@pytest.fixture()
def comp(labelled, tmp_path):
    """A fresh competition (MACs edition, daily limit 3) with one team."""
    folder = tmp_path / "comp"
    rules, admin = create_competition(folder, labelled, "macs", closes_in(1), seed=5, daily_limit=3)
    engine = open_store(f"sqlite:///{folder / 'competition.db'}")
    token = add_team(engine, "<img src=x onerror=alert(1)> Team")
    yield {"folder": folder, "rules": rules, "admin": admin, "engine": engine, "token": token}
    engine.dispose()


@pytest.fixture(scope="module")
def ckpt_bytes(tmp_path_factory) -> bytes:
    return random_checkpoint(tmp_path_factory.mktemp("ck") / "a.pt", CLASSES).read_bytes()


def n_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(submissions)).scalar_one()


def stored_files(folder: Path) -> list[Path]:
    return sorted((folder / "submissions").glob("*")) if (folder / "submissions").exists() else []


# --- create and rules ---------------------------------------------------------------------


def test_create_records_a_seeded_stratified_split_and_keeps_labels_private(comp, labelled):
    folder, rules = comp["folder"], comp["rules"]
    rows = list(csv.DictReader(open(folder / "hidden" / "labels.csv")))
    assert len(rows) == rules.n_public + rules.n_private == sum(1 for _ in labelled.rglob("*.jpg"))
    for cls in CLASSES:  # stratified: each class split as evenly as rounding allows
        halves = [r["half"] for r in rows if r["label"] == cls]
        if len(halves) > 1:
            assert abs(halves.count("public") - round(0.5 * len(halves))) == 0, cls
    assert all(r["file"][:6].isdigit() for r in rows)  # plain numbered names only
    saved = json.loads((folder / "rules.json").read_text())
    assert saved["classes"] == CLASSES and saved["edition"] == "macs"
    assert saved["baselines"] == {"macs": 13_863_553, "f1": 0.8366}
    assert "MACs / MACs_baseline" in saved["formula"]
    assert "label" not in json.dumps(saved)  # no answer in the public rules
    assert stat.S_IMODE((folder / "admin.json").stat().st_mode) == 0o600
    assert comp["admin"] not in (folder / "admin.json").read_text()  # hashed only
    again = create_competition(folder.parent / "again", labelled, "macs", closes_in(1), seed=5)
    assert (folder.parent / "again" / "hidden" / "labels.csv").read_text() == (
        folder / "hidden" / "labels.csv"
    ).read_text()
    assert again[0].n_public == rules.n_public


def test_create_refuses_bad_options_and_existing_folders(comp, labelled, tmp_path):
    with pytest.raises(FileExistsError):
        create_competition(comp["folder"], labelled, "macs", closes_in(1))
    with pytest.raises(ValueError, match="time zone"):
        create_competition(tmp_path / "x", labelled, "macs", "2030-01-01T10:00")
    with pytest.raises(ValueError, match="edition"):
        create_competition(tmp_path / "y", labelled, "flops", closes_in(1))
    with pytest.raises(ValueError, match="512"):
        create_competition(tmp_path / "z", labelled, "macs", closes_in(1), input_size=1024)
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


# --- teams and tokens ---------------------------------------------------------------------


def test_tokens_are_hashed_and_forged_ones_refused(comp):
    engine, token = comp["engine"], comp["token"]
    assert team_for_token(engine, token)["name"].startswith("<img")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "", None, "team-0000000000000000-" + "x" * 40, token + "x"):
        assert team_for_token(engine, bad) is None
    with engine.connect() as conn:
        stored = conn.execute(
            __import__("sqlalchemy").text("SELECT token_hash FROM competition_teams")
        ).scalar_one()
    assert stored.startswith("scrypt$") and token not in stored


@pytest.mark.parametrize("name", ["../etc", "a/b", "back\\slash", "tab\there", "  ", "x" * 61])
def test_team_names_with_path_or_control_characters_are_refused(comp, name):
    with pytest.raises(ValueError):
        add_team(comp["engine"], name)
    with comp["engine"].connect() as conn:
        names = conn.execute(__import__("sqlalchemy").text("SELECT name FROM competition_teams"))
        assert len(list(names)) == 1


def test_team_csv_with_one_bad_row_adds_nothing(tmp_path):
    path = tmp_path / "teams.csv"
    path.write_text("name\nAlpha\nBeta/../x\nGamma\n")
    with pytest.raises(ValueError, match="path characters"):
        read_team_csv(path)
    path.write_text("name\nAlpha\n Beta \n")
    assert read_team_csv(path) == ["Alpha", "Beta"]
    assert check_name("<b>bold<b>") == "<b>bold<b>"  # HTML is allowed: pages escape it


# --- refusals before anything is stored ---------------------------------------------------


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp") / f"trashkit-competition-pwned-{os.getpid()}"


def refused(comp, data: bytes, name: str, match: str, rules=None) -> None:
    """The upload is refused with ``match`` in the message, and nothing is written."""
    before_rows, before_files = n_rows(comp["engine"]), stored_files(comp["folder"])
    with pytest.raises(Refused, match=match):
        checks.check_upload(data, name, rules or comp["rules"])
    assert n_rows(comp["engine"]) == before_rows
    assert stored_files(comp["folder"]) == before_files


def test_a_pickle_that_would_run_code_is_refused_without_running(comp):
    refused(comp, pickle.dumps(RunsCode()), "best.pt", "not a trashkit checkpoint")
    buf = io.BytesIO()
    torch.save({"weights": RunsCode(), "config": {}}, buf)
    refused(comp, buf.getvalue(), "best.pt", "pickled Python objects")
    assert not MARKER.exists()


def test_a_zip_bomb_is_refused_before_it_is_inflated(comp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("archive/data/0", "w") as fh:
            for _ in range(16):
                fh.write(bytes(2**20))
    assert len(buf.getvalue()) < 100_000
    refused(comp, buf.getvalue(), "best.pt", "zip bomb")


def test_checkpoints_for_other_classes_or_input_sizes_are_refused(comp, tmp_path, labelled):
    other = random_checkpoint(tmp_path / "o.pt", ["Glass", *CLASSES[1:]]).read_bytes()
    refused(comp, other, "best.pt", r"missing \['Metal'\], unknown \['Glass'\]")
    small = random_checkpoint(tmp_path / "s.pt", CLASSES, image_size=16).read_bytes()
    refused(comp, small, "best.pt", "outside the allowed 32..512")
    fixed = load_rules(comp["folder"])
    fixed.input_size = 64
    refused(
        comp, random_checkpoint(tmp_path / "f.pt", CLASSES).read_bytes(), "a.pt", "64 px", fixed
    )


def test_oversized_empty_badly_named_and_unknown_format_uploads_are_refused(comp, ckpt_bytes):
    tight = load_rules(comp["folder"])
    tight.limits["upload_mb"] = 0.01
    refused(comp, ckpt_bytes, "best.pt", "at most 0.01 MiB", tight)
    refused(comp, b"", "best.pt", "empty")
    for name in ("../best.pt", "a/b.pt", "x\x00.pt", "..\\evil.pt"):
        refused(comp, ckpt_bytes, name, "path or control characters")
    refused(comp, ckpt_bytes, "best.zip", "unknown format")
    assert checks.check_upload(ckpt_bytes, "best.pt", comp["rules"]).image_size == 48


def onnx_model(size: int = 32, classes: int = 6, extra_node=None) -> onnx.ModelProto:
    """Conv -> GlobalAveragePool -> Flatten -> Gemm: a valid tiny classifier."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=108).astype(np.float32).tobytes()
    g = rng.normal(size=4 * classes).astype(np.float32).tobytes()
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], w, raw=True)
    g = helper.make_tensor("g", TensorProto.FLOAT, [classes, 4], g, raw=True)
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["logits"], transB=1),
    ]
    opsets = [helper.make_opsetid("", 17)]
    if extra_node is not None:
        nodes.insert(0, extra_node)
        if extra_node.domain:
            opsets.append(helper.make_opsetid(extra_node.domain, 1))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [w, g],
    )
    return helper.make_model(graph, opset_imports=opsets)


def test_onnx_files_are_checked_at_the_input_size(comp):
    good = onnx_model().SerializeToString()
    assert checks.check_upload(good, "m.onnx", comp["rules"]).image_size == 32
    refused(comp, onnx_model(classes=5).SerializeToString(), "m.onnx", "1 x 6 logits")
    refused(comp, onnx_model(size=20).SerializeToString(), "m.onnx", "32..512")
    refused(comp, b"not a protobuf at all", "m.onnx", "not a readable ONNX file")


def test_onnx_external_data_custom_ops_and_control_flow_are_refused(comp, tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data

    external = onnx_model()
    convert_model_to_external_data(external, location="weights.bin", size_threshold=0)
    refused(comp, external.SerializeToString(), "m.onnx", "external file")
    evil = helper.make_node("Evil", ["input"], ["input2"], domain="com.example")
    refused(comp, onnx_model(extra_node=evil).SerializeToString(), "m.onnx", "com.example")
    loop = helper.make_node("Loop", ["", ""], ["z"], name="spin")
    refused(comp, onnx_model(extra_node=loop).SerializeToString(), "m.onnx", "control flow")
    topk = helper.make_node("TopK", ["input", "k"], ["v", "i"], name="topk")
    refused(comp, onnx_model(extra_node=topk).SerializeToString(), "m.onnx", "allow-list")


# --- quota, idempotency, queue ------------------------------------------------------------


def submit_direct(comp, data: bytes, key: str | None = None, name: str = "best.pt"):
    team = team_for_token(comp["engine"], comp["token"])
    checked = checks.check_upload(data, name, comp["rules"])
    return accept(comp["engine"], comp["folder"], comp["rules"], team, checked, data, key)


def test_quota_counts_accepted_uploads_per_utc_day_and_retries_are_free(comp, ckpt_bytes):
    first, new = submit_direct(comp, ckpt_bytes, key="abc")
    again, new_again = submit_direct(comp, ckpt_bytes, key="abc")
    assert new and not new_again and again["id"] == first["id"]
    team_id = first["team_id"]
    assert already_sent(comp["engine"], team_id, "abc")  # a retry skips the early quota check
    assert not already_sent(comp["engine"], team_id, "zzz")
    submit_direct(comp, ckpt_bytes)
    submit_direct(comp, ckpt_bytes)
    assert n_rows(comp["engine"]) == 3
    with pytest.raises(Refused, match="daily limit reached: 3 of 3") as err:
        submit_direct(comp, ckpt_bytes)
    assert err.value.status == 429 and "00:00 UTC" in str(err.value)
    assert n_rows(comp["engine"]) == 3 and len(stored_files(comp["folder"])) == 3
    assert (comp["folder"] / "submissions" / f"{first['id']}.pt").read_bytes() == ckpt_bytes


def test_concurrent_claims_give_each_job_to_one_worker(comp, ckpt_bytes):
    comp["rules"].daily_limit = 100
    ids = [submit_direct(comp, ckpt_bytes)[0]["id"] for _ in range(12)]
    got: list[int] = []
    lock = threading.Lock()

    def grab(name: str) -> None:
        while (job := queue.claim(comp["engine"], name)) is not None:
            with lock:
                got.append(job["id"])

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == ids  # every job once, none twice


def test_an_expired_lease_is_retried_and_a_stale_claim_writes_nothing(comp, ckpt_bytes):
    sub = submit_direct(comp, ckpt_bytes)[0]
    a = queue.claim(comp["engine"], "killed-worker", lease_s=0.05)
    assert a["id"] == sub["id"] and queue.claim(comp["engine"], "other", lease_s=60) is None
    time.sleep(0.1)  # the first worker died: its lease runs out
    b = queue.claim(comp["engine"], "second-worker", lease_s=60)
    assert b["id"] == sub["id"] and b["attempts"] == 2
    assert not queue.finish(comp["engine"], a["id"], a["claim"], "scored", {"public_f1": 0.1})
    assert queue.finish(comp["engine"], b["id"], b["claim"], "scored", {"public_f1": 0.9})
    assert not queue.finish(comp["engine"], b["id"], b["claim"], "scored", {"public_f1": 0.5})
    row = board.history(comp["engine"], sub["team_id"])[0]
    assert (row["state"], row["public_f1"], row["writes"]) == ("scored", 0.9, 1)


def test_a_job_interrupted_too_often_fails_with_a_message(comp, ckpt_bytes):
    sub = submit_direct(comp, ckpt_bytes)[0]
    for _ in range(queue.MAX_ATTEMPTS):
        assert queue.claim(comp["engine"], "dies", lease_s=0.01)["id"] == sub["id"]
        time.sleep(0.02)
    assert queue.claim(comp["engine"], "next") is None
    row = board.history(comp["engine"], sub["team_id"])[0]
    assert row["state"] == "failed" and "interrupted 3 times" in row["message"]
    assert row["writes"] == 1


def test_a_model_that_sleeps_forever_times_out_and_the_worker_goes_on(comp, ckpt_bytes, tmp_path):
    from trashkit.competition.worker import Worker

    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time\ntime.sleep(3600)\n")
    first = submit_direct(comp, ckpt_bytes)[0]
    second = submit_direct(comp, ckpt_bytes)[0]
    worker = Worker(comp["folder"], comp["engine"], runner_cmd=[sys.executable, str(sleeper)])
    worker.rules.limits["run_timeout_s"] = 1.5
    t0 = time.monotonic()
    assert worker.run(max_jobs=2) == 2
    assert time.monotonic() - t0 < 30
    rows = {r["id"]: r for r in board.history(comp["engine"], first["team_id"])}
    for sub in (first, second):
        assert rows[sub["id"]]["state"] == "timed_out"
        assert "longer than the 1.5 s limit" in rows[sub["id"]]["message"]


# --- boards and phases --------------------------------------------------------------------


def fake_scores(comp, values: list[tuple[float, float]]) -> list[int]:
    """Submissions scored with (public F1, private F1) at 1M MACs, without running a model."""
    comp["rules"].daily_limit = 100
    data = random_checkpoint(comp["folder"].parent / "f.pt", CLASSES).read_bytes()
    ids = []
    for pub, priv in values:
        sub = submit_direct(comp, data)[0]
        job = queue.claim(comp["engine"], "fake")
        r = comp["rules"]
        queue.finish(
            comp["engine"],
            job["id"],
            job["claim"],
            "scored",
            {
                "public_f1": pub,
                "private_f1": priv,
                "macs": 1e6,
                "public_score": r.score(pub, 1e6, None),
                "private_score": r.score(priv, 1e6, None),
            },
        )
        ids.append(sub["id"])
    return ids


def test_private_board_uses_final_picks_or_the_best_public_ones(comp):
    engine, rules = comp["engine"], comp["rules"]
    ids = fake_scores(comp, [(0.9, 0.6), (0.7, 0.95), (0.8, 0.7)])
    team_id = team_for_token(engine, comp["token"])["id"]
    auto = board.private_board(engine, rules)[0]
    assert auto["picks"] == [ids[0], ids[2]] and not auto["picked_by_team"]
    assert auto["f1"] == 0.7  # best private among the best two by public
    board.set_picks(engine, rules, team_id, [ids[1]])
    chosen = board.private_board(engine, rules)[0]
    assert chosen["picks"] == [ids[1]] and chosen["picked_by_team"] and chosen["f1"] == 0.95
    with pytest.raises(Refused, match="at most 2"):
        board.set_picks(engine, rules, team_id, ids)
    assert board.public_board(engine)[0]["f1"] == 0.9


def test_closing_and_revealing(comp):
    engine, rules = comp["engine"], comp["rules"]
    assert not phase.is_closed(engine, rules) and not phase.private_visible(engine, rules)
    phase.reveal(engine)
    assert phase.private_visible(engine, rules) and not phase.is_closed(engine, rules)
    phase.close_now(engine)
    assert phase.is_closed(engine, rules)


# --- the server ---------------------------------------------------------------------------


@pytest.fixture()
def live(comp):
    from trashkit.competition.server import serve_in_thread

    url, stop = serve_in_thread(comp["folder"], comp["engine"])
    yield url
    stop()


def api_submit(url: str, token: str | None, data: bytes, name: str = "best.pt"):
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"{url}/submit", headers=headers, files={"model": (name, data)}, timeout=60
    )


def test_server_refuses_missing_forged_tokens_and_huge_uploads(comp, live, ckpt_bytes):
    assert api_submit(live, None, ckpt_bytes).status_code == 401
    forged = comp["token"][:-3] + "zzz"
    resp = api_submit(live, forged, ckpt_bytes)
    assert resp.status_code == 401 and "forged" in resp.json()["error"]
    host, port = live.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /submit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + comp["token"].encode()
            + b"\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary=b"
            + b"\r\nContent-Length: 2147483648\r\n\r\n"
            + b"--b\r\n"
        )
        answer = s.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413") and "at most 100 MiB" in answer
    assert n_rows(comp["engine"]) == 0 and stored_files(comp["folder"]) == []


def test_server_accepts_then_refuses_after_the_close(comp, live, ckpt_bytes):
    resp = api_submit(live, comp["token"], ckpt_bytes)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["state"] == "queued" and body["quota_left"] == 2 and "private_f1" not in body
    refusal = api_submit(live, comp["token"], b"junk", "../../etc/passwd")
    assert refusal.status_code == 400 and "path or control" in refusal.json()["error"]
    phase.close_now(comp["engine"])
    late = api_submit(live, comp["token"], ckpt_bytes)
    assert late.status_code == 403 and "closed" in late.json()["error"]
    assert n_rows(comp["engine"]) == 1


def test_pages_escape_html_and_never_serve_hidden_files(comp, live):
    fake_scores(comp, [(0.8, 0.75)])
    session = requests.Session()
    session.get(f"{live}/team", timeout=30)
    xsrf = session.cookies.get("_xsrf")
    login = session.post(f"{live}/login", data={"token": comp["token"], "_xsrf": xsrf}, timeout=30)
    assert login.status_code == 200 and "Your team" in login.text
    phase.reveal(comp["engine"])
    for path in ("/", "/leaderboard", "/team"):
        text = session.get(f"{live}{path}", timeout=30).text
        assert "<img src=x" not in text, path
        assert "&lt;img src=x onerror=alert(1)&gt; Team" in text, path
    api = session.get(f"{live}/api/leaderboard", timeout=30)
    assert api.headers["Content-Type"].startswith("application/json")  # data, never a page
    assert "Private leaderboard (final)" in session.get(f"{live}/leaderboard", timeout=30).text
    for path in ("/hidden/labels.csv", "/admin.json", "/competition.db", "/../rules.json"):
        assert requests.get(f"{live}{path}", timeout=30).status_code == 404


def test_private_numbers_stay_hidden_until_the_reveal_even_for_the_admin(comp, live):
    fake_scores(comp, [(0.8, 0.123456)])
    auth = {"Authorization": f"Bearer {comp['token']}"}
    before = requests.get(f"{live}/api/team", headers=auth, timeout=30).json()
    assert "private_f1" not in before["submissions"][0]
    admin = requests.Session()
    admin.get(f"{live}/admin", timeout=30)
    admin.post(
        f"{live}/admin/login",
        data={"token": comp["admin"], "_xsrf": admin.cookies.get("_xsrf")},
        timeout=30,
    )
    for path in ("/admin", "/leaderboard", "/team"):
        assert "0.1235" not in admin.get(f"{live}{path}", timeout=30).text
    assert requests.get(f"{live}/api/leaderboard", timeout=30).json()["private"] is None
    bad = requests.post(
        f"{live}/admin/reveal", headers={"Authorization": f"Bearer {comp['token']}"}, timeout=30
    )
    assert bad.status_code == 401
    ok = requests.post(
        f"{live}/admin/reveal", headers={"Authorization": f"Bearer {comp['admin']}"}, timeout=30
    )
    assert ok.status_code == 200
    after = requests.get(f"{live}/api/team", headers=auth, timeout=30).json()
    assert after["submissions"][0]["private_f1"] == pytest.approx(0.123456)


def test_onnx_macs_differ_from_the_official_count_exactly_as_documented(tmp_path):
    """docs/lecturer-guide.md: ONNX = official - batch-norm elements - pooling inputs (batch
    norm folded into the bias-free convolutions at export)."""
    from trashkit.competition.macs_onnx import onnx_macs
    from trashkit.complexity import official_macs
    from trashkit.complexity.analytic import count_layers
    from trashkit.compress.onnx_rt import export_onnx
    from trashkit.models import build_model

    net = build_model("tiny", 6).eval()
    path = export_onnx(net, 64, tmp_path / "tiny.onnx")
    got = onnx_macs(onnx.load(str(path)), 64)
    table = count_layers(net, (3, 64, 64))
    bn = int(table[table.category == "batchnorm"].in_numel.sum())
    pools = int(table[(table.category == "pool") & (table.type != "mean")].in_numel.sum())
    official = official_macs(net, 64)
    assert (official, got["total"]) == (953_702, 911_974)  # the figures the guide quotes
    assert got["total"] == official - bn - pools
    assert set(got["by_op"]) == {"Conv", "Gemm"}
