"""Find modules whose work the official counter cannot see (the competition's rule).

ptflops prices a module only when ``type(module)`` is *exactly* a key of its table, and it
does not patch ``F.conv2d``. So ``class MyConv(nn.Conv2d)`` with its own ``forward`` calling
``F.conv2d`` is worth 0 MACs to it - a way to "win" that the rules forbid. The guard lists
every such module, and every parameter-owning leaf the counter does not know.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn

COUNTED_BASES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.ConvTranspose2d,
    nn.modules.batchnorm._BatchNorm,
)


@dataclass(frozen=True)
class Escape:
    name: str
    cls: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.cls}): {self.reason}"


def _ptflops_types() -> set[type]:
    from ptflops.pytorch_ops import MODULES_MAPPING

    return set(MODULES_MAPPING)


def find_escapes(model: nn.Module) -> list[Escape]:
    """Modules the official MACs count would miss, with the reason for each."""
    known = _ptflops_types()
    out = []
    for name, m in model.named_modules():
        t = type(m)
        if isinstance(m, COUNTED_BASES) and t not in known:
            base = next(b for b in t.__mro__[1:] if b in known or b in COUNTED_BASES)
            try:
                src = inspect.getsource(t.forward) if "forward" in t.__dict__ else ""
            except (OSError, TypeError):
                src = ""
            calls = [
                f for f in ("F.conv2d", "F.conv1d", "F.linear", "conv2d(", "linear(") if f in src
            ]
            how = (
                f"its own forward calls {calls[0].rstrip('(')}"
                if calls
                else "a subclass ptflops does not recognise"
            )
            out.append(
                Escape(
                    name or "<root>",
                    t.__name__,
                    f"subclass of nn.{base.__name__}; {how}: invisible to the "
                    "official MACs counter",
                )
            )
        elif (
            not list(m.children())
            and t not in known
            and any(True for _ in m.parameters(recurse=False))
        ):
            out.append(
                Escape(
                    name or "<root>",
                    t.__name__,
                    "owns parameters but is unknown to the official counter: its "
                    "MACs would count as 0",
                )
            )
    return out


def check_countable(model: nn.Module) -> None:
    """Raise ``ValueError`` listing every escaping module (use before scoring a model)."""
    escapes = find_escapes(model)
    if escapes:
        raise ValueError(
            "model has layers the official MACs counter cannot see:\n  "
            + "\n  ".join(map(str, escapes))
        )
