"""Histories where counterbench's checks and the oracle were found to disagree (or nearly could),
found by hand or by the random comparison and shrunk: each one named for its edge, with the oracle's
verdict and why. ``test_oracle`` holds the oracle to that verdict and the checks to the two rules."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.ops import Op, Outcome
from tests.oracle import History

K = "k"


@dataclass(frozen=True, kw_only=True)
class Case:
    name: str
    history: History
    linearizable: bool
    why: str


def ok(w: str, i: int, inv: int, cmp: int, value: int | None, amount: int = 1) -> Op:
    return Op(w, i, K, "incr", amount, Outcome.OK, value, None, inv, cmp)


def unsure(w: str, i: int, inv: int, cmp: int | None, amount: int = 1) -> Op:
    return Op(w, i, K, "incr", amount, Outcome.INDETERMINATE, None, None if cmp is None else "timeout", inv, cmp)


def read(w: str, i: int, inv: int, cmp: int, value: int) -> Op:
    return Op(w, i, K, "read", 0, Outcome.OK, value, None, inv, cmp)


def take(w: str, i: int, inv: int, cmp: int | None, outcome: Outcome, value: int | None = None) -> Op:
    return Op(w, i, K, "decr_if_positive", -1, outcome, value, None, inv, cmp)


CASES: tuple[Case, ...] = (
    # --- linearizable: the checks must not fail them ---------------------------------------------
    Case(name="resolved op landed after its client gave up, after a later op",
         history=History(ops=(unsure("a", 0, 0, 5), ok("b", 0, 6, 8, 1)), initial=0, final=2,
                         resolved=(("a", 0, 2),)),
         linearizable=True,
         why="a's client gave up at 5; its request landed after b (sent at 6) and left 2: the lookup does not "
             "know when it landed, so 5 is no completion"),
    Case(name="resolved op landed after its client gave up, after a read",
         history=History(ops=(unsure("a", 0, 0, 5), read("r", 0, 6, 7, 0)), initial=0, final=1,
                         resolved=(("a", 0, 1),)),
         linearizable=True, why="a landed after the read (sent at 6) saw 0"),
    Case(name="resolved op landed late, after the uncertain op that made the value below it",
         history=History(ops=(unsure("a", 0, 0, 2), unsure("u", 0, 5, None)), initial=0, final=2,
                         resolved=(("a", 0, 2),)),
         linearizable=True,
         why="u, sent at 5, made 1; a landed after it and made 2: a's give-up at 2 is no deadline for 1"),
    Case(name="an op sent in the microsecond another was answered may precede it",
         history=History(ops=(ok("a", 0, 0, 5, 2), ok("b", 0, 5, 7, 1)), initial=0, final=2),
         linearizable=True, why="times are truncated: b at 5 may come before a's answer at 5"),
    Case(name="amounts: later op lands beyond the earlier one's range",
         history=History(ops=(ok("a", 0, 0, 2, 2, amount=2), ok("b", 0, 3, 5, 7, amount=5)), initial=0, final=7),
         linearizable=True, why="+2 took 0 to 2, then +5 took 2 to 7"),
    Case(name="seats: an uncertain take at zero changes nothing",
         history=History(ops=(take("a", 0, 0, 2, Outcome.OK, 0), take("b", 0, 1, 3, Outcome.INDETERMINATE),
                              read("r", 0, 4, 5, 0)), initial=1, final=0),
         linearizable=True, why="b came after a had taken the last seat: sold out, nothing applied"),
    # --- not linearizable, unit increments with values: the checks must fail them ---------------
    Case(name="a read's gap made only by an op sent after it (an op of a higher value sent before)",
         history=History(ops=(unsure("u", 0, 0, None), unsure("v", 0, 50, None), ok("b", 0, 0, 100, 3),
                              read("r", 0, 10, 12, 2)), initial=0, final=3),
         linearizable=False,
         why="the read saw 2 by 12, so 1 and 2 were made by then, by ops other than b (which made 3): only u "
             "was sent by 12. Counting b among the writes that could explain the read misses that"),
    Case(name="a read's gap made only by an op sent after it (a resolved op of a higher value sent before)",
         history=History(ops=(unsure("u", 0, 0, None), unsure("v", 0, 50, None), unsure("b", 0, 0, 5),
                              read("r", 0, 10, 12, 2)), initial=0, final=3, resolved=(("b", 0, 3),)),
         linearizable=False, why="as above, with b known from the lookup to have made 3"),
    Case(name="a read saw a value whose only maker was sent after it",
         history=History(ops=(unsure("a", 0, 0, 0), unsure("a", 1, 1, 1), read("r", 0, 0, 0, 1)), initial=0,
                         final=2, resolved=(("a", 0, 2),)),
         linearizable=False,
         why="a/0 made 2 (the lookup says), so the read's 1 at 0 was made by a/1, sent at 1: after the read"),
    Case(name="a read ahead of its gap's only candidate (found by read-ahead, shrunk)",
         history=History(ops=(ok("w0", 0, 0, 2, 3), read("w2", 0, 1, 1, 2), ok("w3", 0, 0, 2, 2),
                              unsure("w1", 0, 2, 2)), initial=0, final=3),
         linearizable=False,
         why="the read at 1 saw 2, so 1 was made by 1 -- by an op other than those that made 2 and 3; the only "
             "other op was sent at 2"),
    Case(name="a stale read below a value returned before it was sent",
         history=History(ops=(ok("a", 0, 0, 2, 3), unsure("u", 0, 0, None), unsure("v", 0, 0, None),
                              read("r", 0, 5, 6, 1)), initial=0, final=3),
         linearizable=False, why="a left 3 at 2 at the latest; the counter only grows"),
    Case(name="a read above the final value of a growing counter",
         history=History(ops=(unsure("u", 0, 0, 1), read("r", 0, 2, 3, 1)), initial=0, final=0),
         linearizable=False, why="the counter saw 1 and ended at 0: a change was lost"),
)
