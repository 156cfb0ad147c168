"""`casework up`, `casework worker`, `casework web`: the processes that serve Casework.

`up` is the embedded stack of shared/DESIGN.md in one foreground process: the
Temporal dev server (`app/runtime/devserver.py`), migrations, the mail catcher, the demo
directory (`app/runtime/demo.py`), and a worker and a web server sharing one event loop.
Ctrl-C or SIGTERM stops it all, the dev server last, and exits 0.

`worker` and `web` are one part each, as a deployment runs them; without
CASEWORK_TEMPORAL_ADDRESS they find the dev server of a `casework up` on
CASEWORK_TEMPORAL_DEV_PORT.

Each command first sets up what an operator watches (`_observed`): logs in
CASEWORK_LOG_FORMAT, tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set, and for a
worker the Temporal SDK's metrics on CASEWORK_METRICS_PORT (docs/DEPLOY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import IO

from temporalio.client import Client
from temporalio.worker import Worker

from app.platform import logs, tracing
from app.platform.db import engine_for, migrate, session_factory
from app.platform.metrics import sdk_runtime
from app.platform.settings import Settings
from app.platform.temporal import cluster_address, plaintext_warning
from app.runtime import oidc_demo, webserver
from app.runtime.console import StackError, say
from app.runtime.demo import DemoLogin, banner, prepare_demo
from app.runtime.devserver import DevServer, wait_for_temporal
from app.runtime.mailcatcher import MailCatcher
from domain.policy import load_policy
from worker import build_worker

# ---- signals, and stopping the parts in order --------------------------------------------


class _Signals:
    """SIGINT and SIGTERM: during start-up they cancel it; once running they set `stop`."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.received: int | None = None
        self._startup = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._handle, sig)

    def _handle(self, sig: int) -> None:
        if self.received is not None:
            say("still stopping")
            return
        self.received = sig
        say("stopping")
        self.stop.set()
        if self._startup is not None:
            self._startup.cancel()

    def running(self) -> None:
        """Start-up is over: a signal now asks for a graceful stop instead."""
        self._startup = None

    def close(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _signals() -> AsyncIterator[_Signals]:
    handler = _Signals()
    try:
        yield handler
    except asyncio.CancelledError:
        if handler.received is None:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        handler.close()


async def _supervise(
    signals: _Signals,
    tasks: dict[str, asyncio.Task[None]],
    on_ready: Callable[[], None],
    ready: Callable[[], bool],
) -> int:
    """Run until a signal (0) or until one of `tasks` ends (1), then stop the others."""
    stop = asyncio.create_task(signals.stop.wait())
    try:
        while not ready() and not stop.done() and not any(t.done() for t in tasks.values()):
            await asyncio.sleep(0.05)
        if not stop.done() and not any(t.done() for t in tasks.values()):
            on_ready()
        await asyncio.wait([stop, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    code = 0
    for name, task in tasks.items():
        if task.done() and not signals.stop.is_set():
            code = 1
            error = task.exception()
            if isinstance(error, StackError):
                say(str(error))
            else:
                say(f"{name} stopped: {error}" if error else f"{name} stopped")
    return code


async def stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    """Stop `worker` (run by `task`), then wait for its activity threads to end.

    `Worker.shutdown` does not shut down the thread pool the worker was given, so a
    blocking activity could still hold a database connection when the caller
    disposes of the engine; shutting the pool down (off the loop: it blocks) waits
    for every such thread, so none is left checked out.
    """
    if not task.done():
        await worker.shutdown()
    with contextlib.suppress(Exception):
        await task
    executor = worker.config().get("activity_executor")
    if executor is not None:
        await asyncio.to_thread(executor.shutdown, wait=True)


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `casework up` per data dir: two would share the dev server's state file."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "casework-up.lock"
    handle: IO[str] = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "?"
            raise StackError(
                f"another `casework up` (pid {other}) is running on {data_dir}; "
                "stop it first, or set CASEWORK_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock; the kernel does too if this process is killed


@contextlib.asynccontextmanager
async def _observed(
    settings: Settings, service: str, *, sdk_metrics: bool = False, quiet: bool = False
) -> AsyncIterator[None]:
    """Logs in CASEWORK_LOG_FORMAT, tracing if configured, and (for a worker) the Temporal
    SDK's metrics on CASEWORK_METRICS_PORT, all set before the first Temporal client."""
    # `up` prints its own banner on a terminal: only warnings, unless logs go to a collector.
    text_and_quiet = quiet and settings.log_format == "text"
    logs.configure(settings.log_format, level=logging.WARNING if text_and_quiet else logging.INFO)
    if (plaintext := plaintext_warning(settings)) is not None:
        say(plaintext)  # loud, and at every start: see app.platform.codec for why not a refusal
    tracing.setup(service)
    if sdk_metrics and sdk_runtime(settings) is not None:
        say(f"Temporal SDK metrics on port {settings.metrics_port} (/metrics)")
    try:
        yield
    finally:
        await asyncio.to_thread(tracing.shutdown)  # flushes spans: blocking


# ---- the commands ------------------------------------------------------------------------


async def run_up(settings: Settings, *, oidc_demo: bool = False) -> int:
    """The whole embedded stack in the foreground; 0 once stopped by Ctrl-C or SIGTERM.
    `oidc_demo`: with a local OpenID Connect provider of the demo people (single sign-on)."""
    load_policy(settings.policy_file)  # a malformed policy stops us before anything starts
    code = 0
    async with _signals() as signals, _observed(settings, "up", sdk_metrics=True, quiet=True):
        with _data_dir_lock(settings.data_dir), contextlib.ExitStack() as cleanup:
            if oidc_demo:
                settings = await asyncio.to_thread(_start_oidc_demo, settings, cleanup)
            code = await _up(settings, signals, cleanup)
    if signals.received is not None:
        say("stopped")
    return code


def _start_oidc_demo(settings: Settings, cleanup: contextlib.ExitStack) -> Settings:
    """Start the demo provider (`app.runtime.oidc_demo`) and point Casework at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo_people = Path(str(resources.files("app.runtime").joinpath("demo_people.csv")))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        provider = oidc_demo.start(
            port=port,
            base_url=settings.base_url,
            people_csv=demo_people,
            log=settings.data_dir / "oidc-provider.log",
        )
    except oidc_demo.ProviderError as e:
        raise StackError(str(e)) from None
    cleanup.callback(provider.stop)
    say(
        f"OpenID Connect demo provider at {provider.issuer}: sign in as any demo person "
        f"with the password {provider.password!r}"
    )
    return settings.model_copy(
        update={
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
        }
    )


async def _up(settings: Settings, signals: _Signals, cleanup: contextlib.ExitStack) -> int:
    data_dir = settings.data_dir
    sock = webserver.listen(settings.http_host, settings.http_port)
    cleanup.callback(sock.close)

    server: DevServer | None = None
    ui_url = None
    if settings.temporal_address is None:
        server = DevServer.for_settings(settings)
        cleanup.callback(server.stop)
        server.start()
        say(f"Temporal dev server on {server.address}, state in {server.db_file}")
        ui_url = server.ui_url
    else:
        say(f"using Temporal at {settings.temporal_address}")
    client = await wait_for_temporal(settings, server)
    await _retention_schedule(client, settings)

    await asyncio.to_thread(migrate, settings.database_url)
    say("database migrated")

    mail = None
    # The web server sends no mail: it keeps the settings as given, so with no
    # CASEWORK_SMTP_HOST its mail page knows the catcher is in use.
    web_settings = settings
    if settings.smtp_host is None:
        catcher = MailCatcher(data_dir)
        catcher.start()
        cleanup.callback(catcher.stop)
        settings = settings.model_copy(
            update={"smtp_host": catcher.host, "smtp_port": catcher.port}
        )
        mail = f"{data_dir / 'mail'} (SMTP {catcher.host}:{catcher.port})"
        say(f"mail catcher on {catcher.host}:{catcher.port}")
    else:
        say(f"mail goes to {settings.smtp_host}:{settings.smtp_port}")

    engine = engine_for(settings)
    cleanup.callback(engine.dispose)

    def demo() -> tuple[int, list[DemoLogin]]:
        with session_factory(engine).begin() as session:
            return prepare_demo(session)

    created, logins = await asyncio.to_thread(demo)
    if created:
        say(f"loaded {created} demo people")

    worker = build_worker(client, settings=settings, engine=engine)
    web = webserver.web_server(web_settings, quiet=True)
    signals.running()
    tasks = {
        "worker": asyncio.create_task(worker.run()),
        "web server": asyncio.create_task(webserver.serve(web, sock)),
    }
    if server is not None:
        tasks["Temporal dev server"] = asyncio.create_task(server.watch())

    def ready() -> None:
        say(f"worker on task queue {settings.task_queue!r}; web server on {settings.base_url}")
        print(banner(settings.base_url, logins, ui_url=ui_url, mail=mail), flush=True)

    try:
        return await _supervise(signals, tasks, ready, lambda: web.started)
    finally:
        await webserver.stop(web, tasks["web server"])
        await stop_worker(worker, tasks["worker"])
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _retention_schedule(client: Client, settings: Settings) -> None:
    """The daily retention run (domain.retention): created by whichever process comes first."""
    from temporalio.service import RPCError

    from app.runtime.retention_schedule import SCHEDULE_ID, ensure_schedule

    try:
        if await ensure_schedule(client, settings.task_queue):
            say(f"created the daily retention schedule {SCHEDULE_ID!r}")
    except RPCError as e:
        # A namespace that refuses schedules must not stop cases being worked.
        say(f"could not create the retention schedule {SCHEDULE_ID!r} ({e}): none runs")


async def run_worker(settings: Settings) -> int:
    """One worker, until Ctrl-C or SIGTERM; activities in flight finish first."""
    code = 0
    async with _signals() as signals, _observed(settings, "worker", sdk_metrics=True):
        client = await wait_for_temporal(settings)
        await _retention_schedule(client, settings)
        if settings.smtp_host is None:
            say(f"CASEWORK_SMTP_HOST is not set: mail goes to 127.0.0.1:{settings.smtp_port}")
        engine = engine_for(settings)
        try:
            worker = build_worker(client, settings=settings, engine=engine)
            signals.running()
            task = asyncio.create_task(worker.run())
            say(f"worker on task queue {settings.task_queue!r} at {cluster_address(settings)}")
            try:
                code = await _supervise(signals, {"worker": task}, lambda: None, lambda: True)
            finally:
                await stop_worker(worker, task)
        finally:
            engine.dispose()
    if signals.received is not None:
        say("stopped")
    return code


async def run_web(settings: Settings) -> int:
    """One web server, until Ctrl-C or SIGTERM."""
    load_policy(settings.policy_file)
    code = 0
    async with _signals() as signals, _observed(settings, "web"):
        sock = webserver.listen(settings.http_host, settings.http_port)
        try:
            web = webserver.web_server(settings, quiet=False)
            signals.running()
            task = asyncio.create_task(webserver.serve(web, sock))

            def ready() -> None:
                say(f"web server on {settings.base_url}")

            try:
                code = await _supervise(signals, {"web server": task}, ready, lambda: web.started)
            finally:
                await webserver.stop(web, task)
        finally:
            sock.close()
    if signals.received is not None:
        say("stopped")
    return code
