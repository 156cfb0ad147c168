"""Verify a Casework events export on its own: standard library only, copy it anywhere.

    python verify_export.py events.jsonl [--cases cases.jsonl]
    python verify_export.py events.csv --cases cases.csv

The recipe, for anyone who would rather write their own:

1. Each event's hash is the SHA-256 (lower-case hex) of the UTF-8 bytes of this JSON
   object, keys sorted, no whitespace (separators "," and ":"), non-ASCII characters
   as themselves (not \\u escapes), no NaN:
   {"actor", "at", "case_id", "data", "key", "kind", "prev_hash", "seq", "stage"}
   with `seq` a number, `stage` a string or null, `data` the event's object, and `at`
   exactly as exported (UTC, microseconds, `Z`: "2026-03-02T09:00:00.000000Z").
   In CSV, `data` is that JSON object as text and an empty `stage` is null.
2. A case's events, in `seq` order, are numbered 1, 2, 3... with no gap; event 1's
   `prev_hash` is 64 zeros ("genesis") and every later event's is the hash of the one
   before. An export filtered by `since` or `type` may start a case part-way: its
   first event is then taken on trust as the anchor and the rest checked from it.
3. With the cases export, each case's `last_seq`/`last_hash` must be the last event
   exported for it: events cut from the end of a chain show up there.
4. An event anonymised under the retention policy has `data` {"_redacted": "..."}
   (that key alone) and its original hash, unchanged: the hash cannot be recomputed
   and is taken as the commitment to what was there, but step 2's links still hold,
   and a later event of kind "anonymised" (recomputed as usual) must record it.

Exit status 0 and "ok: ..." when everything checks, 1 and the first problem otherwise.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
REDACTED = "_redacted"
HASHED = ("case_id", "seq", "key", "at", "actor", "kind", "stage", "data", "prev_hash")


def recompute(row: dict[str, Any]) -> str:
    """The hash an exported event row should carry (step 1 of the recipe)."""
    body = {name: row[name] for name in HASHED}
    text = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines or CSV export (by extension), as JSON Lines would give them."""
    with path.open(encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            for row in csv.DictReader(f):
                yield _from_csv(row)
        else:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    for name in ("seq", "last_seq"):
        if name in out and out[name] != "":
            out[name] = int(out[name])
    for name in ("data", "details", "links", "parties"):
        if name in out and out[name] != "":
            out[name] = json.loads(out[name])
    for name in ("stage", "last_hash"):
        if name in out and out[name] == "":
            out[name] = None
    return out


@dataclass
class Report:
    ok: bool = True
    cases: int = 0
    events: int = 0
    anchored: list[str] = field(default_factory=list)  # cases exported from part-way
    problem: str | None = None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)


def verify_events(rows: Iterable[dict[str, Any]]) -> Report:
    """Steps 1 and 2 over rows ordered by case, then seq (as exported)."""
    report = Report()
    case_id: str | None = None
    seen: set[str] = set()
    expected_seq, prev = 0, GENESIS
    unrecorded: str | None = None  # a redacted event no later "anonymised" event covers
    for row in rows:
        report.events += 1
        where = f"{row['case_id']} event {row['seq']}"
        if row["case_id"] != case_id:
            if unrecorded:
                return _fail(report, unrecorded)
            case_id = row["case_id"]
            if case_id in seen:
                return _fail(report, f"{where}: case's events are not together in the export")
            seen.add(case_id)
            report.cases += 1
            if row["seq"] != 1:
                report.anchored.append(case_id)
            expected_seq, prev = row["seq"], row["prev_hash"] if row["seq"] != 1 else GENESIS
        if row["seq"] != expected_seq:
            return _fail(report, f"{row['case_id']} event {expected_seq}: missing or out of order")
        redacted = isinstance(row["data"], dict) and set(row["data"]) == {REDACTED}
        if not redacted and recompute(row) != row["hash"]:
            return _fail(report, f"{where}: hash does not match its contents")
        if row["prev_hash"] != prev:
            return _fail(report, f"{where}: prev_hash does not match the event before")
        if redacted:
            unrecorded = unrecorded or f"{where}: redacted, and no later anonymised event says so"
        elif row["kind"] == "anonymised":
            unrecorded = None
        report.heads[row["case_id"]] = (row["seq"], row["hash"])
        expected_seq, prev = expected_seq + 1, row["hash"]
    return _fail(report, unrecorded) if unrecorded else report


def check_heads(report: Report, cases: Iterable[dict[str, Any]]) -> Report:
    """Step 3: every case's chain ends where the cases export says it does."""
    for case in cases:
        exported = report.heads.get(case["id"])
        head = (case["last_seq"], case["last_hash"])
        if exported is not None and exported != head:
            return _fail(
                report,
                f"{case['id']}: chain ends at event {exported[0]}, the case says {head[0]}",
            )
    return report


def _fail(report: Report, problem: str) -> Report:
    report.ok, report.problem = False, problem
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Casework events export.")
    parser.add_argument("events", type=Path)
    parser.add_argument("--cases", type=Path, help="the cases export, to check chain heads")
    args = parser.parse_args(argv)
    report = verify_events(read_rows(args.events))
    if report.ok and args.cases:
        report = check_heads(report, read_rows(args.cases))
    if not report.ok:
        print(f"broken: {report.problem}", file=sys.stderr)
        return 1
    partial = f", {len(report.anchored)} from part-way" if report.anchored else ""
    print(f"ok: {report.cases} cases, {report.events} events{partial}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
