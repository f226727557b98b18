"""report.html: self-contained, the same tables as report.md, and its plots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.report.synthetic import known
from tests.report.test_results import make_experiment
from tune_app.report import write_reports

EXTERNAL = [
    re.compile(r"""\b(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I),  # fetched attributes
    re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.I),  # CSS
    re.compile(r"<link\b", re.I),
    re.compile(r"<script\b[^>]*\bsrc\b", re.I),
    re.compile(r"@import", re.I),
]


def assert_self_contained(text: str) -> None:
    for pattern in EXTERNAL:
        assert not pattern.search(text), pattern.pattern
    # The only URLs left are SVG namespace names, which browsers never fetch.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str, str]:
    exp = known(tmp_path_factory.mktemp("html") / "known")
    _, paths = write_reports(exp, by=("loss", "scheduler"))
    return exp, paths["html"].read_text(), paths["report"].read_text()


def test_report_html_is_one_self_contained_file(report):
    _, html, _ = report
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<style>" in html and "<script" not in html
    assert_self_contained(html)


def test_the_self_containment_check_catches_external_references():
    for bad in ['<img src="https://x.org/a.png">', '<link rel="stylesheet" href="a.css">',
                '<script src="app.js"></script>', "<style>body{background:url(http://x/y.png)}</style>",
                '<a href="//cdn.example.com/x">']:
        with pytest.raises(AssertionError):
            assert_self_contained(bad)


def test_report_html_has_the_plots(report):
    _, html, _ = report
    figures = re.findall(r"<figcaption>(.*?)</figcaption>\s*<svg", html)
    # learning curves, best so far over time, one per categorical parameter (freeze_depth, loss, loss.gamma,
    # scheduler, scheduler.step_size), the numeric ranges (lr, freeze_depth), importance
    assert len(figures) == 9 and html.count("<svg") == 9
    assert figures[0].startswith("Learning curves: <code>val_acc</code> per epoch, coloured by <code>loss</code>")
    assert figures[1] == "Best <code>val_acc</code> so far, over wall time"
    assert sum("per value of" in f for f in figures) == 5
    assert "<svg" in html.split("per value of <code>loss</code>")[1][:200]
    assert "<!DOCTYPE svg" not in html and "<?xml" not in html  # inlined as elements, not documents


def test_report_html_carries_the_tables_of_report_md(report):
    _, html, md = report
    assert list(re.findall(r"^## (.*)$", md, re.M)) == [
        re.sub(r"<code>(.*?)</code>", r"`\1`", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
            row = "".join(f"<t[dh][^>]*>{re.escape(c)}</t[dh]>" for c in cells)
            assert re.search(row.replace("±", "±"), html), line


def test_the_two_way_table_is_shaded_best_darkest(report):
    _, html, _ = report
    cells = dict(re.findall(r'rgba\(44, 160, 44, ([\d.]+)\)">([\d.]+ \(\d\))<', html))
    shades = {text: float(alpha) for alpha, text in cells.items()}
    assert max(shades, key=shades.get) == "0.9 (1)" and min(shades, key=shades.get) == "0.6 (1)"


def test_without_timestamps_the_time_plot_is_left_out(tmp_path):
    import json

    exp = make_experiment(tmp_path / "e")
    for result in exp.glob("*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines()]
        result.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "timestamp"}) + "\n"
                                  for r in lines))
    _, paths = write_reports(exp)
    html = paths["html"].read_text()
    assert "so far, over wall time" not in html and "Learning curves" in html
    assert "wall time unknown" in paths["report"].read_text()


def test_a_report_without_any_result_still_renders(tmp_path):
    exp = make_experiment(tmp_path / "e", trials=[(6, "aaaa0006", "PENDING", {"lr": 0.02}, None, None)], order=[6])
    _, paths = write_reports(exp)
    html = paths["html"].read_text()
    assert "No trial reported the metric." in html and "<svg" not in html
    assert_self_contained(html)
