"""Chapter 3 (the ShuffleNet V2 guidelines): its exercise checks and design-task check (each
accepts the chapter's solution and rejects a wrong answer with the right message), its shape,
the numbers its prose quotes (recomputed here), its headless run and its student copy."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from chapters import (
    chapter,
    check_structure,
    execute,
    exercises_in_turn,
    printed,
    solution,
    stub,
)
from conftest import REPO
from torch import nn

from trashkit.book.chapters import DEMO_PARAMS, QUICK_PARAMS, declared_parameters
from trashkit.complexity import formulas as fm
from trashkit.complexity import guidelines as gl
from trashkit.exercises import ExerciseError, NotSolved, ch03

NAME = "03_shufflenetv2_guidelines.ipynb"


def markdown(cell_id: str | None = None) -> str:
    cells = chapter(NAME).cells
    return "\n".join(
        c.source for c in cells if c.cell_type == "markdown" and cell_id in (None, c.id)
    )


def code(cell_id: str) -> str:
    return next(c.source for c in chapter(NAME).cells if c.id == cell_id)


# --- the exercise checks ---------------------------------------------------------------------


def test_mem_group_check():
    ch03.check_mem_group(solution("mem_group", NAME)["mem_group"])

    def weights_not_grouped(h, w, c1, B, g):
        c2 = g * B / (h * w * c1)
        return h * w * (c1 + c2) + c1 * c2

    with pytest.raises(ExerciseError, match=r"expected 34, got 46.*c1\*c2/g, not c1\*c2"):
        ch03.check_mem_group(weights_not_grouped)

    def c2_without_g(h, w, c1, B, g):
        c2 = B / (h * w * c1)
        return h * w * (c1 + c2) + c1 * c2 / g

    with pytest.raises(ExerciseError, match="c2 is too small by g"):
        ch03.check_mem_group(c2_without_g)
    with pytest.raises(ExerciseError, match="that is the FLOPs B"):
        ch03.check_mem_group(lambda h, w, c1, B, g: B)
    with pytest.raises(ExerciseError, match="Start from B = hw"):
        ch03.check_mem_group(lambda h, w, c1, B, g: 1.0)
    with pytest.raises(NotSolved, match="mem_group is not written yet"):
        ch03.check_mem_group(stub)


def test_equal_flops_widths_check():
    ns = solution("equal_flops_widths", NAME)
    widths, series = ns["equal_flops_widths"], ns["series_width"]
    msg = ch03.check_equal_flops_widths(widths, series)
    assert "1:12 exact (37.0, 443.4) paper (36, 432) FLOPs -5.1%" in msg
    with pytest.raises(ExerciseError, match=r"c1\*c2 = c\*c is right but c2/c1"):
        ch03.check_equal_flops_widths(lambda c, r: (c / r, c * r), series)
    with pytest.raises(ExerciseError, match=r"c2/c1 = r is right but c1\*c2"):
        ch03.check_equal_flops_widths(lambda c, r: (c, c * r), series)
    with pytest.raises(ExerciseError, match="treats all n convs as m -> m"):
        ch03.check_equal_flops_widths(widths, lambda c, n: c / math.sqrt(n))
    with pytest.raises(ExerciseError, match="a positive width"):
        ch03.check_equal_flops_widths(widths, lambda c, n: -1.0)
    with pytest.raises(NotSolved):
        ch03.check_equal_flops_widths(stub, series)
    with pytest.raises(NotSolved):
        ch03.check_equal_flops_widths(widths, stub)


def test_channel_shuffle_check():
    ch03.check_channel_shuffle(solution("channel_shuffle", NAME)["channel_shuffle"])
    with pytest.raises(ExerciseError, match=r"should be \[0, 2, 1, 3\], got \[0, 1, 2, 3\]"):
        ch03.check_channel_shuffle(lambda x, g: x)

    def wrong_groups(x, g):
        return nn.ChannelShuffle(x.shape[1] // g)(x)

    with pytest.raises(ExerciseError, match="you shuffled with 2 groups"):
        ch03.check_channel_shuffle(wrong_groups)
    with pytest.raises(ExerciseError, match="the shape must not change"):
        ch03.check_channel_shuffle(lambda x, g: x.flatten())
    with pytest.raises(NotSolved):
        ch03.check_channel_shuffle(stub)


def test_stride2_macs_check():
    fn = solution("stride2_conv_macs", NAME)["stride2_conv_macs"]
    assert "8,672,608 conv multiply-adds" in ch03.check_stride2_macs(fn)
    half = lambda n: (n + 1) // 2  # noqa: E731

    def at_output_size(ci, co, h, w):
        b, o = co // 2, half(h) * half(w)
        return (ci * 9 + ci * b) * o + ci * b * o + b * 9 * o + b * b * o

    def no_left_branch(ci, co, h, w):
        b, o = co // 2, half(h) * half(w)
        return ci * b * h * w + b * 9 * o + b * b * o

    with pytest.raises(ExerciseError, match="expected 672, got 480.*runs before the stride"):
        ch03.check_stride2_macs(at_output_size)
    with pytest.raises(ExerciseError, match="the left branch is missing"):
        ch03.check_stride2_macs(no_left_branch)
    with pytest.raises(ExerciseError, match="Count the 5 convs"):
        ch03.check_stride2_macs(lambda ci, co, h, w: 1)
    with pytest.raises(NotSolved):
        ch03.check_stride2_macs(stub)


# --- the design task -------------------------------------------------------------------------


def design_solution() -> nn.Module:
    src = code("n10").split("my_stage = ")[0]
    ns = {"nn": nn, "torch": torch}
    exec(src, ns)  # noqa: S102 - the chapter's own solution cell
    return nn.Sequential(*[ns["MyUnit"]() for _ in range(4)])


class Hidden(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight, None, self.stride, self.padding)


def test_design_check_fails_what_it_can_measure_without_a_clock():
    c = gl.DESIGN_INPUT[0]
    with pytest.raises(ExerciseError, match="must have the input's shape"):
        ch03.check_design(nn.Conv2d(c, c // 2, 1))
    with pytest.raises(ExerciseError, match="cannot see"):
        ch03.check_design(nn.Sequential(Hidden(c, c, 1), nn.Conv2d(c, c, 1)))
    with pytest.raises(ExerciseError, match="fewer than the baseline's 35,223,552"):
        ch03.check_design(nn.Conv2d(c, c, 1, groups=4))  # 1x1 grouped: fewer MACs
    with pytest.raises(ExerciseError, match="sees a 1x1 input window.*baseline 9x9"):
        ch03.check_design(nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU()))  # enough MACs, no 3x3


@pytest.mark.slow  # trains or times models: make test, not make check
def test_design_check_fails_a_slow_stage_and_passes_a_fast_one(monkeypatch):
    slow = nn.Sequential(gl.design_baseline(), gl.design_baseline())  # twice the baseline
    with pytest.raises(ExerciseError, match=r"the target is 1.3x"):
        ch03.check_design(slow, repeats=3, runs=3)
    # the pass path, with the clock replaced (the headless run times the solution for real)
    monkeypatch.setattr(gl, "design_speed", lambda *a, **k: [1.7, 1.8, 2.0])
    msg = ch03.check_design(design_solution(), repeats=3)
    assert "design task met: 1.80x" in msg and "receptive field 9x9" in msg


def test_design_task_text_matches_what_the_check_measures():
    text = markdown("n09")
    c, h, w = gl.DESIGN_INPUT
    assert f"{c}×{h}×{w}" in text and f"1×{c}×{h}×{w}" in text
    assert f"{c // 4}-channel bottleneck" in text and "8 groups" in text
    rf = gl.receptive_field(gl.design_baseline())
    assert f"{rf}×{rf} for four units" in text
    assert f"at least {ch03.TARGET_SPEEDUP} times the baseline's speed" in text
    assert "the median of 7" in text and "repeats=7 if" in code("n10")


# --- the chapter's shape ---------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter(NAME)
    check_structure(nb, "ch03", one_solution=False)
    text = markdown()
    q = text[text.index("## Questionnaire") : text.index("## Design task")]
    assert 10 <= len(re.findall(r"^\d+\. ", q, re.MULTILINE)) <= 20
    takeaways = text[text.index("## Takeaways") : text.index("## Questionnaire")]
    assert len(re.findall(r"^- ", takeaways, re.MULTILINE)) <= 6
    assert "ch03.check_design(my_stage" in code("n10")
    for heading in ("## Reference results", "## Design task", "## Further reading"):
        assert heading in text
    history = r"SIGSTOP|load average|earlier version|issue \d+|superseded"
    assert not re.search(history, text, re.IGNORECASE)  # history lives in docs/instructors/03.md
    assert (REPO / "docs" / "instructors" / "03.md").is_file()


def test_presets_and_book_parameters():
    declared = declared_parameters(chapter(NAME))
    assert declared["preset"] == "class" and declared["threads"] == 1  # timings on one thread
    for table in (QUICK_PARAMS, DEMO_PARAMS):
        params = table["03_shufflenetv2_guidelines"]
        assert set(params) <= set(declared) and params["preset"] in gl.PRESETS
    full = gl.preset_values("full", set(), settings=["ARM"], repeats=1, runs=1, threads=2)
    assert full == {"settings": ["GPU", "ARM"], "repeats": 5, "runs": 20, "threads": 1}
    # the reference protocol the chapter quotes is the full preset
    assert "5 repetitions × median of 20 runs" in markdown("c38")


# --- the numbers in the prose, recomputed -----------------------------------------------------


NOTE = REPO / "docs" / "instructors" / "03.md"


def test_header_cost_is_the_measurement_the_instructor_note_records():
    """The header's run times round the wall times in the instructor note's table."""
    header = " ".join(markdown("c00").split())
    note = NOTE.read_text()
    measured = {}
    for preset in ("class", "full", "quick"):
        row = next(line for line in note.splitlines() if line.startswith(f"| `{preset}`"))
        m = re.search(r"\| (?:(\d+) min )?(\d+) s \|", row)
        measured[preset] = int(m.group(1) or 0) * 60 + int(m.group(2))
    assert "runs in about 2½ minutes on 2 CPU cores" in header
    assert abs(measured["class"] - 150) <= 15
    assert "about 4 minutes with `-p preset full`" in header
    assert abs(measured["full"] - 240) <= 15
    assert "under half a minute with `-p preset quick`" in header and measured["quick"] < 30
    assert "papermill notebooks/03_shufflenetv2_guidelines.ipynb" in header


def test_instructor_note_answers_every_question():
    text = markdown()
    q = text[text.index("## Questionnaire") : text.index("## Design task")]
    note = NOTE.read_text()
    key = note[note.index("## Questionnaire: answer key") :]
    count = len(re.findall(r"^\d+\. ", q, re.MULTILINE))
    assert len(re.findall(r"^\d+\. ", key, re.MULTILINE)) == count


def paper(name: str, column: str, row: int) -> str:
    vals = gl.PAPER[name][column]
    return f"{vals[row] / vals[0]:.2f}"


def test_paper_numbers_quoted_in_the_experiment_intros():
    g1, g2, g3, g4 = (" ".join(markdown(i).split()) for i in ("c19", "c21", "c23", "c25"))
    assert f"it is {paper('G1', 'GPU x1', 3)} of the 1:1 speed on its GPU" in g1
    assert f"and {paper('G1', 'ARM x1', 3)} on ARM" in g1
    assert f"at {paper('G2', 'GPU x1', 3)} of the dense speed on its GPU" in g2
    assert f"at {paper('G2', 'ARM x1', 3)} on ARM" in g2
    s, p = paper("G3", "GPU c=128", 2), paper("G3", "GPU c=128", 4)
    assert f"at {s} (series) and {p} (parallel)" in g3
    assert f"at {paper('G3', 'ARM c=64', 2)} and {paper('G3', 'ARM c=64', 4)} on ARM" in g3
    assert paper("G4", "GPU c=32", 3) == paper("G4", "ARM c=32", 3) == "1.17"
    assert "gives 1.17 times the speed at $c = 32$ on both" in g4
    assert '"around 20%"' in g4 and "20%" in gl.CLAIMS["G4"]


def test_prose_arithmetic():
    text = markdown()
    # G1 at the paper's size
    one, twelve = fm.mem_1x1(56, 56, 128, 128), fm.mem_1x1(56, 56, 36, 432)
    assert (one, twelve) == (819200, 1483200) and f"{twelve / one:.2f}" == "1.81"
    assert "819{,}200" in text and "1{,}483{,}200$, about 1.81 times" in text
    # the rounding of the paper's G1 and G2 widths
    (a1, a2), (b1, b2) = gl.G1_WIDTHS["GPU"][3], gl.G1_WIDTHS["ARM"][1]
    assert round(100 * (1 - a1 * a2 / 128**2)) == 5 and "1:12 rows have 5% fewer" in text
    assert f"{100 * (1 - b1 * b2 / 32**2):.1f}" == "5.5" and "1:2 row 5.5% fewer" in text
    assert gl.groupable(180, 8) == 184 and "we use 184" in text
    for setting in ("GPU", "ARM"):
        assert ", ".join(map(str, gl.G2_WIDTHS[setting])) in text
        assert ", ".join(map(str, gl.G1_WIDTHS[setting])) in text
    g3 = f"$c = {gl.G3_WIDTH['GPU']}$ (its first GPU column) and $c = {gl.G3_WIDTH['ARM']}$"
    assert g3 in text
    # the range of R repetitions
    conf = [gl.range_confidence(r) for r in (3, 5, 7)]
    assert [f"{c:.2%}" for c in conf] == ["75.00%", "93.75%", "98.44%"]
    assert "75% for\n   $R = 3$, 93.75% for $R = 5$, 98.4% for $R = 7$" in text
    assert abs(gl.range_coverage(5) - conf[1]) < 0.01 and gl.range_coverage(5, 1.0) < 0.8
    # section 8: what time would be if it followed MACs
    assert f"{1 / 58:.1%}" == "1.7%" and "batch norm under 2%" in text
    assert round(58 / 9) == 6 and "about a sixth" in text


def results_md_rows() -> dict[tuple[str, str], tuple[str, str]]:
    """docs/results.md's guideline tables: (experiment heading, variant) -> (run 1, run 2)."""
    md = (REPO / "docs" / "results.md").read_text()
    md = md[md.index("## ShuffleNet V2 guidelines on this CPU") :]
    rows, heading = {}, None
    for line in md.splitlines():
        if m := re.match(r"\*\*(G\d, the paper's (GPU|ARM) widths|G4, c = 32)", line):
            heading = m.group(1)
        elif heading and (m := re.match(r"\| ([^|]+?) \| ([\d.]+) \[.*?\| ([\d.]+) \[", line)):
            rows[heading, m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_reference_results_are_docs_results_md():
    rows, text = results_md_rows(), markdown("c38")
    table = {
        m.group(1): [v.strip() for v in m.group(2).split("|")]
        for m in re.finditer(r"^\| (G\d[^|]*?) \|(.*)\|$", text, re.MULTILINE)
    }
    want = {  # the chapter's row -> (paper row, results.md variant, paper column suffix)
        "G1: 1:12 vs 1:1": ("G1", 3, "1:12", "x1", "x1"),
        "G2: g = 8 vs g = 1": ("G2", 3, "g=8", "x1", "x1"),
        "G3: 2-fragment-series vs 1-fragment": ("G3", 1, "2-fragment-series", "c=128", "c=64"),
        "G3: 4-fragment-series vs 1-fragment": ("G3", 2, "4-fragment-series", "c=128", "c=64"),
        "G3: 4-fragment-parallel vs 1-fragment": ("G3", 4, "4-fragment-parallel", "c=128", "c=64"),
    }
    assert set(want) <= set(table)
    for label, (g, row, variant, gpu, arm) in want.items():
        cells = table[label]
        assert cells[0] == paper(g, f"GPU {gpu}", row) and cells[1] == paper(g, f"ARM {arm}", row)
        for setting, cell in zip(("GPU", "ARM"), cells[2:4], strict=True):
            (run1, run2) = next(
                v for (h, var), v in rows.items() if h == f"{g}, the paper's {setting} widths"
                and var.startswith(variant)
            )  # fmt: skip
            assert cell == f"{run1}, {run2}", (label, setting)
    g4 = next(v for k, v in table.items() if k.startswith("G4"))
    assert g4[:3] == ["1.17", "1.17", ", ".join(rows["G4, c = 32", "ReLU=no, shortcut=no"])]
    # every other figure in the section is one of the table's or the paper's
    allowed = set(re.findall(r"\d\.\d\d", " ".join(" ".join(v) for v in table.values())))
    prose = text[text.index("**One conclusion") :]
    assert set(re.findall(r"\d\.\d\d", prose)) <= allowed, set(re.findall(r"\d\.\d\d", prose))


# --- the units --------------------------------------------------------------------------------


def unit_namespace(cell_id: str) -> dict:
    from torchvision.models.shufflenetv2 import InvertedResidual

    ns = {
        "nn": nn,
        "torch": torch,
        "channel_shuffle": solution("channel_shuffle", NAME)["channel_shuffle"],
        "InvertedResidual": InvertedResidual,
    }
    exec(code(cell_id).split("\nours, ref =")[0], ns)  # noqa: S102 - the chapter's own cell
    return ns


def test_basic_unit_matches_torchvision():
    ns = unit_namespace("c32")
    ours, ref = ns["ShuffleUnit"](116).eval(), ns["InvertedResidual"](116, 116, 1).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 116, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-6)


@pytest.mark.parametrize("c_in, c_out, size", [(24, 116, 56), (116, 232, 28), (3, 8, 7)])
def test_down_unit_matches_torchvision(c_in, c_out, size):
    from trashkit.complexity import count_layers

    ns = unit_namespace("n08")
    ours, ref = ns["DownUnit"](c_in, c_out).eval(), ns["InvertedResidual"](c_in, c_out, 2).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, c_in, size, size)
    with torch.no_grad():
        y = ours(x)
        assert y.shape == (1, c_out, (size + 1) // 2, (size + 1) // 2)
        assert torch.allclose(y, ref(x), atol=1e-5)
    t, t_ref = count_layers(ours, (c_in, size, size)), count_layers(ref, (c_in, size, size))
    assert t.macs.sum() == t_ref.macs.sum()
    assert 10 <= len(code("n08").splitlines()) <= 25  # the inline algorithm stays short


# --- running it ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_chapter_runs_headless_quick(tmp_path, tiny_home):
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / NAME,
        tiny_home,
        output_dir=str(tmp_path / "run"),
        **QUICK_PARAMS["03_shufflenetv2_guidelines"],
    )
    text = printed(nb)
    for passed in ("mem_group is the paper's Eq. 2", "both right", "channel_shuffle matches",
                   "right on 3 cases", "design task met"):  # fmt: skip
        assert f"✓ {passed}" in text, passed
    assert "our unit = torchvision's InvertedResidual" in text
    assert "our down-sampling unit = torchvision's: output (1, 116, 28, 28)" in text
    verdicts = pd.read_csv(tmp_path / "run" / "verdicts.csv")
    assert sorted(verdicts.experiment) == ["G1 ARM", "G2 ARM", "G3 ARM", "G4 ARM"]
    assert set(verdicts.verdict) <= {"holds", "partly", "does not hold"}
    assert (tmp_path / "run" / "relative_speeds.png").is_file()


def test_student_copy_fails_clearly_at_every_exercise(capsys, monkeypatch):
    monkeypatch.setattr(gl, "design_speed", lambda *a, **k: [2.0, 2.0, 2.0])
    ns = {"ch03": ch03, "math": math, "torch": torch, "nn": nn}
    ns |= {"preset": "quick", "runs": 3, "threads": 1}
    exercises_in_turn(chapter(NAME), ns, capsys)


def test_student_copy_holds_no_answer():
    from chapters import SOLUTION, exercise_cells, student_copy

    nb = chapter(NAME)
    answers = {
        line.strip()
        for src in exercise_cells(nb)
        for m in SOLUTION.finditer(src)
        for line in m.group(0).splitlines()[1:-1]
        if len(line.strip()) >= 12 and not line.strip().startswith("#")
    }
    student = "\n".join(c.source for c in student_copy(nb).cells)
    assert len(answers) >= 10 and not [a for a in answers if a in student]
    # the text after Exercise 3.1 names Eq. 2 but does not write the solved form out
    assert "Bg/c_1" not in student and "c / \\sqrt" not in student
