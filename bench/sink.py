"""A benchmark's SMTP relay: a real aiosmtpd server in a process of its own, as the
relay is another machine in production, so that its CPU and its share of a GIL are
not the measured process's. It accepts every message.

    python -m bench.sink [--port N]

It writes `listening <port>` to stdout once it accepts connections (port 0, the
default: a free one), then one line per message it has accepted, which the bench
counts (rig.smtp_sink). It stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"
LISTENING = "listening"
MAIL_LINE = "mail"


class LineEachMail:
    """An aiosmtpd handler: one line on stdout per message accepted."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        sys.stdout.write(f"{MAIL_LINE}\n")
        sys.stdout.flush()
        return "250 OK"


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = LineEachMail()
    # A fixed hostname: aiosmtpd would otherwise ask the resolver (getfqdn) per connection.
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench-sink", loop=loop), HOST, port
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        print(f"{LISTENING} {server.sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="0: a free port, reported on stdout")
    asyncio.run(serve(p.parse_args(argv).port))


if __name__ == "__main__":
    main()
