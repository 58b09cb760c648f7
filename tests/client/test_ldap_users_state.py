"""The deletion and abort rules of ldap-users-api, as a pure function."""

import pytest

from reconcile_client.errors import ConfigError, ExitCode
from reconcile_client.integrations.ldap_users_state import (
    AppInterfaceUser,
    DeletionAborted,
    users_to_delete,
)


def team(count: int) -> list[AppInterfaceUser]:
    """`count` users, `user-000` onwards, each in its own file."""
    return [
        AppInterfaceUser(f"user-{i:03}", f"/teams/a/users/user-{i:03}.yml") for i in range(count)
    ]


def test_users_ldap_no_longer_knows_are_deleted_with_their_files() -> None:
    users = [*team(20), AppInterfaceUser("user-001", "/teams/b/users/user-001.yml")]
    exists: dict[str, bool | None] = {user.username: True for user in users}
    exists["user-001"] = False

    deletions = users_to_delete(users, exists)

    assert [user.path for user in deletions.users] == [
        "/teams/a/users/user-001.yml",
        "/teams/b/users/user-001.yml",
    ]
    assert deletions.unanswered == ()


def test_nobody_exists_aborts_without_any_deletion() -> None:
    users = team(5)

    with pytest.raises(DeletionAborted, match="none of the 5 users exist") as aborted:
        users_to_delete(users, {user.username: False for user in users}, max_delete_fraction=1)

    assert aborted.value.exit_code is ExitCode.FAILED


def test_no_answer_at_all_aborts() -> None:
    with pytest.raises(DeletionAborted, match="answered for none of the 3 users"):
        users_to_delete(team(3), {})


def test_a_user_without_an_answer_is_kept_and_reported() -> None:
    users = team(20)
    exists: dict[str, bool | None] = {user.username: True for user in users}
    exists["user-003"] = None
    exists["user-004"] = False

    deletions = users_to_delete(users, exists)

    assert [user.username for user in deletions.users] == ["user-004"]
    assert deletions.unanswered == ("user-003",)


def test_more_than_the_fraction_aborts_and_the_fraction_itself_passes() -> None:
    users = team(30)
    exists: dict[str, bool | None] = {user.username: True for user in users}
    for user in users[:3]:
        exists[user.username] = False

    assert len(users_to_delete(users, exists).users) == 3  # 3 of 30 is the default 10 %
    exists[users[3].username] = False
    with pytest.raises(DeletionAborted, match="4 of 30 users would be deleted"):
        users_to_delete(users, exists)
    assert len(users_to_delete(users, exists, max_delete_fraction=0.2).users) == 4


def test_one_user_may_always_go_even_from_a_small_team() -> None:
    users = team(3)
    exists: dict[str, bool | None] = {"user-000": True, "user-001": True, "user-002": False}

    assert [user.username for user in users_to_delete(users, exists).users] == ["user-002"]


def test_no_users_deletes_nothing_and_a_bad_fraction_is_a_usage_error() -> None:
    assert users_to_delete([], {}).users == ()
    with pytest.raises(ConfigError):
        users_to_delete(team(2), {}, max_delete_fraction=0)
