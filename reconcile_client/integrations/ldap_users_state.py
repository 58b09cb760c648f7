"""Which app-interface users ldap-users-api deletes: those LDAP no longer knows, unless the
answer looks broken.

A pure function of the users (with their datafile paths) and LDAP's per-user answers. Unlike
qontract-reconcile, which only refuses an empty answer, a run also stops when more than a
configured fraction of the users would go: a wrong base DN or a half-migrated directory looks
like many deletions at once, and one merge request per user would be a flood to undo.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconcile_client.errors import ConfigError, IntegrationError

INTEGRATION = "ldap-users-api"
DEFAULT_MAX_DELETE_FRACTION = 0.1
"""At most one user in ten goes in one run (always at least one may go)."""


@dataclass(frozen=True)
class AppInterfaceUser:
    """A user file in app-interface: the user's `org_username` and the file's path."""

    username: str
    path: str


@dataclass(frozen=True)
class Deletions:
    """What a run deletes, and the usernames LDAP gave no answer for (kept, reported)."""

    users: tuple[AppInterfaceUser, ...]
    unanswered: tuple[str, ...]


class DeletionAborted(IntegrationError):
    """LDAP's answer looks broken, or too many users would go: nothing is deleted."""


def users_to_delete(
    users: Sequence[AppInterfaceUser],
    exists: Mapping[str, bool | None],
    max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION,
) -> Deletions:
    """The users whose username LDAP answered `False` for, sorted by username and path.

    `exists` maps a username to LDAP's answer, or to None (or leaves it out) when LDAP gave
    none (an error for that user): such a user is never deleted. Raises DeletionAborted when
    LDAP says that none of the users exist or answered for none of them, and when more than
    `max_delete_fraction` of the distinct usernames (at least one) would be deleted.
    """
    if not 0 < max_delete_fraction <= 1:
        raise ConfigError("the largest fraction of users to delete must be in (0, 1]")
    names = sorted({user.username for user in users})
    if not names:
        return Deletions((), ())
    answers = {name: exists.get(name) for name in names}
    unanswered = tuple(name for name, answer in answers.items() if answer is None)
    if len(unanswered) == len(names):
        raise DeletionAborted(f"LDAP answered for none of the {len(names)} users: nothing deleted")
    if not any(answers.values()):
        raise DeletionAborted(
            f"LDAP reports that none of the {len(names)} users exist (a broken bind or base DN?): "
            "nothing deleted"
        )
    gone = {name for name, answer in answers.items() if answer is False}
    limit = max(1, math.floor(max_delete_fraction * len(names)))
    if len(gone) > limit:
        raise DeletionAborted(
            f"{len(gone)} of {len(names)} users would be deleted, more than the {limit} allowed "
            f"(max delete fraction {max_delete_fraction:g}): nothing deleted"
        )
    deleted = sorted(
        (user for user in users if user.username in gone), key=lambda u: (u.username, u.path)
    )
    return Deletions(tuple(deleted), unanswered)
