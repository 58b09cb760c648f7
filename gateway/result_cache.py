"""Serialised results of cache-backed queries, kept no longer than their data's local copies.

A hit skips parsing, validation and execution: the response is the stored `data` bytes plus
provenance whose ages are advanced to now. Entries are keyed by the caller's scopes and the
exact request body, expire with the earliest local-tier copy they were built from, and are
dropped when this process writes or invalidates any cache entry.
"""

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 8192


@dataclass(frozen=True)
class StoredResult:
    """One serialised result and when it stops being valid."""

    data: bytes
    provenance: list[dict[str, Any]]
    operation: str
    stored_at: float
    expires_at: float
    writes: int

    def response(self) -> bytes:
        """The response body; every lookup is now a hit, its age as of now."""
        elapsed = time.monotonic() - self.stored_at
        provenance = [
            {**entry, "outcome": "hit", "age_seconds": round(entry["age_seconds"] + elapsed, 3)}
            for entry in self.provenance
        ]
        extensions = json.dumps({"provenance": provenance}, separators=(",", ":")).encode()
        return b'{"data":' + self.data + b',"extensions":' + extensions + b"}"


class ResultCache:
    """A bounded LRU of StoredResult by (scopes, request body)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], StoredResult] = OrderedDict()

    def get(self, scopes: str, body: bytes, writes: int) -> StoredResult | None:
        """The live result for this caller and body, if the cache was not written since."""
        entry = self._entries.get((scopes, body))
        if entry is None:
            return None
        if entry.writes != writes or entry.expires_at <= time.monotonic():
            del self._entries[(scopes, body)]
            return None
        self._entries.move_to_end((scopes, body))
        return entry

    def put(self, scopes: str, body: bytes, result: StoredResult) -> None:
        """Keep `result` for requests with exactly this body from callers with these scopes."""
        if self.max_entries <= 0 or len(body) > MAX_BODY_BYTES:
            return
        self._entries[(scopes, body)] = result
        self._entries.move_to_end((scopes, body))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
