"""The competition's pages in a real browser (issue 23): Debian's Chromium driven by
Playwright, as tests/test_browser.py does for JupyterLab. A team signs in with its token,
uploads a checkpoint through the plain HTML form, watches the page refresh itself (no
JavaScript) until the job is scored, and finds its row on the leaderboard; the team name's
HTML is shown as text. Skipped, with the reason, where Chromium or Playwright is missing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from test_browser import CHROMIUM, CHROMIUM_FLAGS, sync_playwright
from test_competition import CLASSES, closes_in
from trashkit.competition.rules import create_competition
from trashkit.competition.sample import labelled_test_folder, random_checkpoint
from trashkit.competition.server import serve_in_thread
from trashkit.competition.store import open_store
from trashkit.competition.teams import add_team
from trashkit.competition.worker import Worker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sync_playwright is None, reason="Playwright for Python is not installed"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: run .ci/browser.sh or set TRASHKIT_CHROMIUM",
    ),
]


def test_submit_in_the_browser_see_the_job_finish_and_the_row(tiny_crops, tmp_path):
    test = labelled_test_folder(tiny_crops, tmp_path / "labelled")
    folder = tmp_path / "comp"
    create_competition(folder, test, "macs", closes_in(1), seed=1)
    engine = open_store(f"sqlite:///{folder / 'competition.db'}")
    token = add_team(engine, "<b>Bold<b> bots")
    model = random_checkpoint(tmp_path / "best.pt", CLASSES, 48)
    url, stop = serve_in_thread(folder, engine)
    worker = Worker(folder, engine, poll_s=0.2)
    scoring = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    scoring.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(f"{url}/team")
            page.fill("#token", token)
            page.click("#login")
            assert page.inner_text("#team-name") == "<b>Bold<b> bots"  # text, not markup
            page.set_input_files("#model", str(model))
            page.click("#submit")
            assert "accepted and queued" in page.inner_text("#message")
            page.wait_for_selector("#history td.state:text-is('scored')", timeout=120_000)
            page.screenshot(path=str(tmp_path / "team.png"), full_page=True)
            page.click("text=Leaderboard")
            row = page.inner_text("#public")
            assert "<b>Bold<b> bots" in row and "538,182" in row
            browser.close()
    finally:
        worker.stop.set()
        scoring.join(60)
        stop()
        engine.dispose()
