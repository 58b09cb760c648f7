"""OWNERS files (the Kubernetes convention): parsing, parent inheritance and aliases."""

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from typing_extensions import TypedDict

from gateway.errors import UpstreamError


class OwnersRecord(TypedDict):
    """One OWNERS file: approvers, reviewers and whether parents' owners are ignored."""

    approvers: list[str]
    reviewers: list[str]
    no_parent_owners: bool


def no_owners() -> OwnersRecord:
    """The record of a directory without an OWNERS file."""
    return OwnersRecord(approvers=[], reviewers=[], no_parent_owners=False)


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item is not None]


def _yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise UpstreamError(f"{where} is not valid YAML") from None
    if not isinstance(data, dict):
        raise UpstreamError(f"{where} is not a YAML mapping")
    return data


def parse_owners(text: str | None, where: str) -> OwnersRecord:
    """An OWNERS file's approvers, reviewers and `options.no_parent_owners`; None is no file."""
    if text is None:
        return no_owners()
    data = _yaml(text, where)
    options = data.get("options")
    no_parent = isinstance(options, dict) and options.get("no_parent_owners") is True
    return OwnersRecord(
        approvers=_names(data.get("approvers")),
        reviewers=_names(data.get("reviewers")),
        no_parent_owners=no_parent,
    )


def parse_aliases(text: str | None, where: str) -> dict[str, list[str]]:
    """The `aliases:` map of an OWNERS_ALIASES file; None is no file."""
    if text is None:
        return {}
    aliases = _yaml(text, where).get("aliases")
    if not isinstance(aliases, dict):
        return {}
    return {str(name): _names(members) for name, members in aliases.items()}


def directories(path: str) -> list[str]:
    """The directories whose OWNERS apply to `path`, root first: "/a/b" → ["", "a", "a/b"]."""
    parts = [part for part in path.strip("/").split("/") if part]
    return ["/".join(parts[:depth]) for depth in range(len(parts) + 1)]


def effective_owners(
    files: Sequence[OwnersRecord], aliases: Mapping[str, list[str]]
) -> tuple[list[str], list[str]]:
    """Approvers and reviewers from OWNERS files ordered root first, aliases expanded.

    The nearest file counts first; parents are inherited until a file sets `no_parent_owners`.
    """
    approvers: set[str] = set()
    reviewers: set[str] = set()
    for owners in reversed(files):
        approvers.update(_expand(owners["approvers"], aliases))
        reviewers.update(_expand(owners["reviewers"], aliases))
        if owners["no_parent_owners"]:
            break
    return sorted(approvers), sorted(reviewers)


def _expand(names: list[str], aliases: Mapping[str, list[str]]) -> list[str]:
    expanded: list[str] = []
    for name in names:
        expanded.extend(aliases.get(name, [name]))
    return expanded
