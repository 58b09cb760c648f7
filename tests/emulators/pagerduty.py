"""A stateful PagerDuty REST API v2 emulator: on-call users, escalation policies, users."""

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator


@dataclass
class PagerDutyState:
    """What the emulated account holds."""

    token: str = "pd-test-token"
    users: dict[str, dict[str, object]] = field(default_factory=dict)
    oncall: dict[str, list[str]] = field(default_factory=dict)
    policies: dict[str, list[tuple[int, list[tuple[str, str]]]]] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    base_url: str = "https://api.pagerduty.com"

    def add_user(self, user_id: str, email: str, deleted: bool = False) -> None:
        """A user; a deleted one carries `deleted_at` as PagerDuty shows it."""
        user: dict[str, object] = {
            "id": user_id,
            "type": "user",
            "name": email.split("@")[0].title(),
            "email": email,
        }
        if deleted:
            user["deleted_at"] = "2026-01-01T00:00:00Z"
        self.users[user_id] = user

    def remove_user(self, user_id: str) -> None:
        """Off-board a user: GET /users/{id} answers 404, while escalation rules that target
        the user keep their `user_reference` (as PagerDuty's own `/oncalls` then skips it)."""
        self.removed[user_id] = str(self.users.pop(user_id)["name"])


def _not_found() -> JSONResponse:
    return JSONResponse({"error": {"message": "Not Found", "code": 2100}}, status_code=404)


class PagerDutyEmulator(UpstreamEmulator):
    """Serves the PagerDuty endpoints the gateway uses, checking the token header."""

    def __init__(self, state: PagerDutyState | None = None) -> None:
        self.state = state or PagerDutyState()
        super().__init__(
            [
                Route("/schedules/{schedule_id}/users", self.schedule_users),
                Route("/escalation_policies/{policy_id}", self.escalation_policy),
                Route("/users/{user_id}", self.user),
            ]
        )

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Token token={self.state.token}"

    def _unauthorised(self) -> JSONResponse:
        return JSONResponse({"error": {"message": "Unauthorized", "code": 2006}}, status_code=401)

    async def schedule_users(self, request: Request) -> JSONResponse:
        """GET /schedules/{id}/users?since&until: users on call in the window."""
        if not self._authorised(request):
            return self._unauthorised()
        if "since" not in request.query_params or "until" not in request.query_params:
            return JSONResponse({"error": {"message": "since/until required"}}, status_code=400)
        user_ids = self.state.oncall.get(request.path_params["schedule_id"])
        if user_ids is None:
            return _not_found()
        return JSONResponse({"users": [self.state.users[u] for u in user_ids]})

    async def escalation_policy(self, request: Request) -> JSONResponse:
        """GET /escalation_policies/{id}: rules with their schedule and user targets."""
        if not self._authorised(request):
            return self._unauthorised()
        policy_id = request.path_params["policy_id"]
        rules = self.state.policies.get(policy_id)
        if rules is None:
            return _not_found()
        return JSONResponse(
            {
                "escalation_policy": {
                    "id": policy_id,
                    "type": "escalation_policy",
                    "escalation_rules": [
                        {
                            "id": f"R{index}",
                            "escalation_delay_in_minutes": delay,
                            "targets": [self._reference(kind, tid) for kind, tid in targets],
                        }
                        for index, (delay, targets) in enumerate(rules)
                    ],
                }
            }
        )

    def _reference(self, kind: str, target_id: str) -> dict[str, object]:
        """A rule target as PagerDuty shows it: `{id, type: <kind>_reference, summary, self,
        html_url}`; a removed user's reference stays, pointing at a user that answers 404."""
        if kind == "user":
            user = self.state.users.get(target_id)
            summary = str(user["name"]) if user else self.state.removed.get(target_id, target_id)
        else:
            summary = f"Schedule {target_id}"
        return {
            "id": target_id,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": f"{self.state.base_url}/{kind}s/{target_id}",
            "html_url": f"https://example.pagerduty.com/{kind}s/{target_id}",
        }

    async def user(self, request: Request) -> JSONResponse:
        """GET /users/{id}."""
        if not self._authorised(request):
            return self._unauthorised()
        user = self.state.users.get(request.path_params["user_id"])
        return JSONResponse({"user": user}) if user else _not_found()
