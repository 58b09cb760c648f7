"""A private redis-server on a unix socket, for the embedded default (no Redis configured)."""

import contextlib
import ctypes
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child when the gateway dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """`redis-server` from PATH on a unix socket in a private directory; stop() removes it."""

    def __init__(self, binary: str = "redis-server", start_timeout: float = 10.0) -> None:
        self.binary = binary
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        """Where the server listens."""
        if self._dir is None:
            raise RuntimeError("embedded Redis is not running")
        return self._dir / "redis.sock"

    @property
    def url(self) -> str:
        """The unix:// URL of the running server."""
        return f"unix://{self.socket_path}?db=0"

    def start(self) -> "EmbeddedRedis":
        """Start the server (no persistence, no TCP port) and wait until it answers."""
        binary = shutil.which(self.binary)
        if binary is None:
            raise RuntimeError(
                "no Redis configured and redis-server is not on PATH: install redis-server "
                "or set QONTRACT_GATEWAY_REDIS__URL"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="qontract-gateway-redis-"))
        self._dir.chmod(0o700)
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + self.start_timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("embedded redis-server did not start")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=0.5)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server, wait for it, and remove its directory."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
