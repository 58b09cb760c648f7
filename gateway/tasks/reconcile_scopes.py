"""What every reconcile request shares: the scopes that submit it and its result's statuses."""

from typing import Literal

DRY_RUN_SCOPE = "reconcile:dry-run"
APPLY_SCOPE = "reconcile:apply"

ReconcileStatus = Literal["success", "failed"]
"""A finished run's status: `failed` iff it has errors."""


def required_scope(dry_run: bool) -> str:
    """The token scope a caller needs to submit a run (`dry_run` or real)."""
    return DRY_RUN_SCOPE if dry_run else APPLY_SCOPE
