"""The embedded stack's mail catcher: an SMTP server that keeps every message as a file.

`casework up` starts one unless a real relay is configured, so a new user sees the
reminder and escalation emails on the admin mail page without any mail server.
Messages are `<data_dir>/mail/<timestamp>-<n>.eml` (`app.service.mailbox` reads them for
the mail page), so they survive a restart and any mail client can open them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from app.service.mailbox import INDEX, STAMP, index_line, mail_dir


class _Store:
    """The aiosmtpd handler: writes each message to its own file, atomically."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            n = next(self._counter)
        stamp = datetime.now(UTC).strftime(STAMP)
        # The envelope, which the headers may not show (Bcc), in aiosmtpd's own convention.
        head = f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"{stamp}-{n:06d}.eml"
        partial = self._dir / f".{path.name}.partial"
        partial.write_bytes(head.encode("utf-8") + content)
        # A reader never sees half a message.
        os.replace(partial, path)
        with self._lock, (self._dir / INDEX).open("a", encoding="utf-8") as index:
            index.write(index_line(path.name, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """Controller that may listen on port 0 and then knows which port it got."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class MailCatcher:
    def __init__(self, data_dir: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self._controller = _Controller(
            _Store(mail_dir(self.data_dir)),
            hostname=host,
            port=port,
            # Named, so the server does not look up its own name in DNS.
            server_hostname="casework-mailcatcher",
        )
        self._running = False

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        mail_dir(self.data_dir).mkdir(parents=True, exist_ok=True)
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
