"""`casework up`: the embedded stack, end to end on the real dev server, and its shutdown.

The end-to-end test runs `casework up` as a new user would, drives a case through
the HTTP API, kills the stack with SIGKILL, starts it again on the same data dir
and finds the case still running in Temporal, runs the parts one process each
against its dev server, then stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.pool import QueuePool
from temporalio.worker import Worker

from app.platform.db import make_engine
from app.runtime.demo import READY_LINE
from app.runtime.devserver import pid_alive
from app.runtime.stack import stop_worker
from app.service.mailbox import list_messages
from tests.fixtures_temporal import free_port

# Its own processes (the dev server, `casework up`) cannot travel: the machine's clock.
pytestmark = pytest.mark.real_clock

REPO = Path(__file__).resolve().parents[3]
TOKEN_ROW = re.compile(r"^  (\S+) +(\S+@\S+) +([A-Za-z0-9_-]{20,})$", re.MULTILINE)
EMPLOYEE, MANAGER, SAC = (
    "alex.employee@dwp.gov.uk",
    "morgan.manager@dwp.gov.uk",
    "sam.sac@dwp.gov.uk",
)
IPA = {
    "account_kind": "individual_professional",
    "platform": "X",
    "handle": "@alex_dwp",
    "justification": "Share DWP vacancies with jobseekers",
    "device": "dwp_managed",
    "contact_email": EMPLOYEE,
}


# ---- stopping a worker --------------------------------------------------------------------


class StubWorker:
    """What `stop_worker` uses of a Worker: `run` returns once `shutdown` is called."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        await self.stopped.wait()

    async def shutdown(self) -> None:
        self.stopped.set()

    def config(self) -> dict[str, Any]:
        return {"activity_executor": self.executor}


async def test_a_stopped_worker_has_let_go_of_every_database_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'casework.db'}")
    pool = cast(QueuePool, engine.pool)
    executor = ThreadPoolExecutor(1)
    holding = threading.Event()

    def blocking_activity() -> None:  # still at work when the worker is told to stop
        with engine.connect():
            holding.set()
            time.sleep(0.3)

    executor.submit(blocking_activity)
    worker = StubWorker(executor)
    task = asyncio.create_task(worker.run())
    try:
        assert await asyncio.to_thread(holding.wait, 5)
        assert pool.checkedout() == 1
        await stop_worker(cast(Worker, worker), task)
        assert task.done()
        assert pool.checkedout() == 0
        with pytest.raises(RuntimeError, match="shutdown"):
            executor.submit(print)
    finally:
        executor.shutdown(wait=True)
        engine.dispose()


# ---- the whole stack ----------------------------------------------------------------------


@dataclass
class Run:
    """One `casework` process and what it printed."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def log(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.process.poll() is None, f"exited early:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {text!r} in {timeout:.0f} s:\n{self.log()}"
            time.sleep(0.1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def output(self) -> str:
        """What a command that ends by itself printed on stdout; it must succeed."""
        assert self.process.wait(60) == 0, self.log()
        return self.stdout.read_text()


@dataclass
class Up(Run):
    base_url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)


class Launcher:
    """`casework` commands on one data dir and free ports; whatever is left is killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.http_port, self.dev_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
        self.env.update(
            CASEWORK_DATA_DIR=str(self.data_dir),
            CASEWORK_HTTP_PORT=str(self.http_port),
            CASEWORK_TEMPORAL_DEV_PORT=str(self.dev_port),
            CASEWORK_TEMPORAL_UI_PORT="0",
        )
        self.runs: list[Run] = []

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        n, command = len(self.runs) + 1, args[0]
        stdout, stderr = self.tmp_path / f"{n}-{command}.out", self.tmp_path / f"{n}-{command}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli.main", *args],
                cwd=REPO,
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.runs.append(Run(process, stdout, stderr))
        return process

    def run(self, *args: str, **env: str) -> Run:
        self.spawn(*args, **env)
        return self.runs[-1]

    def up(self) -> Up:
        """`casework up`, once it has printed the tokens and everything answers."""
        self.spawn("up")
        run = self.runs[-1]
        up = Up(run.process, run.stdout, run.stderr, f"http://127.0.0.1:{self.http_port}")
        up.wait_for(READY_LINE)
        up.tokens = {m[2]: m[3] for m in TOKEN_ROW.finditer(up.stdout.read_text())}
        return up

    def close(self) -> None:
        for run in self.runs:
            if run.process.poll() is None:
                os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()
        pid_file = self.data_dir / "temporal.pid"
        if pid_file.exists():  # a dev server a failed test left behind
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout:.0f} s: {what}")
        time.sleep(0.1)


def call(
    up: Up, who: str, method: str, path: str, json: dict[str, object] | None = None
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {up.tokens[who]}"}
    response = httpx.request(method, up.base_url + path, json=json, headers=headers, timeout=30)
    assert response.status_code in (200, 201), response.text
    body: dict[str, object] = response.json()
    return body


def test_casework_up_serves_survives_a_kill_and_stops_cleanly(launcher: Launcher) -> None:
    data_dir = launcher.data_dir
    up = launcher.up()
    assert {EMPLOYEE, MANAGER, SAC} <= up.tokens.keys()
    assert httpx.get(up.base_url + "/healthz").json() == {"status": "ok"}

    case = call(up, EMPLOYEE, "POST", "/api/cases", {"type": "ipa_approval", "details": IPA})
    case_id = str(case["id"])
    assert case["stage"] == "manager_endorsement"
    endorsed = call(up, MANAGER, "POST", f"/api/cases/{case_id}/actions", {"action": "endorse"})
    assert endorsed["stage"] == "sac_review"
    approved = call(up, SAC, "POST", f"/api/cases/{case_id}/actions", {"action": "approve"})
    assert approved["stage"] == "active"

    def caught(to: str, subject: str) -> bool:
        return any(to in m.to and subject in m.subject for m in list_messages(data_dir))

    wait_until(lambda: caught(EMPLOYEE, f"Case {case_id} opened"), "the opened email")
    wait_until(lambda: caught(MANAGER, f"Action needed on {case_id}"), "the manager's email")
    wait_until(lambda: caught(SAC, f"Action needed on {case_id}"), "the SAC team's email")

    # kill -9: nothing of the stack gets to clean up; its dev server must not live on.
    first_server = int((data_dir / "temporal.pid").read_text())
    os.killpg(up.process.pid, signal.SIGKILL)
    up.process.wait()

    up = launcher.up()
    assert not pid_alive(first_server)
    assert call(up, SAC, "GET", f"/api/cases/{case_id}")["stage"] == "active"
    commented = call(
        up, EMPLOYEE, "POST", f"/api/cases/{case_id}/actions", {"action": "comment", "text": "ok"}
    )
    assert commented["stage"] == "active"
    events = call(up, EMPLOYEE, "GET", f"/api/cases/{case_id}/events")["items"]
    assert isinstance(events, list)
    assert events[-1]["kind"] == "comment"

    # The parts one process each, as a deployment runs them, against the stack's dev
    # server: found, as a user would have it, through CASEWORK_TEMPORAL_DEV_PORT alone.
    assert "CASEWORK_TEMPORAL_ADDRESS" not in launcher.env
    worker = launcher.run("worker", CASEWORK_SMTP_HOST="127.0.0.1")
    web_port = free_port()
    web = launcher.run("web", CASEWORK_HTTP_PORT=str(web_port))
    worker.wait_for(f"worker on task queue 'casework' at 127.0.0.1:{launcher.dev_port}")
    web.wait_for("web server on")
    assert httpx.get(f"http://127.0.0.1:{web_port}/healthz").json() == {"status": "ok"}
    listed = json.loads(launcher.run("cases", "list", "--as", EMPLOYEE).output())
    assert [c["id"] for c in listed["items"]] == [case_id]
    comment = launcher.tmp_path / "comment.json"
    comment.write_text('{"text": "from the command line"}')
    acted = launcher.run(
        "cases", "act", case_id, "comment", "--json", str(comment), "--as", EMPLOYEE
    )
    assert json.loads(acted.output())["stage"] == "active"  # an update, through Temporal
    assert worker.stop() == 0, worker.log()
    assert web.stop() == 0, web.log()

    server = int((data_dir / "temporal.pid").read_text())
    descendants = children(up.process.pid)
    assert server in descendants
    assert up.stop() == 0, up.log()
    assert not [pid for pid in descendants if pid_alive(pid)]
    assert not (data_dir / "temporal.pid").exists()
    assert up.stderr.read_text().endswith("casework: stopped\n")
