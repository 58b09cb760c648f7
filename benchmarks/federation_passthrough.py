"""Pass-through of a ~1 MB qontract-server answer: time added by the gateway and by a bare
httpx proxy (`benchmarks.bare_proxy`, the same second hop and nothing else, buffered as the
gateway does, and streaming), in one run.

Each run is a new bundle sha (uncached); direct, gateway and bare proxy requests are
interleaved, and the stand-in's own time (ASGI timer) is taken out of each. Run:
`python -m benchmarks.federation_passthrough --runs 15`.
"""

import argparse
import functools
import sys
from contextlib import ExitStack

from benchmarks.federation import (
    PASSTHROUGH,
    USERS,
    new_bundle,
    outside,
    p50_ms,
    servers,
)
from benchmarks.harness import process
from tests.emulators.qontract_bundle import scaled_bundle
from tests.support.ports import free_port


def main() -> None:
    """Measure and print the added p50 of the gateway and of the bare proxy, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    base = scaled_bundle(users=USERS)
    with servers() as s, ExitStack() as stack:
        proxies = {}
        for name, stream in (("bare", "0"), ("streaming", "1")):
            port = free_port()
            proxies[name] = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "benchmarks.bare_proxy", str(port)]
            env = {"BARE_PROXY_UPSTREAM": s.standin.url, "BARE_PROXY_STREAM": stream}
            stack.enter_context(process(command, env, f"{proxies[name]}/readyz"))
        bare, streaming = proxies["bare"], proxies["streaming"]
        sha = new_bundle(s.standin, base, 0)
        size = len(s.post(s.gateway_url(sha), PASSTHROUGH))
        s.post(f"{bare}/graphqlsha/{sha}", PASSTHROUGH)
        s.post(f"{streaming}/graphqlsha/{sha}", PASSTHROUGH)
        gateway: list[float] = []
        proxy: list[float] = []
        streamed: list[float] = []
        for n in range(1, runs + 1):
            s.standin.forget(sha)
            sha = new_bundle(s.standin, base, n)
            query = PASSTHROUGH.replace("{ users_v1", f"{{ _{n}: users_v1", 1)
            calls = {
                "direct": functools.partial(s.post, s.standin_url(sha), query),
                "gateway": functools.partial(s.post, s.gateway_url(sha), query),
                "bare": functools.partial(s.post, f"{bare}/graphqlsha/{sha}", query),
                "streaming": functools.partial(s.post, f"{streaming}/graphqlsha/{sha}", query),
            }
            order = ["direct", "gateway", "bare", "streaming"]
            if n % 2 == 0:
                order.reverse()
            times = {name: outside(s, calls[name]) for name in order}
            gateway.append(times["gateway"] - times["direct"])
            proxy.append(times["bare"] - times["direct"])
            streamed.append(times["streaming"] - times["direct"])
    print(
        f"pass-through of a {size / 1e6:.2f} MB answer, {runs} runs (a new sha each, uncached), "
        "time added to a direct request (stand-in's own time taken out):\n"
        f"  gateway p50 {p50_ms(gateway):.1f} ms; bare httpx proxy p50 {p50_ms(proxy):.1f} ms; "
        f"gateway / bare = {p50_ms(gateway) / max(p50_ms(proxy), 1e-6):.2f} "
        f"(target: gateway <= 2 ms)\n"
        f"  the bare proxy streaming the body as it arrives: p50 {p50_ms(streamed):.1f} ms"
    )


if __name__ == "__main__":
    main()
