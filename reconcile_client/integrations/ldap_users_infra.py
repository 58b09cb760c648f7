"""The infra repository's part of ldap-users-api: users moved to `deleted_users` in YAML vars
files, edited as text so that comments and layout stay, and checked by parsing the result.

A top-level list whose first entry is a mapping with `name` (or `login_name`) lists users, as
qontract-reconcile reads these files; entries naming a deleted user leave it and the names are
appended to the top-level `deleted_users` list (created when missing). The edited text must
parse to exactly that data, else the file is refused (InfraEditRefused), never written wrong.
"""

import re
from collections.abc import Collection
from typing import Any

import yaml

from reconcile_client.errors import IntegrationError

NAME_FIELDS = ("name", "login_name")
DELETED = "deleted_users"
_ITEM = re.compile(r"(?P<indent>[ ]*)-(?:[ ]|$)")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DEFAULT_INDENT = "  "


class InfraEditRefused(IntegrationError):
    """A vars file whose users cannot be moved safely by a text edit (left to a person)."""


def _user_lists(
    data: dict[Any, Any], usernames: Collection[str]
) -> tuple[dict[Any, Any], dict[str, list[int]], list[str]]:
    """The data after the move, the removed indexes per top-level key, and the names moved."""
    expected = dict(data)
    removed: dict[str, list[int]] = {}
    moved: list[str] = []
    for key, value in data.items():
        if key == DELETED or not isinstance(value, list) or not value:
            continue
        if not isinstance(value[0], dict):
            continue
        field = next((f for f in NAME_FIELDS if f in value[0]), None)
        if field is None:
            continue
        gone = [
            i
            for i, entry in enumerate(value)
            if isinstance(entry, dict) and entry.get(field) in usernames
        ]
        if gone:
            removed[str(key)] = gone
            moved += [str(value[i][field]) for i in gone]
            expected[key] = [entry for i, entry in enumerate(value) if i not in gone]
    if moved:
        expected[DELETED] = [*(data.get(DELETED) or []), *moved]
    return expected, removed, moved


def _block(lines: list[str], key: str) -> tuple[int, int] | None:
    """(key line, end) of the top-level `key:` block, or None when there is none."""
    start = next(
        (i for i, line in enumerate(lines) if re.match(rf"{re.escape(key)}[ ]*:", line)), None
    )
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or lines[end][0] in " #" or _ITEM.match(lines[end])
    ):
        end += 1
    return start, end


def _items(lines: list[str], start: int, end: int) -> list[int]:
    """The first line of each item of the block list between `start` and `end`."""
    firsts = [i for i in range(start + 1, end) if _ITEM.match(lines[i])]
    if not firsts:
        return []
    indent = _indent(lines[firsts[0]])
    return [i for i in firsts if _indent(lines[i]) == indent]


def _indent(line: str) -> str:
    found = _ITEM.match(line)
    return found.group("indent") if found else ""


def _scalar(name: str) -> str:
    """`name` as a YAML scalar: plain when that is safe, else double-quoted."""
    if _PLAIN.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _drop(lines: list[str], key: str, indexes: list[int], where: str) -> tuple[list[str], str]:
    """`lines` without the items `indexes` of `key`'s list; and the list's item indent."""
    found = _block(lines, key)
    firsts = _items(lines, *found) if found else []
    if found is None or not firsts:
        raise InfraEditRefused(f"{where}: the list {key!r} is not a block list the edit can change")
    start, end = found
    bounds = [*firsts, end]
    spans = [(bounds[i], bounds[i + 1]) for i in range(len(firsts))]
    dropped = {line for i in indexes if i < len(spans) for line in range(*spans[i])}
    kept = [line for i, line in enumerate(lines) if i not in dropped]
    if len(indexes) == len(firsts):
        kept[start] = f"{key}: []\n"
    return kept, _indent(lines[firsts[0]])


def _append_deleted(lines: list[str], names: list[str], indent: str) -> list[str]:
    """`lines` with `names` added to the `deleted_users` list (made block style, or created)."""
    found = _block(lines, DELETED)
    entries = [f"{indent}- {_scalar(name)}\n" for name in names]
    if found is None:
        ending = [] if not lines or lines[-1].endswith("\n") else ["\n"]
        return [*lines, *ending, f"{DELETED}:\n", *entries]
    start, end = found
    firsts = _items(lines, start, end)
    if not firsts:
        inline = yaml.safe_load(lines[start]) or {}
        existing = [f"{indent}- {_scalar(str(n))}\n" for n in inline.get(DELETED) or []]
        return [*lines[:start], f"{DELETED}:\n", *existing, *entries, *lines[start + 1 :]]
    last = end
    while last > firsts[-1] + 1 and not lines[last - 1].strip():
        last -= 1
    entries = [f"{_indent(lines[firsts[0]])}- {_scalar(name)}\n" for name in names]
    return [*lines[:last], *entries, *lines[last:]]


def move_users(text: str, usernames: Collection[str], where: str) -> str | None:
    """`text` with the entries of `usernames` moved to `deleted_users`; None when no list in
    it names any of them. InfraEditRefused when the result would not parse to that data."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InfraEditRefused(f"{where}: not YAML: {error}") from None
    if not isinstance(data, dict):
        return None
    expected, removed, moved = _user_lists(data, usernames)
    if not moved:
        return None
    lines = text.splitlines(keepends=True)
    indent = DEFAULT_INDENT
    for key, indexes in removed.items():
        lines, indent = _drop(lines, key, indexes, where)
    edited = "".join(_append_deleted(lines, moved, indent))
    try:
        parsed = yaml.safe_load(edited)
    except yaml.YAMLError:
        parsed = None
    if parsed != expected:
        raise InfraEditRefused(f"{where}: moving {', '.join(moved)} by a text edit went wrong")
    return edited
