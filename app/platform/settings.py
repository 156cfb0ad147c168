"""Settings from `CASEWORK_*` environment variables, validated once at start-up.

`Settings.from_env()` is the one way to build them; tests pass a plain dict.
A variable set to an empty string counts as unset, as shells and compose
files make that easy to do by accident. Defaults are those of API.md, which leaves
out the two developer and test settings of the embedded dev server's ports:
`CASEWORK_TEMPORAL_DEV_PORT` (7233, the Temporal CLI's) and
`CASEWORK_TEMPORAL_UI_PORT` (the gRPC port + 1000; `0` runs it without a web UI).
`CASEWORK_EVIDENCE_MAX_BYTES` (100 MiB): the largest evidence file an upload may bring.
Operations settings (docs/DEPLOY.md): `CASEWORK_DB_POOL_SIZE` (5),
`CASEWORK_DB_MAX_OVERFLOW` (10), `CASEWORK_DB_POOL_TIMEOUT` (30 s), `CASEWORK_LOG_FORMAT`
(`text` or `json`) and `CASEWORK_METRICS_PORT` (unset: the worker serves no SDK metrics).
Two more for the web pages: `CASEWORK_SECRET_KEY` (signs session cookies; unset, a
key is generated once and kept in the data directory, see `app.web.session`) and
`CASEWORK_TRUSTED_USER_HEADER` (unset: off; the header an SSO proxy in front of
Casework sets to the signed-in person's email, trusted as is).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.platform.codec import PayloadKey, PayloadKeyError, parse_keys
from domain.policy import DEFAULT_POLICY_FILE

_PREFIX = "CASEWORK_"
# A cached Casework workflow costs a worker about 0.13 MB (bench/RESULTS.md): 250 keeps a
# worker under 300 MB resident, and a case evicted is replayed from its history when
# its next action or timer comes, hours or days later (Temporal's own default is 1000).
DEFAULT_WORKFLOW_CACHE_SIZE = 250
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


class SettingsError(ValueError):
    """A setting is malformed; the message names the variable and the reason."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # absolute
    database_url: str
    temporal_address: str | None  # None: run the embedded dev server
    temporal_dev_port: int  # the embedded dev server's gRPC port (on 127.0.0.1)
    temporal_ui_port: int  # its web UI; 0: none
    temporal_namespace: str
    task_queue: str
    temporal_tls_cert: str | None  # path of a PEM client certificate, with the key
    temporal_tls_key: str | None  # path of its PEM private key
    temporal_api_key: str | None
    smtp_host: str | None  # None: run the embedded mail catcher
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_starttls: bool
    mail_from: str
    policy_file: Path
    org_email_domains: tuple[str, ...]
    http_host: str
    http_port: int
    base_url: str  # no trailing slash
    secret_key: str | None = None  # None: app.web.session keeps one in data_dir
    trusted_user_header: str | None = None  # None: sign in with a token only
    # The largest evidence file an upload may bring (the rest of the API takes 1 MiB).
    evidence_max_bytes: int = 100 * 1024 * 1024
    # AES-GCM keys of Temporal payloads (app.codec), the first encrypts; () when unset.
    payload_keys: tuple[PayloadKey, ...] = field(default=(), repr=False)
    # Operations (docs/DEPLOY.md): the database pool, logs and the worker's metrics.
    db_pool_size: int = 5  # PostgreSQL connections kept open per process
    db_max_overflow: int = 10  # more opened under load, closed when returned
    db_pool_timeout: float = 30.0  # seconds to wait for a connection before failing
    log_format: str = "text"  # or "json": one object a line, with the case id
    metrics_port: int | None = None  # the Temporal SDK's Prometheus endpoint; None: off
    # Workflows a worker keeps in memory between their tasks; the rest are replayed from
    # history when next needed. Bounds a worker's memory whatever the number of open
    # cases (bench/memory.py measures it).
    workflow_cache_size: int = DEFAULT_WORKFLOW_CACHE_SIZE

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read and check every setting; SettingsError names the first bad one."""
        data_dir = Path(_get(env, "DATA_DIR") or ".casework").expanduser().resolve()
        temporal_address = _get(env, "TEMPORAL_ADDRESS")
        tls_cert, tls_key = _get(env, "TEMPORAL_TLS_CERT"), _get(env, "TEMPORAL_TLS_KEY")
        api_key = _get(env, "TEMPORAL_API_KEY")
        smtp_user, smtp_password = _get(env, "SMTP_USERNAME"), _get(env, "SMTP_PASSWORD")
        starttls = _bool(env, "SMTP_STARTTLS")
        http_host = _get(env, "HTTP_HOST") or "127.0.0.1"
        if re.search(r"[\s/]", http_host):
            _fail("HTTP_HOST", f"must be a host name or address, not {http_host!r}")
        http_port = _port(env, "HTTP_PORT", 8000)
        dev_port = _port(env, "TEMPORAL_DEV_PORT", 7233)
        ui_port = _ui_port(env, dev_port)

        if data_dir.exists() and not data_dir.is_dir():
            _fail("DATA_DIR", f"is not a directory: {data_dir}")
        if temporal_address is not None:
            _check_address(temporal_address)
        _together("TEMPORAL_TLS_CERT", tls_cert, "TEMPORAL_TLS_KEY", tls_key)
        for name, value in (("TEMPORAL_TLS_CERT", tls_cert), ("TEMPORAL_TLS_KEY", tls_key)):
            if value is not None and not Path(value).is_file():
                _fail(name, f"no such file: {value}")
        for name, value in (("TEMPORAL_TLS_CERT", tls_cert), ("TEMPORAL_API_KEY", api_key)):
            if value is not None and temporal_address is None:
                _fail(name, "needs CASEWORK_TEMPORAL_ADDRESS (the embedded server takes neither)")
        _together("SMTP_USERNAME", smtp_user, "SMTP_PASSWORD", smtp_password)

        policy_file = Path(_get(env, "POLICY_FILE") or DEFAULT_POLICY_FILE).expanduser()
        if not policy_file.is_file():
            _fail("POLICY_FILE", f"no such file: {policy_file}")

        return cls(
            data_dir=data_dir,
            database_url=_database_url(env, data_dir),
            temporal_address=temporal_address,
            temporal_dev_port=dev_port,
            temporal_ui_port=ui_port,
            temporal_namespace=_get(env, "TEMPORAL_NAMESPACE") or "default",
            task_queue=_get(env, "TASK_QUEUE") or "casework",
            temporal_tls_cert=tls_cert,
            temporal_tls_key=tls_key,
            temporal_api_key=api_key,
            smtp_host=_get(env, "SMTP_HOST"),
            smtp_port=_port(env, "SMTP_PORT", 587 if starttls else 25),
            smtp_username=smtp_user,
            smtp_password=smtp_password,
            smtp_starttls=starttls,
            mail_from=_mail_from(env),
            policy_file=policy_file,
            org_email_domains=_domains(env),
            http_host=http_host,
            http_port=http_port,
            base_url=_base_url(env, http_host, http_port),
            secret_key=_secret_key(env),
            trusted_user_header=_header_name(env),
            evidence_max_bytes=_byte_count(env, "EVIDENCE_MAX_BYTES", 100 * 1024 * 1024),
            payload_keys=_payload_keys(env),
            db_pool_size=_count(env, "DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=_count(env, "DB_MAX_OVERFLOW", 10, minimum=0),
            db_pool_timeout=float(_count(env, "DB_POOL_TIMEOUT", 30, minimum=1)),
            log_format=_choice(env, "LOG_FORMAT", ("text", "json")),
            metrics_port=_port(env, "METRICS_PORT", 0) or None,
            workflow_cache_size=_count(
                env, "WORKFLOW_CACHE_SIZE", DEFAULT_WORKFLOW_CACHE_SIZE, minimum=1
            ),
        )


def _fail(name: str, reason: str) -> NoReturn:
    raise SettingsError(f"{_PREFIX}{name}: {reason}")


def _together(name_a: str, a: str | None, name_b: str, b: str | None) -> None:
    if (a is None) != (b is None):
        missing, given = (name_a, name_b) if a is None else (name_b, name_a)
        _fail(missing, f"must be set too when {_PREFIX}{given} is")


def _get(env: Mapping[str, str], name: str) -> str | None:
    return env.get(_PREFIX + name, "").strip() or None


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = (_get(env, name) or "false").lower()
    if raw not in _TRUE + _FALSE:
        _fail(name, f"must be true or false, not {raw!r}")
    return raw in _TRUE


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        _fail(name, "must be a whole number 1-65535")
    return int(raw)


def _count(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or int(raw) < minimum:
        _fail(name, f"must be a whole number, at least {minimum}, not {raw!r}")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (_get(env, name) or choices[0]).lower()
    if raw not in choices:
        _fail(name, f"must be {' or '.join(choices)}, not {raw!r}")
    return raw


def _byte_count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,15}", raw) or int(raw) < 1:
        _fail(name, f"must be a whole number of bytes, at least 1, not {raw!r}")
    return int(raw)


def _ui_port(env: Mapping[str, str], dev_port: int) -> int:
    raw = _get(env, "TEMPORAL_UI_PORT")
    if raw is None:  # the Temporal CLI's own default; no UI if that is past the last port
        return dev_port + 1000 if dev_port + 1000 <= 65535 else 0
    if not re.fullmatch(r"[0-9]{1,5}", raw) or int(raw) > 65535:
        _fail("TEMPORAL_UI_PORT", "must be a whole number 1-65535, or 0 for no web UI")
    port = int(raw)
    if port == dev_port:
        _fail("TEMPORAL_UI_PORT", f"must differ from {_PREFIX}TEMPORAL_DEV_PORT ({dev_port})")
    return port


def _check_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    valid_port = re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535
    if not host or not valid_port or re.search(r"[\s/]", host):
        _fail(
            "TEMPORAL_ADDRESS",
            f"must be host:port, e.g. temporal.example.org:7233, not {address!r}",
        )


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    url = _get(env, "DATABASE_URL")
    if url is None:
        return f"sqlite:///{data_dir / 'casework.db'}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        _fail("DATABASE_URL", "is not a database URL (sqlite:///PATH or postgresql+psycopg://…)")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        _fail("DATABASE_URL", f"must be SQLite or PostgreSQL, not {parsed.get_backend_name()!r}")
    if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2, not installed
        _fail("DATABASE_URL", "use postgresql+psycopg:// (the psycopg 3 driver)")
    return url


def _mail_from(env: Mapping[str, str]) -> str:
    value = _get(env, "MAIL_FROM") or "casework@localhost"
    local, _, domain = parseaddr(value)[1].rpartition("@")
    if not local or not domain or re.search(r"\s", local + domain):
        _fail("MAIL_FROM", f"must be an email address, not {value!r}")
    return value


def _domains(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "ORG_EMAIL_DOMAINS") or "dwp.gov.uk"
    domains = tuple(d.strip().lower() for d in raw.split(",") if d.strip())
    for domain in domains:
        if not _DOMAIN.match(domain):
            _fail("ORG_EMAIL_DOMAINS", f"{domain!r} is not a domain name (e.g. dwp.gov.uk)")
    if not domains:
        _fail("ORG_EMAIL_DOMAINS", "must name at least one domain")
    return domains


def _payload_keys(env: Mapping[str, str]) -> tuple[PayloadKey, ...]:
    raw = _get(env, "PAYLOAD_KEYS")
    if raw is None:
        return ()
    try:
        return parse_keys(raw)
    except PayloadKeyError as e:
        _fail("PAYLOAD_KEYS", str(e))


def _secret_key(env: Mapping[str, str]) -> str | None:
    key = _get(env, "SECRET_KEY")
    if key is not None and len(key) < 32:
        _fail("SECRET_KEY", "must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    return key


def _header_name(env: Mapping[str, str]) -> str | None:
    name = _get(env, "TRUSTED_USER_HEADER")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9-]+", name):
        _fail("TRUSTED_USER_HEADER", f"must be an HTTP header name, not {name!r}")
    return name.lower() if name else None


def _base_url(env: Mapping[str, str], host: str, port: int) -> str:
    url = _get(env, "BASE_URL")
    if url is None:
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _fail("BASE_URL", f"must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")
