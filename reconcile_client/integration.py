"""The base class of integrations that reconcile through the qontract-gateway."""

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from reconcile_client.config import ClientConfig, load_config
from reconcile_client.gateway_client import GatewayClient
from reconcile_client.params import PydanticRunParams
from reconcile_client.qontract_server import QontractServer

ParamsT = TypeVar("ParamsT", bound=PydanticRunParams)


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

    async def aclose(self) -> None:
        """Close every client this integration opened."""
        for client in (self._gateway, self._qontract_server):
            if client is not None:
                await client.aclose()
