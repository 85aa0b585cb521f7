"""Synthetic, fully documented training data for the built-in ``studio-tiny`` model.

Every sample is a 64x64 RGB image holding one flat-coloured object (a circle, a
square or an upright isosceles triangle) on a flat background of a *different*
palette colour.  Drawing is done with PIL without anti-aliasing, so every pixel
of a training image is exactly one of the eight palette colours.

Captions
--------
The basic form (used for half of the samples, and the form evaluation uses) is::

    a {colour} {shape} on a {colour} background

The other half carry extra attributes that describe the same image more
precisely, in the same word order::

    a [small|large] {colour} {shape} [at the {position}] on a {colour} background

where ``position`` is one of ``top left, top, top right, left, center, right,
bottom left, bottom, bottom right``.  A basic caption therefore means "any
size, anywhere", and the model learns the attributes as optional refinements.

Everything is driven by a ``numpy.random.Generator``; the same seed gives the
same images and captions on every machine.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
MARGIN = 3  # objects never touch the outer MARGIN pixels, so the border is pure background

# The usual (CSS / X11 web) sRGB values of the colour names.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "purple": (128, 0, 128),
    "orange": (255, 165, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
COLOURS: list[str] = list(PALETTE)
SHAPES: list[str] = ["circle", "square", "triangle"]

# Object side length (bounding box, pixels).  "small"/"large" captions use the
# lower/upper part of the range; unqualified captions use all of it.
SIZE_RANGE = (18, 46)
SIZE_WORDS = {"small": (18, 28), "large": (36, 46)}

POSITIONS = [
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
]

# Probability that a sample's caption carries the size / position attribute.
P_RICH = 0.5
P_SIZE_WORD = 0.6
P_POSITION = 0.6

VOCAB_WORDS = sorted(
    {"a", "on", "at", "the", "background"}
    | set(COLOURS) | set(SHAPES) | set(SIZE_WORDS)
    | {w for p in POSITIONS for w in p.split()}
)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour) -> None:
    """Draw ``shape`` filling the bounding ``box`` (x0, y0, x1, y1; inclusive)."""
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _position_of(cx: float, cy: float, side: int) -> str:
    """The 3x3 grid cell name of an object centre, relative to its allowed range."""
    lo = MARGIN + side / 2
    hi = SIZE - MARGIN - side / 2
    span = max(hi - lo, 1e-6)
    col = min(2, int(3 * (cx - lo) / span)) if hi > lo else 1
    row = min(2, int(3 * (cy - lo) / span)) if hi > lo else 1
    name = {(0, 0): "top left", (0, 1): "top", (0, 2): "top right",
            (1, 0): "left", (1, 1): "center", (1, 2): "right",
            (2, 0): "bottom left", (2, 1): "bottom", (2, 2): "bottom right"}
    return name[(row, col)]


def make_sample(rng: np.random.Generator, rich: bool | None = None, scale: int = 1):
    """Draw one image and its caption.

    ``rich`` forces (True) or forbids (False) the optional size/position words;
    ``None`` picks at random with probability ``P_RICH``.  ``scale`` draws the
    same picture at ``scale`` times the size (every pixel of the 64x64 layout
    becomes a ``scale``-square block of edges drawn sharp at the higher
    resolution): the true high-resolution render the built-in upscaler learns.
    Returns ``(PIL.Image (RGB, 64*scale square), caption)``.
    """
    obj_i = int(rng.integers(len(COLOURS)))
    bg_i = int(rng.integers(len(COLOURS) - 1))
    if bg_i >= obj_i:
        bg_i += 1
    obj, bg = COLOURS[obj_i], COLOURS[bg_i]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    if rich is None:
        rich = bool(rng.random() < P_RICH)

    size_word = None
    position = None
    if rich:
        if rng.random() < P_SIZE_WORD:
            size_word = list(SIZE_WORDS)[int(rng.integers(len(SIZE_WORDS)))]
        if rng.random() < P_POSITION or size_word is None:
            position = POSITIONS[int(rng.integers(len(POSITIONS)))]

    lo, hi = SIZE_WORDS[size_word] if size_word else SIZE_RANGE
    side = int(rng.integers(lo, hi + 1))
    c_lo = MARGIN + side / 2
    c_hi = SIZE - MARGIN - side / 2
    if position is None:
        cx = rng.uniform(c_lo, c_hi)
        cy = rng.uniform(c_lo, c_hi)
    else:
        idx = POSITIONS.index(position)
        row, col = divmod(idx, 3)
        third = (c_hi - c_lo) / 3
        cx = c_lo + third * (col + rng.uniform(0.1, 0.9))
        cy = c_lo + third * (row + rng.uniform(0.1, 0.9))
    x0 = int(round(cx - side / 2))
    y0 = int(round(cy - side / 2))
    x0 = min(max(x0, MARGIN), SIZE - MARGIN - side)
    y0 = min(max(y0, MARGIN), SIZE - MARGIN - side)
    box = (x0, y0, x0 + side - 1, y0 + side - 1)

    img = Image.new("RGB", (SIZE * scale, SIZE * scale), PALETTE[bg])
    if scale != 1:
        box = (x0 * scale, y0 * scale, (x0 + side) * scale - 1, (y0 + side) * scale - 1)
    draw_shape(ImageDraw.Draw(img), shape, box, PALETTE[obj])

    words = ["a"]
    if size_word:
        words.append(size_word)
    words += [obj, shape]
    if position:
        words += ["at", "the", position]
    words += ["on", "a", bg, "background"]
    return img, " ".join(words)


def basic_caption(obj: str, shape: str, bg: str) -> str:
    return f"a {obj} {shape} on a {bg} background"


_CAPTION_RE = re.compile(
    r"^\s*an?\s+(?:(?:small|large)\s+)?(?P<obj>\w+)\s+(?P<shape>\w+)\s+"
    r"(?:at\s+the\s+[\w ]+?\s+)?on\s+an?\s+(?P<bg>\w+)\s+background\s*$"
)


def parse_caption(caption: str) -> tuple[str, str, str]:
    """``"a red circle on a blue background"`` -> ``("red", "circle", "blue")``.

    Also accepts the richer form with size and position words.  Raises
    ``ValueError`` for anything else.
    """
    m = _CAPTION_RE.match(caption.lower())
    if not m or m["obj"] not in PALETTE or m["bg"] not in PALETTE or m["shape"] not in SHAPES:
        raise ValueError(f"not a studio-tiny caption: {caption!r}")
    return m["obj"], m["shape"], m["bg"]


_RICH_RE = re.compile(
    r"^\s*an?\s+(?:(?P<size>small|large)\s+)?\w+\s+\w+\s+(?:at\s+the\s+(?P<pos>[\w ]+?)\s+)?on\s+"
)


def parse_attributes(caption: str) -> tuple[str | None, str | None]:
    """The optional size word and position of a caption, ``None`` where absent.

    ``"a small red circle at the top left on a blue background"`` -> ``("small", "top left")``.
    """
    parse_caption(caption)  # the same errors for what is not a caption at all
    m = _RICH_RE.match(caption.lower())
    pos = m["pos"] if m else None
    if pos is not None and pos not in POSITIONS:
        raise ValueError(f"unknown position {pos!r} in {caption!r}")
    return (m["size"] if m else None), pos


def make_batch(rng: np.random.Generator, n: int):
    """``n`` samples as a float array (n, 3, 64, 64) in [-1, 1] and a caption list."""
    arr = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    caps = []
    for i in range(n):
        img, cap = make_sample(rng)
        arr[i] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        caps.append(cap)
    return arr, caps


if __name__ == "__main__":  # write a contact sheet for a quick look
    import sys

    rng = np.random.default_rng(0)
    sheet = Image.new("RGB", (8 * SIZE, 8 * SIZE))
    for i in range(64):
        img, cap = make_sample(rng)
        print(cap)
        sheet.paste(img, ((i % 8) * SIZE, (i // 8) * SIZE))
    sheet.save(sys.argv[1] if len(sys.argv) > 1 else "/tmp/studio_tiny_sheet.png")
