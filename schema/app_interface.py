"""app-interface types extended with live fields: which field, its keys, and what serves it.

Each live field names the key selection it needs from its app-interface parent and the
gateway list field that serves it in batches (one per system, account and kind per request);
results map back by key. `FederatedExecution` runs requests that read qontract-server.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from inspect import isawaitable
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql import execute as graphql_execute
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from gateway.errors import Forbidden, GatewayError, NotFound
from gateway.federation.merge import MergedSchema
from gateway.federation.reverse import (
    ReverseJoins,
    RunningDocuments,
    decode_json_scalars,
    remote_selection,
)
from gateway.federation.service import Federation, RemoteSource
from gateway.federation.table import Call, ExtensionTable, Kind, LiveField, Lookup, ReverseJoin
from gateway.metrics import GatewayMetrics
from gateway.registry import AnySystem
from gateway.settings import QueryLimits
from schema import GatewaySchema, build_schema
from schema.cached_subtrees import CachedSubtreeExecution
from schema.context import RequestContext
from schema.document_cache import DocumentCache

APP_INTERFACE_SCOPE = "app-interface:read"
DEFAULT_OWNERS_REF = "master"


def owners_ref(entry: str) -> tuple[str, str]:
    """(repo_url, ref) of an `ownersFromRepos` entry `https://host/org/repo[:ref]`."""
    if entry.count(":") == 2:
        url, ref = entry.rsplit(":", 1)
        return url, ref
    return entry, DEFAULT_OWNERS_REF


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _oncall(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
    instance = _text((keys.get("instance") or {}).get("name"))
    if instance is None:
        return None
    if schedule := _text(keys.get("scheduleID")):
        return Lookup(("pagerduty", instance, "schedules"), (schedule,))
    if policy := _text(keys.get("escalationPolicyID")):
        return Lookup(("pagerduty", instance, "escalation_policies"), (policy,))
    return None


def _repo_owners(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
    entries = keys.get("ownersFromRepos")
    if not isinstance(entries, list):
        return None
    return Lookup(("github", "vcs", "owners"), tuple(e for e in entries if isinstance(e, str)))


def _workspace(kind: str, argument: str, strip: str = "") -> Any:
    def lookup(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
        name = _text(keys.get("name"))
        if name is None:
            return None
        asked = args.get(argument)
        wanted = None if asked is None else tuple(a.removeprefix(strip) for a in asked)
        return Lookup(("slack", name, kind), wanted)

    return lookup


def _slack_user(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
    login = _text(keys.get("org_username"))
    return None if login is None else Lookup(("slack", args["workspace"], "users"), (login,))


def _org_members(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
    name = _text(keys.get("name"))
    return None if name is None else Lookup(("github", name, "members"), None)


def _board(keys: Mapping[str, Any]) -> tuple[str, str] | None:
    server = _text((keys.get("server") or {}).get("name"))
    project = _text(keys.get("name"))
    return None if server is None or project is None else (server, project)


def _board_project(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
    board = _board(keys)
    return None if board is None else Lookup(("jira", board[0], "projects"), (board[1],))


def _board_issues(keys: Mapping[str, Any], args: Mapping[str, Any]) -> Lookup | None:
    board = _board(keys)
    if board is None:
        return None
    jql = f"project = {board[1]}" + (f" AND {args['jql']}" if args.get("jql") else "")
    return Lookup(("jira", board[0], "issues"), (jql,))


def _jql_calls(account: str, keys: tuple[str, ...] | None) -> Sequence[Call]:
    return [Call({"instance": account, "jql": jql}, (jql,)) for jql in keys or ()]


def _list_call(account_arg: str, keys_arg: str | None) -> Any:
    def calls(account: str, keys: tuple[str, ...] | None) -> Sequence[Call]:
        args: dict[str, Any] = {account_arg: account}
        if keys_arg is not None:
            args[keys_arg] = None if keys is None else list(keys)
        return [Call(args, keys)]

    return calls


def _owners_calls(account: str, keys: tuple[str, ...] | None) -> Sequence[Call]:
    calls = []
    for key in keys or ():
        url, ref = owners_ref(key)
        calls.append(Call({"repo_url": url, "path": "/", "ref": ref}, (key,)))
    return calls


TABLE = ExtensionTable(
    fields=(
        LiveField(
            "PagerDutyTarget_v1",
            "oncall_users",
            '"""Live: the users on call now in this target\'s schedule (or, without one, its '
            'escalation policy) on its PagerDuty instance; cached, batched per instance"""\n'
            "oncall_users: [PagerDutyUser_v1!]",
            "instance { name } scheduleID escalationPolicyID",
            _oncall,
        ),
        LiveField(
            "PermissionSlackUsergroup_v1",
            "repo_owners",
            '"""Live: approvers and reviewers of the root OWNERS of each `ownersFromRepos` '
            'entry (`url[:ref]`, ref default master), in order; cached"""\n'
            "repo_owners: [VcsOwners_v1!]",
            "ownersFromRepos",
            _repo_owners,
            many=True,
        ),
        LiveField(
            "SlackWorkspace_v1",
            "live_usergroups",
            '"""Live: this workspace\'s usergroups (all, or those with `handles`), cached"""\n'
            "live_usergroups(handles: [String!]): [SlackUsergroup_v1!]",
            "name",
            _workspace("usergroups", "handles"),
            many=True,
        ),
        LiveField(
            "SlackWorkspace_v1",
            "live_users",
            '"""Live: this workspace\'s active users (all, or by `org_usernames`), cached"""\n'
            "live_users(org_usernames: [String!]): [SlackUser_v1!]",
            "name",
            _workspace("users", "org_usernames"),
            many=True,
        ),
        LiveField(
            "SlackWorkspace_v1",
            "live_channels",
            '"""Live: this workspace\'s unarchived channels (all, or by `names`), cached"""\n'
            "live_channels(names: [String!]): [SlackChannel_v1!]",
            "name",
            _workspace("channels", "names", "#"),
            many=True,
        ),
        LiveField(
            "User_v1",
            "slack_user",
            '"""Live: this user\'s active Slack user in `workspace` (by org username), cached; '
            'null with NOT_FOUND when there is none"""\n'
            "slack_user(workspace: String!): SlackUser_v1",
            "org_username",
            _slack_user,
        ),
        LiveField(
            "GithubOrg_v1",
            "live_members",
            '"""Live: the members of this GitHub org (read with the gateway account of the '
            'same name), cached"""\n'
            "live_members: [GitHubUser_v1!]",
            "name",
            _org_members,
            many=True,
        ),
        LiveField(
            "JiraBoard_v1",
            "live_project",
            '"""Live: the Jira project of this board (its `name` is the project key) on the '
            'gateway account named like its `server`, cached"""\n'
            "live_project: JiraProject_v1",
            "name server { name }",
            _board_project,
        ),
        LiveField(
            "JiraBoard_v1",
            "live_issues",
            '"""Live: the issues of this board\'s project, with `jql` added as `AND <jql>` '
            '(parenthesise an OR), in Jira\'s order; cached"""\n'
            "live_issues(jql: String): [JiraIssue_v1!]",
            "name server { name }",
            _board_issues,
        ),
    ),
    kinds={
        ("pagerduty", "schedules"): Kind(
            "pagerduty_schedules_v1", _list_call("instance", "ids"), None, "users", "schedule"
        ),
        ("pagerduty", "escalation_policies"): Kind(
            "pagerduty_escalation_policies_v1",
            _list_call("instance", "ids"),
            None,
            "users",
            "escalation policy",
        ),
        ("github", "owners"): Kind(
            "vcs_owners_v1", _owners_calls, None, None, "repository", per_key=True
        ),
        ("github", "members"): Kind(
            "github_org_members_v1", _list_call("org", None), "login", None, "member"
        ),
        ("jira", "projects"): Kind(
            "jira_projects_v1", _list_call("instance", "keys"), None, None, "project"
        ),
        ("jira", "issues"): Kind("jira_issues_v1", _jql_calls, None, None, "jql", per_key=True),
        ("slack", "usergroups"): Kind(
            "slack_usergroups_v1", _list_call("workspace", "handles"), "handle", None, "usergroup"
        ),
        ("slack", "users"): Kind(
            "slack_users_v1", _list_call("workspace", "org_usernames"), "org_username", None, "user"
        ),
        ("slack", "channels"): Kind(
            "slack_channels_v1", _list_call("workspace", "names"), "name", None, "channel"
        ),
    },
    reverse=(
        ReverseJoin(
            "PagerDutyUser_v1",
            "app_interface_user",
            '"""app-interface: the user whose `pagerduty_username` is this username (same bundle '
            'sha as the request); null with NOT_FOUND when there is none"""\n'
            "app_interface_user: User_v1",
            "username",
            "users_v1",
            "pagerduty_username",
        ),
        ReverseJoin(
            "GitHubUser_v1",
            "app_interface_user",
            '"""app-interface: the user whose `github_username` is this login (same bundle '
            'sha as the request); null with NOT_FOUND when there is none"""\n'
            "app_interface_user: User_v1",
            "login",
            "users_v1",
            "github_username",
        ),
    ),
)
"""Every live field on an app-interface type, and the gateway list fields serving them."""


async def request_sha(context: RequestContext, federation: Federation) -> str:
    """The one bundle sha of this request: pinned, else the latest, resolved once."""

    async def resolve() -> str:
        pinned = context.request.scope.get("state", {}).get("qontract_sha")
        return str(pinned) if pinned else await federation.source.latest_sha()

    task: asyncio.Future[str] = context.per_request(
        "qontract_server/sha", lambda: asyncio.ensure_future(resolve())
    )
    return await task


RUNNING = "qontract_server/running"
"""The per-request `RunningDocuments` of a federated execution."""


def _root_key(info: GraphQLResolveInfo[RequestContext]) -> str:
    path = info.path
    while path.prev is not None:
        path = path.prev
    return str(path.key)


def _reverse_resolver(join: ReverseJoin, federations: list[Federation]) -> Any:
    """The resolver of a reverse join: one remote fetch per request (see ReverseJoins)."""

    async def resolve(parent: Any, info: GraphQLResolveInfo[RequestContext]) -> Any:
        context = info.context
        if not context.identity.has_scope(APP_INTERFACE_SCOPE):
            raise Forbidden(f"reading app-interface needs the '{APP_INTERFACE_SCOPE}' scope")
        federation = federations[0]

        async def fetch(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            sha = await request_sha(context, federation)
            answer = await federation.source.answer(sha, {"query": query, "variables": variables})
            body = json.loads(answer.body) if answer.status == 200 else {}
            data = body.get("data") if isinstance(body, dict) else None
            return data if isinstance(data, dict) else {}

        running = context.per_request(RUNNING, RunningDocuments)
        joins = context.per_request("qontract_server/reverse", lambda: ReverseJoins(running, fetch))
        key = str(getattr(parent, join.parent_key))
        group = (join, remote_selection(info.field_nodes, info.fragments))
        value = await joins.load(
            group,
            key,
            _root_key(info),
            lambda item: decode_json_scalars(item, info.return_type, info.schema),
        )
        if value is None:
            raise NotFound(f"no app-interface user with {join.remote_key} {key!r}")
        return value

    return resolve


def build_federation(
    limits: QueryLimits,
    metrics: GatewayMetrics,
    systems: Sequence[AnySystem],
    source: RemoteSource,
    poll_interval: float,
) -> tuple[Federation, GatewaySchema]:
    """The federation over `source` and the federated copy of the gateway schema it serves.

    The copy's graphql-core schema is replaced by each merged schema the federation builds.
    """
    federations: list[Federation] = []
    federated = build_schema(
        limits, metrics, systems, extra=[lambda: FederatedExecution(federations[0])]
    )

    def adopt(merged: GraphQLSchema) -> None:
        setattr(merged, "_strawberry_schema", federated)  # noqa: B010 - what Strawberry sets

    def install(merged: GraphQLSchema) -> None:
        federated._schema = merged

    resolvers = {
        (join.type_name, join.field_name): _reverse_resolver(join, federations)
        for join in TABLE.reverse
    }
    federation = Federation(
        source, federated._schema, TABLE, poll_interval, install, resolvers, adopt
    )
    federations.append(federation)
    return federation, federated


def limit_rules(schema: GatewaySchema) -> list[Any]:
    """The validation rules the schema's limit extensions add (depth, aliases, introspection)."""
    rules: list[Any] = []
    for factory in schema.extensions:
        extension = factory() if callable(factory) else factory
        if isinstance(extension, DocumentCache):
            rules.extend(extension.validation_rules)
    return rules


class FederatedExecution(SchemaExtension):
    """Runs a query that reads qontract-server: forwarded once, live fields spliced in.

    Set as the execution result, so Strawberry's parsing, validation limits, metrics and error
    masking still apply; queries without a qontract-server field execute as usual.
    """

    def __init__(self, federation: Federation) -> None:
        self.federation = federation
        self.extensions: dict[str, Any] = {}

    def _pinned_schema(self) -> MergedSchema | None:
        """The merged schema of the request's pinned bundle when it is not the current one
        (found by the endpoint, see `Federation.merged_for`)."""
        request = self.execution_context.context
        state = request.request.scope.get("state", {}) if request is not None else {}
        merged = state.get("qontract_merged")
        return None if merged is None or merged is self.federation.merged else merged

    async def on_validate(self) -> AsyncIterator[None]:
        """Validate against the pinned bundle's schema when it is an older one."""
        context = self.execution_context
        merged = self._pinned_schema()
        if merged is not None and context.graphql_document is not None:
            errors = context.pre_execution_errors or []
            # a refusal naming no node (ambiguous operation, too many aliases) is schema-free
            if not errors or all(e.nodes for e in errors):
                context.pre_execution_errors = validate_document(
                    merged.schema, context.graphql_document, context.validation_rules
                )
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        """Set the result for a query with a qontract-server part; otherwise do nothing."""
        context = self.execution_context
        document = context.graphql_document
        if (
            self.federation.merged is None
            or document is None
            or context.operation_type is not OperationType.QUERY
        ):
            yield
            return
        try:
            merged = self._pinned_schema()
            plan = self.federation.plan(
                document, context.operation_name, context.query or "", merged
            )
            if plan.forwarded is None:
                yield
                return
            request = context.context
            if not request.identity.has_scope(APP_INTERFACE_SCOPE):
                raise Forbidden(f"reading app-interface needs the '{APP_INTERFACE_SCOPE}' scope")
            unknown = request.request.scope.get("state", {}).get("qontract_unknown")
            if unknown is not None:
                raise unknown
            sha = await request_sha(request, self.federation)

            running = request.per_request(RUNNING, RunningDocuments)

            async def run(
                schema: GraphQLSchema, documents: Sequence[DocumentNode]
            ) -> list[ExecutionResult]:
                roots = [_root_keys(document) for document in documents]
                running.start(roots)
                return await asyncio.gather(
                    *(run_one(schema, d, r) for d, r in zip(documents, roots, strict=True))
                )

            async def run_one(
                schema: GraphQLSchema, document: DocumentNode, roots: list[str]
            ) -> ExecutionResult:
                try:
                    result = graphql_execute(
                        schema,
                        document,
                        context_value=request,
                        variable_values=context.variables,
                        executor_class=CachedSubtreeExecution,
                    )
                    return await result if isawaitable(result) else result
                finally:
                    running.finish(roots)

            outcome = await self.federation.execute(plan, sha, context.variables, run, merged)
            self.extensions = outcome.extensions
            context.result = outcome.result
        except GatewayError as error:
            context.result = ExecutionResult(
                None, [GraphQLError(error.message, original_error=error)]
            )
        yield

    def get_results(self) -> dict[str, Any]:
        """`schemas` (as qontract-server listed them) and `bundle_sha`, for federated queries."""
        return self.extensions


def _root_keys(document: DocumentNode) -> list[str]:
    """The response keys of a gateway document's root fields (its operation's only)."""
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return [
        (node.alias or node.name).value
        for node in operation.selection_set.selections
        if isinstance(node, FieldNode)
    ]
