"""The demo OpenID Connect provider (`oidc/provider.mjs`, on the npm registry's
`oidc-provider`), started as a child process: for `casework up --oidc-demo` and the tests.

It has the demo people as accounts (one password for all, `casework`), one client
(Casework) whose redirect and sign-out addresses follow `CASEWORK_BASE_URL`, and signs
JWT access tokens for the audience `casework-api`. Never for production: its state is in
memory and its keys are made at start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

OIDC_DIR = Path(__file__).resolve().parents[2] / "oidc"
SCRIPT = OIDC_DIR / "provider.mjs"
CLIENT_ID = "casework"
CLIENT_SECRET = "casework-demo-secret:with/odd&chars"  # urlencoded in client_secret_basic
PASSWORD = "casework"


class ProviderError(RuntimeError):
    """The demo provider cannot start here (no Node, or `make oidc-provider` not run)."""


@dataclass
class DemoProvider:
    issuer: str
    process: subprocess.Popen[bytes]
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    password: str = PASSWORD

    def rotate_keys(self) -> None:
        """A new signing key, the old one dropped (SIGHUP)."""
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def settings_env(self) -> dict[str, str]:
        """The CASEWORK_OIDC_* settings that point Casework at this provider."""
        return {
            "CASEWORK_OIDC_ISSUER": self.issuer,
            "CASEWORK_OIDC_CLIENT_ID": self.client_id,
            "CASEWORK_OIDC_CLIENT_SECRET": self.client_secret,
        }


def available() -> str | None:
    """Why the demo provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run `make oidc-provider`"
    return None


def start(*, port: int, base_url: str, people_csv: Path, log: Path | None = None) -> DemoProvider:
    """Start the provider on 127.0.0.1:`port` for a Casework at `base_url`; returns once
    its discovery document answers."""
    why = available()
    if why:
        raise ProviderError(f"oidc-demo: {why}")
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": f"{base_url}/auth/callback",
        "OIDC_POST_LOGOUT_URIS": f"{base_url}/signin",
        "OIDC_PEOPLE_CSV": str(people_csv),
        "OIDC_PASSWORD": PASSWORD,
    }
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(["node", str(SCRIPT)], cwd=OIDC_DIR, env=env, stdout=out, stderr=out)
    provider = DemoProvider(issuer, process)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise ProviderError(f"oidc-demo: the provider exited ({process.returncode})")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).is_success:
                return provider
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            provider.stop()
            raise ProviderError("oidc-demo: the provider did not answer within 30 s")
        time.sleep(0.1)
