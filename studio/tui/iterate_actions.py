"""The keys that take an image further: img2img, a variation, the mask painter, the form's init image.

A mixin of StudioApp, beside HistoryActions. The form supplies the prompt and
the parameters pane the strengths; the entry supplies the image (and, for a
variation, the whole recipe). `I` holds an entry's image in the form as its
init image (the painter holds its mask there too), so ctrl+g keeps making
img2img or inpaint jobs, new seeds and all, until f12 clears them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import RecipeError
from studio.printable import printable

if TYPE_CHECKING:
    from studio.recipe import Recipe


class IterateActions:
    # Set by StudioApp / HistoryActions.
    session: Any
    params: Any
    prompt_pane: Any
    base: Recipe

    def _entry_image(self) -> tuple[Any, Path] | None:
        entry = self.highlighted_entry()
        if entry is None:
            return None
        if not entry.images:
            self.notify(f"#{entry.id} has no image ({entry.status})", severity="warning")
            return None
        from studio.tui.widgets.preview import read_image

        path = self.session.image_path(entry.images[0])
        problem = read_image(path)  # deleted, moved or damaged since it was made: one line, not a crash
        if isinstance(problem, str):
            self.notify(problem, severity="error")
            return None
        return entry, path

    def _over(self, entry: Any, image: Path, mask: Path | None = None) -> Recipe | None:
        """The form's recipe over the entry's image, at its size and the form's strength."""
        from studio.iterate import with_init

        if not self.params.ready:
            return None
        try:  # the form without its own init image and mask: the entry's image replaces them
            recipe = self.params.read(self.base, init=False).replace(
                prompt=self.prompt_pane.prompt, negative_prompt=self.prompt_pane.negative)
            recipe = recipe.replace(width=entry.recipe.width, height=entry.recipe.height,
                                    strength=self.params.fraction("strength"), variation_strength=0.0)
            return with_init(recipe, image, mask)
        except RecipeError as exc:
            self.notify(printable(str(exc)), title="cannot generate", severity="error")
            return None

    def action_img2img(self) -> None:
        found = self._entry_image()
        recipe = found and self._over(*found)
        if recipe:
            self.submit([recipe])
            self.notify(f"img2img over #{found[0].id} at strength {recipe.strength:g}")

    def action_set_init(self) -> None:
        """Hold the entry's image as the form's init image: every generate is img2img until f12."""
        found = self._entry_image()
        if found is None or not self.params.ready:
            return
        entry, image = found
        self.params.set_init(str(image.resolve()), "", size=entry.recipe.size)
        self.notify(f"init image: #{entry.id} (strength {self.params._value('strength')}); f12 clears it")

    def action_clear_init(self) -> None:
        if not self.params.ready:
            return
        had = self.params.init_image
        self.params.set_init("", "")
        self.notify("init image and mask cleared: text-to-image" if had else "no init image to clear")

    def action_variation(self) -> None:
        from studio.recipe import random_seed

        entry = self.highlighted_entry()
        if entry is None or not self.params.ready:
            return
        try:
            strength = self.params.fraction("variation")
            recipe = entry.recipe.replace(variation_seed=random_seed(), variation_strength=strength)
        except RecipeError as exc:
            self.notify(printable(str(exc)), title="cannot vary", severity="error")
            return
        self.submit([recipe])
        self.notify(f"variation of #{entry.id}: seed {recipe.variation_seed} at {strength:g}")

    def action_upscale(self) -> None:
        """The entry's image at twice the size by the built-in upscaler, as a new entry."""
        from studio.upscale.job import upscale_recipe
        from studio.upscale.upscalers import BUILTIN_UPSCALER, resolve_upscaler

        found = self._entry_image()
        if found is None:
            return
        entry, image = found
        try:
            recipe = upscale_recipe(image, resolve_upscaler(BUILTIN_UPSCALER), 2.0, device=entry.recipe.device)
        except RecipeError as exc:
            self.notify(printable(str(exc)), title="cannot upscale", severity="error")
            return
        self.submit([recipe])
        self.notify(f"upscaling #{entry.id} 2x with {BUILTIN_UPSCALER}")

    def action_paint_mask(self) -> None:
        from studio.tui.widgets.mask_painter import MaskPainter

        found = self._entry_image()
        if found is None:
            return
        entry, image = found
        mask_path = _free(self.session.path, f"{entry.stem}-mask")

        def painted(mask: Path | None) -> None:
            recipe = mask and self._over(entry, image, mask)
            if recipe:
                # held in the form too: ctrl+g inpaints the same region again, new seed and all
                self.params.set_init(recipe.init_image, recipe.mask, size=entry.recipe.size)
                self.submit([recipe])
                self.notify(f"inpainting #{entry.id} under {mask.name}")

        self.push_screen(MaskPainter(image, mask_path), painted)


def _free(folder: Path, stem: str) -> Path:
    path, n = folder / f"{stem}.png", 2
    while path.exists():
        path, n = folder / f"{stem}-{n}.png", n + 1
    return path
