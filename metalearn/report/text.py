"""Plain-text building blocks of the report: a value as the report shows it, and aligned Markdown tables."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence


def display(value: Any) -> str:
    """A config value as YAML writes it: null, true, 0.001, [1, 2]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """A Markdown table padded so that its columns line up in plain text too; columns `right` are right-aligned."""
    cells = [[_cell(str(c)) for c in header]] + [[_cell(str(c)) for c in row] for row in rows]
    right = set(right)
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(cells[0]), line(rule), *(line(row) for row in cells[1:])])
