"""Jira types and root fields: `jira_issues_v1`, `jira_projects_v1`."""

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import strawberry
from strawberry.types import Info

from gateway.cache import Cached
from gateway.errors import BadUserInput, GatewayError
from resolvers.jira.api import JiraIssue as IssueRecord
from resolvers.jira.api import JiraProject as ProjectRecord
from resolvers.jira.source import JiraSource
from schema.cached_subtrees import cached_item
from schema.context import RequestContext
from schema.entities import only_item
from schema.inputs import bounded
from schema.loaders import items, keyed_loader, unwrap

T = TypeVar("T")
R = TypeVar("R")


@strawberry.type(name="JiraUser_v1")
class JiraUser:
    """An assignee; `email` only when the instance shows it to the gateway's token."""

    account_id: str | None
    display_name: str
    email: str | None


@strawberry.federation.type(name="JiraIssue_v1", keys=["instance key"])
class JiraIssue:
    """An issue with the fields integrations read."""

    instance: str = strawberry.field(description="The Jira instance (account) name")
    key: str
    summary: str
    status: str
    assignee: JiraUser | None
    labels: list[str]

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], instance: str, key: str
    ) -> "JiraIssue":
        """The entity `instance key`, through the request's issue loader."""
        return only_item(await jira_issues(info, instance, keys=[key]))


@strawberry.federation.type(name="JiraProject_v1", keys=["instance key"])
class JiraProject:
    """A project."""

    instance: str = strawberry.field(description="The Jira instance (account) name")
    key: str
    id: str
    name: str

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], instance: str, key: str
    ) -> "JiraProject":
        """The entity `instance key`, through the request's project loader."""
        return only_item(await jira_projects(info, instance, keys=[key]))


def _issue(instance: str, issue: IssueRecord) -> JiraIssue:
    assignee = issue.assignee
    return JiraIssue(
        instance=instance,
        key=issue.key,
        summary=issue.summary,
        status=issue.status,
        assignee=JiraUser(
            account_id=assignee.account_id, display_name=assignee.display_name, email=assignee.email
        )
        if assignee
        else None,
        labels=issue.labels,
    )


def _project(instance: str, project: ProjectRecord) -> JiraProject:
    return JiraProject(instance=instance, key=project.key, id=project.id, name=project.name)


async def _each(
    info: Info[RequestContext, None],
    name: str,
    fetch: Callable[[list[str]], Awaitable[Mapping[str, Cached[T] | GatewayError]]],
    keys: list[str],
    make: Callable[[str, T], R],
) -> list[R | None]:
    """Items for `keys` through this request's loader `name`; an error stays its item's."""
    loaded = await keyed_loader(info, name, fetch).load_many(keys)
    return items(info, zip(keys, (one.result for one in loaded), strict=True), make)


async def jira_issues(
    info: Info[RequestContext, None],
    instance: str,
    keys: list[str] | None = None,
    jql: str | None = None,
) -> list[JiraIssue | None]:
    """Resolve `jira_issues_v1`: exactly one of `keys` (a missing key is a null item with
    NOT_FOUND) or `jql` (the matching issues in Jira's order)."""
    if (keys is None) == (jql is None):
        raise BadUserInput("jira_issues_v1 takes exactly one of `keys` or `jql`")
    source = info.context.sources.get(JiraSource, instance)
    if jql is not None:
        found = await source.issues_by_jql(jql)
        issues = unwrap(info, found)
        return cached_item(found, jql, lambda: [_issue(instance, r) for r in issues])
    assert keys is not None
    name = f"jira/{instance}/issues"
    return await _each(info, name, source.issues_by_key, keys, lambda _, r: _issue(instance, r))


async def jira_projects(
    info: Info[RequestContext, None], instance: str, keys: list[str] | None = None
) -> list[JiraProject | None]:
    """Resolve `jira_projects_v1`: the projects with `keys` (a missing one is a null item with
    NOT_FOUND), or every project the gateway's token can see."""
    source = info.context.sources.get(JiraSource, instance)
    if keys is None:
        found = await source.all_projects()
        projects = unwrap(info, found)
        return cached_item(found, None, lambda: [_project(instance, p) for p in projects])
    name = f"jira/{instance}/projects"
    return await _each(info, name, source.projects_by_key, keys, lambda _, p: _project(instance, p))


@strawberry.type
class JiraQuery:
    """Jira root fields (joined into Query by the system registry)."""

    jira_issues_v1: list[JiraIssue | None] = strawberry.field(
        resolver=jira_issues,
        extensions=bounded("read"),
        description="Issues of Jira `instance` by `keys` or by `jql` (exactly one), cached",
    )

    jira_projects_v1: list[JiraProject | None] = strawberry.field(
        resolver=jira_projects,
        extensions=bounded("read"),
        description="Projects of Jira `instance` by `keys`, or all of them, cached",
    )
