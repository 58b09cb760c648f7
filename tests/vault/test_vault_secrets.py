"""The Vault system's Python API on a real OpenBao: KV v1/v2, writes, tokens, cache, outages."""

import pytest

from gateway.credentials import CredentialUnavailable
from gateway.errors import BadUserInput, ErrorCode, GatewayError, NotFound, UpstreamUnavailable
from tests.support.openbao import KV1_MOUNT, PrivateOpenBao
from tests.support.ports import free_port
from tests.support.wait import async_wait_until
from tests.vault.conftest import VaultFactory


async def test_kv2_reads_the_latest_version_or_the_one_asked_for(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str
) -> None:
    first = openbao.kv2_put(f"{prefix}/pd", {"token": "kv2-old-value", "user": "bot"})
    openbao.kv2_put(f"{prefix}/pd", {"token": "kv2-new-value", "user": "bot"})
    vault = await vault_factory(openbao)

    latest = await vault.main.read(f"secret/{prefix}/pd", "token")
    pinned = await vault.main.read(f"secret/{prefix}/pd", "token", version=first)
    everything = await vault.main.read_all(f"secret/{prefix}/pd")

    assert latest.get_secret_value() == "kv2-new-value"
    assert pinned.get_secret_value() == "kv2-old-value"
    assert {k: v.get_secret_value() for k, v in everything.items()} == {
        "token": "kv2-new-value",
        "user": "bot",
    }


async def test_kv1_reads_and_refuses_a_version(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str
) -> None:
    openbao.api("POST", f"{KV1_MOUNT}/{prefix}/jira", {"token": "kv1-value"})
    vault = await vault_factory(openbao)

    value = await vault.main.read(f"{KV1_MOUNT}/{prefix}/jira", "token")
    with pytest.raises(BadUserInput) as refused:
        await vault.main.read(f"{KV1_MOUNT}/{prefix}/jira", "token", version=1)

    assert value.get_secret_value() == "kv1-value"
    assert "KV v1" in refused.value.message
    assert refused.value.extensions["upstream"] == "vault"


async def test_missing_secret_field_and_mount_are_coded_errors_naming_vault(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str
) -> None:
    openbao.kv2_put(f"{prefix}/gh", {"token": "gh-secret-value"})
    vault = await vault_factory(openbao)

    with pytest.raises(NotFound) as no_secret:
        await vault.main.read(f"secret/{prefix}/absent", "token")
    with pytest.raises(NotFound) as no_field:
        await vault.main.read(f"secret/{prefix}/gh", "password")
    with pytest.raises(BadUserInput) as no_mount:
        await vault.main.read(f"nomount/{prefix}/gh", "token")

    for error in (no_secret.value, no_field.value, no_mount.value):
        assert error.extensions["upstream"] == "vault"
        assert "'main'" in error.message
        assert "gh-secret-value" not in error.message


@pytest.mark.parametrize("mount", ["secret", KV1_MOUNT])
async def test_write_list_and_delete(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str, mount: str
) -> None:
    vault = await vault_factory(openbao)
    path = f"{mount}/{prefix}/sso/client"

    written = await vault.main.write(path, {"client_secret": "written-value"})
    unchanged = await vault.main.write(path, {"client_secret": "written-value"})
    listed = await vault.main.list(f"{mount}/{prefix}")
    read = await vault.main.read(path, "client_secret")
    await vault.main.delete(path)
    after = await vault.main.list(f"{mount}/{prefix}/sso")

    assert (written, unchanged) == (True, False)
    assert listed == ["sso/"]
    assert read.get_secret_value() == "written-value"
    assert after == []
    with pytest.raises(NotFound):
        await vault.main.read(path, "client_secret")
    if mount == "secret":
        assert vault.requests("kv.write") == 1  # the unchanged write made no new version


async def test_write_drops_the_cached_copy(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str
) -> None:
    vault = await vault_factory(openbao, cache_ttl=3600)
    path = f"secret/{prefix}/rotated"
    await vault.main.write(path, {"password": "before"})
    assert (await vault.main.read(path, "password")).get_secret_value() == "before"

    await vault.main.write(path, {"password": "after"})

    assert (await vault.main.read(path, "password")).get_secret_value() == "after"


async def test_reads_are_cached_in_process_until_the_ttl(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str
) -> None:
    openbao.kv2_put(f"{prefix}/slack", {"token": "first-value"})
    vault = await vault_factory(openbao, cache_ttl=5)
    path = f"secret/{prefix}/slack"
    assert (await vault.main.read(path, "token")).get_secret_value() == "first-value"

    openbao.kv2_put(f"{prefix}/slack", {"token": "second-value"})
    cached = await vault.main.read(path, "token")

    assert cached.get_secret_value() == "first-value"
    assert vault.requests("kv.read") == 1

    async def reread() -> bool:
        return (await vault.main.read(path, "token")).get_secret_value() == "second-value"

    await async_wait_until(reread, timeout=20, what="the cached copy to expire")
    assert vault.requests("kv.read") >= 2


async def test_approle_token_is_renewed_before_expiry_then_replaced_by_a_new_login(
    openbao: PrivateOpenBao, vault_factory: VaultFactory, prefix: str
) -> None:
    openbao.kv2_put(f"{prefix}/renew", {"token": "renewed-read"})
    login = openbao.approle(f"short-{prefix}", token_ttl="3s", token_max_ttl="7s")
    vault = await vault_factory(openbao, login=login, cache_ttl=0.5)
    path = f"secret/{prefix}/renew"

    async def renewed() -> bool:
        return vault.requests("auth.token.renew_self") >= 1

    async def logged_in_again() -> bool:
        return vault.requests("auth.approle.login") >= 2

    await async_wait_until(renewed, timeout=20, what="a token renewal")
    await async_wait_until(logged_in_again, timeout=30, what="a login past the token's max TTL")

    value = await vault.main.read(path, "token")
    assert value.get_secret_value() == "renewed-read"
    assert vault.requests("kv.read", "403") == 0


async def test_vault_stopped_serves_the_cached_copy_until_its_ttl_then_upstream_unavailable(
    vault_factory: VaultFactory,
) -> None:
    with PrivateOpenBao() as server:
        server.kv2_put("pd", {"token": "outage-value"})
        vault = await vault_factory(server, cache_ttl=8, timeout=1)
        assert (await vault.main.read("secret/pd", "token")).get_secret_value() == "outage-value"
        server.stop()
        cached = await vault.main.read("secret/pd", "token")

    async def fails() -> bool:
        try:
            await vault.main.read("secret/pd", "token")
        except UpstreamUnavailable:
            return True
        return False

    assert cached.get_secret_value() == "outage-value"
    await async_wait_until(fails, timeout=30, what="the cached copy to expire")
    with pytest.raises(GatewayError) as failed:
        await vault.main.read("secret/pd", "token")
    assert failed.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert failed.value.extensions["upstream"] == "vault"
    assert "vault" in failed.value.message
    assert "outage-value" not in failed.value.message


async def test_vault_down_at_start_up_is_a_clear_error(
    openbao: PrivateOpenBao, vault_factory: VaultFactory
) -> None:
    login = openbao.approle("down-at-start")
    down = PrivateOpenBao()
    down.port = free_port()
    try:
        vault = await vault_factory(down, start=False, login=login, timeout=1)
        with pytest.raises(CredentialUnavailable) as failed:
            await vault.secrets.start()
    finally:
        down.close()

    message = str(failed.value)
    assert f"Vault instance 'main' ({down.url}) failed at start-up" in message
    assert "could not reach" in message
    assert login.secret_id not in message
