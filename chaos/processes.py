"""Child processes a scenario starts and breaks: `casework worker`s and the dev server.

Each runs in a process group of its own, so a SIGKILL reaches all of it, and Linux
SIGTERMs it should the runner itself die (PR_SET_PDEATHSIG); a scenario also stops
every one in a `finally`. Start them from the main thread: the death signal follows
the thread that started the child, not the process.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.runtime.devserver import DevServer

STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent, pr_set_pdeathsig = os.getpid(), 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    _kill_group(process)


@dataclass(frozen=True)
class Kill:
    """One SIGKILL of a worker: when (time.time(), the relay's clock too) and which process."""

    at: float
    worker: str
    pid: int


class WorkerProcess:
    """`casework worker` with the scenario's settings; killed and restarted at will."""

    def __init__(self, name: str, env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.env = dict(env)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.pids: list[int] = []  # of each start, in order
        self.killed: list[Kill] = []

    @property
    def kills(self) -> int:
        return len(self.killed)

    def start(self) -> None:
        casework = Path(sys.executable).parent / "casework"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(casework), "worker"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_die_with_parent(),
            )
        self.starts += 1
        self.pids.append(self.process.pid)

    async def wait_ready(self, timeout: float = 120.0) -> bool:
        """Until this start of the worker says it polls its task queue (app/runtime/stack.py)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            said = self.log.read_bytes().count(b"worker on task queue")
            if said >= self.starts or not self.running:
                return said >= self.starts
            await asyncio.sleep(0.2)
        return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, activities in flight abandoned mid-way."""
        if self.process is not None:
            pid = self.process.pid
            _kill_group(self.process)
            # Stamped once it is reaped: dead by this moment, if not a little before.
            self.killed.append(Kill(time.time(), self.name, pid))
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


class KillableDevServer(DevServer):
    """The embedded dev server (`app.runtime.devserver`), headless on a free port, killable."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, port=free_port(), ui_port=None)
        self.kills = 0

    def kill(self) -> None:
        """SIGKILL the server: whatever it had not written to its SQLite file is gone."""
        if self.process is not None:
            _kill_group(self.process)
            self.process = None
            self.pid_file.unlink(missing_ok=True)
            self.kills += 1

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None
            self.pid_file.unlink(missing_ok=True)
