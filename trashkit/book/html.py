"""The static HTML book: executed chapters rendered by nbconvert into one self-contained
folder (index, one page per chapter with figures embedded, local MathJax, prev/next links,
the run's parameters and machine). Every name a page shows is escaped, every link
percent-encoded (:func:`href`)."""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..runs import new_run_dir
from .chapters import (
    WIDGET_VIEW,
    chapter_paths,
    execute_chapters,
    machine_info,
    resolve_parameters,
)


_CSS = """
:root { --book-accent: #1b6f5a; }
.book-bar { position: sticky; top: 0; z-index: 10; display: flex; gap: 1em; align-items: center;
  flex-wrap: wrap; padding: 0.5em 1em; background: #f4f7f6; border-bottom: 1px solid #cfd8d5;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 14px; }
.book-bar a { color: var(--book-accent); text-decoration: none; }
.book-bar .book-title { font-weight: bold; margin-right: auto; }
.book-box { margin: 1em 2em; padding: 0.6em 1em; border: 1px solid #cfd8d5; border-radius: 6px;
  background: #fbfcfc; font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; }
.book-box summary { cursor: pointer; font-weight: bold; }
.book-box table { border-collapse: collapse; margin: 0.4em 0; }
.book-box td, .book-box th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
.book-box code { font-size: 12px; }
.book-toc ol { margin: 0.3em 0; padding-left: 1.4em; }
.book-toc li.l3 { margin-left: 1.2em; list-style: circle; }
.book-nav { display: flex; justify-content: space-between; margin: 2em; font-size: 15px;
  font-family: var(--jp-ui-font-family, sans-serif); }
.book-nav a { color: var(--book-accent); }
.book-failed { color: #b00020; font-weight: bold; }
@media (min-width: 1400px) {
  .book-toc { position: fixed; top: 3.5em; right: 1em; width: 260px; max-height: 80vh;
    overflow: auto; margin: 0; }
  body.book-page main, body.book-page .book-run, body.book-page .book-nav {
    margin-right: 300px; }
}
"""

_MATHJAX_PARTS = ("MathJax.js", "LICENSE", "config", "extensions", "jax", "fonts/HTML-CSS/STIX-Web")
#: not needed to typeset TeX with the HTML-CSS output (7 MB of the package's 11 MB)
_MATHJAX_SKIP = ("a11y", "localization", "SVG")


def copy_mathjax(static: Path) -> str | None:
    """Copy MathJax 2 from the jupyter-server-mathjax package into ``static/mathjax``; return
    the relative script URL, or None when the package is missing (pages then show raw TeX)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    dst = static / "mathjax"
    for part in _MATHJAX_PARTS:
        s = src / part
        if s.is_dir():
            shutil.copytree(
                s, dst / part, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_MATHJAX_SKIP)
            )
        elif s.is_file():
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / part)
    return "_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def _static_notebook(nb):
    """Widget views become their text (no kernel answers them in a page); no widget state,
    so the page does not ask a CDN for the widget manager."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
                if "text/plain" in data:
                    data["text/plain"] = (
                        "[interactive widget: open the notebook in "
                        "JupyterLab to use it]\n" + str(data["text/plain"])
                    )
    return nb


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return re.sub(r"[*_`]", "", m.group(1)).strip()
    return fallback


def _summary(nb) -> str:
    """The first prose paragraph after the title (for the index)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for para in re.split(r"\n\s*\n", cell.source):
            para = para.strip()
            if para and not para.startswith(("#", "|", "```", "<", "!", "-", "*", ">")):
                text = re.sub(r"\s+", " ", re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", r"\1", para))
                return text[:280] + ("…" if len(text) > 280 else "")
    return ""


def _shown(params: dict, out: Path) -> dict:
    """Parameters as shown on a page: paths inside the book folder relative to it."""
    return {k: v.replace(str(out), ".") if isinstance(v, str) else v for k, v in params.items()}


def _kv_table(rows: dict) -> str:
    return (
        "<table>"
        + "".join(
            f"<tr><th>{html.escape(str(k))}</th><td><code>{html.escape(_fmt(v))}</code></td></tr>"
            for k, v in rows.items()
        )
        + "</table>"
    )


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _run_box(info: dict, params: dict, command: str, error: str | None = None) -> str:
    fail = (
        (f'<p class="book-failed">This chapter stopped with an error: {html.escape(error)}</p>')
        if error
        else ""
    )
    return (
        f'<details class="book-box book-run"><summary>Run: parameters and machine'
        f"</summary>{fail}<p>Parameters given to papermill (everything else is the "
        f"chapter's default):</p>{_kv_table(params) if params else '<p>(none)</p>'}"
        f"<p>Machine:</p>{_kv_table(info)}<p>Built with <code>{html.escape(command)}"
        f"</code></p></details>"
    )


def href(name: str) -> str:
    """A file name as an ``href`` value: percent-encoded as a URL path, then escaped for an
    HTML attribute (a chapter file named ``"><img onerror=...>`` stays a file name)."""
    return html.escape(quote(name), quote=True)


def _nav(prev: tuple | None, nxt: tuple | None) -> str:
    left = (
        f'<a rel="prev" href="{href(prev[0])}">← {html.escape(prev[1])}</a>'
        if prev
        else "<span></span>"
    )
    right = (
        f'<a rel="next" href="{href(nxt[0])}">{html.escape(nxt[1])} →</a>'
        if nxt
        else "<span></span>"
    )
    return f'<nav class="book-nav">{left}<a href="index.html">Contents</a>{right}</nav>'


def render_page(
    executed: Path,
    dest: Path,
    *,
    title: str,
    prev: tuple | None,
    nxt: tuple | None,
    info: dict,
    params: dict,
    command: str,
    resource_dir: Path,
    mathjax_url: str | None,
    error: str | None = None,
) -> Path:
    """One executed notebook -> one self-contained chapter page (images as data URIs)."""
    import nbformat
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    nb = _static_notebook(nbformat.read(executed, as_version=4))
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    if mathjax_url:
        exporter.mathjax_url = mathjax_url
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title, "path": str(resource_dir)}}
    )
    soup = BeautifulSoup(body, "html.parser")
    # nothing for reading comes from a CDN: require.js only serves JS/widget outputs
    for tag in soup.find_all("script", src=True):
        if "require" in tag["src"] and "cdnjs" in tag["src"]:
            tag.decompose()
    if not mathjax_url:  # no offline copy: drop the CDN MathJax too, TeX shows as source
        for tag in soup.find_all("script", src=True):
            if "mathjax" in tag["src"].lower():
                tag.decompose()
    soup.head.append(BeautifulSoup(f"<style>{_CSS}</style>", "html.parser"))
    main = soup.body.find("main")
    heads = [h for h in main.find_all(["h1", "h2", "h3"]) if h.get("id")]
    toc = "".join(
        f'<li class="l{h.name[1]}"><a href="#{html.escape(h["id"], quote=True)}">'
        f"{html.escape(h.get_text().rstrip('¶').strip())}</a></li>"
        for h in heads
    )
    top = (
        f'<header class="book-bar"><span class="book-title"><a href="index.html">trashkit '
        f"workbook</a> › {html.escape(title)}</span>"
        + (f'<a rel="prev" href="{href(prev[0])}">← previous</a>' if prev else "")
        + '<a href="index.html">contents</a>'
        + (f'<a rel="next" href="{href(nxt[0])}">next →</a>' if nxt else "")
        + "</header>"
        + f'<nav class="book-box book-toc"><details open><summary>On this page</summary>'
        f"<ol>{toc}</ol></details></nav>" + _run_box(info, params, command, error)
    )
    soup.body["class"] = soup.body.get("class", []) + ["book-page"]
    main.insert_before(BeautifulSoup(top, "html.parser"))
    main.insert_after(BeautifulSoup(_nav(prev, nxt), "html.parser"))
    dest.write_text(str(soup), encoding="utf-8")
    return dest


_INDEX_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 0 auto 3em;
  line-height: 1.5; }
main { padding: 0 1em; }
ol.chapters > li { margin: 0.8em 0; }
ol.chapters p { margin: 0.2em 0; color: #333; }
"""


#: the chapters' instructor notes (history, how the reference numbers were made, timings,
#: the questionnaires' answer keys): in the book, never in a student copy
INSTRUCTOR_NOTES = Path(__file__).resolve().parents[2] / "docs" / "instructors"


def render_instructor_pages(out: Path, notes: Path = INSTRUCTOR_NOTES) -> list[tuple[str, str]]:
    """Each ``notes/NN.md`` as ``out/instructors/NN.html`` (markdown by mistune, raw HTML
    escaped); ``[(href, title)]`` in chapter order, empty when there are no notes."""
    import mistune

    if not notes.is_dir():
        return []
    render = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])
    (out / "instructors").mkdir(parents=True, exist_ok=True)
    pages = []
    for note in sorted(notes.glob("[0-9][0-9].md")):
        text = note.read_text(encoding="utf-8")
        title = next(
            (ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")),
            f"Chapter {note.stem}",
        )
        body = f"<main>{render(text)}</main>"
        page = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title><style>{_INDEX_CSS}{_CSS}</style></head>"
            f'<body class="book-index"><header class="book-bar"><span class="book-title">'
            f'<a href="../index.html">trashkit workbook</a> › instructor\'s note</span></header>'
            f"{body}</body></html>"
        )
        (out / "instructors" / f"{note.stem}.html").write_text(page, encoding="utf-8")
        pages.append((f"instructors/{note.stem}.html", title))
    return pages


def _instructor_list(pages: list[tuple[str, str]]) -> str:
    if not pages:
        return ""
    items = "".join(f'<li><a href="{href(h)}">{html.escape(t)}</a></li>' for h, t in pages)
    return (
        '<h2 id="instructors">For instructors</h2><p>Each chapter\'s note: how its reference '
        "numbers were produced, run times, pitfalls in class, the questionnaire's answer key. "
        f"Student copies (<code>make student</code>) do not contain them.</p><ul>{items}</ul>"
    )


def _index_html(
    rows: str, first: str, params: dict, info: dict, command: str, notes: str = ""
) -> str:
    date = html.escape(str(info.get("date")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>trashkit workbook</title><style>{_INDEX_CSS}{_CSS}</style></head>
<body class="book-index"><header class="book-bar">
<span class="book-title">trashkit workbook</span>
<a href="{href(first)}">start reading →</a></header>
<main><h1 id="contents">trashkit: a model-optimization workbook</h1>
<p>Every chapter below was executed on {date} and rendered with its outputs and figures.
The interactive widgets appear only when you open the notebooks themselves in JupyterLab.</p>
<ol class="chapters">{rows}</ol>
{notes}
<details class="book-box book-run" open><summary>Run: parameters and machine</summary>
<p>Parameters given to papermill, per chapter (everything else is the chapter's default):</p>
{_kv_table(params)}<p>Machine:</p>{_kv_table(info)}
<p>Built with <code>{html.escape(command)}</code></p></details>
</main></body></html>
"""


def render_book(
    results: list[dict], out: Path, info: dict, command: str, resource_dir: Path | None = None
) -> Path:
    """``results`` from :func:`execute_chapters` -> ``out/index.html`` and one page each."""
    import nbformat

    mathjax_url = copy_mathjax(out / "_static")
    pages = []
    for r in results:
        nb = nbformat.read(r["executed"], as_version=4)
        pages.append(
            (Path(r["executed"]).stem + ".html", _title(nb, r["chapter"]), _summary(nb), r)
        )
    for i, (name, title, _, r) in enumerate(pages):
        prev = pages[i - 1][:2] if i > 0 else None
        nxt = pages[i + 1][:2] if i + 1 < len(pages) else None
        render_page(
            Path(r["executed"]),
            out / name,
            title=title,
            prev=prev,
            nxt=nxt,
            info=info,
            params=_shown(r["parameters"], out),
            command=command,
            error=r.get("error"),
            mathjax_url=mathjax_url,
            resource_dir=resource_dir or Path(r["source"]).parent,
        )
    rows = "".join(
        f'<li><a href="{href(name)}">{html.escape(title)}</a>'
        + (' <span class="book-failed">(stopped with an error)</span>' if r.get("error") else "")
        + f" <small>(ran in {r['seconds']:.0f} s)</small>"
        + (f"<p>{html.escape(summary)}</p>" if summary else "")
        + "</li>"
        for name, title, summary, r in pages
    )
    params = {r["chapter"]: _shown(r["parameters"], out) for r in results}
    first = pages[0][0] if pages else "index.html"
    notes = _instructor_list(render_instructor_pages(out))
    (out / "index.html").write_text(_index_html(rows, first, params, info, command, notes), "utf-8")
    (out / "book.json").write_text(
        json.dumps(
            {"machine": info, "command": command, "chapters": results}, indent=2, default=str
        )
    )
    return out / "index.html"


def build_book(
    pairs: Iterable[tuple[str, str]] = (),
    only: Iterable[str] | None = None,
    defaults: dict[str, dict] | None = None,
    notebooks: str | Path | None = None,
    kernel: str = "python3",
    base: str | Path | None = None,
    command: str | None = None,
) -> tuple[Path, list[dict]]:
    """Execute the chapters and render the book into a fresh ``<outputs>/<run-id>-book/``.

    ``defaults`` are per-chapter parameters (``make book`` passes the demo's, ``DEMO_PARAMS``
    of ``trashkit.__main__``); ``pairs`` (see :func:`resolve_parameters`) override them, and
    ``interactive`` is False wherever a chapter declares it (a page cannot run a widget).
    Returns the book folder and the per-chapter results (``error`` set where one failed).
    """
    paths = chapter_paths(notebooks, only)
    params = resolve_parameters(paths, pairs, defaults=defaults, static={"interactive": False})
    if notebooks is None:  # the chapters' default data, as `make demo` builds it first
        from ..data import resolve_source

        print(f"default data (SYNTHETIC): {resolve_source('default').path.parent.parent}")
    out = new_run_dir("book", base=base)
    info = machine_info()
    t0 = time.perf_counter()
    results = execute_chapters(paths, params, out / "_executed", kernel=kernel)
    command = command or "python -m trashkit book " + " ".join(f"-p {k} {v}" for k, v in pairs)
    index = render_book(results, out, info, command)
    failed = [r["chapter"] for r in results if r["error"]]
    print(
        f"\nbook: {index}  ({time.perf_counter() - t0:.0f} s"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
        + ")"
    )
    return out, results
