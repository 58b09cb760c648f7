"""Serialised results of cache-backed queries, kept no longer than their data's local copies.

A hit skips parsing, validation and execution: the response is the stored `data` bytes plus
provenance whose ages are advanced to now. Entries are keyed by the caller's scopes and the
exact request body, expire with the earliest local-tier copy they were built from, and are
dropped when this process writes or invalidates any cache entry. When an entry expires (or is
dropped), one request rebuilds it and the others asking for it meanwhile wait for that rebuild.
"""

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 8192

ResultKey = tuple[str, bytes]


@dataclass(frozen=True)
class StoredResult:
    """One serialised result and when it stops being valid."""

    data: bytes
    provenance: list[dict[str, Any]]
    operation: str
    stored_at: float
    expires_at: float
    writes: int
    _around_ages: list[bytes] | None = field(default=None, init=False, repr=False, compare=False)

    def response(self) -> bytes:
        """The response body; every lookup is now a hit, its age as of now."""
        elapsed = time.monotonic() - self.stored_at
        parts = self._around_ages or self._serialise_around_ages()
        pieces = [parts[0]]
        for entry, after in zip(self.provenance, parts[1:], strict=True):
            pieces.append(repr(round(entry["age_seconds"] + elapsed, 3)).encode())
            pieces.append(after)
        return b"".join(pieces)

    def _serialise_around_ages(self) -> list[bytes]:
        """Everything but the ages, serialised on the first hit (most results have none)."""
        parts = [b'{"data":' + self.data + b',"extensions":{"provenance":[']
        for index, entry in enumerate(self.provenance):
            rest = {k: v for k, v in entry.items() if k != "age_seconds"} | {"outcome": "hit"}
            serialised = json.dumps(rest, separators=(",", ":")).encode()
            parts[-1] += (b"," if index else b"") + serialised[:-1] + b',"age_seconds":'
            parts.append(b"}")
        parts[-1] += b"]}}"
        object.__setattr__(self, "_around_ages", parts)
        return parts


class ResultCache:
    """A bounded LRU of StoredResult by (scopes, request body), rebuilt once per expiry."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self.waiting = 0  # requests waiting for a rebuild right now
        self._entries: OrderedDict[ResultKey, StoredResult] = OrderedDict()
        self._rebuilds: dict[ResultKey, asyncio.Event] = {}

    def get(self, scopes: str, body: bytes, writes: int) -> StoredResult | None:
        """The live result for this caller and body, if the cache was not written since."""
        key = (scopes, body)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.writes != writes or entry.expires_at <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    async def get_or_rebuild(
        self, scopes: str, body: bytes, writes: Callable[[], int]
    ) -> tuple[StoredResult | None, bool]:
        """The live result; else, when an entry for this key expired or a rebuild is under way,
        the rebuilt one once it is there (None if the rebuild kept nothing).

        The second value is True when this request is the one to rebuild: it must call `done`.
        """
        key = (scopes, body)
        rebuilt = key in self._entries
        stored = self.get(scopes, body, writes())
        if stored is not None:
            return stored, False
        rebuild = self._rebuilds.get(key)
        if rebuild is None:
            if rebuilt:
                self._rebuilds[key] = asyncio.Event()
            return None, rebuilt
        self.waiting += 1
        try:
            await rebuild.wait()
        finally:
            self.waiting -= 1
        return self.get(scopes, body, writes()), False

    def done(self, scopes: str, body: bytes) -> None:
        """The rebuild of this key is over, whether or not it stored a result."""
        rebuild = self._rebuilds.pop((scopes, body), None)
        if rebuild is not None:
            rebuild.set()

    def put(self, scopes: str, body: bytes, result: StoredResult) -> None:
        """Keep `result` for requests with exactly this body from callers with these scopes."""
        if self.max_entries <= 0 or len(body) > MAX_BODY_BYTES:
            return
        self._entries[(scopes, body)] = result
        self._entries.move_to_end((scopes, body))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self.done(scopes, body)
