"""A Slack emulator holding the `coreos` workspace, and the gateway upstream setting for it."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.emulators.slack import SlackEmulator
from tests.support.server_thread import ServerThread
from tests.test_slack_reconcile import GENEROUS, TOKEN, coreos_state

TOKEN_VARIABLE = "QGW_TEST_SLACK_TOKEN"


@contextmanager
def coreos_slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackEmulator, dict[str, Any]]]:
    """The running emulator and the `upstreams.slack` entry a gateway reaches it with."""
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    emulator = SlackEmulator()
    coreos_state(emulator.state)
    with ServerThread(emulator.app) as server:
        yield (
            emulator,
            {
                "name": "coreos",
                "api_url": f"{server.url}/api",
                "token": {"env": TOKEN_VARIABLE},
                "rate_limit": GENEROUS,
            },
        )
