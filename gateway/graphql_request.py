"""One reading of a GraphQL HTTP request (JSON body or GET parameters), checked before execution.

Every refusal is a cross_web `HTTPException` with a 4xx status; the view answers it with the
GraphQL-shaped error body. Nothing here is parsed twice, and a compressed body is inflated only
up to `limits.max_body_bytes`.
"""

import json
import zlib
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from strawberry.http import GraphQLRequestData

IDENTITY_ENCODINGS = frozenset({"", "identity"})
COMPRESSED_ENCODINGS = frozenset({"gzip", "deflate"})
INFLATE_CHUNK_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    """413: the body, inflated when it was sent compressed, is over `limits.max_body_bytes`."""

    setting = "limits.max_body_bytes"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {self.setting} ({max_bytes} bytes)")


def body_encoding(headers: Mapping[str, str]) -> str:
    """The body's Content-Encoding (`identity`, `gzip` or `deflate`); 415 for anything else."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in IDENTITY_ENCODINGS | COMPRESSED_ENCODINGS:
        raise HTTPException(
            415, "Content-Encoding is not supported: send the body as identity, gzip or deflate"
        )
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(415, "Unsupported content type: send application/json")
    return encoding if encoding in COMPRESSED_ENCODINGS else "identity"


def inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """`body` decoded from `encoding`, refused (413) as soon as it inflates past `max_bytes`.

    zlib hands out at most INFLATE_CHUNK_BYTES per call, so a decompression bomb costs the
    limit plus one chunk of memory and time, never its inflated size.
    """
    if encoding == "identity":
        if len(body) > max_bytes:
            raise BodyTooLarge(max_bytes)
        return body
    inflater = zlib.decompressobj(_window_bits(encoding, body))
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while not inflater.eof:
            part = inflater.decompress(pending, INFLATE_CHUNK_BYTES)
            pending = inflater.unconsumed_tail
            if not part and not pending:  # all input used, the stream's end not reached
                break
            size += len(part)
            if size > max_bytes:
                raise BodyTooLarge(max_bytes)
            parts.append(part)
    except zlib.error:
        raise HTTPException(400, f"The request body is not valid {encoding} data") from None
    if not inflater.eof or inflater.unused_data:
        raise HTTPException(400, f"The request body is not one complete {encoding} stream")
    return b"".join(parts)


def _window_bits(encoding: str, body: bytes) -> int:
    """gzip; deflate as RFC 9110 means it (zlib-wrapped) or raw, as some clients send it."""
    if encoding == "gzip":
        return 16 + zlib.MAX_WBITS
    zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def read_body(body: bytes, max_depth: int) -> GraphQLRequestData:
    """The request in a JSON POST body: UTF-8, an object with the standard fields."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "The request body is not valid UTF-8") from None
    data = _decode_json(text, "request body", max_depth)
    if not isinstance(data, dict):
        raise HTTPException(400, "The request body must be a JSON object (batching is off)")
    return _request_data(data)


def read_params(params: Mapping[str, object], max_depth: int) -> GraphQLRequestData:
    """The request in GET parameters; `variables` and `extensions` are JSON-encoded."""
    data: dict[str, Any] = dict(params)
    for field in ("variables", "extensions"):
        value = data.pop(field, None)
        if isinstance(value, str) and value:
            data[field] = _decode_json(value, f"`{field}` parameter", max_depth)
    return _request_data(data)


def _decode_json(text: str, what: str, max_depth: int) -> object:
    try:
        value = json.loads(text)
    except RecursionError:
        raise HTTPException(400, f"The {what} is nested deeper than {max_depth} levels") from None
    except ValueError:  # JSONDecodeError, and integers longer than Python converts
        raise HTTPException(400, f"Unable to parse the {what} as JSON") from None
    if _depth_exceeds(value, max_depth):
        raise HTTPException(400, f"The {what} is nested deeper than {max_depth} levels")
    return value


def _depth_exceeds(value: object, max_depth: int) -> bool:
    """True when `value` nests lists or objects more than `max_depth` levels (no recursion)."""
    level: list[object] = [value]
    for _ in range(max_depth):
        below: list[object] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        if not below:
            return False
        level = below
    return True


def _request_data(data: dict[str, Any]) -> GraphQLRequestData:
    query = data.get("query")
    if not isinstance(query, str | None):
        raise HTTPException(400, "The request's `query` must be a string")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise HTTPException(400, "The request's `operationName` must be a string or null")
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise HTTPException(400, "The request's `variables` must be an object or null")
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise HTTPException(400, "The request's `extensions` must be an object or null")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )
