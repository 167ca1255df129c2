"""Retries and idempotency keys on the http target: a retried op is uncertain unless a key makes it one."""

from __future__ import annotations

import pytest

from harness.core.ops import Completion, Outcome
from harness.targets.http import HttpContract, HttpOps, Idempotency

OK, FAIL, IND = Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE


class Script:
    """A transport answering from a list: an exception is raised, a tuple is (status, body)."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.sent: list[dict[str, str]] = []

    def __call__(self, method, path, body, headers):
        self.sent.append(dict(headers))
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        status, payload = step
        return status, {}, payload


KEYED = HttpContract(idempotency=Idempotency())


@pytest.mark.parametrize(("contract", "steps", "outcome", "attempts"), [
    (HttpContract(), [(200, b'{"value": 5}')], OK, 1),
    (HttpContract(), [ConnectionResetError(), (200, b'{"value": 5}')], IND, 2),  # the first may have landed
    (HttpContract(), [(503, b""), (503, b""), (503, b"")], IND, 3),
    (HttpContract(), [(409, b"")], FAIL, 1),  # a refusal is not retried
    (KEYED, [ConnectionResetError(), (200, b'{"value": 5}')], OK, 2),  # the key made both one op
    # a refusal after an uncertain attempt proves only that the retry did not apply: the first may still
    # (409: the key's first request still in progress, as the IETF draft answers; 429; a fence)
    (KEYED, [TimeoutError(), (409, b"")], IND, 2),
    (KEYED, [ConnectionResetError(), (429, b"")], IND, 2),
    (KEYED, [TimeoutError(), (503, b""), (409, b"")], IND, 3),
    (KEYED, [(409, b"")], FAIL, 1),  # a refusal with no uncertain attempt before it
    (KEYED, [TimeoutError(), TimeoutError(), TimeoutError()], IND, 3),
])
def test_retried_ops(contract, steps, outcome, attempts):
    transport = Script(*steps)
    done = HttpOps(contract, transport, retries=2).incr("k", 1, token="run.w.7")
    assert (done.outcome, done.attempts) == (outcome, attempts), done
    if outcome is OK:
        assert done.value == 5


def test_every_attempt_carries_the_same_key():
    transport = Script(ConnectionResetError(), ConnectionResetError(), (200, b'{"value": 1}'))
    HttpOps(KEYED, transport, retries=2).incr("k", 1, token="run.w.7")
    assert [h["Idempotency-Key"] for h in transport.sent] == ["run.w.7"] * 3


def test_no_key_is_sent_without_idempotency_in_the_contract():
    transport = Script((200, b'{"value": 1}'))
    ops = HttpOps(HttpContract(), transport)
    assert not ops.tokens
    ops.incr("k", 1, token="ignored")
    assert "Idempotency-Key" not in transport.sent[0]


def test_a_redis_op_retried_after_refusals_of_the_moment_is_what_its_last_attempt_says():
    from harness.targets import retrying
    from harness.targets.redis import _transient

    answers = iter([Completion.fail("not sent: connect refused"), Completion.fail("redis: READONLY replica"),
                    Completion.ok(7)])
    done = retrying(lambda: next(answers), 3, retry=_transient)
    assert (done.outcome, done.value, done.attempts) == (OK, 7, 3)  # no earlier attempt can have applied it
    answers = iter([Completion.indeterminate("timeout"), Completion.ok(8)])
    done = retrying(lambda: next(answers), 3, retry=_transient)
    assert (done.outcome, done.attempts) == (IND, 2)  # the timed-out one may have landed too
    done = retrying(lambda: Completion.fail("redis: SOLDOUT no seats left"), 3, retry=_transient)
    assert (done.outcome, done.attempts) == (FAIL, 1)  # a real refusal is not retried
    answers = iter([Completion.indeterminate("timeout"), Completion.fail("not sent: connect refused")])
    done = retrying(lambda: next(answers), 3, retry=lambda d: d.outcome is Outcome.INDETERMINATE)
    assert (done.outcome, done.attempts) == (IND, 2)  # refused now; the timed-out one may have landed


@pytest.mark.parametrize("last", [Completion.fail("409 in progress"), Completion.fail("429 throttled"),
                                  Completion.fail("not sent: connect refused")])
def test_with_an_idempotency_key_a_refusal_after_an_uncertain_attempt_is_indeterminate(last):
    from harness.targets import retrying

    answers = iter([Completion.indeterminate("timeout"), last])
    done = retrying(lambda: next(answers), 2, retry=lambda d: d.outcome is Outcome.INDETERMINATE, exactly_once=True)
    assert (done.outcome, done.attempts) == (IND, 2), done
    answers = iter([Completion.indeterminate("timeout"), Completion.ok(4)])
    done = retrying(lambda: next(answers), 2, retry=lambda d: d.outcome is Outcome.INDETERMINATE, exactly_once=True)
    assert (done.outcome, done.value, done.attempts) == (OK, 4, 2)  # the key's first answer, replayed
