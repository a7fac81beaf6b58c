"""Command line: ``python -m trashkit demo`` (what ``make demo`` runs) and friends."""

from __future__ import annotations

import argparse
import difflib
import json
import sys


def key_values(items: list[str], fields: set[str], what: str) -> dict:
    """``key=value`` command-line pairs; values parse as JSON where they can (numbers,
    true/false, null, lists), else stay strings. An unknown key is an error naming it."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SystemExit(
                f"trashkit: unknown {what} parameter {key!r}{hint}; valid: {sorted(fields)}"
            )
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _train(args) -> int:
    """``python -m trashkit train`` (and ``torchrun ... -m trashkit train``)."""
    import dataclasses

    import torch.distributed as dist

    from .train import TrainConfig, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = key_values(args.set, fields, "training")
    try:
        metrics = train(
            given if args.resume else TrainConfig.from_dict(given),
            args.output_dir,
            resume=args.resume,
        )
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if "val_macro_f1" in metrics:
        print(
            f"validation macro-F1 {metrics['val_macro_f1']:.4f}, {metrics['macs']:,} MACs, "
            f"run folder {metrics['run_dir']}"
        )
    return 0


def _add_run_commands(sub) -> None:
    """``search`` and ``train``: one Optuna worker, one training run (key=value settings)."""
    sp = sub.add_parser("search", help="run an Optuna worker on a (shared) study")
    sp.add_argument("--output-dir", required=True)
    sp.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="SearchConfig fields, e.g. n_trials=20 epochs=3 storage=postgresql://...",
    )
    tr = sub.add_parser(
        "train",
        help="train one run (also under torchrun: one process per "
        "GPU/CPU share, DistributedDataParallel)",
    )
    tr.add_argument(
        "--output-dir",
        default=None,
        help="the run folder (required under torchrun; default: a fresh one)",
    )
    tr.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="TrainConfig fields, e.g. data=path model=mbv3_reduced epochs=200",
    )
    tr.add_argument(
        "--resume", action="store_true", help="continue the run in --output-dir from its last.pt"
    )


def _add_competition_commands(sub) -> None:
    """``competition``: the class competition (its commands live in trashkit/competition/cli.py)."""
    from .competition.cli import add_parser

    add_parser(sub)


def _parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job (demo, book, student, search, train)."""
    ap = argparse.ArgumentParser(prog="trashkit")
    ap.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error, not one line"
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("demo", help="build the default data and execute every chapter")
    sub.add_parser("build-default", help="build the synthetic default dataset only")
    bk = sub.add_parser(
        "book",
        help="execute every chapter and render a static HTML book "
        "into a fresh outputs/<run-id>-book/",
    )
    bk.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="papermill parameter for every chapter that declares NAME, or for "
        "one chapter as NN.NAME (e.g. -p quick True -p 04.epochs 2)",
    )
    bk.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters")
    bk.add_argument(
        "--quick",
        action="store_true",
        help="smoke-test sizes (a preview in minutes; numbers meaningless)",
    )
    bk.add_argument(
        "--no-demo-params",
        action="store_true",
        help="start from the chapters' own defaults, not the demo's",
    )
    st = sub.add_parser(
        "student",
        help="student copies (solutions cleared by nbgrader) "
        "into a fresh outputs/<run-id>-student/",
    )
    st.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters")
    _add_run_commands(sub)
    _add_competition_commands(sub)
    return ap


#: errors that are the user's (a bad parameter, a refused folder or file, a server that
#: cannot be reached): one line on stderr and exit status 2, like git; --debug shows the trace
USER_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    ConnectionError,
    TimeoutError,
    KeyError,
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv  # anywhere on the line, before or after the sub-command
    args = _parser().parse_args([a for a in argv if a != "--debug"])
    try:
        return _dispatch(args, argv)
    except USER_ERRORS + _more_user_errors() as exc:
        if debug:
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"trashkit {args.cmd}: error: {text}", file=sys.stderr)
        return 2


def _more_user_errors() -> tuple[type[BaseException], ...]:
    from .runs import RunLocked

    return (RunLocked,)


def _dispatch(args, argv: list[str] | None) -> int:
    """Run the sub-command ``args.cmd``; its exit status."""
    if args.cmd == "competition":
        from .competition.cli import run

        return run(args)
    if args.cmd == "train":
        return _train(args)
    if args.cmd == "search":
        import dataclasses
        from .search import SearchConfig, run_search, finished

        kwargs = key_values(args.set, {f.name for f in dataclasses.fields(SearchConfig)}, "search")
        study = run_search(SearchConfig.from_dict(kwargs), args.output_dir)
        print(f"study {study.study_name}: {len(finished(study))} finished trials")
        return 0
    if args.cmd == "book":
        import shlex

        from .book import DEMO_PARAMS, QUICK_PARAMS, build_book

        cmd = "python -m trashkit " + shlex.join(argv)
        defaults = QUICK_PARAMS if args.quick else None if args.no_demo_params else DEMO_PARAMS
        _, results = build_book(args.parameter, args.chapters, command=cmd, defaults=defaults)
        return 1 if any(r["error"] for r in results) else 0
    if args.cmd == "student":
        from .book import make_student

        make_student(args.chapters)
        return 0
    if args.cmd == "demo":
        from .book import run_demo

        return 1 if any(r["error"] for r in run_demo()) else 0
    else:
        from .data import resolve_source

        print(resolve_source("default"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
