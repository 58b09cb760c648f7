# qontract-gateway: one image for `serve` (API + worker + embedded Redis) and its other roles.
#
# The server refuses to listen beyond loopback without an auth secret, so run the image with
# QONTRACT_GATEWAY_AUTH__SECRET set (and QONTRACT_GATEWAY_REDIS__URL for a shared Redis;
# without it the bundled redis-server is started as a private embedded Redis).

# Only the source of node and npm, used to fetch GraphiQL's files in the build stage.
FROM node:20-bookworm-slim AS node

FROM python:3.11-slim-bookworm AS build
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
RUN python -m venv /opt/venv
# The locked dependencies first (uv.lock exported with hashes; pip checks every one), then the
# server's own wheel without resolving anything again. The client (client/) is not installed.
COPY requirements/server.txt /src/requirements/server.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /src/requirements/server.txt
COPY . /src
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist /src \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /dist/*.whl
# npm pack the files Strawberry's GraphiQL page loads, verified against the page's SRI hashes,
# into the installed package's assets directory, where the gateway serves them from.
RUN /opt/venv/bin/qontract-gateway fetch-graphiql-assets

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install --yes --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER 10001
EXPOSE 4000
ENTRYPOINT ["qontract-gateway"]
CMD ["serve", "--host", "0.0.0.0"]
