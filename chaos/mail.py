"""A real SMTP relay (aiosmtpd) that counts every message by its Message-ID, and can go down.

Each copy received is kept with the moment the relay had all of it (wall clock, as the
harness stamps its kills) and the process that sent it, looked up when the connection
says EHLO, while the sender is certainly alive (chaos/senders.py). Together with the
kills and the histories, that explains, or fails to explain, an email received twice
(chaos/duplicates.py).

Down means the listening socket is closed: a worker's connection attempt is refused, as
when a relay is restarted or unreachable. Back up, it listens on the same port again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller

from chaos.senders import sender_pid


@dataclass(frozen=True)
class Copy:
    """One copy of an email the relay accepted."""

    at: float  # time.time() when the relay had the whole message, before it answered 250
    pid: int | None  # the process that sent it; None if it could not be found


class _Counting:
    def __init__(self, capture: MailCapture) -> None:
        self._capture = capture

    def _sender(self, session: Any) -> int | None:
        """The sending process of this connection, looked up once it is found."""
        pid: int | None = getattr(session, "chaos_sender", None)
        if pid is None:
            peer = session.peer
            if isinstance(peer, tuple) and len(peer) >= 2:
                pid = sender_pid(peer[1], self._capture.port, self._capture.candidates())
            session.chaos_sender = pid
        return pid

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self._sender(session)
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        headers = BytesHeaderParser().parsebytes(envelope.content)
        mid = str(headers.get("Message-ID", "")).strip()
        self._capture.received(mid, Copy(at, self._sender(session)))
        return "250 OK"


class MailCapture:
    def __init__(self, port: int) -> None:
        self.port = port
        self.copies: dict[str, list[Copy]] = {}
        # The processes that may be sending (the workers); None: look at every process.
        self.senders: Callable[[], Iterable[int]] | None = None
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def candidates(self) -> Iterable[int] | None:
        return None if self.senders is None else list(self.senders())

    def received(self, message_id: str, copy: Copy) -> None:
        with self._lock:
            self.copies.setdefault(message_id, []).append(copy)

    def snapshot(self) -> Counter[str]:
        """How many times each Message-ID was received."""
        with self._lock:
            return Counter({mid: len(copies) for mid, copies in self.copies.items()})

    def arrivals(self) -> dict[str, list[Copy]]:
        with self._lock:
            return {mid: list(copies) for mid, copies in self.copies.items()}

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
