"""Chapter 6 (AutoML): its exercise checks, the numbers its prose quotes, its shape, its
headless run and its student copy.

The reference solutions are read from the chapter itself (its exercise cells, without the
check call), so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import optuna
import pandas as pd
import pytest
from chapters import (
    BEGIN,
    chapter,
    check_structure,
    execute,
    exercise_cells,
    exercises_in_turn,
    printed,
    solution,
    student_copy,
    stub,
)
from conftest import REPO

from trashkit.exercises import ExerciseError, NotSolved, ch06
from trashkit.scoring import F1_BASELINE_MACS, MACS_BASELINE
from trashkit.search import (
    PRESETS,
    REFERENCE_PROXY,
    SearchConfig,
    load_study,
    proxy_correlations,
    reference_proxy_table,
    space_table,
)

NAME = "06_automl.ipynb"
TOY = {"A": (0.80, 9e6), "B": (0.78, 4e6), "C": (0.75, 5e6), "D": (0.70, 2e6), "E": (0.80, 12e6)}


def markdown(nb=None) -> str:
    nb = nb or chapter(NAME)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


# --- the exercise checks ---------------------------------------------------------------------


def test_winner_prediction_is_judged_by_the_score_and_explained():
    ns = solution("predicted_winner", NAME)
    ch06.check_winner_prediction(ns["predicted_winner"], TOY)
    with pytest.raises(ExerciseError, match=r"B does not have the lowest score.*0\.3562.*0\.3075"):
        ch06.check_winner_prediction("B", TOY)
    with pytest.raises(ExerciseError, match="C is not on the Pareto front"):
        ch06.check_winner_prediction("C", TOY)
    with pytest.raises(ExerciseError, match="name one trial of the toy"):
        ch06.check_winner_prediction("the cheap one", TOY)


def test_pareto_check_accepts_the_solution_and_names_the_slips():
    ch06.check_pareto_front(solution("pareto_front", NAME)["pareto_front"])
    with pytest.raises(
        ExerciseError,
        match=r"expected indices \[0, 1, 3\], got \[0\].*only the most accurate trial",
    ):
        ch06.check_pareto_front(lambda pts: [max(range(len(pts)), key=lambda i: pts[i][0])])
    with pytest.raises(ExerciseError, match="treated MACs as something to maximise"):
        ch06.check_pareto_front(lambda pts: ch06.pareto_reference([(f, -m) for f, m in pts]))

    def strict(pts):  # drops a trial that another one merely equals
        return [
            i
            for i, p in enumerate(pts)
            if not any(q[0] >= p[0] and q[1] <= p[1] for j, q in enumerate(pts) if j != i)
        ]

    with pytest.raises(ExerciseError, match="ties both stay"):
        ch06.check_pareto_front(strict)
    with pytest.raises(ExerciseError, match="return a list of indices"):
        ch06.check_pareto_front(lambda pts: "A, B, D")
    with pytest.raises(NotSolved, match="pareto_front is not written yet"):
        ch06.check_pareto_front(stub)


def test_crowding_check_compares_with_optuna_and_names_the_slips():
    ch06.check_crowding_distance(solution("crowding_distance", NAME)["crowding_distance"])
    assert ch06.crowding_reference([TOY[n] for n in "ABD"]) == [math.inf, 2.0, math.inf]
    with pytest.raises(ExerciseError, match="not normalised"):
        ch06.check_crowding_distance(lambda p: ch06._crowding_variant(p, normalise=False))
    with pytest.raises(ExerciseError, match="ends of the front get 0"):
        ch06.check_crowding_distance(lambda p: ch06._crowding_variant(p, ends=0.0))
    with pytest.raises(ExerciseError, match="halved the gap"):
        ch06.check_crowding_distance(lambda p: ch06._crowding_variant(p, share=0.5))
    with pytest.raises(ExerciseError, match="one number per point"):
        ch06.check_crowding_distance(lambda p: 2.0)
    with pytest.raises(NotSolved):
        ch06.check_crowding_distance(stub)


def test_discordant_check_counts_pairs_with_scipy_and_names_the_slips():
    ref = reference_proxy_table()
    ns = solution("discordant", NAME, {"ref": ref})
    ch06.check_discordant(ns["discordant"], ref, "val F1, 6 ep", "test F1, 30 ep")
    args = (ref, "val F1, 6 ep", "test F1, 30 ep")
    with pytest.raises(ExerciseError, match="order the \\*same\\* way"):
        ch06.check_discordant(9, *args)
    with pytest.raises(ExerciseError, match="that is every pair"):
        ch06.check_discordant(15, *args)
    with pytest.raises(ExerciseError, match="you compared with 'val F1, 30 ep'"):
        ch06.check_discordant(3, *args)
    with pytest.raises(ExerciseError, match="whole number"):
        ch06.check_discordant(6.0, *args)


# --- the design task: a check that measures, and can fail --------------------------------------


@pytest.fixture(scope="module")
def tiny_supernet(tiny_crops, tiny_home):
    """A supernet trained one epoch on the tiny data, and eight sub-networks measured."""
    import torch

    from trashkit import search
    from trashkit.data import prepare_split

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(tiny_home))
        sdata = prepare_split(str(tiny_crops), 32, progress=False)
        space = search.SupernetSpace()
        net, _ = search.train_supernet(sdata, space, epochs=1, seed=0)
        table = search.evaluate_subnets(net, search.sample_configs(space, 8, 0), sdata, 32)
        yield {"supernet": net, "sdata": sdata, "sub_table": table, "space_sn": space}


def test_design_check_measures_and_fails_for_a_bad_choice(tiny_supernet, tiny_home, monkeypatch):
    from trashkit.search import subnet_macs

    monkeypatch.setenv("TRASHKIT_HOME", str(tiny_home))
    net, sdata, table = (tiny_supernet[k] for k in ("supernet", "sdata", "sub_table"))
    space = net.space
    cap = 0.25 * subnet_macs(space, space.largest(), 32, net.n_classes)
    under = table[table.MACs <= cap]
    best = under.config[under.val_macro_f1.idxmax()]
    assert "validation macro-F1" in ch06.check_design(best, net, sdata, table, 32)
    with pytest.raises(ExerciseError, match="over the cap"):
        ch06.check_design(space.largest(), net, sdata, table, 32)
    better_bar = table.assign(val_macro_f1=table.val_macro_f1 + 1.0)  # a bar nothing reaches
    with pytest.raises(ExerciseError, match="below the best sub-network of section 10's table"):
        ch06.check_design(best, net, sdata, better_bar, 32)
    with pytest.raises(ExerciseError, match=r"design_config: config\['depth'\]"):
        ch06.check_design({"depth": (4, 1, 1), "width": (1.0, 1.0, 1.0)}, net, sdata, table, 32)


# --- the numbers the prose quotes --------------------------------------------------------------


def _results_proxy_rows() -> dict[str, tuple]:
    """The proxy table of docs/results.md, parsed."""
    text = (REPO / "docs" / "results.md").read_text()
    section = text[text.index("### Is a short search trial a good proxy?") :]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| (arch\d) \| (\d+) px \| ([\d,]+) \| ([\d,]+) \|(.*)\|$", line)
        if m:
            f1 = tuple(float(v) for v in m.group(5).split("|"))
            rows[m.group(1)] = (int(m.group(2)), *(int(g.replace(",", "")) for g in m.group(3, 4)))
            rows[m.group(1)] += f1
        elif rows and not line.startswith("|"):
            break
    return rows


def test_reference_table_is_the_measured_one():
    assert _results_proxy_rows() == REFERENCE_PROXY["rows"]
    text = (REPO / "docs" / "results.md").read_text()
    corr = proxy_correlations(reference_proxy_table(), 6, 30).round(2)
    assert (corr["Spearman rho"].tolist(), corr["p"].tolist()) == ([0.77, 0.43], [0.07, 0.40])
    assert "0.77 (p 0.07, same winner)" in text and "0.43 (p 0.40, Kendall's τ 0.20" in text
    assert "1,770 train" in text and "(252)" in text and "(505)" in text  # the protocol
    md = markdown()
    assert "1,770 training, 252 validation, 505 test" in md


def test_prose_ranges_come_from_the_reference_table():
    """Section 8 quotes the F1 ranges of the reference table: recompute them."""
    ref = reference_proxy_table()
    lo6, hi6 = ref["val F1, 6 ep"].min(), ref["val F1, 6 ep"].max()
    lo30, hi30 = ref["val F1, 30 ep"].min(), ref["val F1, 30 ep"].max()
    quoted = re.search(
        r"between ([\d.]+) and ([\d.]+)\s+validation macro-F1 after 6 epochs and between "
        r"([\d.]+) and ([\d.]+) after 30",
        markdown(),
    )
    assert quoted, "section 8's ranges are missing"
    assert [float(v) for v in quoted.groups()] == [round(v, 2) for v in (lo6, hi6, lo30, hi30)]
    spread = re.search(r"lie within ([\d.]+) of each other in validation F1", markdown())
    assert spread and hi6 - lo6 < float(spread.group(1)) < hi6 - lo6 + 0.01


def test_prose_constants_and_toys():
    md = markdown()
    # the score's baselines and exchange rate (section 4)
    assert f"{MACS_BASELINE:,}" in md and str(F1_BASELINE_MACS) in md
    ratio = (1e6 / MACS_BASELINE) / (0.01 / F1_BASELINE_MACS) * 0.01
    assert round(ratio, 2) == 0.06 and "about six hundredths of F1" in md
    # section 3's convolution, section 5's constraint values
    assert 64 * 64 * 9 * 576 == 21_233_664 and "64·64·9·576 ≈ 21M" in md
    assert [round(m / 10 - 1, 1) for m in (12, 8, 30)] == [0.2, -0.2, 2.0]
    # section 9: the space has 49 parameters
    assert len(space_table(SearchConfig())) == 49 and "This space has 49 parameters" in md
    # section 10: the smallest sub-network's MACs table
    from trashkit.search import SupernetSpace, subnet_macs

    space = SupernetSpace()
    assert subnet_macs(space, space.smallest(), 32, 6) == 399_206 and "**399,206**" in md
    # Optuna's defaults the text quotes (50 per NSGA-II generation, 10 random TPE trials, 24)
    nsga = inspect.signature(optuna.samplers.NSGAIISampler).parameters
    tpe = inspect.signature(optuna.samplers.TPESampler).parameters
    assert nsga["population_size"].default == 50 and tpe["n_startup_trials"].default == 10
    assert tpe["n_ei_candidates"].default == 24 and "24 candidates" in md
    # the full preset is what the text says it is
    full = PRESETS["full"]
    assert (full["n_trials"], full["epochs"], full["budget"]) == (60, 6, 10_000_000)
    assert full["proxy_archs"] == 6 and full["proxy_epochs"] == [6, 30]


def test_the_teams_figures_are_the_wrap_up_report_rows():
    """The header quotes one team's wrap-up report (submit-time edition): its rows 1 and 3-5
    (layers, parameters, px), the final submission's public / private score and the target
    row's score, as the course material gives them."""
    report = {1: (179, "2,127,374", 224), 3: (79, "294,854", 156)}
    intro = re.sub(r"\s+", " ", chapter(NAME).cells[0].source)
    for layers, params, px in report.values():
        assert f"{layers} layers and {params} parameters at {px} px" in intro
    assert "1.1676 public and 1.1804 private against the target's 1.195" in intro
    assert "trained 100, 150 and 200 epochs" in intro and "F1 0.70 at 60 s" in intro
    # the rows give counts and scores: the chapter must not say how the team designed its network
    md = re.sub(r"\s+", " ", markdown())
    for claim in ("MobileNetV3 by hand", "reduced MobileNetV3", "hand design", "careful designer"):
        assert claim not in md, claim


def test_header_run_times_are_the_instructor_notes():
    """The header's default run times are the two measured runs of docs/instructors/06.md."""
    intro = re.sub(r"\s+", " ", chapter(NAME).cells[0].source)
    note = (REPO / "docs" / "instructors" / "06.md").read_text()
    times = re.search(r"\((\d+ min \d+ s) and (\d+ min \d+ s) in two runs", intro)
    assert times, "the header's measured default run times are missing"
    for t in times.groups():
        assert f"**{t}**" in note, t


# --- the helpers the chapter relies on -------------------------------------------------------


def test_space_table_prints_every_parameter():
    table = space_table(SearchConfig())
    assert len(table) == 2 + 8 * 5 + 7  # stem, five slots of eight, head/multiples/training
    assert table.loc["s0_module", "how many"] == 8
    assert table.loc["lr", "how many"] == "continuous" and "log scale" in table.loc["lr", "values"]
    assert table.loc["s4_c", "values"].startswith("64 .. 192")  # later slots are wider


def test_a_resumed_study_does_not_repeat_its_first_architectures(tmp_path):
    cfg = SearchConfig(storage=f"sqlite:///{tmp_path / 'study.db'}", seed=0)
    first = load_study(cfg, tmp_path)
    for _ in range(2):
        t = first.ask()
        t.suggest_float("lr", 0.02, 0.2, log=True)
        first.tell(t, state=optuna.trial.TrialState.PRUNED)
    again = load_study(cfg, tmp_path)
    t = again.ask()
    assert t.suggest_float("lr", 0.02, 0.2, log=True) != first.trials[0].params["lr"]


# --- the chapter as a whole ------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter(NAME)
    check_structure(nb, "ch06")
    md = markdown(nb)
    intro = nb.cells[0].source
    for needed in ("What you will learn", "What to know first", "What it costs"):
        assert needed in intro, needed
    assert "papermill notebooks/06_automl.ipynb" in intro and "-p preset full" in intro
    assert "predict before you run" in md.lower()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    tail = [h for h in heads if h.split()[1] in ("Reference", "Takeaways", "Questionnaire")]
    tail += [h for h in heads if "Design task" in h or "Further reading" in h]
    assert [h.split()[1] for h in tail] == [
        "Reference",
        "Takeaways",
        "Questionnaire",
        "Design",
        "Further",
    ]
    takeaways = md[md.index("## Takeaways") : md.index("## Questionnaire")]
    assert 1 <= len(re.findall(r"^- ", takeaways, re.M)) <= 6
    questions = md[md.index("## Questionnaire") : md.index("## Design task")]
    assert 10 <= len(re.findall(r"^\d+\. ", questions, re.M)) <= 20
    for history in ("older protocol", "superseded", "earlier version", "load average"):
        assert history not in md.lower(), history
    assert not re.search(r"\bissue \d+", md, re.I)
    assert "did not hand-edit" not in md and "B wins" not in md


def test_student_copy_holds_no_answer():
    student = student_copy(chapter(NAME))
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    assert BEGIN not in code
    for answer in ('predicted_winner = "D"', "def dominates", "distance[i] += math.inf"):
        assert answer not in code, answer
    assert "design_config = pool.config" not in code


def test_student_copy_stops_clearly_at_every_exercise(capsys, tiny_supernet, tiny_home):
    from trashkit import search

    net, space = tiny_supernet["supernet"], tiny_supernet["space_sn"]
    table = tiny_supernet["sub_table"]
    every = space.all_configs()
    predictor = search.fit_accuracy_predictor(
        search.subnet_features(list(table.config)), table.val_macro_f1.to_numpy()
    )
    ns = {
        "ch06": ch06,
        "math": math,
        "np": np,
        "pd": pd,
        "search": search,
        "toy": TOY,
        "ref": reference_proxy_table(),
        "supernet_size": 32,
        "n_classes": net.n_classes,
        "every": every,
        "predicted_all": predictor.predict(search.subnet_features(every)),
        **tiny_supernet,
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(tiny_home))
        exercises_in_turn(chapter(NAME), ns, capsys)
    assert len(exercise_cells(chapter(NAME))) == 5


TINY = dict(
    n_trials=3,
    epochs=1,
    image_sizes=[32],
    budget=20_000_000,
    space_samples=10,
    inline_trials=1,
    supernet_epochs=1,
    subnets=8,
    standalone=3,
)


@pytest.mark.slow
def test_chapter_runs_headless(tmp_path, tiny_home):
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / "out.ipynb",
        tiny_home,
        output_dir=str(tmp_path / "run"),
        **TINY,
    )
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(trials) == 3 and (trials.state == "COMPLETE").any()
    shown = printed(nb)
    for needed in (
        "parameters; the discrete ones alone give",
        "Pareto front by hand ['A', 'B', 'D'], by Optuna ['A', 'B', 'D']",
        "lowest score: D (0.3075)",
        "constraint c",
        "TPE proposes 1.5",
        "crowding distance of B: by hand 2.0, Optuna 2.0",
        "trial 0:",
        "sum d^2 = 2, rho = 0.8",
        "6 of 15 pairs are ordered differently",
        "729 sub-networks; the smallest costs 399,206 MACs",
        "Spearman rho(inherited, stand-alone) over 3 sub-networks",
        "held-out sub-networks: Spearman rho(predicted, measured)",
        "the best sub-network of section 10's table",
        "config(s) to",
    ):
        assert needed in shown, needed
    assert "after 6 epochs: val F1 0.40-0.47; after 30: val 0.60-0.73, test 0.59-0.69" in shown
    assert list((tmp_path / "run" / "exported").glob("trial_*.yaml"))
    assert (tmp_path / "run" / "space_macs.png").is_file()
    assert (tmp_path / "run" / "supernet_subnets.png").is_file()


def test_the_full_preset_refuses_synthetic_data_and_keeps_given_values():
    from trashkit.search import apply_preset

    with pytest.raises(ValueError, match="pass -p data"):
        apply_preset("full", set(), {"data": "default", "n_trials": 6})
    got = apply_preset("full", {"n_trials"}, {"data": "x", "n_trials": 6, "epochs": 2})
    assert got == {"data": "x", "n_trials": 6, "epochs": 6}
    with pytest.raises(ValueError, match="did you mean 'full'"):
        apply_preset("ful", set(), {"data": "x"})
    assert apply_preset("class", set(), {"data": "default", "epochs": 2})["epochs"] == 2
