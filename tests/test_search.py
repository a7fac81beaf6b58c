"""The AutoML search: valid architectures only, budgets before training, shared storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from trashkit.complexity import find_escapes
from trashkit.models import build_yaml_model
from trashkit.models.blocks import stride_of
from trashkit.models import architecture_table
from trashkit.search import (
    SearchConfig,
    export_pareto,
    finished,
    load_study,
    run_search,
    sample_config,
    sample_space,
    slot_channels,
    trials_table,
)

from conftest import REPO


def tiny_search(crops, **kw) -> SearchConfig:
    base = dict(
        data=str(crops),
        epochs=1,
        slots=2,
        image_sizes=(32,),
        channels=(8, 16),
        workers=0,
        n_trials=4,
        heartbeat_interval=1,
        grace_period=4,
    )
    return SearchConfig(**{**base, **kw})


def _stride2_stages(model_cfg: dict) -> int:
    """Stride-2 entries of a sampled backbone, read back from the YAML itself."""
    return sum(stride_of(name, args) == 2 for _, name, args in model_cfg["backbone"])


def test_every_sampled_architecture_builds_and_passes_the_guard():
    cfg = SearchConfig(slots=5)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    built = 0
    for _ in range(60):
        trial = study.ask()
        try:
            model_cfg, params = sample_config(trial, cfg, 6)
        except optuna.TrialPruned as exc:
            assert "stride-2" in str(exc)
            continue
        model = build_yaml_model(model_cfg, 6)
        assert find_escapes(model) == []
        assert _stride2_stages(model_cfg) <= cfg.max_stride2
        assert params["image_size"] in cfg.image_sizes
        built += 1
    assert built > 40  # the stride cap rejects few samples; everything else builds


@pytest.mark.slow
def test_default_space_is_calibrated_for_a_10M_budget():
    """The default space must put a useful share of random samples under the competition's
    10M-MACs budget at TrashNet sizes; one shared channel range for every slot put 2 in 150
    there (wide layers at full resolution), so nearly every trial was pruned unseen."""
    cfg = SearchConfig(image_sizes=(96, 112, 128))
    space = sample_space(cfg, 6, n=80, seed=1)
    assert len(space) == 80
    assert set(space.image_size.dropna()) <= {96, 112, 128}
    assert (space.rejected == "").sum() >= 60  # the stride cap rejects a few
    assert space.MACs.isna().equals(space.rejected != "")
    assert (space.MACs <= 10e6).sum() >= 8
    lo, hi = slot_channels(0, cfg), slot_channels(cfg.slots - 1, cfg)
    assert lo[1] < hi[0]  # later slots are wider than early ones


def test_architecture_table_costs_each_yaml_line():
    from trashkit.complexity import count_layers

    cfg = {
        "backbone": [
            [1, "Conv", [8, 3, 2, None, 1, "ReLU"]],
            [2, "InvertedResidualv2", [16, 2, 2]],  # two layers, one line
            [1, "GlobalAvgPool", []],
            [1, "Flatten", []],
            [1, "Linear", [6]],
        ]
    }
    table = architecture_table(cfg, 32)
    assert list(table.index) == [0, 1, 2, 3, 4]
    assert table.yaml[1] == str(cfg["backbone"][1])
    model = build_yaml_model(cfg, 6)
    assert model.entry_of == [0, 1, 1, 2, 3, 4]
    layers = count_layers(model, (3, 32, 32))
    assert table.MACs.sum() == layers.macs.sum()
    one = count_layers(
        build_yaml_model({"backbone": [cfg["backbone"][0], [1, "InvertedResidualv2", [16, 2, 2]]]}),
        (3, 32, 32),
    )
    assert table.MACs[1] > one.macs.sum() - table.MACs[0]  # the repeat is counted too
    assert table.out_shape[1] == layers[layers.name.str.startswith("layers.2")].out_shape.iloc[-1]


def test_unknown_sampler_is_named():
    with pytest.raises(ValueError, match="search parameter sampler='grid' is invalid"):
        SearchConfig(sampler="grid")


def test_invalid_combinations_rejected_before_training():
    fixed = {
        "stem_act": "ReLU",
        "stem_c": 8,
        "head_c": 64,
        "width_multiple": 1.0,
        "depth_multiple": 1.0,
        "image_size": 32,
        "randaugment_m": 5,
        "batch_size": 32,
        "lr": 0.1,
    }

    def slot(i, m, s):
        return {
            f"s{i}_module": m,
            f"s{i}_repeat": 1,
            f"s{i}_c": 16,
            f"s{i}_k": 3,
            f"s{i}_s": s,
            f"s{i}_act": "ReLU",
            f"s{i}_se": 0,
            f"s{i}_t": 2,
        }

    cfg = SearchConfig(slots=3, max_stride2=2, image_sizes=(32,), channels=(16, 16))
    ok = optuna.trial.FixedTrial(
        {**fixed, **slot(0, "Conv", 2), **slot(1, "none", 2), **slot(2, "Fire", 1)}
    )
    model_cfg, _ = sample_config(ok, cfg, 6)
    assert [e[1] for e in model_cfg["backbone"]][:3] == ["Conv", "Conv", "Fire"]
    too_many = optuna.trial.FixedTrial(
        {**fixed, **slot(0, "Conv", 2), **slot(1, "DWConv", 2), **slot(2, "none", 1)}
    )
    with pytest.raises(optuna.TrialPruned, match="more than 2 stride-2"):
        sample_config(too_many, cfg, 6)
    # Fire has no strided form: its stride-2 slot gets a max-pool in front, and counts
    fire2 = optuna.trial.FixedTrial(
        {**fixed, **slot(0, "Fire", 2), **slot(1, "none", 1), **slot(2, "none", 1)}
    )
    model_cfg, _ = sample_config(fire2, cfg, 6)
    assert [e[1] for e in model_cfg["backbone"]][:3] == ["Conv", "MaxPool", "Fire"]
    assert _stride2_stages(model_cfg) == 2
    fire_too_many = optuna.trial.FixedTrial(
        {**fixed, **slot(0, "Fire", 2), **slot(1, "Bottleneck", 2), **slot(2, "none", 1)}
    )
    with pytest.raises(optuna.TrialPruned, match="more than 2 stride-2"):
        sample_config(fire_too_many, cfg, 6)


@pytest.mark.slow
def test_budget_prunes_without_training_and_resume(tmp_path, tiny_crops, isolated_home):
    cfg = tiny_search(tiny_crops, n_trials=3, budget=1.0)  # 1 MAC: everything over budget
    study = run_search(cfg, tmp_path)
    done = finished(study)
    assert len(done) == 3 and all(t.state == TrialState.PRUNED for t in done)
    assert all(
        "over budget" in t.user_attrs.get("pruned_why", "")
        or "stride-2" in t.user_attrs.get("pruned_why", "")
        for t in done
    )
    assert not list(tmp_path.glob("trial_*/run/last.pt"))  # nothing was trained
    assert all(t.constraints["budget"] > 0 for t in done)  # the sampler sees them infeasible
    # resume the same study with a larger target: only the missing trials run
    study = run_search(tiny_search(tiny_crops, n_trials=5, budget=None), tmp_path)
    done = finished(study)
    assert len(done) == 5
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    assert all("val_macro_f1" in t.user_attrs and "macs" in t.user_attrs for t in complete)
    table = trials_table(study)
    assert len(table) == 5
    if complete:
        paths = export_pareto(study, tmp_path / "export")
        assert paths and paths[0].read_text().startswith("# trial")
        build_yaml_model(paths[0], 6)  # the exported file builds as it is


def _worker(out, storage, crops, n, extra=()):
    args = [
        sys.executable,
        "-m",
        "trashkit",
        "search",
        "--output-dir",
        str(out),
        "--set",
        f"storage={storage}",
        f"data={crops}",
        f"n_trials={n}",
        "epochs=1",
        "slots=2",
        "image_sizes=[32]",
        "channels=[8,16]",
        "workers=0",
        "heartbeat_interval=1",
        "grace_period=4",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(out)
    )


def _shared_study_two_workers(tmp_path, storage, crops, study_name):
    n = 6
    procs = [
        _worker(tmp_path, storage, crops, n, [f"study_name={study_name}", f"seed={i}"])
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    study = optuna.load_study(study_name=study_name, storage=storage)
    done = finished(study)
    assert len(done) == n, [(t.number, t.state) for t in study.trials]
    for t in done:
        if t.state == TrialState.COMPLETE:
            assert {"val_macro_f1", "macs", "params"} <= set(t.user_attrs)
            assert len(t.values) == 2
    # both workers really worked on the study
    assert all("finished trials" in o for o in outs)
    return study


@pytest.mark.slow
def test_sqlite_two_processes_share_one_study(tmp_path, tiny_crops, isolated_home):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _shared_study_two_workers(tmp_path, storage, tiny_crops, "sqlite-shared")


@pytest.mark.slow
def test_postgresql_two_processes_share_one_study(tmp_path, tiny_crops, isolated_home):
    url = _postgres_url()
    _shared_study_two_workers(tmp_path, url, tiny_crops, f"pg-{os.getpid()}-{time.time_ns()}")


def _postgres_url() -> str:
    url = os.environ.get("TRASHKIT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide TRASHKIT_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
        pytest.skip("set TRASHKIT_TEST_POSTGRES_URL to a PostgreSQL database to run this test")
    return url


def test_bare_postgresql_url_finds_its_driver(tmp_path):
    """``postgresql://`` (no driver named) is what users type; SQLAlchemy maps it to
    psycopg 3, which the ``postgres`` extra installs (issue 10, item 15)."""
    url = _postgres_url().replace("postgresql+psycopg2://", "postgresql://")
    study = load_study(SearchConfig(storage=url, study_name=f"bare-{time.time_ns()}"), tmp_path)
    assert study.directions and len(study.trials) == 0


@pytest.mark.parametrize("url", ["postgres//user@127.0.0.1/db", "not a url at all"])
def test_an_unparseable_storage_url_fails_at_once(tmp_path, url):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"SearchConfig.storage .* is not a database URL"):
        run_search(SearchConfig(storage=url), tmp_path / "search")
    assert time.perf_counter() - t0 < 2.0, "no retries for a URL that cannot be parsed"
    assert not (tmp_path / "search").exists()


@pytest.mark.slow
def test_resume_after_killed_worker(tmp_path, tiny_crops, isolated_home):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    n = 3
    proc = _worker(tmp_path, storage, tiny_crops, n, ["study_name=killed", "epochs=3"])
    deadline = time.time() + 300
    running = []
    while time.time() < deadline and not running:
        time.sleep(1)
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
        except KeyError:
            continue
        running = study.get_trials(states=(TrialState.RUNNING,))
    assert running, "the worker never started a trial"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    victim = running[0].number
    time.sleep(5)  # longer than the grace period: the trial's heartbeat has stopped
    study = run_search(
        tiny_search(tiny_crops, n_trials=n, study_name="killed", storage=storage), tmp_path
    )
    states = {t.number: t.state for t in study.trials}
    assert states[victim] == TrialState.FAIL  # the dead worker's trial
    assert len(finished(study)) == n  # and the study still got n trials
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim]
    assert retried, "the killed trial was not retried"


# --- weight sharing, the accuracy predictor, the proxy measurement (chapter 6, section 8-10) --


def test_subnet_macs_is_the_official_count():
    """The MACs formula of a sub-network equals the competition's counter on its extracted
    network, at even and odd input sizes."""
    from trashkit.complexity import official_macs
    from trashkit.search import Supernet, SupernetSpace, sample_configs, subnet_macs

    space = SupernetSpace()
    net = Supernet(space, 6)
    for config in sample_configs(space, 6, seed=1):
        for size in (32, 37, 64):
            assert subnet_macs(space, config, size, 6) == official_macs(net.extract(config), size)


def test_an_extracted_subnetwork_computes_what_the_supernet_computes():
    """Weight inheritance: with batch statistics (train mode) the extracted network and the
    supernet's forward pass of the same sub-network agree on the same batch; the extracted
    network holds copies, not views."""
    import torch

    from trashkit.search import Supernet, SupernetSpace

    torch.manual_seed(0)
    space = SupernetSpace()
    net = Supernet(space, 6)
    config = {"depth": (2, 1, 3), "width": (0.5, 1.0, 0.75)}
    x = torch.randn(4, 3, 32, 32)
    sub = net.extract(config).train()
    assert torch.allclose(sub(x), net(x, config), atol=1e-5)
    with torch.no_grad():
        sub[0].weight.zero_()
    assert net.stem.conv.weight.abs().sum() > 0


def test_supernet_space_refuses_what_is_not_a_subnetwork():
    from trashkit.search import SupernetSpace, subnet_macs

    space = SupernetSpace()
    assert len(space.all_configs()) == (3 * 3) ** 3
    with pytest.raises(ValueError, match=r"config\['depth'\] must list 3 values"):
        space.check({"depth": (1, 1), "width": (1.0, 1.0, 1.0)})
    with pytest.raises(ValueError, match=r"\[0.6\] not in"):
        subnet_macs(space, {"depth": (1, 1, 1), "width": (0.6, 1.0, 1.0)}, 32, 6)


def test_fixed_training_leaves_unused_layers_untouched(tiny_crops, isolated_home):
    """train_supernet(fixed=...) is stand-alone training of one sub-network: the layers it
    does not use keep their initial weights (their gradients stay None)."""
    import torch

    from trashkit.data import prepare_split
    from trashkit.search import Supernet, SupernetSpace, train_supernet

    torch.set_num_threads(1)
    space = SupernetSpace()
    data = prepare_split(str(tiny_crops), 32, progress=False)
    net, seconds = train_supernet(data, space, epochs=1, fixed=space.smallest(), seed=3)
    torch.manual_seed(3)
    fresh = Supernet(space, len(data.classes))
    assert seconds > 0
    assert torch.equal(net.stages[0][2].conv.weight, fresh.stages[0][2].conv.weight)
    assert not torch.equal(net.stem.conv.weight, fresh.stem.conv.weight)


def test_accuracy_predictor_closed_form_and_held_out_rank():
    import numpy as np
    import pandas as pd

    from trashkit.search import SupernetSpace, fit_accuracy_predictor, predictor_study
    from trashkit.search import sample_configs, subnet_features

    toy = fit_accuracy_predictor(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 2.0]))
    assert toy.coef_[0] == pytest.approx(1 / 3) and toy.intercept_ == pytest.approx(1.0)
    configs = sample_configs(SupernetSpace(), 12, seed=0)
    x = subnet_features(configs)
    table = pd.DataFrame({"config": configs, "val_macro_f1": x[:, :3].sum(1) + x[:, 3:].sum(1)})
    result = predictor_study(table, n_fit=8, alpha=1e-3)
    assert result["rho"] == pytest.approx(1.0) and len(result["held_out"]) == 4
    with pytest.raises(ValueError, match="need >= 2 to fit and >= 3 held out"):
        predictor_study(table, n_fit=10)


@pytest.mark.slow
def test_proxy_table_trains_short_and_long_and_scores_the_test_images(
    tmp_path, tiny_crops, isolated_home
):
    from trashkit.search import draw_architectures, proxy_correlations, proxy_table

    archs = draw_architectures(3, 20e6, 6, seed=0, image_sizes=(32,))
    assert len(archs) == 3 and all(a["macs"] <= 20e6 for a in archs)
    table = proxy_table(archs, 1, 2, str(tiny_crops), tmp_path)
    assert list(table.index) == ["arch0", "arch1", "arch2"]
    for column in ("val F1, 1 ep", "test F1, 1 ep", "val F1, 2 ep", "test F1, 2 ep"):
        assert table[column].between(0, 1).all(), column
    again = proxy_table(archs, 1, 2, str(tiny_crops), tmp_path)  # read back, not retrained
    pd_equal = (again.fillna(-1) == table.fillna(-1)).all().all()
    assert pd_equal
    corr = proxy_correlations(table, 1, 2)
    assert list(corr["proxy -> target"]) == [
        "val F1, 1 ep -> val F1, 2 ep",
        "val F1, 1 ep -> test F1, 2 ep",
    ]
    config = (tmp_path / "arch0" / "e1" / "config.json").read_text()
    assert '"chapter": 6' in config and '"kind": "proxy"' in config
