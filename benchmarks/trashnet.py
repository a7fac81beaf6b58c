"""The recipes on real TrashNet photos, honestly measured (closed and open track).

    python benchmarks/trashnet.py --recipe quick      # closed: chapter 4's defaults, 9.5M MACs
    python benchmarks/trashnet.py --recipe full       # closed: the same, 300 epochs
    python benchmarks/trashnet.py --recipe closed5m   # closed, <= 5M MACs, self-distilled
    python benchmarks/trashnet.py --recipe open       # open: ImageNet teacher -> <= 5M student
    python benchmarks/trashnet.py --recipe open-pretrained  # open: <= 5M student from ImageNet
    python benchmarks/trashnet.py --resume outputs/<run>             # finish an interrupted one
    python benchmarks/trashnet.py --resume outputs/<run> --seeds 1 2 # add split seeds to it
    python benchmarks/trashnet.py --resume outputs/<run> --train-seeds 43 --rows teacher student
    python benchmarks/trashnet.py --recipe quick --data FOLDER --eval FOLDER2

Two tracks: **closed** uses no weight derived from outside data (a teacher trained from
scratch is fine); **open** follows the course's rules: ImageNet-pretrained weights allowed for
the student or as a teacher, no external data, no test-set use, one model, one inference.

Protocol (benchmarks/protocol.py): each split seed holds back 20% of every class as test
images that influence nothing; 10% are validation images; the test images are scored once at
the end, for the last epoch's weights (the headline: no choice made on noisy validation) and
for best.pt chosen on validation. Every row runs on every (split seed, training seed). With
``--data FOLDER --eval FOLDER2`` any image folder is split into train/val and the chosen
checkpoints are scored once on FOLDER2; the last line printed is the macro-F1 and MACs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from protocol import (
    QUICK,
    RECOMMENDED,
    SPLIT_SEEDS,
    TRASHNET,
    VAL_FRACTION,
    describe,
    run_row,
    summary_row,
)

from trashkit.compress import pipeline
from trashkit.runs import new_run_dir, write_json

#: the <= 5M-MACs student of both tracks: width 0.5 at 128 px (4.58M official MACs), chosen
#: on validation against width 0.75 at 80 px (4.37M): `--recipe select5m --seeds 0`
STUDENT_5M = dict(model="mobilenetv3:width=0.5,depth=0.5", image_size=128)
#: the open track's pretrained student: torchvision's MobileNetV3-small (ImageNet) at 48 px,
#: the resolution that fits the budget (4,313,326 official MACs; 56 px is 5.38M), fine-tuned
#: directly with the teacher's settings. Its weights come from torchvision's hub (online once).
PRETRAINED_STUDENT = dict(
    pipeline.OPEN_TEACHER, model="mobilenetv3:width=1,depth=1", image_size=48, epochs=15
)
#: pretrained students whose weights ship offline: EfficientNet-Lite0's first stages with its
#: ImageNet weights (no head conv), at the resolution that fits the budget, same settings
LITE_STUDENTS = {
    "lite0-s3-44": ("first 3 stages at 44 px", "efficientnet_lite0:stages=3", 44),  # 4.95M
    "lite0-s2-48": ("first 2 stages at 48 px", "efficientnet_lite0:stages=2", 48),  # 3.81M
}
#: the open track's teacher: chapter 7's (EfficientNet-Lite0 fine-tuned from its ImageNet
#: weights) at what two shared CPU cores can pay: 192 px (below ImageNet's 224), 5 epochs,
#: the first three blocks frozen (generic edges and textures; their backward pass is skipped)
OPEN_TEACHER = dict(pipeline.OPEN_TEACHER, image_size=192, epochs=5, freeze=3)
#: the teacher's answers, computed once: 6 views of every training image (trashkit.train.bank)
BANK = dict(views=6, crop_scale=0.3, randaugment=(2, 9))
#: the student on the bank: chapter 7's soft-target settings, the recommended recipe otherwise
BANK_STUDENT = dict(
    RECOMMENDED,
    **STUDENT_5M,
    **pipeline.BANK_STUDENT,
    epochs=15,  # passes over the bank: 15 x 6 views = 90 looks at every image
)


def _teacher(row: str):
    """``teacher=`` the best.pt of ``row`` trained on the same split and training seed."""
    return lambda root, split, seed, params: {
        "teacher": str(root / row / f"split{split}-seed{seed}" / "best.pt")
    }


def _bank(root: Path, split: int, seed: int, params: dict) -> dict:
    """``teacher_bank=`` the open teacher's bank for this split, at the student's size
    (built here once)."""
    from trashkit.train.bank import build_bank

    teacher = root / "teacher" / f"split{split}-seed{seed}" / "best.pt"
    bank = root / "bank" / f"split{split}-seed{seed}"
    if not (bank / "bank.json").is_file():
        build_bank(teacher, bank, params["image_size"], **BANK)
    return {"teacher_bank": str(bank)}


#: recipe -> rows in the order they train: (folder, label, parameters, per-run extras)
RECIPES: dict[str, list[tuple[str, str, dict, object]]] = {
    "quick": [("quick", "closed: quick recipe, 100 epochs", QUICK, None)],
    "full": [("full", "closed: full recipe, 300 epochs", dict(RECOMMENDED, epochs=300), None)],
    "closed5m": [
        ("quick", "closed: quick recipe (the teacher)", QUICK, None),
        ("alone", "closed: <= 5M MACs alone", dict(RECOMMENDED, **STUDENT_5M, epochs=100), None),
        (
            "self-distilled",
            "closed: <= 5M MACs distilled from the quick recipe",
            dict(RECOMMENDED, **STUDENT_5M, epochs=100),
            _teacher("quick"),
        ),
    ],
    "select5m": [  # which <= 5M student: compared on validation (split 0), 30 epochs
        (
            "w050-128",
            "width 0.5, depth 0.5 at 128 px",
            dict(RECOMMENDED, model="mobilenetv3:width=0.5,depth=0.5", image_size=128, epochs=30),
            None,
        ),
        (
            "w075-80",
            "width 0.75, depth 0.5 at 80 px",
            dict(RECOMMENDED, model="mobilenetv3:width=0.75,depth=0.5", image_size=80, epochs=30),
            None,
        ),
    ],
    "open": [
        ("teacher", "open: EfficientNet-Lite0 from ImageNet", OPEN_TEACHER, None),
        ("student", "open: <= 5M MACs distilled from the bank", BANK_STUDENT, _bank),
        (  # "patient" distillation (Beyer et al., 2022): the same bank, four times the passes
            "student-long",
            "open: <= 5M MACs distilled from the bank, 60 epochs",
            dict(BANK_STUDENT, epochs=60),
            _bank,
        ),
        (  # the closed track's 100-epoch student, taught live by the ImageNet teacher: the
            # teacher sees every augmented batch the student sees (same crop, same mixup)
            "student-live",
            "open: <= 5M MACs distilled live from the ImageNet teacher, 100 epochs",
            dict(RECOMMENDED, **STUDENT_5M, epochs=100),
            _teacher("teacher"),
        ),
        (  # what the ImageNet weights give the teacher: the same network, settings and epochs
            # from random weights (nothing frozen: a random block is not worth keeping)
            "teacher-scratch",
            "closed: the same EfficientNet-Lite0 from random weights",
            dict(OPEN_TEACHER, pretrained=None, freeze=0),
            None,
        ),
    ],
    "open-pretrained": [  # the first row needs torchvision's weights once (online or $TORCH_HOME)
        (
            "mnv3-small-48",
            "open: <= 5M MACs, MobileNetV3-small from ImageNet at 48 px",
            PRETRAINED_STUDENT,
            None,
        ),
        *(
            (
                folder,
                f"open: <= 5M MACs, EfficientNet-Lite0's {what} from ImageNet",
                dict(PRETRAINED_STUDENT, model=model, image_size=size),
                None,
            )
            for folder, (what, model, size) in LITE_STUDENTS.items()
        ),
        (  # what the ImageNet weights give: the same network and settings from random weights
            "lite0-s3-44-scratch",
            "closed: the same first 3 stages at 44 px from random weights",
            dict(
                PRETRAINED_STUDENT,
                model=LITE_STUDENTS["lite0-s3-44"][1],
                image_size=LITE_STUDENTS["lite0-s3-44"][2],
                pretrained=None,
            ),
            None,
        ),
    ],
}


def finished_runs(root: Path, folder: str, seeds, train_seeds) -> list[dict]:
    """The scores of a row's runs that have finished (a row left out of ``--rows``)."""
    paths = (
        root / folder / f"split{split}-seed{seed}" / "test_scores.json"
        for split in seeds
        for seed in train_seeds
    )
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def run_recipe(spec: dict, root: Path, rows: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """Train every row of the recipe (or only ``rows``) on every (split, seed) still
    missing; the table of every row over the runs finished so far, in the recipe's order,
    and the label of the last row trained (the one the last printed line reports)."""
    summaries, last = [], ""
    for folder, label, params, extra in RECIPES[spec["recipe"]]:
        if rows is not None and folder not in rows:
            results = finished_runs(root, folder, spec["seeds"], spec["train_seeds"])
            if results:
                summaries.append(summary_row(label, results))
            continue
        print(f"\n== {label}", flush=True)

        def row_params(split: int, seed: int, params=params, extra=extra) -> dict:
            given = {**params, **spec["overrides"], "data": spec["data"]}
            return {**given, **(extra(root, split, seed, given) if extra else {})}

        results = run_row(
            folder, row_params, root, spec["seeds"], spec["train_seeds"], spec.get("eval")
        )
        summaries.append(summary_row(label, results))
        last = label
    table = pd.DataFrame(summaries).set_index("row")
    write_json(root / "results.json", table.reset_index().to_dict("records"))
    return table, last


def check_rows(recipe: str, rows: list[str] | None) -> None:
    """Stop before anything is written when ``--rows`` names a row the recipe lacks."""
    known = [row[0] for row in RECIPES[recipe]]
    if rows and not set(rows) <= set(known):
        raise SystemExit(f"--rows: {recipe} has the rows {', '.join(known)}")


def parse_sets(items: list[str]) -> dict:
    """``key=value`` pairs, values read as JSON where they parse (numbers, true, null)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recipe", choices=list(RECIPES), default="quick")
    ap.add_argument("--data", default=str(TRASHNET), help="an image folder (default TrashNet)")
    ap.add_argument("--eval", default=None, metavar="FOLDER", help="score on this folder once")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help=f"split seeds (default {list(SPLIT_SEEDS)}); with --resume: add these",
    )
    ap.add_argument(
        "--train-seeds",
        type=int,
        nargs="+",
        default=None,
        help=f"training seeds (default [{RECOMMENDED['seed']}]); with --resume: add these",
    )
    ap.add_argument(
        "--rows",
        nargs="+",
        default=None,
        metavar="ROW",
        help="train only these rows of the recipe (their folder names, e.g. teacher student); "
        "the table still shows every row's finished runs",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override training parameters of every row, e.g. epochs=2",
    )
    ap.add_argument("--resume", default=None, metavar="RUN_DIR")
    return ap.parse_args()


def main() -> None:
    args = _args()
    if args.resume:
        root = Path(args.resume)
        spec = json.loads((root / "benchmark.json").read_text())
        check_rows(spec["recipe"], args.rows)
        for key, more in (("seeds", args.seeds), ("train_seeds", args.train_seeds)):
            if more:  # more split or training seeds of the same recipe, same folder
                spec[key] = sorted(set(spec[key]) | set(more))
        write_json(root / "benchmark.json", spec)
    else:
        check_rows(args.recipe, args.rows)
        spec = {
            "recipe": args.recipe,
            "data": str(Path(args.data).resolve()),
            "eval": str(Path(args.eval).resolve()) if args.eval else None,
            "seeds": args.seeds or list(SPLIT_SEEDS),
            "train_seeds": args.train_seeds or [RECOMMENDED["seed"]],
            "overrides": parse_sets(args.set),
        }
        root = new_run_dir(f"trashnet-{args.recipe}")
        write_json(root / "benchmark.json", spec)
    print(f"{spec['recipe']} recipe\n{describe(root, spec['seeds'], spec['train_seeds'])}")
    if spec.get("eval"):
        print(
            f"data {spec['data']} split train/val ({VAL_FRACTION:.0%} val); scored on "
            f"{spec['eval']}"
        )
    table, label = run_recipe(spec, root, args.rows)
    print(table.T.to_markdown(disable_numparse=True))  # the strings as written: "4,583,134"
    last = table.loc[label]
    print(f"macro-F1 {last['test macro-F1 (last epoch)']}  MACs {last['MACs']}  ({label})")


if __name__ == "__main__":
    main()
