"""Typed async client of the Kubernetes / OpenShift API (no caching): namespaces and projects."""

import re
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import BadUserInput, GatewayError, UpstreamError, shown
from gateway.ratelimit import BucketSpec
from gateway.source import IdSyntax
from gateway.upstream import Params, UpstreamClient, UpstreamPath

SYSTEM = "openshift"
TIER = "api"
OPENSHIFT = BucketSpec.within(3_000, 60, burst=50)
"""Default budget per cluster: the API server's priority and fairness has no published rate;
this only keeps a reconcile from crowding out the cluster's own controllers."""

NAMESPACE = IdSyntax(
    "Kubernetes namespace name",
    re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"),
    63,
    "an RFC 1123 label (lower-case letters, digits and '-', starting and ending with a "
    "letter or digit)",
)
PAGE_SIZE = 500
MAX_PAGES = 1_000
MAX_CONTINUE_CHARS = 4_096
MAX_MESSAGE_CHARS = 300
RESERVED_PROJECT_NAMES = frozenset({"openshift", "kubernetes", "kube"})
RESERVED_PROJECT_PREFIXES = ("openshift-", "kubernetes-", "kube-")
"""Names OpenShift's project request API refuses (403 "cannot request a project starting with
..."): such namespaces are created and deleted as plain namespaces."""

PROJECT_GROUP = "/apis/project.openshift.io/v1"
PROJECTS = "/apis/project.openshift.io/v1/projects"
PROJECT = "/apis/project.openshift.io/v1/projects/{}"
PROJECT_REQUESTS = "/apis/project.openshift.io/v1/projectrequests"
NAMESPACES = "/api/v1/namespaces"
NAMESPACE_PATH = "/api/v1/namespaces/{}"
_ANSWERS = frozenset(range(400, 500))
"""Every 4xx comes back as an answer, so its `Status` body is read (429 is retried before)."""


def headers(token: str) -> dict[str, str]:
    """The request headers for a service account token."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


class KubeStatus(BaseModel):
    """A `kind: Status` failure body: why the API server refused a request."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["Status"]
    status: str = ""
    message: str = ""
    reason: str = ""
    code: int = 0


class NamespaceMetadata(BaseModel):
    """The part of a namespace's metadata the gateway reads."""

    model_config = ConfigDict(extra="ignore")

    name: str


class NamespaceStatus(BaseModel):
    """A namespace's lifecycle phase: `Active` or `Terminating`."""

    model_config = ConfigDict(extra="ignore")

    phase: str = "Active"


class KubeNamespace(BaseModel):
    """A namespace as listed: its name and phase."""

    model_config = ConfigDict(extra="ignore")

    metadata: NamespaceMetadata
    status: NamespaceStatus = Field(default_factory=NamespaceStatus)


class ListMetadata(BaseModel):
    """A list's `continue` token (empty on the last page)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    continue_: str = Field("", alias="continue", max_length=MAX_CONTINUE_CHARS)


class NamespaceList(BaseModel):
    """One page of `GET /api/v1/namespaces`."""

    model_config = ConfigDict(extra="ignore")

    metadata: ListMetadata = Field(default_factory=ListMetadata)
    items: list[KubeNamespace] = Field(default_factory=list)


def status_error(account: str, operation: str, response: httpx.Response) -> GatewayError:
    """The gateway error for a refused request, from its `Status` body when it has one.

    401 and 403 are UPSTREAM_ERROR (the cluster refused the *gateway's* token; FORBIDDEN is
    kept for a caller lacking a scope), with `extensions.reason` (`Unauthorized`,
    `Forbidden`); 422 `Invalid` is BAD_USER_INPUT; any other refusal is UPSTREAM_ERROR.
    """
    status = _status(response)
    reason = status.reason if status is not None else ""
    message = status.message if status is not None else ""
    detail = f": {shown(message, MAX_MESSAGE_CHARS)}" if message else ""
    text = f"openshift cluster {account!r}: {operation} answered HTTP {response.status_code}"
    extensions: dict[str, Any] = {"status": response.status_code, "upstream": SYSTEM}
    if reason:
        extensions["reason"] = reason[:64]
    if response.status_code == 422:
        return BadUserInput(f"{text} {reason or 'Invalid'}{detail}", **extensions)
    return UpstreamError(f"{text} {reason}{detail}".rstrip(), **extensions)


def _status(response: httpx.Response) -> KubeStatus | None:
    try:
        return KubeStatus.model_validate_json(response.content)
    except ValidationError:
        return None


def uses_project_api(name: str, openshift: bool) -> bool:
    """Whether `name` is created and deleted as an OpenShift project: on OpenShift, unless the
    project API reserves it (`openshift-*`, `kube-*`, `kubernetes-*` and those three names)."""
    reserved = name in RESERVED_PROJECT_NAMES or name.startswith(RESERVED_PROJECT_PREFIXES)
    return openshift and not reserved


class KubernetesApi:
    """One cluster's namespace endpoints; names are checked before they reach a path."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    @property
    def account(self) -> str:
        """The cluster's configured name."""
        return self.client.account.name

    async def _request(
        self,
        operation: str,
        method: str,
        path: UpstreamPath,
        *,
        params: Params | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """The response, when 2xx or a status in `accept`; else the mapped Status error."""
        response = await self.client.request(
            operation,
            method,
            path,
            params=params,
            json=json,
            idempotent=idempotent,
            answers=_ANSWERS,
        )
        if response.status_code >= 400 and response.status_code not in accept:
            raise status_error(self.account, operation, response)
        return response

    async def has_projects(self) -> bool:
        """Whether the API serves OpenShift projects: 200 yes, 404 plain Kubernetes.

        A 403 says only that the token may not list projects (RBAC answers before routing, on
        plain Kubernetes too), so the group's discovery document, readable by every
        authenticated client, decides: 404 plain Kubernetes, anything else OpenShift.
        """
        probe = await self._request(
            "projects.probe",
            "GET",
            UpstreamPath(PROJECTS),
            params={"limit": "1"},
            accept=frozenset({403, 404}),
        )
        if probe.status_code != 403:
            return probe.status_code != 404
        discovery = await self._request(
            "projects.discover", "GET", UpstreamPath(PROJECT_GROUP), accept=frozenset({403, 404})
        )
        return discovery.status_code != 404

    async def namespaces(self) -> list[KubeNamespace]:
        """Every namespace, walked page by page with `limit` and `continue`; a walk whose
        `continue` token expired (410) starts over once, as the API asks."""
        try:
            return await self._walk_namespaces()
        except UpstreamError as error:
            if error.extensions.get("status") != 410:
                raise
        return await self._walk_namespaces()

    async def _walk_namespaces(self) -> list[KubeNamespace]:
        found: list[KubeNamespace] = []
        token = ""
        for _ in range(MAX_PAGES):
            params: dict[str, str] = {"limit": str(PAGE_SIZE)}
            if token:
                params["continue"] = token
            response = await self._request(
                "namespaces.list", "GET", UpstreamPath(NAMESPACES), params=params
            )
            try:
                page = NamespaceList.model_validate_json(response.content)
            except ValidationError:
                raise UpstreamError(
                    f"openshift cluster {self.account!r}: namespaces.list answered no "
                    "NamespaceList",
                    upstream=SYSTEM,
                ) from None
            found.extend(page.items)
            token = page.metadata.continue_
            if not token:
                return found
        raise UpstreamError(
            f"openshift cluster {self.account!r}: more than {MAX_PAGES * PAGE_SIZE} namespaces",
            upstream=SYSTEM,
        )

    async def create_namespace(self, name: str, openshift: bool) -> None:
        """Create `name`: a ProjectRequest on OpenShift (not a reserved name), else a Namespace;
        409 AlreadyExists is success."""
        body: Mapping[str, Any]
        NAMESPACE.check(name)
        if uses_project_api(name, openshift):
            path = UpstreamPath(PROJECT_REQUESTS)
            body = {"apiVersion": "project.openshift.io/v1", "kind": "ProjectRequest"}
        else:
            path = UpstreamPath(NAMESPACES)
            body = {"apiVersion": "v1", "kind": "Namespace"}
        await self._request(
            "namespaces.create",
            "POST",
            path,
            json={**body, "metadata": {"name": name}},
            accept=frozenset({409}),
        )

    async def delete_namespace(self, name: str, openshift: bool) -> None:
        """Delete `name` (its project on OpenShift, not a reserved name); 404 is success."""
        NAMESPACE.check(name)
        template = PROJECT if uses_project_api(name, openshift) else NAMESPACE_PATH
        await self._request(
            "namespaces.delete",
            "DELETE",
            UpstreamPath(template, name),
            idempotent=True,
            accept=frozenset({404}),
        )
