"""Which upscaler architecture a weights file holds, and its scale, from tensor names and shapes.

Read from the safetensors header (or a state dict's shapes); nothing is loaded
or run. The families are those spandrel loads (ESRGAN, Real-ESRGAN's RRDB and
compact SRVGG, SwinIR, HAT, DAT, SPAN) and studio's own `studio-sr`.
"""

from __future__ import annotations

import math
import re

Shapes = dict[str, tuple[int, ...]]


def upscaler_architecture(shapes: Shapes, metadata: dict[str, str] | None = None) -> tuple[str, int]:
    """(architecture, scale); ("", 0) when the tensors are no upscaler studio knows. Scale 0: not told."""
    metadata = metadata or {}
    if metadata.get("architecture") == "studio-sr":
        return "studio-sr", int(metadata.get("scale", "2"))
    keys = set(shapes)
    if "conv_first.weight" in keys and any(".rdb1." in k for k in keys):  # Real-ESRGAN's RRDBNet
        # 2x and 1x models pixel-unshuffle their input: 12 or 48 input channels
        return "ESRGAN (RRDB)", {3: 4, 12: 2, 48: 1}.get(shapes["conv_first.weight"][1], 4)
    if "model.0.weight" in keys and any(".RDB1." in k for k in keys):  # the original ESRGAN layout
        tops = sorted({int(m[1]) for k in keys if (m := re.match(r"model\.(\d+)\.weight$", k))})
        return "ESRGAN", 2 ** max(len(tops) - 3, 0)  # head conv, two tail convs, one conv per 2x
    if any("residual_group.blocks" in k for k in keys) or any(k.startswith("layers.") and ".attns." in k for k in keys):
        if any("overlap_attn" in k or ".conv_block." in k for k in keys):
            name = "HAT"
        elif any(".attns." in k for k in keys):
            name = "DAT"
        else:
            name = "SwinIR"
        return name, _upsample_scale(shapes)
    if any(k.startswith("block_1.c1_r") for k in keys):
        return "SPAN", _shuffle_scale(shapes, "upsampler.0.weight")
    bodies = sorted(int(m[1]) for k in keys if (m := re.match(r"body\.(\d+)\.weight$", k)))
    if bodies and "body.1.weight" in keys and len(shapes["body.1.weight"]) == 1:  # convs and PReLUs: SRVGG
        return "Real-ESRGAN compact (SRVGG)", _shuffle_scale(shapes, f"body.{bodies[-1]}.weight")
    return "", 0


def _shuffle_scale(shapes: Shapes, key: str) -> int:
    """The scale of a final conv feeding a pixel shuffle to RGB: out channels = 3 * scale²."""
    if key not in shapes:
        return 0
    scale = math.isqrt(max(shapes[key][0] // 3, 1))
    return scale if 3 * scale * scale == shapes[key][0] else 0


def _upsample_scale(shapes: Shapes) -> int:
    """Transformer upscalers: one 4x-channel conv per 2x stage, or a direct shuffle."""
    convs = sorted(int(m[1]) for k in shapes if (m := re.match(r"upsample\.(\d+)\.weight$", k)))
    if not convs:
        return 1
    if len(convs) == 1:
        direct = _shuffle_scale(shapes, "upsample.0.weight")
        if direct:
            return direct
        return 3 if shapes["upsample.0.weight"][0] == 9 * shapes["upsample.0.weight"][1] else 2
    return 2 ** len(convs)
