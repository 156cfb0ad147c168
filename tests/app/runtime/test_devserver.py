"""The Temporal dev server of `casework up`: its command, its ports, a previous run's orphan.

Starting the real server is left to the end-to-end test in test_stack.py.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.platform.settings import Settings
from app.runtime.console import StackError
from app.runtime.devserver import DevServer, stop_orphan
from tests.fixtures_temporal import free_port

# Its own processes (the dev server, `casework up`) cannot travel: the machine's clock.
pytestmark = pytest.mark.real_clock


def test_the_server_takes_its_ports_and_namespace_from_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CASEWORK_DATA_DIR": str(tmp_path),
            "CASEWORK_TEMPORAL_DEV_PORT": "17233",
            "CASEWORK_TEMPORAL_NAMESPACE": "cw",
        }
    )
    dev = DevServer.for_settings(settings)
    assert (dev.address, dev.ui_url) == ("127.0.0.1:17233", "http://127.0.0.1:18233")
    command = dev.command()
    assert command[command.index("--db-filename") + 1] == str(tmp_path / "temporal.db")
    assert command[command.index("--namespace") + 1] == "cw"
    assert command[-2:] == ["--ui-port", "18233"]


def test_ui_port_0_runs_the_server_headless(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_TEMPORAL_UI_PORT": "0"}
    )
    dev = DevServer.for_settings(settings)
    assert (dev.port, dev.ui_port, dev.ui_url) == (7233, None, None)
    assert dev.command()[-1] == "--headless"


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
