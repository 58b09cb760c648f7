"""A Kubernetes API emulator: namespaces, and OpenShift projects and project requests.

In "openshift" mode it serves `project.openshift.io/v1`; in "kubernetes" mode that group is
unknown (404, as a plain API server answers). Refusals are `kind: Status` bodies shaped as the
Kubernetes API documents them (401 Unauthorized, 403 Forbidden, 404 NotFound, 409 AlreadyExists,
422 Invalid, 400 BadRequest for a bad `continue`).
"""

import base64
import binascii
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator

PROJECTS = "/apis/project.openshift.io/v1"
SERVICE_ACCOUNT = "system:serviceaccount:qontract:gateway"
ACTIVE = "Active"
TERMINATING = "Terminating"
RESERVED_PROJECT_NAMES = ("openshift", "kubernetes", "kube")
RESERVED_PROJECT_PREFIXES = ("openshift-", "kubernetes-", "kube-")
"""What a ProjectRequest may not be named (the project API answers 403, as OpenShift's
projectrequest REST storage does); such namespaces are created as plain Namespaces."""
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)

Verb = Literal["list", "get", "create", "delete"]


def status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    """A `kind: Status` failure with `code`, `reason` and `message`."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=code)


@dataclass
class Namespace:
    """A namespace: name, uid, the resource version of its last change and its phase."""

    name: str
    uid: str
    resource_version: int
    created: str
    phase: str = ACTIVE
    requester: str | None = None

    def resource(self, kind: str = "Namespace", api_version: str = "v1") -> dict[str, Any]:
        """The object as the API serves it."""
        metadata: dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "resourceVersion": str(self.resource_version),
            "creationTimestamp": self.created,
            "labels": {"kubernetes.io/metadata.name": self.name},
        }
        if self.requester is not None:
            metadata["annotations"] = {"openshift.io/requester": self.requester}
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": self.phase},
        }


@dataclass
class KubernetesState:
    """What the emulated cluster holds and how it behaves.

    `forbidden` lists the verbs (`list`) or verbs on a resource (`list projects`) the token
    may not use (403, before any routing, as RBAC
    answers even for a group the server does not serve); `linger` keeps deleted namespaces
    `Terminating` until `finish_deletions`, as finalizers do on a real cluster;
    `expire_continues` answers that many of the next `continue` requests 410 Expired.
    """

    mode: Literal["openshift", "kubernetes"] = "openshift"
    token: str = "sha256~cluster-token"
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    linger: bool = False
    expire_continues: int = 0
    _versions: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, phase: str = ACTIVE) -> Namespace:
        """A namespace that exists before any test request."""
        with self._lock:
            namespace = Namespace(name, str(uuid.uuid4()), next(self._versions), _now(), phase)
            self.namespaces[name] = namespace
            return namespace

    def finish_deletions(self) -> None:
        """Remove every `Terminating` namespace (its finalizers are done)."""
        with self._lock:
            for name in [n for n, ns in self.namespaces.items() if ns.phase == TERMINATING]:
                del self.namespaces[name]
                next(self._versions)

    def resource_version(self) -> int:
        """The cluster's current resource version."""
        with self._lock:
            return next(self._versions)

    def create(self, name: str, requester: str | None) -> Namespace | None:
        """The new namespace, or None when `name` is taken (terminating ones included)."""
        with self._lock:
            if name in self.namespaces:
                return None
            namespace = Namespace(
                name, str(uuid.uuid4()), next(self._versions), _now(), requester=requester
            )
            self.namespaces[name] = namespace
            return namespace

    def delete(self, name: str) -> Namespace | None:
        """The namespace now terminating (gone unless `linger`), or None when there is none."""
        with self._lock:
            namespace = self.namespaces.get(name)
            if namespace is None:
                return None
            namespace.phase = TERMINATING
            namespace.resource_version = next(self._versions)
            if not self.linger:
                del self.namespaces[name]
            return namespace

    def page(self, start: str, limit: int) -> tuple[list[Namespace], str | None, int]:
        """Namespaces by name after `start`, at most `limit` (0: all), the name to continue
        after (None when none is left) and how many remain."""
        with self._lock:
            names = sorted(name for name in self.namespaces if name > start)
            taken = names if limit <= 0 else names[:limit]
            remaining = len(names) - len(taken)
            last = taken[-1] if taken and remaining else None
            return [self.namespaces[name] for name in taken], last, remaining


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubernetesEmulator(UpstreamEmulator):
    """The namespace and project endpoints of one cluster's API server."""

    def __init__(self, state: KubernetesState | None = None) -> None:
        self.state = state or KubernetesState()
        super().__init__(
            [
                Route("/api/v1/namespaces", self._list_namespaces, methods=["GET"]),
                Route("/api/v1/namespaces", self._create_namespace, methods=["POST"]),
                Route("/api/v1/namespaces/{name}", self._get_namespace, methods=["GET"]),
                Route("/api/v1/namespaces/{name}", self._delete_namespace, methods=["DELETE"]),
                Route(PROJECTS, self._discover_projects, methods=["GET"]),
                Route(f"{PROJECTS}/projects", self._list_projects, methods=["GET"]),
                Route(f"{PROJECTS}/projects/{{name}}", self._get_project, methods=["GET"]),
                Route(f"{PROJECTS}/projects/{{name}}", self._delete_project, methods=["DELETE"]),
                Route(f"{PROJECTS}/projectrequests", self._request_project, methods=["POST"]),
                Route("/{rest:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    # the checks every request passes first

    def _refusal(self, request: Request, verb: Verb, kind: str, name: str = "") -> Response | None:
        """401 for a wrong token, 403 for a forbidden verb, 404 for projects on plain Kubernetes."""
        if request.headers.get("authorization") != f"Bearer {self.state.token}":
            return status(401, "Unauthorized", "Unauthorized")
        group = "project.openshift.io" if kind.startswith("project") else ""
        if verb in self.state.forbidden or f"{verb} {kind}" in self.state.forbidden:
            subject = f'{kind} "{name}"' if name else kind
            details: dict[str, Any] = {"kind": kind}
            if group:
                details["group"] = group
            if name:
                details["name"] = name
            return status(
                403,
                "Forbidden",
                f'{subject} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
                f'"{kind}" in API group "{group}" at the cluster scope',
                details,
            )
        if group and self.state.mode == "kubernetes":
            return _not_served()
        return None

    # namespaces

    async def _list_namespaces(self, request: Request) -> Response:
        return self._list(request, "namespaces", "NamespaceList", "v1", "Namespace")

    async def _get_namespace(self, request: Request) -> Response:
        return self._get(request, "namespaces", "", "Namespace", "v1")

    async def _create_namespace(self, request: Request) -> Response:
        refused = self._refusal(request, "create", "namespaces")
        if refused is not None:
            return refused
        name = _requested_name(await request.body())
        invalid = _invalid("Namespace", name)
        if invalid is not None:
            return invalid
        namespace = self.state.create(name, None)
        if namespace is None:
            return _exists(self.state.namespaces.get(name), "namespaces", "", name)
        return JSONResponse(namespace.resource(), status_code=201)

    async def _delete_namespace(self, request: Request) -> Response:
        deleted = self._delete(request, "namespaces", "")
        return deleted if isinstance(deleted, Response) else JSONResponse(deleted.resource())

    # projects

    async def _discover_projects(self, request: Request) -> Response:
        """The group's APIResourceList: open to every authenticated client (system:discovery)."""
        if request.headers.get("authorization") != f"Bearer {self.state.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if self.state.mode == "kubernetes":
            return _not_served()
        resources = [
            {
                "name": "projects",
                "singularName": "",
                "namespaced": False,
                "kind": "Project",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            },
            {
                "name": "projectrequests",
                "singularName": "",
                "namespaced": False,
                "kind": "ProjectRequest",
                "verbs": ["create", "list"],
            },
        ]
        return JSONResponse(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "project.openshift.io/v1",
                "resources": resources,
            }
        )

    async def _list_projects(self, request: Request) -> Response:
        return self._list(request, "projects", "ProjectList", "project.openshift.io/v1", "Project")

    async def _get_project(self, request: Request) -> Response:
        return self._get(request, "projects", "project.openshift.io", "Project", "v1")

    async def _delete_project(self, request: Request) -> Response:
        deleted = self._delete(request, "projects", "project.openshift.io")
        if isinstance(deleted, Response):
            return deleted
        return JSONResponse(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": deleted.name,
                    "group": "project.openshift.io",
                    "kind": "projects",
                },
            }
        )

    async def _request_project(self, request: Request) -> Response:
        refused = self._refusal(request, "create", "projectrequests")
        if refused is not None:
            return refused
        name = _requested_name(await request.body())
        reserved = next((p for p in RESERVED_PROJECT_PREFIXES if name.startswith(p)), None)
        if reserved is not None or name in RESERVED_PROJECT_NAMES:
            why = (
                f"starting with {reserved!r}" if reserved else f"with the name {name!r}"
            ).replace("'", '"')
            return status(
                403,
                "Forbidden",
                f'project.project.openshift.io "{name}" is forbidden: cannot request a '
                f"project {why}",
                {"name": name, "group": "project.openshift.io", "kind": "project"},
            )
        invalid = _invalid("ProjectRequest", name)
        if invalid is not None:
            return invalid
        namespace = self.state.create(name, SERVICE_ACCOUNT)
        if namespace is None:
            return _exists(self.state.namespaces.get(name), "project", "project.openshift.io", name)
        return JSONResponse(
            namespace.resource("Project", "project.openshift.io/v1"), status_code=201
        )

    # shared

    def _get(
        self, request: Request, resource: str, group: str, kind: str, version: str
    ) -> Response:
        name = request.path_params["name"]
        refused = self._refusal(request, "get", resource, name)
        if refused is not None:
            return refused
        namespace = self.state.namespaces.get(name)
        if namespace is None:
            return _not_found(resource, name, group)
        return JSONResponse(namespace.resource(kind, f"{group}/{version}".lstrip("/")))

    def _delete(self, request: Request, resource: str, group: str) -> Namespace | Response:
        name = request.path_params["name"]
        refused = self._refusal(request, "delete", resource, name)
        if refused is not None:
            return refused
        namespace = self.state.delete(name)
        return namespace if namespace is not None else _not_found(resource, name, group)

    def _list(
        self, request: Request, resource: str, list_kind: str, api_version: str, kind: str
    ) -> Response:
        refused = self._refusal(request, "list", resource)
        if refused is not None:
            return refused
        try:
            limit = int(request.query_params.get("limit", "0"))
            start = _decode_continue(request.query_params.get("continue", ""))
        except ValueError:
            return status(400, "BadRequest", "continue key is not valid: illegal base64 data")
        if start and self.state.expire_continues > 0:
            self.state.expire_continues -= 1
            return status(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter.",
            )
        items, last, remaining = self.state.page(start, limit)
        metadata: dict[str, Any] = {"resourceVersion": str(self.state.resource_version())}
        if last is not None:
            metadata["continue"] = _encode_continue(last)
            metadata["remainingItemCount"] = remaining
        served = []
        for item in items:
            resource_body = item.resource(kind, api_version)
            del resource_body["kind"], resource_body["apiVersion"]
            served.append(resource_body)
        return JSONResponse(
            {"kind": list_kind, "apiVersion": api_version, "metadata": metadata, "items": served}
        )

    async def _unknown(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.state.token}":
            return status(401, "Unauthorized", "Unauthorized")
        return _not_served()


def _requested_name(body: bytes) -> str:
    try:
        data = json.loads(body)
        name = data["metadata"]["name"]
    except (ValueError, KeyError, TypeError):
        return ""
    return name if isinstance(name, str) else ""


def _invalid(kind: str, name: str) -> Response | None:
    if name and len(name) <= 63 and _LABEL.fullmatch(name):
        return None
    problem = (
        "Required value: name or generateName is required"
        if not name
        else f'Invalid value: "{name}": {_LABEL_MESSAGE}'
    )
    return status(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: metadata.name: {problem}',
        {
            "name": name,
            "kind": kind,
            "causes": [
                {
                    "reason": "FieldValueRequired" if not name else "FieldValueInvalid",
                    "message": problem,
                    "field": "metadata.name",
                }
            ],
        },
    )


def _not_found(kind: str, name: str, group: str = "") -> JSONResponse:
    subject = f"{kind}.{group}" if group else kind
    details = {"name": name, "kind": kind, **({"group": group} if group else {})}
    return status(404, "NotFound", f'{subject} "{name}" not found', details)


def _exists(existing: Namespace | None, kind: str, group: str, name: str) -> JSONResponse:
    subject = f"{kind}.{group}" if group else kind
    prefix = "object is being deleted: " if existing and existing.phase == TERMINATING else ""
    details = {"name": name, "kind": kind, **({"group": group} if group else {})}
    return status(409, "AlreadyExists", f'{prefix}{subject} "{name}" already exists', details)


def _not_served() -> JSONResponse:
    return status(404, "NotFound", "the server could not find the requested resource", {})


def _encode_continue(last: str) -> str:
    return base64.urlsafe_b64encode(
        json.dumps({"v": "meta.k8s.io/v1", "start": last}).encode()
    ).decode()


def _decode_continue(token: str) -> str:
    if not token:
        return ""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        start = data["start"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValueError("bad continue") from None
    if not isinstance(start, str):
        raise ValueError("bad continue")
    return start
