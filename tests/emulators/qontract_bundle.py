"""App-interface bundles for the qontract-server stand-in: bytes, sha, parsed form and builders.

A bundle is what qontract-validator writes and qontract-server loads: ``{"data": {path:
datafile}, "graphql": {"confs": [...]}, "resources": {...}, "git_commit", "git_commit_timestamp",
"schemas"}``. Its sha is the sha256 of the file's bytes; a bundle built in Python is written the
way the recorded ones are (sorted keys, no spaces, a final newline), so `bundle_sha` of a dict
equals the sha of the file `bundle_bytes` would write.
"""

import copy
import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "qontract_server"
BUNDLE_PATH = DATA_DIR / "bundle.json"
BUNDLE_V2_PATH = DATA_DIR / "bundle-v2.json"
INTROSPECTION_PATH = DATA_DIR / "introspection.json"
GOLDENS_DIR = DATA_DIR / "goldens"

BundleSource = Mapping[str, Any] | bytes | str | Path
"""A bundle as a dict, its file's bytes, or the path of its file."""


def bundle_bytes(bundle: Mapping[str, Any]) -> bytes:
    """The file bytes of `bundle`, written as the recorded bundles are."""
    text = json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode()


def read_bundle(source: BundleSource) -> tuple[bytes, dict[str, Any]]:
    """The file bytes and the parsed content of a bundle given as a dict, bytes or a path."""
    if isinstance(source, bytes):
        return source, json.loads(source)
    if isinstance(source, str | Path):
        raw = Path(source).read_bytes()
        return raw, json.loads(raw)
    raw = bundle_bytes(source)
    return raw, json.loads(raw)


def bundle_sha(source: BundleSource) -> str:
    """The sha256 qontract-server names `source` by (of the file bytes)."""
    return hashlib.sha256(read_bundle(source)[0]).hexdigest()


def load_bundle_dict(path: str | Path = BUNDLE_PATH) -> dict[str, Any]:
    """A bundle file as a dict to modify in a test (defaults to the recorded bundle.json)."""
    loaded: dict[str, Any] = json.loads(Path(path).read_bytes())
    return loaded


def ref(path: str) -> dict[str, str]:
    """A reference to the datafile at `path`, as bundles spell it."""
    return {"$ref": path}


def add_datafile(bundle: dict[str, Any], path: str, schema: str, **fields: Any) -> dict[str, Any]:
    """Add (or replace) the datafile at `path` with `$schema` `schema`; return it."""
    datafile: dict[str, Any] = {"$schema": schema, **fields}
    bundle.setdefault("data", {})[path] = datafile
    return datafile


def with_datafiles(base: Mapping[str, Any], datafiles: Mapping[str, Mapping[str, Any]]) -> Any:
    """A deep copy of `base` with `datafiles` ({path: datafile with its $schema}) added."""
    bundle = copy.deepcopy(dict(base))
    for path, datafile in datafiles.items():
        bundle.setdefault("data", {})[path] = copy.deepcopy(dict(datafile))
    return bundle


def _refs_along(data: Any, attrs: list[str]) -> Iterator[str]:
    """The `$ref` strings reached from `data` along `attrs`, lists flattened at every step."""
    if isinstance(data, list):
        for item in data:
            yield from _refs_along(item, attrs)
        return
    if not attrs:
        if isinstance(data, str):
            yield data
        return
    if isinstance(data, dict) and attrs[0] in data:
        yield from _refs_along(data[attrs[0]], attrs[1:])


@dataclass
class Bundle:
    """A loaded bundle: datafiles by path and by `$schema`, back-reference index, confs."""

    sha: str
    git_commit: str
    git_commit_timestamp: str
    datafiles: dict[str, dict[str, Any]]
    by_schema: dict[str, list[dict[str, Any]]]
    resourcefiles: dict[str, dict[str, Any]]
    confs: list[dict[str, Any]]
    backrefs: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    @classmethod
    def load(cls, source: BundleSource) -> "Bundle":
        """Parse `source` the way qontract-server does (path added to every datafile)."""
        raw, parsed = read_bundle(source)
        datafiles: dict[str, dict[str, Any]] = {}
        by_schema: dict[str, list[dict[str, Any]]] = {}
        for path, content in parsed.get("data", {}).items():
            if not isinstance(content, dict) or "$schema" not in content:
                raise ValueError(f"datafile {path!r} has no $schema")
            datafile = {**content, "path": path}
            datafiles[path] = datafile
            by_schema.setdefault(datafile["$schema"], []).append(datafile)
        resourcefiles = {
            path: {**content, "path": path} for path, content in parsed.get("resources", {}).items()
        }
        graphql = parsed.get("graphql", [])
        confs = graphql.get("confs", []) if isinstance(graphql, dict) else graphql
        bundle = cls(
            sha=hashlib.sha256(raw).hexdigest(),
            git_commit=str(parsed.get("git_commit", "")),
            git_commit_timestamp=str(parsed.get("git_commit_timestamp", "")),
            datafiles=datafiles,
            by_schema=by_schema,
            resourcefiles=resourcefiles,
            confs=confs,
        )
        bundle._index_backrefs()
        return bundle

    def _index_backrefs(self) -> None:
        """Index every synthetic back-reference once: (schema, subAttr) -> ref -> referrers."""
        for conf in self.confs:
            for info in conf.get("fields", []):
                synthetic = info.get("synthetic")
                if not synthetic:
                    continue
                key = (synthetic["schema"], synthetic["subAttr"])
                if key in self.backrefs:
                    continue
                attrs = [*synthetic["subAttr"].split("."), "$ref"]
                index: dict[str, dict[str, dict[str, Any]]] = {}
                for datafile in self.by_schema.get(key[0], []):
                    for target in _refs_along(datafile, attrs):
                        index.setdefault(target, {}).setdefault(datafile["path"], datafile)
                self.backrefs[key] = {t: list(found.values()) for t, found in index.items()}

    def referrers(self, schema: str, sub_attr: str, path: Any) -> list[dict[str, Any]]:
        """Datafiles of `schema` whose `sub_attr` references `path`, in bundle order."""
        if not isinstance(path, str):
            return []
        return self.backrefs.get((schema, sub_attr), {}).get(path, [])

    def resolve_ref(self, reference: Mapping[str, Any]) -> Any:
        """The datafile (or the part of it) a `{"$ref": ...}` points to, or None."""
        target = str(reference["$ref"])
        cut = target.find("$")
        path = target if cut < 0 else target[:cut]
        expr_at = min((i for i in (target.find("$"), target.find("#")) if i >= 0), default=-1)
        expr = "" if expr_at < 0 else target[expr_at:]
        datafile = self.datafiles.get(path)
        if datafile is None:
            return None
        if expr == "":
            return datafile
        pointer = expr[1:] if expr.startswith("#") else expr
        if not pointer.startswith("/"):
            return None
        node: Any = datafile
        for token in pointer[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node


def scaled_bundle(
    base: BundleSource = BUNDLE_PATH,
    *,
    users: int = 3000,
    roles: int = 300,
    usergroups: int = 120,
    pagerduty_instances: int = 2,
    pagerduty_targets: int = 120,
    seed: int = 0,
) -> dict[str, Any]:
    """`base` plus generated datafiles under `/scaled/`: a deterministic large bundle.

    Adds `pagerduty_instances` PagerDuty instances (`scaled-pd-<i>`), `pagerduty_targets`
    targets spread over them in turn (even ones by schedule `PSS<n>`, odd ones by escalation
    policy `PSE<n>`), `usergroups` Slack usergroup permissions in the `coreos` workspace (each with
    0-2 targets; their handles added to its `managedUsergroups`), `roles` roles (1-4 usergroups
    each) and `users` users (1-4 roles each; every other one has a PagerDuty username).
    """
    rng = random.Random(seed)
    bundle = copy.deepcopy(read_bundle(base)[1])
    pd_type, perm_type = "/dependencies/pagerduty-instance-1.yml", "/access/permission-1.yml"
    instances = [f"/scaled/pagerduty/instances/pd{i}.yml" for i in range(pagerduty_instances)]
    for i, path in enumerate(instances):
        token = {"path": f"scaled/creds/pagerduty-{i}", "field": "token"}
        add_datafile(bundle, path, pd_type, name=f"scaled-pd-{i}", labels={}, token=token)
        bundle["data"][path]["description"] = f"scaled PagerDuty instance {i}"
    targets = []
    for i in range(pagerduty_targets):
        path = f"/scaled/pagerduty/targets/t{i}.yml"
        key = {"scheduleID": f"PSS{i:04d}"} if i % 2 == 0 else {"escalationPolicyID": f"PSE{i:04d}"}
        instance = ref(instances[i % len(instances)]) if instances else None
        target_type = "/dependencies/pagerduty-target-1.yml"
        fields = {"name": f"scaled-t{i}", "description": "scaled", "labels": {}, **key}
        add_datafile(bundle, path, target_type, instance=instance, **fields)
        targets.append(path)
    workspace = bundle["data"]["/dependencies/slack/coreos.yml"]
    permissions = []
    for i in range(usergroups):
        path = f"/scaled/permissions/p{i}.yml"
        handle = f"scaled-group-{i}"
        chosen = rng.sample(targets, k=min(len(targets), rng.randint(0, 2)))
        add_datafile(
            bundle,
            path,
            perm_type,
            name=f"scaled-perm-{i}",
            description=f"scaled group {i}",
            service="slack-usergroup",
            handle=handle,
            labels={},
            channels=[f"scaled-chan-{i}"],
            workspace=ref("/dependencies/slack/coreos.yml"),
            **({"pagerduty": [ref(t) for t in chosen]} if chosen else {}),
        )
        workspace.setdefault("managedUsergroups", []).append(handle)
        permissions.append(path)
    role_paths = []
    for i in range(roles):
        path = f"/scaled/roles/r{i}.yml"
        granted = rng.sample(permissions, k=min(len(permissions), rng.randint(1, 4)))
        add_datafile(
            bundle,
            path,
            "/access/role-1.yml",
            name=f"scaled-role-{i}",
            description="scaled",
            labels={},
            permissions=[ref(p) for p in granted],
        )
        role_paths.append(path)
    for i in range(users):
        held = rng.sample(role_paths, k=min(len(role_paths), rng.randint(1, 4)))
        add_datafile(
            bundle,
            f"/scaled/users/u{i}.yml",
            "/access/user-1.yml",
            name=f"Scaled User {i}",
            org_username=f"scaleduser{i}",
            github_username=f"scaleduser{i}-gh",
            labels={},
            roles=[ref(r) for r in held],
            **({"pagerduty_username": f"scaled.user{i}"} if i % 2 == 0 else {}),
        )
    bundle["data"] = dict(sorted(bundle["data"].items()))
    return bundle
