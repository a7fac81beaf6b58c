"""Low-rank decomposition of convolutions (Tucker-2 / SVD with tensorly).

A k x k convolution ``cout x cin x k x k`` becomes three: a 1x1 projection to ``r_in``
channels, the k x k conv between the ranks, and a 1x1 expansion to ``cout`` (Kim et al.,
ICLR 2016). A 1x1 convolution becomes two 1x1 convs through ``r`` channels (truncated SVD).
A layer is replaced only when that lowers its MACs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def tucker2_macs(
    cin: int,
    cout: int,
    k: int,
    r_in: int,
    r_out: int,
    h: int,
    w: int,
    stride: int = 1,
    padding: int | None = None,
) -> int:
    """MACs of a k x k convolution (no bias) after Tucker-2: a 1x1 conv ``cin -> r_in`` on the
    *input* grid ``h x w``, the k x k core ``r_in -> r_out`` and a 1x1 conv ``r_out -> cout``
    on the output grid.

    Why write it out: the saving is ``cin*cout*k^2`` against ``cin*r_in + r_in*r_out*k^2 +
    r_out*cout`` per pixel, so halving both ranks cuts the core by 4 but adds two 1x1 convs;
    on a conv with few channels the sum can exceed the original (then nothing is replaced).
    """
    p = k // 2 if padding is None else padding
    ho, wo = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
    return h * w * cin * r_in + ho * wo * (r_in * r_out * k * k + r_out * cout)


def ranks(conv: nn.Conv2d, rank_ratio: float) -> tuple[int, int]:
    """``(r_out, r_in)``: the ranks :func:`decompose_conv` keeps for ``conv``."""
    return max(1, int(conv.out_channels * rank_ratio)), max(1, int(conv.in_channels * rank_ratio))


def decompose_conv(conv: nn.Conv2d, rank_ratio: float) -> nn.Module | None:
    """One convolution in its low-rank form (SVD for 1x1, Tucker-2 for k x k), or None when
    that would not lower its MACs."""
    k = conv.weight.shape[2] * conv.weight.shape[3]
    return _svd_1x1(conv, rank_ratio) if k == 1 else _tucker2(conv, rank_ratio)


def _svd_1x1(conv: nn.Conv2d, rank_ratio: float) -> nn.Module | None:
    """A 1x1 conv as two thinner ones: the truncated SVD ``W ~ U_r S_r V_r^T``."""
    w = conv.weight.data
    cout, cin = w.shape[:2]
    r = max(1, int(min(cout, cin) * rank_ratio))
    if r * (cin + cout) >= cout * cin:
        return None
    u, s, vh = torch.linalg.svd(w.view(cout, cin), full_matrices=False)
    first = nn.Conv2d(cin, r, 1, bias=False)
    last = nn.Conv2d(r, cout, 1, bias=conv.bias is not None)
    first.weight.data = (torch.diag(s[:r]) @ vh[:r]).view(r, cin, 1, 1)
    last.weight.data = u[:, :r].reshape(cout, r, 1, 1).contiguous()
    if conv.bias is not None:
        last.bias.data = conv.bias.data.clone()
    return nn.Sequential(first, last)


def _tucker2(conv: nn.Conv2d, rank_ratio: float) -> nn.Module | None:
    """A k x k conv as 1x1 (in -> r_in), k x k core (r_in -> r_out), 1x1 (r_out -> out)."""
    import tensorly as tl
    from tensorly.decomposition import partial_tucker

    tl.set_backend("pytorch")
    w = conv.weight.data
    cout, cin, kh, kw = w.shape
    r_out, r_in = ranks(conv, rank_ratio)
    if cin * r_in + r_in * r_out * kh * kw + r_out * cout >= cout * cin * kh * kw:
        return None
    (core, (u_out, u_in)), _ = partial_tucker(
        w, rank=[r_out, r_in], modes=[0, 1], init="svd", n_iter_max=50
    )
    first = nn.Conv2d(cin, r_in, 1, bias=False)
    mid = nn.Conv2d(r_in, r_out, (kh, kw), conv.stride, conv.padding, conv.dilation, bias=False)
    last = nn.Conv2d(r_out, cout, 1, bias=conv.bias is not None)
    first.weight.data = u_in.t().reshape(r_in, cin, 1, 1).contiguous()
    mid.weight.data = core.contiguous()
    last.weight.data = u_out.reshape(cout, r_out, 1, 1).contiguous()
    if conv.bias is not None:
        last.bias.data = conv.bias.data.clone()
    return nn.Sequential(first, mid, last)


def decompose_model(
    model: nn.Module, rank_ratio: float = 0.5, min_channels: int = 16
) -> tuple[nn.Module, list[str]]:
    """A copy of ``model`` with every dense (groups = 1) conv of >= ``min_channels``
    replaced by its low-rank form where that saves MACs; returns (model, replaced names)."""
    model = copy.deepcopy(model).cpu().eval()
    replaced = []
    for name, m in list(model.named_modules()):
        if (
            isinstance(m, nn.Conv2d)
            and m.groups == 1
            and min(m.in_channels, m.out_channels) >= min_channels
        ):
            new = decompose_conv(m, rank_ratio)
            if new is None:
                continue
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, new)
            replaced.append(name)
    return model, replaced
