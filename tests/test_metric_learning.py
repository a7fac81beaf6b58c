"""Metric learning: the ArcFace head by hand, the three predictors, a new class, the "unknown"
threshold, the search indexes, training through the Python API, chapter 8's experiments
(trashkit.metric_learning) end to end on tiny runs (the chapter's own tests:
tests/test_chapter08.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import tiny_config
from trashkit import embeddings as em
from trashkit import metric_learning as ml
from trashkit.models import build_model
from trashkit.models.arcface import ArcFaceLoss, ArcFaceNet, default_scale, margin_logits


def toy_head(scale: float = 10.0) -> ArcFaceNet:
    """A 2-class ArcFace head whose embedding is its 2-d input, centres (2, 0) and (0, 5)."""
    net = ArcFaceNet(
        nn.Sequential(nn.Flatten(), nn.Linear(2, 3)), num_classes=2, embedding=2, scale=scale
    )
    net.embed = nn.Identity()  # the embedding is the input itself (then normalised)
    with torch.no_grad():
        net.centres.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    return net.eval()


def test_arcface_logits_of_a_known_embedding_by_hand():
    net = toy_head(scale=10.0)
    x = torch.tensor([[3.0, 4.0]])  # unit embedding (0.6, 0.8)
    logits = net(x)  # the model's own forward
    assert torch.allclose(logits, torch.tensor([[6.0, 8.0]]), atol=1e-6)
    m = 0.3
    theta = math.acos(0.6)
    by_hand = -math.log(
        math.exp(10 * math.cos(theta + m)) / (math.exp(10 * math.cos(theta + m)) + math.exp(8.0))
    )
    loss = ArcFaceLoss(margin=m, scale=10.0)(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert loss.item() > F.cross_entropy(logits, torch.tensor([0])).item()
    net.train()  # same outputs in train mode (no margin there)
    assert torch.allclose(net(x), logits)


def test_the_margin_touches_only_the_true_class():
    cos = torch.tensor([[0.6, 0.8, -0.2], [0.1, 0.2, 0.9]])
    target = torch.tensor([0, 2])
    out = margin_logits(cos, target, 0.2, 4.0)
    changed = ~torch.isclose(out, 4.0 * cos)
    assert changed.tolist() == [[True, False, False], [False, False, True]]
    assert out[0, 0].item() == pytest.approx(4 * math.cos(math.acos(0.6) + 0.2), rel=1e-6)
    # past theta + m = pi the fallback keeps the logit monotone (lower for a worse angle)
    far = margin_logits(torch.tensor([[-0.999, 0.0]]), torch.tensor([0]), 0.2, 1.0)
    assert far[0, 0].item() == pytest.approx(-0.999 - 0.2 * math.sin(0.2), rel=1e-6)


def test_default_scale_is_adacos_fixed_and_loss_refuses_a_larger_network_scale():
    assert default_scale(6) == pytest.approx(math.sqrt(2) * math.log(5))
    net = build_model("arcface:tiny", 4)
    assert net.scale == pytest.approx(default_scale(4))
    with pytest.raises(ValueError, match="scale"):
        ArcFaceLoss(scale=2.0)(torch.tensor([[5.0, 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="one class index"):
        ArcFaceLoss()(torch.zeros(2, 6), torch.full((2, 6), 1 / 6))


def test_three_predictors_on_a_tiny_model():
    net = toy_head()
    # training embeddings: class 0 near the x axis, class 1 near the y axis, plus one class-1
    # image lying close to the x axis (what the k-NN vote with k = 1 picks up)
    train = em.Embedded(
        F.normalize(
            torch.tensor(
                [[1.0, 0.1], [1.0, -0.1], [1.0, 0.3], [0.2, 1.0], [-0.2, 1.0], [1.0, 0.55]]
            ),
            dim=1,
        ),
        np.array([0, 0, 0, 1, 1, 1]),
    )
    test = em.Embedded(F.normalize(torch.tensor([[1.0, 0.5], [0.1, 1.0]]), dim=1), np.array([0, 1]))
    p = em.three_predictors(net, train, test, 2, k=3)
    assert p["nearest learned centre"].tolist() == [0, 1]  # 26.6 deg from (1, 0)
    means = em.class_means(train, 2)
    expected = (test.vectors @ means.T).argmax(1).tolist()
    assert p["nearest class mean"].tolist() == expected
    assert p["3 nearest neighbours"].tolist() == [0, 1]
    assert em.knn_predict(test, train, 1, 2).tolist() == [1, 1]  # its nearest is class 1


def test_embed_gives_unit_vectors_that_do_not_depend_on_the_batch():
    net = build_model("arcface:tiny", 6).train()  # embed() must switch to eval mode itself
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    together = em.embed(net, [(x, [0, 1, 2, 3])])
    alone = em.embed(net, [(x[:1], [0])])
    assert together.vectors.shape == (4, 512) and together.labels.tolist() == [0, 1, 2, 3]
    assert torch.allclose(together.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(alone.vectors[0], together.vectors[0], atol=1e-5)


def test_adding_a_class_changes_predictions_only_near_it():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(5, 16, generator=g), dim=1)
    queries = F.normalize(torch.randn(400, 16, generator=g), dim=1)
    new_images = F.normalize(
        torch.randn(1, 16, generator=g) + 0.1 * torch.randn(8, 16, generator=g), dim=1
    )
    before = em.nearest_centre(queries, centres)
    grown = em.add_class(centres, new_images)
    after = em.nearest_centre(queries, grown)
    assert torch.allclose(grown[:5], centres)  # no old centre moved
    changed = before != after
    near_new = ((queries @ grown[5]) > (queries @ centres.T).max(1).values).numpy()
    assert changed.tolist() == near_new.tolist() and changed.any() and not changed.all()
    assert (after[changed] == 5).all()


def test_the_search_indexes_agree_with_brute_force():
    g = torch.Generator().manual_seed(1)
    bank = F.normalize(torch.randn(300, 32, generator=g), dim=1)
    q = F.normalize(torch.randn(20, 32, generator=g), dim=1)
    _, exact = em.make_index(bank, "torch").search(q, 5)
    for kind in ("faiss-flat", "sklearn"):
        sims, ids = em.make_index(bank, kind).search(q, 5)
        assert (ids == exact).all(), kind
        assert torch.allclose(sims, (q @ bank.T).gather(1, ids), atol=1e-5), kind
    _, approx = em.make_index(bank, "faiss-hnsw").search(q, 5)
    assert em.recall_at_k(approx.numpy(), exact.numpy()) > 0.9
    r = em.search_latency("torch", 100, dim=32, queries=5)
    assert r["recall_at_k"] == 1.0 and r["macs_per_query"] == 3200 and r["median_ms"] > 0
    import faiss

    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    r = em.search_latency("faiss-flat", 100, dim=32, queries=5, threads=1)
    assert r["recall_at_k"] == 1.0  # timed on one thread, and the counts are restored
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before
    with pytest.raises(ValueError, match="unknown index"):
        em.make_index(bank, "annoy")


def test_gallery_net_counts_the_search_as_macs():
    from trashkit.complexity import official_macs

    net = build_model("arcface:tiny", 6)
    bank = F.normalize(torch.randn(100, 512), dim=1)
    gallery = em.GalleryNet(net, bank)
    x = torch.zeros(1, 3, 32, 32)
    net.eval()
    assert torch.allclose(gallery(x), net.embedding(x) @ bank.T, atol=1e-5)
    backbone_and_centres = official_macs(net, 32)
    assert official_macs(gallery, 32) - backbone_and_centres == 100 * 512 - 6 * 512


def test_new_class_scores_and_finetuned_head():
    s = em.new_class_scores(np.array([0, 1, 2, 2, 1]), np.array([0, 1, 2, 2, 2]), 2)
    assert s["new_recall"] == pytest.approx(2 / 3) and s["new_precision"] == 1.0
    assert s["others_macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2)
    from trashkit.train.head import finetune_head

    head = nn.Linear(4, 2)
    before = head.weight.detach().clone()
    feats = torch.cat([torch.randn(20, 4) + 3 * torch.eye(4)[k] for k in (0, 1, 2)])
    labels = np.repeat([0, 1, 2], 20)
    new = finetune_head(head, feats, labels, 3, steps=200, lr=0.05)
    assert new.out_features == 3 and (new(feats).argmax(1).numpy() == labels).mean() > 0.9
    assert torch.equal(head.weight, before)  # the old head is left as it was


def test_finetune_head_weights_a_rare_class_like_train_losses():
    """Two new images against 40 old ones: with the balanced weights of
    trashkit.train.losses.class_weights the new class is learned; without them it is not."""
    from trashkit.train.head import finetune_head

    g = torch.Generator().manual_seed(3)
    feats = torch.cat(
        [
            torch.randn(40, 2, generator=g) * 0.3 + torch.tensor([1.0, 0.0]),
            torch.randn(2, 2, generator=g) * 0.3 + torch.tensor([0.0, 1.0]),
        ]
    )
    labels = np.array([0] * 40 + [1] * 2)
    head = nn.Linear(2, 1)
    new = finetune_head(head, feats, labels, 2, steps=300, lr=0.05)
    assert (new(feats[40:]).argmax(1) == 1).all()


@pytest.mark.slow
def test_arcface_trains_from_the_python_api_and_chapter_4_parameters(
    tmp_path, tiny_crops, isolated_home
):
    from trashkit.checkpoint import load_checkpoint
    from trashkit.train import TrainConfig, train

    # chapter 4 passes these parameters (label_smoothing stays at its default: unused here)
    cfg = TrainConfig.from_dict(
        tiny_config(tiny_crops, model="arcface:tiny", loss="arcface", epochs=2)
    )
    metrics = train(cfg, tmp_path / "arc", progress=False)
    assert 0.0 <= metrics["val_macro_f1"] <= 1.0
    net = load_checkpoint(tmp_path / "arc" / "best.pt").build_model()
    assert isinstance(net, ArcFaceNet) and net.scale == pytest.approx(default_scale(6))
    with pytest.raises(ValueError, match="needs an ArcFace model"):
        TrainConfig.from_dict(tiny_config(tiny_crops, model="tiny", loss="arcface"))
    with pytest.raises(ValueError, match="mixup"):
        TrainConfig.from_dict(
            tiny_config(tiny_crops, model="arcface:tiny", loss="arcface", mixup=0.2)
        )


def test_folder_without_class_links_every_other_class(tmp_path, tiny_crops, isolated_home):
    from trashkit.data.folders import folder_without_class

    out = folder_without_class(tiny_crops, "Metal", tmp_path / "without")
    for split in ("train", "val"):
        names = sorted(p.name for p in (out / split).iterdir())
        assert "Metal" not in names and len(names) == 5
        assert all((out / split / n).is_symlink() for n in names)
    with pytest.raises(ValueError, match="no class folder"):
        folder_without_class(tiny_crops, "Glass", tmp_path / "x")
    # the default place is fixed per (source, class): the cache always sees the same links
    assert folder_without_class(tiny_crops, "Metal") == folder_without_class(tiny_crops, "Metal")


def test_threshold_sweep_by_hand_and_against_scikit_learn():
    from sklearn.metrics import precision_recall_curve

    known, unknown = np.array([0.9, 0.8, 0.7, 0.5]), np.array([0.6, 0.4, 0.3])
    sweep = em.threshold_sweep(known, unknown)
    # by hand: below 0.65 fall 0.3, 0.4, 0.5 (known), 0.6 -> precision 3/4, recall 3/3
    at = list(np.round(sweep["threshold"], 6)).index(0.65)
    assert sweep["precision"][at] == pytest.approx(0.75) and sweep["recall"][at] == 1.0
    assert sweep["known_rejected"][at] == pytest.approx(0.25)
    assert em.choose_threshold(known, unknown) == pytest.approx(0.65)
    got = em.unknown_scores(known, unknown, 0.65)
    assert got["f1"] == pytest.approx(6 / 7) and got["precision"] == pytest.approx(0.75)
    # every (precision, recall) point of scikit-learn's curve (higher score = more "unknown")
    rng = np.random.default_rng(0)
    known, unknown = rng.normal(0.6, 0.1, 300), rng.normal(0.4, 0.1, 50)
    y = np.r_[np.zeros(300), np.ones(50)]
    p, r, _ = precision_recall_curve(y, -np.r_[known, unknown])
    sweep = em.threshold_sweep(known, unknown)
    ours = {(round(a, 9), round(b, 9)) for a, b in zip(sweep["precision"], sweep["recall"])}
    assert {(round(a, 9), round(b, 9)) for a, b in zip(p, r)} <= ours
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    t = em.choose_threshold(known, unknown)
    assert em.unknown_scores(known, unknown, t)["f1"] == pytest.approx(f1.max())
    with pytest.raises(ValueError, match="known and of unknown"):
        em.threshold_sweep(known, np.array([]))


def test_best_cosine_is_the_largest_cosine_to_any_stored_vector():
    stored = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    q = F.normalize(torch.tensor([[1.0, 1.0], [1.0, 0.0], [-1.0, 0.0]]), dim=1)
    assert em.best_cosine(q, stored) == pytest.approx([math.sqrt(0.5), 1.0, 0.0], abs=1e-6)


def _toy_holdout(seed: int = 0) -> ml.Holdout:
    """Two known classes around (1, 0, 0) and (0, 1, 0), the held-out class around (0, 0, 1)."""
    g = torch.Generator().manual_seed(seed)

    def cloud(centre, n, label):
        v = F.normalize(torch.tensor(centre) + 0.25 * torch.randn(n, 3, generator=g), dim=1)
        return em.Embedded(v, np.full(n, label))

    known = lambda n: cloud([1.0, 0, 0], n, 0) + cloud([0, 1.0, 0], n, 1)  # noqa: E731
    return ml.Holdout(
        "Third",
        2,
        F.normalize(torch.eye(3)[:2], dim=1),
        known(20),
        known(10),
        known(10),
        cloud([0, 0, 1.0], 8, -1),
        cloud([0, 0, 1.0], 6, -1),
        cloud([0, 0, 1.0], 6, -1),
    )


def test_new_class_experiment_finds_a_well_separated_class():
    df = ml.new_class_experiment(_toy_holdout(), shots=(1, 5, 50), draws=2)
    assert sorted(df["k"].unique()) == [1, 5]  # 50 > the 8 pool images: skipped
    centre = df[df.method.str.contains("centres")]
    assert (centre.new_recall == 1.0).all() and (centre.others_macro_f1 == 1.0).all()
    assert set(df.draw) == {0, 1} and not df.method.str.contains("softmax").any()
    summary = ml.summarize(df, ["k", "method"], ["new_recall"])
    assert list(summary.columns) == ["new_recall mean", "new_recall std"]


def test_unknown_experiment_chooses_on_val_and_scores_on_test():
    h = _toy_holdout()
    table, scores = ml.unknown_experiment(h)
    assert list(table.index) == ["nearest learned centre", "nearest training embedding"]
    centre = scores["nearest learned centre"]
    t = em.choose_threshold(centre["known val"], centre["unknown val"])
    row = table.loc["nearest learned centre"]
    assert row["threshold (chosen on val)"] == pytest.approx(t)
    want = em.unknown_scores(centre["known test"], centre["unknown test"], t)
    assert row["test recall of unknown"] == pytest.approx(want["recall"])
    assert row["test recall of unknown"] == 1.0  # the toy's third class is far from both
    # a test image moved changes the test scores, never the threshold
    h.new_test.vectors[:] = h.centres[0]
    moved, _ = ml.unknown_experiment(h)
    assert moved.loc["nearest learned centre", "threshold (chosen on val)"] == pytest.approx(t)
    assert moved.loc["nearest learned centre", "test recall of unknown"] == 0.0


def test_run_parameters_record_chapter_8_and_their_kind():
    base = {"model": "tiny", "epochs": 1}
    arc = ml.arcface_params(base)
    assert arc["model"] == "arcface:tiny" and arc["loss"] == "arcface"
    assert (arc["chapter"], arc["kind"]) == (8, "arcface")
    assert ml.arcface_params(arc, "x")["model"] == "arcface:tiny"  # not doubled
    assert ml.softmax_params(base, "softmax_without") == {
        **base,
        "chapter": 8,
        "kind": "softmax_without",
    }


@pytest.mark.slow
def test_the_chapter_experiments_on_tiny_runs(tmp_path, tiny_crops, isolated_home):
    """The runs chapter 8 trains (tiny, one epoch): recorded as chapter 8's, found by kind,
    and every experiment of trashkit.metric_learning runs on them."""
    from trashkit.scoring import find_runs
    from trashkit.train import TrainConfig, train

    base = tiny_config(tiny_crops, epochs=1, test_fraction=0.2, val_fraction=0.2)
    arc = ml.without_class(ml.arcface_params(base, "arcface_without"), "Metal")
    soft = ml.without_class(ml.softmax_params(base, "softmax_without"), "Metal")
    assert not (Path(TrainConfig.from_dict(arc).data) / "train" / "Metal").exists()
    train(arc, tmp_path / "arc", progress=False)
    train(soft, tmp_path / "soft", progress=False)
    assert find_runs(tmp_path, 8, "arcface_without") == [tmp_path / "arc"]
    h = ml.holdout_embeddings(tmp_path / "arc", tmp_path / "soft", str(tiny_crops), "Metal")
    assert h.new == 5 and len(h.new_test) > 0 and len(h.pool) > 0
    assert h.centres.shape == (5, 512)
    df = ml.new_class_experiment(h, shots=(1, 2), draws=1)
    assert len(df) == 2 * 3 and df.method.str.contains("softmax").any()
    table, _ = ml.unknown_experiment(h)
    assert table["known test images rejected"].between(0, 1).all()
    preds = ml.predictors_table(tmp_path / "arc", k=3)
    assert preds["official MACs"]["1 nearest neighbour"] > preds["official MACs"].iloc[0]
    assert preds["test macro-F1"].between(0, 1).all()
