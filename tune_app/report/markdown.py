"""``report.md``: the report's blocks as GitHub-flavoured Markdown (figures are HTML-only).

Example:
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"loss": ["ce"], "best": [0.912345]})))
    | loss | best |
    | --- | --- |
    | ce | 0.9123 |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .analysis import Analysis
from .blocks import Block
from .document import build_document
from .formatting import fmt


def markdown_table(frame: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table; floats with 4 significant digits, blanks for missing."""
    if index:
        frame = frame.reset_index()
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def render_blocks(blocks: Sequence[Block]) -> str:
    """Blocks as Markdown, one blank line between them."""
    parts = []
    for block in blocks:
        if block.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(block.kind[1]) + " " + block.text)
        elif block.kind == "text":
            parts.append(block.text)
        elif block.kind == "bullets":
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif block.kind == "table" and block.table is not None:
            parts.append(markdown_table(block.table, index=block.index))
    return "\n\n".join(parts) + "\n"


def render_report(analysis: Analysis) -> str:
    """The whole ``report.md`` text."""
    return render_blocks(build_document(analysis))
