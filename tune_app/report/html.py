"""``report.html``: the report's blocks plus plots, in one self-contained file.

Everything is inline: CSS in a ``<style>`` element, plots as ``<svg>`` elements; no
script, no font, no stylesheet or image is fetched, so the file opens offline and can be
mailed or attached to a ticket as is.

Example:
    >>> text = render_html(analyze("tune_results/quickstart"))  # doctest: +SKIP
    >>> "<svg" in text and "http" not in text.split("<svg")[0]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence

import pandas as pd

from .analysis import Analysis
from .blocks import Block
from .document import build_document
from .formatting import fmt, looks_numeric

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222;
       max-width: 1360px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 24px; margin-bottom: 8px; } h2 { font-size: 19px; margin-top: 34px; border-bottom: 1px solid #ddd;
padding-bottom: 4px; } h3 { font-size: 15px; margin-top: 22px; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; font-size: 90%; }
nav { font-size: 13px; color: #555; margin: 8px 0 4px; } nav a { margin-right: 12px; color: #1f5fa8; }
.scroll { overflow-x: auto; }
.row { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.row > .scroll { flex: 0 1 auto; max-width: 100%; } .row > figure { flex: 1 1 420px; max-width: 560px; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #f5f7fa; } tbody tr:nth-child(even) { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 260px; }
figure { margin: 14px 0 6px; } figcaption { font-size: 13px; color: #555; margin-bottom: 4px; }
figure svg { max-width: 100%; height: auto; }
p.note { color: #555; }
"""

PlotFn = Callable[[str], "str | None"]


def render_html(analysis: Analysis, plots: bool = True) -> str:
    """The whole ``report.html`` text (``plots=False`` leaves the figures out: faster)."""
    from . import plots as drawing  # matplotlib loads only when HTML is written

    registry: dict[str, Callable[[], str | None]] = {
        "curves": lambda: drawing.learning_curves(analysis),
        "progress": lambda: drawing.progress(analysis),
        "numeric": lambda: drawing.numeric_effects_plot(analysis),
        "importance": lambda: drawing.importance_bars(analysis),
    }

    def plot(key: str) -> str | None:
        if not plots:
            return None
        if key.startswith("values:"):
            return drawing.value_distribution(analysis, key.split(":", 1)[1])
        return registry[key]()

    title = f"tune-app report: {analysis.spec.get('name', analysis.experiment_dir.name)}"
    return render_page(title, build_document(analysis), plot)


def render_page(title: str, blocks: Sequence[Block], plot: PlotFn) -> str:
    """A standalone page of ``blocks``; ``plot(key)`` gives a figure's SVG (or None to leave it out)."""
    body, toc, used = [], [], set()
    previous: Block | None = None
    for block in blocks:
        if block.kind in ("h1", "h2", "h3"):
            anchor = _anchor(block.text, used)
            if block.kind == "h2":
                toc.append((anchor, block.text))
            body.append(f'<{block.kind} id="{anchor}">{inline(block.text)}</{block.kind}>')
        elif block.kind == "text":
            body.append(f'<p class="note">{inline(block.text)}</p>')
        elif block.kind == "bullets":
            body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block.items) + "</ul>")
        elif block.kind == "table" and block.table is not None:
            body.append(table_html(block.table, index=block.index, shade=block.shade))
        elif block.kind == "figure":
            svg = plot(block.key)
            if svg:
                figure = f"<figure><figcaption>{inline(block.text)}</figcaption>{svg}</figure>"
                beside = block.key.startswith("values:") or block.key == "importance"  # small table, small plot
                if beside and previous is not None and previous.kind == "table":
                    body[-1] = f'<div class="row">{body[-1]}{figure}</div>'  # a table and its plot side by side
                else:
                    body.append(figure)
        previous = block
    nav = "<nav>" + "".join(f'<a href="#{a}">{inline(t)}</a>' for a, t in toc) + "</nav>" if toc else ""
    if body and body[0].startswith("<h1"):
        body.insert(1, nav)
    else:
        body.insert(0, nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def inline(text: str) -> str:
    """Escape ``text`` for HTML, then render its Markdown ``code`` and ``**bold**`` spans."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def table_html(frame: pd.DataFrame, index: bool = False, shade: pd.DataFrame | None = None) -> str:
    """A table; numbers right-aligned; cells of ``shade``'s columns tinted green by its value (higher: darker)."""
    if index:
        frame = frame.reset_index()
    lo, hi = _bounds(shade)
    head = "".join(f"<th>{html.escape(fmt(c))}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for j, value in enumerate(row):
            column = frame.columns[j]
            classes = "num" if looks_numeric(value) else ("wrap" if column in ("error", "parameters") else "")
            style = ""
            if shade is not None and column in shade.columns and i < len(shade):
                level = shade[column].iloc[i]
                if not (isinstance(level, float) and math.isnan(level)) and hi > lo:
                    style = f' style="background: rgba(44, 160, 44, {0.08 + 0.5 * (level - lo) / (hi - lo):.2f})"'
                elif not (isinstance(level, float) and math.isnan(level)):
                    style = ' style="background: rgba(44, 160, 44, 0.3)"'
            cls = f' class="{classes}"' if classes else ""
            cells.append(f"<td{cls}{style}>{html.escape(fmt(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>' + "".join(rows)
            + "</tbody></table></div>")


def _bounds(shade: pd.DataFrame | None) -> tuple[float, float]:
    if shade is None:
        return 0.0, 0.0
    values = shade.to_numpy(dtype=float).ravel()
    values = values[~pd.isna(values)]
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)


def _anchor(text: str, used: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    candidate, n = slug, 2
    while candidate in used:
        candidate, n = f"{slug}-{n}", n + 1
    used.add(candidate)
    return candidate
