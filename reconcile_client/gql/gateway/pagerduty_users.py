"""Models of the PagerDuty fragments: the on-call users of schedules and escalation policies."""

from pydantic import BaseModel

from reconcile_client.operations import Fragment


class PagerDutyUser(BaseModel):
    """A user on call, by PagerDuty username (the local part of the e-mail)."""

    username: str


class PagerDutyScheduleUsers(BaseModel):
    """Fragment PagerDutyScheduleUsers."""

    id: str
    users: list[PagerDutyUser]


class PagerDutyEscalationPolicyUsers(BaseModel):
    """Fragment PagerDutyEscalationPolicyUsers."""

    id: str
    users: list[PagerDutyUser]


SCHEDULE_USERS = Fragment(
    "PagerDutyScheduleUsers", "gateway/pagerduty_schedule_users.gql", PagerDutyScheduleUsers
)
ESCALATION_POLICY_USERS = Fragment(
    "PagerDutyEscalationPolicyUsers",
    "gateway/pagerduty_escalation_policy_users.gql",
    PagerDutyEscalationPolicyUsers,
)
