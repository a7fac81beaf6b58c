"""Running the chapters: finding them, their parameters, the machine, and executing them
headless with papermill (``make demo`` and ``make book`` both run chapters this one way: a
chapter that fails is recorded and the next one still runs)."""

from __future__ import annotations

import ast
import datetime as _dt
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..paths import home
from ..runs import new_run_dir

#: the matplotlib backend the kernels get, so figures land in the notebook (a CI shell often
#: exports MPLBACKEND=Agg, which would silently drop every figure from the book)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


#: ``make book PARAMS=--quick``: every chapter in a minute or so on 2 cores, for a preview of
#: the book (numbers meaningless); the same sizes as the notebook smoke tests. Keep in step
#: with the chapters' parameter names (a name a chapter no longer declares is skipped).
QUICK_PARAMS = {
    "01_eda": {"split_seeds": 1},
    "02_flops_macs": {"quick": True, "resolution": 96},
    "03_shufflenetv2_guidelines": {"preset": "quick"},
    "04_train": {
        "epochs": 2,
        "model": "tiny",
        "image_size": 64,
        "ablation_epochs": 1,
        "transfer_size": 32,
    },
    "05_score": {"latency_runs": 3, "draws": 200},
    "06_automl": {
        "n_trials": 3,
        "epochs": 1,
        "image_sizes": [32],
        "budget": 20_000_000,
        "space_samples": 10,
        "inline_trials": 1,
        "supernet_epochs": 1,
        "subnets": 8,
        "standalone": 3,
    },
    "07_compress": {
        "train_epochs": 1,
        "finetune_epochs": 1,
        "student": "tiny",
        "latency_runs": 3,
        "scan_ratios": [0.6, 0.3],
        "scan_epochs": 1,
        "teacher_size": 32,
        "teacher_freeze": 8,
        "bank_views": 1,
        "bank_epochs": 1,
        "qat_steps": 5,
        "int8_channels": [8, 32],
    },
    "08_metric_learning": {"preset": "quick"},
}


#: ``make demo``: the whole workbook end to end on the synthetic default data in minutes on
#: 2 CPU cores. Its numbers demonstrate the machinery; the chapters' Reference results hold
#: the real ones.
DEMO_PARAMS = {
    "02_flops_macs": {"quick": True},
    "03_shufflenetv2_guidelines": {"preset": "quick"},
    "04_train": {
        "epochs": 3,
        "image_size": 64,
        "ablation_epochs": 0,
        "transfer_epochs": 0,
        "transfer_size": 64,
    },
    "05_score": {"latency_runs": 30},
    "06_automl": {
        "n_trials": 3,
        "epochs": 1,
        "image_sizes": [32],
        "inline_trials": 1,
        "space_samples": 20,
        "supernet_epochs": 2,
        "subnets": 12,
        "standalone": 3,
    },
    "07_compress": {
        "train_epochs": 1,
        "finetune_epochs": 1,
        "latency_runs": 10,
        "scan_ratios": [0.6],
        "teacher_size": 32,
        "teacher_freeze": 8,
        "bank_views": 1,
        "bank_epochs": 1,
        "qat_steps": 20,
        "int8_channels": [16, 128],
    },
    "08_metric_learning": {"preset": "quick"},
}


def chapter_paths(
    folder: str | Path | None = None, only: Iterable[str] | None = None
) -> list[Path]:
    """The chapter notebooks (``NN_name.ipynb``) of ``folder`` (default ``notebooks/``), in
    order; ``only`` keeps those whose stem or number prefix is listed (``"02"`` or
    ``"02_flops_macs"``)."""
    if folder is None:  # the source checkout's chapters, even when TRASHKIT_HOME is elsewhere
        folder = Path(__file__).resolve().parents[2] / "notebooks"
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


def run_demo(params: dict[str, dict] | None = None, kernel: str = "python3") -> list[dict]:
    """``make demo``: build the default data, then execute every chapter with its demo
    parameters into a fresh ``outputs/<run-id>-demo/`` (one folder per chapter inside)."""
    from ..data import resolve_source

    src = resolve_source("default")
    print(f"default data (SYNTHETIC): {src.path.parent.parent}")
    run = new_run_dir("demo")
    paths = chapter_paths()
    chosen = resolve_parameters(paths, (), defaults=DEMO_PARAMS if params is None else params)
    results = execute_chapters(paths, chosen, run, kernel)
    failed = [r["chapter"] for r in results if r["error"]]
    print(
        f"\ndone{'; FAILED: ' + ', '.join(failed) if failed else ''}. Executed notebooks "
        f"and their figures/tables are in {run}"
    )
    print(f"open them with:  .venv/bin/jupyter lab {run}")
    return results
