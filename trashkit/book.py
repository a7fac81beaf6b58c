"""The workbook as a static HTML book, and student copies of the chapters.

``make book`` (``python -m trashkit book``) executes every chapter with papermill, the way
``make demo`` does (kernel ``python3``, working folder ``notebooks/``, demo parameters unless
told otherwise), and renders the executed notebooks with nbconvert's HTML exporter (the "lab"
template) into a fresh ``outputs/<run-id>-book/``: ``index.html`` lists the chapters in order,
every chapter page carries its outputs and figures embedded as data URIs, a table of contents,
links to the previous and next chapter, and the run's parameters and machine.

Why nbconvert: it is the exporter Jupyter itself uses, it ships its templates and CSS inside
the Python package, and it renders without any network; a book builder (Jupyter Book, Quarto)
would add a second toolchain for a few pages. The pages load nothing from a CDN for reading:
the one external script nbconvert would add (require.js) is dropped, widget outputs are shown
as their text (a static page has no kernel to answer a slider), and formulas are typeset by a
copy of MathJax 2 from the ``jupyter-server-mathjax`` package placed in ``_static/mathjax``.

``make student`` (``python -m trashkit student``) writes copies of every chapter with the
solutions removed by nbgrader's own ``ClearSolutions`` preprocessor: everything between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes :data:`CODE_STUB`, which raises a clear
"not yet solved" error; outputs are stripped.

This module sits on top of the package: it imports ``paths`` and ``runs`` and executes the
chapters; nothing in trashkit imports it.
"""

from __future__ import annotations

import ast
import datetime as _dt
import html
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote
from collections.abc import Iterable
from typing import Any

from .paths import home
from .runs import new_run_dir

#: the message every cleared exercise raises in a student copy (tests look for it)
NOT_SOLVED = "Exercise not yet solved"
#: what nbgrader's ClearSolutions puts where a code solution was
CODE_STUB = (
    f'raise NotImplementedError("{NOT_SOLVED}: write your answer here '
    '(replace this line), then run the cell again")'
)
#: ... and where a written (markdown) solution was
TEXT_STUB = "**YOUR ANSWER HERE** (exercise not yet solved)"
#: nbgrader's own delimiters: a line containing one of these opens / closes a solution
BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"

#: the matplotlib backend the kernels get, so figures land in the notebook (a CI shell often
#: exports MPLBACKEND=Agg, which would silently drop every figure from the book)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


#: ``make book PARAMS=--quick``: every chapter in a minute or so on 2 cores, for a preview of
#: the book (numbers meaningless); the same sizes as the notebook smoke tests. Keep in step
#: with the chapters' parameter names (a name a chapter no longer declares is skipped).
QUICK_PARAMS = {
    "02_flops_macs": {"quick": True, "resolution": 96},
    "03_shufflenetv2_guidelines": {"quick": True},
    "04_train": {"epochs": 2, "model": "tiny", "image_size": 64, "ablation_epochs": 1},
    "05_score": {"latency_runs": 3},
    "06_automl": {"n_trials": 3, "epochs": 1, "image_sizes": [32], "budget": 20_000_000},
    "07_compress": {
        "train_epochs": 1,
        "finetune_epochs": 1,
        "student": "tiny",
        "latency_runs": 3,
        "scan_ratios": [0.6, 0.3],
        "scan_epochs": 1,
    },
    "08_metric_learning": {"quick": True},
}


# --------------------------------------------------------------------------- chapters


def chapter_paths(
    folder: str | Path | None = None, only: Iterable[str] | None = None
) -> list[Path]:
    """The chapter notebooks (``NN_name.ipynb``) of ``folder`` (default ``notebooks/``), in
    order; ``only`` keeps those whose stem or number prefix is listed (``"02"`` or
    ``"02_flops_macs"``)."""
    if folder is None:  # the source checkout's chapters, even when TRASHKIT_HOME is elsewhere
        folder = Path(__file__).resolve().parents[1] / "notebooks"
        folder = folder if folder.is_dir() else home() / "notebooks"
    folder = Path(folder)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = [str(w) for w in only]
        unknown = [w for w in wanted if not any(_matches(p, w) for p in paths)]
        if unknown:
            raise ValueError(
                f"no chapter {unknown} in {folder}; chapters: {[p.stem for p in paths]}"
            )
        paths = [p for p in paths if any(_matches(p, w) for w in wanted)]
    if not paths:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) in {folder}")
    return paths


def _matches(path: Path, key: str) -> bool:
    return key in (path.stem, path.name, path.stem.split("_")[0])


def declared_parameters(nb_or_path) -> dict[str, Any]:
    """Names (and literal default values, where literal) of the ``parameters`` cell."""
    import nbformat

    nb = (
        nb_or_path
        if not isinstance(nb_or_path, (str, Path))
        else nbformat.read(nb_or_path, as_version=4)
    )
    out: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else [node.target]
                    if isinstance(node, ast.AnnAssign)
                    else []
                )
                for t in targets:
                    if isinstance(t, ast.Name):
                        try:
                            out[t.id] = ast.literal_eval(node.value)
                        except (ValueError, TypeError, SyntaxError):
                            out[t.id] = ...
    return out


def parse_value(text: str) -> Any:
    """A command-line value the way papermill's ``-p`` reads it, plus YAML lists/dicts:
    ``True``/``False``/``None``, numbers, ``[32, 48]``; anything else stays a string (``yes``,
    ``on`` or a date are not turned into booleans or dates)."""
    import yaml

    if text in ("None", "null", "~"):
        return None
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    if text[:1] in "[{":
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return value if isinstance(value, (list, dict)) else text
    return text


def resolve_parameters(
    paths: list[Path],
    pairs: Iterable[tuple[str, str]] = (),
    defaults: dict[str, dict] | None = None,
    static: dict[str, Any] | None = None,
) -> dict[str, dict]:
    """Parameters per chapter stem.

    ``defaults`` (e.g. the demo's, keyed by stem; a name the chapter no longer declares is
    skipped with a note) come first, then ``static`` (applied to every chapter that declares
    the name), then ``pairs`` from the command line:
    ``("quick", "True")`` sets ``quick`` in every chapter whose parameters cell declares it;
    ``("04.epochs", "2")`` or ``("04_train.epochs", "2")`` sets it in that chapter only.
    A name no selected chapter declares is an error (a typo would otherwise do nothing).
    """
    declared = {p.stem: declared_parameters(p) for p in paths}
    params: dict[str, dict] = {p.stem: {} for p in paths}
    for stem, names in declared.items():
        for k, v in (defaults or {}).get(stem, {}).items():
            if k in names:
                params[stem][k] = v
            else:
                print(f"note: {stem} does not declare {k!r}; default skipped", file=sys.stderr)
        params[stem].update({k: v for k, v in (static or {}).items() if k in names})
    for key, raw in pairs:
        for stem, name in _targets(key, paths, declared):
            params[stem][name] = parse_value(raw)
    return params


def _targets(key: str, paths: list[Path], declared: dict[str, dict]) -> list[tuple[str, str]]:
    """(chapter stem, parameter) pairs that ``-p key`` sets; an error when none."""
    chapter, _, name = key.rpartition(".")
    if not chapter:
        hits = [p.stem for p in paths if name in declared[p.stem]]
        if not hits:
            raise ValueError(f"-p {name}: no selected chapter declares {name!r}")
        return [(stem, name) for stem in hits]
    hits = [p.stem for p in paths if _matches(p, chapter)]
    if not hits:
        raise ValueError(
            f"-p {key}: no selected chapter {chapter!r} (chapters: {[p.stem for p in paths]})"
        )
    for stem in hits:
        if name not in declared[stem]:
            print(f"warning: {stem} does not declare {name!r}; injected anyway", file=sys.stderr)
    return [(stem, name) for stem in hits]


# --------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    """What the run ran on: date, CPU, GPU, torch and Python versions, the source commit."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": _cpu_name(),
        "cpu cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = ", ".join(
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            )
            info["cuda"] = torch.version.cuda
        else:
            info["gpu"] = "none (CPU only)"
    except Exception as exc:  # pragma: no cover - torch is a hard dependency
        info["torch"] = f"not importable ({exc})"
    info["trashkit commit"] = _git_commit()
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    repo = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


# --------------------------------------------------------------------------- execution


@contextmanager
def _kernel_env(**env: str):
    """Environment variables the kernels inherit, restored afterwards."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_chapters(
    paths: list[Path], params: dict[str, dict], work: Path, kernel: str = "python3"
) -> list[dict]:
    """Run each chapter with papermill into ``work/<name>.ipynb`` (its ``output_dir`` is
    ``work/<stem>/``); a chapter that fails is recorded and the next one still runs."""
    import papermill as pm

    work.mkdir(parents=True, exist_ok=True)
    results = []
    # figures inline (not Agg), and no progress-bar widgets: a static page cannot update them
    with _kernel_env(MPLBACKEND=INLINE_BACKEND, TQDM_DISABLE="1"):
        for nb in paths:
            p = dict(params.get(nb.stem, {}))
            if "output_dir" in declared_parameters(nb):
                p.setdefault("output_dir", str(work / nb.stem))
            out = work / nb.name
            print(f"running {nb.name} {_short(p)}", flush=True)
            t0 = time.perf_counter()
            error = None
            try:
                pm.execute_notebook(
                    str(nb),
                    str(out),
                    parameters=p,
                    kernel_name=kernel,
                    cwd=str(nb.parent),
                    progress_bar=False,
                )
            except pm.PapermillExecutionError as exc:
                error = f"{exc.ename}: {exc.evalue}"
                print(f"  FAILED: {error}", file=sys.stderr, flush=True)
            seconds = time.perf_counter() - t0
            print(f"  {seconds:.0f} s", flush=True)
            results.append(
                {
                    "chapter": nb.stem,
                    "source": str(nb),
                    "executed": str(out),
                    "parameters": p,
                    "seconds": round(seconds, 1),
                    "error": error,
                }
            )
    return results


def _short(p: dict) -> str:
    return " ".join(f"{k}={v!r}" for k, v in p.items() if k != "output_dir")


# --------------------------------------------------------------------------- rendering

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


def _index_html(rows: str, first: str, params: dict, info: dict, command: str) -> str:
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
    (out / "index.html").write_text(_index_html(rows, first, params, info, command), "utf-8")
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
        from .data import resolve_source

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


# --------------------------------------------------------------------------- student copies


def has_solutions(nb) -> bool:
    return any(BEGIN_SOLUTION in c.source for c in nb.cells)


def student_copy(nb):
    """A copy of ``nb`` with every solution region replaced by nbgrader's ClearSolutions
    (``enforce_metadata`` off: the chapters mark solutions by the delimiters alone) and its
    outputs stripped. Hidden tests (``### BEGIN HIDDEN TESTS``) go too, if a chapter has any."""
    import copy
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(nb)
    resources: dict = {}
    clear = ClearSolutions(
        code_stub={"python": CODE_STUB},
        text_stub=TEXT_STUB,
        begin_solution_delimeter=BEGIN_SOLUTION,
        end_solution_delimeter=END_SOLUTION,
        enforce_metadata=False,
    )
    nb, resources = clear.preprocess(nb, resources)
    nb, resources = ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def make_student(
    only: Iterable[str] | None = None,
    notebooks: str | Path | None = None,
    base: str | Path | None = None,
) -> Path:
    """Student copies of the chapters in a fresh ``<outputs>/<run-id>-student/``."""
    import nbformat

    out = new_run_dir("student", base=base)
    for path in chapter_paths(notebooks, only):
        nb = nbformat.read(path, as_version=4)
        n = sum(c.source.count(BEGIN_SOLUTION) for c in nb.cells)
        nbformat.write(student_copy(nb), out / path.name)
        print(
            f"{path.name}: {n} solution(s) cleared"
            if n
            else f"{path.name}: no solution markers (copied without outputs)"
        )
    print(f"\nstudent copies: {out}")
    return out
