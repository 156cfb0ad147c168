"""A real SMTP relay (aiosmtpd) that counts every message by its Message-ID, and can go down.

Down means the listening socket is closed: a worker's connection attempt is refused, as
when a relay is restarted or unreachable. Back up, it listens on the same port again.
"""

from __future__ import annotations

import threading
from collections import Counter
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller


class _Counting:
    def __init__(self, capture: MailCapture) -> None:
        self._capture = capture

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.content)
        self._capture.received(str(headers.get("Message-ID", "")).strip())
        return "250 OK"


class MailCapture:
    def __init__(self, port: int) -> None:
        self.port = port
        self.by_message_id: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def received(self, message_id: str) -> None:
        with self._lock:
            self.by_message_id[message_id] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.by_message_id)

    @property
    def up(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is None:
            controller = Controller(_Counting(self), hostname="127.0.0.1", port=self.port)
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
