"""Splicing live values into qontract-server's answer text (`gateway.federation.raw`)."""

import json

from gateway.federation.plan import PREFIX
from gateway.federation.raw import scan

T = f'"{PREFIX}typename":"PagerDutyTarget_v1"'
INSTANCE = f'"{PREFIX}instance":{{"name":"app-sre"}}'
SCHEDULE = f'"{PREFIX}scheduleID":"P1"'


def answer(data: str, tail: str = ',"extensions":{"schemas":["/a-1.yml"]}') -> bytes:
    """An answer as qontract-server writes it: compact, with a final newline."""
    return f'{{"data":{data}{tail}}}\n'.encode()


def test_parents_are_read_and_their_reserved_keys_replaced_by_live_values() -> None:
    """Each parent's reserved keys are decoded; splicing writes the live values in their place
    and leaves every other byte (JSON scalars as strings, non-ASCII text) as it was."""
    data = (
        '{"permissions":[{"name":"é \\"x\\"","labels":"{\\"a\\": 1}","pagerduty":['
        f'{{"name":"t1",{T},{INSTANCE},{SCHEDULE}}},'
        f'{{{T},{INSTANCE},"{PREFIX}scheduleID":null}}]}}]}}'
    )
    raw = scan(answer(data))
    assert raw is not None
    assert raw.extensions == {"schemas": ["/a-1.yml"]}
    assert [p.keys for p in raw.parents] == [
        {
            f"{PREFIX}typename": "PagerDutyTarget_v1",
            f"{PREFIX}instance": {"name": "app-sre"},
            f"{PREFIX}scheduleID": v,
        }
        for v in ("P1", None)
    ]
    spliced = raw.spliced([[("oncall_users", [{"username": "ü"}])], [("oncall_users", None)]])
    assert json.loads(spliced) == {
        "permissions": [
            {
                "name": 'é "x"',
                "labels": '{"a": 1}',
                "pagerduty": [
                    {"name": "t1", "oncall_users": [{"username": "ü"}]},
                    {"oncall_users": None},
                ],
            }
        ]
    }
    untouched = '{"permissions":[{"name":"é \\"x\\"","labels":"{\\"a\\": 1}"'
    assert spliced.startswith(untouched.encode())


def test_an_answer_without_extensions_is_spliced_too() -> None:
    """No `extensions`: the data runs to the answer's last brace."""
    raw = scan(answer(f'{{"t":{{{T},{SCHEDULE}}}}}', tail=""))
    assert raw is not None
    assert raw.extensions is None
    assert json.loads(raw.spliced([[("x", 1)]])) == {"t": {"x": 1}}
    assert raw.spliced([[("x", 2**70)]]) == b'{"t":{"x":1180591620717411303424}}'  # exact


def test_anything_unexpected_falls_back_to_decoding_the_whole_answer() -> None:
    """Errors, whitespace, a caller's key after the reserved run, or text that is not JSON:
    `scan` answers None, so the answer is decoded and spliced as objects."""
    assert scan(b'{"errors":[{"message":"x"}],"data":null}') is None
    assert scan(answer(f'{{"t":{{{T}}}}},"errors":[{{"message":"x"}}]', tail="")) is None
    assert scan(answer(f'{{"t":{{ {T}}}}}')) is None
    assert scan(answer(f'{{"t":{{{T},"name":"x"}}}}')) is None
    assert scan(answer(f'{{"t":{{{T},{PREFIX}broken}}}}')) is None
    assert scan(b"\xff\xfe") is None
    assert scan(b"<html>not found</html>") is None
