"""The workbook in a real browser: JupyterLab driven by headless Chromium (Playwright).

JupyterLab starts on a free port of 127.0.0.1 with a token and no browser of its own; Debian's
Chromium (``/usr/bin/chromium``, installed by ``.ci/browser.sh``; Playwright never downloads a
browser) opens chapters 1, 2 and 5 with quick parameters, runs all cells, and moves the
ipywidgets controls: each chapter's interactive widget (crop browser, layer explorer, score
calculator) must render and change what it displays when a control moves. Then the book
rendered from those executed chapters is opened from disk and its figures must have loaded.
Screenshots and the JupyterLab log go into a fresh ``outputs/<run-id>-browser/``.

Skipped, with the reason, where Chromium or Playwright is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from conftest import REPO

CHROMIUM = os.environ.get("TRASHKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: what Chromium needs here: root in a container (no sandbox), no GPU, and no background
#: traffic (the machine's closed network refuses it, many connections at a time)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: chapter -> the interactive widget it must show (any control that changes the display counts)
CHAPTERS = {
    "01_eda": "crop browser",
    "02_flops_macs": "layer explorer",
    "05_score": "score calculator",
}

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        sync_playwright is None,
        reason="Playwright for Python is not installed (pip install -e '.[dev]')",
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: run .ci/browser.sh (Debian's "
        "chromium + chromium-driver) or set TRASHKIT_CHROMIUM",
    ),
]

#: executed notebooks saved by JupyterLab, for the book test (chapter stem -> path)
EXECUTED: dict[str, Path] = {}


@pytest.fixture(scope="module")
def shots() -> Path:
    """The run folder for screenshots (under the repository's outputs/, kept after the test)."""
    from trashkit.runs import new_run_dir

    folder = new_run_dir("browser", base=REPO / "outputs")
    print(f"\nbrowser test screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tiny_home, tmp_path_factory) -> Path:
    """Chapter 5 scores a checkpoint: a one-epoch tiny model on the tiny default data."""
    from trashkit.train import train

    out = tmp_path_factory.mktemp("browser_ckpt") / "run"
    old = os.environ.get("TRASHKIT_HOME")
    os.environ["TRASHKIT_HOME"] = str(tiny_home)
    try:
        train(
            {"model": "tiny", "image_size": 48, "epochs": 1, "batch_size": 32}, out, progress=False
        )
    finally:
        os.environ.pop("TRASHKIT_HOME") if old is None else os.environ.update(TRASHKIT_HOME=old)
    return out / "best.pt"


def quick_copy(stem: str, folder: Path, checkpoint: Path) -> Path:
    """The chapter with quick values appended to its parameters cell (what a student editing
    the cell would do): smoke-test sizes, a fresh output folder, the tiny checkpoint, and every
    parameter that switches widgets on set to True, whatever the chapter calls it."""
    from trashkit import book

    src = REPO / "notebooks" / f"{stem}.ipynb"
    declared = book.declared_parameters(src)
    params = book.resolve_parameters([src], defaults=book.QUICK_PARAMS)[stem]
    params.update({k: True for k in declared if "interactive" in k or "widget" in k})
    if "output_dir" in declared:
        params["output_dir"] = str(folder / f"run_{stem}")
    if "checkpoint" in declared:
        params["checkpoint"] = str(checkpoint)
    nb = nbformat.read(src, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n# quick values for the browser test\n" + "\n".join(
        f"{k} = {v!r}" for k, v in params.items()
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, folder / src.name)
    return folder / src.name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tiny_home, checkpoint, shots, tmp_path_factory):
    """JupyterLab on 127.0.0.1:<free port>, token set, serving quick copies of the chapters."""
    root = tmp_path_factory.mktemp("lab")
    for stem in CHAPTERS:
        quick_copy(stem, root, checkpoint)
    cfg = tmp_path_factory.mktemp("lab_config")
    token, port = secrets.token_hex(16), _free_port()
    env = dict(
        os.environ,
        TRASHKIT_HOME=str(tiny_home),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        JUPYTER_CONFIG_DIR=str(cfg / "config"),
        JUPYTER_RUNTIME_DIR=str(cfg / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(cfg / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(cfg / "workspaces"),
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(shots / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited ({proc.returncode}); see {shots / 'jupyterlab.log'}"
                )
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} within 90 s")
                time.sleep(0.5)
        yield {"base": base, "token": token, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def chromium_browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


# the notebook panel in front and its kernel, through the app JupyterLab exposes
_PANEL = "jupyterapp.shell.currentWidget"
_KERNEL = f"{_PANEL}.sessionContext.session.kernel"
_READY = (
    f"() => !!(window.jupyterapp && {_PANEL} && {_PANEL}.sessionContext && "
    f"{_PANEL}.sessionContext.session && {_KERNEL} && {_KERNEL}.status === 'idle')"
)

#: what a widget displays, minus the controls' own state (a slider's readout, a select's options)
_DISPLAY = """el => {
  const c = el.cloneNode(true);
  c.querySelectorAll('.widget-readout, select, input, textarea').forEach(n => n.remove());
  const imgs = Array.from(el.querySelectorAll('img'))
    .map(i => i.src.length + ':' + i.src.slice(-40));
  return c.textContent.replace(/\\s+/g, ' ') + ' | ' + imgs.join(',');
}"""


def _controls(root):
    """Sliders first (a drag is the real gesture), then drop-downs."""
    return [("slider", s) for s in root.locator(".widget-slider").all()] + [
        ("select", s) for s in root.locator(".widget-dropdown select").all()
    ]


def _move(page, kind: str, control) -> str:
    """Move one control the way a user does; return what it now says."""
    control.scroll_into_view_if_needed()
    if kind == "select":
        options = control.locator("option").all_inner_texts()
        current = control.input_value()
        values = control.locator("option").evaluate_all("os => os.map(o => o.value)")
        target = next((v for v in reversed(values) if v != current), current)
        control.select_option(value=target)
        return f"select {current!r} -> {target!r} ({len(options)} options)"
    handle, track = control.locator(".noUi-handle"), control.locator(".noUi-base")
    before = handle.get_attribute("aria-valuenow")
    hb, tb = handle.bounding_box(), track.bounding_box()
    x0, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    frac = 0.25 if (x0 - tb["x"]) / max(tb["width"], 1) > 0.5 else 0.75
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(tb["x"] + frac * tb["width"], y, steps=8)
    page.mouse.up()
    label = control.locator(".widget-label").first.inner_text()
    return f"slider {label!r} {before} -> {handle.get_attribute('aria-valuenow')}"


def _changed(root, before: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if root.evaluate(_DISPLAY) != before:
            return True
        time.sleep(0.25)
    return False


@pytest.mark.parametrize("stem", list(CHAPTERS))
def test_chapter_runs_and_widgets_respond(stem, lab, chromium_browser, shots):
    page = chromium_browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab['base']}/lab/tree/{stem}.ipynb?reset&token={lab['token']}")
        page.wait_for_function(_READY, timeout=120_000)
        t0 = time.monotonic()
        ok = page.evaluate(
            "async () => await jupyterapp.commands.execute('notebook:run-all-cells')"
        )
        page.wait_for_function(_READY, timeout=120_000)
        seconds = time.monotonic() - t0
        page.evaluate("async () => await jupyterapp.commands.execute('docmanager:save')")
        page.screenshot(path=str(shots / f"{stem}_executed.png"))

        saved = lab["root"] / f"{stem}.ipynb"
        nb = nbformat.read(saved, as_version=4)
        errors = [
            f"{o.ename}: {o.evalue}"
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "error"
        ]
        assert not errors, f"{stem}: error output in JupyterLab: {errors}"
        assert ok, f"{stem}: run-all did not finish"
        unrun = [
            c.source[:60]
            for c in nb.cells
            if c.cell_type == "code" and c.source.strip() and c.execution_count is None
        ]
        assert not unrun, f"{stem}: cells not executed: {unrun}"
        EXECUTED[stem] = saved
        print(f"{stem}: all cells ran in JupyterLab in {seconds:.0f} s")

        # every widget view with a control must render and answer a control
        views = [
            v
            for v in page.locator(".jp-OutputArea-output:has(.jupyter-widgets)").all()
            if v.locator(".widget-slider, .widget-dropdown select").count()
        ]
        assert views, f"{stem}: the {CHAPTERS[stem]} did not render (no widget with a control)"
        for i, view in enumerate(views):
            view.scroll_into_view_if_needed()
            view.screenshot(path=str(shots / f"{stem}_widget{i}_before.png"))
            moved = []
            for kind, control in _controls(view):
                before = view.evaluate(_DISPLAY)
                moved.append(_move(page, kind, control))
                if _changed(view, before):
                    break
            else:
                pytest.fail(
                    f"{stem}: no control of widget {i} changed its display (tried: {moved})"
                )
            view.screenshot(path=str(shots / f"{stem}_widget{i}_after.png"))
            print(f"{stem}: widget {i} responds: {moved[-1]}")
    finally:
        page.close()


def test_book_pages_show_their_figures(chromium_browser, shots, tmp_path):
    """The book of the chapters JupyterLab just ran (or, run alone, of chapter 1 executed
    with papermill) opens from disk with every image decoded and nothing fetched."""
    from trashkit import book

    if EXECUTED:
        results = [
            {
                "chapter": stem,
                "source": str(REPO / "notebooks" / path.name),
                "executed": str(path),
                "parameters": {"(quick copy)": True},
                "seconds": 0.0,
                "error": None,
            }
            for stem, path in EXECUTED.items()
        ]
        out = tmp_path / "book"
        out.mkdir()
        book.render_book(results, out, book.machine_info(), "tests/test_browser.py")
    else:
        out, _ = book.build_book(only=["01"], defaults=book.QUICK_PARAMS, base=tmp_path)
    fixture_book, _ = book.build_book(
        notebooks=REPO / "tests" / "fixtures" / "chapters", base=tmp_path
    )

    page = chromium_browser.new_page(viewport={"width": 1400, "height": 1000})
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    try:
        page.goto((out / "index.html").as_uri())
        chapters = page.locator("ol.chapters > li > a")
        assert chapters.count() >= 1
        page.screenshot(path=str(shots / "book_index.png"))
        chapters.first.click()
        page.wait_for_load_state("load")
        images = page.evaluate(
            "() => Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        assert len(images) >= 2, f"expected the chapter's figures, found {len(images)} images"
        assert all(done and width > 0 for done, width in images), images
        assert page.locator("nav.book-toc li").count() >= 3
        page.screenshot(path=str(shots / "book_chapter.png"))

        page.goto((fixture_book / "01_figure.html").as_uri())
        page.wait_for_function(
            "() => document.querySelectorAll('.MathJax, .MathJax_Display').length >= 2",
            timeout=30_000,
        )
        page.screenshot(path=str(shots / "book_formula.png"))
    finally:
        page.close()
    remote = [u for u in fetched if not u.startswith(("file:", "data:", "blob:"))]
    assert not remote, f"the book fetched from the network: {remote}"
