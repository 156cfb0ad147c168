"""Evidence files: stored by their content, uploaded to an investigation through the API
only by its investigator (checked before a byte is stored), and downloaded by those who
see the whole case, only while the stored bytes still match their hash."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from app import service
from app.api.limits import MAX_BODY
from app.cli.main import main
from app.platform.settings import Settings
from app.service.errors import Invalid
from app.service.evidence import MAX_EVIDENCE, Damaged, EvidenceStore, TooLarge
from app.service.services import Services
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


async def test_a_download_is_served_only_while_the_file_matches_its_hash(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    await store.store(chunks(PNG))
    opened, size = store.open_verified(PNG_SHA)
    with opened:
        assert (opened.read(), size) == (PNG, len(PNG))
    path = store.path_of(PNG_SHA)
    path.chmod(0o640)
    path.write_bytes(b"X" + PNG[1:])  # the same size, one byte changed
    with pytest.raises(Damaged, match="no longer has SHA-256"):
        store.open_verified(PNG_SHA)
    with pytest.raises(FileNotFoundError):
        store.open_verified(hashlib.sha256(b"never stored").hexdigest())


def test_evidence_may_be_larger_than_any_other_body() -> None:
    assert MAX_EVIDENCE == 100 * 1024 * 1024 > MAX_BODY
    assert Settings.from_env({}).evidence_max_bytes == MAX_EVIDENCE
    given = {"CASEWORK_EVIDENCE_MAX_BYTES": "2097152"}
    assert Settings.from_env(given).evidence_max_bytes == 2 * 1024 * 1024


# ---- the upload, through the API ---------------------------------------------------------------

SIRT = "sirt@dwp.gov.uk"
OUTSIDER = "loner@dwp.gov.uk"


# Small enough to go past in a test, larger than the 1 MiB every other request is held to.
EVIDENCE_LIMIT = 2 * 1024 * 1024
LARGE = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
LARGE_SHA = hashlib.sha256(LARGE).hexdigest()


@pytest.fixture
def evidence_services(services: Services) -> Services:
    return replace(
        services,
        settings=services.settings.model_copy(update={"evidence_max_bytes": EVIDENCE_LIMIT}),
    )


@pytest.fixture
async def api(evidence_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    add_people(evidence_services.sessions)
    async for client in http_client(evidence_services):
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
    too_big = await upload(api, case_id, auth[INVESTIGATOR.email], body=b"x" * (EVIDENCE_LIMIT + 1))
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "too_large")
    assert too_big.json()["error"]["message"] == f"body: larger than {EVIDENCE_LIMIT} bytes"

    async def unsized() -> AsyncIterator[bytes]:  # chunked: counted as it arrives
        for _ in range(EVIDENCE_LIMIT // 65536 + 1):
            yield b"x" * 65536

    streamed = await upload(api, case_id, auth[INVESTIGATOR.email], body=unsized())  # type: ignore[arg-type]
    assert streamed.status_code == 413
    assert stored_files(services.settings.data_dir) == []
    refused = [d["code"] for k, d in await audit(services, case_id) if k == "refused"]
    assert refused == ["invalid", "invalid"]  # the oversized bodies never reached the service


async def test_a_file_over_a_mebibyte_is_evidence_but_no_other_body_may_be(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    case_id = await open_investigation(services)
    response = await upload(api, case_id, auth[INVESTIGATOR.email], body=LARGE, sha256=LARGE_SHA)
    assert response.status_code == 201, response.text
    assert response.json()["evidence"] == {"sha256": LARGE_SHA, "size": len(LARGE), "new": True}
    comment = json.dumps({"action": "comment", "text": "x" * (MAX_BODY + 1)})
    headers = {**auth[INVESTIGATOR.email], "Content-Type": "application/json"}
    too_big = await api.post(f"/api/cases/{case_id}/actions", content=comment, headers=headers)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["message"] == f"body: larger than {MAX_BODY} bytes"
    # Only an upload's exact path is let through larger.
    elsewhere = await api.post(
        f"/api/cases/{case_id}/evidence/more", content=LARGE, headers=auth[INVESTIGATOR.email]
    )
    assert elsewhere.status_code == 413


async def test_evidence_on_a_case_type_without_it_is_an_unknown_action(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    ipa = await service.open_case(
        services,
        actor=REPORTER,  # who sees it whole (need to know) and uploads to it
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
    response = await upload(api, ipa["id"], auth[REPORTER.email])
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("action: unknown action 'add_evidence'")
    assert stored_files(services.settings.data_dir) == []


# ---- the download -------------------------------------------------------------------------


async def download(
    api: httpx.AsyncClient, case_id: str, who: dict[str, str], sha256: str = PNG_SHA
) -> httpx.Response:
    return await api.get(f"/api/cases/{case_id}/evidence/{sha256}", headers=who)


async def test_those_who_see_the_whole_case_download_its_evidence_as_uploaded(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    case_id = await open_investigation(services)
    await upload(api, case_id, auth[INVESTIGATOR.email])
    for who in (INVESTIGATOR.email, SIRT, "auditor@dwp.gov.uk"):
        got = await download(api, case_id, auth[who])
        assert got.status_code == 200, (who, got.text)
        assert got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-length"] == str(len(PNG))
        assert got.headers["content-disposition"] == (
            f'attachment; filename="{case_id}-{PNG_SHA[:12]}.png"'
        )
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["cache-control"] == "no-store"
    # Those who see only the outline, or nothing, learn nothing of it: not even that it exists.
    for who in (REPORTER.email, OUTSIDER):
        got = await download(api, case_id, auth[who])
        assert (got.status_code, got.json()["error"]["code"]) == (404, "not_found"), who
    assert (await api.get(f"/api/cases/{case_id}/evidence/{PNG_SHA}")).status_code == 401


async def test_a_large_file_comes_back_whole_and_the_type_recorded_is_what_is_served(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    case_id = await open_investigation(services)
    investigator = auth[INVESTIGATOR.email]
    headers = {**investigator, "Content-Type": "text/html"}  # served, but never as a page
    await api.post(
        f"/api/cases/{case_id}/evidence",
        params={"description": "Saved page"},
        content=LARGE,
        headers=headers,
    )
    got = await download(api, case_id, investigator, LARGE_SHA)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == LARGE_SHA
    assert got.headers["content-type"].startswith("text/html")
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"


async def test_only_evidence_the_case_records_is_served(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    investigator = auth[INVESTIGATOR.email]
    other = await open_investigation(services)
    await upload(api, other, investigator)  # stored, but recorded on the other case
    case_id = await open_investigation(services)
    got = await download(api, case_id, investigator)
    assert got.status_code == 404
    assert (
        got.json()["error"]["message"]
        == f"sha256: {case_id} records no evidence with SHA-256 {PNG_SHA}"
    )
    # A hash recorded without a file (evidence held elsewhere): nothing to download.
    only_hash = hashlib.sha256(b"held by the platform").hexdigest()
    await service.act(
        services,
        actor=INVESTIGATOR,
        case_id=case_id,
        action="add_evidence",
        fields={"description": "Platform export", "sha256": only_hash},
    )
    assert (await download(api, case_id, investigator, only_hash)).status_code == 404
    bad = await download(api, case_id, investigator, "not-a-hash")
    assert (bad.status_code, bad.json()["error"]["message"]) == (
        422,
        "sha256: must be 64 lower-case hexadecimal digits (a SHA-256)",
    )


async def test_a_tampered_file_is_refused_and_the_refusal_recorded(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]], services: Services
) -> None:
    case_id = await open_investigation(services)
    await upload(api, case_id, auth[INVESTIGATOR.email])
    path = EvidenceStore(services.settings.data_dir).path_of(PNG_SHA)
    path.chmod(0o640)
    path.write_bytes(PNG[:-1] + b"!")
    got = await download(api, case_id, auth[SIRT])
    assert (got.status_code, got.json()["error"]["code"]) == (409, "evidence_damaged")
    assert "no longer has SHA-256" in got.json()["error"]["message"]
    path.unlink()
    gone = await download(api, case_id, auth[SIRT])
    assert (gone.status_code, gone.json()["error"]["message"]) == (
        409,
        f"sha256: the file uploaded as {PNG_SHA} is no longer stored",
    )
    refused = [d for k, d in await audit(services, case_id) if k == "refused"]
    assert [(d["action"], d["code"]) for d in refused] == [
        ("download_evidence", "evidence_damaged"),
        ("download_evidence", "evidence_damaged"),
    ]


async def test_the_cli_downloads_evidence_checked(
    api: httpx.AsyncClient,
    auth: dict[str, dict[str, str]],
    services: Services,
    temporal_client: Client,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = await open_investigation(services)
    await upload(api, case_id, auth[INVESTIGATOR.email])
    for name, value in {
        "CASEWORK_DATA_DIR": str(services.settings.data_dir),
        "CASEWORK_DATABASE_URL": db_url,
        "CASEWORK_SMTP_HOST": "127.0.0.1",
        "CASEWORK_TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "CASEWORK_TASK_QUEUE": services.settings.task_queue,
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "screenshot.png"

    async def cli(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(argv))  # `main` runs its own event loop
        printed, err = capsys.readouterr()
        return code, printed, err

    args = ("cases", "evidence", case_id, PNG_SHA, "--out", str(out))
    code, printed, err = await cli(*args, "--as", SIRT)
    assert (code, err) == (0, "")
    assert printed == f"{out}: {len(PNG)} bytes, image/png, sha256 {PNG_SHA}\n"
    assert out.read_bytes() == PNG
    out.unlink()
    code, printed, err = await cli(*args, "--as", REPORTER.email)
    assert (code, printed, err) == (1, "", f"casework: case: no such case {case_id}\n")
    assert not out.exists()
