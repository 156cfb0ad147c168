"""The mail page (`/mail`) with many caught messages: one page, newest first, by key.

    python -m bench.mail_page [--mails N] [--reps R]

Catches N messages (default 10,000) through the mail catcher's own handler (the files
and the index it writes, as `casework up` would), addressed round-robin to the demo
people, then serves `/mail` through the real app (httpx over ASGI, signed in with a
real token, SQLite records) as an auditor (every message), as an employee (a tenth of
them, found through the index) and a page deep into the auditor's pages (`?before=`),
R times each, and prints the median and the worst. The mail page reads files, not the
database: SQLite only signs the person in.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import nullcontext
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
from temporalio.client import Client

from app.platform.db import make_engine, migrate, session_factory
from app.platform.settings import Settings
from app.runtime.mailcatcher import _Store
from app.runtime.webapp import create_app
from app.service.auth import issue_token
from app.service.mailbox import mail_dir, message_names
from app.service.people import import_people
from app.service.services import Services
from domain.policy import load_policy

PEOPLE = """email,name,manager_email,roles
ava.auditor@dwp.gov.uk,Ava,,auditor
""" + "".join(f"person{n}@dwp.gov.uk,Person {n},,\n" for n in range(10))


def catch(data_dir: Path, count: int) -> None:
    store = _Store(mail_dir(data_dir))
    for n in range(count):
        to = f"person{n % 10}@dwp.gov.uk"
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "casework@localhost", to, f"Reminder {n}"
        msg.set_content(f"Case IPA-2026-{n:06d} is due soon.")
        msg.add_alternative(f"<p>Case <b>IPA-2026-{n:06d}</b> is due soon.</p>", subtype="html")
        envelope = SimpleNamespace(
            mail_from="casework@localhost",
            rcpt_tos=[to],
            original_content=msg.as_bytes(),
            content=None,
        )
        asyncio.run(store.handle_DATA(None, None, envelope))


async def serve(data_dir: Path, reps: int) -> dict[str, list[float]]:
    url = f"sqlite:///{data_dir / 'casework.db'}"
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        import_people(session, PEOPLE)
        tokens = {who: issue_token(session, who) for who in ("ava.auditor@dwp.gov.uk",)}
        tokens["person3@dwp.gov.uk"] = issue_token(session, "person3@dwp.gov.uk")
    settings = Settings.from_env({"CASEWORK_DATA_DIR": str(data_dir), "CASEWORK_DATABASE_URL": url})
    services = Services(
        settings=settings,
        sessions=sessions,
        client=cast(Client, None),
        policy=load_policy(settings.policy_file),
    )
    app = create_app(lambda: nullcontext(services))
    deep = message_names(data_dir)[len(message_names(data_dir)) // 2]
    views = {
        "auditor, newest page": ("ava.auditor@dwp.gov.uk", "/mail"),
        "auditor, a page half-way (?before=)": ("ava.auditor@dwp.gov.uk", f"/mail?before={deep}"),
        "employee, newest page (a tenth is theirs)": ("person3@dwp.gov.uk", "/mail"),
    }
    times: dict[str, list[float]] = {view: [] for view in views}
    async with app.router.lifespan_context(app):
        clients = {}
        for who, token in tokens.items():
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            )
            page = await client.get("/signin")
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            await client.post("/signin", data={"csrf_token": csrf, "token": token, "next": "/"})
            clients[who] = client
        for _ in range(reps):
            for view, (who, path) in views.items():
                start = time.perf_counter()
                response = await clients[who].get(path)
                times[view].append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200 and "Older mail" in response.text, view
        for client in clients.values():
            await client.aclose()
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=10_000, help="messages to catch")
    parser.add_argument("--reps", type=int, default=20, help="requests per view")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        start = time.perf_counter()
        catch(data_dir, args.mails)
        print(f"caught {args.mails} messages in {time.perf_counter() - start:.1f} s")
        times = asyncio.run(serve(data_dir, args.reps))
    for view, ms in times.items():
        print(f"{view}: median {statistics.median(ms):.0f} ms, worst {max(ms):.0f} ms")


if __name__ == "__main__":
    main()
