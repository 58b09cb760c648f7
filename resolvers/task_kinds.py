"""The task kinds the gateway ships; reconcile services register theirs here."""

from typing import Any

from gateway.runtime import Runtime
from gateway.tasks.kinds import TaskContext, TaskKinds
from resolvers import Sources
from resolvers.slack.reconcile import TASK_KIND as SLACK_USERGROUPS_RECONCILE
from resolvers.slack.reconcile import SlackUsergroupsReconcile


def task_kinds(runtime: Runtime) -> TaskKinds:
    """The registry for settings `tasks.kinds` (the default): every shipped reconcile service."""
    kinds = TaskKinds()
    sources = Sources.create(runtime)
    slack_usergroups = SlackUsergroupsReconcile(sources, runtime.events.publisher)

    async def reconcile_slack_usergroups(
        payload: dict[str, Any], context: TaskContext
    ) -> dict[str, Any]:
        return await slack_usergroups(payload)

    kinds.register(SLACK_USERGROUPS_RECONCILE, reconcile_slack_usergroups)
    kinds.closers.append(sources.aclose)
    return kinds
