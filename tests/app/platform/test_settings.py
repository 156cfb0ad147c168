from pathlib import Path

import pytest
from pydantic import ValidationError

from app.platform.settings import DEFAULT_POLICY_FILE, Settings, SettingsError
from app.platform.temporal import cluster_address


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(in_tmp: Path) -> None:
    s = Settings.from_env({})
    assert s.data_dir == in_tmp / ".casework"
    assert s.data_dir.is_absolute()
    assert s.database_url == f"sqlite:///{in_tmp}/.casework/casework.db"
    assert s.database_url.startswith("sqlite:////")  # an absolute SQLite path
    assert s.temporal_address is None
    assert (s.temporal_dev_port, s.temporal_ui_port) == (7233, 8233)  # the Temporal CLI's
    assert s.temporal_namespace == "default"
    assert s.task_queue == "casework"
    assert (s.temporal_tls_cert, s.temporal_tls_key, s.temporal_api_key) == (None, None, None)
    assert s.smtp_host is None
    assert s.smtp_port == 25
    assert (s.smtp_username, s.smtp_password, s.smtp_starttls) == (None, None, False)
    assert s.mail_from == "casework@localhost"
    assert s.policy_file == DEFAULT_POLICY_FILE
    assert s.policy_file == Path(__file__).parents[3] / "domain" / "default_policy.toml"
    assert s.policy_file.is_file()
    assert s.org_email_domains == ("dwp.gov.uk",)
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)
    assert s.base_url == "http://127.0.0.1:8000"


def test_reads_os_environ_by_default(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEWORK_TASK_QUEUE", "from-environ")
    monkeypatch.setenv("CASEWORK_DATA_DIR", "state")
    s = Settings.from_env()
    assert s.task_queue == "from-environ"
    assert s.data_dir == in_tmp / "state"
    assert s.database_url == f"sqlite:///{in_tmp}/state/casework.db"


def test_production(tmp_path: Path) -> None:
    cert, key, policy = tmp_path / "client.pem", tmp_path / "client.key", tmp_path / "p.toml"
    for f in (cert, key, policy):
        f.write_text("x")
    s = Settings.from_env(
        {
            "CASEWORK_DATA_DIR": str(tmp_path / "data"),
            "CASEWORK_DATABASE_URL": "postgresql+psycopg://cw:secret@db.internal:5432/casework",
            "CASEWORK_TEMPORAL_ADDRESS": "casework.a1b2c.tmprl.cloud:7233",
            "CASEWORK_TEMPORAL_NAMESPACE": "casework.a1b2c",
            "CASEWORK_TASK_QUEUE": "casework-prod",
            "CASEWORK_TEMPORAL_TLS_CERT": str(cert),
            "CASEWORK_TEMPORAL_TLS_KEY": str(key),
            "CASEWORK_SMTP_HOST": "smtp.internal",
            "CASEWORK_SMTP_USERNAME": "casework",
            "CASEWORK_SMTP_PASSWORD": "hunter2",
            "CASEWORK_SMTP_STARTTLS": "True",
            "CASEWORK_MAIL_FROM": "Casework <casework@dwp.gov.uk>",
            "CASEWORK_POLICY_FILE": str(policy),
            "CASEWORK_ORG_EMAIL_DOMAINS": " DWP.gov.uk, engineering.digital.dwp.gov.uk ,",
            "CASEWORK_HTTP_HOST": "0.0.0.0",
            "CASEWORK_HTTP_PORT": "8080",
            "CASEWORK_BASE_URL": "https://casework.dwp.gov.uk/",
        }
    )
    assert s.data_dir == tmp_path / "data"
    assert s.database_url == "postgresql+psycopg://cw:secret@db.internal:5432/casework"
    assert s.temporal_address == "casework.a1b2c.tmprl.cloud:7233"
    assert (s.temporal_namespace, s.task_queue) == ("casework.a1b2c", "casework-prod")
    assert (s.temporal_tls_cert, s.temporal_tls_key) == (str(cert), str(key))
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls) == ("smtp.internal", 587, True)
    assert (s.smtp_username, s.smtp_password) == ("casework", "hunter2")
    assert s.mail_from == "Casework <casework@dwp.gov.uk>"
    assert s.policy_file == policy
    assert s.org_email_domains == ("dwp.gov.uk", "engineering.digital.dwp.gov.uk")
    assert (s.http_host, s.http_port) == ("0.0.0.0", 8080)
    assert s.base_url == "https://casework.dwp.gov.uk"


def test_api_key_without_tls_files() -> None:
    s = Settings.from_env(
        {"CASEWORK_TEMPORAL_ADDRESS": "localhost:7233", "CASEWORK_TEMPORAL_API_KEY": "k3y"}
    )
    assert (s.temporal_api_key, s.temporal_tls_cert) == ("k3y", None)


@pytest.mark.parametrize(
    ("env", "port"),
    [
        ({}, 25),
        ({"CASEWORK_SMTP_STARTTLS": "yes"}, 587),
        ({"CASEWORK_SMTP_STARTTLS": "off"}, 25),
        ({"CASEWORK_SMTP_STARTTLS": "1", "CASEWORK_SMTP_PORT": "2525"}, 2525),
        ({"CASEWORK_SMTP_PORT": "1025"}, 1025),
    ],
)
def test_smtp_port_follows_starttls(env: dict[str, str], port: int) -> None:
    assert Settings.from_env({"CASEWORK_SMTP_HOST": "mail", **env}).smtp_port == port


def test_base_url_follows_host_and_port() -> None:
    env = {"CASEWORK_HTTP_HOST": "casework.local", "CASEWORK_HTTP_PORT": "9000"}
    assert Settings.from_env(env).base_url == "http://casework.local:9000"
    assert Settings.from_env({"CASEWORK_HTTP_HOST": "::1"}).base_url == "http://[::1]:8000"


@pytest.mark.parametrize(
    ("env", "ports"),
    [
        ({"CASEWORK_TEMPORAL_DEV_PORT": "17233"}, (17233, 18233)),
        (
            {"CASEWORK_TEMPORAL_DEV_PORT": "17233", "CASEWORK_TEMPORAL_UI_PORT": "9000"},
            (17233, 9000),
        ),
        ({"CASEWORK_TEMPORAL_UI_PORT": "0"}, (7233, 0)),
        ({"CASEWORK_TEMPORAL_DEV_PORT": "65000"}, (65000, 0)),  # no port 66000: no UI
    ],
)
def test_embedded_dev_server_ports(env: dict[str, str], ports: tuple[int, int]) -> None:
    s = Settings.from_env(env)
    assert (s.temporal_dev_port, s.temporal_ui_port) == ports


def test_the_dev_port_does_not_override_a_configured_cluster() -> None:
    env = {"CASEWORK_TEMPORAL_ADDRESS": "t:7233", "CASEWORK_TEMPORAL_DEV_PORT": "17233"}
    assert cluster_address(Settings.from_env(env)) == "t:7233"
    assert cluster_address(Settings.from_env({"CASEWORK_TEMPORAL_DEV_PORT": "17233"})) == (
        "127.0.0.1:17233"
    )


def test_empty_values_count_as_unset(in_tmp: Path) -> None:
    names = ["DATA_DIR", "DATABASE_URL", "TEMPORAL_ADDRESS", "SMTP_HOST", "SMTP_PORT"]
    names += ["SMTP_STARTTLS", "HTTP_PORT", "BASE_URL", "POLICY_FILE", "ORG_EMAIL_DOMAINS"]
    names += ["TEMPORAL_DEV_PORT", "TEMPORAL_UI_PORT"]
    assert Settings.from_env({f"CASEWORK_{n}": " " for n in names}) == Settings.from_env({})


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(ValidationError, match="frozen"):  # pydantic's word for it
        s.http_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CASEWORK_HTTP_PORT": "eighty"}, "CASEWORK_HTTP_PORT: must be a whole number 1-65535"),
        ({"CASEWORK_HTTP_PORT": "0"}, "CASEWORK_HTTP_PORT: must be a whole number 1-65535"),
        ({"CASEWORK_HTTP_PORT": "65536"}, "CASEWORK_HTTP_PORT: must be a whole number 1-65535"),
        ({"CASEWORK_HTTP_PORT": "-1"}, "CASEWORK_HTTP_PORT: must be a whole number 1-65535"),
        ({"CASEWORK_HTTP_PORT": "8000.5"}, "CASEWORK_HTTP_PORT: must be a whole number 1-65535"),
        (
            {"CASEWORK_SMTP_PORT": "\uff12\uff15"},
            "CASEWORK_SMTP_PORT: must be a whole number 1-65535",
        ),
        (
            {"CASEWORK_TEMPORAL_DEV_PORT": "70000"},
            "CASEWORK_TEMPORAL_DEV_PORT: must be a whole number 1-65535",
        ),
        (
            {"CASEWORK_TEMPORAL_DEV_PORT": "0"},
            "CASEWORK_TEMPORAL_DEV_PORT: must be a whole number 1-65535",
        ),
        (
            {"CASEWORK_TEMPORAL_UI_PORT": "ui"},
            "CASEWORK_TEMPORAL_UI_PORT: must be a whole number 1-65535, or 0 for no web UI",
        ),
        (
            {"CASEWORK_TEMPORAL_UI_PORT": "65536"},
            "CASEWORK_TEMPORAL_UI_PORT: must be a whole number 1-65535, or 0",
        ),
        (
            {"CASEWORK_TEMPORAL_UI_PORT": "7233"},
            "CASEWORK_TEMPORAL_UI_PORT: must differ from CASEWORK_TEMPORAL_DEV_PORT (7233)",
        ),
        ({"CASEWORK_HTTP_HOST": "my host"}, "CASEWORK_HTTP_HOST: must be a host name"),
        ({"CASEWORK_SMTP_STARTTLS": "maybe"}, "CASEWORK_SMTP_STARTTLS: must be true or false"),
        ({"CASEWORK_TEMPORAL_ADDRESS": "temporal"}, "CASEWORK_TEMPORAL_ADDRESS: must be host:port"),
        ({"CASEWORK_TEMPORAL_ADDRESS": "http://t:7233"}, "CASEWORK_TEMPORAL_ADDRESS: must be"),
        ({"CASEWORK_TEMPORAL_ADDRESS": "t:99999"}, "CASEWORK_TEMPORAL_ADDRESS: must be host:port"),
        (
            {"CASEWORK_TEMPORAL_ADDRESS": "t:7233", "CASEWORK_TEMPORAL_TLS_CERT": "/c.pem"},
            "CASEWORK_TEMPORAL_TLS_KEY: must be set too when CASEWORK_TEMPORAL_TLS_CERT is",
        ),
        (
            {"CASEWORK_TEMPORAL_ADDRESS": "t:7233", "CASEWORK_TEMPORAL_TLS_KEY": "/c.key"},
            "CASEWORK_TEMPORAL_TLS_CERT: must be set too when CASEWORK_TEMPORAL_TLS_KEY is",
        ),
        (
            {
                "CASEWORK_TEMPORAL_ADDRESS": "t:7233",
                "CASEWORK_TEMPORAL_TLS_CERT": "/nonexistent/c.pem",
                "CASEWORK_TEMPORAL_TLS_KEY": "/nonexistent/c.key",
            },
            "CASEWORK_TEMPORAL_TLS_CERT: no such file: /nonexistent/c.pem",
        ),
        (
            {"CASEWORK_TEMPORAL_API_KEY": "k3y"},
            "CASEWORK_TEMPORAL_API_KEY: needs CASEWORK_TEMPORAL_ADDRESS",
        ),
        (
            {"CASEWORK_SMTP_HOST": "mail", "CASEWORK_SMTP_USERNAME": "cw"},
            "CASEWORK_SMTP_PASSWORD: must be set too when CASEWORK_SMTP_USERNAME is",
        ),
        ({"CASEWORK_DATABASE_URL": "casework.db"}, "CASEWORK_DATABASE_URL: is not a database URL"),
        (
            {"CASEWORK_DATABASE_URL": "mysql://u@h/db"},
            "CASEWORK_DATABASE_URL: must be SQLite or PostgreSQL, not 'mysql'",
        ),
        (
            {"CASEWORK_DATABASE_URL": "postgresql://u@h/db"},
            "CASEWORK_DATABASE_URL: use postgresql+psycopg://",
        ),
        ({"CASEWORK_MAIL_FROM": "casework"}, "CASEWORK_MAIL_FROM: must be an email address"),
        ({"CASEWORK_MAIL_FROM": "a@b@"}, "CASEWORK_MAIL_FROM: must be an email address"),
        (
            {"CASEWORK_POLICY_FILE": "/nonexistent/policy.toml"},
            "CASEWORK_POLICY_FILE: no such file: /nonexistent/policy.toml",
        ),
        (
            {"CASEWORK_ORG_EMAIL_DOMAINS": "dwp.gov.uk, @example.org"},
            "CASEWORK_ORG_EMAIL_DOMAINS: '@example.org' is not a domain name",
        ),
        ({"CASEWORK_ORG_EMAIL_DOMAINS": ", ,"}, "CASEWORK_ORG_EMAIL_DOMAINS: must name at least"),
        ({"CASEWORK_BASE_URL": "casework.dwp.gov.uk"}, "CASEWORK_BASE_URL: must be an http://"),
        ({"CASEWORK_BASE_URL": "ftp://casework"}, "CASEWORK_BASE_URL: must be an http://"),
        ({"CASEWORK_BASE_URL": "http://[::1"}, "CASEWORK_BASE_URL: must be an http://"),
        (
            {"CASEWORK_OIDC_ISSUER": "http://login.example.org"},
            "CASEWORK_OIDC_ISSUER: must be an https:// URL",
        ),
        (
            {"CASEWORK_OIDC_ISSUER": "https://login.example.org"},
            "CASEWORK_OIDC_CLIENT_ID: CASEWORK_OIDC_ISSUER needs a client id and secret",
        ),
        (
            {"CASEWORK_OIDC_ROLE_CLAIM": "groups:Security Team=wizard"},
            "CASEWORK_OIDC_ROLE_CLAIM: 'Security Team=wizard': must be group=role",
        ),
        ({"CASEWORK_OIDC_ROLE_CLAIM": "has space"}, "CASEWORK_OIDC_ROLE_CLAIM: must be a claim"),
        ({"CASEWORK_SCIM_TOKEN": "short"}, "CASEWORK_SCIM_TOKEN: must be at least 32"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value).startswith(message)


def test_data_dir_must_be_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(SettingsError, match=r"^CASEWORK_DATA_DIR: is not a directory"):
        Settings.from_env({"CASEWORK_DATA_DIR": str(a_file)})


def test_single_sign_on_settings() -> None:
    settings = Settings.from_env(
        {
            "CASEWORK_OIDC_ISSUER": "https://login.example.org/tenant/v2.0/",
            "CASEWORK_OIDC_CLIENT_ID": "casework",
            "CASEWORK_OIDC_CLIENT_SECRET": "s3cret",
            "CASEWORK_OIDC_ROLE_CLAIM": "groups:SAC Officers=sac;SAC Leads=sac_lead",
        }
    )
    assert settings.oidc_issuer == "https://login.example.org/tenant/v2.0"
    assert settings.oidc_roles == ("groups", {"SAC Officers": "sac", "SAC Leads": "sac_lead"})
    assert "s3cret" not in repr(settings)
