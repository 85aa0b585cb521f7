"""The gallery's contact sheet key: the query's first entries drawn into one sheet, an entry of the open session."""

from __future__ import annotations

from typing import Any

from studio.printable import printable

SHEET_ENTRIES = 60  # the first entries of the query, in its order, as `studio sheet` draws by default


def make_contact_sheet(gallery: Any) -> None:
    """On a thread (the gallery's worker): search, draw, record, then tell the window."""
    from studio.review.sheet import SheetError, record_sheet
    from studio.store.session import SessionError

    app = gallery.app
    studio, query = app.studio, gallery.query_text
    try:
        hits = gallery.index.search(query, limit=SHEET_ENTRIES)
        entry, path = record_sheet(studio.session, hits, query)
    except (SheetError, SessionError, OSError, ValueError) as exc:  # nothing to draw; a full disk; a read-only session
        app.call_from_thread(app.notify, printable(f"no contact sheet: {exc}"), severity="error", markup=False)
        return
    try:
        studio.index.update_session(studio.session.path, live=studio.session)
    except Exception:  # a busy index: search catches up on its next update
        pass
    app.call_from_thread(app.refresh_history)
    app.call_from_thread(app.notify, printable(
        f"contact sheet of {len(entry.sheet['entries'])} entries: #{entry.id} in this session, {path}"), markup=False)
