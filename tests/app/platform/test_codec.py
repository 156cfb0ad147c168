"""Temporal payloads are encrypted (app.platform.codec): whoever reads a workflow's raw history
finds no details, evidence or notes of a confidential case; a wrong key is a clear
error; a key rotated out of first place still decrypts what it encrypted."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, Worker

from app import service
from app.platform.codec import (
    KEY_FILE,
    AesGcmCodec,
    PayloadDecryptionError,
    PayloadKeyError,
    embedded_keys,
    format_keys,
    new_key,
    parse_keys,
)
from app.platform.db import session_factory
from app.platform.settings import Settings, SettingsError
from app.platform.temporal import converter_for, payload_codec, plaintext_warning
from app.service.errors import Forbidden
from app.service.services import Services
from domain.policy import load_policy
from tests.app.conftest import start_numbering_afresh
from tests.app.investigations import (
    INVESTIGATOR,
    REPORTER,
    SECRET_WORD,
    add_people,
    open_investigation,
)
from tests.fixtures_temporal import SmtpSink, make_settings
from worker import WORKFLOWS, build_worker, workflow_runner
from workflows.common import CaseSnapshot
from workflows.registry import SNAPSHOT_QUERY

EVIDENCE_WORD = "quetzalcoatl"  # in an evidence description only
NOTE_WORD = "ouagadougou"  # in a comment only
SECRETS = (SECRET_WORD.encode(), EVIDENCE_WORD.encode(), NOTE_WORD.encode())

OLD, NEW = new_key("old"), new_key("new")


def with_codec(client: Client, codec: AesGcmCodec | None) -> Client:
    """The same connection, its payloads through `codec` as `app.platform.temporal.connect` does."""
    config = client.config()
    config["data_converter"] = converter_for(codec)
    return Client(**config)


async def raw_history(client: Client, case_id: str) -> bytes:
    """Every byte of the workflow's history as the server holds it (payloads untouched)."""
    history = await client.get_workflow_handle(case_id).fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


class Stack:
    """Workers and services on the test's time-skipping server, each client with its codec."""

    def __init__(self, settings: Settings, engine: Engine, plain: Client) -> None:
        self.settings, self.engine, self.plain = settings, engine, plain
        self.workers: list[tuple[Worker, asyncio.Task[None]]] = []
        self.sessions = session_factory(engine)
        start_numbering_afresh(self.sessions)
        add_people(self.sessions)

    def services(
        self, codec: AesGcmCodec | None, queue: str | None = None, cache: int = 1000
    ) -> Services:
        """Services whose client encrypts with `codec` (None: plaintext), a worker with the
        same codec on `queue` (a new one unless given) caching `cache` workflows."""
        client = with_codec(self.plain, codec)
        queue = queue or f"test-{uuid.uuid4().hex[:8]}"
        worker = build_worker(
            client,
            settings=self.settings,
            engine=self.engine,
            task_queue=queue,
            max_cached_workflows=cache,
        )
        self.workers.append((worker, asyncio.create_task(worker.run())))
        return Services(
            settings=self.settings.model_copy(update={"task_queue": queue}),
            sessions=self.sessions,
            client=client,
            policy=load_policy(self.settings.policy_file),
        )

    async def stop_workers(self) -> None:
        while self.workers:
            worker, task = self.workers.pop()
            await worker.shutdown()
            await task


@pytest.fixture
async def stack(
    settings: Settings, engine: Engine, temporal_client: Client, people: None
) -> AsyncIterator[Stack]:
    s = Stack(settings, engine, temporal_client)
    try:
        yield s
    finally:
        await s.stop_workers()


async def investigate(svc: Services) -> str:
    """A confidential investigation with details, one evidence item and one note."""
    case_id = await open_investigation(svc)
    await service.act(
        svc,
        actor=INVESTIGATOR,
        case_id=case_id,
        action="add_evidence",
        fields={"description": f"Screenshot of the {EVIDENCE_WORD} thread"},
    )
    await service.act(
        svc,
        actor=INVESTIGATOR,
        case_id=case_id,
        action="comment",
        fields={"text": f"Spoke to the {NOTE_WORD} team"},
    )
    return case_id


# ---- through Temporal --------------------------------------------------------------------


async def test_a_confidential_case_leaves_no_plaintext_in_its_history(
    stack: Stack, temporal_client: Client
) -> None:
    svc = stack.services(AesGcmCodec([NEW]))
    case_id = await investigate(svc)
    # The case reads whole through the service layer ...
    case = await service.get_case(svc, actor=INVESTIGATOR, case_id=case_id)
    assert SECRET_WORD in case["details"]["description"]
    # ... and the server holds only ciphertext, under the key's id.
    raw = await raw_history(temporal_client, case_id)
    assert [word for word in SECRETS if word in raw] == []
    assert b"encryption-key-id" in raw and b"new" in raw
    # The workflow answers queries through the codec client.
    snapshot = await svc.client.get_workflow_handle(case_id).query(
        SNAPSHOT_QUERY, result_type=CaseSnapshot
    )
    assert snapshot.details["description"] == case["details"]["description"]
    # A refusal's reason still reaches the caller whole through the codec.
    with pytest.raises(Forbidden, match=r"^actor: reporter@dwp\.gov\.uk may not conclude"):
        await service.act(
            svc,
            actor=REPORTER,
            case_id=case_id,
            action="conclude",
            fields={"finding": "substantiated", "summary": "x", "refer": False},
        )
    # A client holding another key reads nothing, and is told why.
    stranger = with_codec(temporal_client, AesGcmCodec([new_key("new")]))
    with pytest.raises(PayloadDecryptionError, match="does not decrypt"):
        await stranger.get_workflow_handle(case_id).query(SNAPSHOT_QUERY, result_type=CaseSnapshot)


async def test_without_a_codec_the_same_history_is_plaintext(
    stack: Stack, temporal_client: Client
) -> None:
    """The control: the search above would have found the words had they been there."""
    svc = stack.services(None)
    case_id = await investigate(svc)
    raw = await raw_history(temporal_client, case_id)
    assert [word for word in SECRETS if word in raw] == list(SECRETS)


async def test_a_history_recorded_with_the_codec_replays_only_with_it(
    stack: Stack, temporal_client: Client
) -> None:
    svc = stack.services(AesGcmCodec([NEW]))
    case_id = await investigate(svc)
    history = await temporal_client.get_workflow_handle(case_id).fetch_history()
    history = WorkflowHistory.from_json(case_id, history.to_json())  # as saved to a file
    encrypted = dataclasses.replace(DataConverter.default, payload_codec=AesGcmCodec([OLD, NEW]))
    await Replayer(
        workflows=WORKFLOWS, workflow_runner=workflow_runner(), data_converter=encrypted
    ).replay_workflow(history)
    plain = Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner())
    result = await plain.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None


async def test_cases_encrypted_under_an_old_key_carry_on_after_rotation(
    stack: Stack, temporal_client: Client
) -> None:
    # No cache: no sticky queue of a stopped worker for the server to wait on.
    before = stack.services(AesGcmCodec([OLD]), cache=0)
    case_id = await open_investigation(before)
    await stack.stop_workers()
    # Rotate: NEW encrypts, OLD still decrypts; the case goes on where it was.
    after = stack.services(AesGcmCodec([NEW, OLD]), queue=before.settings.task_queue)
    await service.act(
        after,
        actor=INVESTIGATOR,
        case_id=case_id,
        action="comment",
        fields={"text": f"After rotation: {NOTE_WORD}"},
    )
    snapshot = await after.client.get_workflow_handle(case_id).query(
        SNAPSHOT_QUERY, result_type=CaseSnapshot
    )
    assert SECRET_WORD in snapshot.details["description"]
    raw = await raw_history(temporal_client, case_id)
    assert [word for word in SECRETS if word in raw] == []
    assert b"old" in raw and b"new" in raw  # payloads under each key id
    # Without the old key, what it encrypted no longer reads, and says why.
    history = await temporal_client.get_workflow_handle(case_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads
    with pytest.raises(PayloadDecryptionError, match=r"key id 'old'.*does not hold"):
        await AesGcmCodec([NEW]).decode(started)
    assert (await AesGcmCodec([OLD]).decode(started))[0].metadata["encoding"] == b"json/plain"


# ---- the codec alone ---------------------------------------------------------------------


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_round_trip_fresh_nonce_and_key_id_in_metadata() -> None:
    codec = AesGcmCodec([NEW, OLD])
    plain = [payload("secret"), payload("secret")]
    sealed = await codec.encode(plain)
    assert [p.metadata["encryption-key-id"] for p in sealed] == [b"new", b"new"]
    assert [p.metadata["encoding"] for p in sealed] == [b"binary/encrypted"] * 2
    assert sealed[0].data != sealed[1].data  # a random nonce per payload
    assert all(b"secret" not in p.SerializeToString() for p in sealed)
    assert await codec.decode(sealed) == plain


async def test_a_wrong_key_under_the_right_id_is_a_clear_error() -> None:
    sealed = await AesGcmCodec([NEW]).encode([payload("x")])
    impostor = AesGcmCodec([new_key("new")])  # same id, other key
    with pytest.raises(PayloadDecryptionError, match="key id 'new' does not decrypt"):
        await impostor.decode(sealed)


async def test_an_unknown_key_id_or_an_altered_payload_is_refused() -> None:
    sealed = (await AesGcmCodec([OLD]).encode([payload("x")]))[0]
    with pytest.raises(PayloadDecryptionError, match=r"key id 'old'.*holds: new"):
        await AesGcmCodec([NEW]).decode([sealed])
    # Claiming another key's id fails too: the id is authenticated with the data.
    relabelled = Payload(metadata={**sealed.metadata, "encryption-key-id": b"new"})
    relabelled.data = sealed.data
    with pytest.raises(PayloadDecryptionError, match="does not decrypt"):
        await AesGcmCodec([NEW, OLD]).decode([relabelled])
    flipped = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + b"\x00")
    with pytest.raises(PayloadDecryptionError, match="altered"):
        await AesGcmCodec([OLD]).decode([flipped])


async def test_plaintext_payloads_pass_through_decoding() -> None:
    """Histories written before encryption was switched on still read."""
    assert await AesGcmCodec([NEW]).decode([payload("old")]) == [payload("old")]


# ---- keys from settings ------------------------------------------------------------------


def test_keys_parse_first_encrypts_and_round_trip_through_text() -> None:
    text = format_keys([NEW, OLD])
    assert parse_keys(f" {text.replace(',', ' , ')} ") == (NEW, OLD)
    assert AesGcmCodec(parse_keys(text)).key_id == "new"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "no key given"),
        ("nocolon", "entry 1: expected id:base64key"),
        ("bad id:" + base64.b64encode(bytes(32)).decode(), "entry 1: expected id:base64key"),
        ("a:not*base64", "key 'a': not valid base64"),
        ("a:" + base64.b64encode(bytes(10)).decode(), "key 'a': 10 bytes; AES needs 16, 24 or 32"),
        (format_keys([NEW, NEW]), "key 'new': given twice"),
    ],
)
def test_malformed_keys_are_refused_naming_the_entry(raw: str, message: str) -> None:
    with pytest.raises(PayloadKeyError, match=message):
        parse_keys(raw)


def test_settings_read_the_keys_and_never_print_them(tmp_path: Path) -> None:
    env = {"CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_PAYLOAD_KEYS": format_keys([NEW, OLD])}
    settings = Settings.from_env(env)
    assert settings.payload_keys == (NEW, OLD)
    assert base64.b64encode(NEW[1]).decode() not in repr(settings)
    bad = {**env, "CASEWORK_PAYLOAD_KEYS": "k:abc"}
    with pytest.raises(SettingsError, match="CASEWORK_PAYLOAD_KEYS: key 'k': not valid base64"):
        Settings.from_env(bad)


def test_the_embedded_stack_makes_its_key_once_readable_only_by_its_owner(
    tmp_path: Path, smtp_sink: tuple[SmtpSink, int]
) -> None:
    settings = make_settings(tmp_path / "data", "sqlite://", smtp_sink[1])
    first = payload_codec(settings)
    assert first is not None
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert embedded_keys(tmp_path / "data") == parse_keys(path.read_text())
    second = payload_codec(settings)
    assert second is not None and second.key_id == first.key_id
    assert embedded_keys(tmp_path / "data") == embedded_keys(tmp_path / "data")


def test_configured_keys_win_over_the_data_directory(
    tmp_path: Path, smtp_sink: tuple[SmtpSink, int]
) -> None:
    settings = make_settings(
        tmp_path, "sqlite://", smtp_sink[1], CASEWORK_PAYLOAD_KEYS=format_keys([OLD])
    )
    codec = payload_codec(settings)
    assert codec is not None and codec.key_id == "old"
    assert not (tmp_path / KEY_FILE).exists()


def test_an_external_cluster_without_a_key_is_warned_about(
    tmp_path: Path, smtp_sink: tuple[SmtpSink, int]
) -> None:
    settings = make_settings(
        tmp_path, "sqlite://", smtp_sink[1], CASEWORK_TEMPORAL_ADDRESS="temporal.example:7233"
    )
    assert payload_codec(settings) is None
    warning = plaintext_warning(settings)
    assert warning is not None and "PLAINTEXT" in warning and "temporal.example:7233" in warning
    assert not (tmp_path / KEY_FILE).exists()
    keyed = settings.model_copy(update={"payload_keys": (NEW,)})
    assert plaintext_warning(keyed) is None
    assert plaintext_warning(settings.model_copy(update={"temporal_address": None})) is None
