"""Unleash's client API (`/api/client`: features, register, metrics) with toggles a test sets."""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class UnleashEmulator:
    """Answers the feature list to callers that send the client token; records what they post."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.features: list[dict[str, Any]] = []
        self.registrations: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        self.feature_requests = 0
        self.app = Starlette(
            routes=[
                Route("/api/client/features", self.client_features),
                Route("/api/client/register", self.register, methods=["POST"]),
                Route("/api/client/metrics", self.client_metrics, methods=["POST"]),
            ]
        )

    def set_toggle(
        self,
        name: str,
        enabled: bool,
        strategy: str = "default",
        parameters: dict[str, str] | None = None,
    ) -> None:
        """A toggle `name` with one strategy."""
        self.set_feature(
            name,
            enabled,
            [{"name": strategy, "parameters": parameters or {}, "constraints": []}],
        )

    def set_feature(self, name: str, enabled: bool, strategies: list[dict[str, Any]]) -> None:
        """A toggle `name` with these strategies, as Unleash's client API lists it."""
        self.features = [f for f in self.features if f["name"] != name]
        self.features.append(
            {
                "name": name,
                "enabled": enabled,
                "strategies": strategies,
                "type": "release",
                "project": "default",
                "stale": False,
                "impressionData": False,
                "variants": [],
            }
        )

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == self.token

    async def client_features(self, request: Request) -> JSONResponse:
        """The toggles, filtered by `namePrefix`."""
        if not self._authorized(request):
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        self.feature_requests += 1
        prefix = request.query_params.get("namePrefix", "")
        features = [f for f in self.features if f["name"].startswith(prefix)]
        return JSONResponse({"version": 2, "features": features})

    async def register(self, request: Request) -> Response:
        """A client registering itself (app name, strategies it implements)."""
        if not self._authorized(request):
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        self.registrations.append(await request.json())
        return Response(status_code=202)

    async def client_metrics(self, request: Request) -> Response:
        """A client's toggle usage counts."""
        if not self._authorized(request):
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        self.metrics.append(await request.json())
        return Response(status_code=202)
