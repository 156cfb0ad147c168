"""`casework up`: the embedded stack, end to end on the real dev server, and its parts.

The end-to-end test runs `casework up` as a new user would, drives a case through
the HTTP API, kills the stack with SIGKILL, starts it again on the same data dir
and finds the case still running in Temporal, then stops it with SIGTERM.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, migrate, session_factory
from app.mailcatcher import list_messages
from app.people import ROLES, import_people
from app.settings import SettingsError
from app.stack import (
    READY_LINE,
    DemoLogin,
    DevServer,
    StackError,
    banner,
    demo_csv,
    dev_ports,
    pid_alive,
    prepare_demo,
    stop_orphan,
)
from tests.fixtures_temporal import free_port

REPO = Path(__file__).resolve().parents[2]
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


# ---- the demo directory -------------------------------------------------------------------


def demo_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(demo_csv())))


def test_demo_people_hold_every_role_at_the_organisation_domain() -> None:
    rows = demo_rows()
    held = {role for row in rows for role in row["roles"].split(";") if role}
    assert held == set(ROLES)
    assert all(row["email"].endswith("@dwp.gov.uk") for row in rows)
    for row in rows:  # a lead is in the team that they lead
        for role in row["roles"].split(";"):
            if role.endswith("_lead"):
                assert role.removesuffix("_lead") in row["roles"].split(";")


def test_demo_people_have_a_three_level_chain_and_leads_have_managers() -> None:
    manager = {row["email"]: row["manager_email"] or None for row in demo_rows()}
    chain, person = [], manager[EMPLOYEE]
    while person is not None:
        chain.append(person)
        person = manager[person]
    assert chain == [MANAGER, "harper.head@dwp.gov.uk", "dana.director@dwp.gov.uk"]
    leads = [r for r in demo_rows() if "_lead" in r["roles"]]
    assert {r["roles"] for r in leads} == {"sac;sac_lead", "sirt;sirt_lead", "hr;hr_lead"}
    assert all(manager[r["email"]] for r in leads)  # escalation goes beyond each lead


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'casework.db'}"
    migrate(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def test_demo_people_load_only_into_an_empty_directory(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    with sqlite_sessions.begin() as session:
        created, logins = prepare_demo(session)
    assert created == len(demo_rows())
    assert [login.email for login in logins] == [row["email"] for row in demo_rows()]
    labels = {login.email: login.label for login in logins}
    assert labels[EMPLOYEE] == "employee"
    assert labels[MANAGER] == "manager"
    assert labels["lee.saclead@dwp.gov.uk"] == "sac;sac_lead"

    with sqlite_sessions.begin() as session:  # a restart: same people, new tokens
        again, new_logins = prepare_demo(session)
    assert again == 0
    assert {x.token for x in logins}.isdisjoint(x.token for x in new_logins)


def test_a_directory_of_real_people_is_left_alone(sqlite_sessions: sessionmaker[Session]) -> None:
    with sqlite_sessions.begin() as session:
        import_people(session, "email,name,manager_email,roles\nkit@dwp.gov.uk,Kit,,admin\n")
    with sqlite_sessions.begin() as session:
        assert prepare_demo(session) == (0, [])


def test_the_banner_lists_every_login_and_ends_with_the_ready_line() -> None:
    logins = [DemoLogin("employee", EMPLOYEE, "t" * 43), DemoLogin("sac", SAC, "s" * 43)]
    text = banner("http://127.0.0.1:8000", logins, ui_url="http://127.0.0.1:8233")
    assert {m[2]: m[3] for m in TOKEN_ROW.finditer(text)} == {EMPLOYEE: "t" * 43, SAC: "s" * 43}
    assert "http://127.0.0.1:8233" in text
    assert text.endswith(READY_LINE)


# ---- the dev server's ports and a previous run's orphan ----------------------------------


def test_dev_ports_default_to_the_temporal_cli_ports() -> None:
    assert dev_ports({}) == (7233, 8233)
    assert dev_ports({"CASEWORK_TEMPORAL_DEV_PORT": "7300"}) == (7300, 8300)
    assert dev_ports({"CASEWORK_TEMPORAL_UI_PORT": "0"}) == (7233, None)
    with pytest.raises(SettingsError, match="CASEWORK_TEMPORAL_DEV_PORT"):
        dev_ports({"CASEWORK_TEMPORAL_DEV_PORT": "70000"})


def sleeper(*args: str) -> subprocess.Popen[bytes]:
    """A process whose command line reads `args` (after the interpreter's own)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args])


def test_a_dev_server_a_killed_stack_left_behind_is_stopped(tmp_path: Path) -> None:
    dev = DevServer(tmp_path, port=free_port(), ui_port=None)
    orphan = sleeper(*dev.command()[1:])
    try:
        dev.pid_file.write_text(f"{orphan.pid}\n")
        assert stop_orphan(dev.pid_file, dev.db_file, timeout=5) == orphan.pid
        assert orphan.wait(5) == -signal.SIGTERM
        assert not dev.pid_file.exists()
    finally:
        orphan.kill()
        orphan.wait()


@pytest.mark.parametrize("kind", ["another program", "a dev server of another data dir"])
def test_a_process_that_is_not_our_dev_server_is_left_alone(tmp_path: Path, kind: str) -> None:
    dev = DevServer(tmp_path / "ours", port=free_port(), ui_port=None)
    other = DevServer(tmp_path / "theirs", port=free_port(), ui_port=None)
    process = sleeper() if kind == "another program" else sleeper(*other.command()[1:])
    try:
        dev.data_dir.mkdir()
        dev.pid_file.write_text(f"{process.pid}\n")
        assert stop_orphan(dev.pid_file, dev.db_file, timeout=5) is None
        assert process.poll() is None
        assert not dev.pid_file.exists()  # stale: the next start does not look again
    finally:
        process.kill()
        process.wait()


def test_a_busy_port_is_named_before_the_dev_server_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dev = DevServer(tmp_path, port=port, ui_port=None)
        with pytest.raises(StackError, match=f"port {port} is already in use"):
            dev.start()
    assert dev.process is None


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

    def spawn(self, command: str, **env: str) -> subprocess.Popen[bytes]:
        n = len(self.runs) + 1
        stdout, stderr = self.tmp_path / f"{n}-{command}.out", self.tmp_path / f"{n}-{command}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", command],
                cwd=REPO,
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.runs.append(Run(process, stdout, stderr))
        return process

    def run(self, command: str, **env: str) -> Run:
        self.spawn(command, **env)
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

    # The parts one process each, as a deployment runs them, against the stack's server.
    # (Each is told the dev server's address: only `up` reads CASEWORK_TEMPORAL_DEV_PORT.)
    temporal = f"127.0.0.1:{launcher.dev_port}"
    worker = launcher.run(
        "worker", CASEWORK_TEMPORAL_ADDRESS=temporal, CASEWORK_SMTP_HOST="127.0.0.1"
    )
    web_port = free_port()
    web = launcher.run("web", CASEWORK_TEMPORAL_ADDRESS=temporal, CASEWORK_HTTP_PORT=str(web_port))
    worker.wait_for("worker on task queue")
    web.wait_for("web server on")
    assert httpx.get(f"http://127.0.0.1:{web_port}/healthz").json() == {"status": "ok"}
    assert worker.stop() == 0, worker.log()
    assert web.stop() == 0, web.log()

    server = int((data_dir / "temporal.pid").read_text())
    descendants = children(up.process.pid)
    assert server in descendants
    assert up.stop() == 0, up.log()
    assert not [pid for pid in descendants if pid_alive(pid)]
    assert not (data_dir / "temporal.pid").exists()
    assert up.stderr.read_text().endswith("casework: stopped\n")
