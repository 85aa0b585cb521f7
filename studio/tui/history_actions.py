"""The history pane's side of the app: its list, its thumbnails and the keys that act on an entry.

A mixin of StudioApp (Textual looks actions and `on_*` handlers up through the
class's MRO). Stars, ratings, notes, deletes and undos go through
`SessionWrites`, off the event loop and in order; the list refreshes when the
`SessionWritten` message comes back. The few calls that make images go
through the app's `submit`, never the engine directly.
"""

from __future__ import annotations

from typing import Any

from textual import work

from studio.printable import printable
from studio.tui.messages import SessionWritten, ThumbnailsReady
from studio.tui.widgets.history import LIMIT, MAX_RATING, HistoryPane

_DONE = {"mark": "marked", "delete": "deleted", "restore": "restored"}


class HistoryActions:
    # Set by StudioApp: session, history, preview, params, prompt_pane, thumbs, undo_stack, writes, submit.
    session: Any
    history: HistoryPane
    thumbs: dict[str, Any]
    undo_stack: list[int]
    loading: bool
    _preview: dict[int, Any]
    loaded_entry: Any

    # -- the list and its thumbnails -------------------------------------------

    def refresh_history(self) -> None:
        entries = self._history_entries()
        self.history.set_entries(entries, self.thumbs)
        newest = [e for e in entries[-LIMIT:] if e.images]
        missing = [e.images[0] for e in newest if e.images[0] not in self.thumbs]
        if missing:
            for name in missing:
                self.thumbs[name] = None  # claimed: a second refresh does not load it again
            self._load_thumbnails(self.session, missing)

    @work(thread=True, group="thumbnails")
    def _load_thumbnails(self, session: Any, names: list[str]) -> None:
        from studio.tui.thumbnail import load_thumbnail

        self.post_message(ThumbnailsReady({name: load_thumbnail(session.image_path(name)) for name in names}, session))

    def on_thumbnails_ready(self, message: ThumbnailsReady) -> None:
        if message.session is not self.session:
            return  # a session the window has left (session_switch.py): its names mean nothing here
        self.thumbs.update(message.thumbs)
        self.history.set_entries(self._history_entries(), self.thumbs)

    def _history_entries(self) -> list[Any]:
        """The session's entries; while it loads, the newest ones read so far (session_loading.py)."""
        if self.loading:
            return sorted(self._preview.values(), key=lambda entry: entry.id)
        return self.session.entries()

    def on_history_pane_highlighted(self, message: HistoryPane.Highlighted) -> None:
        entry = self._entry(message.entry_id)
        if entry is not None and entry.images:
            self.preview.show_file(
                self.session.image_path(entry.images[0]), f"#{entry.id} · seed {entry.recipe.seed}"
            )

    def _entry(self, entry_id: int | None) -> Any:
        if entry_id is None:
            return None
        if self.loading:
            return self.loaded_entry(entry_id)
        try:
            return self.session.get(entry_id)
        except Exception:
            return None

    def highlighted_entry(self) -> Any:
        entry = self._entry(self.history.highlighted_id)
        if entry is None:
            self.notify("no history entry selected", severity="warning")
        return entry

    # -- keys on an entry ----------------------------------------------------------

    def action_load_entry(self) -> None:
        entry = self.highlighted_entry()
        if entry is None or not self.params.ready:
            return
        self.prompt_pane.set_texts(entry.recipe.prompt, entry.recipe.negative_prompt)
        self.params.load(entry.recipe, lock_seed=True)
        self.prompt_pane.focus_prompt()
        self.notify(f"recipe of #{entry.id} loaded; seed locked")

    def action_rerun(self) -> None:
        entry = self.highlighted_entry()
        if entry is not None:
            self.submit([entry.recipe])

    def action_favourite(self) -> None:
        entry = self.highlighted_entry()
        if entry is not None:
            self._mark(entry.id, favourite=not self._marked(entry, "favourite"))

    def action_rate(self, delta: int) -> None:
        entry = self.highlighted_entry()
        if entry is not None:
            now = self._marked(entry, "rating")
            rating = max(0, min(MAX_RATING, now + delta))
            if rating != now:
                self._mark(entry.id, rating=rating)

    def action_edit_note(self) -> None:
        from studio.tui.widgets.note import NoteDialog

        entry = self.highlighted_entry()
        if entry is None:
            return
        before = self._marked(entry, "note")

        def save(note: str | None) -> None:
            if note is not None and note != before:
                self._mark(entry.id, note=note)

        self.push_screen(NoteDialog(entry.id, before), save)

    def _marked(self, entry: Any, field: str) -> Any:
        """The field as it will be once the writes already queued land (keys can outrun the disk)."""
        return self._unwritten.get(entry.id, {}).get(field, getattr(entry, field))

    def _mark(self, entry_id: int, **fields: Any) -> None:
        """Record a star, rating or note; a failed write (full disk, locked file) is one line."""
        self._unwritten.setdefault(entry_id, {}).update(fields)
        self._writes_queued[entry_id] = self._writes_queued.get(entry_id, 0) + 1
        session = self.session  # the write lands where it was asked for, even after a switch
        self.writes.put(entry_id, "mark", lambda: session.mark(entry_id, **fields))

    def action_delete_entry(self) -> None:
        entry = self.highlighted_entry()
        if entry is None:
            return
        if not entry.final:
            self.notify("cancel the job before deleting it", severity="warning")
            return
        self.undo_stack.append(entry.id)  # now, so that a quick u undoes it
        session = self.session
        self.writes.put(entry.id, "delete", lambda: session.delete(entry.id))

    def action_undo_delete(self) -> None:
        if not self.undo_stack:
            self.notify("nothing to undo")
            return
        entry_id = self.undo_stack.pop()
        session = self.session
        self.writes.put(entry_id, "restore", lambda: session.restore(entry_id))

    def on_session_written(self, message: SessionWritten) -> None:
        entry_id, kind = message.entry_id, message.kind
        if kind == "mark":
            left = self._writes_queued.pop(entry_id, 1) - 1
            if left:
                self._writes_queued[entry_id] = left
            else:
                self._unwritten.pop(entry_id, None)
        if message.error:
            self.notify(printable(f"#{entry_id} not {_DONE[kind]}: {message.error}"), severity="error", markup=False)
            if kind == "delete" and entry_id in self.undo_stack:
                self.undo_stack.remove(entry_id)
            elif kind == "restore":
                self.undo_stack.append(entry_id)
        elif kind == "delete":
            self.notify(f"deleted #{entry_id} — u to undo")
        elif kind == "restore":
            self.notify(f"restored #{entry_id}")
        self.refresh_history()

    # -- comparing and moving --------------------------------------------------------

    def action_compare(self) -> None:
        history = self.history
        entry = self.highlighted_entry()
        if entry is None:
            return
        if history.marked is None or history.marked == entry.id:
            history.marked = entry.id
            self.notify(f"#{entry.id} marked; highlight another entry and press c")
            return
        left = self._entry(history.marked)
        history.marked = None
        if left is not None:
            self.open_compare(left, entry)

    def open_compare(self, left: Any, right: Any) -> None:
        from studio.tui.widgets.compare import CompareScreen

        def image(entry: Any) -> Any:
            return self.session.image_path(entry.images[0]) if entry.images else None

        self.push_screen(CompareScreen(left, right, image(left), image(right), self.image_class))

    def action_history_move(self, delta: int) -> None:
        self.history.move(delta)
