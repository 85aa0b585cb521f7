"""The small TOML subset session records are written in, and a fast reader for it.

Records are written by `dump_table` below, so every line is `key = value` with a
bare key and a JSON-compatible value (basic string, integer, float, boolean or an
array of strings), or a table header. `fast_parse` reads exactly that subset with
one `json.loads` per table, which is several times quicker than `tomllib` on
10,000 entries; anything else (a hand edit with comments, literal strings, inline
tables...) returns None and the caller falls back to `tomllib`, so the file stays
plain TOML and any TOML a person writes is still read correctly.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.store.recipe_text import RecipeTexts

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # an escape JSON reads and TOML refuses (no scalar value)


def _json_only(text: str) -> bool:
    """Whether `text` holds what JSON reads and TOML refuses: "\\/", a raw DEL, a surrogate's escape."""
    return "\\/" in text or "\x7f" in text or ("\\u" in text and _SURROGATE.search(text) is not None)


def toml_str(text: str) -> str:
    """A TOML basic string that is also a JSON string (no escapes TOML lacks)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be stored in UTF-8 TOML
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    import json  # (in each function that uses it: the TUI's first frame imports this module, no JSON)

    out = json.dumps(text, ensure_ascii=False)
    # TOML forbids a raw DEL; JSON leaves it alone.
    return out.replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot store {value!r} in a session")
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot store a {type(value).__name__} in a session")


def dump_table(header: str, data: dict[str, Any], array: bool = False) -> list[str]:
    """Lines for one table: scalars first, then sub-tables and arrays of tables."""
    lines = [f"[[{header}]]" if array else f"[{header}]"]
    later: list[str] = []
    for key, value in data.items():
        if not _BARE_KEY.match(key):
            raise ValueError(f"bad key {key!r}")
        if isinstance(value, dict):
            later += dump_table(f"{header}.{key}", value)
        elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, dict) for v in value
        ):
            for item in value:
                later += dump_table(f"{header}.{key}", item, array=True)
        else:
            lines.append(f"{key} = {toml_value(value)}")
    return lines + later


_BODY = re.compile(r'(?:[A-Za-z0-9_-]+ = ["\-0-9tf\[][^\n]*\n)*')
_SKIP = re.compile(r"^(?:#[^\n]*|[ \t]*)(?:\n|\Z)", re.MULTILINE)
_TABLE_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def _as_json(body: str) -> tuple[str, int] | None:
    """`key = value` lines -> (one JSON object's text, number of keys), or None."""
    if body.startswith(("#", "\n")) or "\n#" in body or "\n\n" in body:
        body = _SKIP.sub("", body)  # comments and blank lines
    if not body:
        return "{}", 0
    if not body.endswith("\n"):
        body += "\n"
    lines = body.count("\n")
    # Every line `key = value`, and " = " nowhere else, so one replace makes JSON.
    if not _BODY.fullmatch(body) or body.count(" = ") != lines or _json_only(body):
        return None
    return '{"' + body[:-1].replace("\n", ',"').replace(" = ", '":') + "}", lines


def fast_parse(text: str, root: str) -> dict[str, Any] | None:
    """Parse a record written by `dump_table` (the text after its `[[root]]` line).

    Returns the root table, or None if anything is outside the written subset.
    """
    end = text.rfind("\n# end ", 0, len(text) - 1)
    if end >= 0 and text.find("\n", end + 1, len(text) - 1) < 0:
        text = text[: end + 1]  # drop the record's closing comment line
    # Values are one line each, so a line starting with "[" is a table header.
    chunks = ("\n" + text if text.startswith("[") else text).split("\n[")
    headers: list[str] = []
    objects: list[str] = []
    counts: list[int] = []
    for index, chunk in enumerate(chunks):
        if index:
            header, _, chunk = chunk.partition("\n")
            headers.append(header)
        prepared = _as_json(chunk)
        if prepared is None:
            return None
        objects.append(prepared[0])
        counts.append(prepared[1])
    import json

    try:
        tables = json.loads("[" + ",".join(objects) + "]")
    except ValueError:
        return None
    for table, count in zip(tables, counts):
        if not isinstance(table, dict) or len(table) != count:
            return None  # a duplicate key, or a value that smuggled in another
    result = tables[0]
    prefix = root + "."
    made_by_header: set[int] = set()  # arrays of tables; a static array cannot grow
    for header, table in zip(headers, tables[1:]):
        array = header.startswith("[")
        name = header[1:-2] if array else header[:-1]
        closing = header[-2:] == "]]" if array else header[-1:] == "]" and header[-2:] != "]]"
        if not closing or not _TABLE_NAME.fullmatch(name) or not name.startswith(prefix):
            return None
        node = result
        *parents, last = name[len(prefix) :].split(".")
        for part in parents:
            child = node.get(part)
            if isinstance(child, list) and child and isinstance(child[-1], dict):
                child = child[-1]
            if not isinstance(child, dict):
                return None
            node = child
        if array:
            existing = node.get(last)
            if existing is None:
                existing = node[last] = []
                made_by_header.add(id(existing))
            if id(existing) not in made_by_header:
                return None
            existing.append(table)
        else:
            if last in node:
                return None
            node[last] = table
    return result


# --- many session records at once --------------------------------------------------

_TAGS = {"S": "sweep", "H": "sheet"}  # the other tables of a record: a sweep's tag, a contact sheet's
_END_LINES = re.compile(r"\n# end \d+(?=\n)")


def fast_parse_records(text: str, texts: RecipeTexts | None = None) -> list[dict[str, Any]] | None:
    """Parse a run of records, each as `fast_parse` would, with one `json.loads`.

    `text` is the file's record bytes decoded: records (without their first
    `[[event]]` line) joined by "\\n[[event]]\\n", exactly as the writer lays
    them out. Returns None if anything differs, and the caller reads record by
    record instead. Since real newlines only ever end lines, replacing
    newline-anchored patterns can never touch a string's contents; and a " = "
    inside a string turns into a stray quote that JSON rejects. Odd keys or
    JSON-only values (null, NaN) get through here and are refused by the field
    checks that follow. With `texts`, recipe tables that share a template
    (`studio.store.recipe_text`) are parsed through it, the same dicts in less time.
    """
    if not text.endswith("\n"):
        text += "\n"
    if _json_only(text):
        return None
    expected = text.count(" = ")
    if texts is not None:
        cut = texts.reduce(text)
        if cut is None:
            return None
        text = cut
    body = _END_LINES.sub("", text)[:-1]
    body = body.replace("\n\n[[event]]\n", '}],[{"')
    body = body.replace("\n[event.recipe]\n", '},"R",{"')
    body = body.replace("\n[[event.recipe.loras]]\n", '},"L",{"')
    body = body.replace("\n[event.sweep]\n", '},"S",{"').replace("\n[event.sheet]\n", '},"H",{"')
    if "\n[" in body or "\n\n" in body or "\n#" in body or body.startswith(("[", "\n", "#")):
        return None  # a layout the writer never makes (other tables, comments)
    import json

    try:
        records = json.loads('[[{"' + body.replace("\n", ',"').replace(" = ", '":') + "}]]")
    except ValueError:
        return None
    try:
        return _assemble(records, expected, texts)
    except (TypeError, AttributeError, KeyError, IndexError):
        return None  # a shape no writer makes (a value that closed its table and opened another)


def _assemble(records: list[Any], expected: int, texts: RecipeTexts | None) -> list[dict[str, Any]] | None:
    """The parsed stretch (per record: its table, then tag and table for each sub-table) as events."""
    events = [parts[0] for parts in records]
    if not all(type(event) is dict for event in events):
        return None
    keys = sum(map(len, events))
    for parts in records:
        if len(parts) == 1:
            continue  # no tables: most records
        event = parts[0]
        for i in range(1, len(parts), 2):
            tag, table = parts[i], parts[i + 1]
            keys += len(table)
            if tag == "R" and "recipe" not in event:
                if texts is not None and texts.MARK in table:
                    table = texts.expand(table)
                    if table is None:
                        return None
                    keys += len(table) - 4
                event["recipe"] = table
            elif type(tag) is str and tag in _TAGS and _TAGS[tag] not in event:
                event[_TAGS[tag]] = table
            elif tag == "L" and isinstance(event.get("recipe"), dict) and "loras" not in event["recipe"]:
                event["recipe"]["loras"] = [table]
                event["_loras"] = True
            elif tag == "L" and event.get("_loras"):
                event["recipe"]["loras"].append(table)
            else:
                return None
        event.pop("_loras", None)
    # Duplicate keys collapse and smuggled ones add: either way the count is off.
    return events if keys == expected else None
