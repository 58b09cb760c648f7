"""An account's auth headers from its credential: fixed for `env`/`file`, re-read from Vault."""

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from pydantic import SecretStr

from gateway.errors import GatewayError
from gateway.settings import Credential, VaultReference

HeaderBuilder = Callable[[str], Mapping[str, str]]
"""How a system turns its credential's value into request headers."""


class CredentialUnavailable(RuntimeError):
    """A credential could not be read at start-up; the message names where, never the value."""


class SecretReader(Protocol):
    """Reads the secret a `vault` credential refers to, from a short in-process cache.

    The app factory passes the Vault system; gateway/ never imports it.
    """

    def check(self, reference: VaultReference) -> None:
        """Raise InvalidSettings when `reference` names no configured instance."""

    async def read_secret(self, reference: VaultReference) -> SecretStr:
        """The value, or a GatewayError (`extensions.upstream: "vault"`) naming the instance."""


class CredentialHeaders:
    """The headers of one account, built by `build` from its credential's current value.

    An `env` or `file` credential is read once, here (a missing one fails at start-up); a
    `vault` one is read through `secrets` each time `current` is awaited: the reader's cache
    answers until its TTL, then Vault is asked again and the headers are rebuilt if the value
    changed.
    """

    def __init__(
        self, credential: Credential, build: HeaderBuilder, secrets: SecretReader | None
    ) -> None:
        self._reference = credential.vault
        self._build = build
        self._secrets = secrets
        self._value: str | None = None
        self._headers: Mapping[str, str] = {}
        if self._reference is None:
            self._headers = build(credential.read().get_secret_value())
        elif secrets is None:
            raise ValueError("a `vault` credential needs a secret reader")
        else:
            secrets.check(self._reference)

    @property
    def fixed(self) -> Mapping[str, str]:
        """The headers that never change: all of them for `env`/`file`, none for `vault`."""
        return self._headers if self._reference is None else {}

    @property
    def changing(self) -> Callable[[], Awaitable[Mapping[str, str]]] | None:
        """`current`, for an UpstreamAccount's `credential_headers`, when the value can change."""
        return self.current if self._reference is not None else None

    async def current(self) -> Mapping[str, str]:
        """The headers for the credential's value now."""
        if self._reference is None or self._secrets is None:
            return self._headers
        value = (await self._secrets.read_secret(self._reference)).get_secret_value()
        if value != self._value:
            self._headers = self._build(value)
            self._value = value
        return self._headers

    async def verify(self, owner: str) -> None:
        """Read the credential now; CredentialUnavailable names `owner` and why it failed."""
        try:
            await self.current()
        except GatewayError as error:
            message = f"{owner}: credential unavailable: {error.message}"
            raise CredentialUnavailable(message) from None
