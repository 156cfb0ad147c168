"""Logs carry the case id: JSON lines an operator can parse, from activities and requests."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from app import service
from app.platform.logs import CaseIdInterceptor, CaseIdMiddleware, handler
from app.platform.settings import Settings, SettingsError
from app.service.services import Services
from tests.fixtures_temporal import eventually


class Captured:
    """What a Casework log handler wrote, attached to the root logger for one test."""

    def __init__(self, log_format: str) -> None:
        self.stream = io.StringIO()
        self.handler = handler(log_format)
        self.handler.setStream(self.stream)  # type: ignore[attr-defined]

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def json_logs() -> Iterator[Captured]:
    captured = Captured("json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(captured.handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(captured.handler)
        root.setLevel(level)


def test_a_json_line_has_the_case_id_from_temporal_extras_and_the_exception() -> None:
    captured = Captured("json")
    logger = logging.getLogger("casework.test.unit")
    logger.addHandler(captured.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        details = {"workflow_id": "PEX-2026-000007", "activity_type": "record"}
        logger.warning("retrying", extra={"temporal_activity": details})
        try:
            raise ValueError("relay down")
        except ValueError:
            logger.exception("failed", extra={"case_id": "IPA-2026-000001"})
        logger.info("no case here")
    finally:
        logger.removeHandler(captured.handler)
        logger.propagate = True
    first, second, third = captured.objects()
    assert first["case_id"] == "PEX-2026-000007"
    assert first["level"] == "warning" and first["message"] == "retrying"
    assert first["temporal_activity"]["activity_type"] == "record"
    assert first["time"].endswith("+00:00")
    assert second["case_id"] == "IPA-2026-000001"
    assert "ValueError: relay down" in second["exception"]
    assert third["case_id"] is None


def test_a_text_line_names_the_case_in_brackets() -> None:
    captured = Captured("text")
    logger = logging.getLogger("casework.test.text")
    logger.addHandler(captured.handler)
    logger.propagate = False
    try:
        logger.warning("late", extra={"case_id": "ABU-2026-000003"})
    finally:
        logger.removeHandler(captured.handler)
        logger.propagate = True
    assert captured.lines()[0].endswith("WARNING casework.test.text [ABU-2026-000003]: late")


async def test_the_workers_mail_lines_carry_the_case_id(
    services: Services, json_logs: Captured
) -> None:
    actor = await service.actor_for(services, email="employee@dwp.gov.uk")
    case = await service.open_case(
        services,
        actor=actor,
        case_type="ipa_approval",
        details={
            "account_kind": "individual_professional",
            "platform": "LinkedIn",
            "handle": "jo-example",
            "justification": "Recruitment",
            "device": "dwp_managed",
            "contact_email": "jo@example.com",
        },
    )

    def mail_lines() -> list[dict[str, Any]]:
        return [o for o in json_logs.objects() if o["message"].startswith("mail ")]

    await eventually(lambda: bool(mail_lines()))
    assert {line["case_id"] for line in mail_lines()} == {case["id"]}


# A plain logger inside a blocking activity: the interceptor, not Temporal's logger, marks it.
@activity.defn(name="log_plainly")
def log_plainly() -> None:
    logging.getLogger("casework.test.library").info("inside the activity")


@workflow.defn(name="LogsPlainly", sandboxed=False)
class LogsPlainly:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(log_plainly, start_to_close_timeout=timedelta(seconds=10))


async def test_any_log_line_inside_an_activity_carries_its_case_id(
    temporal_client: Client, json_logs: Captured
) -> None:
    queue = f"logs-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(1) as executor:
        async with Worker(
            temporal_client,
            task_queue=queue,
            workflows=[LogsPlainly],
            activities=[log_plainly],
            activity_executor=executor,
            interceptors=[CaseIdInterceptor()],
        ):
            await temporal_client.execute_workflow(
                LogsPlainly.run, id="IPA-2026-000042", task_queue=queue
            )
    lines = [o for o in json_logs.objects() if o["logger"] == "casework.test.library"]
    assert [line["case_id"] for line in lines] == ["IPA-2026-000042"]


async def test_log_lines_while_serving_a_case_carry_its_id(json_logs: Captured) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        logging.getLogger("casework.test.web").info("serving %s", scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=CaseIdMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://casework.test") as client:
        for path in ("/api/cases/DIS-2026-000012/actions", "/cases/PEX-2026-000002", "/healthz"):
            assert (await client.get(path)).status_code == 204
    lines = [o for o in json_logs.objects() if o["logger"] == "casework.test.web"]
    assert [line["case_id"] for line in lines] == ["DIS-2026-000012", "PEX-2026-000002", None]


def test_the_log_format_setting(tmp_path: Path) -> None:
    base = {"CASEWORK_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).log_format == "text"
    assert Settings.from_env({**base, "CASEWORK_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="CASEWORK_LOG_FORMAT: must be text or json"):
        Settings.from_env({**base, "CASEWORK_LOG_FORMAT": "xml"})
