"""A sweep: a base recipe and up to three axes, expanded into ordinary recipes (cells).

Cells go z, then y, then x, x fastest. Each is an ordinary session entry whose
`queued` record carries the sweep's tag (its id, the cell's coordinates, the
axis titles and its labels; checked by `studio.store.records.check_sweep_tag`),
so history, compare, rerun and import see plain entries, and a crashed sweep
can be put back together from its cells alone. Every cell is built and checked
before anything is recorded: a bad value is a one-line error, nothing runs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from studio.recipe import Recipe, RecipeError
from studio.sweeps.axes import Axis, AxisError, parse_axis
from studio.sweeps.wildcards import Wildcards, is_template, resolve_prompts

MAX_CELLS = 10_000


@dataclass(frozen=True)
class Cell:
    recipe: Recipe  # the prompt resolved, when it was a template
    at: tuple[int, int, int]
    labels: tuple[str, str, str]
    template: str = ""  # the prompt with its wildcards, when it had any


@dataclass(frozen=True)
class Sweep:
    base: Recipe
    axes: tuple[Axis | None, Axis | None, Axis | None]
    id: str
    wildcards: Wildcards | None = None

    @classmethod
    def build(
        cls,
        base: Recipe,
        x: str | None,
        y: str | None = None,
        z: str | None = None,
        wildcards: Wildcards | None = None,
        sweep_id: str | None = None,
    ) -> Sweep:
        """Parse and check every axis and every cell; AxisError/RecipeError (one line) before anything runs."""
        axes = tuple(parse_axis(text) if text else None for text in (x, y, z))
        if not any(axes):
            raise AxisError("a sweep needs at least one axis (--x FIELD=v1,v2,...)")
        for axis in axes:
            if axis is not None:
                axis.check(base)
        sweep = cls(base, axes, sweep_id or secrets.token_hex(4), wildcards)  # type: ignore[arg-type]
        count = sweep.count
        if count > MAX_CELLS:
            raise AxisError(f"the sweep has {count} cells; at most {MAX_CELLS}")
        if is_template(base.prompt) or is_template(base.negative_prompt):
            (wildcards or Wildcards([])).check(base.prompt + "\n" + base.negative_prompt)
        sweep.cells()  # every cell validates, its prompt resolves
        return sweep

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(axis) if axis else 1 for axis in self.axes)  # type: ignore[return-value]

    @property
    def count(self) -> int:
        nx, ny, nz = self.shape
        return nx * ny * nz

    @property
    def titles(self) -> tuple[str, str, str]:
        return tuple(axis.title if axis else "" for axis in self.axes)  # type: ignore[return-value]

    def cells(self) -> list[Cell]:
        nx, ny, nz = self.shape
        return [self.cell((i, j, k)) for k in range(nz) for j in range(ny) for i in range(nx)]

    def cell(self, at: tuple[int, int, int]) -> Cell:
        recipe = self.base
        labels = []
        for axis, index in zip(self.axes, at):
            if axis is None:
                labels.append("")
                continue
            try:
                recipe = axis.apply(recipe, index)
            except RecipeError as exc:
                raise AxisError(f"{axis.labels[index]}: {exc}") from None
            labels.append(axis.labels[index])
        recipe, template = resolve_prompts(recipe, self.wildcards)
        return Cell(recipe, at, tuple(labels), template)  # type: ignore[arg-type]

    def cell_tag(self, cell: Cell) -> dict[str, Any]:
        """What the cell's `queued` record carries."""
        return {"id": self.id, "at": list(cell.at), "shape": list(self.shape),
                "axes": list(self.titles), "labels": list(cell.labels)}

    def describe(self) -> str:
        nx, ny, nz = self.shape
        parts = [f"{axis.title} ({len(axis)})" for axis in self.axes if axis]
        return f"sweep {self.id}: {' × '.join(parts)} = {nx * ny * nz} cells"


def grid_tag(cell_tag: dict[str, Any], cell_ids: list[int]) -> dict[str, Any]:
    """A grid entry's tag, from any of its cells' tags and every cell's entry id (0 where none)."""
    return {"id": cell_tag["id"], "shape": list(cell_tag["shape"]), "axes": list(cell_tag["axes"]), "cells": cell_ids}
