"""Run an integration: the flag gate, the event loop, closed clients and one exit code."""

import asyncio
import logging
from typing import Any

from reconcile_client.errors import ExitCode, IntegrationError
from reconcile_client.flags import feature_toggle_state
from reconcile_client.integration import QontractReconcileApiIntegration

logger = logging.getLogger(__name__)


async def _gated_run(integration: QontractReconcileApiIntegration[Any], dry_run: bool) -> bool:
    try:
        if not await feature_toggle_state(integration.name, integration.config):
            return False
        await integration.async_run(dry_run)
        return True
    finally:
        await integration.aclose()


def run_class_integration(
    integration: QontractReconcileApiIntegration[Any], dry_run: bool
) -> ExitCode:
    """Run `integration` unless its toggle is off; expected failures become one line and a code."""
    try:
        ran = asyncio.run(_gated_run(integration, dry_run))
    except IntegrationError as error:
        logger.error("%s: %s", integration.name, error)
        return error.exit_code
    except KeyboardInterrupt:
        logger.error("%s: interrupted", integration.name)
        return ExitCode.FAILED
    if not ran:
        logger.info("%s: feature toggle %s is off; not running", integration.name, integration.name)
    return ExitCode.OK
