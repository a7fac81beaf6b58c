"""The layer explorer of chapter 2: pick a layer, see MACs, params and memory access."""

from __future__ import annotations

import pandas as pd

from . import formulas as fm

LAYERS = (
    "conv",
    "depthwise conv",
    "group conv",
    "linear",
    "batchnorm",
    "hardswish",
    "squeeze-excite",
)


def layer_cost(
    layer: str,
    cin: int = 32,
    cout: int = 64,
    kernel: int = 3,
    stride: int = 1,
    groups: int = 4,
    resolution: int = 56,
) -> fm.Cost:
    """Cost of one layer on a ``cin x resolution x resolution`` input ('same' padding)."""
    pad = kernel // 2
    r = resolution
    if layer == "conv":
        return fm.conv2d(cin, cout, r, r, kernel, stride, pad)
    if layer == "depthwise conv":
        return fm.conv2d(cin, cin, r, r, kernel, stride, pad, groups=cin)
    if layer == "group conv":
        return fm.conv2d(cin, cout, r, r, kernel, stride, pad, groups=groups)
    if layer == "linear":
        return fm.linear(cin, cout)
    if layer == "batchnorm":
        return fm.batchnorm((1, cin, r, r))
    if layer == "hardswish":
        return fm.activation("Hardswish", (1, cin, r, r))
    if layer == "squeeze-excite":
        return fm.total(fm.squeeze_excite(cin, max(8, cin // 4), r, r))
    raise ValueError(f"unknown layer {layer!r}; choose from {LAYERS}")


def static_table(resolution: int = 56, cin: int = 64, cout: int = 64) -> pd.DataFrame:
    """The headless fallback: every layer type at one setting, side by side, with its
    arithmetic intensity (MACs per element moved, and per byte in float32)."""
    rows = []
    for layer in LAYERS:
        c = layer_cost(layer, cin, cout, 3, 1, 4, resolution)
        rows.append(
            {
                "layer": layer,
                "out shape": c.out_shape,
                "params": c.params,
                "MACs": c.macs,
                "FLOPs": c.flops,
                "memory access (elements)": c.mem,
                "MACs per element moved": round(c.macs / max(1, c.mem), 2),
                "MACs per byte (fp32)": round(fm.arithmetic_intensity(c, 4), 3),
            }
        )
    return pd.DataFrame(rows).set_index("layer")


def explorer():
    """ipywidgets sliders -> live cost of the chosen layer (JupyterLab only)."""
    import ipywidgets as w
    from IPython.display import display

    out = w.Output()
    ctl = {
        "layer": w.Dropdown(options=LAYERS, description="layer"),
        "cin": w.IntSlider(32, 1, 512, description="in ch"),
        "cout": w.IntSlider(64, 1, 512, description="out ch"),
        "kernel": w.IntSlider(3, 1, 7, step=2, description="kernel"),
        "stride": w.IntSlider(1, 1, 2, description="stride"),
        "groups": w.IntSlider(4, 1, 32, description="groups"),
        "resolution": w.IntSlider(56, 7, 224, description="resolution"),
    }

    def show(**kw):
        out.clear_output()
        with out:
            try:
                c = layer_cost(**kw)
                display(
                    pd.Series(
                        {
                            "out shape": c.out_shape,
                            "params": c.params,
                            "MACs": c.macs,
                            "FLOPs": c.flops,
                            "memory access (elements)": c.mem,
                        }
                    ).to_frame("value")
                )
            except ValueError as exc:
                print(exc)

    w.interactive_output(show, ctl)
    return w.VBox([w.HBox(list(ctl.values())[:4]), w.HBox(list(ctl.values())[4:]), out])
