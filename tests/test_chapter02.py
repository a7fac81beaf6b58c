"""Chapter 2 (FLOPs and MACs): its exercise checks and design task, the numbers its prose
states, its shape, and its headless and student runs.

The helpers live in chapters.py (shared by every chapter test): the reference solutions are
read from the chapter itself, so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
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

from trashkit.complexity import formulas as fm
from trashkit.exercises import ExerciseError, NotSolved, ch02

NAME = "02_flops_macs.ipynb"


def markdown() -> str:
    return "\n".join(c.source for c in chapter(NAME).cells if c.cell_type == "markdown")


def section(title: str) -> str:
    """The markdown from the heading that contains ``title`` to the next heading of its level."""
    text = markdown()
    m = re.search(rf"^(#+) [^\n]*{re.escape(title)}[^\n]*$", text, re.MULTILINE)
    assert m, title
    nxt = re.search(rf"^#{{1,{len(m.group(1))}}} ", text[m.end() :], re.MULTILINE)
    return text[m.start() : m.end() + (nxt.start() if nxt else len(text))]


# --- the exercise checks ---------------------------------------------------------------------


def test_linear_counts_check():
    ch02.check_linear_counts(solution("linear_counts", NAME)["linear_counts"])
    with pytest.raises(ExerciseError, match=r"got \(6, 15\).*as the lecture slide does"):
        ch02.check_linear_counts(lambda fin, fout, bias: (fout * (fin - 1), fout * (2 * fin - 1)))
    with pytest.raises(ExerciseError, match="n multiplications but only n - 1 additions"):
        ch02.check_linear_counts(lambda fin, fout, bias: (fin * fout, 2 * fin * fout))
    with pytest.raises(ExerciseError, match="left the bias out"):
        ch02.check_linear_counts(lambda fin, fout, bias: (fin * fout, fout * (2 * fin - 1)))
    with pytest.raises(ExerciseError, match="return a pair"):
        ch02.check_linear_counts(lambda fin, fout, bias: fin * fout)
    with pytest.raises(NotSolved, match="linear_counts is not written yet"):
        ch02.check_linear_counts(stub)


def test_dw_separable_check():
    ch02.check_dw_separable(solution("dw_separable_macs", NAME)["dw_separable_macs"])

    def full_depthwise(cin, cout, h, w, k=3, stride=1):
        ho = (h + 2 * (k // 2) - k) // stride + 1
        return cin * cin * ho * ho * k * k + cin * cout * ho * ho

    with pytest.raises(ExerciseError, match="priced the depthwise conv like a full conv"):
        ch02.check_dw_separable(full_depthwise)

    def no_stride(cin, cout, h, w, k=3, stride=1):
        return cin * h * w * k * k + cin * cout * h * w

    with pytest.raises(ExerciseError, match=r"stride=2.*ignored the stride"):
        ch02.check_dw_separable(no_stride)
    with pytest.raises(ExerciseError, match="return a number"):
        ch02.check_dw_separable(lambda *a: "many")
    with pytest.raises(NotSolved):
        ch02.check_dw_separable(stub)


def test_counter_prediction_check():
    right = solution("prediction", NAME)["prediction"]
    assert right == {"analytic": 15422, "official": 15414}
    ch02.check_counter_prediction(right)
    with pytest.raises(ExerciseError, match="priced the hardswish the way the official"):
        ch02.check_counter_prediction({**right, "analytic": right["analytic"] - 1024})
    with pytest.raises(ExerciseError, match="priced the global pool the way the analytic"):
        ch02.check_counter_prediction({**right, "official": right["official"] - 504})
    with pytest.raises(ExerciseError, match="keys 'analytic' and 'official'"):
        ch02.check_counter_prediction({"ours": 1})


def test_ridge_width_check():
    ridge_width = solution("ridge_width", NAME, {"fm": fm})["ridge_width"]
    ch02.check_ridge_width(ridge_width)
    # the same search with the weights left out of the traffic: 8 x ridge channels
    with pytest.raises(ExerciseError, match=r"expected 45 channels, got 40.*leaves out the c x c"):
        ch02.check_ridge_width(lambda h, w, ridge: math.ceil(8 * ridge))
    with pytest.raises(ExerciseError, match="MACs per ELEMENT"):  # no factor of 4 bytes
        ch02.check_ridge_width(
            lambda h, w, r: next(c for c in range(1, 9999) if h * w * c / (2 * h * w + c) >= r)
        )
    with pytest.raises(ExerciseError, match=r"no width reaches 5.0 MACs/byte on a 2x2 map"):
        ch02.check_ridge_width(lambda h, w, r: ridge_width(h, w, r) or 1)
    with pytest.raises(ExerciseError, match="whole channel count"):
        ch02.check_ridge_width(lambda h, w, r: 44.5)
    with pytest.raises(NotSolved):
        ch02.check_ridge_width(stub)
    # the reference search agrees with the closed form the text derives
    for h, w, r in ch02.RIDGE_CASES[:4]:
        assert ch02.ridge_width_reference(h, w, r) == math.ceil(8 * r * h * w / (h * w - 4 * r))


def test_peak_prediction_check():
    right = solution("prediction_peak", NAME)["prediction_peak"]
    ch02.check_peak_prediction(right)
    assert right["elements"] == 24576  # the depthwise reads and writes 48 x 16 x 16
    slips = {
        12288: "largest single activation|only the output",
        33830: "every activation added up",
        98304: "in bytes",
    }
    for wrong, message in slips.items():
        with pytest.raises(ExerciseError, match=message):
            ch02.check_peak_prediction({**right, "elements": wrong})
    with pytest.raises(ExerciseError, match="right but not the layer: expand reads 2048"):
        ch02.check_peak_prediction({**right, "layer": "expand"})
    with pytest.raises(ExerciseError, match="'head' is not a layer of the toy"):
        ch02.check_peak_prediction({**right, "layer": "head"})
    with pytest.raises(ExerciseError, match="give a number"):
        ch02.check_peak_prediction({**right, "elements": "lots"})


# --- the design task: graded by measuring, and it can fail -----------------------------------


def test_design_task_accepts_the_reference_design():
    design = solution("design", NAME)["design"]
    assert "design accepted" in ch02.check_design(design, repeats=3, runs=5)


def test_design_task_fails_where_it_should():
    ref = ch02.design_reference()
    with pytest.raises(ExerciseError, match=r"the task asks for 3.0x"):  # not faster than itself
        ch02.check_design(ref, repeats=3, runs=5)
    over = nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 6),
    )
    with pytest.raises(ExerciseError, match="spend the budget, but not more"):
        ch02.check_design(over)
    with pytest.raises(ExerciseError, match="it must give 6 scores"):
        ch02.check_design(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))

    class Hidden(nn.Conv2d):
        def forward(self, x):
            return nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    hiding = solution("design", NAME)["design"]
    hiding[0] = Hidden(3, 16, 4, stride=4, bias=False)
    with pytest.raises(ExerciseError, match="hides from the official counter"):
        ch02.check_design(hiding)


def test_design_task_numbers_in_the_text_are_the_checks():
    text = section("Design task")
    share = round(100 * ch02.DESIGN_SHARE)
    assert text.count(f"{share}%") == 2
    assert f"{ch02.DESIGN_SPEEDUP:.0f} times faster" in text
    assert ch02.DESIGN_REFERENCE in text and f"{ch02.DESIGN_SIZE} px" in text


# --- the numbers the prose states ----------------------------------------------------------


def test_prose_numbers_of_the_worked_examples():
    text = markdown()
    # section 2: 9 MACs; 15 FLOPs once each; 18 FLOPs at 2 per multiply-add; the slide's 6
    mv = fm.matvec(3, 3)
    assert f"**{mv.macs} MACs**" in text and f"= **{mv.flops} FLOPs**" in text
    assert f"2 × 9 = **{2 * mv.macs} FLOPs**" in text
    assert f"**{3 * 3} multiplications and {3 * 2} additions**" in text
    # section 2: 1151/576 = 1.998, "agree to 0.1%"
    d = fm.dot(576)
    assert f"${d.flops}/{d.macs} = {d.flops / d.macs:.3f}$" in text
    assert f"agree to {100 * (2 - d.flops / d.macs) / 2:.1f}%" in text
    # section 5: the classifier's two linear layers and their ratio
    assert f"= {fm.linear(1024, 6).macs}$" in text
    assert f"= {fm.linear(576, 1024).macs:,}$".replace(",", "{,}") in text
    assert f"({round(fm.linear(576, 1024).macs / fm.linear(1024, 6).macs)} times as many)" in text
    # section 9: the attention toy and the layer norm toy
    assert f"**{fm.total(fm.attention(2, 4, 2)).macs} MACs**" in text
    assert f"= {fm.layernorm((2, 4), 4).macs}$ MACs" in text
    # section 10: the roofline toy
    toy = fm.conv2d(2, 2, 2, 2, 1)
    assert f"$I = {toy.macs}/{4 * toy.mem} = {fm.arithmetic_intensity(toy):.1f}$" in text
    assert f"at {fm.roofline(0.2, 100e9, 20e9) / 100e9:.0%} of the peak" in text
    # section 10: the chain's peak activation
    peak, _ = fm.peak_activation([(3, 8, 8), (4, 8, 8), (4, 4, 4), (64,), (6,)])
    assert f"**{peak} elements at the convolution** ({4 * peak:,} bytes" in text


def test_prose_numbers_of_vit():
    from torchvision import models as tvm

    vit = tvm.vit_b_16()  # random weights: only its shape is read
    patches = (vit.image_size // vit.patch_size) ** 2
    side = vit.image_size // vit.patch_size
    text = markdown()
    assert (
        f"cuts a {vit.image_size}×{vit.image_size} image into {side}×{side} = {patches} patches "
        f"of {vit.patch_size}×{vit.patch_size} pixels" in text
    )
    assert f"$L = {vit.seq_length}$, with $E = {vit.hidden_dim}$" in text
    assert vit.seq_length == patches + 1  # one class token


def test_prose_numbers_of_the_static_table():
    from trashkit.complexity.explore import static_table

    t = static_table(resolution=56)["MACs per element moved"]
    text = markdown()
    ratio = t["conv"] / t["depthwise conv"]
    assert 55 <= ratio <= 65 and "about 60 times more MACs per" in text
    assert max(t["batchnorm"], t["hardswish"], t["squeeze-excite"]) <= 1
    assert "do one or less" in text


def test_prose_numbers_of_exercise_23():
    # "The two totals are within 8 MACs of each other"
    right = solution("prediction", NAME)["prediction"]
    gap = right["analytic"] - right["official"]
    assert f"within {gap} MACs of each other" in markdown()


@pytest.mark.slow  # runs every MACs counter on two torchvision models: make test, not make check
def test_reference_results_are_the_measured_ones():
    """Every number of the Reference results' latency part is in docs/results.md, and the
    counters' table is recomputed (deterministic)."""
    from torchvision import models as tvm

    from trashkit.complexity import compare_counters

    ref = section("Reference results")
    results = (REPO / "docs" / "results.md").read_text()
    latency = ref[ref.index("**2. MACs versus latency**") : ref.index("**Where a demo")]
    latency = latency[latency.index("| Spearman") :]  # the tables and what they support
    for number in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", latency):
        assert number in results, number
    assert "nice -n -10 python benchmarks/macs_vs_latency.py --threads 1" in results
    counters = ref[ref.index("| counter |") : ref.index("**2. MACs versus")]
    for name, col in (("mobilenet_v3_small", 0), ("shufflenet_v2_x0_5", 1)):
        cmp = compare_counters(getattr(tvm, name)(num_classes=6), (3, 156, 156))
        stated = [
            int(re.sub(r"[*,]", "", row.split("|")[2 + col]))
            for row in counters.splitlines()[2:]
            if row.startswith("|")
        ]
        assert stated == list(cmp.MACs), name


def test_section_11_quotes_the_reference_run():
    text = markdown()
    para = text[text.index("How to read this, with the reference run") :]
    para = para[: para.index("## Reference results")]
    results = (REPO / "docs" / "results.md").read_text()
    numbers = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", para)
    assert len(numbers) >= 8
    for number in numbers:
        assert number in results, number


def test_prose_attributions():
    text = markdown()
    assert '"MACs = 6"' in text and "the course's lecture slide" in text
    assert 'MACs as "the number of additions + multiplications"' in text
    assert "rules page" in text
    for source in ("MIT 6.5940", "FlopCounterMode", "pytorch/vision #6936"):
        assert source in text, source


# --- the chapter -------------------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter(NAME)
    check_structure(nb, "ch02", one_solution=False)
    heads = [h.lower() for h in re.findall(r"^#+ (.*)$", markdown(), re.MULTILINE)]
    order = ["reference results", "takeaways", "questionnaire", "design task", "further reading"]
    found = [next(i for i, h in enumerate(heads) if h.startswith(o)) for o in order]
    assert found == sorted(found), heads
    questions = re.findall(r"^\d+\. ", section("Questionnaire"), re.MULTILINE)
    assert 10 <= len(questions) <= 20
    takeaways = re.findall(r"^- ", section("Takeaways"), re.MULTILINE)
    assert 1 <= len(takeaways) <= 6
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert re.search(r"^threads = 1\b", params.source, re.MULTILINE)  # timings on 1 thread
    assert re.search(r'^preset = "classroom"', params.source, re.MULTILINE)


def test_instructor_note_has_the_key():
    note = (REPO / "docs" / "instructors" / "02.md").read_text()
    n = len(re.findall(r"^\d+\. ", section("Questionnaire"), re.MULTILINE))
    key = note[note.index("## Questionnaire key") :]
    assert len(re.findall(r"^\d+\. ", key, re.MULTILINE)) == n


def test_chapter_states_its_run_time_and_the_instructor_note_its_measurement():
    header = chapter(NAME).cells[0].source
    assert "TIME_" not in header
    m = re.search(r"Cost with the defaults: under (\d+) minutes", header)
    assert m and int(m.group(1)) <= 10
    note = (REPO / "docs" / "instructors" / "02.md").read_text()
    assert "papermill" in note and "load average" in note


@pytest.mark.slow
def test_chapter_runs_headless_quick(tmp_path, tiny_home):
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / NAME,
        tiny_home,
        output_dir=str(tmp_path / "run"),
        quick=True,
        interactive=False,
        resolution=96,
    )
    text = printed(nb)
    assert text.count("✓") >= 6  # every exercise check and the design task passed
    assert "Spearman rank correlation" in text and "find_escapes: 0 (DodgingConv)" in text
    assert "vit_b_16: ours / published = 1.0000" in text
    for f in (
        "macs_vs_latency.png",
        "roofline.png",
        "correlation_by_size.csv",
        "counters_mobilenet_v3_small.csv",
        "layers_shufflenet_v2_x0_5.csv",
    ):
        assert (tmp_path / "run" / f).is_file(), f


def test_student_copy_fails_clearly_at_every_exercise(capsys):
    import math as _math

    from trashkit.complexity import formulas

    exercises_in_turn(
        chapter(NAME), {"ch02": ch02, "nn": nn, "math": _math, "fm": formulas}, capsys
    )


def test_no_stale_parameter_names_in_the_repository():
    """The chapter's renamed parameters are not used by the book's tables."""
    from trashkit.book.chapters import DEMO_PARAMS, QUICK_PARAMS, declared_parameters

    declared = declared_parameters(REPO / "notebooks" / NAME)
    for table in (QUICK_PARAMS, DEMO_PARAMS):
        assert set(table["02_flops_macs"]) <= set(declared)
    assert not Path(REPO / "notebooks" / NAME).read_text().count("study_threads")
