"""The web server the serving commands run: uvicorn on a socket bound before anything starts.

uvicorn's own signal handling is off: the stack decides when (and in which order)
its parts stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from app.platform.logs import uvicorn_log_config
from app.platform.settings import Settings
from app.runtime.console import StackError
from app.runtime.webapp import web_app


class WebServer(uvicorn.Server):
    """uvicorn, minus its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
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


def web_server(settings: Settings, *, quiet: bool) -> WebServer:
    """`quiet`: warnings only, for `casework up`, whose terminal shows the banner."""
    config = uvicorn.Config(
        web_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning" if quiet else "info",
        log_config=uvicorn_log_config(settings.log_format),  # JSON: through app.platform.logs
        access_log=not quiet,
        timeout_graceful_shutdown=5,
    )
    return WebServer(config)


async def serve(server: WebServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit:  # uvicorn's way to report a failed start-up, already logged
        raise StackError("the web server could not start") from None


async def stop(server: WebServer, task: asyncio.Task[None]) -> None:
    """Ask `server` (run by `task`) to finish its requests and stop; wait until it has."""
    server.should_exit = True
    with contextlib.suppress(Exception):
        await task
