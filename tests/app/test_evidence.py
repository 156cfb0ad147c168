"""Evidence files: stored by their content, and uploaded to an investigation through the
API only by its investigator, who is checked before a byte is stored."""

from __future__ import annotations

import asyncio
import hashlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app import service
from app.api import MAX_BODY
from app.bootstrap import Services
from app.errors import Invalid
from app.evidence import MAX_EVIDENCE, EvidenceStore, TooLarge
from tests.app.investigations import (
    INVESTIGATOR,
    REPORTER,
    add_people,
    bearer,
    http_client,
    open_investigation,
)
from workflows.common import Actor

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
PNG_SHA = hashlib.sha256(PNG).hexdigest()


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_files(root: Path) -> list[Path]:
    """Every file under the evidence store, uploads in progress included."""
    return sorted(p for p in (root / "evidence").rglob("*") if p.is_file())


# ---- the store --------------------------------------------------------------------------


async def test_a_file_is_stored_under_its_sha256_read_only(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    stored = await store.store(chunks(PNG))
    assert (stored.sha256, stored.size, stored.new) == (PNG_SHA, len(PNG), True)
    path = tmp_path / "evidence" / PNG_SHA[:2] / PNG_SHA
    assert store.path_of(PNG_SHA) == path and path.read_bytes() == PNG
    assert stored_files(tmp_path) == [path]  # nothing left of the upload
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert store.intact(PNG_SHA)
    with store.open(PNG_SHA) as f:
        assert f.read() == PNG


async def test_the_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    first = await store.store(chunks(PNG))
    again = await store.store(chunks(PNG, size=7), sha256=PNG_SHA)
    assert (first.new, again.new) == (True, False)
    at_once = await asyncio.gather(*(store.store(chunks(b"same " * 1000)) for _ in range(4)))
    assert sorted(s.new for s in at_once) == [False, False, False, True]
    assert len(stored_files(tmp_path)) == 2


async def test_a_given_sha256_is_checked_and_a_mismatch_stores_nothing(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    ok = await store.store(chunks(PNG), sha256=f" {PNG_SHA.upper()} ")
    assert ok.sha256 == PNG_SHA
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(Invalid) as info:
        await store.store(chunks(b"tampered"), sha256=wrong)
    assert info.value.message.startswith("sha256: the file received has SHA-256 ")
    assert info.value.status == 422
    assert stored_files(tmp_path) == [store.path_of(PNG_SHA)]


@pytest.mark.parametrize(
    ("data", "sha256", "error", "message"),
    [
        (b"", None, Invalid, "file: empty"),
        (b"x", "abc", Invalid, "sha256: must be 64 lower-case hexadecimal digits"),
        (b"x" * 101, None, TooLarge, "file: larger than 100 bytes"),
    ],
)
async def test_refused_uploads_leave_nothing(
    tmp_path: Path, data: bytes, sha256: str | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await EvidenceStore(tmp_path, limit=100).store(chunks(data, size=10), sha256=sha256)
    assert stored_files(tmp_path) == []


async def test_reading_stops_at_the_limit(tmp_path: Path) -> None:
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 1
            yield b"x" * 1000

    with pytest.raises(TooLarge):
        await EvidenceStore(tmp_path, limit=10_000).store(endless())
    assert read == 11


async def test_tampering_shows(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    await store.store(chunks(PNG))
    path = store.path_of(PNG_SHA)
    path.chmod(0o640)
    path.write_bytes(PNG + b"!")
    assert not store.intact(PNG_SHA)


def test_the_store_takes_what_the_api_lets_through() -> None:
    assert MAX_EVIDENCE == MAX_BODY


# ---- the upload, through the API ---------------------------------------------------------------

SIRT = "sirt@dwp.gov.uk"
OUTSIDER = "loner@dwp.gov.uk"


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    add_people(services.sessions)
    async for client in http_client(services):
        yield client


@pytest.fixture
def auth(api: httpx.AsyncClient, sessions: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    return bearer(
        sessions, INVESTIGATOR.email, REPORTER.email, SIRT, OUTSIDER, "auditor@dwp.gov.uk"
    )


async def upload(
    api: httpx.AsyncClient, case_id: str, who: dict[str, str], body: bytes = PNG, **params: str
) -> httpx.Response:
    params.setdefault("description", "Screenshot of the group post")
    headers = {**who, "Content-Type": "image/png"}
    return await api.post(
        f"/api/cases/{case_id}/evidence", params=params, content=body, headers=headers
    )


async def audit(services: Services, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    auditor = Actor("auditor@dwp.gov.uk", ["auditor"])
    events = await service.case_events(services, actor=auditor, case_id=case_id)
    return [(e["kind"], e["data"]) for e in events if e["kind"] != "emailed"]


async def test_the_investigator_uploads_evidence_and_the_case_records_its_hash(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    case_id = await open_investigation(services)
    response = await upload(
        api, case_id, auth[INVESTIGATOR.email], sha256=PNG_SHA, url="https://facebook.example/p/2"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["evidence"] == {"sha256": PNG_SHA, "size": len(PNG), "new": True}
    assert (body["case"]["id"], body["case"]["stage"]) == (case_id, "investigation")
    assert (services.settings.data_dir / "evidence" / PNG_SHA[:2] / PNG_SHA).read_bytes() == PNG
    again = await upload(api, case_id, auth[INVESTIGATOR.email], description="The same, again")
    assert again.json()["evidence"]["new"] is False
    recorded = [d for k, d in await audit(services, case_id) if k == "add_evidence"]
    assert recorded == [
        {
            "description": "Screenshot of the group post",
            "url": "https://facebook.example/p/2",
            "sha256": PNG_SHA,
            "size": len(PNG),
            "media_type": "image/png",
            "item": 1,
        },
        {
            "description": "The same, again",
            "sha256": PNG_SHA,
            "size": len(PNG),
            "media_type": "image/png",
            "item": 2,
        },
    ]


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        (OUTSIDER, 404, "not_found"),  # may not see it: as if there were no such case
        (REPORTER.email, 403, "forbidden"),  # sees its outline only
        (SIRT, 403, "forbidden"),  # sees it whole, but is not its investigator
        ("auditor@dwp.gov.uk", 403, "forbidden"),
    ],
)
async def test_only_the_investigator_may_upload_and_others_store_nothing(
    api: httpx.AsyncClient,
    auth: dict[str, dict[str, str]],
    services: Services,
    who: str,
    status: int,
    code: str,
) -> None:
    case_id = await open_investigation(services)
    response = await upload(api, case_id, auth[who])
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert stored_files(services.settings.data_dir) == []
    refused = [d for k, d in await audit(services, case_id) if k == "refused"]
    assert [(d["action"], d["code"]) for d in refused] == [("add_evidence", "forbidden")]


async def test_uploads_refused_before_storing(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    investigator = auth[INVESTIGATOR.email]
    in_triage = await open_investigation(services, assign=False)
    response = await upload(api, in_triage, auth[SIRT])
    assert response.status_code == 409  # evidence is gathered in the investigation
    case_id = await open_investigation(services)
    missing = await upload(api, case_id, investigator, description="")
    assert missing.status_code == 422
    assert missing.json()["error"]["message"] == "description: required"
    bad_url = await upload(api, case_id, investigator, url="ftp://x")
    assert bad_url.json()["error"]["message"].startswith("url: must be an http(s) URL")
    no_auth = await api.post(f"/api/cases/{case_id}/evidence", content=PNG)
    assert no_auth.status_code == 401
    assert stored_files(services.settings.data_dir) == []


async def test_a_damaged_upload_is_refused_and_recorded(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    case_id = await open_investigation(services)
    damaged = await upload(api, case_id, auth[INVESTIGATOR.email], body=PNG[:-1], sha256=PNG_SHA)
    assert damaged.status_code == 422
    assert damaged.json()["error"]["message"].startswith("sha256: the file received has")
    empty = await upload(api, case_id, auth[INVESTIGATOR.email], body=b"")
    assert empty.json()["error"]["message"].startswith("file: empty")
    too_big = await upload(api, case_id, auth[INVESTIGATOR.email], body=b"x" * (MAX_BODY + 1))
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "too_large")
    assert stored_files(services.settings.data_dir) == []
    refused = [d["code"] for k, d in await audit(services, case_id) if k == "refused"]
    assert refused == ["invalid", "invalid"]  # the oversized body never reached the service


async def test_evidence_on_a_case_type_without_it_is_an_unknown_action(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    ipa = await service.open_case(
        services,
        actor=Actor("employee@dwp.gov.uk", []),
        case_type="ipa_approval",
        details={
            "account_kind": "individual_professional",
            "platform": "X",
            "handle": "@jobs",
            "justification": "Job fairs",
            "device": "dwp_managed",
            "contact_email": "jo@example.com",
        },
    )
    response = await upload(api, ipa["id"], auth[SIRT])
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("action: unknown action 'add_evidence'")
    assert stored_files(services.settings.data_dir) == []
