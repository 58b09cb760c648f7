"""Headless Chromium driven over the Chrome DevTools Protocol, for tests of browser pages."""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.support.wait import wait_until

REQUIRE_BROWSER_VARIABLE = "QONTRACT_GATEWAY_REQUIRE_BROWSER"
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",
    "--window-size=1280,800",
)


class CdpPage:
    """One page target: CDP commands, and every event the page sent while we waited."""

    def __init__(self, websocket_url: str) -> None:
        self._socket: ClientConnection = connect(
            websocket_url, max_size=None, proxy=None, legacy=True
        )
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, timeout: float = 10.0, **params: Any) -> dict[str, Any]:
        """Run a CDP command and return its result; events that arrive meanwhile are kept."""
        self._last_id += 1
        command_id = self._last_id
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0)))
            if "method" in message:
                self.events.append(message)
            elif message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Evaluate `expression` until it is truthy; return its value or fail at the deadline."""
        value: Any = None

        def truthy() -> bool:
            nonlocal value
            value = self.evaluate(expression)
            return bool(value)

        wait_until(truthy, timeout, expression)
        return value

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element `selector` matches."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport to `path`."""
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot")["data"]))
        return path

    def requested_urls(self) -> list[str]:
        """Every URL the page requested so far: HTTP requests and WebSockets."""
        urls = []
        for event in self.events:
            if event["method"] == "Network.requestWillBeSent":
                urls.append(event["params"]["request"]["url"])
            elif event["method"] == "Network.webSocketCreated":
                urls.append(event["params"]["url"])
        return urls

    def close(self) -> None:
        """Close the DevTools connection."""
        self._socket.close()


class Chromium:
    """A headless Chromium with a fresh profile and DevTools on a loopback port; stop() ends it."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._profile = Path(tempfile.mkdtemp(prefix="qgw-test-chromium-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    def start(self) -> "Chromium":
        """Start the browser on about:blank and wait until DevTools answers."""
        self._process = subprocess.Popen(
            [
                self.binary,
                *HEADLESS_FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        active_port = self._profile / "DevToolsActivePort"
        wait_until(
            lambda: active_port.is_file() and bool(active_port.read_text().strip()),
            20,
            "Chromium's DevToolsActivePort",
        )
        self._port = int(active_port.read_text().splitlines()[0])
        return self

    def open_page(self) -> CdpPage:
        """Connect to the browser's first page with the Page, Runtime and Network domains on."""
        targets = httpx.get(f"http://127.0.0.1:{self._port}/json/list", trust_env=False).json()
        page = CdpPage(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Network"):
            page.send(f"{domain}.enable")
        return page

    def stop(self) -> None:
        """End the browser's process group (only the processes this object started)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=10)
        self._process = None
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
