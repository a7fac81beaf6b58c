"""Chapter 5 (scoring): its exercise checks accept the chapter's solutions and name the slips,
the design-task check measures and can fail, the chapter's numbers are recomputed, its shape,
its student copy, and its headless runs (on a chapter-4 run found by ``find_checkpoint``, and
on a run that held back no test images). Its run on chapter 4's own notebook output is
test_chapter04's ``test_train_and_score_chapters``."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from chapters import (
    BEGIN,
    END,
    chapter,
    check_structure,
    exercises_in_turn,
    printed,
    solution,
    student_copy,
    stub,
)
from conftest import REPO
from test_notebooks import execute

from trashkit import scoring
from trashkit.exercises import ExerciseError, NotSolved, ch05
from trashkit.notebook import assigned_names

NAME = "05_score.ipynb"
NS = {"scoring": scoring}  # what the exercise cells use besides math, np

#: one team's wrap-up report (submit-time edition), rows 1-5, and the edition's target row
PUBLISHED = [
    (0.6880, 84.9850, 1.5460),
    (0.6530, 92.9260, 1.7950),
    (0.6870, 63.0780, 1.2950),
    (0.7005, 58.3412, 1.1732),
    (0.7012, 58.1225, 1.1676),
    (0.70, 60.0, 1.195),
]


def _sig(z):
    return 1 / (1 + math.exp(-z))


def markdown(nb=None) -> str:
    nb = nb or chapter(NAME)
    return " ".join("\n".join(c.source for c in nb.cells if c.cell_type == "markdown").split())


def cell(cell_id: str) -> str:
    return next(c.source for c in chapter(NAME).cells if c.id == cell_id)


# --- exercise checks --------------------------------------------------------------------------


def test_time_baseline_check():
    good = solution("time_baseline", NAME)["time_baseline"]
    assert "gives its score back exactly" in ch05.check_time_baseline(good)
    slips = {
        "you dropped the 0.5": lambda f1, t, s: t / (s - _sig(20 * (0.70 - f1))),
        "you solved for 1 / T0": lambda f1, t, s: (s - _sig(20 * (0.70 - f1))) / (0.5 * t),
        "subtract the F1 term": lambda f1, t, s: 0.5 * t / s,
        r"20 \* \(0.70 - F1\), not": lambda f1, t, s: 0.5 * t / (s - _sig(20 * (f1 - 0.70))),
        "solve score = ": lambda f1, t, s: 43.15,  # a constant cannot pass: other baselines
    }
    for message, wrong in slips.items():
        with pytest.raises(ExerciseError, match=message):
            ch05.check_time_baseline(wrong)
    with pytest.raises(NotSolved, match="time_baseline is not written yet"):
        ch05.check_time_baseline(stub)


def test_macs_to_tie_check():
    good = solution("macs_to_tie", NAME, NS)["macs_to_tie"]
    msg = ch05.check_macs_to_tie(good)
    assert f"{13_863_553 * 0.01 / 0.8366:,.0f} MACs" in msg

    def ramp(f):
        return 1 - f / 0.8366

    def no_half(f1, macs, f2):
        term = {f: 1.0 if f < 0.5 else ramp(f) for f in (f1, f2)}
        return macs + 13_863_553 * (term[f1] - term[f2])

    def no_jump(f1, macs, f2):
        def term(f):
            return ramp(f) if f < 0.8366 else 0.5 * ramp(f)

        return macs + 13_863_553 * (term(f1) - term(f2))

    part = scoring.score_f1_part
    cases = {
        "has half weight": no_half,
        "the jump": no_jump,
        "check the sign": lambda f1, m, f2: m - 13_863_553 * (part(f1) - part(f2)),
        "scaled by MACs_baseline": lambda f1, m, f2: m + part(f1) - part(f2),
        "equal scores": lambda f1, m, f2: 2 * m,
    }
    for message, wrong in cases.items():
        with pytest.raises(ExerciseError, match=message):
            ch05.check_macs_to_tie(wrong)
    with pytest.raises(NotSolved):
        ch05.check_macs_to_tie(stub)


def test_accuracy_hides_check():
    good = solution("hiding", NAME, NS)["hiding"]
    assert "accuracy 0.900, macro-F1 0.333" in ch05.check_accuracy_hides(good)
    with pytest.raises(ExerciseError, match="accuracy must reach 0.9"):
        ch05.check_accuracy_hides([[5, 5], [5, 5]])
    with pytest.raises(ExerciseError, match="let the model fail on the small ones"):
        ch05.check_accuracy_hides(np.diag([90, 5, 5]))  # right everywhere: macro-F1 1
    for bad in ([[1, 2, 3]], [[1.5, 0], [0, 1]], [[-1, 0], [0, 3]], [[0, 0], [0, 0]], "cm"):
        with pytest.raises(ExerciseError, match="square matrix of non-negative whole counts"):
            ch05.check_accuracy_hides(bad)


def test_halves_sd_check():
    good = solution("halves_sd", NAME)["halves_sd"]
    assert "0.0127 apart" in ch05.check_halves_sd(good)
    with pytest.raises(ExerciseError, match="add the variances"):
        ch05.check_halves_sd(lambda p, n1, n2: math.sqrt(p * (1 - p) / n1))
    with pytest.raises(ExerciseError, match="take the square root"):
        ch05.check_halves_sd(lambda p, n1, n2: p * (1 - p) * (1 / n1 + 1 / n2))
    with pytest.raises(ExerciseError, match=r"p \(1 - p\) / n"):
        ch05.check_halves_sd(lambda p, n1, n2: math.sqrt(p / (n1 + n2)))
    with pytest.raises(NotSolved):
        ch05.check_halves_sd(stub)


def test_design_check_refuses_a_size_whose_f1_costs_more_than_its_macs(monkeypatch):
    """The check's conditions, with measurements made up (the measuring path is the slow
    tests': the chapter runs the design task on a real checkpoint)."""

    class Ckpt:
        image_size, config = 128, {"test_fraction": 0.2}

    def fake(ckpt, size, split):
        f1 = {128: 0.80, 112: 0.795, 96: 0.55, 80: 0.45}[size]
        macs = int(9_525_638 * (size / 128) ** 2)
        return {"size": size, "f1": f1, "macs": macs, "score_macs": scoring.score_macs(f1, macs)}

    monkeypatch.setattr(ch05.scoring, "score_at_size", fake)
    assert "score 0.1" in ch05.check_design_size(Ckpt(), 112)
    with pytest.raises(ExerciseError, match="F1 fell below 0.5"):
        ch05.check_design_size(Ckpt(), 80)
    with pytest.raises(ExerciseError, match="must drop by at least 0.01"):
        ch05.check_design_size(Ckpt(), 96)
    with pytest.raises(ExerciseError, match="not smaller than the checkpoint's own 128 px"):
        ch05.check_design_size(Ckpt(), 128)
    with pytest.raises(ExerciseError, match="whole number of pixels"):
        ch05.check_design_size(Ckpt(), 80.5)


def test_student_copy_stops_at_every_exercise(capsys):
    nb = chapter(NAME)
    nb.cells = [c for c in nb.cells if "design_size" not in c.source]  # needs a checkpoint
    exercises_in_turn(nb, {"ch05": ch05, "math": math, "np": np, **NS}, capsys, ("not yet solved",))


def test_student_copy_holds_no_answer():
    nb = chapter(NAME)
    answers = []
    for c in nb.cells:
        for block in re.findall(rf"{BEGIN}\n(.*?)\n[ \t]*{END}", c.source, re.DOTALL):
            answers += [ln.strip() for ln in block.splitlines() if len(ln.strip()) >= 12]
    student = {ln.strip() for c in student_copy(nb).cells for ln in c.source.splitlines()}
    assert len(answers) >= 8 and not [a for a in answers if a in student]


# --- shape ------------------------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter(NAME)
    check_structure(nb, "ch05", 5, check=r"check_\w+")
    md = markdown(nb)
    for heading in (
        "What you will learn",
        "What to know first",
        "What it costs",
        "Run it headless",
        "## Reference results",
        "## Takeaways",
        "## Questionnaire",
        "## Design task",
        "## Further reading",
    ):
        assert heading in "\n".join(c.source for c in nb.cells), heading
    assert "preset full" in md and "papermill notebooks/05_score.ipynb" in md
    full = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    takeaways = full.split("## Takeaways")[1].split("##")[0]
    assert 1 <= len(re.findall(r"^- ", takeaways, re.M)) <= 6
    questions = full.split("## Questionnaire")[1].split("##")[0]
    assert 10 <= len(re.findall(r"^\d+\. ", questions, re.M)) <= 20
    for history in ("issue ", "SIGSTOP", "load average", "earlier version", "superseded", "0.797"):
        assert history not in md, history
    params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(params, ns)  # noqa: S102 - the chapter's own parameters
    assert (ns["split"], ns["checkpoint"], ns["preset"], ns["threads"]) == ("test", None, "demo", 1)
    assert ns["server"] is None  # the default run never uploads anything
    rest = "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    )
    assert not [n for n in assigned_names(params) if not re.search(rf"\b{n}\b", rest)]


# --- every number of the prose ----------------------------------------------------------------


def test_published_rows_are_all_five_and_the_target():
    src = cell("c05")
    got = [
        tuple(map(float, m)) for m in re.findall(r'\(".*?", ([\d.]+), ([\d.]+), ([\d.]+)\)', src)
    ]
    assert got == PUBLISHED


def _both_constants_free() -> tuple[float, float]:
    """(T0, F0) fitted together to the published rows, as the chapter's cell c06c does."""
    from scipy.optimize import least_squares

    fit = least_squares(
        lambda c: [scoring.score_time(f, t, c[0], c[1]) - s for f, t, s in PUBLISHED],
        x0=[40.0, 0.6],
    )
    return float(fit.x[0]), float(fit.x[1])


def test_header_run_times_are_the_instructor_notes():
    """The header's measured wall times are those of the instructor note's cost table."""
    intro = " ".join(chapter(NAME).cells[0].source.split())
    note = (REPO / "docs" / "instructors" / "05.md").read_text()
    assert "17–90 s measured with papermill" in intro and "137 s measured" in intro
    assert "| 17 s; 90 s in a second run |" in note and "| 137 s |" in note


def test_prose_numbers_of_the_scores_are_recomputed():
    md = markdown()
    fit = scoring.solve_time_baseline(PUBLISHED)
    res = [scoring.score_time(f, t) - s for f, t, s in PUBLISHED]
    implied = [scoring.implied_f1_time(s, t) - f for f, t, s in PUBLISHED]
    by_hand_time = 0.5 * 58.1225 / 43.15
    z = 20 * (0.70 - 0.7012)
    claims = {
        # section 1: the 200-epoch row by hand, the sigmoid's factor
        "0.5 \\cdot 58.1225 / 43.15 = 0.67349": round(by_hand_time, 5) == 0.67349,
        "= -0.024": math.isclose(z, -0.024, abs_tol=1e-12),
        "1/(1 + e^{0.024}) = 0.49400": round(_sig(z), 5) == 0.49400,
        "score $0.67349 + 0.49400 = 1.16749$": round(by_hand_time + _sig(z), 5) == 1.16749,
        "$\\sigma(1) = 0.731$": round(_sig(1), 3) == 0.731,
        # section 1.1: residuals, the odd row, the constants
        "to within 0.0009": max(abs(r) for r in res[1:]) < 0.0009,
        "Row 1 is off by −0.0015": round(res[0], 4) == -0.0015,
        "about 0.07 s shorter": round(fit["time_baseline"] - fit["per_row"][0], 2) == 0.07,
        "about 0.0000006": round(0.5 * 0.00005 / 43.15, 7) == 0.0000006,
        "about 5 per unit of F1": round(20 * _sig(0.24) * (1 - _sig(0.24))) == 5,
        "about ±0.0025": round(0.0005 * 20 * _sig(0.24) * (1 - _sig(0.24)), 4) == 0.0025,
        "says F1 0.6877": round(scoring.implied_f1_time(1.5460, 84.9850), 4) == 0.6877,
        "within 0.0005 of the printed F1": max(map(abs, implied)) < 0.0005,
        "$T_0 = 43.15$ s in the least-squares sense": round(fit["time_baseline"], 2) == 43.15,
        "the fit lands on $F_0 = 0.70$": round(_both_constants_free()[1], 2) == 0.70,
        # section 1.1 by hand on a real model
        "= 0.68710": round(9_525_638 / 13_863_553, 5) == 0.68710,
        "1 - 0.836/0.8366 = 0.00072": round(1 - 0.836 / 0.8366, 5) == 0.00072,
        "score $0.68782$": round(scoring.score_macs(0.836, 9_525_638), 5) == 0.68782,
        "= 0.21639 - 0.03789 = 0.17850": (
            round(3e6 / 13_863_553, 5) == 0.21639
            and round(0.5 * (1 - 0.90 / 0.8366), 5) == -0.03789
            and round(scoring.score_macs(0.90, 3e6), 5) == 0.17850
        ),
        # section 2: the exchange rates
        "about 1.2% of the baseline's MACs": round(100 * 0.01 / 0.8366, 1) == 1.2,
        "more than half the baseline's MACs": 0.5 < 0.5 / 0.8366 < 1,
        "$20 \\cdot 0.25 = 5$": math.isclose(20 * _sig(0) * (1 - _sig(0)), 5),
        "about 4.3 s": round(0.05 * 2 * 43.15, 1) == 4.3,
        # section 8: the pencil answer and the final submission
        "$\\sqrt{0.21/2606} = 0.0090$": round(math.sqrt(0.7 * 0.3 / 2606), 4) == 0.0090,
        "public F1 0.7012 (score 1.1676), private F1 0.6986 (score": True,  # the brief's row
        "0.0026 of F1 apart": round(0.7012 - 0.6986, 4) == 0.0026,
        "0.005 apart on the public board are therefore well within": 0.005 < 0.0090,
        # the exercises' targets are the checks' own
        "within 12% of the simulated spread": ch05.HALVES_TOLERANCE == 0.12,
        "accuracy is at least 0.90 while macro-F1 is at most 0.60": (
            (ch05.HIDE_ACCURACY, ch05.HIDE_MACRO) == (0.90, 0.60)
        ),
        "at least 0.01 lower (better)": ch05.DESIGN_GAIN == 0.01,
    }
    for text, holds in claims.items():
        assert text in md, text
        assert holds, text


def test_prose_numbers_of_the_hygiene_section_are_recomputed():
    """Section 5 quotes gaps computed from docs/results.md's per-seed table."""
    results = (REPO / "docs" / "results.md").read_text()
    src = cell("c22a")
    val, test = (
        list(map(float, re.search(rf'"{key}": \[([\d., ]+)\]', src).group(1).split(", ")))
        for key in (r"validation \(chose best.pt\)", r"test \(chose nothing\)")
    )
    for x in val + test:
        assert f"{x:.4f}" in results, x
    gaps = np.array(val) - np.array(test)
    md = markdown()
    mean100, mean300 = gaps[:3].mean(), gaps[3:].mean()
    assert round(-mean100, 3) == 0.019 and "0.019 **below** test" in md
    assert round(mean300, 3) == 0.031 and "300 epochs 0.031 above" in md
    assert (gaps[3:] > 0.045).sum() == 2 and "two of the three seeds by about 0.05" in md
    assert (gaps[:3] < 0).sum() == 2 and "on two of the three seeds" in md
    assert round(0.749 - 0.722, 3) == 0.027 and "0.027 above" in md
    for x in ("0.749 ± 0.033", "0.722 ± 0.006", "0.816 ± 0.010", "0.836 ± 0.020"):
        assert x in results


def test_reference_numbers_come_from_results_md():
    """Every figure of the Reference results section is one docs/results.md records."""
    results = (REPO / "docs" / "results.md").read_text()
    ref = cell("c31")
    numbers = set(re.findall(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", ref))
    assert len(numbers) > 20
    missing = [x for x in numbers if x not in results]
    assert not missing, missing
    assert "0.836" in cell("c08a") and "9_525_638" in cell("c08a") and "0.836" in cell("c31a")


# --- headless runs ----------------------------------------------------------------------------


def _tiny_run(home, crops, folder, **extra):
    from trashkit.train import train

    cfg = {"model": "tiny", "image_size": 48, "epochs": 1, "batch_size": 32, "data": str(crops)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(home))
        train({**cfg, **extra}, folder, progress=False)
    return folder / "best.pt"


@pytest.mark.slow
def test_chapter_finds_chapter_4s_run_and_scores_its_test_split(tmp_path, tiny_home, tiny_crops):
    """The default path: no checkpoint given, ``find_checkpoint`` picks the newest chapter-4
    training run (not a newer run of another chapter), the test split is scored, the design
    task is measured and met, nothing is uploaded."""
    import time

    from trashkit.paths import outputs_dir

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(tiny_home))
        root = outputs_dir()
    ch4 = _tiny_run(tiny_home, tiny_crops, root / "t05-ch4-train", test_fraction=0.2, chapter=4)
    time.sleep(0.05)
    other = root / "t05-ch7-student"
    _tiny_run(tiny_home, tiny_crops, other, test_fraction=0.2, chapter=7, kind="student")
    nb = execute(
        NAME,
        tmp_path,
        tiny_home,
        output_dir=str(tmp_path / "score"),
        latency_runs=3,
        draws=200,
        interactive=False,
        test_folder=str(tiny_crops / "test" / "NoLabel"),
    )
    text = printed(nb)
    assert f"checkpoint: {ch4}" in text and str(other) not in text.split("outputs:")[0]
    assert "test (chose nothing)" in text and "WARNING" not in text
    assert "design task met on the test split" in text
    assert "nothing uploaded" in text
    assert text.count("✓") == 5
    scores = json.loads((tmp_path / "score" / "scores.json").read_text())
    assert scores["f1_source"].startswith("test split of")


@pytest.mark.slow
def test_chapter_on_a_run_without_test_images(tmp_path, tiny_home, tiny_crops):
    """A run trained with test_fraction 0 (TrainConfig's default): chapter 5 says so, scores
    the validation images and labels the F1 as the split that chose best.pt; the design task
    falls back to validation and says so too."""
    ckpt = _tiny_run(tiny_home, tiny_crops, tmp_path / "run")
    nb = execute(
        NAME,
        tmp_path,
        tiny_home,
        checkpoint=str(ckpt),
        output_dir=str(tmp_path / "score"),
        latency_runs=3,
        draws=100,
        interactive=False,
        test_folder=str(tiny_crops / "test" / "NoLabel"),
    )
    text = printed(nb)
    assert "WARNING: this run held back no test images" in text
    assert "the gap cannot be measured" in text
    assert "design task met on the val split" in text
    scores = json.loads((tmp_path / "score" / "scores.json").read_text())
    assert "chose best.pt: optimistic" in scores["f1_source"]
    assert scores["n_test"] == len(list((tiny_crops / "test" / "NoLabel").iterdir()))
