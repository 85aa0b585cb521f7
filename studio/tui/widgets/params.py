"""The parameters pane: steps, CFG, size, seed (locked or random), sampler, count, model, init image and mask,
the refiner and Stable Cascade's prior (widgets/stage_fields.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select

from studio.errors import RecipeError
from studio.samplers import SAMPLERS
from studio.tui.widgets.stage_fields import StageFields

if TYPE_CHECKING:
    from studio.recipe import Recipe


class ParamsPane(Vertical):
    """Pane 2. `read()` turns the fields into a Recipe or a one-line RecipeError.

    The fields mount just after the first paint (the pane's frame is there at
    once): they are the costliest part of the window to build, and the prompt,
    which has focus, is what the artist needs first.
    """

    BORDER_TITLE = "2 Parameters"
    _offered: list[str] = list(SAMPLERS)  # the sampler list as the select now shows it
    _own: str = ""  # the model's own scheduler, shown in place of the list (Stable Cascade)

    class PickModel(Message):
        """The artist asked for the model picker."""

    class Ready(Message):
        """The fields are mounted and can be read and filled."""

    class ModelChanged(Message):
        """The model field now names `model` (typed, picked or loaded): the app narrows the samplers to it."""

        def __init__(self, model: str) -> None:
            super().__init__()
            self.model = model

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "model":
            self.post_message(self.ModelChanged(event.value))

    def set_samplers(self, allowed: tuple[str, ...] | None, own: str = "") -> str | None:
        """Offer only `allowed` (None: every sampler), or, for a model with its `own` scheduler, that one
        alone (under the default sampler's value, which it does not use); returns the sampler it dropped."""
        select = self.query_one("#sampler", Select)
        names = [name for name in SAMPLERS if allowed is None or name in allowed]
        current = str(select.value)
        if (names, own) == (self._offered, self._own):
            return None
        self._offered, self._own = names, own
        select.set_options([(f"{own} (its own)" if own else name, name) for name in names])
        select.value = current if current in names else names[0]
        return None if current in names else current

    def _select_sampler(self, name: str) -> None:
        """Show `name`, offering every sampler again if the narrowed list lacks it (the model's check follows)."""
        select = self.query_one("#sampler", Select)
        if name not in self._offered or self._own:
            self._offered, self._own = list(SAMPLERS), ""
            select.set_options([(sampler, sampler) for sampler in SAMPLERS])
        select.value = name

    def on_mount(self) -> None:
        self.call_after_refresh(self.mount, ParamsFields())  # the fields: just after the first frame

    @property
    def ready(self) -> bool:
        return bool(self.query(ParamsFields))

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    @property
    def seed_locked(self) -> bool:
        return self.query_one("#seed-lock", Checkbox).value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "pick-model":
            event.stop()
            self.post_message(self.PickModel())

    @property
    def count(self) -> int:
        try:
            count = int(self._value("count") or 1)
        except ValueError:
            raise RecipeError("count must be a whole number") from None
        if not 1 <= count <= 100:
            raise RecipeError(f"count must be between 1 and 100 (got {count})")
        return count

    def fraction(self, field: str) -> float:
        """The img2img strength or the variation strength, in 0..1 (one-line RecipeError otherwise)."""
        text = self._value(field)
        try:
            value = float(text)
        except ValueError:
            raise RecipeError(f"{field} must be a number between 0 and 1 (got {text!r})") from None
        if not 0 <= value <= 1:
            raise RecipeError(f"{field} must be between 0 and 1 (got {value:g})")
        return value

    def read(self, base: Recipe, reroll: bool = True, init: bool = True) -> Recipe:
        """The form as a recipe on top of `base` (device, dtype...).

        With `reroll`, an unlocked seed is replaced by a new random one, shown in the form;
        with `init`, the recipe is over the form's init image and mask, if it holds one.
        """
        from studio.recipe import parse_size, random_seed  # after the first frame (app.py's docstring)

        numbers: dict[str, object] = {}
        for field, name, kind in (("steps", "steps", int), ("cfg", "cfg_scale", float), ("seed", "seed", int)):
            text = self._value(field)
            try:
                numbers[name] = kind(text)
            except ValueError:
                raise RecipeError(f"{field} must be a number (got {text!r})") from None
        if reroll and not self.seed_locked:
            numbers["seed"] = random_seed()
            self.query_one("#seed", Input).value = str(numbers["seed"])
        width, height = parse_size(self._value("size"))
        model = self._value("model") or base.model
        sampler = self.query_one("#sampler", Select).value
        recipe = base.replace(model=model, sampler=str(sampler), width=width, height=height, **numbers)
        recipe = self.query_one(StageFields).read(recipe)  # the refiner, Stable Cascade's prior
        return self._over_init(recipe) if init else recipe

    @property
    def init_image(self) -> str:
        """The init image the form holds ("" for text-to-image)."""
        return self._value("init")

    def _over_init(self, recipe: Recipe) -> Recipe:
        """`recipe` over the form's init image and mask, at the form's strength (hashed now)."""
        init, mask = self._value("init"), self._value("mask")
        if not init:
            if mask:
                raise RecipeError("a mask needs an init image to paint over (the init field, or I on an entry)")
            return recipe
        from pathlib import Path

        from studio.iterate import with_init

        recipe = recipe.replace(strength=self.fraction("strength"))
        return with_init(recipe, Path(init).expanduser(), Path(mask).expanduser() if mask else None)

    def set_init(self, image: str = "", mask: str = "", size: str = "") -> None:
        """Hold an init image (and mask) for every generate until cleared; "" clears."""
        self.query_one("#init", Input).value = image
        self.query_one("#mask", Input).value = mask
        if size:
            self.query_one("#size", Input).value = size

    def load(self, recipe: Recipe, lock_seed: bool = True) -> None:
        """Fill the form from a recipe (branching from a history entry locks its seed)."""
        self.query_one("#model", Input).value = recipe.model
        self.query_one("#steps", Input).value = str(recipe.steps)
        self.query_one("#cfg", Input).value = f"{recipe.cfg_scale:g}"
        self.query_one("#size", Input).value = recipe.size
        self.query_one("#seed", Input).value = str(recipe.seed)
        self.query_one("#seed-lock", Checkbox).value = lock_seed
        if recipe.sampler in SAMPLERS:
            self._select_sampler(recipe.sampler)
        self.set_init(recipe.init_image, recipe.mask)
        self.query_one(StageFields).load(recipe)
        if recipe.init_image:
            self.query_one("#strength", Input).value = f"{recipe.strength:g}"

    def apply_defaults(self, defaults: dict) -> None:
        """A model's recommended settings (studio.toml beside it)."""
        if "steps" in defaults:
            self.query_one("#steps", Input).value = str(defaults["steps"])
        if "cfg_scale" in defaults:
            self.query_one("#cfg", Input).value = f"{defaults['cfg_scale']:g}"
        if "width" in defaults and "height" in defaults:
            self.query_one("#size", Input).value = f"{defaults['width']}x{defaults['height']}"
        if defaults.get("sampler") in SAMPLERS:
            self._select_sampler(defaults["sampler"])
        self.query_one(StageFields).apply_defaults(defaults)

    def set_model(self, model: str) -> None:
        self.query_one("#model", Input).value = model

    def set_seed(self, seed: int, lock: bool | None = None) -> None:
        self.query_one("#seed", Input).value = str(seed)
        if lock is not None:
            self.query_one("#seed-lock", Checkbox).value = lock


class ParamsFields(Vertical):
    """The fields themselves, eight rows that fit a 40-column pane (an 80-column terminal).

    The model and the sampler have a row each, so "DPM++ 2M SDE Karras" shows whole;
    the seed has room for all ten digits with its lock beside it, never over it.
    """

    # Here, not in studio.tcss: parsed when the fields mount, just after the first frame.
    DEFAULT_CSS = """
    ParamsFields { height: 8; }
    ParamsFields Label { color: $text-muted; width: auto; margin: 0 1 0 1; }
    ParamsFields Label.first { width: 7; margin: 0 1 0 0; }
    ParamsFields Horizontal { height: 1; }
    ParamsFields #model { width: 1fr; }
    ParamsFields #sampler {
        width: 1fr;
        max-width: 32;  /* the longest name, "DPM++ 2M SDE Karras", with room to spare */
    }
    ParamsFields #pick-model { width: 3; min-width: 3; margin-left: 1; }
    ParamsFields #steps, ParamsFields #cfg { width: 5; }
    ParamsFields #size { width: 11; }
    ParamsFields #seed { width: 11; }  /* a 32-bit seed's ten digits and the cursor */
    ParamsFields #seed-lock { width: auto; margin-left: 1; }
    ParamsFields #count { width: 4; }
    ParamsFields #init, ParamsFields #mask { width: 1fr; }
    ParamsFields #strength, ParamsFields #variation { width: 6; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("model", classes="first")
            yield Input(id="model", placeholder="name or path", compact=True)
            yield Button("…", id="pick-model", tooltip="choose a local model (ctrl+o)", compact=True)
        with Horizontal():
            yield Label("sampler", classes="first")
            yield Select(
                [(name, name) for name in SAMPLERS], id="sampler", allow_blank=False, compact=True
            )
        with Horizontal():
            yield Label("steps", classes="first")
            yield Input("20", id="steps", type="integer", compact=True)
            yield Label("CFG")
            yield Input("7.0", id="cfg", type="number", compact=True)
            yield Label("size")
            yield Input("512x512", id="size", placeholder="WxH", compact=True)
        with Horizontal():
            yield Label("seed", classes="first")
            yield Input("0", id="seed", type="integer", compact=True)
            yield Checkbox("lock", id="seed-lock", tooltip="off: a new random seed each generate", compact=True)
            yield Label("count")
            yield Input("1", id="count", type="integer", tooltip="jobs per generate, seeds counting up", compact=True)
        with Horizontal():
            yield Label("init", classes="first")
            yield Input(id="init", placeholder="file, or I in history", compact=True,
                        tooltip="img2img from this image on every generate; f12 clears it")
            yield Label("str")
            yield Input("0.75", id="strength", type="number", compact=True,
                        tooltip="img2img and inpaint: how much to repaint, 0..1")
        with Horizontal():
            yield Label("mask", classes="first")
            yield Input(id="mask", placeholder="file, or m in history", compact=True,
                        tooltip="inpaint where white (needs an init image); f12 clears it")
            yield Label("vary")
            yield Input("0.3", id="variation", type="number", compact=True,
                        tooltip="a variation (V in history): how far from the entry, 0..1")
        yield StageFields()

    def on_mount(self) -> None:
        self.post_message(ParamsPane.Ready())
