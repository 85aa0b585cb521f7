"""The main window's footer: Textual's, except that it does not redraw its keys while a screen covers it.

Opening a screen over the window (the gallery, the session browser) refreshes
the window's bindings, and Textual's footer then rebuilds and restyles its
dozens of keys, some 50 ms of the event loop while the new screen is drawing
its first page, for a footer nobody sees. This one notes that it is out of
date and rebuilds when it is shown again.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class StudioFooter(Footer):
    stale = False
    """The bindings changed while another screen covered this footer's: rebuild when shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Mounted after the first frame, once the window has announced its bindings: compose
        # its keys at mount (even under a dialog shown by then), as a footer there from the start would.
        self.set_reactive(Footer._bindings_ready, True)

    def _covered(self) -> bool:
        return self.is_attached and self.app.screen is not self.screen

    def bindings_changed(self, screen: Any) -> None:
        if screen is self.screen and self._covered():
            self.stale = True
            return
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        if self._covered():  # asked before the cover came, run after it
            self.stale = True
            return
        self.stale = False
        await super().recompose()

    def on_show(self) -> None:
        if self.stale:
            self.call_after_refresh(self.recompose)
