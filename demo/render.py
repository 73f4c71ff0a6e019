"""Terminal rendering for the demo: a progress bar, plain tables and a trace tree.

No dependency beyond the standard library; output is plain text (UTF-8 box
characters only in the tree), so it reads the same in a terminal, a CI log or
a captured test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TextIO

# -- numbers for display only (stored values stay exact) ------------------------


def money(value: Any, places: int = 4) -> str:
    """``$0.1234``: a USD amount rounded for display (cents would hide most single calls)."""
    amount = Decimal(str(value or 0)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"${amount:,.{places}f}"


def count(value: Any) -> str:
    """``12,345``."""
    return f"{int(value or 0):,}"


def millis(duration_ns: Any) -> str:
    """A duration in ns as ``1,234 ms`` (or ``12.3 s`` when long)."""
    ms = int(duration_ns or 0) / 1e6
    if ms >= 10_000:
        return f"{ms / 1000:,.1f} s"
    return f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


# -- tables -------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace("$", "").replace(" ms", "").replace(" s", "").replace("%", "")
    try:
        float(stripped)
        return True
    except ValueError:
        return False


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "  ") -> str:
    """A plain aligned table: numbers right-aligned, text left-aligned."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(cells) and all(_is_number(r[i]) or r[i] == "" for r in cells) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))
        ]
        return (indent + "  ".join(parts)).rstrip()

    out = [line(columns), indent + "  ".join("─" * w for w in widths)]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def heading(title: str) -> str:
    return f"\n{title}\n{'═' * len(title)}"


def section(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A headed table: one section of the demo's report."""
    return heading(title) + "\n" + table(columns, rows)


# -- the progress bar -----------------------------------------------------------------


class ProgressBar:
    """``[██████░░░░]  60%  12/20 tickets · 341 spans`` redrawn in place with ``\\r``."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 28, min_interval_s: float = 0.05) -> None:
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._last_draw = 0.0
        self._last_len = 0
        self.done = 0

    def update(self, done: int, note: str = "", force: bool = False) -> None:
        self.done = min(max(int(done), 0), self.total)
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval_s and self.done < self.total:
            return
        self._last_draw = now
        filled = round(self.width * self.done / self.total)
        bar = "█" * filled + "░" * (self.width - filled)
        text = f"\r  [{bar}] {100 * self.done // self.total:3d}%  {note}"
        pad = max(self._last_len - len(text), 0)
        self._last_len = len(text)
        try:
            self.stream.write(text + " " * pad)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream must not break the demo
            pass

    def finish(self, note: str = "") -> None:
        self.update(self.total, note, force=True)
        try:
            self.stream.write("\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


# -- a trace as a tree -----------------------------------------------------------------


@dataclass
class TreeNode:
    span_id: str
    parent_id: str
    label: str  # what to print for this span
    start_ns: int
    error: bool = False
    children: list[TreeNode] = field(default_factory=list)


def render_tree(nodes: Sequence[TreeNode], max_lines: int = 80) -> str:
    """Indent spans under their parents with ├─ └─; ✗ marks errors.  Orphans are shown as roots."""
    by_id = {n.span_id: n for n in nodes}
    roots: list[TreeNode] = []
    for node in nodes:
        node.children = []
    for node in sorted(nodes, key=lambda n: n.start_ns):
        parent = by_id.get(node.parent_id) if node.parent_id else None
        (parent.children if parent is not None else roots).append(node)

    lines: list[str] = []

    def walk(node: TreeNode, prefix: str, last: bool, root: bool) -> None:
        mark = "✗ " if node.error else ""
        connector = "" if root else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{connector}{mark}{node.label}")
        child_prefix = prefix if root else prefix + ("   " if last else "│  ")
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    for root in roots:
        walk(root, "  ", True, True)
    if len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = lines[:max_lines] + [f"  … {hidden} more span{'s' if hidden != 1 else ''}"]
    return "\n".join(lines)
