"""Unleash's client API (`GET /api/client/features`) with toggles a test sets."""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class UnleashEmulator:
    """Answers the feature list to callers that send the client token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.features: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/api/client/features", self.client_features)])

    def set_toggle(self, name: str, enabled: bool, strategy: str = "default") -> None:
        """A toggle `name` with one strategy."""
        self.features = [f for f in self.features if f["name"] != name]
        strategies = [{"name": strategy, "parameters": {}, "constraints": []}]
        self.features.append({"name": name, "enabled": enabled, "strategies": strategies})

    async def client_features(self, request: Request) -> JSONResponse:
        """The toggles, filtered by `namePrefix`."""
        if request.headers.get("authorization") != self.token:
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        prefix = request.query_params.get("namePrefix", "")
        features = [f for f in self.features if f["name"].startswith(prefix)]
        return JSONResponse({"version": 2, "features": features})
