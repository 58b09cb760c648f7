"""The YAML edits of ldap-users-api: users moved to `deleted_users` in infra vars files and
references removed from app-interface datafiles; layout kept, result checked by parsing."""

import pytest
import yaml

from reconcile_client.integrations.ldap_users_files import (
    FileEditRefused,
    move_users,
    remove_from_schedule,
    remove_references,
)

HOST_VARS = """\
---
# Users with a shell on the bastion.
bastion_users:
  - name: alice
    key: ssh-ed25519 AAAA alice
  # erin left in 2024
  - name: erin
    key: ssh-ed25519 AAAA erin
  - name: bob
    key: ssh-ed25519 AAAA bob

other_setting: 3   # unrelated
deleted_users:
  - mallory
"""


def test_a_user_moves_to_deleted_users_and_everything_else_stays_as_written() -> None:
    edited = move_users(HOST_VARS, {"erin"}, "host_vars")
    assert edited is not None
    assert edited == HOST_VARS.replace(
        "  - name: erin\n    key: ssh-ed25519 AAAA erin\n", ""
    ).replace("  - mallory\n", "  - mallory\n  - erin\n"), "comments stay where they were"
    assert yaml.safe_load(edited)["deleted_users"] == ["mallory", "erin"]


def test_deleted_users_is_created_and_login_name_lists_count_too() -> None:
    text = "admins:\n- login_name: erin\n  uid: 7\n- login_name: bob\n  uid: 8\n"
    edited = move_users(text, {"erin", "nobody"}, "group_vars")
    assert edited == "admins:\n- login_name: bob\n  uid: 8\ndeleted_users:\n- erin\n"


def test_the_last_entry_leaves_an_empty_list_and_an_inline_deleted_list_becomes_a_block() -> None:
    text = "users:\n  - name: erin\ndeleted_users: [mallory]\n"
    edited = move_users(text, {"erin"}, "vars")
    assert edited == "users: []\ndeleted_users:\n  - mallory\n  - erin\n"


@pytest.mark.parametrize(
    "text",
    [
        "users:\n  - name: bob\n",
        "plain: [1, 2]\nmapping: {name: erin}\n",
        "- name: erin\n",
        "users:\n  - just-a-string\n",
    ],
)
def test_files_without_the_user_in_a_user_list_are_left_alone(text: str) -> None:
    assert move_users(text, {"erin"}, "vars") is None


def test_a_flow_style_user_list_is_refused_not_rewritten() -> None:
    with pytest.raises(FileEditRefused, match="not a block list"):
        move_users("users: [{name: erin}, {name: bob}]\n", {"erin"}, "vars")


def test_a_file_that_is_not_yaml_is_refused() -> None:
    with pytest.raises(FileEditRefused, match="vars: not YAML"):
        move_users("users: [unclosed\n", {"erin"}, "vars")


def test_an_edit_that_would_not_parse_to_the_moved_data_is_refused() -> None:
    """A repeated key: YAML keeps the last, the text edit changes the first."""
    text = "users:\n  - name: bob\nusers:\n  - name: erin\n"
    with pytest.raises(FileEditRefused, match="vars: removing 1 entries by a text edit went wrong"):
        move_users(text, {"erin"}, "vars")


GABI = """\
---
$schema: /app-sre/gabi-instance-1.yml
name: gabi-db
users:
- $ref: /teams/sre/users/alice.yml
- $ref: /teams/sre/users/erin.yml   # db access
signoffManagers:
- $ref: /teams/sre/users/erin.yml
instances:
- account: app-sre
"""

AWS_ACCOUNT = """\
$schema: /aws/account-1.yml
name: app-sre
resetPasswords:
  - user:
      $ref: /teams/sre/users/erin.yml
    requestId: 42
  - user:
      $ref: /teams/sre/users/erinx.yml
    requestId: 43
"""


def test_a_gabi_instance_loses_the_users_references_in_both_lists() -> None:
    edited = remove_references(GABI, "erin", "gabi")
    assert edited == GABI.replace("- $ref: /teams/sre/users/erin.yml   # db access\n", "").replace(
        "signoffManagers:\n- $ref: /teams/sre/users/erin.yml\n", "signoffManagers: []\n"
    )


def test_an_aws_account_loses_the_users_password_reset_only() -> None:
    edited = remove_references(AWS_ACCOUNT, "erin", "aws")
    assert edited is not None
    assert yaml.safe_load(edited)["resetPasswords"] == [
        {"user": {"$ref": "/teams/sre/users/erinx.yml"}, "requestId": 43}
    ]
    assert "requestId: 42" not in edited


def test_a_file_without_a_reference_to_the_user_is_left_alone() -> None:
    assert remove_references(GABI, "bob", "gabi") is None
    assert remove_references("name: x\nusers: []\n", "erin", "other") is None


SCHEDULE = """\
---
$schema: /app-sre/schedule-1.yml
name: sre
schedule:
- start: '2030-01-01 00:00'
  end: '2030-01-08 00:00'
  users:
  - $ref: /teams/sre/users/erin.yml
  - $ref: /teams/sre/users/bob.yml
- users:
    - $ref: /teams/sre/users/erin.yml   # only erin this week
  start: '2030-01-08 00:00'
  end: '2030-01-15 00:00'
- start: '2030-01-15 00:00'
  end: '2030-01-22 00:00'
  users: []
"""


def test_a_schedule_loses_the_user_in_every_slot_and_keeps_the_slots() -> None:
    edited = remove_from_schedule(SCHEDULE, "erin", "schedule")
    assert edited == SCHEDULE.replace("  - $ref: /teams/sre/users/erin.yml\n", "", 1).replace(
        "- users:\n    - $ref: /teams/sre/users/erin.yml   # only erin this week\n",
        "- users: []\n",
    )
    slots = yaml.safe_load(edited)["schedule"]
    assert [len(slot["users"]) for slot in slots] == [1, 0, 0]


def test_a_schedule_without_the_user_is_left_alone() -> None:
    assert remove_from_schedule(SCHEDULE, "carol", "schedule") is None
    assert remove_from_schedule("name: no-slots\n", "erin", "schedule") is None


def test_a_flow_style_slot_list_is_refused() -> None:
    text = "schedule:\n- users: [{$ref: /u/erin.yml}]\n"
    with pytest.raises(
        FileEditRefused, match="schedule: a schedule slot's users are not a block list"
    ):
        remove_from_schedule(text, "erin", "schedule")
