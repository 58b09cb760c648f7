"""The baseline: a bare Starlette endpoint doing the same Redis read the gateway's cache does."""

import os

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app() -> Starlette:
    """POST /graphql answers with the JSON value stored under $BASELINE_KEY."""
    client = aioredis.Redis.from_url(os.environ["BASELINE_REDIS_URL"])
    cache_key = os.environ["BASELINE_KEY"]

    async def read(request: Request) -> Response:
        await request.body()
        value = await client.get(cache_key)
        return Response(value, media_type="application/json")

    return Starlette(routes=[Route("/graphql", read, methods=["POST"])])
