"""Chapter 7 (compression): its exercise checks, its design task, its numbers, its headless run.

The reference solutions are read from the chapter itself (its exercise cells, without the
check call), so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import math
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from chapters import (
    benchmarks_module,
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

from trashkit.exercises import ExerciseError, NotSolved, ch07

NAME = "07_compress.ipynb"
RESULTS = (REPO / "docs" / "results.md").read_text()


def solved(name: str):
    return solution(name, NAME, {"torch": torch})[name]


def markdown(nb=None) -> str:
    nb = nb or chapter(NAME)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def section(title: str) -> str:
    """The markdown from the heading ``title`` to the next level-2 heading."""
    text = markdown()
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end > 0 else None]


# --- the exercise checks ---------------------------------------------------------------------


def test_soft_grad_check_accepts_the_solution_and_names_the_slips():
    ch07.check_soft_grad(solved("kd_soft_grad"))

    def soft(z, t):
        return torch.softmax(torch.tensor(z, dtype=torch.float64) / t, dim=0)

    def no_chain_rule(s, te, t, a):
        return (a * t * t * (soft(s, t) - soft(te, t))).tolist()

    with pytest.raises(ExerciseError, match=r"forgot the chain rule through z / T"):
        ch07.check_soft_grad(no_chain_rule)

    def flipped(s, te, t, a):
        return (a * t * (soft(te, t) - soft(s, t))).tolist()

    with pytest.raises(ExerciseError, match="the sign is flipped"):
        ch07.check_soft_grad(flipped)

    def unsoftened(s, te, t, a):
        return (a * t * (soft(s, 1.0) - soft(te, 1.0))).tolist()

    with pytest.raises(ExerciseError, match="softened ones"):
        ch07.check_soft_grad(unsoftened)
    with pytest.raises(ExerciseError, match="one partial derivative per student logit"):
        ch07.check_soft_grad(lambda s, te, t, a: [0.0])
    with pytest.raises(NotSolved, match="kd_soft_grad is not written yet"):
        ch07.check_soft_grad(stub)


def test_soft_grad_reference_is_autograd_of_kd_loss_and_the_closed_form():
    s, te, t, a = ch07.GRAD_CASES[1]
    ps, pt = ch07._softmax(s, t), ch07._softmax(te, t)
    assert np.allclose(ch07.soft_grad_reference(s, te, t, a), a * t * (ps - pt))


def test_group_keep_check_accepts_the_solution_and_names_the_slips():
    ch07.check_group_keep(solved("group_keep"))

    def own_filter(c, b, n, k):
        return torch.argsort(c.flatten(1).norm(dim=1), descending=True)[:k].tolist()

    with pytest.raises(ExerciseError, match=r"expected \[1, 2\], got \[0, 3\].*own filter alone"):
        ch07.check_group_keep(own_filter)

    def l1(c, b, n, k):
        score = c.flatten(1).abs().sum(1) + b.abs() + n.transpose(0, 1).flatten(1).abs().sum(1)
        return torch.argsort(score, descending=True)[:k].tolist()

    with pytest.raises(ExerciseError, match=r"summed absolute values \(L1\)"):
        ch07.check_group_keep(l1)
    with pytest.raises(ExerciseError, match="return a list of channel indices"):
        ch07.check_group_keep(lambda c, b, n, k: None)


def test_group_importance_ranks_like_torch_pruning():
    import torch_pruning as tp

    conv, bn_w, nxt, _ = ch07.GROUP_CASES[2]
    net = nn.Sequential(
        nn.Conv2d(conv.shape[1], len(conv), 3, padding=1, bias=False),
        nn.BatchNorm2d(len(conv)),
        nn.ReLU(),
        nn.Conv2d(len(conv), len(nxt), 1, bias=False),
    ).eval()
    with torch.no_grad():
        net[0].weight.copy_(conv)
        net[1].weight.copy_(bn_w)
        net[3].weight.copy_(nxt)
    with torch.enable_grad():
        graph = tp.DependencyGraph().build_dependency(net, torch.zeros(1, conv.shape[1], 4, 4))
    group = graph.get_pruning_group(net[0], tp.prune_conv_out_channels, idxs=list(range(len(conv))))
    ours = ch07.group_importance(conv, bn_w, nxt)
    assert np.allclose(tp.importance.MagnitudeImportance(p=2)(group).numpy(), ours / ours.mean())


def test_fixed_point_check_accepts_the_solution_and_names_the_slips():
    ch07.check_fixed_point(solved("fixed_point"))
    with pytest.raises(ExerciseError, match=r"fixed_point\(0\.05\).*normalise it"):
        ch07.check_fixed_point(lambda m: (round(m * 2**31), 31))
    with pytest.raises(ExerciseError, match="both must be integers"):
        ch07.check_fixed_point(lambda m: (m * 2**31, 31))
    with pytest.raises(ExerciseError, match=r"return \(m0, shift\)"):
        ch07.check_fixed_point(lambda m: 3)

    def floor(m):
        n = 0
        while m * 2**n < 0.5:
            n += 1
        return math.floor(m * 2 ** (n + 31)), n + 31

    with pytest.raises(ExerciseError, match="one step off"):
        ch07.check_fixed_point(floor)


def test_prediction_check_fails_for_the_naive_answers():
    pred = solved("predicted")
    assert ch07.record_prediction(pred).startswith("✓")
    measured = {"macs_ratio": 1.0, "nonzero_ratio": 0.5007, "speedup": 1.04}
    assert "holds" in ch07.check_prediction(pred, measured)
    with pytest.raises(ExerciseError, match=r"speed-up: you said x2\.00.*dense kernel"):
        ch07.check_prediction({**pred, "speedup": 2.0}, measured)
    with pytest.raises(ExerciseError, match="counts the layer's shape"):
        ch07.check_prediction({**pred, "macs_ratio": 0.5}, measured)
    with pytest.raises(ExerciseError, match="exactly the keys"):
        ch07.record_prediction({"speedup": 1.0})


def test_student_copy_stops_clearly_at_every_exercise(capsys):
    nb = chapter(NAME)
    nb.cells = [c for c in nb.cells if "check_design" not in c.source]  # needs the run's ctx
    exercises_in_turn(nb, {"ch07": ch07, "math": math, "torch": torch}, capsys)


# --- the design task -------------------------------------------------------------------------


def test_design_check_measures_and_can_fail(trained_run, tmp_path, isolated_home):
    from trashkit.compress import pipeline as cp
    from trashkit.compress import prune_to_macs

    run_dir, _ = trained_run
    ctx = cp.Baseline(run_dir / "best.pt", tmp_path)
    with pytest.raises(ExerciseError, match=r"\(100% of the original's .*at most 50% of the MACs"):
        ch07.check_design(ctx.model, ctx)
    small, info = prune_to_macs(ctx.model, ctx.size, 0.4)
    assert info["ratio"] <= ch07.DESIGN_MACS
    with pytest.raises(ExerciseError, match="F1 fell below 0.5, where the F1 term jumps to 1"):
        ch07.check_design(small, ctx, original_f1=0.9)  # a strong original: the F1 cost wins
    assert "design task met" in ch07.check_design(small, ctx, original_f1=0.0)

    class Hidden(nn.Conv2d):  # dodges the counter's hooks
        def forward(self, x):
            return nn.functional.conv2d(x, self.weight, None, self.stride, self.padding)

    sneaky = nn.Sequential(Hidden(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ExerciseError, match="cannot see"):
        ch07.check_design(sneaky, ctx, original_f1=0.0)


# --- the chapter as a whole ------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter(NAME)
    check_structure(nb, "ch07")
    intro = nb.cells[0].source
    for needed in (
        "What you will learn",
        "What to know first",
        "What it costs",
        "papermill notebooks/07_compress.ipynb",
        "-p preset full",
    ):
        assert needed in intro, needed
    params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'preset = "class"' in params and "threads = 1" in params
    text = markdown(nb)
    for heading in ("## Reference results", "## Takeaways", "## Questionnaire", "## Design task"):
        assert heading in text, heading
    assert (
        text.index("## Takeaways")
        < text.index("## Questionnaire")
        < text.index("## Further reading")
    )
    takeaways = re.findall(r"^- ", section("## Takeaways"), re.M)
    assert 1 <= len(takeaways) <= 6
    questions = re.findall(r"^\d+\. ", section("## Questionnaire"), re.M)
    assert 10 <= len(questions) <= 20
    for history in ("older protocol", "earlier version", "SIGSTOP", "load average", "issue "):
        assert history not in text, history
    design = [c for c in nb.cells if c.cell_type == "code" and "ch07.check_design(" in c.source]
    assert len(design) == 1 and "### BEGIN SOLUTION" in design[0].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for shown in (
        "torch.onnx.export(",
        "quantize_static(",
        "tp.DependencyGraph()",
        "prune.l1_unstructured(",
        "build_bank(",
        "integer_linear(",
    ):
        assert shown in code, shown


def test_presets_and_quick_parameters_are_the_chapters():
    from trashkit.book.chapters import DEMO_PARAMS, QUICK_PARAMS, declared_parameters
    from trashkit.compress import pipeline as cp

    declared = declared_parameters(chapter(NAME))
    for params in (QUICK_PARAMS["07_compress"], DEMO_PARAMS["07_compress"], cp.PRESETS["full"]):
        assert set(params) <= set(declared), set(params) - set(declared)
    given = cp.preset_values("full", {"latency_runs"}, {**declared, "latency_runs": 7})
    assert given["latency_runs"] == 7 and given["train_epochs"] == 30
    with pytest.raises(ValueError, match="use one of"):
        cp.preset_values("fast", set(), declared)


def test_header_counts_the_full_preset():
    from trashkit.compress import pipeline as cp

    full, intro = cp.PRESETS["full"], " ".join(chapter(NAME).cells[0].source.split())
    fine_tuned = ("original + same extra epochs", "pruned", "decomposed", "design task")
    assert f"{2 * full['train_epochs']} student epochs" in intro
    assert f"{len(fine_tuned) * full['finetune_epochs']} fine-tuning epochs" in intro
    assert f"{len(full['scan_ratios']) * full['scan_epochs']} scan epochs" in intro
    assert (
        f"a {full['teacher_epochs']}-epoch EfficientNet-Lite0 teacher at {full['teacher_size']} px"
        in intro
    )
    assert f"{full['bank_epochs']} passes of a student over a {full['bank_views']}-view" in intro


def test_the_full_preset_is_the_measured_open_recipe():
    """preset full trains the teacher and bank of benchmarks/trashnet.py --recipe open, whose
    figures the Reference results quote."""
    from trashkit.compress import pipeline as cp

    trashnet = benchmarks_module("trashnet")
    full = cp.PRESETS["full"]
    assert full["teacher_size"] == trashnet.OPEN_TEACHER["image_size"]
    assert full["teacher_epochs"] == trashnet.OPEN_TEACHER["epochs"]
    assert full["teacher_freeze"] == trashnet.OPEN_TEACHER["freeze"]
    assert full["bank_views"] == trashnet.BANK["views"]
    assert full["bank_epochs"] == trashnet.BANK_STUDENT["epochs"]


def _numbers(text: str) -> list[str]:
    """Decimal numbers and comma-grouped integers of a text (a minus sign dropped)."""
    return re.findall(r"\d{1,3}(?:,\d{3})+|\d+\.\d+", text)


def test_reference_numbers_come_from_results_md():
    ref = section("## Reference results")
    tables = "\n".join(line for line in ref.splitlines() if line.startswith("|"))
    missing = [n for n in _numbers(tables) if n not in RESULTS]
    assert not missing, missing
    prose = "\n".join(line for line in ref.splitlines() if not line.startswith("|"))
    for n in _numbers(prose):
        assert n in RESULTS or n in DERIVED, n


#: numbers the chapter's prose derives from docs/results.md, recomputed here
DERIVED = {
    "0.025": round(0.712 - 0.687, 3),
    "0.004": round(0.712 - 0.708, 3),
    "0.009": round(0.716 - 0.707, 3),
    "2.4": round(100 - 97.6, 1),
    "9.5": round(9_525_638 / 1e6, 1),
}


def test_derived_numbers():
    assert DERIVED == {"0.025": 0.025, "0.004": 0.004, "0.009": 0.009, "2.4": 2.4, "9.5": 9.5}
    text = " ".join(markdown().split())
    assert f"{1 - 5_464_198 / 9_525_638:.0%}" == "43%" and "removing 43% of the MACs" in text
    assert f"{7_496_838 / 9_525_638:.0%}" == "79%" and "with 79% of them" in text
    assert f"{5_464_198 / 9_525_638:.0%}" == "57%" and "57% of the MACs ran 1.09×" in text
    assert round(843 / 2584, 2) == 0.33 and "a third of the file size" in text
    for quoted in ("2.77×", "2.78×", "0.91 ms", "0.686 against 0.727", "0.756 against 0.722"):
        assert quoted.split()[0].rstrip("×") in RESULTS, quoted


def test_one_split_noise_is_the_ablations_spread():
    """The Reference results' "standard deviation of 0.009 to 0.043": the smallest and the
    largest sd of the ablation's per-split differences (its Δ column) in docs/results.md."""
    ablation = RESULTS[RESULTS.index("### Ablation") : RESULTS.index("Per-class test F1 of each")]
    sds = [float(sd) for sd in re.findall(r"\| [+-]\d\.\d{3} ± (\d\.\d{3}) \|", ablation)]
    assert len(sds) == 7 and (min(sds), max(sds)) == (0.009, 0.043)
    ref = " ".join(section("## Reference results").split())
    assert f"standard deviation of {min(sds):.3f} to {max(sds):.3f}" in ref


def test_reference_command_runs_the_presets_scan():
    from trashkit.compress import pipeline as cp

    ref = " ".join(section("## Reference results").split())
    scan = ",".join(str(r) for r in cp.PRESETS["full"]["scan_ratios"])
    assert f"--checkpoint <ablation>/baseline/seed0/best.pt --scan {scan}`" in ref
    assert "a three-point sensitivity scan with 5 fine-tuning epochs per point" in ref
    assert len(cp.PRESETS["full"]["scan_ratios"]) == 3 and cp.PRESETS["full"]["scan_epochs"] == 5


def test_header_cost_is_the_instructor_notes_and_chapter_4s_size():
    """The header's run time and CPU time are the instructor note's measurement; the
    fallback original's size and epochs are the code's; 2.25 is chapter 4's classroom input
    side over the fallback's, squared."""
    import inspect

    from trashkit.book.chapters import declared_parameters
    from trashkit.compress import pipeline as cp

    intro = " ".join(chapter(NAME).cells[0].source.split())
    note = " ".join((REPO / "docs" / "instructors" / "07.md").read_text().split())
    assert "6 min 46 s measured with papermill" in intro and "**6 min 46 s** wall" in note
    assert "164 s of CPU time" in intro and "164 s of CPU time" in note
    defaults = inspect.signature(cp.original_checkpoint).parameters
    fallback = defaults["image_size"].default
    epochs = declared_parameters(chapter(NAME))["original_epochs"]
    assert f"({epochs} epochs at {fallback} px)" in intro
    ch4 = declared_parameters(chapter("04_train.ipynb"))["image_size"]
    ratio = (ch4 / fallback) ** 2
    assert f"in class that network sees {ch4}-px images, ({ch4}/{fallback})² = {ratio:.2f}" in intro
    assert round(ratio) == 2 and "roughly twice as long" in intro


def test_distillation_is_reported_as_a_measurement():
    """No law ("a teacher no better than the student transfers nothing", "helps only where")
    the measurements do not support; the counter-example is cited."""
    text = " ".join(markdown().split())
    for law in ("transfers nothing", "helps only where", "must first be better"):
        assert law not in text, law
    assert "Born-Again Neural Networks" in " ".join(section("## Further reading").split())
    assert "not a law" in section("## Reference results")


def test_design_targets_in_the_prose_are_the_checks():
    task = " ".join(section("## Design task").split())
    assert f"at most {ch07.DESIGN_MACS:.0%} of the original's official MACs" in task
    assert f"at least {ch07.DESIGN_GAIN} lower" in task
    solution_cell = next(
        c.source
        for c in chapter(NAME).cells
        if c.cell_type == "code" and "check_design" in c.source
    )
    assert "cp.pruned(ctx, 0.45," in solution_cell and "prunes to 45% of the MACs" in task
    # the trade-off the prose computes from the score's baseline constants
    from trashkit.scoring import F1_BASELINE_MACS, MACS_BASELINE

    assert f"{1e6 / MACS_BASELINE:.3f}" == "0.072" and "0.072 per million MACs" in task
    assert f"{0.01 / F1_BASELINE_MACS:.3f}" == "0.012" and "0.012 per 0.01 of macro-F1" in task


def test_teacher_cost_in_the_prose():
    from trashkit.complexity import official_macs
    from trashkit.models import build_model

    macs = official_macs(build_model("efficientnet_lite0", 6), 224)
    assert round(macs, -8) == 400_000_000 and "about 400 million official MACs at 224 px" in (
        " ".join(markdown().split())
    )
    assert (
        len(build_model("efficientnet_lite0", 6).features) == 9 and "of its 9 blocks" in markdown()
    )


def test_pencil_toys_of_the_prose():
    from trashkit.compress.qat import weight_grid
    from trashkit.compress.quant import integer_linear, quantize_multiplier

    text = markdown()
    m0, shift = quantize_multiplier(0.05)
    assert f"{m0:,}".replace(",", "{,}") in text and shift == 35
    acc, q = integer_linear([130, 126, 140], 128, [[50, -20, 10]], [60], m0, shift)
    assert acc.tolist() == [320] and q.tolist() == [16] and "= 320$" in text
    w = weight_grid(torch.tensor([[0.9, -0.3, 0.05, 0.7]]), 4)
    assert [round(v, 6) for v in w[0].tolist()] == [0.9, -0.257143, 0.0, 0.642857]
    assert "(0.9, -0.257143, 0, 0.642857)" in text


@pytest.mark.slow
def test_chapter_runs_headless(tmp_path, tiny_home, isolated_home):
    from trashkit.book.chapters import QUICK_PARAMS
    from trashkit.train import train

    train(
        {"model": "tiny", "image_size": 48, "epochs": 1, "batch_size": 32, "test_fraction": 0.2},
        tmp_path / "orig",
        progress=False,
    )
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / "out.ipynb",
        tiny_home,
        output_dir=str(tmp_path / "run"),
        checkpoint=str(tmp_path / "orig" / "best.pt"),
        **{**QUICK_PARAMS["07_compress"], "scan_epochs": 0},
    )
    run = tmp_path / "run"
    table = pd.read_csv(run / "variants.csv").set_index("variant")
    assert {
        "original",
        "original + same extra epochs",
        "pruned",
        "decomposed",
        "student alone (tiny)",
        "student distilled (tiny)",
        "student from the bank (tiny)",
        "ONNX Runtime fp32",
        "ONNX Runtime int8",
    } <= set(table.index)
    assert "ArcFace head" not in table.index  # chapter 8; only on request here
    assert pd.isna(table.loc["ONNX Runtime int8", "MACs"])
    assert "not countable" in table.loc["ONNX Runtime int8", "note"]
    assert table.loc["pruned", "MACs"] <= 0.6 * table.loc["original", "MACs"]
    scan = pd.read_csv(run / "sensitivity.csv")
    assert list(scan.target) == [1.0, 0.6, 0.3]
    assert scan["kept MACs"].is_monotonic_decreasing and scan["kept MACs"][1] <= 0.6
    assert scan["F1 fine-tuned"].iloc[1:].isna().all()  # scan_epochs 0: prune and measure only
    qat = pd.read_csv(run / "ptq_vs_qat.csv").set_index("variant")
    assert len(qat) == 4 and (qat.iloc[1:, 1] <= 2**4 - 1).all()
    cfg = (run / "teacher_imagenet" / "config.json").read_text()
    assert '"chapter": 7' in cfg and '"kind": "teacher_imagenet"' in cfg
    assert '"pretrained": "imagenet"' in cfg
    shown = printed(nb)
    for needed in (
        "= trashkit's kd_loss",
        "✓ kd_soft_grad equals",
        "build_bank stores the same view 0",
        "✓ prediction recorded",
        "torch-pruning builds the same network",
        "coupled slices",
        "ONNX Runtime = PyTorch",
        "ONNX Runtime agrees",
        "= the float result 0.064",
        "✓ fixed_point matches",
        "what ONNX Runtime runs",
        "WARNING: runs this short",
    ):
        assert needed in shown, needed
    for figure in ("variants.png", "sensitivity.png", "cross_chapter.png"):
        assert (run / figure).is_file(), figure
    assert "✓ design task met" in shown
    toy = pd.read_csv(run / "qat_toy.csv").set_index("bits")  # the prose of section 11
    two = toy.loc[2]
    assert two["float"] - two["PTQ"] > 0.05  # "at fewer bits it is not [harmless]"
    assert two["QAT 300 steps"] > two["float +300 steps, then PTQ"] > two["PTQ"] - 0.01
    assert nbformat.validate(nb) is None
