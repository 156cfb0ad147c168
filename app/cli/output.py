"""What `casework cases` prints for a person: a case as labelled lines, a list as a table.

Times are shown in the policy's time zone with its abbreviation (`domain.times`), names
and values in words (`domain.text`); `--json` prints the API's objects instead,
for scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import text, times
from domain.sla import sla_badge

_LIST_COLUMNS = ("ID", "Type", "Stage", "Due", "Service level")


def _due(case: dict[str, Any], timezone: str) -> str:
    return times.short(case.get("due_at"), timezone) or "-"


def case_lines(case: dict[str, Any], timezone: str) -> str:
    """One case as `Label  value` lines: what it is, where it stands, what it says."""
    rows: list[tuple[str, str]] = [
        ("Case", f"{case['id']} ({text.words(case['type'])})"),
        ("Status", text.words(case["status"])),
        ("Stage", text.words(case["stage"])),
    ]
    if case.get("outcome"):
        rows.append(("Outcome", text.words(case["outcome"])))
    if "due_at" in case:  # an outline (a confidential case's reporter) has no due time
        rows.append(("Due", _due(case, timezone)))
        rows.append(("Service level", sla_badge(case).text))
        for key in ("requester", "assignee", "team"):
            rows.append((text.label(key), case.get(key) or "-"))
        for key in ("opened_at", "updated_at", "closed_at"):
            if case.get(key):
                rows.append((text.label(key.removesuffix("_at")), times.short(case[key], timezone)))
        for name, value in (case.get("details") or {}).items():
            rows.append((text.label(name), text.show(value)))
        for link in case.get("links") or []:
            rows.append(("Linked", f"{link['id']} ({text.words(link['relation'])})"))
    rows.append(("You may", ", ".join(text.words(a) for a in case.get("actions", [])) or "-"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def case_table(items: Sequence[dict[str, Any]], total: int, timezone: str) -> str:
    """Cases as a table with a header, then how many of how many are shown."""
    rows = [
        (
            case["id"],
            text.words(case["type"]),
            text.words(case["stage"]),
            _due(case, timezone) if "due_at" in case else "-",
            sla_badge(case).text,
        )
        for case in items
    ]
    widths = [max(len(str(r[i])) for r in [_LIST_COLUMNS, *rows]) for i in range(5)]
    lines = [
        "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [_LIST_COLUMNS, *rows]
    ]
    lines.append(f"{len(items)} of {total} case{'' if total == 1 else 's'}")
    return "\n".join(lines)
