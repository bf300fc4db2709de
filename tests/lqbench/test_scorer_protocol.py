"""The worker pipe protocol and the scorer's small value types (no worker process needed)."""

import pytest

from lqbench.scorer.sandbox import ScoreLimits, Verdict
from lqbench.scorer.worker import decode_limits, decode_reply, encode_limits, encode_reply
from lqbench.verdicts import VERDICTS


@pytest.mark.parametrize("limits", [
    ScoreLimits(),
    ScoreLimits(timeout_s=0.1, memory_mb=1, lua="luajit", fresh_state=False),
    ScoreLimits(timeout_s=12.345678901, memory_mb=4096, lua="5.1"),
])
def test_limits_survive_the_command_line(limits):
    assert decode_limits(encode_limits(limits)) == limits


@pytest.mark.parametrize("status", VERDICTS)
@pytest.mark.parametrize("error", [None, "", "input:3: attempt to index a nil value", "ünïcödé \u2603 \udcff"])
def test_replies_round_trip(status, error):
    passed = status == "pass"
    assert decode_reply(encode_reply(status, passed, error, 1.234567)) == (status, passed, error, 1.234567)


def test_a_short_or_unknown_reply_is_an_error():
    with pytest.raises(ValueError, match="not a scorer reply"):
        decode_reply(b"\x00")
    with pytest.raises(ValueError, match="not a scorer reply"):
        decode_reply(bytes([len(VERDICTS)]) + encode_reply("pass", True, None, 0.0)[1:])


def test_limits_are_immutable_values_that_key_the_shared_pools():
    assert ScoreLimits(lua="5.3") == ScoreLimits(lua="5.3") != ScoreLimits(lua="5.4")
    assert len({ScoreLimits(), ScoreLimits()}) == 1
    assert ScoreLimits().as_dict() == {"timeout_s": 5.0, "memory_mb": 256, "lua": "5.4", "fresh_state": True}
    with pytest.raises(AttributeError):
        ScoreLimits().timeout_s = 1.0


def test_verdicts_compare_by_value():
    assert Verdict("pass", True, None, 1.0) == Verdict("pass", True, None, 1.0) != Verdict("pass", True, None, 2.0)
    assert Verdict("timeout", False, "t", 1.0) != Verdict("timeout", False, "u", 1.0)
