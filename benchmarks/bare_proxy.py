"""A bare Starlette + httpx proxy: the same second hop as the gateway's pass-through, nothing
else (no auth, limits, cache or Redis), as the baseline of `benchmarks.federation_passthrough`.
With `BARE_PROXY_STREAM=1` it streams the upstream's body to the caller as it arrives.

Run: `BARE_PROXY_UPSTREAM=http://127.0.0.1:<port> python -m benchmarks.bare_proxy <port>`.
"""

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("BARE_PROXY_UPSTREAM", "http://127.0.0.1:4000")
STREAM = os.environ.get("BARE_PROXY_STREAM") == "1"
client = httpx.AsyncClient(base_url=UPSTREAM, timeout=60)


async def forward(request: Request) -> Response:
    """The request's body to the same path upstream; its status, type and body back."""
    if STREAM:
        upstream = client.build_request(
            "POST",
            request.url.path,
            content=await request.body(),
            headers={"content-type": "application/json"},
        )
        streamed = await client.send(upstream, stream=True)
        return StreamingResponse(
            streamed.aiter_raw(),
            status_code=streamed.status_code,
            headers={"content-type": streamed.headers.get("content-type", "application/json")},
            background=BackgroundTask(streamed.aclose),
        )
    answer = await client.post(
        request.url.path, content=await request.body(), headers={"content-type": "application/json"}
    )
    return Response(
        answer.content,
        status_code=answer.status_code,
        headers={"content-type": answer.headers.get("content-type", "application/json")},
    )


async def ready(_: Request) -> Response:
    """200 once serving."""
    return Response("ok")


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    """Close the upstream pool at the end."""
    yield
    await client.aclose()


app = Starlette(
    routes=[Route("/readyz", ready), Route("/{path:path}", forward, methods=["POST"])],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        log_config=None,
        access_log=False,
    )
