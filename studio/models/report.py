"""Plain-text views of the model library, shared by the CLI and the TUI's inspector."""

from __future__ import annotations

from studio.models.inspect import Inspection
from studio.printable import printable

# Metadata worth a line of its own; the rest is shown with --metadata.
HIGHLIGHTS = (
    "modelspec.title", "modelspec.author", "modelspec.license", "modelspec.architecture",
    "modelspec.description", "modelspec.date", "modelspec.trigger_phrase",
    "ss_output_name", "ss_sd_model_name", "ss_base_model_version", "ss_network_module",
    "ss_network_dim", "ss_network_alpha", "ss_num_train_images", "ss_num_epochs",
    "ss_resolution", "ss_learning_rate",
)
LABELS = {
    "modelspec.title": "title", "modelspec.author": "author", "modelspec.license": "license",
    "modelspec.architecture": "declared as", "modelspec.description": "description",
    "modelspec.date": "date", "modelspec.trigger_phrase": "trigger phrase",
}


def format_inspection(result: Inspection, *, all_metadata: bool = False, tags: int = 20) -> str:
    """A plain-text report, every line printable (metadata is anyone's text); the TUI's inspector shows the same lines."""
    total = sum(result.dtypes.values()) or 1
    dtypes = ", ".join(
        f"{name} {count / total:.0%}" for name, count in sorted(result.dtypes.items(), key=lambda i: -i[1])
    )
    rows = [
        ("kind", result.kind),
        ("architecture", result.architecture),
        ("format", f"{result.format}, {result.tensors:,} tensors"),
        ("parameters", f"{human_count(result.params)} ({result.params:,})"),
        ("dtypes", dtypes or "-"),
        ("size", human_bytes(result.size)),
        ("license", _license_line(result)),
    ]
    rows += [("note", note) for note in result.notes]
    shown = [k for k in (result.metadata if all_metadata else HIGHLIGHTS) if k in result.metadata]
    if not all_metadata:
        shown = [k for k in shown if k != "modelspec.license"]  # the license row above says it
    rows += [(LABELS.get(key, key), _short(result.metadata[key], all_metadata)) for key in shown]
    lines = [str(result.path)]
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    hidden = len(result.metadata) - len(shown) - ("ss_tag_frequency" in result.metadata and not all_metadata)
    hidden -= "modelspec.license" in result.metadata and not all_metadata
    if hidden > 0:
        lines.append(f"  ({hidden} more metadata {'entry' if hidden == 1 else 'entries'}; --metadata shows them)")
    if result.tags and tags > 0:
        lines.append(f"training tags (top {min(tags, len(result.tags))} of {len(result.tags)}):")
        count_width = len(str(result.tags[0][1]))
        for rank, (tag, count) in enumerate(result.tags[:tags], 1):
            lines.append(f"  {rank:>3}. {count:>{count_width}}  {tag}")
    return "\n".join(printable(line) for line in lines)


def _license_line(result: Inspection) -> str:
    lic = result.license
    if not lic.id:
        return "not declared (no model card front matter or modelspec.license)"
    return lic.label() + (f" <{lic.link}>" if lic.link else "")


def _short(value: str, full: bool) -> str:
    value = " ".join(value.split())
    return value if full or len(value) <= 100 else value[:97] + "..."


def human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"
