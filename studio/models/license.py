"""A model's license, as its publisher declared it: the terms the user makes images under.

A diffusers folder (or a hub-cache snapshot) declares it in its model card's
front matter (`README.md`: `license`, `license_name`, `license_link`); a single
file in its safetensors header (`modelspec.license`). Both are anyone's text:
read bounded, shown through `printable` by the faces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from studio.bounded import open_regular
from studio.models.safetensors_header import HeaderError, read_header

CARD_BYTES = 64 << 10  # front matter sits at the top; the rest of a long card is never read
MAX_VALUE = 200
NON_COMMERCIAL, OTHER = "non-commercial", "other"


@dataclass(frozen=True)
class License:
    id: str  # the SPDX-like id ("openrail++", "other", "cc-by-nc-4.0"), "" when none is declared
    name: str = ""  # for "other": the publisher's name for it ("flux-1-dev-non-commercial-license")
    link: str = ""

    @property
    def flag(self) -> str:
        """'non-commercial', 'other' (read its terms) or '' for a known open license."""
        words = set(re.split(r"[^a-z0-9]+", f"{self.id} {self.name} {self.link}".lower()))
        text = f"{self.id} {self.name} {self.link}".lower().replace("_", "-")
        if "nc" in words or "non-commercial" in text or "noncommercial" in text:
            return NON_COMMERCIAL
        if self.id.lower() in ("other", "unknown", ""):
            return OTHER if self.id else ""
        return ""

    @property
    def recorded(self) -> str:
        """What a recipe records: the named license for "other", else the id."""
        return self.name if self.id.lower() == "other" and self.name else self.id

    def label(self) -> str:
        """One line for tables and reports, flags included: 'other: stable-cascade-nc-community (non-commercial)'."""
        if not self.id:
            return ""
        text = f"{self.id}: {self.name}" if self.name and self.name != self.id else self.id
        flag = self.flag
        if flag == NON_COMMERCIAL:
            text += " (non-commercial)"
        elif flag == OTHER:
            text += " (read its terms)"
        return text


def card_license(folder: Path) -> License:
    """The license in `folder/README.md`'s front matter; License('') when there is none or it cannot be read."""
    try:
        with open_regular(Path(folder) / "README.md") as handle:
            head = handle.read(CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return License("")
    fields = front_matter(head)
    return License(fields.get("license", ""), fields.get("license_name", ""), fields.get("license_link", ""))


def front_matter(text: str) -> dict[str, str]:
    """The top-level scalar keys of a card's YAML front matter (a list takes its first item)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    found: dict[str, str] = {}
    pending = ""  # a key whose value is a list on the lines below
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            break
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and pending:
            found.setdefault(pending, _scalar(item.group(1)))
            continue
        pair = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$", line)
        if not pair:
            continue
        key, value = pair.groups()
        pending = key if not value.strip() else ""
        if value.strip():
            found.setdefault(key, _scalar(value))
    return found


def _scalar(value: str) -> str:
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):  # license: [mit]
        value = value[1:-1].split(",")[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    else:
        value = value.split(" #")[0].strip()
    return " ".join(value.split())[:MAX_VALUE]


def header_license(metadata: Mapping[str, str]) -> License:
    """A single file's `modelspec.license` (and `modelspec.license_link`, if any)."""
    value = " ".join(str(metadata.get("modelspec.license", "")).split())[:MAX_VALUE]
    link = " ".join(str(metadata.get("modelspec.license_link", "")).split())[:MAX_VALUE]
    return License(value, "", link)


def license_of(path: Path, metadata: Mapping[str, str] | None = None) -> License:
    """A folder's card license, or a single file's header license (metadata given, or none)."""
    path = Path(path)
    if path.is_dir():
        return card_license(path)
    return header_license(metadata or {})


def recorded_license(path: Path) -> str:
    """The license id a recipe records for the model at `path` ("" when none is declared or readable)."""
    path = Path(path)
    if path.is_dir():
        return card_license(path).recorded
    if path.suffix.lower() != ".safetensors":
        return ""  # a pickle's metadata is not read for this
    try:
        return header_license(read_header(path).metadata).recorded
    except (HeaderError, OSError):
        return ""
