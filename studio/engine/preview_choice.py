"""Which live preview to draw: plain data, parsed from the config, `--preview` and the TUI.

- `x0`: the sampler's clean estimate through the latent projection (the default:
  readable from the first steps, and it costs one tensor operation a preview);
- `latent`: the noisy latents through the same projection;
- `taesd` / `taesd:NAME`: a TAESD-family decoder the user has (A1111
  `models/VAE-taesd`, ComfyUI `models/vae_approx`), of the clean estimate;
  the one matching the model's architecture unless NAME picks one;
- `none`: no previews.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("x0", "latent", "taesd", "none")
DEFAULT = "x0"


@dataclass(frozen=True)
class PreviewChoice:
    kind: str = DEFAULT
    name: str = ""  # the TAESD decoder asked for by name ("" picks by architecture); kept through the TUI's cycle

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name and self.kind == "taesd" else self.kind

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


def parse_preview(text: str | bool | PreviewChoice) -> PreviewChoice:
    """`x0`, `latent`, `taesd`, `taesd:NAME` or `none` (True/False: the default, none); one-line ValueError."""
    if isinstance(text, PreviewChoice):
        return text
    if isinstance(text, bool):
        return PreviewChoice(DEFAULT if text else "none")
    kind, _, name = str(text).strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS or (name and kind != "taesd"):
        raise ValueError(f"preview must be one of x0, latent, taesd, taesd:NAME or none (got {text!r})")
    return PreviewChoice(kind, name.strip())


def next_kind(choice: PreviewChoice) -> PreviewChoice:
    """The TUI's cycle: x0 → latent → taesd → none → x0 (a named decoder keeps its name)."""
    return PreviewChoice(KINDS[(KINDS.index(choice.kind) + 1) % len(KINDS)], choice.name)
