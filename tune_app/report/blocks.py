"""One piece of a report (a heading, a paragraph, bullets, a table, a figure), for any renderer."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class Block:
    """One piece of a report.

    ``kind`` is ``h1``/``h2``/``h3`` (``text``), ``text`` (a paragraph), ``bullets``
    (``items``), ``table`` (``table``, with its index when ``index``; ``shade`` holds, for
    some columns, numbers that HTML colours cells by, higher is better) or ``figure`` (``key`` names the plot,
    ``text`` its title).
    """

    kind: str
    text: str = ""
    items: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    index: bool = False
    shade: pd.DataFrame | None = None
    key: str = ""
