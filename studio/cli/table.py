"""Plain-text tables for the terminal; every cell may come from a file, so each is made printable."""

from __future__ import annotations

from collections.abc import Sequence

from studio.printable import printable


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell (`right`: right-aligned columns); the last column is left ragged."""
    table = [[printable(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = []
        for i, cell in enumerate(row):
            if i in right:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if i == len(row) - 1 else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
