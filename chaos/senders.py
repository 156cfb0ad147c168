"""Which process holds the other end of a TCP connection to the relay (Linux /proc).

The relay asks while the sender waits for its answer, so the process is alive; that is
how a copy of an email is tied to the worker process (and so the activity attempt) that
sent it, even when that process is SIGKILLed a moment later and writes nothing more.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def _port_of(address: str) -> int:
    """`0100007F:1F90` (as /proc/net/tcp writes it) -> 8080."""
    return int(address.rsplit(":", 1)[1], 16)


def socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the connection from `local_port` to `remote_port`, from either side's
    table (IPv4 and IPv6); None if there is no such connection (or no /proc)."""
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10:
                    continue
                if _port_of(fields[1]) == local_port and _port_of(fields[2]) == remote_port:
                    inode = int(fields[9])
                    if inode:
                        return inode
    return None


def _all_pids() -> list[int]:
    with contextlib.suppress(OSError):
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    return []


def owner_of(inode: int, candidates: Iterable[int] | None = None) -> int | None:
    """The process (among `candidates`, or any) with socket `inode` open."""
    wanted = f"socket:[{inode}]"
    for pid in _all_pids() if candidates is None else candidates:
        fds = PROC / str(pid) / "fd"
        try:
            names = os.listdir(fds)
        except OSError:  # gone, or not ours to look at
            continue
        for name in names:
            with contextlib.suppress(OSError):
                if os.readlink(fds / name) == wanted:
                    return pid
    return None


def sender_pid(
    peer_port: int, server_port: int, candidates: Iterable[int] | None = None
) -> int | None:
    """The process whose connection from `peer_port` reaches our `server_port`."""
    inode = socket_inode(peer_port, server_port)
    return None if inode is None else owner_of(inode, candidates)
