"""Structured pruning that removes channels for real (torch-pruning's dependency graph)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..complexity import official_macs


def filter_norms(conv: nn.Conv2d) -> torch.Tensor:
    """The L2 norm of each output filter of ``conv``: the magnitude criterion's importance."""
    return conv.weight.detach().flatten(1).norm(dim=1)


def prune_channels(
    model: nn.Module,
    conv: nn.Conv2d,
    drop: list[int],
    input_size: tuple[int, int, int] = (3, 16, 16),
) -> nn.Module:
    """A copy of ``model`` without the output channels ``drop`` of ``conv`` (``conv`` is a
    module of ``model``), removed by torch-pruning's dependency graph.

    Why a graph: the channel is also an input of every layer that reads it (its batch norm,
    the next convolution, a residual partner); removing it from ``conv`` alone would leave a
    network that no longer runs. The graph finds the coupled slices and cuts them together.
    """
    import torch_pruning as tp

    path = next(name for name, m in model.named_modules() if m is conv)
    model = copy.deepcopy(model).cpu().eval()
    example = torch.zeros(1, *input_size)
    with torch.enable_grad():  # the graph is traced through autograd
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    group = graph.get_pruning_group(
        model.get_submodule(path), tp.prune_conv_out_channels, idxs=sorted(drop)
    )
    if not graph.check_pruning_group(group):
        raise ValueError(f"cannot remove channels {drop} of {path}: the layer would be empty")
    group.prune()
    return model


def prune_to_macs(
    model: nn.Module,
    image_size: int,
    target_ratio: float = 0.6,
    steps: int = 20,
    max_ratio: float = 0.9,
) -> tuple[nn.Module, dict]:
    """Remove the least important channels (L2 magnitude) until official MACs <= target.

    Returns a *new* pruned model and ``{"macs_before", "macs_after", "pruning_ratio"}``.
    Coupled layers (a conv, its BN, the next conv's inputs, residual partners, SE blocks) are
    pruned together, so the result is a smaller dense network, not a masked one. The final
    classifier's outputs are never pruned.
    """
    import torch_pruning as tp

    model = copy.deepcopy(model).cpu().eval()
    before = official_macs(model, image_size)
    target = target_ratio * before
    example = torch.zeros(1, 3, image_size, image_size)
    ignored = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=max_ratio,
        iterative_steps=steps,
        ignored_layers=ignored,
        round_to=8,
    )
    macs = before
    for _ in range(steps):
        if macs <= target:
            break
        pruner.step()
        macs = official_macs(model, image_size)
    return model, {
        "macs_before": before,
        "macs_after": macs,
        "target": target,
        "ratio": macs / before,
    }
