"""Settings from `CASEWORK_*` environment variables, validated once at start-up.

`Settings.from_env()` is the one way to build them: a pydantic-settings model read from
the environment given (tests pass a plain dict; `settings.model_copy(update=...)`
changes one for a test). Every failure is a `SettingsError` naming the variable.
A variable set to an empty string (or blanks) counts as unset, as shells and compose
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
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.platform.codec import PayloadKey, PayloadKeyError, parse_keys
from domain.policy import DEFAULT_POLICY_FILE
from models.people import ROLES as _ROLES

__all__ = ["DEFAULT_POLICY_FILE", "DEFAULT_WORKFLOW_CACHE_SIZE", "Settings", "SettingsError"]

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


def _fail(field: str, reason: str) -> NoReturn:
    raise SettingsError(f"{_PREFIX}{field.upper()}: {reason}")


# Checks of one variable's text, named by the field they check. A value that is not text
# (a default, or a test's model_copy) is already what it should be and passes as it is.


def _port(raw: object, info: ValidationInfo) -> object:
    if isinstance(raw, str) and not (re.fullmatch(r"[0-9]{1,5}", raw) and 1 <= int(raw) <= 65535):
        _fail(str(info.field_name), "must be a whole number 1-65535")
    return raw


def _count(minimum: int) -> BeforeValidator:
    def check(raw: object, info: ValidationInfo) -> object:
        if isinstance(raw, str) and not (re.fullmatch(r"[0-9]{1,6}", raw) and int(raw) >= minimum):
            _fail(str(info.field_name), f"must be a whole number, at least {minimum}, not {raw!r}")
        return raw

    return BeforeValidator(check)


def _byte_count(raw: object, info: ValidationInfo) -> object:
    if isinstance(raw, str) and not (re.fullmatch(r"[0-9]{1,15}", raw) and int(raw) >= 1):
        _fail(str(info.field_name), f"must be a whole number of bytes, at least 1, not {raw!r}")
    return raw


def _choice(*choices: str) -> BeforeValidator:
    def check(raw: object, info: ValidationInfo) -> object:
        if not isinstance(raw, str):
            return raw
        if raw.lower() not in choices:
            _fail(str(info.field_name), f"must be {' or '.join(choices)}, not {raw.lower()!r}")
        return raw.lower()

    return BeforeValidator(check)


def _is_true(raw: str, field: str) -> bool:
    if raw.lower() not in _TRUE + _FALSE:
        _fail(field, f"must be true or false, not {raw.lower()!r}")
    return raw.lower() in _TRUE


def _flag(raw: object, info: ValidationInfo) -> object:
    return _is_true(raw, str(info.field_name)) if isinstance(raw, str) else raw


Port = Annotated[int, BeforeValidator(_port)]


class Settings(BaseSettings):
    """Every setting, checked, frozen. The field `http_port` is `CASEWORK_HTTP_PORT`."""

    model_config = SettingsConfigDict(env_prefix=_PREFIX, frozen=True, extra="ignore")

    data_dir: Path  # absolute
    database_url: str
    temporal_address: str | None = None  # None: run the embedded dev server
    temporal_dev_port: Port = 7233  # the embedded dev server's gRPC port (on 127.0.0.1)
    temporal_ui_port: int  # its web UI; 0: none
    temporal_namespace: str = "default"
    task_queue: str = "casework"
    temporal_tls_cert: str | None = None  # path of a PEM client certificate, with the key
    temporal_tls_key: str | None = None  # path of its PEM private key
    temporal_api_key: str | None = None
    smtp_host: str | None = None  # None: run the embedded mail catcher
    smtp_port: Port  # 587 with STARTTLS, else 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: Annotated[bool, BeforeValidator(_flag)] = False
    mail_from: str = "casework@localhost"
    policy_file: Path = DEFAULT_POLICY_FILE
    org_email_domains: Annotated[tuple[str, ...], NoDecode] = ("dwp.gov.uk",)
    http_host: str = "127.0.0.1"
    http_port: Port = 8000
    base_url: str  # no trailing slash
    secret_key: str | None = None  # None: app.web.session keeps one in data_dir
    trusted_user_header: str | None = None  # None: sign in with a token only
    # OpenID Connect (app/service/oidc.py): with an issuer, the pages sign in through that
    # provider and the API also takes its access tokens. None: Casework's tokens only.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    # The audience the provider's access tokens must carry for the API (README).
    oidc_audience: str = "casework-api"
    # The claim matched to the directory's email (`email`, or e.g. `preferred_username`).
    oidc_email_claim: str = "email"
    # `claim` or `claim:group=role;group=role`: roles from the provider's group claim.
    oidc_role_claim: str | None = None
    # SCIM 2.0 at /scim/v2 (app/api/scim.py) with this bearer secret; None: off.
    scim_token: str | None = Field(default=None, repr=False)
    # The largest evidence file an upload may bring (the rest of the API takes 1 MiB).
    evidence_max_bytes: Annotated[int, BeforeValidator(_byte_count)] = 100 * 1024 * 1024
    # AES-GCM keys of Temporal payloads (app.platform.codec), the first encrypts; () unset.
    payload_keys: Annotated[tuple[PayloadKey, ...], NoDecode] = Field(default=(), repr=False)
    # Operations (docs/DEPLOY.md): the database pool, logs and the worker's metrics.
    db_pool_size: Annotated[int, _count(1)] = 5  # PostgreSQL connections kept per process
    db_max_overflow: Annotated[int, _count(0)] = 10  # more opened under load, closed after
    db_pool_timeout: Annotated[float, _count(1)] = 30.0  # seconds to wait for a connection
    log_format: Annotated[str, _choice("text", "json")] = "text"  # json: one object a line
    metrics_port: Annotated[int | None, BeforeValidator(_port)] = (
        None  # the Temporal SDK's Prometheus endpoint; None: off
    )
    # Workflows a worker keeps in memory between their tasks; the rest are replayed from
    # history when next needed. Bounds a worker's memory whatever the number of open
    # cases (bench/memory.py measures it).
    workflow_cache_size: Annotated[int, _count(1)] = DEFAULT_WORKFLOW_CACHE_SIZE

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read and check every setting from `env`; SettingsError names the first bad one."""
        try:
            return cls(**_Environment(cls, env)())
        except ValidationError as e:
            raise _first_error(e) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what `from_env` read from the environment it was given: never os.environ
        # behind a test's back, nor a .env file.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_others(cls, data: Any) -> Any:
        """Defaults that follow other settings: the database in the data directory, the
        SMTP port from STARTTLS, the dev server's web UI port, the base URL."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        data_dir = Path(data.get("data_dir") or ".casework").expanduser().resolve()
        if data_dir.exists() and not data_dir.is_dir():
            _fail("data_dir", f"is not a directory: {data_dir}")
        data["data_dir"] = data_dir
        data.setdefault("database_url", f"sqlite:///{data_dir / 'casework.db'}")
        if "smtp_port" not in data:
            starttls = data.get("smtp_starttls", False)
            starttls = (
                _is_true(starttls, "smtp_starttls") if isinstance(starttls, str) else starttls
            )
            data["smtp_port"] = 587 if starttls else 25
        if "temporal_ui_port" not in data:  # the Temporal CLI's own: the gRPC port + 1000
            dev = str(data.get("temporal_dev_port", 7233))
            ui = int(dev) + 1000 if re.fullmatch(r"[0-9]{1,5}", dev) else 0
            data["temporal_ui_port"] = ui if ui <= 65535 else 0  # past the last port: no UI
        if "base_url" not in data:
            host, port = data.get("http_host", "127.0.0.1"), data.get("http_port", 8000)
            data["base_url"] = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return data

    @field_validator("temporal_ui_port", mode="before")
    @classmethod
    def _ui_port(cls, raw: object) -> object:
        if isinstance(raw, str) and not (re.fullmatch(r"[0-9]{1,5}", raw) and int(raw) <= 65535):
            _fail("temporal_ui_port", "must be a whole number 1-65535, or 0 for no web UI")
        return raw

    @field_validator("http_host")
    @classmethod
    def _host(cls, host: str) -> str:
        if re.search(r"[\s/]", host):
            _fail("http_host", f"must be a host name or address, not {host!r}")
        return host

    @field_validator("temporal_address")
    @classmethod
    def _address(cls, address: str | None) -> str | None:
        if address is None:
            return None
        host, _, port = address.rpartition(":")
        valid_port = re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535
        if not host or not valid_port or re.search(r"[\s/]", host):
            _fail(
                "temporal_address",
                f"must be host:port, e.g. temporal.example.org:7233, not {address!r}",
            )
        return address

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            _fail(
                "database_url", "is not a database URL (sqlite:///PATH or postgresql+psycopg://…)"
            )
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            _fail("database_url", f"must be SQLite or PostgreSQL, not {backend!r}")
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver, psycopg2: not here
            _fail("database_url", "use postgresql+psycopg:// (the psycopg 3 driver)")
        return url

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        local, _, domain = parseaddr(value)[1].rpartition("@")
        if not local or not domain or re.search(r"\s", local + domain):
            _fail("mail_from", f"must be an email address, not {value!r}")
        return value

    @field_validator("policy_file", mode="before")
    @classmethod
    def _policy_file(cls, raw: object) -> object:
        return Path(raw).expanduser() if isinstance(raw, str) else raw

    @field_validator("org_email_domains", mode="before")
    @classmethod
    def _domains(cls, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        domains = tuple(d.strip().lower() for d in raw.split(",") if d.strip())
        for domain in domains:
            if not _DOMAIN.match(domain):
                _fail("org_email_domains", f"{domain!r} is not a domain name (e.g. dwp.gov.uk)")
        if not domains:
            _fail("org_email_domains", "must name at least one domain")
        return domains

    @field_validator("payload_keys", mode="before")
    @classmethod
    def _payload_keys(cls, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        try:
            return parse_keys(raw)
        except PayloadKeyError as e:
            _fail("payload_keys", str(e))

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, key: str | None) -> str | None:
        if key is not None and len(key) < 32:
            _fail("secret_key", "must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return key

    @field_validator("trusted_user_header")
    @classmethod
    def _header_name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z0-9-]+", name):
            _fail("trusted_user_header", f"must be an HTTP header name, not {name!r}")
        return name.lower() if name else None

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            _fail(
                "oidc_issuer", f"must be an https:// URL (http:// only on this host), not {url!r}"
            )
        return url.rstrip("/")

    @field_validator("oidc_role_claim")
    @classmethod
    def _role_claim(cls, value: str | None) -> str | None:
        if value is None:
            return None
        claim, _, mapping = value.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9_.:/-]+", claim):
            _fail("oidc_role_claim", f"must be a claim name, then :group=role;..., not {value!r}")
        for pair in filter(None, mapping.split(";")):
            group, eq, role = pair.partition("=")
            if not eq or not group.strip() or role.strip() not in _ROLES:
                _fail("oidc_role_claim", f"{pair!r}: must be group=role, a role of {_ROLES}")
        return value

    @field_validator("scim_token")
    @classmethod
    def _scim_token(cls, token: str | None) -> str | None:
        if token is not None and len(token) < 32:
            _fail("scim_token", "must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return token

    @property
    def oidc_roles(self) -> tuple[str, dict[str, str]] | None:
        """(claim, {group: role}) from CASEWORK_OIDC_ROLE_CLAIM, or None."""
        if not self.oidc_role_claim:
            return None
        claim, _, mapping = self.oidc_role_claim.partition(":")
        pairs = (p.partition("=") for p in mapping.split(";") if p)
        return claim, {g.strip(): r.strip() for g, _, r in pairs}

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            _fail("base_url", f"must be an http:// or https:// URL, not {url!r}")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """What must hold between settings, each well-formed on its own by now."""
        if self.temporal_ui_port == self.temporal_dev_port:
            dev = f"{_PREFIX}TEMPORAL_DEV_PORT ({self.temporal_dev_port})"
            _fail("temporal_ui_port", f"must differ from {dev}")
        cert, key = self.temporal_tls_cert, self.temporal_tls_key
        _both("temporal_tls_cert", cert, "temporal_tls_key", key)
        for name, value in (("temporal_tls_cert", cert), ("temporal_tls_key", key)):
            if value is not None and not Path(value).is_file():
                _fail(name, f"no such file: {value}")
        for name, value in (
            ("temporal_tls_cert", cert),
            ("temporal_api_key", self.temporal_api_key),
        ):
            if value is not None and self.temporal_address is None:
                _fail(name, "needs CASEWORK_TEMPORAL_ADDRESS (the embedded server takes neither)")
        _both("smtp_username", self.smtp_username, "smtp_password", self.smtp_password)
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            _fail("oidc_client_id", "CASEWORK_OIDC_ISSUER needs a client id and secret too")
        if not self.policy_file.is_file():
            _fail("policy_file", f"no such file: {self.policy_file}")
        return self


def _both(name_a: str, a: str | None, name_b: str, b: str | None) -> None:
    if (a is None) != (b is None):
        missing, given = (name_a, name_b) if a is None else (name_b, name_a)
        _fail(missing, f"must be set too when {_PREFIX}{given.upper()} is")


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping rather than os.environ:
    `CASEWORK_*` variables as written (upper case), blank ones left out."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = {
            name.lower(): value.strip()
            for name, value in env.items()
            if name.startswith(_PREFIX) and name == name.upper() and value.strip()
        }
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given


def _first_error(e: ValidationError) -> SettingsError:
    """The first failure as one SettingsError naming its variable."""
    first = e.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, SettingsError):
        return cause
    where = first["loc"][0] if first["loc"] else "settings"
    return SettingsError(f"{_PREFIX}{str(where).upper()}: {first['msg']}")
