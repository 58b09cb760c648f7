"""gzip and deflate request bodies: served when they inflate within the limit, 413 beyond it."""

import gzip
import json
import os
import resource
import struct
import time
import zlib
from collections.abc import Callable

import httpx
import pytest

from gateway.auth import mint_token
from tests.security.test_http_bodies import SECRET, assert_refused, post
from tests.support.server_log import server_errors
from tests.support.server_thread import ServerThread

QUERY = json.dumps({"query": "{ gateway_info_v1 { version redis_mode } }"}).encode()
BOMB_BLOCK = 16 * 1024 * 1024
BOMB_BLOCKS = 640  # 10 GiB inflated, about 10 MB on the wire
MiB = 1024 * 1024


def gzip_bomb() -> bytes:
    """A valid gzip stream of 10 GiB of zeros, built from one compressed 16 MiB block repeated."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(BOMB_BLOCK)
    deflater.compress(zeros)
    deflater.flush(zlib.Z_FULL_FLUSH)  # after a full flush, each block compresses the same
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(BOMB_BLOCKS):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (BOMB_BLOCK * BOMB_BLOCKS) & 0xFFFFFFFF)
    return header + block * BOMB_BLOCKS + deflater.flush() + trailer


def deflate_raw(data: bytes) -> bytes:
    """`data` as a raw deflate stream (no zlib header), as some clients send `deflate`."""
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


def served(gateway_factory: Callable[..., ServerThread], **limits: int) -> ServerThread:
    """A gateway with auth on and these `limits.*`."""
    return gateway_factory(auth={"secret": SECRET}, limits=limits)


def ask(server: ServerThread, body: bytes, encoding: str) -> httpx.Response:
    token = mint_token(SECRET, "tester", ["read"], 1)
    return post(server, body, **{"content-encoding": encoding, "authorization": f"Bearer {token}"})


def peak_rss_bytes() -> int:
    """This process's peak resident memory (the gateway under test runs in a thread of it)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", deflate_raw)],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_a_compressed_body_is_served_as_the_plain_one(
    gateway_factory: Callable[..., ServerThread],
    encoding: str,
    compress: Callable[[bytes], bytes],
) -> None:
    server = served(gateway_factory)
    with server_errors() as errors:
        response = ask(server, compress(QUERY), encoding)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["gateway_info_v1"]["redis_mode"] == "external"
    assert response.json() == ask(server, QUERY, "identity").json()
    assert errors == []


def test_a_body_larger_than_the_limit_once_inflated_is_a_413_naming_the_setting(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    server = served(gateway_factory, max_body_bytes=64 * 1024)
    padded = json.dumps({"query": "{ gateway_info_v1 { version } }" + " " * 100_000}).encode()
    compressed = gzip.compress(padded)
    assert len(compressed) < 2048
    error = assert_refused(ask(server, compressed, "gzip"), 413)
    assert error["extensions"]["limit"] == "limits.max_body_bytes"
    assert "limits.max_body_bytes (65536 bytes)" in error["message"]


def test_a_compressed_body_over_the_compressed_limit_is_a_413_before_it_is_read(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    server = served(gateway_factory, max_compressed_body_bytes=4096)
    incompressible = gzip.compress(os.urandom(8192))
    error = assert_refused(ask(server, incompressible, "gzip"), 413)
    assert error["extensions"]["limit"] == "limits.max_compressed_body_bytes"


@pytest.mark.timeout(300)
def test_a_ten_gigabyte_gzip_bomb_is_a_413_in_seconds_with_bounded_memory(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 11 * MiB
    server = served(gateway_factory, max_compressed_body_bytes=16 * MiB)  # let it reach zlib
    peak_before = peak_rss_bytes()
    started = time.monotonic()
    error = assert_refused(ask(server, bomb, "gzip"), 413)
    elapsed = time.monotonic() - started
    assert error["extensions"]["limit"] == "limits.max_body_bytes"
    assert elapsed < 10, f"{elapsed:.1f} s"  # inflating it all would take over a minute here
    assert peak_rss_bytes() - peak_before < 256 * MiB


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"this is not gzip"),
        ("gzip", gzip.compress(QUERY)[:-6]),
        ("gzip", gzip.compress(QUERY) + b"trailing"),
        ("gzip", b""),
        ("deflate", zlib.compress(QUERY)[:10]),
        ("deflate", b"\xff" * 32),
    ],
    ids=["garbage", "truncated", "trailing-data", "empty", "deflate-truncated", "deflate-garbage"],
)
def test_a_corrupt_compressed_body_is_a_400(
    gateway_factory: Callable[..., ServerThread], encoding: str, body: bytes
) -> None:
    server = served(gateway_factory)
    with server_errors() as errors:
        error = assert_refused(ask(server, body, encoding), 400)
    assert encoding in error["message"]
    assert errors == []
