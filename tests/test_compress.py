"""Each compression technique on a tiny model, with numbers a reader can check."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trashkit.complexity import measure_latency, official_macs
from trashkit.compress import OrtModel, decompose_model, export_onnx, prune_to_macs, quantize_int8
from trashkit.models import build_model
from trashkit.models.arcface import ArcFaceLoss, ArcFaceNet
from trashkit.train import kd_loss


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 6),
    ).eval()


def test_kd_loss_on_known_logits():
    s = torch.tensor([[1.0, 0.0, -1.0]])
    hard = torch.tensor(0.5)
    # identical distributions: the soft term is 0, only (1 - alpha) * hard remains
    assert kd_loss(s, s.clone(), hard, 4.0, 0.7).item() == pytest.approx(0.3 * 0.5)
    # hand value: T=1, KL(p_t || p_s) for a 2-class case
    st, tt = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # p_t = (3/4, 1/4)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(st, tt, torch.tensor(0.0), 1.0, 1.0).item() == pytest.approx(kl, rel=1e-5)
    # the T^2 factor: at T=2 the soft term is scaled by 4
    t2 = F.kl_div(
        F.log_softmax(st / 2, 1), F.log_softmax(tt / 2, 1), reduction="batchmean", log_target=True
    ).item()
    assert kd_loss(st, tt, torch.tensor(0.0), 2.0, 1.0).item() == pytest.approx(4 * t2, rel=1e-5)


def test_pruning_really_shrinks_layers_and_macs():
    model = build_model("mbv3_reduced", 6)
    before = official_macs(model, 64)
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    pruned, info = prune_to_macs(model, 64, target_ratio=0.6)
    after = official_macs(pruned, 64)
    assert after <= 0.6 * before and info["macs_after"] == after
    new_widths = [m.out_channels for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert sum(new_widths) < sum(widths)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    assert pruned(torch.zeros(2, 3, 64, 64)).shape == (2, 6)
    assert official_macs(model, 64) == before  # the original is untouched


def test_decomposition_lowers_macs_and_is_exact_at_full_rank():
    model = small_net()
    x = torch.randn(2, 3, 16, 16)
    low, names = decompose_model(model, rank_ratio=0.5, min_channels=8)
    assert names and official_macs(low, 16) < official_macs(model, 16)
    assert low(x).shape == (2, 6)
    # SVD of a 1x1 conv at full rank reproduces it exactly
    conv = nn.Conv2d(32, 32, 1)
    from trashkit.compress.decompose import decompose_conv

    assert decompose_conv(conv, 1.0) is None  # full rank would not save MACs: left alone
    torch.manual_seed(1)
    wide = nn.Conv2d(16, 64, 1)
    with torch.no_grad():  # a weight of rank 4: rank 4 = 0.25 * 16 reproduces it exactly
        wide.weight.copy_((torch.randn(64, 4) @ torch.randn(4, 16)).view(64, 16, 1, 1))
    two = decompose_conv(wide, 0.25)  # 4 * (16 + 64) = 320 MACs/pixel < 16 * 64 = 1024
    assert two is not None
    z = torch.randn(1, 16, 5, 5)
    assert torch.allclose(two(z), wide(z), atol=1e-5)


def test_onnx_and_int8_agree_with_float(tmp_path):
    model = small_net()
    torch.manual_seed(2)
    x = torch.randn(8, 3, 32, 32)
    ref = model(x).detach()
    fp32 = OrtModel(export_onnx(model, 32, tmp_path / "m.onnx"))
    assert torch.allclose(fp32(x), ref, atol=1e-4)  # stated tolerance: 1e-4 absolute
    q = OrtModel(
        quantize_int8(tmp_path / "m.onnx", torch.randn(32, 3, 32, 32), tmp_path / "m.int8.onnx")
    )
    err = (q(x) - ref).abs().max().item()
    scale = ref.abs().max().item()
    assert err <= 0.05 * scale + 1e-3  # stated tolerance: 5% of the output range
    assert q.path.stat().st_size < fp32.path.stat().st_size
    lat = measure_latency(q, (3, 32, 32), runs=5, warmup=1)  # the one latency helper
    assert lat.median_ms > 0 and lat.runs == 5


def test_arcface_logits_for_a_known_embedding():
    head = ArcFaceNet(
        nn.Sequential(nn.Flatten(), nn.Linear(2, 3)), num_classes=2, embedding=2, scale=10.0
    )
    head.embed = nn.Identity()  # the embedding is the 2-d input itself (then normalised)
    head.eval()
    with torch.no_grad():
        head.centres.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    # the model's own forward: embedding (3, 4) / 5, cos to centre 0 = 0.6, to 1 = 0.8
    logits = head(torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(logits, torch.tensor([[6.0, 8.0]]))
    # the margin makes the true class harder: loss with margin > loss without
    loss_m = ArcFaceLoss(margin=0.3, scale=10.0)(logits, torch.tensor([0]))
    loss_0 = F.cross_entropy(logits, torch.tensor([0]))
    theta = math.acos(0.6)
    expected = -math.log(
        math.exp(10 * math.cos(theta + 0.3))
        / (math.exp(10 * math.cos(theta + 0.3)) + math.exp(8.0))
    )
    assert loss_m.item() == pytest.approx(expected, rel=1e-5) and loss_m > loss_0
    # the full model runs and its head is visible to the MACs counter
    net = build_model("arcface:tiny", 6)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 6)
    assert official_macs(net, 32) > official_macs(build_model("tiny", 6), 32)


def test_affine_int8_round_trip_matches_onnx_runtime():
    import numpy as np
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    from trashkit.compress.quant import affine_params, dequantize, quantize, round_trip

    rt = round_trip([-0.51, 0.0, 0.1234, 2.04])  # chapter 7's toy, by hand: s 0.01, z 51
    assert rt["zero_point"] == 51 and rt["scale"] == pytest.approx(0.01)
    assert rt["q"].tolist() == [0, 51, 63, 255]
    assert rt["max_error"] == pytest.approx(0.0034) and rt["max_error"] <= rt["scale"] / 2
    for lo, hi in [(-0.51, 2.04), (0.5, 2.55), (-1.0, -0.2), (-3.0, 1.0)]:
        zp, sc = compute_scale_zp(
            np.array(lo, np.float32),
            np.array(hi, np.float32),
            np.array(0, np.uint8),
            np.array(255, np.uint8),
        )
        scale, zero = affine_params(lo, hi)
        assert zero == int(zp) and scale == pytest.approx(float(sc), rel=1e-6)
    x = np.random.default_rng(0).normal(size=1000)
    s, z = affine_params(x.min(), x.max())
    assert np.abs(dequantize(quantize(x, s, z), s, z) - x).max() <= s / 2 + 1e-12


def test_tucker2_macs_formula_equals_the_counter():
    from trashkit.compress.decompose import decompose_conv, ranks, tucker2_macs

    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    assert ranks(conv, 0.5) == (4, 4)
    assert (
        tucker2_macs(8, 8, 3, 4, 4, 4, 4)
        == 3328
        == official_macs(decompose_conv(conv, 0.5), (8, 4, 4))
    )
    strided = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)  # first 1x1 on the input grid
    low = decompose_conv(strided, 0.5)
    assert official_macs(low, (16, 8, 8)) == tucker2_macs(16, 32, 3, 8, 16, 8, 8, stride=2)
    assert decompose_conv(nn.Conv2d(4, 4, 3, padding=1), 1.0) is None  # full rank: no saving


def test_prune_channels_cuts_the_coupled_slices():
    from trashkit.compress.prune import filter_norms, prune_channels

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 2, 1, bias=False),
    ).eval()
    with torch.no_grad():
        net[1].bias.uniform_(-0.5, 0.5)
    drop = sorted(torch.argsort(filter_norms(net[0]))[:2].tolist())
    small = prune_channels(net, net[0], drop, input_size=(3, 4, 4))
    assert [m.out_channels for m in small if isinstance(m, nn.Conv2d)] == [2, 2]
    assert small[1].num_features == 2 and small[3].in_channels == 2
    x = torch.randn(3, 3, 4, 4)
    with torch.no_grad():
        w = net[3].weight.clone()
        w[:, drop] = 0
        assert torch.allclose(small(x), F.conv2d(net[2](net[1](net[0](x))), w), atol=1e-6)
    assert official_macs(net, (3, 4, 4)) == 1984 and official_macs(small, (3, 4, 4)) == 992
    assert net[0].out_channels == 4  # the original is untouched


@pytest.mark.slow
def test_sensitivity_scan_and_the_fair_baseline(trained_run, tmp_path, isolated_home):
    from trashkit.compress import pipeline as cp

    run_dir, _ = trained_run
    ctx = cp.Baseline(run_dir / "best.pt", tmp_path)
    scan = cp.sensitivity_scan(ctx, [0.4, 0.7], epochs=1)
    assert list(scan.target) == [1.0, 0.7, 0.4]  # the original first, then largest to smallest
    assert (scan["kept MACs"] <= scan.target + 1e-9).all()
    assert scan.MACs.is_monotonic_decreasing and scan.MACs.iloc[0] == official_macs(ctx.model, 48)
    assert scan[["F1 pruned", "F1 fine-tuned"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (tmp_path / "scan_040_ft" / "best.pt").is_file()
    import json

    cfg = json.loads((tmp_path / "scan_040_ft" / "config.json").read_text())
    assert cfg["init_from"] == str(tmp_path / "scan_040.pt") and cfg["epochs"] == 1
    base = cp.continued(ctx, 1)
    cfg = json.loads((tmp_path / "original_continued" / "config.json").read_text())
    assert cfg["init_from"] == str(run_dir / "best.pt") and cfg["lr"] == 0.02
    assert base.name == "original + same extra epochs"
    again = cp.continued(ctx, 1)  # a finished run is read back, not trained again
    assert torch.equal(
        next(iter(again.model.state_dict().values())), next(iter(base.model.state_dict().values()))
    )


# --- chapter 7's additions: integer-only arithmetic, QAT, QDQ graphs, the original's fallback --


def test_fixed_point_multiplier_and_integer_only_linear():
    import numpy as np

    from trashkit.compress.quant import integer_linear, quantize_multiplier, requantize

    for m in (0.05, 0.75, 0.0003, 0.5, 0.999, 1.7e-6, 0.99999999999):
        m0, shift = quantize_multiplier(m)
        assert 2**30 <= m0 < 2**31 and abs(m0 / 2**shift - m) <= 2 ** -(shift + 1) + 1e-18
    assert quantize_multiplier(0.05) == (1_717_986_918, 35)
    with pytest.raises(ValueError, match="must lie in"):
        quantize_multiplier(1.5)
    # the integer path equals rounding the real product, on random accumulators
    rng = np.random.default_rng(0)
    acc = rng.integers(-50_000, 50_000, 200)
    m0, shift = quantize_multiplier(0.0123)
    want = np.clip(np.floor(acc * (m0 / 2**shift) + 0.5) + 7, 0, 255)
    assert np.array_equal(requantize(acc, m0, shift, 7), want)
    x = rng.integers(0, 256, 16)
    w = rng.integers(-127, 128, (4, 16))
    a, q = integer_linear(x, 120, w, np.zeros(4, int), *quantize_multiplier(0.001), y_zero=3)
    assert np.array_equal(a, w @ (x - 120))
    with pytest.raises(OverflowError):
        integer_linear(np.full(70_000, 255), 0, np.full((1, 70_000), 127), [0], m0, shift)


def test_fake_quant_is_the_library_rounding_with_a_straight_through_gradient():
    from trashkit.compress.qat import FakeQuant, bake, max_levels, ptq_weights, weight_grid
    from trashkit.compress.qat import with_fake_quant

    w = torch.randn(5, 3, 3, 3, requires_grad=True)
    scale = w.detach().abs().flatten(1).amax(1) / 7
    lib = torch.fake_quantize_per_channel_affine(
        w.detach(), scale, torch.zeros(5, dtype=torch.int32), 0, -7, 7
    )
    assert torch.allclose(weight_grid(w, 4), lib)
    FakeQuant(4)(w).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    net = small_net()
    assert max_levels(ptq_weights(net, 3)) <= 2**3 - 1 < max_levels(net)
    fq = with_fake_quant(net, 3)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(fq.eval()(x), ptq_weights(net, 3)(x), atol=1e-5)
    assert max_levels(bake(fq)) <= 7 and not any("parametrizations" in k for k in fq.state_dict())


def test_int8_graph_operators_before_and_after_fusion(tmp_path):
    from trashkit.compress.onnx_rt import conv_stack, export_example, graph_ops

    net, x = conv_stack(8), torch.randn(1, 8, 8, 8)
    fp32 = export_example(net, x, tmp_path / "c.onnx")
    assert graph_ops(fp32) == {"Conv": 2, "Relu": 2}
    q = quantize_int8(fp32, torch.randn(4, 8, 8, 8), tmp_path / "c.int8.onnx")
    written = graph_ops(q)
    assert written["QuantizeLinear"] >= 1 and written["DequantizeLinear"] >= 3
    assert graph_ops(q, optimized=True).get("QLinearConv") == 2  # the pairs fused away
    with pytest.raises(FileExistsError):
        export_example(net, x, tmp_path / "c.onnx")


def test_original_checkpoint_finds_chapter_4_or_trains_one(tmp_path, monkeypatch):
    import json

    from trashkit.compress import pipeline as cp

    trained = []

    def fake_train_once(cfg, folder):
        trained.append(cfg)
        folder.mkdir(parents=True)
        (folder / "best.pt").write_bytes(b"")

    monkeypatch.setattr(cp, "train_once", fake_train_once)
    path, why = cp.original_checkpoint(tmp_path / "outputs", tmp_path / "run", None, 2, 48)
    assert path == tmp_path / "run" / "original" / "best.pt" and "no chapter-4 run" in why
    cfg = trained[0]
    assert (cfg.chapter, cfg.kind, cfg.epochs, cfg.image_size) == (7, "original", 2, 48)
    assert cfg.model == cp.CHAPTER4["model"] and cfg.test_fraction == 0.2
    run = tmp_path / "outputs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"chapter": 4, "kind": "train", "model": "tiny"}))
    (run / "best.pt").write_bytes(b"")
    path, why = cp.original_checkpoint(tmp_path / "outputs", tmp_path / "run2")
    assert path == run / "best.pt" and "chapter 4's newest" in why and len(trained) == 1
