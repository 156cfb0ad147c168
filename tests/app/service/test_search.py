"""`q=` search through its index (migration 0003: FTS5 on SQLite, trigram on PostgreSQL)
answers exactly what the rule says: every word a substring of the case's search text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, text

from app import service
from app.service.services import Services
from domain.records import search_text, upsert_case
from models import Case
from workflows import ipa_types
from workflows.common import Actor, CaseSnapshot

AUDITOR = Actor("auditor@dwp.gov.uk", ["auditor"], "Auditor")
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
LATER = START + timedelta(days=1)

# Justifications with what a search index can get wrong: words inside words, case,
# LIKE's wildcards and escape, FTS5's quotes and operators, letters beyond ASCII.
TEXTS = (
    "Monitoring the official channel",
    "monitor only; unofficially OFFICIAL",
    "100% of posts, under_score names",
    'a "quoted" word and o\'brien',
    "star* AND NOT near(x) column:value",
    "Café ŁÓDŹ naïve straße",
    "ab xy mo",
    "nothing in common",
)
QUERIES = (
    "monitor",
    "MONITORING",
    "onitor offici",
    "official",
    "unofficially official",
    "100%",
    "%",
    "_",
    "under_score",
    '"quoted"',
    '"',
    "o'brien",
    "star*",
    "AND",
    "not near(x)",
    "column:value",
    "café łódź",
    "ŁÓDŹ",
    "straße",
    "ab",
    "mo x",
    "a",
    "ipa-2026",
    "zzz",
    "monitor zzz",
)


def _case(n: int, justification: str, at: datetime) -> CaseSnapshot:
    return CaseSnapshot(
        id=f"IPA-2026-{n:06d}",
        type=ipa_types.TYPE,
        status="open",
        stage="sac_review",
        requester=f"requester{n}@dwp.gov.uk",
        opened_at=at,
        updated_at=at,
        team="sac",
        details={"justification": justification, "handle": f"@handle{n}"},
        parties={"requester": f"requester{n}@dwp.gov.uk"},
    )


async def _search(svc: Services, q: str, **page: Any) -> tuple[list[str], int]:
    items, total = await service.list_cases(svc, actor=AUDITOR, q=q, **page)
    return [i["id"] for i in items], total


async def test_search_finds_exactly_the_cases_whose_text_holds_every_word(
    offline_services: Services,
) -> None:
    cases = [_case(n, t, START + timedelta(hours=n)) for n, t in enumerate(TEXTS, 1)]
    with offline_services.sessions.begin() as session:
        for case in cases:
            upsert_case(session, case)
    newest_first = cases[::-1]
    for q in QUERIES:
        words = q.lower().split()
        expected = [c.id for c in newest_first if all(w in search_text(c) for w in words)]
        assert await _search(offline_services, q) == (expected, len(expected)), q
    # Pages of a search, and a page past its end, keep the total.
    everything = [c.id for c in newest_first]
    assert await _search(offline_services, "ipa", limit=3) == (everything[:3], len(cases))
    assert await _search(offline_services, "ipa", limit=3, offset=6) == (everything[6:], 8)
    assert await _search(offline_services, "ipa", offset=8) == ([], 8)
    assert await _search(offline_services, "zzz", offset=3) == ([], 0)


async def test_search_follows_every_write_to_the_case(offline_services: Services) -> None:
    first = _case(1, "alpha version", START)
    other = _case(2, "beta version", START + timedelta(hours=1))
    with offline_services.sessions.begin() as session:
        upsert_case(session, first)
        upsert_case(session, other)
    assert await _search(offline_services, "alpha") == ([first.id], 1)

    rewritten = replace(_case(1, "omega version", START), updated_at=LATER)
    with offline_services.sessions.begin() as session:
        upsert_case(session, rewritten)
    assert await _search(offline_services, "alpha") == ([], 0)
    assert await _search(offline_services, "omega") == ([first.id], 1)
    assert await _search(offline_services, "version") == ([other.id, first.id], 2)

    with offline_services.sessions.begin() as session:
        session.execute(delete(Case).where(Case.id == first.id))
        upsert_case(session, _case(3, "gamma", START + timedelta(hours=2)))
    assert await _search(offline_services, "omega") == ([], 0)
    assert await _search(offline_services, "version") == ([other.id], 1)
    assert await _search(offline_services, "gamma") == (["IPA-2026-000003"], 1)


async def test_sqlite_search_index_holds_what_the_cases_hold(offline_services: Services) -> None:
    """The FTS5 table itself, not only the answers the exact check lets through."""
    with offline_services.sessions.begin() as session:
        if session.get_bind().dialect.name != "sqlite":
            pytest.skip("SQLite's FTS5 table")
        upsert_case(session, _case(1, "alpha", START))
        upsert_case(session, _case(2, "beta", START))
    with offline_services.sessions.begin() as session:
        upsert_case(session, replace(_case(1, "omega", START), updated_at=LATER))
        session.execute(delete(Case).where(Case.id == "IPA-2026-000002"))

    def indexed(word: str) -> list[str]:
        with offline_services.sessions() as session:
            match = text(
                "SELECT id FROM cases WHERE rowid IN"
                " (SELECT rowid FROM cases_search WHERE cases_search MATCH :q)"
            )
            return list(session.scalars(match, {"q": f'"{word}"'}))

    assert (indexed("alpha"), indexed("beta"), indexed("omega")) == ([], [], ["IPA-2026-000001"])
    with offline_services.sessions.begin() as session:
        session.execute(text("INSERT INTO cases_search(cases_search) VALUES ('integrity-check')"))
