"""Tests that need a tool beyond Python and redis-server: skipped without it, failed when CI
says the tool is required (`QONTRACT_GATEWAY_REQUIRE_<TOOL>=1`, set by .ci/run)."""

import os
from typing import NoReturn

import pytest


def skip_unless_required(reason: str, variable: str) -> NoReturn:
    """Skip the test for `reason`, or fail it when `variable` is 1 (the test is required)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1)")
    pytest.skip(reason)
