"""The base class of integrations that reconcile through the qontract-gateway, and how a dry
run waits for its task and reports it."""

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from reconcile_client.config import ClientConfig, load_config
from reconcile_client.errors import IntegrationFailed
from reconcile_client.gateway_client import GatewayClient
from reconcile_client.gql.gateway.reconcile_task import ReconcileTaskV1
from reconcile_client.operations import RECONCILE_TASK
from reconcile_client.params import PydanticRunParams
from reconcile_client.qontract_server import QontractServer

ParamsT = TypeVar("ParamsT", bound=PydanticRunParams)
TASK_WAIT_SECONDS = 300
FINISHED = frozenset({"success", "failed"})


class QontractReconcileApiIntegration(ABC, Generic[ParamsT]):
    """An integration: a `name`, typed `params`, `async_run(dry_run)` and ready GraphQL clients."""

    def __init__(self, params: ParamsT, config: ClientConfig | None = None) -> None:
        self.params = params
        self.config = config if config is not None else load_config()
        self._gateway: GatewayClient | None = None
        self._qontract_server: QontractServer | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """The integration's name, also the name of its feature toggle."""

    @abstractmethod
    async def async_run(self, dry_run: bool) -> None:
        """Reconcile; with `dry_run` nothing changes, but everything else runs as far as it can."""

    @property
    def gateway(self) -> GatewayClient:
        """The qontract-gateway client (created on first use, closed by the runner)."""
        if self._gateway is None:
            endpoint = self.config.require_gateway()
            self._gateway = GatewayClient(
                endpoint, "qontract-gateway", compress_min_bytes=endpoint.compress_min_bytes
            )
        return self._gateway

    @property
    def federated(self) -> bool:
        """Whether desired state comes through the gateway (no `qontract_server` configured)."""
        return self.config.qontract_server is None

    @property
    def qontract_server(self) -> QontractServer:
        """Desired state, pinned to one bundle per run: from qontract-server when one is
        configured, else from the gateway, which federates it."""
        if self._qontract_server is None:
            endpoint = self.config.qontract_server or self.config.require_gateway()
            self._qontract_server = QontractServer(endpoint, self.name)
        return self._qontract_server

    async def wait_for(self, task_id: str) -> ReconcileTaskV1:
        """The task once finished, or as it is after TASK_WAIT_SECONDS."""
        deadline = time.monotonic() + TASK_WAIT_SECONDS
        while True:
            remaining = math.ceil(deadline - time.monotonic())
            data = await self.gateway.execute(
                RECONCILE_TASK,
                {"id": task_id, "wait_seconds": max(0, min(remaining, TASK_WAIT_SECONDS))},
                read_timeout=max(remaining, 0) + 30,
            )
            task = data.reconcile_task_v1
            if task.status.value in FINISHED or remaining <= 0:
                return task
            await asyncio.sleep(min(1.0, max(remaining, 0)))

    async def aclose(self) -> None:
        """Close every client this integration opened."""
        for client in (self._gateway, self._qontract_server):
            if client is not None:
                await client.aclose()


def report(task_id: str, task: ReconcileTaskV1, actions: Sequence[str]) -> None:
    """Print each of the dry run's `actions` (one line each, read from the task's typed result)
    and its errors; IntegrationFailed on errors, a failed task or one still pending."""
    status = task.status.value
    if status not in FINISHED:
        raise IntegrationFailed(f"task {task_id} still {status} after {TASK_WAIT_SECONDS} s")
    result = task.typed_result
    errors = result.errors if result else []
    for action in actions:
        print(f"[dry-run] {action}")
    print(f"task {task_id}: {result.status if result else status}, {len(actions)} action(s)")
    for error in errors:
        print(f"error: {error}")
    if status == "failed" or errors:
        reason = task.error or f"{len(errors)} error(s)"
        raise IntegrationFailed(f"task {task_id} failed: {reason}")
