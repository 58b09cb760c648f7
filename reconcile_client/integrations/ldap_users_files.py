"""The YAML files ldap-users-api changes besides deleting datafiles, edited as text so that
comments and layout stay, and checked by parsing the result.

- Infra vars files (`move_users`): a top-level list whose first entry is a mapping with `name`
  (or `login_name`) lists users, as qontract-reconcile reads these files; entries naming a
  deleted user leave it and the names are appended to `deleted_users` (created when missing).
- App-interface datafiles that reference a user (`remove_references`): a GABI instance's
  `users` and `signoffManagers`, an AWS account's `resetPasswords` (by `user`), and the `users`
  of each slot of a schedule's `schedule` list.

Entries are removed from block lists (top-level ones, and a schedule slot's). The edited text
must parse to exactly the expected data, else the file is refused (FileEditRefused), never
written wrong.
"""

import copy
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import PurePosixPath
from typing import Any

import yaml

from reconcile_client.errors import IntegrationError

NAME_FIELDS = ("name", "login_name")
DELETED = "deleted_users"
_ITEM = re.compile(r"(?P<indent>[ ]*)-(?:[ ]|$)")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DEFAULT_INDENT = "  "


REFERENCING_LISTS: Mapping[str, Callable[[Any], Any]] = {
    "users": lambda entry: entry,
    "signoffManagers": lambda entry: entry,
    "resetPasswords": lambda entry: entry.get("user") if isinstance(entry, dict) else None,
}
"""Top-level lists of app-interface datafiles whose entries reference a user (GABI instances,
AWS accounts), and where in an entry the `$ref` is."""


class FileEditRefused(IntegrationError):
    """A file whose entries cannot be removed safely by a text edit (left to a person)."""


Chooser = Callable[[str, list[Any]], list[int]]
"""The indexes of a top-level list's entries to remove, given its key and entries."""


def _user_entries(usernames: Collection[str]) -> Chooser:
    """Entries of user lists (first entry a mapping with a name field) naming `usernames`."""

    def chosen(key: str, entries: list[Any]) -> list[int]:
        if key == DELETED or not isinstance(entries[0], dict):
            return []
        field = next((f for f in NAME_FIELDS if f in entries[0]), None)
        if field is None:
            return []
        return [
            i
            for i, entry in enumerate(entries)
            if isinstance(entry, dict) and entry.get(field) in usernames
        ]

    return chosen


def _references_to(username: str) -> Chooser:
    """Entries of the REFERENCING_LISTS whose `$ref` names the user's file (`<name>.yml`)."""

    def chosen(key: str, entries: list[Any]) -> list[int]:
        reference = REFERENCING_LISTS.get(key)
        if reference is None:
            return []
        return [i for i, entry in enumerate(entries) if _names(reference(entry), username)]

    return chosen


def _names(reference: Any, username: str) -> bool:
    """Whether `reference` is a `{$ref: .../<username>.yml}`."""
    if not isinstance(reference, dict) or not isinstance(reference.get("$ref"), str):
        return False
    return PurePosixPath(reference["$ref"]).stem == username


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
        raise FileEditRefused(f"{where}: the list {key!r} is not a block list the edit can change")
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


def _removals(data: dict[Any, Any], chosen: Chooser) -> dict[str, list[int]]:
    """The indexes to remove, per top-level list key."""
    found = {}
    for key, value in data.items():
        if isinstance(key, str) and isinstance(value, list) and value:
            indexes = chosen(key, value)
            if indexes:
                found[key] = indexes
    return found


def _edit(
    text: str, where: str, chosen: Chooser, deleted: Callable[[list[Any]], list[str]] | None
) -> str | None:
    """`text` without the chosen entries (and, with `deleted`, the names it gives for them
    appended to `deleted_users`); None when nothing is chosen."""
    data = _load(text, where)
    if not isinstance(data, dict):
        return None
    removals = _removals(data, chosen)
    if not removals:
        return None
    expected = dict(data)
    removed: list[Any] = []
    for key, indexes in removals.items():
        removed += [data[key][i] for i in indexes]
        expected[key] = [entry for i, entry in enumerate(data[key]) if i not in indexes]
    lines = text.splitlines(keepends=True)
    indent = DEFAULT_INDENT
    for key, indexes in removals.items():
        lines, indent = _drop(lines, key, indexes, where)
    if deleted is not None:
        names = deleted(removed)
        expected[DELETED] = [*(data.get(DELETED) or []), *names]
        lines = _append_deleted(lines, names, indent)
    return _verified("".join(lines), expected, where, len(removed))


def _load(text: str, where: str) -> Any:
    """The data of `text`; FileEditRefused when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FileEditRefused(f"{where}: not YAML: {error}") from None


def _verified(edited: str, expected: Any, where: str, removed: int) -> str:
    """`edited`, once it parses to exactly `expected`; else FileEditRefused."""
    try:
        parsed = yaml.safe_load(edited)
    except yaml.YAMLError:
        parsed = None
    if parsed != expected:
        raise FileEditRefused(f"{where}: removing {removed} entries by a text edit went wrong")
    return edited


def move_users(text: str, usernames: Collection[str], where: str) -> str | None:
    """The infra vars file `text` with the entries of `usernames` moved to `deleted_users`;
    None when no user list names any of them. FileEditRefused when the edit is not safe."""

    def names(removed: list[Any]) -> list[str]:
        return [str(next(entry[f] for f in NAME_FIELDS if f in entry)) for entry in removed]

    return _edit(text, where, _user_entries(usernames), names)


def remove_references(text: str, username: str, where: str) -> str | None:
    """The app-interface datafile `text` without the entries of its referencing lists that
    name `username`'s file; None when there are none. FileEditRefused when not safe."""
    return _edit(text, where, _references_to(username), None)


def _slot_users(lines: list[str], first: int, end: int, where: str) -> tuple[int, int, str]:
    """(key line, end, text before `users`) of the `users:` list in the schedule slot whose
    lines are `first`..`end`."""
    column = len(_indent(lines[first])) + 2
    for k in range(first, end):
        found = re.match(r"(?P<lead>[ ]*(?:- )?)users[ ]*:", lines[k])
        if found and len(found.group("lead")) == column:
            last = k + 1
            while last < end and _continues(lines[last], column):
                last += 1
            return k, last, found.group("lead")
    raise FileEditRefused(f"{where}: a schedule slot's users are not a block list")


def _continues(line: str, column: int) -> bool:
    """Whether `line` still belongs to a nested block whose key is at `column`."""
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    if not stripped.strip() or stripped.startswith("#"):
        return True
    return indent > column or (indent == column and bool(_ITEM.match(line)))


def remove_from_schedule(text: str, username: str, where: str) -> str | None:
    """The schedule datafile `text` without the entries of its slots' `users` that name
    `username`'s file; None when there are none. FileEditRefused when not safe."""
    data = _load(text, where)
    slots = data.get("schedule") if isinstance(data, dict) else None
    if not isinstance(slots, list):
        return None
    changes = {
        i: [j for j, user in enumerate(slot["users"]) if _names(user, username)]
        for i, slot in enumerate(slots)
        if isinstance(slot, dict) and isinstance(slot.get("users"), list)
    }
    changes = {i: indexes for i, indexes in changes.items() if indexes}
    if not changes:
        return None
    expected = copy.deepcopy(data)
    for i, indexes in changes.items():
        users = slots[i]["users"]
        expected["schedule"][i]["users"] = [u for j, u in enumerate(users) if j not in indexes]
    lines = text.splitlines(keepends=True)
    for i in sorted(changes, reverse=True):
        found = _block(lines, "schedule")
        firsts = _items(lines, *found) if found else []
        if found is None or len(firsts) != len(slots):
            raise FileEditRefused(f"{where}: the schedule is not a block list the edit can change")
        slot_end = firsts[i + 1] if i + 1 < len(firsts) else found[1]
        key, end, lead = _slot_users(lines, firsts[i], slot_end, where)
        entries = _items(lines, key, end)
        if not entries:
            raise FileEditRefused(f"{where}: a schedule slot's users are not a block list")
        bounds = [*entries, end]
        dropped = {
            n for j in changes[i] if j < len(entries) for n in range(bounds[j], bounds[j + 1])
        }
        kept = [line for n, line in enumerate(lines) if n not in dropped]
        if len(changes[i]) == len(entries):
            kept[key] = f"{lead}users: []\n"
        lines = kept
    removed = sum(len(indexes) for indexes in changes.values())
    return _verified("".join(lines), expected, where, removed)
