"""The command line as an operator sees it: exit codes and one clear line, never a traceback."""

from collections.abc import Callable, Iterator

import pytest

from gateway.auth import mint_token
from tests.client.conftest import app_interface_bundle, run_cli
from tests.emulators.qontract_server import QontractServerEmulator
from tests.emulators.unleash import UnleashEmulator
from tests.support.ports import free_port
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"
UNLEASH_TOKEN = "unleash-client-token"
COMMAND = "slack-usergroups-api"


def env_for(gateway_url: str, qontract_server: ServerThread, **extra: str) -> dict[str, str]:
    return {
        "QONTRACT_RECONCILE_API_GATEWAY__URL": gateway_url,
        "QONTRACT_RECONCILE_API_QONTRACT_SERVER__URL": f"{qontract_server.url}/graphql",
        **extra,
    }


@pytest.fixture
def unleash() -> Iterator[tuple[UnleashEmulator, ServerThread]]:
    emulator = UnleashEmulator(UNLEASH_TOKEN)
    with ServerThread(emulator.app) as server:
        yield emulator, server


def unleash_env(server: ServerThread) -> dict[str, str]:
    """qontract-reconcile's variable names."""
    return {"UNLEASH_API_URL": f"{server.url}/api", "UNLEASH_CLIENT_ACCESS_TOKEN": UNLEASH_TOKEN}


def test_gateway_down_exits_3_with_one_line_and_no_traceback(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
) -> None:
    down = f"http://127.0.0.1:{free_port()}/graphql"
    result = run_cli(COMMAND, env=env_for(down, qontract_server[1]))
    assert result.returncode == 3
    assert f"qontract-gateway at {down} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_event_log_sink_with_the_gateway_down_exits_3_with_one_line_and_no_traceback() -> None:
    down = f"http://127.0.0.1:{free_port()}/graphql"
    env = {"QONTRACT_RECONCILE_API_GATEWAY__URL": down}
    result = run_cli("event-log-sink", "--group", "g", "--consumer", "c", env=env)
    assert result.returncode == 3, result.stderr
    assert "qontract-gateway at ws://127.0.0.1:" in result.stderr
    assert "is unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_token_refused_by_the_gateway_exits_4_and_never_prints_the_token(
    pd_gateway_factory: Callable[..., ServerThread],
    qontract_server: tuple[QontractServerEmulator, ServerThread],
) -> None:
    gateway = pd_gateway_factory(auth={"secret": SECRET})
    forged = mint_token("another-secret-that-is-long-enough-0123", "x", ["read"], 1)
    env = env_for(f"{gateway.url}/graphql", qontract_server[1])
    result = run_cli(COMMAND, env={**env, "QONTRACT_RECONCILE_API_GATEWAY__TOKEN": forged})
    assert result.returncode == 4
    assert "qontract-gateway refused the token (UNAUTHENTICATED)" in result.stderr
    assert forged not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_unknown_workspace_exits_2_naming_the_known_workspaces(
    pd_gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    env = env_for(f"{pd_gateway.url}/graphql", qontract_server[1])
    result = run_cli(COMMAND, "--workspace-name", "nope", env=env)
    assert result.returncode == 2
    assert "workspace 'nope' has no usergroups in app-interface" in result.stderr
    assert "(known: coreos, elsewhere)" in result.stderr


def test_schedule_slot_in_another_time_format_exits_2_naming_the_datafile(
    pd_gateway: ServerThread,
) -> None:
    bundle = app_interface_bundle()
    rotation = next(p for p in bundle["permissions_v1"] if p.get("handle") == "rotation")
    rotation["schedule"]["schedule"][0]["start"] = "2026-06-01T08:00:00Z"
    emulator = QontractServerEmulator(bundle)
    with ServerThread(emulator.app) as server:
        result = run_cli(COMMAND, env=env_for(f"{pd_gateway.url}/graphql", server))
    assert result.returncode == 2, result.stderr
    assert "schedule /schedules/rotation.yml: slot '2026-06-01T08:00:00Z' to" in result.stderr
    assert "is not in the format YYYY-MM-DD HH:MM (UTC)" in result.stderr
    assert "Traceback" not in result.stderr


def test_qontract_server_token_is_never_printed(
    pd_gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    qontract_server[0].token = "Basic c2VjcmV0LXZhbHVl"
    env = env_for(
        f"{pd_gateway.url}/graphql",
        qontract_server[1],
        QONTRACT_RECONCILE_API_QONTRACT_SERVER__TOKEN="Basic d3Jvbmc=",
    )
    result = run_cli(COMMAND, env=env)
    assert result.returncode == 4
    assert "qontract-server refused the token (HTTP 401)" in result.stderr
    assert "d3Jvbmc" not in result.stderr + result.stdout


def test_missing_configuration_exits_2_naming_the_variable() -> None:
    """The gateway is the one setting needed (qontract-server only for a non-federating one)."""
    result = run_cli(COMMAND, env={})
    assert result.returncode == 2
    assert "QONTRACT_RECONCILE_API_GATEWAY__URL" in result.stderr


def test_static_flag_off_skips_the_run_with_exit_0(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
) -> None:
    down = f"http://127.0.0.1:{free_port()}/graphql"
    env = env_for(
        down, qontract_server[1], QONTRACT_RECONCILE_API_FLAGS='{"slack-usergroups-api": false}'
    )
    result = run_cli(COMMAND, env=env)
    assert result.returncode == 0
    assert "feature toggle slack-usergroups-api is off" in result.stderr
    assert qontract_server[0].calls == 0


def test_unleash_toggle_off_skips_and_on_runs(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    unleash: tuple[UnleashEmulator, ServerThread],
) -> None:
    emulator, server = unleash
    down = f"http://127.0.0.1:{free_port()}/graphql"
    env = env_for(down, qontract_server[1], **unleash_env(server))
    emulator.set_toggle("slack-usergroups-api", enabled=False)
    skipped = run_cli(COMMAND, env=env)
    assert skipped.returncode == 0
    assert "is off" in skipped.stderr
    emulator.set_toggle("slack-usergroups-api", enabled=True)
    ran = run_cli(COMMAND, env=env)
    assert ran.returncode == 3, "it ran, and then found the gateway down"


def test_unleash_toggle_unknown_runs_and_a_static_flag_overrides_it(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    unleash: tuple[UnleashEmulator, ServerThread],
) -> None:
    emulator, server = unleash
    emulator.set_toggle("slack-usergroups", enabled=True)
    down = f"http://127.0.0.1:{free_port()}/graphql"
    env = env_for(down, qontract_server[1], **unleash_env(server))
    assert run_cli(COMMAND, env=env).returncode == 3
    override = {**env, "QONTRACT_RECONCILE_API_FLAGS": '{"slack-usergroups-api": false}'}
    assert run_cli(COMMAND, env=override).returncode == 0


def test_unleash_unreachable_warns_in_one_line_and_runs_as_qontract_reconcile_does(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
) -> None:
    """qontract-reconcile's get_feature_toggle_state falls back to on when Unleash cannot answer."""
    unleash_url = f"http://127.0.0.1:{free_port()}/api"
    env = env_for("http://127.0.0.1:1/graphql", qontract_server[1])
    env.update({"UNLEASH_API_URL": unleash_url, "UNLEASH_CLIENT_ACCESS_TOKEN": UNLEASH_TOKEN})
    result = run_cli(COMMAND, env=env)
    assert result.returncode == 3, "it ran, and then found the gateway down"
    assert f"Unleash at {unleash_url} could not be read; toggle {COMMAND} is on" in result.stderr
    assert "qontract-gateway at http://127.0.0.1:1/graphql is unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert UNLEASH_TOKEN not in result.stderr


def test_disable_cluster_toggle_runs_the_integration(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    unleash: tuple[UnleashEmulator, ServerThread],
) -> None:
    """The issue's case: a `disableCluster` toggle is on without a cluster; it used to skip."""
    emulator, server = unleash
    emulator.set_toggle(
        COMMAND, enabled=True, strategy="disableCluster", parameters={"cluster_name": "c"}
    )
    down = f"http://127.0.0.1:{free_port()}/graphql"
    result = run_cli(COMMAND, env=env_for(down, qontract_server[1], **unleash_env(server)))
    assert result.returncode == 3, result.stderr
    assert "is off" not in result.stderr


def test_the_older_unleash_variables_still_configure_unleash(
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    unleash: tuple[UnleashEmulator, ServerThread],
) -> None:
    """QONTRACT_RECONCILE_API_UNLEASH__URL/__TOKEN still work, and win over UNLEASH_API_URL."""
    emulator, server = unleash
    emulator.set_toggle(COMMAND, enabled=False)
    down = f"http://127.0.0.1:{free_port()}/graphql"
    older = {
        "QONTRACT_RECONCILE_API_UNLEASH__URL": f"{server.url}/api",
        "QONTRACT_RECONCILE_API_UNLEASH__TOKEN": UNLEASH_TOKEN,
        "UNLEASH_API_URL": f"http://127.0.0.1:{free_port()}/api",
    }
    result = run_cli(COMMAND, env=env_for(down, qontract_server[1], **older))
    assert result.returncode == 0, result.stderr
    assert "feature toggle slack-usergroups-api is off" in result.stderr


def test_graphql_error_from_the_gateway_exits_1_with_its_code(
    pd_gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    """The gateway has no Slack workspace `coreos`: the mutation answers BAD_USER_INPUT."""
    env = env_for(f"{pd_gateway.url}/graphql", qontract_server[1])
    result = run_cli(COMMAND, env=env)
    assert result.returncode == 1
    assert "qontract-gateway answered BAD_USER_INPUT" in result.stderr
    assert "Traceback" not in result.stderr
