"""Chapter 4 (training): its exercise checks and design-task check, its shape, its parameters
and presets (the full preset is benchmarks/protocol.py's quick recipe), the numbers its prose
quotes, its headless run together with chapter 5, its student copy.

The reference solutions are read from the chapter itself, so the tests follow the notebook a
lecturer teaches from.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from chapters import (
    benchmarks_module,
    chapter,
    check_structure,
    exercises_in_turn,
    printed,
    solution,
    student_source,
    stub,
)
from conftest import REPO, tiny_config
from test_notebooks import WORKER_NOISE, _text, execute
from torch import nn
from torchvision.transforms import v2

from trashkit.complexity import official_macs
from trashkit.complexity.official import macs_at, resolution_split
from trashkit.exercises import ExerciseError, NotSolved, ch04
from trashkit.models import build_model
from trashkit.notebook import assigned_names
from trashkit.train import TrainConfig, train
from trashkit.train.config import notebook_config
from trashkit.train.setup import build_optimizer

NAME = "04_train.ipynb"
EXTRAS = ("ablation_epochs", "transfer_epochs", "transfer_size")
#: the wrap-up report's rows as the brief lists them (#, layers, params, px, epochs, score,
#: F1, time); the chapter's TEAM_REPORT must hold exactly these
BRIEF_ROWS = [
    (1, 179, 2_127_374, 224, 100, 1.5460, 0.6880, 84.9850),
    (2, 163, 1_741_254, 224, 100, 1.7950, 0.6530, 92.9260),
    (3, 79, 294_854, 156, 100, 1.2950, 0.6870, 63.0780),
    (4, 79, 294_854, 156, 150, 1.1732, 0.7005, 58.3412),
    (5, 79, 294_854, 156, 200, 1.1676, 0.7012, 58.1225),
]


def cell(nb, cell_id: str) -> str:
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def flat(text: str) -> str:
    return " ".join(text.split())


def parameters_cell(nb) -> str:
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def assigned_value(source: str, name: str):
    """The literal a cell assigns to ``name`` (``x = {...}`` or ``x["k"] = v`` lines)."""
    value = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == name:
                value = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            target = node.targets[0]
            if isinstance(target.value, ast.Name) and target.value.id == name:
                value[ast.literal_eval(target.slice)] = ast.literal_eval(node.value)
    return value


def chapter_parameters() -> dict:
    ns: dict = {}
    exec(parameters_cell(chapter(NAME)), ns)  # noqa: S102 - the chapter's own parameters
    return {k: v for k, v in ns.items() if not k.startswith("__")}


def full_preset() -> dict:
    return assigned_value(cell(chapter(NAME), "c03"), "FULL")


def onecycle_trace(cfg: TrainConfig, steps: int) -> pd.DataFrame:
    """The real scheduler's learning rate and momentum at every step (as the chapter plots)."""
    opt, sched = build_optimizer(cfg, nn.Linear(2, 2), steps)
    rows, total = [], cfg.epochs * steps
    for step in range(total):
        rows.append({"lr": opt.param_groups[0]["lr"], "momentum": opt.param_groups[0]["momentum"]})
        opt.step()
        if step < total - 1:
            sched.step()
    return pd.DataFrame(rows)


def section10_toy() -> nn.Module:
    """Section 10's hand-counted toy: a 3x3 convolution, global pooling and a Linear layer."""
    return nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 3),
    )


# --- the exercise checks ---------------------------------------------------------------------


def _anneal(a: float, b: float, p: float) -> float:
    """Section 4's half cosine (the chapter defines it before Exercise 4.1)."""
    return b + (a - b) / 2 * (1 + math.cos(math.pi * p))


def test_onecycle_prediction_check():
    cfg = TrainConfig(epochs=3)
    split = type("Split", (), {"train_idx": range(27 * cfg.batch_size + 5)})  # 27 steps/epoch
    ns = {"config": cfg, "split": split, "anneal": _anneal}
    prediction = solution("prediction", NAME, ns)["prediction"]
    assert "recorded" in ch04.check_onecycle_prediction(prediction)
    trace = onecycle_trace(cfg, 27)  # 81 steps: the warm-up ends at PyTorch's step 23.3
    facts = ch04.onecycle_facts(trace)
    assert math.isclose(facts["peak_step"], 23.3) and int(trace.lr.idxmax()) == 24
    assert facts["below_tenth"] == 69 / 81  # read off the trace
    assert round(facts["momentum_at_tenth"], 2) == 0.94  # a tenth of the way left: 0.95 - 0.01
    assert "4 of 4 right" in ch04.check_onecycle_prediction(prediction, trace)
    for whole_step in (23, 24):  # the step on either side of PyTorch's float is fine
        ch04.check_onecycle_prediction({**prediction, "peak_step": whole_step}, trace)
    wrong = {
        "peak_step": (0.3 * 81, "steps count from 0"),
        "lr_at_half": (ch04._straight_line_half(trace), "that is a straight line"),
        "below_tenth": (0.93, "a straight line would get there at 0.93"),
        "momentum_at_tenth": (0.95, "the same half cosine, mirrored"),
    }
    with pytest.raises(ExerciseError, match="4 of 4 predictions are off") as err:
        ch04.check_onecycle_prediction({k: v for k, (v, _) in wrong.items()}, trace)
    for _, hint in wrong.values():
        assert hint in str(err.value)
    for value, hint in (
        (0.795, "that is p, the fraction of the annealing phase"),
        (0.3 + 0.7 * 0.205, "solve (1 + cos(pi p)) / 2 = 0.1, not 0.9"),
    ):
        with pytest.raises(ExerciseError, match=re.escape(hint)):
            ch04.check_onecycle_prediction({**prediction, "below_tenth": value}, trace)
    with pytest.raises(ExerciseError, match="steps, not epochs"):
        ch04.check_onecycle_prediction({**prediction, "peak_step": 2}, trace)
    with pytest.raises(ExerciseError, match="no value for below_tenth, momentum_at_tenth"):
        ch04.check_onecycle_prediction({"peak_step": 23, "lr_at_half": 0.08})
    with pytest.raises(ExerciseError, match="must be a number"):
        ch04.check_onecycle_prediction({**prediction, "lr_at_half": "0.08"})
    short = onecycle_trace(cfg, 10)  # 30 steps: a smoke run's schedule is not compared
    assert "too few to compare" in ch04.check_onecycle_prediction(prediction, short)
    # a constant momentum (one number) is held: the prediction then is that number
    held = TrainConfig(epochs=3, momentum=0.9)
    prediction = solution("prediction", NAME, {**ns, "config": held})["prediction"]
    assert prediction["momentum_at_tenth"] == 0.9
    assert "4 of 4 right" in ch04.check_onecycle_prediction(prediction, onecycle_trace(held, 27))


def test_smoothing_gap_check():
    gap = solution("smoothing_gap", NAME)["smoothing_gap"]
    assert "4.01" in ch04.check_smoothing_gap(gap)
    # the answer is where the smoothed loss stops falling: a numerical minimum agrees
    z = torch.zeros(1, 6, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.CrossEntropyLoss(label_smoothing=0.1)(z, torch.tensor([0]))
        loss.backward()
        return loss

    opt.step(closure)
    assert math.isclose(float((z[0, 0] - z[0, 1]).detach()), gap(6, 0.1), rel_tol=1e-3)
    with pytest.raises(
        ExerciseError, match="the best gap is 2.9444, got 2.1972 - that is the other"
    ):
        ch04.check_smoothing_gap(lambda k, e: math.log((k - 1) * (1 - e) / e))
    with pytest.raises(ExerciseError, match="without smoothing the gap is infinite"):
        ch04.check_smoothing_gap(lambda k, e: math.inf)
    with pytest.raises(ExerciseError, match="the logit gap is its log"):
        ch04.check_smoothing_gap(lambda k, e: 1 + k * (1 - e) / e)
    with pytest.raises(ExerciseError, match="return a number"):
        ch04.check_smoothing_gap(lambda k, e: "big")
    with pytest.raises(NotSolved, match="smoothing_gap is not written yet"):
        ch04.check_smoothing_gap(stub)


def test_balanced_weights_check():
    ch04.check_balanced_weights(solution("balanced_weights", NAME)["balanced_weights"])

    def count(labels, n):
        return np.bincount(labels, minlength=n)

    with pytest.raises(ExerciseError, match=r"carries 1.0000 in all, not N / C = 2.0000"):
        ch04.check_balanced_weights(lambda labels, n: 1 / count(labels, n))
    with pytest.raises(ExerciseError, match="must be equal, so a class with more images"):
        ch04.check_balanced_weights(lambda labels, n: count(labels, n) / len(labels))
    with pytest.raises(ExerciseError, match="divides by zero"), np.errstate(divide="ignore"):
        ch04.check_balanced_weights(lambda labels, n: len(labels) / (n * count(labels, n)))
    with pytest.raises(ExerciseError, match="expected one per class"):
        ch04.check_balanced_weights(lambda labels, n: [1.0])
    with pytest.raises(NotSolved):
        ch04.check_balanced_weights(stub)


def test_focal_gradient_check():
    grad = solution("focal_grad", NAME)["focal_grad"]
    ch04.check_focal_gradient(grad)
    # the check's reference is autograd through the training code's FocalLoss
    z = torch.tensor([[math.log(9.0), 0.0]], requires_grad=True)
    F.cross_entropy(z, torch.tensor([0])).backward()
    assert math.isclose(z.grad[0, 0].item(), 0.9 - 1, rel_tol=1e-6)
    assert math.isclose(ch04.focal_logit_grad(0.9, 0.0), 0.9 - 1, rel_tol=1e-9)
    slips = {
        "plain cross-entropy's gradient": lambda p, g: p - 1,
        "that is dL/dp": lambda p, g: g * (1 - p) ** (g - 1) * math.log(p) - (1 - p) ** g / p,
        r"treated \(1 - p\)\^gamma as a constant": lambda p, g: -((1 - p) ** (g + 1)),
        "the sign is flipped": lambda p, g: -grad(p, g),
        "return a number": lambda p, g: "small",
    }
    for message, wrong in slips.items():
        with pytest.raises(ExerciseError, match=message):
            ch04.check_focal_gradient(wrong)


def test_scaling_prediction_check():
    net = build_model("mobilenetv3:width=0.5,depth=0.5", 6)
    small_split = resolution_split(net, 64)
    prediction = solution(
        "scaling_prediction", NAME, {"sizes": (64, 96), "small_split": small_split}
    )["scaling_prediction"]
    assert "recorded" in ch04.check_scaling_prediction(prediction)
    deeper = build_model("mobilenetv3:width=0.5,depth=1.0", 6)
    measured = {
        "macs_ratio_resolution": official_macs(net, 96) / official_macs(net, 64),
        "macs_ratio_depth": official_macs(deeper, 64) / official_macs(net, 64),
    }
    assert math.isclose(prediction["macs_ratio_resolution"], measured["macs_ratio_resolution"])
    assert "well predicted" in ch04.check_scaling_prediction(prediction, measured)
    with pytest.raises(ExerciseError, match="1 of 2 predictions are off") as err:
        ch04.check_scaling_prediction({**prediction, "macs_ratio_resolution": 2.25}, measured)
    assert "10% too high" in str(err.value) and "the classifier" in str(err.value)
    with pytest.raises(ExerciseError, match="too high: depth multiplies the repeats"):
        ch04.check_scaling_prediction({**prediction, "macs_ratio_depth": 2.0}, measured)
    with pytest.raises(ExerciseError, match="must be a positive number"):
        ch04.check_scaling_prediction({"macs_ratio_resolution": -1, "macs_ratio_depth": 2})
    with pytest.raises(ExerciseError, match="no value for macs_ratio_depth"):
        ch04.check_scaling_prediction({"macs_ratio_resolution": 2})


@pytest.fixture(scope="module")
def design_runs(tmp_path_factory, tiny_home, tiny_crops):
    """A reference run and three candidates for the design task, tiny and quick."""
    root = tmp_path_factory.mktemp("design")
    base = tiny_config(tiny_crops, epochs=1, image_size=64, test_fraction=0.2, val_fraction=0.2)
    runs = {
        "reference": base,
        "smaller": {**base, "image_size": 32},
        "longer": {**base, "image_size": 32, "epochs": 2},
        "other-split": {**base, "image_size": 32, "split_seed": 1},
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(tiny_home))
        for name, params in runs.items():
            train(params, root / name, progress=False)
        train(
            {**runs["smaller"], "init_from": str(root / "reference" / "best.pt")},
            root / "borrowed",
            progress=False,
        )
    return root


@pytest.mark.slow  # trains or times models: make test, not make check
def test_design_check_measures_and_can_fail(design_runs):
    ref = design_runs / "reference"
    msg = ch04.check_design(design_runs / "smaller", ref, max_f1_loss=1.0)
    assert "design task met" in msg and "official MACs" in msg
    with pytest.raises(ExerciseError, match=r"1.00x the reference's .* \(at most 0.5x\)"):
        ch04.check_design(ref, ref)
    with pytest.raises(ExerciseError, match="2 epochs, more than the reference's 1"):
        ch04.check_design(design_runs / "longer", ref, max_f1_loss=1.0)
    with pytest.raises(ExerciseError, match="below the reference's"):
        ch04.check_design(design_runs / "smaller", ref, max_f1_loss=-1.0)
    with pytest.raises(
        ExerciseError, match="init_from is set: the design task trains from scratch"
    ):
        ch04.check_design(design_runs / "borrowed", ref, max_f1_loss=1.0)
    with pytest.raises(ExerciseError, match="must use the reference run's data and split"):
        ch04.check_design(design_runs / "other-split", ref, max_f1_loss=1.0)
    with pytest.raises(ExerciseError, match="holds no best.pt"):
        ch04.check_design(design_runs / "missing", ref)


# --- the package functions the chapter relies on ---------------------------------------------


def test_resolution_split_on_the_toy_and_a_real_network():
    toy = section10_toy()
    split = resolution_split(toy, 4)
    assert (split["total"], split["fixed"], split["scaling"]) == (905, 9, 896)
    assert list(split["layers"].type) == ["Linear"]
    assert macs_at(split, 8) == official_macs(toy, 8) == 3593
    net = build_model("mobilenetv3:width=0.5,depth=0.5", 6)
    split = resolution_split(net, 64)
    assert set(split["layers"].type) == {"Conv2d", "Linear"}  # squeeze-excite FCs, classifier
    for side in (96, 128):  # multiples of 32: the formula is exact
        assert macs_at(split, side) == official_macs(net, side)


def test_notebook_config_applies_presets_and_records_the_chapter(tmp_path):
    ns = {**chapter_parameters(), "preset": "full"}
    presets = {"class": {}, "full": full_preset()}
    config, for_train, values = notebook_config(ns, {"epochs"}, presets, EXTRAS, chapter=4)
    assert config is for_train and (config.chapter, config.kind) == (4, "train")
    assert config.image_size == 128 and config.epochs == ns["epochs"]  # -p epochs wins
    assert values["transfer_size"] == 192 and values["ablation_epochs"] == 3
    with pytest.raises(ValueError, match=r"preset='fast' is not one of \['class', 'full'\]"):
        notebook_config({**ns, "preset": "fast"}, set(), presets, EXTRAS, chapter=4)
    with pytest.raises(ValueError, match=r"sets \['epoch'\], which the chapter does not declare"):
        notebook_config(ns, set(), {"full": {"epoch": 3}}, EXTRAS, chapter=4)
    resume = {**ns, "resume": True, "output_dir": str(tmp_path)}
    with pytest.raises(FileNotFoundError, match="resume=True needs an output_dir"):
        notebook_config(resume, set(), presets, EXTRAS, chapter=4)
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig(epochs=7, chapter=4).to_dict()))
    saved, given, _ = notebook_config(resume, {"resume", "output_dir", "epochs"}, presets, EXTRAS)
    assert saved.epochs == 7 and given == {"epochs": ns["epochs"]}  # only what was given


# --- the chapter's shape, parameters and presets ---------------------------------------------


def test_chapter_shape_and_end_matter():
    nb = chapter(NAME)
    check_structure(nb, "ch04", 6, check=r"check_\w+")
    md = markdown(nb)
    text = flat(md)
    for must in (
        "What you will learn",
        "What to know first",
        "What it costs",
        "papermill",
        "Reference results",
        "Custom Loss (fixed)",
        "no momentum",
        "trashkit's choice",
        "regulariser",
        "31 bins",
        "_LEVEL_DENOM = 10",
        "group of 4 images",
        "torchrun --nproc_per_node",
        "N / (C\\,n_c)",
        "(1 - p_y)^\\gamma",
        "efficientnet_lite0",
        "freeze",
        "batch-norm statistics",
        "docs/gpu.md",
    ):
        assert must in text, must
    assert 'momentum 0.9" never happens' not in text and "README's GPU section" not in text
    for pattern in (r"\bissue \d+", "SIGSTOP", "load average", "earlier version", "superseded"):
        assert not re.search(pattern, md, re.IGNORECASE), pattern
    takeaways = md.split("## Takeaways")[1].split("## Questionnaire")[0]
    assert 1 <= len(re.findall(r"^- ", takeaways, re.MULTILINE)) <= 6
    questions = md.split("## Questionnaire")[1].split("## Design task")[0]
    assert 10 <= len(re.findall(r"^\d+\. ", questions, re.MULTILINE)) <= 20
    design = md.split("## Design task")[1].split("## Further reading")[0]
    assert "at most half" in design and "0.05 test macro-F1" in design
    assert "ch04.check_design(" in cell(nb, "c49d")
    assert ch04.check_design.__defaults__ == (0.5, 0.05)  # the text's conditions
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "winning teams converged" not in (md + code).lower()
    assert not re.search(r"build_model\([^)]*,\s*6\)", code), "class count must come from data"


def test_every_parameter_is_used_and_the_defaults_are_valid():
    nb = chapter(NAME)
    declared = assigned_names(parameters_cell(nb))
    fields = {f for f in TrainConfig.__dataclass_fields__}
    unused = [
        n for n in declared if n not in fields | set(EXTRAS) | {"preset", "output_dir", "resume"}
    ]
    assert not unused, f"parameters that reach nothing: {unused}"
    for name in (
        "momentum",
        "weight_decay",
        "label_smoothing",
        "test_fraction",
        "crop_scale",
        "ema",
    ):
        assert name in declared, name
    ns = chapter_parameters()
    assert ns["test_fraction"] > 0  # the default run holds back images chapter 5 scores
    assert set(full_preset()) <= set(declared)
    config, _, values = notebook_config(ns, set(), {"class": {}}, EXTRAS, chapter=4)
    assert (config.chapter, config.kind) == (4, "train")
    assert set(values) >= set(EXTRAS)


def test_the_full_preset_is_the_quick_recipe_of_the_protocol():
    """benchmarks/protocol.py's QUICK recipe = chapter 4's parameters with preset "full"."""
    protocol = benchmarks_module("protocol")
    ns = {**chapter_parameters(), "preset": "full"}
    config, _, _ = notebook_config(ns, set(), {"full": full_preset()}, EXTRAS, chapter=4)
    quick = {
        **protocol.QUICK,
        "val_fraction": protocol.VAL_FRACTION,
        "test_fraction": protocol.TEST_FRACTION,
    }
    for key, value in quick.items():
        assert getattr(config, key) == value, (key, getattr(config, key), value)
    # the classroom default differs only in size and epochs, to fit its time budget
    class_config, _, _ = notebook_config(chapter_parameters(), set(), {}, EXTRAS, chapter=4)
    differ = {k for k in quick if getattr(class_config, k) != quick[k]}
    assert differ == {"image_size", "epochs"}


def test_the_transfer_section_fine_tunes_like_the_open_track_teacher():
    trashnet = benchmarks_module("trashnet")
    nb = chapter(NAME)
    source = cell(nb, "t05").split("best_own")[0]
    ns: dict = {}
    exec(source, ns)  # noqa: S102 - the TRANSFER settings only
    full = full_preset()
    teacher = {
        **ns["TRANSFER"],
        "pretrained": "imagenet",
        "image_size": full["transfer_size"],
        "epochs": full["transfer_epochs"],
    }
    assert set(teacher) <= set(trashnet.OPEN_TEACHER)
    # the run the chapter trains: its configuration (preset full), then TRANSFER on top, so
    # the teacher's explicit "off" settings (mixup, cutmix, ema, teacher, init_from) must hold
    ns_full = {**chapter_parameters(), "preset": "full"}
    config, _, _ = notebook_config(ns_full, set(), {"full": full}, EXTRAS, chapter=4)
    tuned = {**config.to_dict(), **teacher}
    for key, value in trashnet.OPEN_TEACHER.items():
        assert tuned[key] == value, (key, tuned[key], value)
    text = flat(markdown(nb))
    assert f"{full['transfer_epochs']} epochs at {full['transfer_size']} px" in text
    assert f"at {full['transfer_size']} px, which is meant for a GPU" in text


# --- the numbers the prose quotes --------------------------------------------------------------


def test_team_report_rows_and_what_the_chapter_computes_from_them():
    nb = chapter(NAME)
    source = cell(nb, "c08a").split("PRIVATE")[0]
    ns = {"pd": pd}
    exec(source, ns)  # noqa: S102 - the TEAM_REPORT table only
    table = ns["TEAM_REPORT"]
    assert [tuple(r) for r in table.reset_index().itertuples(index=False)] == BRIEF_ROWS
    r1, r3, r5 = (dict(zip(table.columns, table.loc[i])) for i in (1, 3, 5))
    from trashkit.scoring.formulas import TIME_BASELINE

    text = flat(cell(nb, "c08b"))
    figures = [
        f"{1 - r3['params'] / r1['params']:.0%} fewer parameters",
        f"{(r3['px'] / r1['px']) ** 2:.2f} of the pixels",
        f"cost {r1['F1'] - r3['F1']:.3f} macro-F1",
        f"saved {1 - r3['time_s'] / r1['time_s']:.0%} of the submit time",
        f"+{r5['F1'] - r3['F1']:.4f} F1",
        f"{0.5 * (r3['time_s'] - r5['time_s']) / TIME_BASELINE:.4f} of the score's improvement by "
        f"{r3['score'] - r5['score']:.4f}",
        f"{r5['F1'] - 0.6986:.4f} lower on the private test images",
    ]
    for figure in figures:
        assert figure in text, figure
    header = flat(cell(nb, "c00"))
    assert f"{r5['F1']} at {r5['time_s']:.2f} s" in header
    takeaways = flat(markdown(nb).split("## Takeaways")[1])
    assert (
        f"cost {r1['F1'] - r3['F1']:.3f} F1 for {1 - r3['time_s'] / r1['time_s']:.0%}" in takeaways
    )


def test_randaugment_magnitudes_quoted_are_torchvisions_and_timms():
    space = v2.RandAugment()._AUGMENTATION_SPACE
    rotate = float(space["Rotate"][0](31, 32, 32)[9])
    paper = 30.0 * 9 / 10  # timm: (level / _LEVEL_DENOM) * 30 degrees
    assert rotate == 9.0 and float(space["Rotate"][0](11, 32, 32)[9]) == paper == 27.0
    text = flat(cell(chapter(NAME), "c19a"))
    for figure in (f"{9 / 30:.0%} of it", f"{9 / 10:.0%} of it", "exactly 9°", "rotates by 27°"):
        assert figure in text, figure
    # the colour factors: the paper's code and timm's default map M to 0.1 + 1.8 M / 10,
    # timm's "increasing" variant to 1 +- 0.9 M / 10, torchvision to 1 +- 0.9 M / 30
    brightness = space["Brightness"][0]
    assert math.isclose(float(brightness(31, 32, 32)[9]), 0.27, rel_tol=1e-6)
    assert math.isclose(float(brightness(11, 32, 32)[9]), 0.9 * 9 / 10, rel_tol=1e-6)
    for figure in ("gives 1.72", "1 \\pm 0.81", "1 \\pm 0.27"):
        assert figure in text, figure
    assert f"{0.1 + 1.8 * 9 / 10:.2f}" == "1.72"


def test_the_hand_counted_toy_of_section_10():
    toy = section10_toy()
    text = flat(cell(chapter(NAME), "c43"))
    small, large = official_macs(toy, 4), official_macs(toy, 8)
    for figure in (f"= {small}", f"= {large}", f"ratio of {large / small:.3f}"):
        assert figure in text, figure


def test_the_header_states_the_defaults_and_the_full_preset():
    header = flat(cell(chapter(NAME), "c00"))
    ns, full = chapter_parameters(), full_preset()
    assert f"{ns['epochs']} epochs at {ns['image_size']} px on the synthetic data" in header
    assert f"({full['epochs']} epochs at {full['image_size']} px;" in header
    assert "about 11 minutes" in header
    note = flat((REPO / "docs" / "instructors" / "04.md").read_text())
    assert "3 min 43 s measured" in header and "**3 min 43 s** wall" in note  # one measurement
    assert "the 100 epochs train in about 11 minutes" in flat(
        (REPO / "docs" / "results.md").read_text()
    )


def test_the_block_counts_exercise_4_5_quotes():
    def stages(depth):
        net = build_model(f"mobilenetv3:width=1,depth={depth}", 6)  # distinct widths
        outs = [block.out_channels for block in net.features[1:-1]]
        return [len(list(run)) for _, run in itertools.groupby(outs)]

    text = flat(cell(chapter(NAME), "c43b"))
    assert stages(1.0) == [1, 2, 3, 2, 3] and "1, 2, 3, 2 and 3 blocks" in text
    assert stages(0.5) == [1, 1, 2, 1, 2] and "(1, 1, 2, 1, 2)" in text


def test_reference_numbers_come_from_the_results_page():
    """Every figure of the Reference results section (closed and open track) is one that
    docs/results.md states."""
    results = (REPO / "docs" / "results.md").read_text()
    section = cell(chapter(NAME), "c49").split("**The team's report**")[0]  # both tracks
    numbers = set(
        re.findall(r"(?<![\w.])[-+]?\d[\d,]*\.\d+|(?<![\w.,])\d{1,3}(?:,\d{3})+", section)
    )
    missing = [n for n in sorted(numbers) if n not in results]
    assert not missing, f"figures not in docs/results.md: {missing}"
    assert len(numbers) > 40  # the scan sees the tables


# --- headless runs ---------------------------------------------------------------------------


@pytest.mark.slow
def test_train_and_score_chapters(tmp_path, tiny_home, tiny_crops, capfd):
    nb = execute(
        NAME,
        tmp_path,
        tiny_home,
        output_dir=str(tmp_path / "train"),
        data=str(tiny_crops),
        epochs=3,
        model="tiny",
        image_size=64,
        ablation_epochs=1,
        transfer_size=32,
    )
    assert "val_macro_f1" in _text(nb)
    seen = _text(nb, rich=True) + "".join(capfd.readouterr())  # the notebook and stderr
    for noise in WORKER_NOISE:
        assert noise not in seen, f"training in a kernel printed {noise!r}"
    text = printed(nb)
    assert "= the inline epoch's" in text  # the 15-line epoch equals train()'s first epoch
    calls = sum(c.source.count("ch04.check_") for c in nb.cells if c.cell_type == "code")
    assert calls == 8 and text.count("✓") == calls  # every check (design task too) passed, said so
    assert "design task met" in text
    folder = tmp_path / "train"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["input_size"] == 64 and metrics["macs"] > 0
    assert metrics["n_test"] > 0  # the default run holds back test images
    config = json.loads((folder / "config.json").read_text())
    assert (config["chapter"], config["kind"]) == (4, "train")  # chapters 5 and 7 find it
    assert len(list((folder / "exercise-4.5").glob("*/best.pt"))) == 4
    kinds = {json.loads(p.read_text())["kind"] for p in folder.glob("*/*/config.json")}
    kinds |= {json.loads(p.read_text())["kind"] for p in folder.glob("*/config.json")}
    assert kinds == {"ablation", "transfer", "design"}  # never mistaken for the chapter's run
    nb = execute(
        "05_score.ipynb",
        tmp_path,
        tiny_home,
        checkpoint=str(folder / "best.pt"),
        output_dir=str(tmp_path / "score"),
        latency_runs=3,
        interactive=False,
    )
    scores = json.loads((tmp_path / "score" / "scores.json").read_text())
    for key in ("f1", "macs", "params", "latency_ms", "submit_time_s", "score_macs", "score_time"):
        assert scores[key] is not None, key
    assert scores["f1_source"].startswith("test split of")
    assert (tmp_path / "score" / "submission.csv").is_file()


def test_student_copy_fails_clearly_at_every_exercise(capsys):
    nb = chapter(NAME)
    design = nbformat.from_dict(nb)
    design.cells = [c for c in nb.cells if c.get("id") != "c49d"]
    exercises_in_turn(
        design,
        {
            "ch04": ch04,
            "config": TrainConfig(),
            "split": type("Split", (), {"train_idx": range(1770)}),  # TrashNet's training photos
            "anneal": _anneal,
            "sizes": (64, 96),
            "small_split": resolution_split(build_model("mobilenetv3:width=0.5,depth=0.5", 6), 64),
            "math": math,
            "torch": torch,
            "nn": nn,
            "F": F,
            "np": np,
        },
        capsys,
        ("not yet solved",),
    )
    student = student_source(cell(nb, "c49d"))
    with pytest.raises(NotImplementedError, match="not yet solved"):
        exec(compile(student, "design cell", "exec"), {"config": TrainConfig()})  # noqa: S102
