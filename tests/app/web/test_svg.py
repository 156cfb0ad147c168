"""The server-drawn charts: well-formed XML, accessible, every label escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.web.svg import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
NASTY = '<script>alert("x")</script> & "quotes"'


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_a_bar_chart_is_an_accessible_image_with_a_bar_per_value() -> None:
    root = parse(bar_chart("open", "Open cases", [("IPA approval", 3), ("Investigation", 1.5)]))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Open cases"
    assert desc is not None and desc.text == "IPA approval: 3; Investigation: 1.5"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    bars = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert len(bars) == 2 and bars[0] == 2 * bars[1] > 0  # drawn to scale
    assert "IPA approval" in texts(root) and "1.5" in texts(root)


def test_labels_and_titles_are_escaped() -> None:
    markup = bar_chart("x", NASTY, [(NASTY, 1)])
    assert "<script>" not in markup
    root = parse(markup)  # still well-formed
    assert NASTY in texts(root)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == NASTY
    line = line_chart('a"b', NASTY, [(NASTY, 50.0)])
    assert "<script>" not in line
    assert NASTY in texts(parse(line))


def test_ids_are_safe_and_distinct_per_chart() -> None:
    one = parse(bar_chart('a" onload="x', "A", [("a", 1)]))
    assert one.get("onload") is None
    ids = [e.get("id") for e in one.iter() if e.get("id")]
    assert all(i and i.replace("-", "").isalnum() for i in ids)
    two = parse(bar_chart("other", "B", [("b", 1)]))
    assert not {e.get("id") for e in one.iter()} & {e.get("id") for e in two.iter()} - {None}


def test_an_empty_chart_says_so() -> None:
    root = parse(bar_chart("none", "Nothing", []))
    assert "No data." in texts(root)
    assert not list(root.iter(f"{SVG}rect"))


def test_a_line_chart_leaves_a_gap_where_there_is_no_value() -> None:
    points = [("w1", 100.0), ("w2", 50.0), ("w3", None), ("w4", 0.0), ("w5", 25.0)]
    root = parse(line_chart("sla", "On time", points))
    lines = list(root.iter(f"{SVG}polyline"))
    assert [len((p.get("points") or "").split()) for p in lines] == [2, 2]
    dots = list(root.iter(f"{SVG}circle"))
    assert len(dots) == 4
    ys = [float(d.get("cy", "0")) for d in dots]
    assert ys[0] < ys[1] < ys[3] < ys[2]  # 100% highest on the page, 0% lowest
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None and "w3: no data" in desc.text
