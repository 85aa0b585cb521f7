"""What a session's records mean: each entry's fold, its frozen snapshot, and who owns it.

`studio.store.session` reads and writes the file; this module turns records
into entries. A 100,000-entry session is 100,000 recipes that mostly differ in
a seed or a prompt, so `RecipeMemo` validates the rest of a recipe once for
every entry that shares it, and those entries share its values in memory too.
"""

from __future__ import annotations

import os
import socket
from bisect import bisect_left
from dataclasses import MISSING, dataclass, fields
from typing import Any, Iterator, Sequence, overload

from studio.recipe import MAX_PROMPT_CHARS, MAX_SEED, Recipe, RecipeError
from studio.store.recipe_text import Templated
from studio.store.records import FIELDS

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINAL = frozenset({"done", "failed", "cancelled"})
OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One generation as it stands now: every event for its id folded together."""

    id: int
    time: str  # when it was queued (ISO-8601 UTC)
    status: str  # queued, running, done, failed, cancelled
    recipe: Recipe  # as queued, updated with what finishing reported (device, dtype)
    model_hash: str = ""
    images: tuple[str, ...] = ()
    duration: float | None = None
    device: str = ""
    reason: str = ""
    favourite: bool = False
    rating: int = 0
    note: str = ""
    deleted: bool = False
    finished: str = ""  # when it reached its final status
    owner: str = ""  # host:pid of the process that queued it
    sweep: dict[str, Any] | None = None  # a sweep cell's or grid's tag (studio.sweeps.tags), as queued
    template: str = ""  # the prompt before its wildcards were drawn (studio.sweeps.wildcards)
    sheet: dict[str, Any] | None = None  # a contact sheet's tag: its query and entries (studio.review.sheet)

    @property
    def stem(self) -> str:
        """The file-name stem for this entry's images (`0007` -> 0007.png, 0007-1.png)."""
        return f"{self.id:04d}"

    @property
    def final(self) -> bool:
        return self.status in FINAL


# Entry's own defaults, so the fold below starts every entry from the one field list.
_ENTRY_DEFAULTS = {f.name: f.default for f in fields(Entry) if f.default is not MISSING}


class Values(dict):  # type: ignore[type-arg]
    """An entry's own fields by name: those it has set; any other reads as Entry's default
    (so 100,000 entries do not each hold a dozen defaults)."""

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        return _ENTRY_DEFAULTS[key]


class State:
    """The mutable fold of one entry; `Entry` is its frozen snapshot, made once per change.

    `values` holds Entry's fields by name (all but the recipe), so adding a field
    to Entry needs no second list here. The recipe is in one of four forms, the
    first that is set: `recipe_data`, the recipe as read, kept only until the
    Recipe is built from it; `pending`, the same as (parsed template, prompt,
    negative prompt, seed) when it was read through a shared template
    (`studio.store.recipe_text`); `kept`, (a checked Recipe's values, prompt,
    negative prompt, seed), from which `recipe` is made when first asked for, so
    100,000 entries that share a template cost a tuple each until shown; or the
    Recipe itself. `epoch` is the session's count of lists handed out when this
    state was made: a state some list may hold is copied before it changes (see
    `Session._own`).
    """

    __slots__ = ("line", "recipe_data", "pending", "kept", "_recipe", "values", "entry", "epoch")

    def __init__(self, entry_id: int, time: str, line: int, recipe_data: dict[str, Any] | None, tags: dict[str, Any]) -> None:
        self.line = line  # where it was queued, for error messages
        self.recipe_data: dict[str, Any] | None = recipe_data
        self.pending: tuple[dict[str, Any], Any, Any, Any] | None = None
        self.kept: tuple[dict[str, Any], str, str, int] | None = None
        self._recipe: Recipe | None = None
        self.values: dict[str, Any] = Values(id=entry_id, time=time, status="queued", **tags)
        self.entry: Entry | None = None
        self.epoch = 0

    @property
    def recipe(self) -> Recipe | None:
        recipe = self._recipe
        if recipe is None and self.kept is not None:
            template, prompt, negative, seed = self.kept
            recipe = object.__new__(Recipe)
            _set(recipe, "__dict__", {**template, "prompt": prompt, "negative_prompt": negative, "seed": seed})
            self._recipe, self.kept = recipe, None
        return recipe

    @recipe.setter
    def recipe(self, recipe: Recipe | None) -> None:
        self._recipe, self.kept, self.pending = recipe, None, None

    def copy(self) -> State:
        """A copy that later folds into this one leave alone (the recipe is immutable)."""
        other = State.__new__(State)
        other.line, other.recipe_data, other.pending, other.kept = self.line, self.recipe_data, self.pending, self.kept
        other._recipe, other.entry, other.epoch = self._recipe, self.entry, self.epoch
        other.values = Values(self.values)
        return other

    def data(self) -> dict[str, Any]:
        """The recipe as it stands, as a dict (what a `done` record is compared with)."""
        if self.recipe_data is not None:
            return self.recipe_data
        if self.pending is not None:
            template, prompt, negative, seed = self.pending
            data = dict(template)
            data["prompt"], data["negative_prompt"], data["seed"] = prompt, negative, seed
            return data
        recipe = self.recipe
        assert recipe is not None
        return recipe.to_dict()

    def snapshot(self) -> Entry:
        if self.entry is None:
            recipe = self.recipe
            assert recipe is not None
            model_hash = self.values["model_hash"] or recipe.model_hash
            self.entry = Entry(recipe=recipe, **{**self.values, "model_hash": model_hash})
        return self.entry


def fold(states: dict[int, State], ev: dict[str, Any], line: int) -> str:
    """Fold one checked record into `states`; "" or what is wrong with it."""
    kind, entry_id = ev["kind"], ev["id"]
    state = states.get(entry_id)
    if kind == "queued":
        if state is not None:
            return f"id {entry_id} is queued twice"
        tags = {key: ev[key] for key in _TAGS if key in ev} if len(ev) > 4 else _NO_TAGS
        recipe = ev["recipe"]
        if type(recipe) is Templated:  # the template is shared; what is its own is three values
            state = states[entry_id] = State(entry_id, ev["time"], line, None, tags)
            state.pending = (recipe.template, recipe["prompt"], recipe["negative_prompt"], recipe["seed"])
        else:
            states[entry_id] = State(entry_id, ev["time"], line, dict(recipe), tags)
        return ""
    if state is None:
        return f"a {kind!r} record for an entry that was never queued"
    state.entry = None
    values = state.values
    if kind == "started":
        if values["status"] not in FINAL:
            values["status"] = "running"
        if "owner" in ev:
            values["owner"] = ev["owner"]
    elif kind in FINAL:
        values["status"], values["finished"] = kind, ev["time"]
        if "reason" in ev or "reason" in values:  # (one not held reads as Entry's default, "")
            values["reason"] = ev.get("reason", "")
        if kind == "done":
            if "recipe" in ev:
                if state.pending is not None and state.recipe_data is None:
                    state.pending = _derived(state.pending, ev["recipe"])
                else:
                    state.recipe_data = {**state.data(), **ev["recipe"]}
            values.update(
                images=tuple(ev.get("images", ())),
                duration=ev.get("duration"),
                device=ev.get("device", ""),
                model_hash=ev.get("model_hash", values["model_hash"]),
            )
    elif kind == "mark":
        values.update({key: ev[key] for key in FIELDS["mark"] if key in ev})
    else:
        values["deleted"] = kind == "deleted"
    return ""


_TAGS = ("owner", "sweep", "template", "sheet")  # what a `queued` record may add to its entry
_NO_TAGS: dict[str, Any] = {}
_DERIVED: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any]]] = {}


def _derived(pending: tuple[dict[str, Any], Any, Any, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, Any]:
    """`pending` with a `done` record's recipe changes: the template with its changes is shared
    too (every entry of a run reports the same device and dtype), so it is made once."""
    template, prompt, negative, seed = pending
    prompt = changes.get("prompt", prompt)
    negative = changes.get("negative_prompt", negative)
    seed = changes.get("seed", seed)
    rest = changes
    if "prompt" in changes or "negative_prompt" in changes or "seed" in changes:
        rest = {key: value for key, value in changes.items() if key not in VARYING}
    if not rest:
        return template, prompt, negative, seed
    key = (id(template), repr(rest))  # repr tells 1 from 1.0 and True
    found = _DERIVED.get(key)
    if found is None or found[0] is not template:
        if len(_DERIVED) >= 1024:
            _DERIVED.clear()
        found = _DERIVED[key] = (template, {**template, **rest})  # holds `template`: its id stays its own
    return found[1], prompt, negative, seed


def own(states: dict[int, State], ordered: list[State] | None, epoch: int, entry_id: int) -> bool:
    """Copy `entry_id`'s state in `states` (and `ordered`, the states by id) unless it is of this
    `epoch`, so the lists that hold it keep it as it is; False when `ordered` needs sorting again."""
    state = states.get(entry_id)
    if state is None or state.epoch == epoch:
        return True
    new = states[entry_id] = state.copy()
    new.epoch = epoch
    if ordered is not None:
        at = bisect_left(ordered, entry_id, key=_state_id)
        if at < len(ordered) and ordered[at] is state:
            ordered[at] = new
        else:
            return False
    return True


def _state_id(state: State) -> int:
    return state.values["id"]


class EntryList(Sequence[Entry]):
    """`Session.entries()`: a list of entries made only as they are read (it compares equal to a
    list of the same entries). The states it holds never change (the session copies one before
    a record changes it), so it shows the entries as they were when it was asked for."""

    __slots__ = ("_states",)

    def __init__(self, states: list[State]) -> None:
        self._states = states

    def __len__(self) -> int:
        return len(self._states)

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...
    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(index, slice):
            return [state.snapshot() for state in self._states[index]]
        return self._states[index].snapshot()

    def __iter__(self) -> Iterator[Entry]:
        return (state.snapshot() for state in self._states)

    def __reversed__(self) -> Iterator[Entry]:
        return (state.snapshot() for state in reversed(self._states))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (EntryList, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EntryList({len(self)} entries)"


# --- building recipes -----------------------------------------------------------

# The fields an entry most often differs in, checked per entry exactly as Recipe's
# validation checks them; no rule of Recipe's ties them to another field (a test holds
# that), so the rest of a recipe, once valid, is valid for every entry that shares it.
VARYING = ("prompt", "negative_prompt", "seed")
_RECENT = 8  # recipe shapes compared with: a session's entries come in runs
_TEXTS = 8192
_set = object.__setattr__


def _varying_ok(prompt: Any, negative: Any, seed: Any) -> bool:
    return (
        type(prompt) is str and len(prompt) <= MAX_PROMPT_CHARS
        and type(negative) is str and len(negative) <= MAX_PROMPT_CHARS
        and type(seed) is int and 0 <= seed <= MAX_SEED - 1024
    )


class RecipeMemo:
    """`Recipe.from_dict` for many recipes that share most of their values.

    Same result and same errors as `Recipe.from_dict(data)`: a recipe whose other
    fields equal, value for value and type for type, those of one of the last
    few built reuses that one's validation and values, with its own prompt,
    negative prompt and seed checked on their own; anything else (a new shape,
    a value out of range) goes through `from_dict`. Equal prompts are shared,
    so 100,000 copies of one are one string. `build` may change `data`.
    """

    def __init__(self) -> None:
        self._recent: list[tuple[dict[str, Any], list[type], str, Recipe]] = []
        self._texts: dict[str, str] = {}
        self._templates: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}  # id -> (template, values)

    def build(self, data: dict[str, Any]) -> Recipe:
        prompt = data.get("prompt")
        negative = data.get("negative_prompt", "")
        seed = data.get("seed", 0)
        if prompt is None or not _varying_ok(prompt, negative, seed):
            return Recipe.from_dict(data)  # the error, worded as ever (or an odd but valid recipe)
        recipe = None
        data.update(prompt="", negative_prompt="", seed=0)  # compared without them
        types = None
        for shape, shape_types, lists, template in self._recent:
            # `==` alone takes True for 1 and 1.0 for 1, so the types are compared too,
            # and the lists (LoRAs) by repr, which tells them apart inside.
            if data == shape:
                types = types or list(map(type, data.values()))
                if types == shape_types and (not lists or _lists(data) == lists):
                    recipe = object.__new__(Recipe)
                    recipe.__dict__.update(template.__dict__)
                    break
        if recipe is None:
            recipe = Recipe.from_dict({**data, "prompt": prompt, "negative_prompt": negative, "seed": seed})
            shape = dict(data)
            self._recent.insert(0, (shape, list(map(type, shape.values())), _lists(shape), recipe))
            del self._recent[_RECENT:]
            recipe = object.__new__(Recipe)
            recipe.__dict__.update(self._recent[0][3].__dict__)
        _set(recipe, "prompt", self._text(prompt))
        _set(recipe, "negative_prompt", self._text(negative))
        _set(recipe, "seed", seed)
        return recipe

    def settle(self, state: State) -> None:
        """Build `state`'s Recipe from what was read (`recipe_data` or `pending`), as `build` would:
        a pending recipe whose template checks and whose own three values do keeps the template's
        values and its own (`state.kept`); raises RecipeError or TypeError as `build` does."""
        pending = state.pending
        if pending is not None:
            kept = self.kept(*pending)
            if kept is not None:
                state.pending, state.kept = None, kept
                return
            data = state.data()
            state.pending = None
            state.recipe = self.build(data)
            return
        if state.recipe_data is not None:
            state.recipe = self.build(state.recipe_data)
            state.recipe_data = None

    def kept(self, template: dict[str, Any], prompt: Any, negative: Any, seed: Any) -> tuple[dict[str, Any], str, str, int] | None:
        """What `settle` keeps of a pending recipe (its template's checked values, prompt, negative
        prompt, seed), or None where the template or the three values do not check."""
        if not _varying_ok(prompt, negative, seed):
            return None
        checked = self._templates.get(id(template))
        if checked is None or checked[0] is not template:
            try:
                values = Recipe.from_dict(template).__dict__
            except (RecipeError, TypeError):
                values = None  # each entry gets the error `build` words
            checked = self._templates[id(template)] = (template, values)
        if checked[1] is None:
            return None
        return checked[1], self._text(prompt), self._text(negative), seed

    def _text(self, text: str) -> str:
        texts = self._texts
        shared = texts.get(text)
        if shared is None:
            if len(texts) >= _TEXTS:
                texts.clear()
            shared = texts[text] = text
        return shared


def _lists(data: dict[str, Any]) -> str:
    """The non-empty list values, by repr ("" when there are none)."""
    found = [value for value in data.values() if type(value) is list and value]
    return repr(found) if found else ""


# --- who owns an entry ----------------------------------------------------------


def left_behind(state: State) -> bool:
    """Queued or running, not deleted, and its owner is gone: for resume (or adoption)."""
    values = state.values
    return values["status"] not in FINAL and not values["deleted"] and not owner_alive(values["owner"])


def settled(state: State | None) -> bool:
    """No live process can be writing this entry's images: it is final, or its owner is gone."""
    return state is not None and (state.values["status"] in FINAL or not owner_alive(state.values["owner"]))


def owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if owner == OWNER:
        return True  # our own jobs are still in our engine
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def newest_of(events: list[tuple[int, dict[str, Any]]], total: int, size: int) -> tuple[list[Entry], int]:
    """The entries a file's last `size` of `total` bytes (read as `events`) show, and about how many it holds."""
    states: dict[int, State] = {}
    for line, ev in events:
        fold(states, ev, line)  # records of entries queued before the stretch are skipped
    memo, shown = RecipeMemo(), []
    for _, state in sorted(states.items()):
        try:
            state.recipe = memo.build(state.data())
        except (RecipeError, TypeError):
            continue
        if not state.values["deleted"]:
            shown.append(state.snapshot())
    if size >= total or not states:
        return shown, len(shown)
    return shown, max(len(shown), round(len(states) * total / size))
