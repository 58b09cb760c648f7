"""The client token of one Vault instance: AppRole login or a given token, renewed before expiry."""

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import SecretStr

from gateway.errors import GatewayError, UpstreamError
from gateway.upstream import UpstreamClient, UpstreamPath
from resolvers.vault.errors import json_data, json_object, vault_errors
from resolvers.vault.settings import AppRoleAuth, TokenAuth

log = structlog.get_logger("resolvers.vault")

RENEW_AT = 2 / 3
"""Renew (or log in again) once this share of the token's lease has passed."""
EXPIRY_MARGIN = 0.5
"""Seconds before its computed expiry a token counts as expired (the clock started late)."""
RETRY_AFTER_FAILURE = 5.0
"""Longest wait before a failed renewal is tried again (never past the token's expiry)."""


@dataclass(frozen=True)
class _Lease:
    """A token with its lease as Vault granted it."""

    token: SecretStr
    ttl: float
    renewable: bool


def _auth_lease(body: dict[str, Any], token: SecretStr | None = None) -> _Lease:
    """The token of a login or renewal answer (`auth`), or UPSTREAM_ERROR if it has none."""
    auth = body.get("auth")
    if not isinstance(auth, dict) or not isinstance(auth.get("client_token"), str):
        raise UpstreamError("Vault answered a login or renewal without a token")
    return _Lease(
        token or SecretStr(auth["client_token"]),
        float(auth.get("lease_duration") or 0),
        bool(auth.get("renewable")),
    )


class VaultToken:
    """Holds the token every request of one instance sends; never logs or shows its value.

    AppRole logs in; a configured token is looked up. A lease with a TTL is renewed in the
    background once `RENEW_AT` of it has passed; an AppRole token that can no longer be
    renewed (not renewable, or Vault granted less than asked: its max TTL is near) is replaced
    by a new login instead. A request finding the token expired refreshes it first.
    """

    def __init__(
        self, client: UpstreamClient, auth: AppRoleAuth | TokenAuth, instance: str
    ) -> None:
        self._client = client
        self._instance = instance
        self._approle = auth.approle if isinstance(auth, AppRoleAuth) else None
        self._given = auth.token.read() if isinstance(auth, TokenAuth) else None
        if self._approle is not None:
            self._role_id = self._approle.role_id.read()
            self._secret_id = self._approle.secret_id.read()
        self._lease: _Lease | None = None
        self._granted = 0.0
        self._expires: float | None = None
        self._due: float | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Log in (or look the token up) now; a GatewayError when Vault refuses or is down."""
        async with self._lock:
            await self._login()

    async def current(self) -> str:
        """The token to send, logging in again first when there is none or it expired."""
        if self._lease is None or self._expired():
            async with self._lock:
                if self._lease is None or self._expired():
                    await self._login()
        assert self._lease is not None
        return self._lease.token.get_secret_value()

    async def aclose(self) -> None:
        """Stop the background renewal."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    def _expired(self) -> bool:
        return self._expires is not None and time.monotonic() >= self._expires - EXPIRY_MARGIN

    def _hold(self, lease: _Lease, granted: float) -> None:
        now = time.monotonic()
        self._lease = lease
        self._granted = granted
        self._expires = now + lease.ttl if lease.ttl > 0 else None
        self._due = now + lease.ttl * RENEW_AT if lease.ttl > 0 else None
        if self._due is not None and not lease.renewable and self._approle is None:
            self._due = None
        self._changed.set()
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_in_background())

    async def _login(self) -> None:
        with vault_errors():
            if self._approle is not None:
                response = await self._client.request(
                    "auth.approle.login",
                    "POST",
                    UpstreamPath("/v1/auth/{}/login", tuple(self._approle.mount.split("/"))),
                    json={
                        "role_id": self._role_id.get_secret_value(),
                        "secret_id": self._secret_id.get_secret_value(),
                    },
                    credentials={},
                )
                lease = _auth_lease(json_object(response))
                self._hold(lease, lease.ttl)
            else:
                assert self._given is not None
                response = await self._client.request(
                    "auth.token.lookup_self",
                    "GET",
                    UpstreamPath("/v1/auth/token/lookup-self"),
                    credentials={"X-Vault-Token": self._given.get_secret_value()},
                )
                data = json_data(response)
                ttl = float(data.get("ttl") or 0)
                self._hold(
                    _Lease(self._given, ttl, bool(data.get("renewable"))),
                    float(data.get("creation_ttl") or ttl),
                )
        log.info("vault token obtained", instance=self._instance, ttl=self._lease_ttl())

    async def _renew(self) -> None:
        assert self._lease is not None
        lease = self._lease
        if self._approle is not None and (not lease.renewable or self._expired()):
            await self._login()
            return
        with vault_errors():
            response = await self._client.request(
                "auth.token.renew_self",
                "POST",
                UpstreamPath("/v1/auth/token/renew-self"),
                json={},
                idempotent=True,
                credentials={"X-Vault-Token": lease.token.get_secret_value()},
            )
            renewed = _auth_lease(json_object(response), lease.token)
        capped = renewed.ttl + 1 < self._granted
        if capped and self._approle is not None:
            renewed = _Lease(renewed.token, renewed.ttl, renewable=False)
        elif capped:
            log.warning(
                "vault token reaches its max TTL; it cannot be renewed further",
                instance=self._instance,
                ttl=renewed.ttl,
            )
            renewed = _Lease(renewed.token, renewed.ttl, renewable=False)
        self._hold(renewed, self._granted)
        log.info("vault token renewed", instance=self._instance, ttl=renewed.ttl)

    def _lease_ttl(self) -> float:
        return self._lease.ttl if self._lease is not None else 0.0

    async def _renew_in_background(self) -> None:
        while True:
            self._changed.clear()
            due = self._due
            if due is None:
                await self._changed.wait()
                continue
            wait = due - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
                continue
            try:
                async with self._lock:
                    await self._renew()
            except GatewayError as error:
                self._renewal_failed(error)
            else:
                if self._failing:
                    log.info("vault token renewal recovered", instance=self._instance)
                self._failing = False

    def _renewal_failed(self, error: GatewayError) -> None:
        """Try again soon (logged once per outage); a given token that expired is left alone."""
        if not self._failing:
            log.warning("vault token renewal failed", instance=self._instance, error=error.message)
        self._failing = True
        if self._approle is None and self._expired():
            self._due = None
            return
        left = (self._expires or time.monotonic()) - time.monotonic()
        wait = min(RETRY_AFTER_FAILURE, max(0.5, left / 2)) if left > 0 else RETRY_AFTER_FAILURE
        self._due = time.monotonic() + wait
