"""What follows the form's model: the samplers its architecture can use, and the live preview kind (f11).

A mixin of StudioApp, beside HistoryActions and IterateActions. Flux and SD3
sample by flow matching, so the parameters pane offers only the samplers such
a model can use (studio/models/architectures.py knows them); a sampler the
new model cannot use is replaced, in one line. Stable Cascade samples with its own
scheduler: the list shows that one alone. f11 cycles the live previews:
x0 (the clean estimate), latent, TAESD, off. Pane 4's key (or its button) opens
the model picker, and the model picked fills the form with its defaults.
"""

from __future__ import annotations

from typing import Any

from studio.printable import printable


class ModelActions:
    # Set by StudioApp.
    studio: Any
    library: Any
    params: Any
    prompt_pane: Any
    base: Any
    screen: Any
    push_screen: Any
    preload: Any
    notify: Any

    def on_params_pane_model_changed(self, event: Any) -> None:
        model = event.model.strip()
        if not model:
            return
        try:
            allowed, own = self.library.samplers(model), self.library.own_scheduler(model)
        except Exception:  # a half-typed name or an unreadable folder: offer every sampler
            allowed, own = None, ""
        dropped = self.params.set_samplers(allowed, own)
        if dropped and own:
            self.notify(printable(f"{model} samples with its own scheduler ({own}): sampler {dropped!r} does not apply"),
                        markup=False)
        elif dropped:
            self.notify(printable(f"{model} cannot use sampler {dropped!r}: it samples by flow matching"
                                  f" ({' or '.join(allowed or ())})"), markup=False)

    def action_cycle_preview(self) -> None:
        from studio.engine.preview_choice import next_kind

        choice = next_kind(self.studio.preview)
        self.studio.set_preview(choice)
        words = {"x0": "the clean estimate (x0)", "latent": "the noisy latents", "none": "off",
                 "taesd": f"TAESD {choice.name or '(the one for the model)'}"}
        self.notify(printable(f"live previews: {words[choice.kind]}"), markup=False)

    def action_pick_model(self) -> None:
        from studio.tui.widgets.model_picker import ModelPicker

        if isinstance(self.screen, ModelPicker):
            return
        self.push_screen(ModelPicker(self.base.model, self.library), self._model_chosen)

    def _model_chosen(self, model: str | None) -> None:
        if not model:
            return
        params = self.params
        params.set_model(model)
        params.apply_defaults(self.library.defaults(model))
        self.prompt_pane.set_tokenizer(self.library.tokenizer_folder(model))
        self.preload()
