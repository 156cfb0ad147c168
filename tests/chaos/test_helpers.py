"""The chaos suite's own parts: the proxy that cuts a database off, the relay that counts
Message-IDs and goes down, and the policy file it writes for short clocks."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from app.platform.settings import DEFAULT_POLICY_FILE
from chaos.mail import MailCapture
from chaos.processes import free_port
from chaos.proxy import TcpProxy
from chaos.rig import policy_text
from domain.policy import load_policy


def echo_once(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A real TCP server that echoes: what the proxy stands in front of."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = False

    def serve() -> None:
        while not stop:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop = True
    thread.join(5)
    server.close()


def test_the_proxy_passes_bytes_then_refuses_while_cut(echo_server: int) -> None:
    proxy = TcpProxy(free_port(), "127.0.0.1", echo_server)
    proxy.start()
    try:
        assert echo_once(proxy.port, b"hello") == b"hello"
        live = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        live.sendall(b"x")
        assert live.recv(10) == b"x"

        assert proxy.cut() == 1  # the live connection is reset
        assert live.recv(10) == b""  # closed under it
        live.close()
        with pytest.raises(ConnectionRefusedError):
            echo_once(proxy.port, b"again")

        proxy.restore()
        assert echo_once(proxy.port, b"back") == b"back"
    finally:
        proxy.close()


def message(mid: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@x.test", "b@x.test", "s", mid
    msg.set_content("body")
    return msg


async def test_the_relay_counts_each_message_id_and_refuses_while_down() -> None:
    capture = MailCapture(free_port())
    capture.start()
    try:
        await aiosmtplib.send(message("<one@t>"), hostname="127.0.0.1", port=capture.port)
        await aiosmtplib.send(message("<one@t>"), hostname="127.0.0.1", port=capture.port)
        await aiosmtplib.send(message("<two@t>"), hostname="127.0.0.1", port=capture.port)
        assert capture.snapshot() == {"<one@t>": 2, "<two@t>": 1}
        # Each copy tied to the process that sent it (this one), in arrival order.
        one = capture.arrivals()["<one@t>"]
        assert [c.pid for c in one] == [os.getpid(), os.getpid()]
        assert one[0].at <= one[1].at

        capture.stop()
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await aiosmtplib.send(message("<three@t>"), hostname="127.0.0.1", port=capture.port)
        capture.start()
        await asyncio.wait_for(
            aiosmtplib.send(message("<three@t>"), hostname="127.0.0.1", port=capture.port), 10
        )
        assert capture.snapshot()["<three@t>"] == 1
    finally:
        capture.stop()


def test_the_policy_file_gives_endorsement_short_clocks(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(policy_text({"sla": "PT40S", "remind": "PT30S"}))
    endorsement = load_policy(path).stages["ipa_approval"]["manager_endorsement"]
    assert (endorsement.remind, endorsement.sla, endorsement.escalate_every) == (
        "PT30S",
        "PT40S",
        None,
    )
    # Every other stage as shipped.
    shipped = load_policy(DEFAULT_POLICY_FILE)
    assert (
        load_policy(path).stages["ipa_approval"]["sac_review"]
        == shipped.stages["ipa_approval"]["sac_review"]
    )
