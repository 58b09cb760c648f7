"""Splicing live values into the remote answer's text, without decoding the whole answer.

A remote answer is megabytes of compact JSON of which the gateway reads only the reserved keys
it injected. Every parent of a live field holds `"_qgw_typename":` (a text that cannot occur
inside a JSON string, where every quote is escaped, nor elsewhere: callers may not use the
prefix); the reserved keys after it are decoded one by one, and that run of keys is later
replaced by the live values. Anything unexpected (an error, whitespace, a reserved run followed
by the caller's own keys, a type whose live fields sit at two paths) makes `scan` answer None,
and the caller decodes the whole answer instead.
"""

import json
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.federation.plan import PREFIX, TYPENAME, Plan

_DECODER = json.JSONDecoder()
_MARK = f'"{TYPENAME}":'
_RESERVED = f'"{PREFIX}'
_DATA = '{"data":{'
_EXTENSIONS = ',"extensions":'
_ERRORS = ',"errors":'


@dataclass
class RawParent:
    """One parent object in the answer: its reserved keys and where they are in the text."""

    keys: dict[str, Any]
    start: int
    end: int
    first: bool
    """Nothing of the caller's precedes the reserved keys (the object starts with them)."""


@dataclass
class RawAnswer:
    """An answer's `data` text, its `extensions` (decoded: they are small), and its parents."""

    text: str
    data_start: int
    data_end: int
    extensions: dict[str, Any] | None
    parents: list[RawParent]

    def spliced(self, values: list[list[tuple[str, Any]]]) -> bytes:
        """The `data` text with each parent's reserved keys replaced by its (key, value) pairs."""
        pieces: list[str] = []
        at = self.data_start
        for parent, pairs in zip(self.parents, values, strict=True):
            pieces.append(self.text[at : parent.start])
            written = [f'"{key}":{_json(value)}' for key, value in pairs]
            if written:
                pieces.append(("" if parent.first else ",") + ",".join(written))
            at = parent.end
        pieces.append(self.text[at : self.data_end])
        return "".join(pieces).encode()


def _json(value: Any) -> str:
    """`value` as compact JSON; `json` for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def splices_raw(plan: Plan) -> bool:
    """Whether this plan's answers can be spliced as text: no gateway root field, no directive
    on a live field, and every type's live fields at one path (a parent's type tells its path)."""
    if plan.gateway_fields:
        return False
    paths: dict[str, tuple[str, ...]] = {}
    for occurrence in plan.occurrences:
        if occurrence.node.directives:
            return False
        if paths.setdefault(occurrence.live.type_name, occurrence.path) != occurrence.path:
            return False
    return True


def scan(body: bytes) -> RawAnswer | None:
    """The answer's parents and extensions, or None when it is not a plain compact answer."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    end = len(text.rstrip())
    if not text.startswith(_DATA) or end < 2 or text[end - 1] != "}" or _ERRORS in text:
        return None  # (a caller's field named `errors` also decodes the whole answer)
    extensions: dict[str, Any] | None = None
    data_end = end - 1
    split = text.rfind(_EXTENSIONS, 0, end)
    if split != -1:
        try:
            tail = orjson.loads(text[split + len(_EXTENSIONS) : end - 1])
        except orjson.JSONDecodeError:
            tail = None
        if isinstance(tail, dict):
            extensions, data_end = tail, split
    parents = _parents(text, len(_DATA) - 1, data_end)
    if parents is None:
        return None
    return RawAnswer(text, len(_DATA) - 1, data_end, extensions, parents)


def _parents(text: str, start: int, end: int) -> list[RawParent] | None:
    parents: list[RawParent] = []
    at = text.find(_MARK, start, end)
    while at != -1:
        before = text[at - 1]
        if before not in ",{":
            return None
        keys: dict[str, Any] = {}
        position = at
        while True:
            colon = text.find('":', position, end)
            if colon == -1:
                return None
            name = text[position + 1 : colon]
            try:
                value, position = _DECODER.raw_decode(text, colon + 2)
            except ValueError:
                return None
            keys[name] = value
            following = text[position : position + 1]
            if following == "}":
                break
            if following != "," or not text.startswith(_RESERVED, position + 1):
                return None
            position += 1
        parents.append(RawParent(keys, at - 1 if before == "," else at, position, before == "{"))
        at = text.find(_MARK, position, end)
    return parents
