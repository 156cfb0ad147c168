"""The read model at scale: queue, overdue and search views over many cases, as the
product serves them, against the same filters through Temporal's workflow listing.

    python -m bench.read_model [--cases N] [--db sqlite,postgresql] [--reps R]
                               [--workflows W] [--start-budget S] [--quick]

Fills a new records database (a SQLite file in a temporary directory; a PostgreSQL
database `casework_bench_<pid>` made and dropped by the run) with N cases of all four
types through the models (one bulk insert per batch; a fixed seed, so every run holds
the same cases), then times `service.list_cases` (limit 50, its `total` included) for
a SAC officer, a SIRT investigator, an auditor and an employee: their queue, their
overdue cases and a search, R times each, interleaved. The baseline is a dev server
holding W of the same cases as running workflows with search attributes, listed by
`ListWorkflowExecutions` (a page of 50) plus `CountWorkflowExecutions` (the total)
with the same filter. W is N unless starting them would take longer than S seconds.

One module over 400 lines on purpose: a benchmark is one experiment, read from its
setup to its verdict in one file, as its figures in bench/RESULTS.md cite it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import random
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, insert, make_url, text
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from app import service
from app.platform.db import make_engine, migrate, session_factory
from app.platform.settings import Settings
from app.service.services import Services
from bench import rig
from bench.report import machine, percentile
from domain.policy import load_policy
from domain.records import search_text
from models import Case
from workflows import exception_types, investigation_types, ipa_types, referral_types
from workflows.common import Actor, CaseSnapshot
from workflows.registry import CASE_TYPES

SEED = 6
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY_TEXT = Path(__file__).resolve().parents[2] / "shared" / "policy" / "social-media-policy.txt"
DEFAULT_POSTGRES = rig.DEFAULT_POSTGRES
BATCH = 5000
LIMIT = 50

# Who reads, and the roles they hold (API.md's roles).
SAC = Actor("sac.officer3@dwp.gov.uk", ["sac"], "SAC Officer 3")
SIRT = Actor("sirt.investigator2@dwp.gov.uk", ["sirt"], "SIRT Investigator 2")
AUDITOR = Actor("auditor1@dwp.gov.uk", ["auditor"], "Auditor 1")
EMPLOYEE = Actor("employee17@dwp.gov.uk", [], "Employee 17")
READERS = {"sac officer": SAC, "sirt investigator": SIRT, "auditor": AUDITOR, "employee": EMPLOYEE}

# The share of each type, and of cases still open (10% of all cases are overdue).
TYPE_SHARE = {
    ipa_types.TYPE: 0.50,
    exception_types.TYPE: 0.15,
    investigation_types.TYPE: 0.20,
    referral_types.TYPE: 0.15,
}
OPEN_SHARE = 0.35
OVERDUE_SHARE = 0.10
EMPLOYEES, MANAGERS, OFFICERS, INVESTIGATORS, HR = 3000, 300, 12, 8, 6
PLATFORMS = ("LinkedIn", "X", "Facebook", "Instagram", "YouTube", "TikTok", "Mastodon", "Bluesky")
OUTCOMES = {
    ipa_types.TYPE: ("retired", "declined", "rejected", "lapsed", "revoked", "withdrawn"),
    exception_types.TYPE: ("expired", "rejected", "lapsed", "revoked", "withdrawn"),
    investigation_types.TYPE: (
        "substantiated",
        "unsubstantiated",
        "inconclusive",
        "no_further_action",
    ),
    referral_types.TYPE: ("no_action", "first_written_warning", "final_written_warning"),
}


# ---------------------------------------------------------------- the cases


# ASCII and typographic punctuation around a word (quotes and dashes), by code point.
PUNCTUATION = ".,;:()[]\"'/-" + "".join(map(chr, (0x2019, 0x2018, 0x201C, 0x201D, 0x2013, 0x2014)))


def vocabulary() -> list[str]:
    """Words of the policy itself, most frequent first: what cases are written about."""
    counts: dict[str, int] = {}
    for raw in POLICY_TEXT.read_text().lower().split():
        word = raw.strip(PUNCTUATION)
        if len(word) > 2 and word.isalpha():
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))


class Writer:
    """Prose of a few dozen words drawn Zipf-wise from the policy's vocabulary."""

    def __init__(self, rnd: random.Random, words: list[str]) -> None:
        self.rnd = rnd
        self.words = words
        self.weights = [1 / (rank + 1) for rank in range(len(words))]

    def prose(self, low: int, high: int) -> str:
        n = self.rnd.randint(low, high)
        return " ".join(self.rnd.choices(self.words, self.weights, k=n)).capitalize() + "."


def employee(n: int) -> str:
    return f"employee{n}@dwp.gov.uk"


def details_for(case_type: str, rnd: random.Random, w: Writer, requester: str) -> dict[str, Any]:
    platform = rnd.choice(PLATFORMS)
    if case_type == ipa_types.TYPE:
        return {
            "account_kind": rnd.choice(("individual_professional", "official", "linkedin")),
            "platform": platform,
            "handle": f"@{requester.split('@')[0]}_{rnd.randint(1, 99)}",
            "justification": w.prose(20, 50),
            "device": rnd.choices(("dwp_managed", "personal"), (0.9, 0.1))[0],
            "contact_email": requester.replace("dwp.gov.uk", "example.com"),
        }
    if case_type == exception_types.TYPE:
        return {
            "policy_section": rnd.choice(("5.1", "5.2", "3.2", "6.1")),
            "requirement": w.prose(6, 15),
            "justification": w.prose(20, 50),
            "mitigations": w.prose(10, 25),
        }
    if case_type == investigation_types.TYPE:
        kind = rnd.choice(investigation_types.PERPETRATOR_KINDS)
        perpetrator: dict[str, Any] = {"kind": kind}
        if kind == investigation_types.EMPLOYEE:
            perpetrator["email"] = employee(rnd.randrange(EMPLOYEES))
        return {
            "category": rnd.choice(investigation_types.CATEGORIES),
            "platform": platform,
            "description": w.prose(25, 60),
            "occurred_on": (NOW - timedelta(days=rnd.randint(1, 900))).date().isoformat(),
            "perpetrator": perpetrator,
        }
    return {
        "subject": employee(rnd.randrange(EMPLOYEES)),
        "breach": w.prose(20, 50),
        "policy_sections": rnd.choice(("4.1", "4.2, 6.2", "6.3", "6.4")),
    }


def open_stage_owner(
    case_type: str, stage: str, requester: str, parties: dict[str, str]
) -> str | None:
    party = CASE_TYPES[case_type].stage(stage).party
    if party is None:
        return None
    if party == "requester":
        return requester
    if party == "requester_manager":
        return f"manager{int(requester[8:].split('@')[0]) % MANAGERS}@dwp.gov.uk"
    return parties.get(party)


STAGES = {
    ipa_types.TYPE: ipa_types.STAGES,
    exception_types.TYPE: exception_types.STAGES,
    investigation_types.TYPE: investigation_types.STAGES,
    referral_types.TYPE: referral_types.STAGES,
}
PREFIX = {ipa_types.TYPE: "IPA", exception_types.TYPE: "PEX"}
PREFIX |= {investigation_types.TYPE: "ABU", referral_types.TYPE: "DIS"}
TEAM = {ipa_types.TYPE: "sac", exception_types.TYPE: "sac"}
TEAM |= {investigation_types.TYPE: "sirt", referral_types.TYPE: "hr"}
CONFIDENTIAL = {investigation_types.TYPE, referral_types.TYPE}


def cases(total: int) -> Iterator[dict[str, Any]]:
    """`total` case rows, oldest first, the same for every run (fixed seed)."""
    rnd = random.Random(SEED)
    writer = Writer(rnd, vocabulary())
    numbers = dict.fromkeys(TYPE_SHARE, 0)
    span = timedelta(days=3 * 365)
    types, shares = list(TYPE_SHARE), list(TYPE_SHARE.values())
    for n in range(total):
        case_type = rnd.choices(types, shares)[0]
        opened = NOW - span + span * (n / total) + timedelta(seconds=rnd.randint(0, 600))
        numbers[case_type] += 1
        case_id = f"{PREFIX[case_type]}-{opened.year}-{numbers[case_type]:06d}"
        requester = employee(rnd.randrange(EMPLOYEES))
        details = details_for(case_type, rnd, writer, requester)
        parties: dict[str, str] = {}
        assignee = None
        if case_type == investigation_types.TYPE:
            parties["investigator"] = f"sirt.investigator{rnd.randrange(INVESTIGATORS)}@dwp.gov.uk"
            assignee = parties["investigator"] if rnd.random() < 0.8 else None
            if email := details["perpetrator"].get("email"):
                parties["perpetrator"] = email
        elif case_type == referral_types.TYPE:
            parties["subject"] = details["subject"]
            parties["caseworker"] = f"hr.caseworker{rnd.randrange(HR)}@dwp.gov.uk"
            assignee = parties["caseworker"] if rnd.random() < 0.8 else None
        elif rnd.random() < 0.5:
            assignee = f"sac.officer{rnd.randrange(OFFICERS)}@dwp.gov.uk"
        # Recent cases are the open ones: the 35% newest are open, a few older ones too.
        is_open = rnd.random() < (0.9 if n > total * (1 - OPEN_SHARE) else 0.05)
        overdue = is_open and rnd.random() < OVERDUE_SHARE / OPEN_SHARE
        stages = STAGES[case_type]
        if is_open:
            stage = rnd.choice(stages)
            outcome, closed_at = None, None
            due = NOW - timedelta(hours=rnd.randint(1, 900)) if overdue else None
            due = due or NOW + timedelta(hours=rnd.randint(1, 900))
            owner = open_stage_owner(case_type, stage, requester, parties)
        else:
            stage = stages[-1]
            outcome = rnd.choice(OUTCOMES[case_type])
            closed_at = opened + timedelta(days=rnd.randint(1, 60))
            due, owner = None, None
        snapshot = CaseSnapshot(
            id=case_id,
            type=case_type,
            status="open" if is_open else "closed",
            stage=stage,
            requester=requester,
            opened_at=opened,
            updated_at=closed_at or opened,
            outcome=outcome,
            assignee=assignee,
            team=TEAM[case_type],
            owner=owner,
            due_at=due,
            overdue=overdue,
            escalation_level=rnd.randint(1, 3) if overdue else 0,
            closed_at=closed_at,
            details=details,
            parties=parties,
            policy_version="bench",
            confidential=case_type in CONFIDENTIAL,
        )
        yield row_of(snapshot)


def row_of(s: CaseSnapshot) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        "status": s.status,
        "stage": s.stage,
        "outcome": s.outcome,
        "requester": s.requester,
        "assignee": s.assignee,
        "team": s.team,
        "owner": s.owner,
        "due_at": s.due_at,
        "overdue": s.overdue,
        "escalation_level": s.escalation_level,
        "opened_at": s.opened_at,
        "updated_at": s.updated_at,
        "closed_at": s.closed_at,
        "details": s.details,
        "links": [],
        "parties": s.parties,
        "policy_version": s.policy_version,
        "confidential": s.confidential,
        "search_text": search_text(s),
        "version": 1,
    }


def fill(engine: Engine, total: int) -> float:
    """Insert the cases in batches; seconds taken. Then refresh the planner's statistics."""
    start = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in cases(total):
            batch.append(row)
            if len(batch) == BATCH:
                conn.execute(insert(Case), batch)
                batch = []
        if batch:
            conn.execute(insert(Case), batch)
    # What autovacuum does after a bulk load: planner statistics, and on PostgreSQL the
    # visibility map that lets an index-only scan skip the table.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    return time.perf_counter() - start


# ---------------------------------------------------------------- the views


@dataclass(frozen=True)
class View:
    """One list a reader opens: `list_cases` keyword arguments."""

    name: str
    reader: str
    filters: dict[str, Any]


def search_words() -> list[str]:
    """A common word, a middling one, a rare one, and two words together."""
    words = vocabulary()
    return [words[40], words[300], words[len(words) * 3 // 4], f"{words[60]} {words[120]}"]


def views() -> list[View]:
    result = []
    for reader in READERS:
        team = {"sac officer": "sac", "sirt investigator": "sirt"}.get(reader)
        queue: dict[str, Any] = {"status": "open"}
        if team:
            queue["team"] = team
        elif reader == "employee":
            queue["assignee"] = "me"
        result.append(View("queue", reader, queue))
        result.append(View("overdue", reader, {**queue, "assignee": None, "overdue": True}))
        for q in search_words():
            result.append(View("search", reader, {"q": q}))
    return result


@dataclass
class Timings:
    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    totals: dict[tuple[str, str, str], set[int]] = field(default_factory=dict)

    def add(self, view: View, seconds: float, total: int) -> None:
        self.seconds.setdefault((view.name, view.reader), []).append(seconds)
        key = (view.name, view.reader, view.filters.get("q") or "")
        self.totals.setdefault(key, set()).add(total)

    def of(self, name: str, reader: str | None = None) -> list[float]:
        return [
            s
            for (n, r), values in self.seconds.items()
            if n == name and reader in (None, r)
            for s in values
        ]


async def time_views(call: Callable[[View], Awaitable[int]], reps: int, warmup: int = 3) -> Timings:
    """Every view `reps` times, round-robin in a shuffled order, after `warmup` rounds."""
    all_views = views()
    rnd = random.Random(SEED)
    timings = Timings()
    for rep in range(warmup + reps):
        order = all_views[:]
        rnd.shuffle(order)
        for view in order:
            start = time.perf_counter()
            total = await call(view)
            elapsed = time.perf_counter() - start
            if rep >= warmup:
                timings.add(view, elapsed, total)
    return timings


def product(svc: Services) -> Callable[[View], Awaitable[int]]:
    async def call(view: View) -> int:
        items, total = await service.list_cases(
            svc, actor=READERS[view.reader], limit=LIMIT, **view.filters
        )
        if len(items) != min(total, LIMIT):
            raise RuntimeError(f"{view}: {len(items)} items for a total of {total}")
        return total

    return call


# ---------------------------------------------------------------- the databases


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A new, migrated records database: a SQLite file, or `casework_bench_<pid>`."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'read_model.db'}"
        migrate(url)
        yield url
        return
    admin = os.environ.get("CASEWORK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    name = f"casework_bench_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        pg_url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
        rendered = pg_url.render_as_string(hide_password=False)
        migrate(rendered)
        yield rendered
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def settings_for(url: str, workdir: Path, address: str) -> Settings:
    return Settings.from_env(
        {
            "CASEWORK_DATA_DIR": str(workdir),
            "CASEWORK_DATABASE_URL": url,
            "CASEWORK_TEMPORAL_ADDRESS": address,
        }
    )


async def measure_database(
    kind: str, workdir: Path, client: Client, address: str, args: argparse.Namespace
) -> Timings:
    with database(kind, workdir) as url:
        engine = make_engine(url)
        try:
            seconds = fill(engine, args.cases)
            print(f"{kind}: {args.cases} cases inserted in {seconds:.1f} s", flush=True)
            settings = settings_for(url, workdir, address)
            svc = Services(
                settings, session_factory(engine), client, load_policy(settings.policy_file)
            )
            return await time_views(product(svc), args.reps)
        finally:
            engine.dispose()


# ---------------------------------------------------------------- the baseline


KEYWORD, KEYWORD_LIST = (
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
)
ATTRIBUTES = {
    "CaseType": KEYWORD,
    "CaseStatus": KEYWORD,
    "CaseStage": KEYWORD,
    "CaseTeam": KEYWORD,
    "CaseOverdue": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "CaseOpenedAt": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    # Who may see the case whole, and who in outline (its parties).
    "CasePeople": KEYWORD_LIST,
    "CaseText": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
}
TYPE_KEY = SearchAttributeKey.for_keyword("CaseType")
STATUS_KEY = SearchAttributeKey.for_keyword("CaseStatus")
STAGE_KEY = SearchAttributeKey.for_keyword("CaseStage")
TEAM_KEY = SearchAttributeKey.for_keyword("CaseTeam")
OVERDUE_KEY = SearchAttributeKey.for_bool("CaseOverdue")
OPENED_KEY = SearchAttributeKey.for_datetime("CaseOpenedAt")
PEOPLE_KEY = SearchAttributeKey.for_keyword_list("CasePeople")
TEXT_KEY = SearchAttributeKey.for_text("CaseText")
TASK_QUEUE = "read-model-bench"  # no worker polls it: listing reads visibility only


def attributes_of(row: dict[str, Any]) -> TypedSearchAttributes:
    people = sorted({row["requester"], *(row["assignee"] or "",), *row["parties"].values()} - {""})
    return TypedSearchAttributes(
        [
            SearchAttributePair(TYPE_KEY, row["type"]),
            SearchAttributePair(STATUS_KEY, row["status"]),
            SearchAttributePair(STAGE_KEY, row["stage"]),
            SearchAttributePair(TEAM_KEY, row["team"]),
            SearchAttributePair(OVERDUE_KEY, row["overdue"]),
            SearchAttributePair(OPENED_KEY, row["opened_at"]),
            SearchAttributePair(PEOPLE_KEY, people),
            SearchAttributePair(TEXT_KEY, row["search_text"]),
        ]
    )


async def fill_temporal(
    client: Client, of: int, total: int, budget: float, concurrency: int = 32
) -> tuple[int, float]:
    """Start the newest `total` of the `of` cases as workflows (the open ones are the
    newest), stopping once `budget` seconds have passed; (how many started, seconds)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(search_attributes=ATTRIBUTES, namespace=rig.NAMESPACE)
    )
    rows = itertools.islice(cases(of), max(0, of - total), None)
    started, deadline, start = 0, time.monotonic() + budget, time.perf_counter()

    async def starter() -> None:
        nonlocal started
        for row in rows:
            if time.monotonic() > deadline:
                return
            await client.start_workflow(
                "CaseworkCase",
                id=row["id"],
                task_queue=TASK_QUEUE,
                search_attributes=attributes_of(row),
            )
            started += 1

    await asyncio.gather(*(starter() for _ in range(concurrency)))
    return started, time.perf_counter() - start


def quoted(value: str) -> str:
    return "'" + value.replace("'", "") + "'"


def temporal_query(view: View) -> str:
    """The view's filter and the reader's visibility, in Temporal's list filter language.

    Confidential types are seen whole by their teams and auditors (and their parties);
    everyone sees the others. A party's outline is approximated by naming them in
    `CasePeople`, which is what a Casework deployment on search attributes would do.
    """
    actor = READERS[view.reader]
    seen = [t for t in TYPE_SHARE if t not in CONFIDENTIAL]
    if "auditor" in actor.roles:
        seen = list(TYPE_SHARE)
    elif "sirt" in actor.roles:
        seen.append(investigation_types.TYPE)
    who = (
        f"CaseType IN ({', '.join(quoted(t) for t in seen)}) OR CasePeople = {quoted(actor.email)}"
    )
    parts = [f"({who})"]
    f = view.filters
    if f.get("status"):
        parts.append(f"CaseStatus = {quoted(f['status'])}")
    if f.get("team"):
        parts.append(f"CaseTeam = {quoted(f['team'])}")
    if f.get("assignee") == "me":
        parts.append(f"CasePeople = {quoted(actor.email)}")
    if f.get("overdue"):
        parts.append("CaseOverdue = true")
    for word in (f.get("q") or "").split():
        parts.append(f"CaseText = {quoted(word)}")
    # No ORDER BY: SQL visibility refuses it; it lists newest started first anyway.
    return " AND ".join(parts)


def listing(client: Client) -> Callable[[View], Awaitable[int]]:
    service_stub = client.workflow_service

    async def call(view: View) -> int:
        query = temporal_query(view)
        page = await service_stub.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=rig.NAMESPACE, page_size=LIMIT, query=query)
        )
        count = await service_stub.count_workflow_executions(
            CountWorkflowExecutionsRequest(namespace=rig.NAMESPACE, query=query)
        )
        if len(page.executions) != min(count.count, LIMIT):
            raise RuntimeError(f"{query}: {len(page.executions)} listed of {count.count}")
        return int(count.count)

    return call


# ---------------------------------------------------------------- the report


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000 if values else math.nan


def report(results: dict[str, Timings], workflows: int, cases_n: int) -> str:
    sides = list(results)
    header = ["view", "reader"] + [f"{s} p50/p95 ms" for s in sides]
    base = sides[-1]
    header += [f"{base} p95 / {s} p95" for s in sides[:-1]]
    rows = [header]
    keys = sorted({k for t in results.values() for k in t.seconds}, key=lambda k: (k[0], k[1]))
    for name in ("queue", "overdue", "search"):
        for reader in [None, *READERS]:
            if reader and (name, reader) not in keys:
                continue
            cells = [name, reader or "ALL"]
            p95 = {}
            for side in sides:
                values = results[side].of(name, reader)
                p95[side] = ms(values, 95)
                cells.append(f"{ms(values, 50):.1f} / {p95[side]:.1f}")
            for side in sides[:-1]:
                cells.append(f"{p95[base] / p95[side]:.0f}x")
            rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = f"read model: {cases_n} cases; {base}: {workflows} running workflows"
    return note + "\n" + "\n".join(lines)


def check_totals(results: dict[str, Timings]) -> list[str]:
    """Each database gives one `total` per view, and the same one on every database."""
    problems = []
    databases = [s for s in results if s != "temporal"]
    for key in results[databases[0]].totals:
        seen = {s: results[s].totals.get(key) for s in databases}
        if (
            any(v is None or len(v) != 1 for v in seen.values())
            or len({min(v or {0}) for v in seen.values()}) != 1
        ):
            problems.append(f"totals differ for {key}: {seen}")
    return problems


async def run(args: argparse.Namespace) -> None:
    results: dict[str, Timings] = {}
    with tempfile.TemporaryDirectory(prefix="casework-read-model-") as tmp:
        workdir = Path(tmp)
        async with rig.dev_server(workdir) as server:
            client = await Client.connect(server.address, namespace=rig.NAMESPACE)
            for kind in args.db:
                results[kind] = await measure_database(kind, workdir, client, server.address, args)
            wanted = args.workflows if args.workflows is not None else args.cases
            started = 0
            if wanted:
                started, seconds = await fill_temporal(
                    client, args.cases, wanted, args.start_budget
                )
                print(
                    f"temporal: {started} of {wanted} workflows started in {seconds:.0f} s"
                    f" ({started / seconds:.0f}/s)",
                    flush=True,
                )
                # Visibility is written asynchronously: wait until it shows them all.
                await wait_visible(client, started)
                results["temporal"] = await time_views(
                    listing(client), args.temporal_reps, warmup=1
                )
    for problem in check_totals(results):
        print("WARNING:", problem)
    print()
    print(report(results, started, args.cases))
    for kind in args.db:
        totals = {k: min(v) for k, v in results[kind].totals.items()}
        print(
            f"\n{kind} totals per view (reader): "
            + ", ".join(f"{k[0]}/{k[1]}={v}" for k, v in sorted(totals.items()))
        )
        break


async def wait_visible(client: Client, expected: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        count = await client.workflow_service.count_workflow_executions(
            CountWorkflowExecutionsRequest(namespace=rig.NAMESPACE, query="")
        )
        if count.count >= expected or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.5)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.read_model", description=__doc__)
    p.add_argument("--cases", type=int, default=100_000, help="cases in the read model")
    p.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    p.add_argument("--reps", type=int, default=30, help="timed rounds over every view")
    p.add_argument("--workflows", type=int, help="cases started on Temporal (default: --cases)")
    p.add_argument("--start-budget", type=float, default=600.0, help="seconds to start them in")
    p.add_argument("--temporal-reps", type=int, default=5, help="timed rounds on Temporal")
    p.add_argument("--quick", action="store_true", help="5,000 cases, few rounds: to try it")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    if any(d not in ("sqlite", "postgresql") for d in args.db) or not args.db:
        raise SystemExit("--db: sqlite, postgresql or both, comma-separated")
    if args.quick:
        args.cases, args.reps, args.temporal_reps = 5000, 10, 3
    print(machine())
    print(f"command: {shlex.join(['python', '-m', 'bench.read_model', *sys.argv[1:]])}", end="\n\n")
    # SIGTERM too (a shell's background job ignores SIGINT): clean up, as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupted)
    asyncio.run(run(args))


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
