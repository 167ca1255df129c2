"""The preflight's reading of its tries (harness.preflight._readable): an answer that arrived and could not
be read, or a refusal, stops the run; the target's state (a timeout, a 5xx, a WAIT short) does not."""

from __future__ import annotations

import pytest

from harness.core.ops import Completion, Outcome
from harness.preflight import PreflightFailed, _readable

IND, FAIL = Outcome.INDETERMINATE, Outcome.FAIL
UNREAD = Completion(IND, None, "unparseable answer: BadReply: no integer at JSON pointer /data/like: b'{}'")
WAIT = Completion(IND, None, "applied on the primary (3), 0 of 1 replicas within 100 ms")
URL = "http://127.0.0.1:9"


def test_an_ok_among_the_tries_passes():
    assert _readable([Completion(IND, None, "timeout"), Completion.ok(4)], "the increment", URL, None) == {
        "sent": "the increment", "tries": 2, "value": 4}


def test_an_answer_that_cannot_be_read_stops_the_run_even_when_a_later_try_timed_out():
    with pytest.raises(PreflightFailed, match=r"no integer at JSON pointer /data/like.*no load was sent"):
        _readable([UNREAD, UNREAD, Completion(IND, None, "timeout")], "the increment", URL, None)


@pytest.mark.parametrize("state", [Completion(IND, None, "timeout"), Completion(IND, None, "HTTP 503"), WAIT])
def test_the_targets_state_is_inconclusive_and_the_run_goes_on(state):
    got = _readable([state] * 3, "the increment", URL, None)
    assert got["inconclusive"] == state.error and got["tries"] == 3


def test_a_refused_increment_stops_the_run_with_the_answer_it_got():
    with pytest.raises(PreflightFailed, match=r"""answered fail 3 times.*HTTP 404 \(the answer: 404 b'nope'\)"""):
        _readable([Completion(FAIL, None, "HTTP 404")] * 3, "the increment (POST /x/{key})", URL, "404 b'nope'")


def test_a_sold_out_seat_is_a_refusal_read_well():
    got = _readable([Completion(FAIL, None, "HTTP 409")] * 3, "the decrement-if-positive", URL, "409 b''",
                    refusal_expected=True)
    assert got["refused"] == "HTTP 409"
