"""The parameters pane's two-model rows: the SDXL refiner and its switch point, Stable Cascade's prior.

    refiner [sd_xl_refiner_1.0      ] at [0.8 ]
    prior   [20 ] CFG [4   ] [auto: found beside the decoder]

Tab reaches every field from the rows above; `read` puts them in a recipe (a one-line
RecipeError for what is not a number), `load` fills them from one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from studio.errors import RecipeError

if TYPE_CHECKING:
    from studio.recipe import Recipe


class StageFields(Vertical):
    DEFAULT_CSS = """
    StageFields { height: 2; }
    StageFields #refiner, StageFields #prior { width: 1fr; }
    StageFields #refiner-switch, StageFields #prior-cfg { width: 6; }
    StageFields #prior-steps { width: 5; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("refiner", classes="first")
            yield Input(id="refiner", placeholder="SDXL refiner, or none", compact=True,
                        tooltip="A1111's Refiner: it finishes the base's image from the switch point")
            yield Label("at")
            yield Input("0.8", id="refiner-switch", type="number", compact=True,
                        tooltip="refiner switch: the base's share of the steps, 0..1")
        with Horizontal():
            yield Label("prior", classes="first")
            yield Input("20", id="prior-steps", type="integer", compact=True,
                        tooltip="Stable Cascade: the prior's (stage C's) steps; steps and CFG above are the decoder's")
            yield Label("CFG")
            yield Input("4", id="prior-cfg", type="number", compact=True, tooltip="Stable Cascade: the prior's guidance")
            yield Input(id="prior", placeholder="stage C: found by itself", compact=True,
                        tooltip="Stable Cascade's prior folder; empty: the one beside the decoder")

    def _text(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def _number(self, field: str, kind: type) -> float:
        text = self._text(field)
        try:
            return kind(text)
        except ValueError:
            raise RecipeError(f"{field.replace('-', ' ')} must be a number (got {text!r})") from None

    def read(self, recipe: Recipe) -> Recipe:
        refiner = self._text("refiner")
        return recipe.replace(
            refiner=refiner,
            refiner_switch=self._number("refiner-switch", float) if refiner else recipe.refiner_switch,
            prior=self._text("prior"),
            prior_steps=int(self._number("prior-steps", int)),
            prior_cfg_scale=self._number("prior-cfg", float),
        )

    def load(self, recipe: Recipe) -> None:
        self.query_one("#refiner", Input).value = recipe.refiner
        self.query_one("#refiner-switch", Input).value = f"{recipe.refiner_switch:g}"
        self.query_one("#prior", Input).value = recipe.prior
        self.query_one("#prior-steps", Input).value = str(recipe.prior_steps)
        self.query_one("#prior-cfg", Input).value = f"{recipe.prior_cfg_scale:g}"

    def apply_defaults(self, defaults: dict) -> None:
        """A newly chosen model: its prior is found anew (a stale one would not pair with it)."""
        self.query_one("#prior", Input).value = ""
        if "prior_steps" in defaults:
            self.query_one("#prior-steps", Input).value = str(defaults["prior_steps"])
        if "prior_cfg_scale" in defaults:
            self.query_one("#prior-cfg", Input).value = f"{defaults['prior_cfg_scale']:g}"
