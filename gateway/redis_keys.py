"""Every Redis key and channel the gateway uses, named once, hash-tagged for Redis Cluster.

A key is `<namespace>:<area>:{<tag>}:<part>...`. Redis Cluster hashes only the text inside the
first braces, so keys that one Lua script, MULTI or transaction touches together share a tag
and land in one slot; different tags spread over the cluster. Every part that comes from a
caller (or from upstream data) goes through `part`: escaped, so it can neither open a hash tag
nor inject a glob, and bounded, so no caller string makes a key long.

- cached value and its single-flight lease, one tag per system, account and data type:
  `<ns>:cache:{<system>/<account>/<type>}:v2:value:<id>` and `...:v2:lock:<id>`;
- rate bucket and its pause (one script reads both): `<ns>:ratelimit:{<sys>/<acct>/<tier>}:tat`
  and `...:pause`;
- task record, heartbeat and change channel: `<ns>:tasks:{<task id>}:record|heartbeat|changes`;
  indexes `<ns>:tasks:{index}:running|pending`; quota `<ns>:tasks:{caller-<digest>}:inputs`;
- resource leases, all in one tag (a run takes them together): `<ns>:leases:{resources}:<name>`;
- event stream and its dead letters: `<ns>:events:{stream}` and `<ns>:events:{stream}:dead-letter`;
- Celery broker keys, one tag (BRPOP over queues): `<ns>:celery:{broker}:<queue>`...;
- federation schema: `<ns>:qontract-server:{schema}:sha:<sha>|fingerprint:<hex>|last`;
- federation answers and their single-flight lease, one tag per answer:
  `<ns>:qontract-server:{answer-<sha256 of sha and request>}:value|lease`;
- notifier markers (a message posted at most once): `<ns>:notifier:{<message digest>}:sent`.
"""

import functools
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

MAX_PART_CHARS = 120
CACHE_FORMAT = "v2"
_SAFE = "-._~/:@+=,"
_HASHED = "%h"  # quote() writes "%" only before two upper-case hex digits: no clash


@functools.lru_cache(maxsize=8192)
def part(text: str) -> str:
    """`text` as a key part: percent-escaped (no braces, blanks or glob characters), bounded.

    Parts longer than `MAX_PART_CHARS` once escaped are replaced by `%h` and their sha256, so
    two different texts never share a part and no caller string makes a key long. Recent
    parts are remembered (bounded), as the same few names recur on every request.
    """
    escaped = quote(text, safe=_SAFE)
    if len(escaped) <= MAX_PART_CHARS:
        return escaped
    return _HASHED + hashlib.sha256(text.encode()).hexdigest()


def key(namespace: str, area: str, tag: str, *parts: str) -> str:
    """The key `<namespace>:<area>:{<tag>}:<part>...`; every piece is passed through `part`."""
    return ":".join((part(namespace), area, "{" + tag + "}", *(part(p) for p in parts)))


def tag(*pieces: str) -> str:
    """A hash tag built from `pieces` (escaped, joined with `/`)."""
    return "/".join(part(piece) for piece in pieces)


def glob_escape(text: str) -> str:
    """`text` with Redis glob characters escaped, for a SCAN MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


@dataclass(frozen=True)
class CacheKeys:
    """Value and single-flight lease keys of the shared cache (one tag per system/account/type)."""

    namespace: str

    def value(self, tag_text: str, ident: str) -> str:
        """String: the JSON-encoded cached record (format `CACHE_FORMAT`)."""
        return key(self.namespace, "cache", tag_text, CACHE_FORMAT, "value", ident)

    def lock(self, tag_text: str, ident: str) -> str:
        """String: the token of the replica fetching the value (an owned lease)."""
        return key(self.namespace, "cache", tag_text, CACHE_FORMAT, "lock", ident)

    def values_under(self, tag_start: str, *, complete: bool) -> tuple[str, str]:
        """(name prefix, SCAN pattern) of every value key whose tag is `tag_start` (`complete`)
        or starts with `tag_start` + `/` (a whole system or account)."""
        if complete:
            start = self.value(tag_start, "")
            return start, glob_escape(start) + "*"
        start = ":".join((part(self.namespace), "cache", "{" + tag_start + "/"))
        return start, glob_escape(start) + f"*}}:{CACHE_FORMAT}:value:*"


@dataclass(frozen=True)
class RateKeys:
    """The token bucket state and its pause marker; both in one tag (one script reads both)."""

    namespace: str

    def tat(self, tag_text: str) -> str:
        """String: the bucket's theoretical arrival time (ms)."""
        return key(self.namespace, "ratelimit", tag_text, "tat")

    def pause(self, tag_text: str) -> str:
        """String: present while an upstream 429 pauses the bucket."""
        return key(self.namespace, "ratelimit", tag_text, "pause")


@dataclass(frozen=True)
class TaskKeys:
    """Every key and channel the task engine uses, under one namespace.

    A task's record, heartbeat and change channel share the task id as hash tag, so the scripts
    that touch them together work on Redis Cluster. All resource leases share one tag, so a run
    takes every lease it needs in one script.
    """

    namespace: str

    def record(self, task_id: str) -> str:
        """Hash: the task record fields and its JSON payload; expires after the record TTL."""
        return key(self.namespace, "tasks", part(task_id), "record")

    def heartbeat(self, task_id: str) -> str:
        """String: the token of the run holding the task; expires unless renewed."""
        return key(self.namespace, "tasks", part(task_id), "heartbeat")

    def changes(self, task_id: str) -> str:
        """Pub/sub channel: the new status, published on every status change."""
        return key(self.namespace, "tasks", part(task_id), "changes")

    def running(self) -> str:
        """Sorted set: ids of running tasks (score: start time), swept for lost workers."""
        return key(self.namespace, "tasks", "index", "running")

    def pending(self) -> str:
        """Sorted set of pending task ids by when they were last dispatched."""
        return key(self.namespace, "tasks", "index", "pending")

    def caller_inputs(self, caller_digest: str) -> str:
        """Sorted set: `task_id:bytes` of a caller's submissions by time, for its input quota."""
        return key(self.namespace, "tasks", "caller-" + part(caller_digest), "inputs")

    def lease(self, resource: str) -> str:
        """String: the id of the real run holding `resource` (e.g. `slack-usergroups:coreos`)."""
        return key(self.namespace, "leases", "resources", resource)

    def celery_prefix(self) -> str:
        """The prefix of every Celery broker key (queues, unacked messages): one slot."""
        return f"{part(self.namespace)}:celery:{{broker}}:"


@dataclass(frozen=True)
class StreamKeys:
    """The event stream of one deployment namespace and its dead-letter stream (one slot)."""

    stream: str
    dead_letter: str


def stream_keys(namespace: str) -> StreamKeys:
    """The stream keys of `namespace`; both share a hash tag so MULTI can touch both."""
    return StreamKeys(
        stream=key(namespace, "events", "stream"),
        dead_letter=key(namespace, "events", "stream", "dead-letter"),
    )


@dataclass(frozen=True)
class NotifierKeys:
    """The notifier's at-most-once markers, one per message (its own tag: one key per call)."""

    namespace: str

    def sent(self, digest: str) -> str:
        """String: `sending` while a message is being posted, then `sent`; expires."""
        return key(self.namespace, "notifier", part(digest), "sent")


@dataclass(frozen=True)
class SchemaKeys:
    """The federated upstream's schema shared by replicas: by bundle sha, by fingerprint, last."""

    namespace: str
    upstream: str

    def by_sha(self, sha: str) -> str:
        """String: the schema fingerprint of bundle `sha`."""
        return key(self.namespace, self.upstream, "schema", "sha", sha)

    def by_fingerprint(self, fingerprint: str) -> str:
        """String: the introspection JSON whose sha256 is `fingerprint`."""
        return key(self.namespace, self.upstream, "schema", "fingerprint", fingerprint)

    def last(self) -> str:
        """String: the fingerprint of the last schema any replica learned."""
        return key(self.namespace, self.upstream, "schema", "last")


@dataclass(frozen=True)
class AnswerKeys:
    """The federated upstream's stored answers, one tag per answer (its value and lease)."""

    namespace: str
    upstream: str

    def value(self, ident: str) -> str:
        """String: the stored answer `ident` (a sha256 hex of bundle sha and request)."""
        return key(self.namespace, self.upstream, f"answer-{part(ident)}", "value")

    def lease(self, ident: str) -> str:
        """String: the token of the replica fetching answer `ident` (an owned lease)."""
        return key(self.namespace, self.upstream, f"answer-{part(ident)}", "lease")


_PART = r"(?:%h[0-9a-f]{64}|(?:[A-Za-z0-9\-._~/:@+=,]|%[0-9A-F]{2})+)"
_TAGGED = r"[^{{}}]+:{area}:\{{{tag}\}}"
PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(text)
    for text in (
        _TAGGED.format(area="cache", tag=rf"{_PART}/{_PART}/{_PART}")
        + rf":{CACHE_FORMAT}:(?:value|lock):{_PART}",
        _TAGGED.format(area="ratelimit", tag=rf"{_PART}/{_PART}/{_PART}") + ":(?:tat|pause)",
        _TAGGED.format(area="tasks", tag=_PART) + ":(?:record|heartbeat|changes)",
        _TAGGED.format(area="tasks", tag="index") + ":(?:running|pending)",
        _TAGGED.format(area="tasks", tag=rf"caller-{_PART}") + ":inputs",
        _TAGGED.format(area="leases", tag="resources") + rf":{_PART}",
        _TAGGED.format(area="events", tag="stream") + "(?::dead-letter)?",
        _TAGGED.format(area="celery", tag="broker") + r"[^{}]*",
        _TAGGED.format(area=_PART, tag="schema") + rf":(?:(?:sha|fingerprint):{_PART}|last)",
        _TAGGED.format(area=_PART, tag=rf"answer-{_PART}") + ":(?:value|lease)",
        _TAGGED.format(area="notifier", tag=_PART) + ":sent",
    )
)


def known(name: str) -> bool:
    """True when `name` is a key or channel this module names (for tests and audits)."""
    return any(pattern.fullmatch(name) for pattern in PATTERNS)
