"""Pick a local model: name, architecture, size and short hash, filtered as you type."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList

from studio.printable import printable
from textual.widgets.option_list import Option

from studio.builtin import BUILTIN_DIR
from studio.models.inspect import CHECKPOINT, UNKNOWN
from studio.models.library import ModelLibrary


@dataclass(frozen=True)
class ModelRow:
    name: str  # what goes into the recipe (a built-in name or a path)
    architecture: str
    size: int
    hash: str
    source: str
    license: str = ""  # as `License.label` gives it, flags included
    safety_checker: bool = False


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def list_models(library: ModelLibrary) -> list[ModelRow]:
    """Built-in models and whatever the library finds; never raises (slow: run in a thread)."""
    rows: list[ModelRow] = []
    builtin: dict[Path, int] = {}  # folder -> index in rows, so the scan does not list it twice
    try:
        for folder in sorted(BUILTIN_DIR.iterdir()):
            if (folder / "model_index.json").is_file():
                size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                builtin[folder.resolve()] = len(rows)
                rows.append(ModelRow(folder.name, "built-in", size, "", "built-in"))
    except OSError:
        pass
    try:
        entries = library.scan(refresh=True)  # the picker is where a user looks for a file just dropped in
    except OSError:
        entries = []
    for entry in entries:
        if entry.kind not in (CHECKPOINT, UNKNOWN):
            continue
        index = builtin.get(entry.path.resolve())
        if index is not None:
            rows[index] = replace(rows[index], architecture=f"{entry.architecture} (built-in)")
            continue
        rows.append(ModelRow(
            str(entry.path), entry.architecture, entry.size, entry.hash, entry.source,
            entry.license, entry.safety_checker,
        ))
    return rows


def with_hash(row: ModelRow, library: ModelLibrary) -> ModelRow:
    try:
        return replace(row, hash=library.resolve(row.name).hash)
    except (LookupError, OSError, ValueError):
        return row


class ModelPicker(ModalScreen[str | None]):
    """Dismisses with the chosen model's name or path, or None."""

    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker #model-list { height: auto; max-height: 20; }
    ModelPicker #model-status { color: $text-muted; }
    """

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, current: str, library: ModelLibrary) -> None:
        super().__init__()
        self.current = current
        self.library = library
        self.rows: list[ModelRow] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("4 Model — type to filter, enter to choose", classes="title")
            yield Input(placeholder="filter", id="model-filter")
            yield OptionList(id="model-list")
            yield Label("scanning…", id="model-status")

    def on_mount(self) -> None:
        self.query_one("#model-filter", Input).focus()
        self.scan()

    @work(thread=True, exclusive=True)
    def scan(self) -> None:
        rows = list_models(self.library)
        self.app.call_from_thread(self._show_rows, rows, "hashing…")
        hashed = [with_hash(row, self.library) if not row.hash else row for row in rows]
        self.app.call_from_thread(self._show_rows, hashed, "")

    def _show_rows(self, rows: list[ModelRow], status: str) -> None:
        self.rows = rows
        count = f"{len(rows)} model{'s' if len(rows) != 1 else ''}"
        self.query_one("#model-status", Label).update(status or count)
        self._filter()

    @on(Input.Changed, "#model-filter")
    def _filter(self) -> None:
        needle = self.query_one("#model-filter", Input).value.strip().lower()
        ol = self.query_one("#model-list", OptionList)
        ol.clear_options()
        for row in self.rows:
            label = printable(Path(row.name).name)  # file names are anyone's text
            if needle and needle not in f"{label} {row.architecture} {row.hash} {row.source}".lower():
                continue
            text = Text(label, style="bold")
            text.append(printable(f"  {row.architecture} · {human_size(row.size)} · {row.hash or '…'}"), style="dim")
            if row.license:  # a non-commercial or "other" license stands out
                flagged = "(non-commercial)" in row.license or "(read its terms)" in row.license
                text.append(printable(f" · {row.license}"), style="bold yellow" if flagged else "dim")
            if row.safety_checker:
                text.append(" · ships a safety checker (off)", style="dim")
            ol.add_option(Option(text, id=row.name))
        if ol.option_count:
            ol.highlighted = 0

    @on(Input.Submitted, "#model-filter")
    def _choose_first(self) -> None:
        ol = self.query_one("#model-list", OptionList)
        if ol.option_count:
            self.dismiss(ol.get_option_at_index(ol.highlighted or 0).id)
        elif self.query_one("#model-filter", Input).value.strip():
            self.dismiss(self.query_one("#model-filter", Input).value.strip())

    @on(OptionList.OptionSelected, "#model-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def key_down(self) -> None:
        self.query_one("#model-list", OptionList).action_cursor_down()

    def key_up(self) -> None:
        self.query_one("#model-list", OptionList).action_cursor_up()
