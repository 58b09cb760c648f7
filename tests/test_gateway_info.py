"""The gateway answers its first field over real HTTP with a real Redis."""

import httpx

from tests.support.server_thread import ServerThread


def test_gateway_info_reports_version_redis_mode_and_redis_version(gateway: ServerThread) -> None:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={
            "query": "{ gateway_info_v1 { version redis_mode redis_version"
            " upstream_accounts { name } } }"
        },
    )
    assert response.status_code == 200
    info = response.json()["data"]["gateway_info_v1"]
    assert info["redis_mode"] == "external"
    assert info["redis_version"][0].isdigit()
    assert info["upstream_accounts"] == []
    assert response.headers["x-request-id"]
