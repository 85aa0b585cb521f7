"""The views over the window: the full-screen preview, the gallery, the sessions browser, and the pane keys.

A mixin of StudioApp, beside HistoryActions and ModelActions (the model picker,
pane 4, is there). Each view's module is imported when it is first opened.
"""

from __future__ import annotations

from typing import Any

from studio.tui.widgets.preview import file_link


class ViewActions:
    # Set by StudioApp.
    studio: Any
    session: Any
    preview: Any
    history: Any
    image_class: Any
    screen: Any
    screen_stack: Any
    push_screen: Any
    pop_screen: Any
    notify: Any
    _entry: Any
    action_pick_model: Any

    def action_fullscreen(self) -> None:
        from studio.tui.widgets.fullscreen import FullscreenPreview, fullscreen_caption

        if isinstance(self.screen, FullscreenPreview):
            self.pop_screen()
            return
        preview = self.preview
        if preview.current is None:
            self.notify("no image to show")
            return
        caption = file_link(preview.path) if preview.path else "live preview"
        entry = self._entry(self.history.highlighted_id)
        if preview.path and entry is not None and entry.images and self.session.image_path(entry.images[0]) == preview.path:
            caption = fullscreen_caption(caption, entry.recipe.prompt)
        self.push_screen(FullscreenPreview(preview.current, self.image_class, caption))

    def action_gallery(self) -> None:
        from studio.tui.widgets.gallery import GalleryScreen

        if isinstance(self.screen, GalleryScreen):
            self.screen.action_focus_query()
        else:
            self.push_screen(GalleryScreen(self.studio.index, self.image_class))

    def action_sessions(self) -> None:
        from studio.tui.widgets.sessions_browser import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen(self.studio.index, self.session.name))

    def action_focus_pane(self, number: int) -> None:
        if number == 4:
            self.action_pick_model()
            return
        target = {
            1: "#prompt",
            2: "#model",
            3: "#preview",
            5: "#history-list",
            6: "#queue-list",
        }[number]
        self.screen_stack[0].query_one(target).focus()
