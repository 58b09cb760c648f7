"""Liveness, readiness and the Prometheus endpoint."""

import asyncio
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.runtime import Runtime


class HealthEndpoints:
    """`/healthz` (the process answers), `/readyz` (Redis answers), `/metrics`."""

    def __init__(
        self,
        runtime: Runtime,
        readiness_timeout: float = 1.0,
        degraded: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.runtime = runtime
        self.readiness_timeout = readiness_timeout
        self.degraded = degraded

    async def healthz(self, request: Request) -> Response:
        """Always 200 while the event loop runs."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """200 when Redis answers PING within the timeout, else 503 with the reason.

        Degraded upstreams (qontract-server unreachable) are named but keep the gateway ready.
        """
        try:
            async with asyncio.timeout(self.readiness_timeout):
                await self.runtime.reserved_redis.ping()
        except (RedisError, OSError, TimeoutError) as error:
            reason = f"redis unreachable: {type(error).__name__}"
            self.runtime.metrics.redis_up.set(0)
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        self.runtime.metrics.redis_up.set(1)
        degraded = self.degraded()
        if degraded:
            return JSONResponse({"status": "ready", "degraded": degraded})
        return JSONResponse({"status": "ready"})

    async def metrics(self, request: Request) -> Response:
        """Prometheus text exposition of this app's registry."""
        body = generate_latest(self.runtime.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
