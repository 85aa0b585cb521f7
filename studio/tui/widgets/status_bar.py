"""The status bar: engine state, progress bar, step k/n, it/s, ETA, device, GPU memory."""

from __future__ import annotations

import sys
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static


def gpu_memory(device: str) -> str:
    """Allocated / reserved CUDA memory, if the worker has already imported torch."""
    torch = sys.modules.get("torch")  # never import it here: the UI stays light
    if torch is None or not device.startswith("cuda"):
        return ""
    try:
        gib = 1024**3
        used = torch.cuda.memory_allocated() / gib
        reserved = torch.cuda.memory_reserved() / gib
        return f"{used:.1f}/{reserved:.1f} GiB"
    except Exception:
        return ""


class StatusBar(Horizontal):
    state: reactive[str] = reactive("starting")
    """What the engine is doing: starting, loading <model>, ready, rendering #n, failed…"""
    device: reactive[str] = reactive("")
    """The device the worker resolved ("cpu", "cuda", ...), with its dtype."""
    renderer: reactive[str] = reactive("")
    """How images are drawn (kitty, sixel, halfcell, unicode, none)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._progress: Any = None  # the ProgressBar, made (and its module imported) just after the first frame

    def compose(self) -> ComposeResult:
        yield Static("", id="state")
        yield Static("", id="step-info")
        yield Static("", id="device")

    def on_mount(self) -> None:
        # The bar (two widgets, empty at launch) mounts just after the first frame.
        self.call_after_refresh(lambda: self.mount(self._bar, after="#state"))
        self.set_interval(2.0, self._refresh_memory)

    @property
    def _bar(self) -> Any:
        if self._progress is None:
            from textual.widgets import ProgressBar

            self._progress = ProgressBar(id="progress", show_eta=False, show_percentage=False, total=1)
        return self._progress

    def watch_state(self, state: str) -> None:
        self.query_one("#state", Static).update(state, layout=False)  # fixed width: repaint only

    def watch_device(self) -> None:
        self._refresh_memory()

    def watch_renderer(self) -> None:
        self._refresh_memory()

    def _refresh_memory(self) -> None:
        memory = gpu_memory(self.device)
        parts = (self.device, memory, self.renderer)
        for shown in self.query("#device").results(Static):  # none while the window closes (a late renderer)
            shown.update(" · ".join(p for p in parts if p))

    def progress(self, step: int, total: int, its: float, eta: float, stage: str = "") -> None:
        self._bar.update(total=max(total, 1), progress=step)
        text = f"step {step}/{total} · {its:.1f} it/s · ETA {eta:.1f}s"
        if stage:  # which pass of a hires fix
            text = f"{stage} · {text}"
        self.query_one("#step-info", Static).update(text, layout=False)  # many a second: no re-layout

    def idle(self, text: str = "") -> None:
        self._bar.update(total=1, progress=0)
        self.query_one("#step-info", Static).update(text, layout=False)
