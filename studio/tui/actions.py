"""Every key of the studio, once: the bindings, the command palette and the README's key table come from here.

An `Action` names where its keys work, the Textual action it runs and the
words that describe it. `bindings(where)` builds a class's BINDINGS,
`palette()` the command-palette entries, `readme_table()` the markdown
between the key markers in README.md (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

README_BEGIN = "<!-- keys:begin -->"
README_END = "<!-- keys:end -->"

# Textual's key names where a reader expects the character.
_KEY_TEXT = {"plus": "+", "equals_sign": "=", "minus": "-", "asterisk": "*", "slash": "/",
             "left_square_bracket": "[", "right_square_bracket": "]"}


@dataclass(frozen=True)
class Action:
    where: str
    """Whose BINDINGS hold the keys: "anywhere" (the app), "history" or "queue" (that pane),
    "painter" (the mask painter), "gallery" or "sessions" (that screen), "sweep" (the sweep
    builder), "grid" (a sweep's grid view)."""
    keys: tuple[str, ...]
    """Textual key names, e.g. ("ctrl+g", "ctrl+enter")."""
    action: str
    """The action with its arguments, e.g. "rate(1)"; the app's, unless `local`."""
    description: str
    """What it does, for the README, the palette's help line and the footer's tooltip."""
    title: str = ""
    """The command palette's name for it; empty keeps it out of the palette."""
    footer: str = ""
    """The footer's short label; empty keeps it out of the footer."""
    priority: bool = False
    """Checked before the focused widget sees the key (for keys a text field would swallow)."""
    local: bool = False
    """The pane's own action (cursor moves, its filter), not the app's."""
    plain_keys: tuple[str, ...] = ()
    """More keys, bound without priority: a focused text field keeps them (the pane digits)."""
    textual: bool = False
    """Textual binds the key itself (the palette's ctrl+p); listed here for the README only."""

    @property
    def target(self) -> str:
        """The action string as the binding's class must spell it."""
        return self.action if self.local or self.where == "anywhere" else f"app.{self.action}"

    @property
    def key_text(self) -> str:
        """How the keys read in prose: `ctrl+g` / `ctrl+enter`."""
        keys = " / ".join(f"`{_KEY_TEXT.get(k, k)}`" for k in self.keys)
        if self.plain_keys:
            keys += ", or " + " / ".join(f"`{_KEY_TEXT.get(k, k)}`" for k in self.plain_keys) + " outside text fields"
        return keys


_PANES = ("prompt", "parameters", "preview", "model", "history", "queue")

ACTIONS: tuple[Action, ...] = (
    Action("anywhere", ("ctrl+g", "ctrl+enter"), "generate", "make images from the form (ctrl+enter where the terminal sends it)",
           title="Generate", footer="Generate", priority=True),
    Action("anywhere", ("ctrl+n",), "queue_more", "queue COUNT more with new random seeds",
           title="Queue more", footer="N more", priority=True),
    Action("anywhere", ("ctrl+r",), "reroll", "new random seed, locked, then generate",
           title="Re-roll seed", footer="Re-roll", priority=True),
    Action("anywhere", ("ctrl+t",), "cancel", "stop the running job",
           title="Cancel job", footer="Cancel", priority=True),
    Action("anywhere", (), "cancel_all", "stop the running job and empty the queue", title="Cancel all jobs"),
    Action("anywhere", ("ctrl+o",), "pick_model", "choose a local model", title="Pick model", footer="Model", priority=True),
    Action("anywhere", ("ctrl+f",), "fullscreen", "show the current image full screen",
           title="Full-screen preview", footer="View", priority=True),
    Action("anywhere", ("ctrl+l", "f8"), "gallery", "the gallery: thumbnails of every session's entries for a query",
           title="Gallery", priority=True),
    Action("anywhere", ("ctrl+b", "f9"), "sessions", "the session browser: every session; open, rename, archive",
           title="Session browser", priority=True),
    Action("anywhere", ("f11",), "cycle_preview", "live previews: the clean estimate (x0), the noisy latents, TAESD, off",
           title="Cycle live preview", priority=True),
    Action("anywhere", ("f12",), "clear_init", "clear the form's init image and mask: text-to-image again",
           title="Clear init image and mask", priority=True),
    Action("anywhere", ("ctrl+up",), "history_move(-1)", "highlight the next newer history entry", priority=True),
    Action("anywhere", ("ctrl+down",), "history_move(1)", "highlight the next older history entry", priority=True),
    *(
        # F1-F6 too: most terminals send alt+digit as ESC+digit, which Textual reads as
        # macOS Option characters (alt+5 arrives as "∞"), and xterm sends 8-bit meta.
        Action("anywhere", (f"alt+{n}", f"f{n}"), f"focus_pane({n})", f"focus the {pane} pane" if n != 4 else "open the model picker",
               title=f"Focus {pane}", priority=True, plain_keys=(str(n),))
        for n, pane in enumerate(_PANES, 1)
    ),
    Action("anywhere", ("ctrl+p",), "command_palette", "command palette: every action, and the theme", textual=True),
    Action("history", ("enter", "l"), "load_entry", "branch: load the entry's recipe into the form, seed locked",
           title="Branch from entry", footer="Branch"),
    Action("history", ("r",), "rerun", "make the entry again", title="Re-run entry", footer="Re-run"),
    Action("history", ("f",), "favourite", "toggle the entry's star", title="Favourite entry", footer="Fav"),
    Action("history", ("asterisk",), "toggle_favourites", "show favourites only, or all again",
           title="Favourites only", local=True),
    Action("history", ("plus", "equals_sign"), "rate(1)", "rating up (0-5, shown as ●●●○○)",
           title="Rate entry higher", footer="Rate +"),
    Action("history", ("minus",), "rate(-1)", "rating down", title="Rate entry lower"),
    Action("history", ("n",), "edit_note", "a one-line note on the entry (the filter searches notes)",
           title="Edit note", footer="Note"),
    Action("history", ("d", "delete"), "delete_entry", "hide the entry; u brings it back",
           title="Delete entry", footer="Delete"),
    Action("history", ("u",), "undo_delete", "bring back the last deleted entry", title="Undo delete", footer="Undo"),
    Action("history", ("c",), "compare", "mark the entry; c on another compares the two, with a recipe diff",
           title="Compare entries", footer="Compare"),
    Action("history", ("v",), "fullscreen", "view the entry full screen", footer="View"),
    Action("history", ("i",), "img2img", "img2img: the form's prompt over the entry's image, at the form's strength",
           title="Img2img from entry", footer="Img2img"),
    Action("history", ("I",), "set_init", "hold the entry's image as the form's init image (shown in the parameters pane; f12 clears)",
           title="Use entry as init image", footer="Init"),
    Action("history", ("V",), "variation", "a variation of the entry: a new variation seed at the form's variation strength",
           title="Variation of entry", footer="Vary"),
    Action("history", ("U",), "upscale", "upscale the entry's image 2x with the built-in studio-2x, as a new entry",
           title="Upscale entry"),
    Action("history", ("m",), "paint_mask", "paint a mask over the entry's image, then inpaint it with the form's prompt (the form keeps both)",
           title="Paint mask and inpaint", footer="Mask"),
    Action("history", ("slash",), "focus_filter", "filter by prompt, model, seed, sampler or note",
           title="Filter history", local=True),
    Action("history", ("j",), "cursor_down", "move down", local=True),
    Action("history", ("k",), "cursor_up", "move up", local=True),
    *(
        Action("painter", keys, f"cursor({dx}, {dy})", f"move the brush cursor {name}", local=True)
        for keys, dx, dy, name in ((("left", "h"), -1, 0, "left"), (("right", "l"), 1, 0, "right"),
                                   (("up", "k"), 0, -1, "up (half a cell)"), (("down", "j"), 0, 1, "down (half a cell)"))
    ),
    Action("painter", ("space",), "dab(True)", "paint at the cursor (the mouse paints with the left button)",
           footer="Paint", local=True),
    Action("painter", ("x",), "dab(False)", "erase at the cursor (the mouse erases with the right button or shift)",
           footer="Erase", local=True),
    Action("painter", ("left_square_bracket",), "brush(-1)", "smaller brush", footer="Brush -", local=True),
    Action("painter", ("right_square_bracket",), "brush(1)", "bigger brush", footer="Brush +", local=True),
    Action("painter", ("f",), "fill('fill')", "paint everything", footer="Fill", local=True),
    Action("painter", ("c",), "fill('clear')", "clear the mask", footer="Clear", local=True),
    Action("painter", ("i",), "fill('invert')", "invert the mask", footer="Invert", local=True),
    Action("painter", ("o",), "open_mask", "load a mask file (white repaints)", footer="Open", local=True),
    Action("painter", ("enter",), "save", "save the mask beside the session's images and queue the inpaint job",
           footer="Inpaint", local=True),
    Action("painter", ("escape",), "close", "close without inpainting", footer="Close", local=True),
    Action("gallery", ("left",), "move(-1)", "previous entry", local=True),
    Action("gallery", ("right",), "move(1)", "next entry", local=True),
    Action("gallery", ("up",), "move_row(-1)", "a row up", local=True),
    Action("gallery", ("down",), "move_row(1)", "a row down", local=True),
    Action("gallery", ("pageup",), "page(-1)", "the page before", local=True),
    Action("gallery", ("pagedown",), "page(1)", "the page after", local=True),
    Action("gallery", ("enter",), "show_entry", "the entry full screen, with its whole recipe", footer="Show", local=True),
    Action("gallery", ("o",), "open_session", "open the entry's session", footer="Open", local=True),
    Action("gallery", ("b",), "branch", "load the entry's recipe into the form, seed locked", footer="Branch", local=True),
    Action("gallery", ("I",), "set_init", "use the entry's image as the form's init image (img2img until f12)",
           footer="Init", local=True),
    Action("gallery", ("plus", "equals_sign"), "rate(1)", "rating up, in the entry's own session",
           footer="Rate +", local=True),
    Action("gallery", ("minus",), "rate(-1)", "rating down", local=True),
    Action("gallery", ("c",), "contact_sheet", "a contact sheet of the query's first 60 entries, recorded in this session",
           footer="Sheet", local=True),
    Action("gallery", ("f",), "favourite", "toggle the entry's star", footer="Fav", local=True),
    Action("gallery", ("n",), "edit_note", "a one-line note on the entry", footer="Note", local=True),
    Action("gallery", ("slash",), "focus_query", "edit the query (enter runs it)", footer="Query", local=True),
    Action("gallery", ("escape",), "close", "back to the studio", footer="Close", local=True),
    Action("sessions", ("enter", "o"), "open_session", "open the session", footer="Open", local=True),
    Action("sessions", ("g",), "gallery_of", "the gallery of the session", footer="Gallery", local=True),
    Action("sessions", ("r",), "rename", "rename the session (its folder)", footer="Rename", local=True),
    Action("sessions", ("a",), "archive", "move the session into archive/", footer="Archive", local=True),
    Action("sessions", ("escape",), "close", "back to the studio", footer="Close", local=True),
    Action("anywhere", ("f10",), "sweep_builder", "build a sweep over the form's recipe: X/Y/Z axes, the cell count before it runs",
           title="Sweep builder"),
    Action("history", ("g",), "grid_view", "the entry's sweep as a grid: arrows move across cells, enter branches from one",
           title="Sweep grid"),
    *(Action("grid", (key,), f"move({d})", f"move to the cell {name}", local=True)
      for key, d, name in (("left", "-1, 0", "left"), ("right", "1, 0", "right"), ("up", "0, -1", "above"),
                           ("down", "0, 1", "below"), ("pageup", "0, 0, -1", "of the previous Z value"),
                           ("pagedown", "0, 0, 1", "of the next Z value"))),
    Action("grid", ("enter",), "branch", "branch: load the cell's recipe into the form, seed locked", local=True),
    Action("grid", ("escape",), "close", "close the grid", local=True),
    Action("sweep", ("escape",), "close", "close the sweep builder without running (enter in a field runs it)", local=True),
    Action("queue", ("x", "delete"), "cancel_highlighted", "cancel the highlighted job",
           title="Cancel highlighted job", footer="Cancel job", local=True),
    Action("queue", ("X",), "cancel_all", "cancel every job", footer="Cancel all"),
)


def bindings(where: str) -> list[Binding]:
    """The BINDINGS of the app ("anywhere") or of a pane."""
    out = []
    for a in ACTIONS:
        if a.where != where or a.textual:
            continue
        if a.keys:
            out.append(Binding(",".join(a.keys), a.target, a.footer or a.title, show=bool(a.footer),
                               priority=a.priority, tooltip=a.description))
        if a.plain_keys:
            out.append(Binding(",".join(a.plain_keys), a.target, show=False))
    return out


def palette() -> list[Action]:
    """The actions the command palette lists, in table order."""
    return [a for a in ACTIONS if a.title]


def palette_help(a: Action) -> str:
    first = _KEY_TEXT.get(a.keys[0], a.keys[0]) if a.keys else ""
    return f"{a.description} ({first})" if first else a.description


def readme_table() -> str:
    """The README's key table, in markdown (without the markers)."""
    rows = ["| where | key | action |", "|---|---|---|"]
    rows += [f"| {a.where} | {a.key_text} | {a.description} |" for a in ACTIONS if a.keys]
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    """`readme` with the text between the key markers replaced by `readme_table()`."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise ValueError(f"README has no {README_BEGIN} … {README_END} markers")
    return f"{head}{README_BEGIN}\n{readme_table()}\n{README_END}{tail}"
