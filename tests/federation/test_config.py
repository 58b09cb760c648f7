"""`upstreams.qontract_server`: validated settings, the credential's header, and its absence."""

import base64

import httpx
import pytest

from gateway.settings import InvalidSettings
from resolvers.qontract_server.api import auth_headers
from resolvers.qontract_server.system import SYSTEM as QONTRACT_SERVER
from tests.support.server_thread import ServerThread


def test_settings_validate_the_auth_scheme_and_default_to_verbatim() -> None:
    """verbatim (qontract-reconcile's way) by default; an unknown scheme or option is refused,
    naming the field."""
    (configured,) = QONTRACT_SERVER.accounts({"url": "http://127.0.0.1:4000"})
    assert configured.auth_scheme == "verbatim"
    with pytest.raises(InvalidSettings, match=r"upstreams\.qontract_server\.auth_scheme"):
        QONTRACT_SERVER.accounts({"url": "http://x", "auth_scheme": "digest"})
    with pytest.raises(InvalidSettings, match=r"upstreams\.qontract_server\.extra"):
        QONTRACT_SERVER.accounts({"url": "http://x", "extra": 1})


def test_the_token_becomes_the_authorization_header_by_scheme() -> None:
    """As is, as basic credentials, or as a bearer token; nothing without a token."""
    assert auth_headers("Basic abc", "verbatim") == {"Authorization": "Basic abc"}
    assert auth_headers("t0k", "bearer") == {"Authorization": "Bearer t0k"}
    encoded = base64.b64encode(b"user:pass").decode()
    assert auth_headers("user:pass", "basic") == {"Authorization": f"Basic {encoded}"}
    assert auth_headers(None, "verbatim") == {}


def test_without_qontract_server_the_gateway_runs_as_before(gateway: ServerThread) -> None:
    """No qontract-server: no /sha256, no /graphqlsha, the gateway-only schema."""
    assert httpx.get(f"{gateway.url}/sha256").status_code == 404
    assert httpx.post(f"{gateway.url}/graphqlsha/{'a' * 64}", json={}).status_code == 404
    body = httpx.post(
        f"{gateway.url}/graphql", json={"query": "{ users_v1 { org_username } }"}
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert gateway.app.state.federation is None  # type: ignore[attr-defined]
