"""Weight sharing and an accuracy predictor: how a search gets cheap enough to run (chapter 6).

A search that trains every trial pays one training per architecture it looks at. Two ideas
from the NAS literature (MIT 6.5940, lectures 7-8; lab 3) cut that cost:

* **Weight sharing** (Once-for-All, Cai et al., ICLR 2020): train one **supernet** that
  contains every candidate as a **sub-network**; a sub-network *inherits* its weights
  (the first ``w`` channels of each layer, the first ``d`` layers of each stage) and is
  evaluated without any training of its own. Here the supernet is deliberately small: a
  plain network of ``3x3 convolution + batch norm + ReLU`` layers in stages, elastic in
  depth (layers per stage) and width (channels per stage). It trains with the **sandwich
  rule** (Yu and Huang, ICCV 2019; used by BigNAS): every step trains the largest, the
  smallest and a few random sub-networks on the same batch.
* An **accuracy predictor** (MIT 6.5940's NAS lab; OFA): a small regression from an
  architecture's description to its measured F1, fitted on the sub-networks already
  evaluated; it then ranks thousands of candidates in milliseconds.

A sub-network is taken out of the supernet as an ordinary ``nn.Sequential`` of
``Conv2d`` / ``BatchNorm2d`` / ``ReLU`` / ``Linear`` with copied weights (:meth:`Supernet.
extract`), so the competition's MACs counter sees all of it; its batch-norm statistics are
re-estimated on a few training batches before it is evaluated (OFA's "BN recalibration"),
because the supernet's shared statistics belong to no single sub-network.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..complexity import official_macs
from ..data import BatchAugment, DataSplit, make_eval_loader, make_train_loader, normalize_batch
from ..metrics import macro_f1, predict


@dataclass(frozen=True)
class SupernetSpace:
    """What a sub-network may choose: per stage, a depth and a width ratio."""

    stem: int = 16  # channels of the stem convolution (stride 2), fixed
    widths: tuple[int, ...] = (32, 64, 96)  # channels of each stage at width ratio 1
    depths: tuple[int, ...] = (1, 2, 3)  # layers a stage may keep (its first d)
    ratios: tuple[float, ...] = (0.5, 0.75, 1.0)  # width ratios a stage may keep

    def channels(self, config: dict) -> list[int]:
        """Channels of each stage of ``config`` (at least 8)."""
        return [max(8, round(w * r)) for w, r in zip(self.widths, config["width"])]

    def largest(self) -> dict:
        n = len(self.widths)
        return {"depth": (max(self.depths),) * n, "width": (max(self.ratios),) * n}

    def smallest(self) -> dict:
        n = len(self.widths)
        return {"depth": (min(self.depths),) * n, "width": (min(self.ratios),) * n}

    def sample(self, rng: np.random.Generator) -> dict:
        n = len(self.widths)
        return {
            "depth": tuple(int(rng.choice(self.depths)) for _ in range(n)),
            "width": tuple(float(rng.choice(self.ratios)) for _ in range(n)),
        }

    def all_configs(self) -> list[dict]:
        """Every sub-network of the space (``(|depths| * |ratios|) ** stages`` of them)."""
        n = len(self.widths)
        return [
            {"depth": d, "width": w}
            for d in itertools.product(self.depths, repeat=n)
            for w in itertools.product(self.ratios, repeat=n)
        ]

    def check(self, config: dict) -> None:
        """Refuse a config that is not a sub-network of this space, saying why."""
        n = len(self.widths)
        for key, allowed in (("depth", self.depths), ("width", self.ratios)):
            value = config.get(key) if isinstance(config, dict) else None
            if not isinstance(value, (list, tuple)) or len(value) != n:
                raise ValueError(f"config[{key!r}] must list {n} values (one per stage)")
            bad = [v for v in value if v not in allowed]
            if bad:
                raise ValueError(f"config[{key!r}] = {value}: {bad} not in {list(allowed)}")


def subnet_macs(space: SupernetSpace, config: dict, image_size: int, n_classes: int) -> int:
    """The official MACs of sub-network ``config``, by formula (no network is built).

    What the competition's counter (ptflops) counts for these layers: a ``3x3`` convolution
    with ``c_in`` inputs, ``c`` outputs and an ``s x s`` output map ``9 c_in c s^2``; its batch
    norm ``2 c s^2`` (scale and shift of every element); ReLU nothing; the average pool its
    ``c s^2`` inputs; the classifier ``c n + n`` (weights and bias). A stride-2 layer (padding
    1) maps side ``h`` to ``(h - 1) // 2 + 1``.
    """
    space.check(config)
    layers = [(space.stem, 2)]
    for d, c in zip(config["depth"], space.channels(config)):
        layers += [(c, 2)] + [(c, 1)] * (d - 1)
    total, side, c_in = 0, image_size, 3
    for c, stride in layers:
        side = (side - 1) // stride + 1
        total += 9 * c_in * c * side * side + 2 * c * side * side
        c_in = c
    return total + c_in * side * side + c_in * n_classes + n_classes


def subnet_features(configs: list[dict]) -> np.ndarray:
    """What the accuracy predictor reads: each stage's depth and width ratio, one row each."""
    return np.array([[*c["depth"], *c["width"]] for c in configs], dtype=float)


def subnet_name(config: dict) -> str:
    """``d1-2-3 w0.5-1-0.75``: a sub-network in one short string."""
    d = "-".join(str(v) for v in config["depth"])
    w = "-".join(f"{v:g}" for v in config["width"])
    return f"d{d} w{w}"


class ElasticConv(nn.Module):
    """``3x3 conv + batch norm + ReLU`` whose sub-networks use its first channels.

    The weights are those of an ordinary ``Conv2d`` and ``BatchNorm2d``; a sub-network with
    ``c_in`` inputs and ``c_out`` outputs uses ``conv.weight[:c_out, :c_in]``. In the supernet
    the batch norm always normalises with the batch's own statistics (each sub-network has
    other ones); an extracted sub-network gets its own, recalibrated.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        w = self.conv.weight[:c_out, : x.shape[1]]
        y = F.conv2d(x, w, None, self.conv.stride, 1)
        y = F.batch_norm(y, None, None, self.bn.weight[:c_out], self.bn.bias[:c_out], True)
        return F.relu(y)

    def extract(self, c_in: int, c_out: int) -> list[nn.Module]:
        """A plain ``Conv2d``, ``BatchNorm2d``, ``ReLU`` holding copies of the first channels."""
        conv = nn.Conv2d(c_in, c_out, 3, self.conv.stride, 1, bias=False)
        bn = nn.BatchNorm2d(c_out)
        with torch.no_grad():
            conv.weight.copy_(self.conv.weight[:c_out, :c_in])
            bn.weight.copy_(self.bn.weight[:c_out])
            bn.bias.copy_(self.bn.bias[:c_out])
        return [conv, bn, nn.ReLU()]


class Supernet(nn.Module):
    """Every sub-network of ``space`` in one set of weights; ``forward(x, config)``."""

    def __init__(self, space: SupernetSpace, n_classes: int):
        super().__init__()
        self.space, self.n_classes = space, n_classes
        self.stem = ElasticConv(3, space.stem, 2)
        self.stages = nn.ModuleList()
        c_in = space.stem
        for width in space.widths:
            layers = [ElasticConv(c_in, width, 2)]  # the first layer of a stage halves the map
            layers += [ElasticConv(width, width, 1) for _ in range(1, max(space.depths))]
            self.stages.append(nn.ModuleList(layers))
            c_in = width
        self.head = nn.Linear(space.widths[-1], n_classes)

    def forward(self, x: torch.Tensor, config: dict) -> torch.Tensor:
        x = self.stem(x, self.space.stem)
        for stage, d, c in zip(self.stages, config["depth"], self.space.channels(config)):
            for layer in stage[:d]:
                x = layer(x, c)
        x = x.mean((2, 3))
        return F.linear(x, self.head.weight[:, : x.shape[1]], self.head.bias)

    def extract(self, config: dict) -> nn.Sequential:
        """The sub-network ``config`` as an ordinary network with inherited (copied) weights."""
        self.space.check(config)
        mods: list[nn.Module] = self.stem.extract(3, self.space.stem)
        c_in = self.space.stem
        for stage, d, c in zip(self.stages, config["depth"], self.space.channels(config)):
            for layer in stage[:d]:
                mods += layer.extract(c_in, c)
                c_in = c
        head = nn.Linear(c_in, self.n_classes)
        with torch.no_grad():
            head.weight.copy_(self.head.weight[:, :c_in])
            head.bias.copy_(self.head.bias)
        return nn.Sequential(*mods, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def train_supernet(
    data: DataSplit,
    space: SupernetSpace = SupernetSpace(),
    epochs: int = 3,
    sandwich: int = 2,
    fixed: dict | None = None,
    batch_size: int = 64,
    lr: float = 0.05,
    seed: int = 0,
) -> tuple[Supernet, float]:
    """Train a supernet on ``data``'s training images; ``(supernet, wall seconds)``.

    Each step trains, on the same batch, the largest sub-network, the smallest and
    ``sandwich`` random ones (their losses summed: the sandwich rule). With ``fixed`` a single
    sub-network is trained, alone: that is ordinary stand-alone training of that network, with
    the same loop, data order and learning-rate schedule, for a fair comparison.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Supernet(space, len(data.classes))
    if fixed is not None:
        space.check(fixed)
    loader = make_train_loader(
        data.cache, data.train_idx, batch_size, seed, BatchAugment(None), workers=0
    )
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * len(loader))
    t0 = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for x, y in loader:
            x = normalize_batch(x)
            if fixed is not None:
                configs = [fixed]
            else:
                configs = [space.largest(), space.smallest()]
                configs += [space.sample(rng) for _ in range(sandwich)]
            opt.zero_grad(set_to_none=True)
            for cfg in configs:  # gradients of every sub-network add up in the shared weights
                F.cross_entropy(net(x, cfg), y).backward()
            opt.step()
            sched.step()
    return net, time.perf_counter() - t0


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: DataSplit, batches: int = 8, batch_size: int = 64):
    """Re-estimate every batch norm's statistics on ``batches`` unaugmented training batches
    (a plain average over them), then leave the model in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative average, not an exponential one
    model.train()
    loader = make_eval_loader(data.cache, data.train_idx[: batches * batch_size], batch_size)
    for x, _ in loader:
        model(normalize_batch(x))
    return model.eval()


def evaluate_subnet(
    supernet: Supernet, config: dict, data: DataSplit, image_size: int, calib_batches: int = 8
) -> dict:
    """Extract ``config``, recalibrate its batch norms, and measure it: validation macro-F1
    with inherited weights, official MACs and parameters."""
    model = recalibrate_bn(supernet.extract(config), data, calib_batches)
    pred = predict(model, make_eval_loader(data.cache, data.val_idx))
    return {
        "subnet": subnet_name(config),
        "config": config,
        "MACs": official_macs(model, image_size),
        "params": sum(p.numel() for p in model.parameters()),
        "val_macro_f1": macro_f1(pred.true, pred.pred, len(data.classes)),
    }


def evaluate_subnets(
    supernet: Supernet, configs: list[dict], data: DataSplit, image_size: int
) -> pd.DataFrame:
    """:func:`evaluate_subnet` for each config: one row each."""
    return pd.DataFrame([evaluate_subnet(supernet, c, data, image_size) for c in configs])


def sample_configs(space: SupernetSpace, n: int, seed: int = 0) -> list[dict]:
    """``n`` different sub-networks drawn at random (the largest and smallest first)."""
    rng = np.random.default_rng(seed)
    out, seen = [space.largest(), space.smallest()], set()
    seen.update(subnet_name(c) for c in out)
    limit = len(space.all_configs())
    while len(out) < min(n, limit):
        c = space.sample(rng)
        if subnet_name(c) not in seen:
            seen.add(subnet_name(c))
            out.append(c)
    return out[:n]


def fit_accuracy_predictor(x: np.ndarray, y: np.ndarray, alpha: float = 1.0):
    """A ridge regression ``F1 ~ w . x + b`` (scikit-learn; ``alpha`` the penalty on ``|w|^2``).

    Ridge, not a deep network: with a few dozen measured sub-networks a model with few
    parameters is what the data can support. ``predict(x)`` ranks any number of candidates.
    """
    from sklearn.linear_model import Ridge

    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 2 or len(x) != len(y) or len(y) < 2:
        raise ValueError(f"need a 2-d feature table and one F1 per row (got {x.shape}, {y.shape})")
    return Ridge(alpha=alpha).fit(x, y)


def predictor_study(table: pd.DataFrame, n_fit: int, alpha: float = 1.0, seed: int = 0) -> dict:
    """Fit the predictor on ``n_fit`` measured sub-networks (a random choice), predict the
    others, and say how well it ranks them: Spearman's rho between predicted and measured
    F1 on the held-out sub-networks."""
    from scipy.stats import spearmanr

    if not 2 <= n_fit <= len(table) - 3:
        raise ValueError(f"n_fit={n_fit}: need >= 2 to fit and >= 3 held out of {len(table)}")
    order = np.random.default_rng(seed).permutation(len(table))
    fit, held = table.iloc[order[:n_fit]], table.iloc[order[n_fit:]]
    x_fit = subnet_features(list(fit.config))
    model = fit_accuracy_predictor(x_fit, fit.val_macro_f1.to_numpy(), alpha)
    predicted = model.predict(subnet_features(list(held.config)))
    rho = spearmanr(predicted, held.val_macro_f1).statistic
    return {
        "model": model,
        "held_out": held.assign(predicted_f1=predicted),
        "rho": float(rho) if not math.isnan(rho) else 0.0,
    }
