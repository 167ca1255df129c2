"""Every rule the checker enforces, broken one at a time: some test must go red for each.

A rule that can be removed with every test still green is a rule nobody tests. Each mutant below
is one rule of docs/checks.md (and of the history and judge rules behind them) deleted or
inverted by a one-line edit; ``run`` applies it to a copy of the code and runs the tests that
should catch it. ``tests/unit/test_mutants.py`` runs them all; ``python -m tests.mutants`` prints
the table.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("tests/unit/test_checks.py", "tests/unit/test_order.py")
JUDGE = ("tests/unit/test_judge.py",)
HISTORY = ("tests/unit/test_history.py",)
STATS = ("tests/unit/test_stats.py",)
RETRIES = ("tests/unit/test_retries.py",)
FAULTS = ("tests/unit/test_fault_outcomes.py",)
NEMESIS = ("tests/unit/test_nemesis.py",)
LATE = ("tests/unit/test_config.py::test_a_fault_at_the_load_end_names_file_line_and_key",)
REAPER = ("tests/unit/test_reaper.py",)
SHIPPING = ("tests/unit/test_shipping.py",)
ROUTES = "tests/unit/test_redis_partition_routes.py"
PARTITION_STALLS = (f"{ROUTES}::test_a_partition_of_the_first_primary_stalls_every_link_to_it_and_the_load_paths_"
                    "clients_says",)
PROXY_STALL = "tests/unit/test_proxy_stall.py"
PATRONI = ("tests/unit/test_patroni.py",)
ORDER = ("tests/unit/test_order.py",)
STREAM = ("tests/unit/test_stream.py",)
ONLINE = ("tests/unit/test_online.py",)
EXPORTER = ("tests/unit/test_exporter.py",)
POWER = ("tests/unit/test_properties.py::test_the_stated_rate_holds_where_uncertain_ops_of_large_amounts_can_hide_"
         "many_small_losses",)
SERVICE_UNIT = ("tests/unit/test_service_idempotency.py",)
STORES = "tests/integration/test_service_idempotency_stores.py"
REPEAT = (f"{STORES}::test_a_repeat_while_the_first_is_in_progress_answers_409_and_the_op_applies_once",)
FENCE = (f"{STORES}::test_a_resolve_while_the_op_is_in_progress_fences_it",)
FAILURE = (f"{STORES}::test_a_key_whose_op_did_not_apply_is_free_and_one_whose_op_may_have_is_never_applied_again",)
EXPIRY = (f"{STORES}::test_redis_keeps_idempotency_records_without_expiry",)


@dataclass(frozen=True, kw_only=True)
class Mutant:
    rule: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...] = CHECKS


MUTANTS: tuple[Mutant, ...] = (
    # bounds
    Mutant(rule="bounds: a final below the range is lost", file="harness/checks/bounds.py",
           old="below, above = max(0, lo - final), max(0, final - hi)", new="below, above = 0, max(0, final - hi)"),
    Mutant(rule="bounds: a final above the range is applied twice", file="harness/checks/bounds.py",
           old="below, above = max(0, lo - final), max(0, final - hi)", new="below, above = max(0, lo - final), 0"),
    Mutant(rule="bounds: indeterminate increments widen only the upper bound", file="harness/checks/bounds.py",
           old="lo, hi = base + neg, base + pos", new="lo, hi = base + neg - pos, base + pos"),
    Mutant(rule="bounds: the final must be a reachable sum, not just within the interval",
           file="harness/checks/bounds.py", old="    if contains(ranges, final):", new="    if True:"),
    Mutant(rule="bounds: a final value not read is unknown", file="harness/checks/bounds.py",
           old='valid=None, evidence={**ev, "reason": "the final value was not read"}',
           new='valid=True, evidence={**ev, "reason": "the final value was not read"}'),
    Mutant(rule="bounds: too fragmented a reachable set is unknown", file="harness/checks/bounds.py",
           old='valid=None, evidence={\n            **ev, "reason": f"final is within [lower, upper] but',
           new='valid=True, evidence={\n            **ev, "reason": f"final is within [lower, upper] but'),
    Mutant(rule="bounds: an incomplete history is never valid", file="harness/checks/bounds.py",
           old="    if not history.complete:\n        ev[\"missing\"]", new="    if False:\n        ev[\"missing\"]"),
    Mutant(rule="bounds, incomplete history: increments still prove a loss below the range",
           file="harness/checks/bounds.py", old="if below and -1 not in history.op_signs:", new="if False:"),
    Mutant(rule="bounds, incomplete history: decrements still prove lost reservations above the range",
           file="harness/checks/bounds.py", old="if above and 1 not in history.op_signs:", new="if False:"),
    Mutant(rule="bounds, incomplete history: a missing op may have the workload's sign, not only the recorded ones",
           file="harness/checks/bounds.py", old="if below and -1 not in history.op_signs:",
           new="if below and -1 not in t.signs:"),
    Mutant(rule="judge: missing ops take the workload's direction", file="harness/judge.py",
           old="        op_signs=scenario.workload.signs,\n", new="", tests=JUDGE),
    # unique-values
    Mutant(rule="unique-values: a value returned twice proves a lost update", file="harness/checks/unique.py",
           old="if len(rep_values) or out_of_range:", new="if out_of_range:"),
    Mutant(rule="unique-values: a value outside (I, F] proves a lost update", file="harness/checks/unique.py",
           old="if len(rep_values) or out_of_range:", new="if len(rep_values):"),
    Mutant(rule="unique-values: UPDATED_OLD values lie in [I, F)", file="harness/checks/unique.py",
           old="(initial, final - 1)", new="(initial + 1, final)"),
    Mutant(rule="unique-values: decrements' values lie in [F, I)", file="harness/checks/unique.py",
           old="(final, initial - 1)", new="(final + 1, initial)"),
    Mutant(rule="unique-values: amounts of both signs are undecided", file="harness/checks/unique.py",
           old="    if len(signs) > 1:", new="    if False:"),
    Mutant(rule="unique-values: an incomplete history may hold ops of the other sign",
           file="harness/checks/unique.py", old="signs = history.possible_signs(t.signs)", new="signs = t.signs"),
    Mutant(rule="unique-values: no value returned is undecided", file="harness/checks/unique.py",
           old="    if not len(t.ok_values):", new="    if False:"),
    Mutant(rule="unique-values: values are undecided when the final was not read", file="harness/checks/unique.py",
           old='valid=None,\n                           evidence={**ev, "reason": "values are unique but',
           new='valid=True,\n                           evidence={**ev, "reason": "values are unique but'),
    Mutant(rule="unique-values: a key without acknowledged ops is undecided when its final was not read",
           file="harness/checks/unique.py", old="    if t.ok == 0:\n        if final is None:",
           new="    if t.ok == 0:\n        if False:"),
    # no-oversell
    Mutant(rule="no-oversell: more acknowledged than the capacity", file="harness/checks/oversell.py",
           old="max(0, sold - initial, -final if final is not None else 0)",
           new="max(0, -final if final is not None else 0)"),
    Mutant(rule="no-oversell: a final below zero", file="harness/checks/oversell.py",
           old="max(0, sold - initial, -final if final is not None else 0)", new="max(0, sold - initial)"),
    Mutant(rule="no-oversell: an incomplete history is undecided", file="harness/checks/oversell.py",
           old="    if not history.complete:", new="    if False:"),
    Mutant(rule="no-oversell: a final not read is undecided", file="harness/checks/oversell.py",
           old='valid=None,\n                           evidence={**ev, "reason": "the final value was not read"}',
           new='valid=True,\n                           evidence={**ev, "reason": "the final value was not read"}'),
    # keys and verdicts
    Mutant(rule="per key and in total: the total of every key", file="harness/checks/__init__.py",
           old="if name in CHECKS and CHECKS[name].over_total and len(keys) > 1:", new="if False:"),
    Mutant(rule="a key nobody touched must keep its initial value", file="harness/checks/__init__.py",
           old="tallies.setdefault(key, KeyTally(key=key, timed=TimedOps()))", new="pass"),
    Mutant(rule="over many keys, an undecided key makes the summary undecided", file="harness/checks/__init__.py",
           old="valid: bool | None = False if bad else (None if unknown else True)",
           new="valid: bool | None = False if bad else True"),
    Mutant(rule="a check that crashes is unknown, never a pass", file="harness/checks/__init__.py",
           old='return CheckResult(name=name, key=key, valid=None, evidence={"error": f"{type(e).__name__}: {e}"})',
           new='return CheckResult(name=name, key=key, valid=True, evidence={"error": f"{type(e).__name__}: {e}"})'),
    Mutant(rule="verdict: an incomplete history is never a pass", file="harness/checks/__init__.py",
           old="    if not history.complete:\n        missing", new="    if False:\n        missing"),
    Mutant(rule="verdict: nothing acknowledged proves nothing", file="harness/checks/__init__.py",
           old='    if totals["ok"] == 0:', new="    if False:"),
    Mutant(rule="verdict: an undecided check makes the verdict unknown", file="harness/checks/__init__.py",
           old="    if unknown:\n        return \"unknown\", _why(unknown[0])\n", new=""),
    Mutant(rule="verdict: lost, duplicated, oversold are findings only of checks that decided",
           file="harness/checks/__init__.py", old="    if r.valid is None and any(f in r.evidence for f in FINDINGS):",
           new="    if False:"),
    # real-time order, reads, gaps
    Mutant(rule="realtime-order: a value below one handed out before the op started is a violation",
           file="harness/checks/realtime.py", old="np.less(from_here[1:], inv_lo[order[:-1]], out=bad[:-1])",
           new="pass"),
    Mutant(rule="realtime-order: an interval is widened by its process's clock uncertainty",
           file="harness/checks/timed.py", old="        unc = self._uncertainty(times, which, read)",
           new="        unc = None"),
    Mutant(rule="clocks: a completion is widened by its truncation to the microsecond (one rule for every process)",
           file="harness/checks/columns.py", old="done * 1000 + (base + TRUNCATION_NS)", new="done * 1000 + base",
           tests=ORDER),
    Mutant(rule="clocks: beyond the samples, a clock's uncertainty grows by what it may drift",
           file="harness/checks/timed.py", old="        return unc + drift_ns(beyond)", new="        return unc",
           tests=ORDER),
    Mutant(rule="clocks: hosts are told apart by machine and boot, not by name", file="harness/checks/timed.py",
           old='    if header.get("boot_id"):', new="    if False:", tests=ORDER),
    Mutant(rule="clocks: the newest sample is always kept", file="harness/load/clock.py",
           old="        return [*self._kept, self._newest]", new="        return list(self._kept)", tests=ORDER),
    Mutant(rule="an op a lookup showed applied has no known completion: never before anything",
           file="harness/checks/columns.py", old="np.where((done >= 0) & acked[idx],", new="np.where(done >= 0,"),
    Mutant(rule="realtime-order: an op of any amount occupies the range it moved the counter through",
           file="harness/checks/realtime.py", old="    bad = has & (start < top[k]) & (pos[first] != pos)",
           new="    bad = has & (end < top[k]) & (pos[first] != pos)"),
    Mutant(rule="realtime-order: ranges that overlap count one change twice", file="harness/checks/realtime.py",
           old="    crossed, i, j = overlaps(start, end, pos)", new="    crossed, i, j = 0, -1, -1"),
    Mutant(rule="realtime-order: a range lies within the initial and final values", file="harness/checks/realtime.py",
           old="outside=int(np.count_nonzero(out))", new="outside=0"),
    Mutant(rule="clocks: a sampled offset is known only within half the sample's round trip",
           file="harness/checks/timed.py", old="        half = (int(answered) - int(asked)) // 2 + 1",
           new="        half = 0"),
    Mutant(rule="clocks: ops of several hosts are not placed without the master's samples",
           file="harness/checks/timed.py", old="        if not workers.get(w) or", new="        if False and"),
    Mutant(rule="realtime-order: a history with a value handed out twice is still read for order",
           file="harness/checks/realtime.py", old="        np.less(earlier, inv_lo[order], out=bad)",
           new="        pass"),
    Mutant(rule="realtime-order: ops of equal value are not ordered by it (that is unique-values')",
           file="harness/checks/realtime.py", old="np.repeat(ends + 1, np.diff(np.r_[-1, ends]))",
           new="np.arange(1, n + 1)"),
    Mutant(rule="reads: a read below what acknowledged changes made it is stale", file="harness/checks/reads.py",
           old="    stale = value < lower", new="    stale = value < lower - 1_000_000"),
    Mutant(rule="reads: a read above every change sent before its answer is ahead", file="harness/checks/reads.py",
           old="    ahead = value > upper", new="    ahead = value > upper + 1_000_000"),
    Mutant(rule="reads: reads do not go back in real time", file="harness/checks/reads.py",
           old="    backwards, a, b = order_violations(value, *T.intervals(read=True))",
           new="    backwards, a, b = order_violations(value * 0, *T.intervals(read=True))"),
    Mutant(rule="reads: a read is at least where a write acknowledged before it left the counter",
           file="harness/checks/reads.py",
           old="        lower, upper = np.maximum(lower, v_lower), np.minimum(upper, v_upper)",
           new="        upper = np.minimum(upper, v_upper)"),
    Mutant(rule="reads: a read is at most where a write sent after its answer found the counter",
           file="harness/checks/reads.py",
           old="        lower, upper = np.maximum(lower, v_lower), np.minimum(upper, v_upper)",
           new="        lower = np.maximum(lower, v_lower)"),
    Mutant(rule="reads: a read strictly inside one change's range saw a value the counter never held",
           file="harness/checks/reads.py", old="    bad = stale | ahead | lost | never",
           new="    bad = stale | ahead | lost"),
    Mutant(rule="reads: a read beyond the final value of a counter moving one way saw a state later lost",
           file="harness/checks/reads.py", old="    lost = value > final * d if one_way",
           new="    lost = value > _INF if one_way"),
    Mutant(rule="gaps: a value no acknowledged or uncertain op can account for is a phantom",
           file="harness/checks/gaps.py", old="    if not len(phantoms):", new="    if True:"),
    Mutant(rule="gaps: an op sent after a gap's window closed cannot fill it", file="harness/checks/gaps.py",
           old='sent = np.searchsorted(np.sort(c_inv), hi, side="right")', new="sent = np.full(len(hi), len(c_inv))"),
    Mutant(rule="gaps: a value an acknowledged read saw was made before the read was answered",
           file="harness/checks/gaps.py",
           old="    hi = np.minimum(hi, _read_deadlines(T, gaps, first, d, span, after))", new="    pass"),
    Mutant(rule="gaps: a value handed out twice has the wider window of its ops", file="harness/checks/gaps.py",
           old="    once = int(times.max(initial=0)) <= 1", new="    once = True"),
    # the streamed checks: each rule of the folds, as the in-memory checks hold it
    Mutant(rule="stream: a value at or below the height reached that is no hole came before",
           file="harness/checks/holes.py", old="        again = old_values[~hit]", new="        again = old_values[:0]",
           tests=STREAM),
    Mutant(rule="stream: a value twice in one chunk is handed out twice", file="harness/checks/holes.py",
           old="        twice = distinct[counts > 1]", new="        twice = distinct[:0]", tests=STREAM),
    Mutant(rule="stream: a write bounds the deadline of every hole below it", file="harness/checks/holes.py",
           old="        caps = np.concatenate([wpos - 1, rpos])", new="        caps = np.concatenate([wpos[:0], rpos])",
           tests=STREAM),
    Mutant(rule="stream: a read bounds the deadline of every hole at or below it", file="harness/checks/holes.py",
           old="        caps = np.concatenate([wpos - 1, rpos])",
           new="        caps = np.concatenate([wpos - 1, rpos[:0]])", tests=STREAM),
    Mutant(rule="stream: a position a chunk returned is no hole", file="harness/checks/holes.py",
           old="            fresh[distinct[distinct > old] - old - 1] = False", new="            pass", tests=STREAM),
    Mutant(rule="stream: past the highest position, the uncertain ops left match in turn",
           file="harness/checks/holes.py", old="        tail_matched = min(tail, max(0, n_c - done))",
           new="        tail_matched = tail", tests=STREAM),
    Mutant(rule="stream: a hole settles only once no answer still to come can move its deadline",
           file="harness/checks/holes.py", old="        done = self.deadline < frontier",
           new="        done = self.deadline < MAX", tests=STREAM),
    Mutant(rule="stream: an op returning a settled hole's value fills it", file="harness/checks/holes.py",
           old="            late = self.settled_pos[j] == again  # an op long out returned a value settled as a hole",
           new="            late = again < -(1 << 62)", tests=STREAM),
    Mutant(rule="stream: a write sent after a higher value was answered is out of order",
           file="harness/checks/windows.py", old='        bad[maybe] = self._before(q["inv"][maybe]) > q["u"][maybe]',
           new='        bad[maybe] = self._before(q["inv"][maybe]) > q["u"][maybe] + (1 << 40)', tests=STREAM),
    Mutant(rule="stream: a write is looked up when a higher value was answered before its own answer",
           file="harness/checks/windows.py", old='        maybe = np.flatnonzero(bound > q["u"])',
           new='        maybe = np.flatnonzero(bound > q["u"] + 1)', tests=STREAM),
    Mutant(rule="stream: a read sent after a higher read was answered goes back", file="harness/checks/windows.py",
           old='        bad = seen > r["u"]', new='        bad = seen > r["u"] + (1 << 40)', tests=STREAM),
    Mutant(rule="stream: writes acknowledged before a read was sent bound it from below",
           file="harness/checks/windows.py", old='        lower_c = self.initial + self._acked_before(r["inv"])',
           new='        lower_c = self.initial + 0 * r["inv"] - (1 << 40)', tests=STREAM),
    Mutant(rule="stream: writes sent before a read's answer came bound it from above", file="harness/checks/windows.py",
           old='        upper = np.minimum(self.initial + self.base_placed + np.searchsorted(placed, r["cmp"], '
               'side="right"),',
           new='        upper = np.minimum(HIGH + 0 * r["cmp"],', tests=STREAM),
    Mutant(rule="stream: writes sent after a read's answer came bound it from above", file="harness/checks/windows.py",
           old="        if valued is not None:\n            self._narrow(valued)",
           new="        if False:\n            self._narrow(valued)", tests=STREAM),
    Mutant(rule="stream: writes sent before the watermark count for every read still to judge",
           file="harness/checks/windows.py", old="        self.base_placed += int(early.sum())", new="        pass",
           tests=STREAM),
    Mutant(rule="stream: writes answered before the watermark count for every read sent after it",
           file="harness/checks/windows.py", old="        self.base_acked += n", new="        pass", tests=STREAM),
    Mutant(rule="stream: the highest value that left the window still bounds what comes",
           file="harness/checks/windows.py", old="                if int(gone[\"u\"][top]) > self.base_max:",
           new="                if False:", tests=STREAM),
    Mutant(rule="stream: the watermark is the earliest invoke of any op still to come", file="harness/checks/stream.py",
           old="        return min([*lows, *pending], default=_END)",
           new="        return max([*lows, *pending], default=_END)", tests=STREAM),
    Mutant(rule="stream: an op is taken only once no process can still precede it", file="harness/checks/stream.py",
           old="        ready = _END if final or not active else min(s.last for s in active)",
           new="        ready = _END", tests=STREAM),
    # judge and history
    Mutant(rule="judge: a load process that wrote no history makes it incomplete", file="harness/judge.py",
           old="    if len(history.workers) < expected:", new="    if False:", tests=JUDGE),
    Mutant(rule="judge: a load process that crashed makes it incomplete", file="harness/judge.py",
           old="    if code not in (None, 0):", new="    if False:", tests=JUDGE),
    Mutant(rule="history, version 4: a block's odd last record goes on from its own parity's running sum",
           file="harness/history/format.py",
           old="(out[word, even - 2:even - 1] if even else np.uint64(0))",
           new="(out[word, even - 1:even] if even else np.uint64(0))",
           tests=HISTORY),
    Mutant(rule="history, version 4: a record's fields are read from their bytes of its first word",
           file="harness/history/blocks.py", old='"code": (0, 8, 0xFF, "u1")', new='"code": (0, 0, 0xFF, "u1")',
           tests=HISTORY),
    Mutant(rule="history, version 5: an op row's t0 is its t1 less the latency stored",
           file="harness/history/format.py",
           old="np.subtract(ops_out[3], got[3], out=ops_out[2])", new="np.add(ops_out[3], got[3], out=ops_out[2])",
           tests=HISTORY),
    Mutant(rule="history, version 5: op rows take the ids their block's invokes leave",
           file="harness/history/opblocks.py", old="            op_ids = np.flatnonzero(free)\n",
           new="            op_ids = np.arange(n_ops)\n", tests=HISTORY),
    Mutant(rule="history, version 5: a batch is handed over in the order answered, whatever the file's order",
           file="harness/history/opblocks.py",
           old="(answered[1:] < answered[:-1]).any():  # the writer keeps them in order",
           new="False:  # the writer keeps them in order", tests=HISTORY),
    Mutant(rule="history, version 5: a block's invokes take ids of their own block",
           file="harness/history/opblocks.py", old="bad = (ids < starts[block]) | (ids >= ends[block])",
           new="bad = ids < first_id", tests=HISTORY),
    Mutant(rule="history, version 5: an op row's kind and key string are checked",
           file="harness/history/opblocks.py",
           old="        if n_ops and (int(o_kind.max()) >= kinds",
           new="        if False and (int(o_kind.max()) >= kinds", tests=HISTORY),
    Mutant(rule="history, version 5: no op row follows the footer", file="harness/history/opblocks.py",
           old="if after < len(data.op_firsts) and", new="if False and", tests=HISTORY),
    Mutant(rule="history, version 5: damage in an op row keeps the op rows before it",
           file="harness/history/opblocks.py",
           old="ops = damage.ops if damage.ops is not None else self._ops_before(data, records)", new="ops = 0",
           tests=HISTORY),
    Mutant(rule="history, version 5: nothing after a footer read in an earlier batch is kept",
           file="harness/history/opblocks.py", old="if not len(head) or self.footer is not None:",
           new="if not len(head):", tests=HISTORY),
    Mutant(rule="history, version 5: a torn last block makes the history incomplete",
           file="harness/history/opblocks.py",
           old="        if len(payload) < length:", new="        if False:", tests=HISTORY),
    Mutant(rule="history, version 5: a block whose CRC-32 does not match ends the readable part",
           file="harness/history/opblocks.py", old="if fmt._frame_crc_v5(n, m, payload) != crc:", new="if False:",
           tests=HISTORY),
    Mutant(rule="history: a batch of records is handed over in the order answered", file="harness/history/records.py",
           old="            if len(answered) > 1 and (answered[1:] < answered[:-1]).any():\n",
           new="            if False:\n", tests=HISTORY),
    Mutant(rule="history: damage keeps every record before it", file="harness/history/records.py",
           old="                self.block(self._head(data, damage.record - base), base, True, emit)\n",
           new="                pass\n", tests=HISTORY + JUDGE),
    Mutant(rule="history: a file without a footer is incomplete", file="harness/history/records.py",
           old='                self.problem = "no footer (the worker did not finish writing)"',
           new="                pass", tests=HISTORY),
    Mutant(rule="history: an op invoked and never completed is indeterminate", file="harness/history/records.py",
           old="        self.never_completed(emit)\n", new="", tests=HISTORY),
    Mutant(rule="history, version 4: a torn last block makes the history incomplete", file="harness/history/blocks.py",
           old="        if len(payload) < length:", new="        if False:",
           tests=HISTORY),
    Mutant(rule="history, version 4: a block whose CRC-32 does not match ends the readable part",
           file="harness/history/blocks.py", old="if fmt._frame_crc(n, payload) != crc:", new="if False:",
           tests=HISTORY),
    Mutant(rule="history: a torn block loses only itself (the blocks before it are read)",
           file="harness/history/blocks.py",
           old='problem = f"the block at byte {offset} {got}; every block before it was read"',
           new='problem, frames, size = f"the block at byte {offset} {got}", [], 0', tests=HISTORY),
    Mutant(rule="history: a block decoded ahead is handed over in order, with the blocks that name its damage",
           file="harness/history/blocks.py", tests=HISTORY,
           old="                    self._hand_over(done)\n                    if done",
           new="                    if done"),
    Mutant(rule="history: a block's records are whole when written (a failed write is continued, not redone)",
           file="harness/history/writer.py", old="            if buf:\n                del buf[:]\n", new="",
           tests=HISTORY),
    # shipping while the run goes
    Mutant(rule="shipping: the master takes a chunk only at the offset of the bytes it holds",
           file="harness/load/shipping.py", old="if offset != f.held:", new="if False:", tests=SHIPPING),
    Mutant(rule="shipping: the master takes a chunk only with its SHA-256",
           file="harness/load/shipping.py", old='if hashlib.sha256(data).hexdigest() != part.get("sha256"):',
           new="if False:", tests=SHIPPING),
    Mutant(rule="shipping: a refused file takes nothing more (its copy stays a prefix)",
           file="harness/load/shipping.py", old='f.refused = why = f"{name}: {taken}"', new='why = f"{name}: {taken}"',
           tests=SHIPPING),
    Mutant(rule="shipping: a worker has at most a window of chunks unacknowledged",
           file="harness/load/shipping.py",
           old="if len(self._unacked) >= self.window_chunks or self._unacked_bytes + n > self.window_bytes:",
           new="if False:", tests=SHIPPING),
    Mutant(rule="shipping: ... and of bytes", file="harness/load/shipping.py",
           old=" or self._unacked_bytes + n > self.window_bytes:", new=":", tests=SHIPPING),
    Mutant(rule="shipping: text files go in whole lines while the run goes", file="harness/load/shipping.py",
           old='        if out.how == "lines" and not final:', new="        if False:", tests=SHIPPING),
    Mutant(rule="shipping: a file that shrinks was rewritten and is named", file="harness/load/shipping.py",
           old="        if size < out.sent:", new="        if False:", tests=SHIPPING),
    Mutant(rule="shipping: the master appends, never replaces, after the first chunk", file="harness/load/shipping.py",
           old='with open(f.path, "ab" if f.held else "wb") as out:', new='with open(f.path, "wb") as out:',
           tests=SHIPPING),
    Mutant(rule="shipping: the manifest is checked", file="harness/load/shipping.py",
           old='            elif held != want.get("bytes") or sha != want.get("sha256"):',
           new="            elif False:", tests=SHIPPING),
    Mutant(rule="shipping: an ack that frees a full window sends more at once", file="harness/load/distributed.py",
           old="            if self.shipper.blocked:\n                self._wake.set()", new="            pass",
           tests=SHIPPING),
    Mutant(rule="retries: after an uncertain attempt, a refusal (409 in progress, 429) is indeterminate",
           file="harness/targets/__init__.py", old="(exactly_once and done.outcome is Outcome.OK)",
           new="(exactly_once and done.outcome is not Outcome.INDETERMINATE)", tests=RETRIES),
    Mutant(rule="detection: uncertain ops hide as many acknowledged ops as their amounts cover",
           file="harness/checks/detection.py", old="    masked = hidden(ok_amounts, uncertain_amounts)",
           new="    masked = uncertain", tests=POWER),
    Mutant(rule="dynamodb: a retried op is ok only if every earlier attempt was refused",
           file="harness/targets/dynamodb.py", old="if all(a is False for a in earlier):", new="if True:",
           tests=("tests/unit/test_dynamodb_ops.py",)),
    # faults are evidence
    Mutant(rule="reasons: answers differing only in what they quote are one reason", file="harness/cost.py",
           old="        error = error.split(quote, 1)[0]", new="        pass", tests=("tests/unit/test_cost.py",)),
    Mutant(rule="preflight: an answer that arrived and could not be read stops the run", file="harness/preflight.py",
           old="    if last.outcome is Outcome.INDETERMINATE and unread is None:",
           new="    if last.outcome is Outcome.INDETERMINATE:", tests=("tests/unit/test_preflight.py",)),
    Mutant(rule="preflight: a refused op stops the run unless a refusal is expected", file="harness/preflight.py",
           old="    if last.outcome is Outcome.FAIL and refusal_expected:",
           new="    if last.outcome is Outcome.FAIL:", tests=("tests/unit/test_preflight.py",)),
    Mutant(rule="faults: a run whose planned faults did not all happen cannot pass",
           file="harness/faults/outcomes.py",
           old='    return "unknown", why if verdict == "pass" else f"{reason}; {why}"',
           new='    return verdict, why if verdict == "pass" else f"{reason}; {why}"', tests=FAULTS + JUDGE),
    Mutant(rule="faults: a fail stays a fail whatever the faults did", file="harness/faults/outcomes.py",
           old='    if verdict == "fail" or not missed:', new="    if not missed:", tests=FAULTS + JUDGE),
    Mutant(rule="faults: a fault whose heal raised did not go as planned", file="harness/faults/outcomes.py",
           old='AS_PLANNED: frozenset[Status] = frozenset({"healed", "open"})',
           new='AS_PLANNED: frozenset[Status] = frozenset({"healed", "open", "heal-error"})', tests=FAULTS),
    Mutant(rule="faults: a partition whose failover never happened did not go as planned",
           file="harness/faults/outcomes.py",
           old='            failed_over = "promoted" not in end or end["promoted"] is not None',
           new="            failed_over = True", tests=FAULTS),
    Mutant(rule="faults, version 1: windows are matched to planned faults in the order they were planned",
           file="harness/faults/outcomes.py",
           old="    order = sorted(range(len(planned)), key=lambda i: planned[i].at)",
           new="    order = list(range(len(planned)))", tests=FAULTS),
    Mutant(rule="judge: the planned faults are part of the verdict", file="harness/judge.py",
           old="    verdict, reason = with_faults(report.verdict, reason, faults)\n",
           new="    verdict = report.verdict\n", tests=JUDGE),
    Mutant(rule="config: a fault planned at the load's end is refused", file="harness/config/scenario.py",
           old="if f.at >= self.load.duration)", new="if f.at > self.load.duration)", tests=LATE),
    Mutant(rule="nemesis: no fault opens once the load is over", file="harness/faults/nemesis.py",
           old="                elif not self._load_ended():", new="                else:", tests=NEMESIS),
    Mutant(rule="nemesis: a window that never opened is never healed", file="harness/faults/nemesis.py",
           old="                    if i in self._open:", new="                    if True:", tests=NEMESIS),
    Mutant(rule="nemesis: a fault never opened is recorded with why", file="harness/faults/nemesis.py",
           old="                if i not in self._tried:\n                    self._not_opened(i)\n",
           new="                pass\n", tests=NEMESIS),
    # the reference service's idempotency keys (the IETF draft's rules)
    Mutant(rule="idempotency: a repeat of a key in progress is refused (409), never applied as well",
           file="harness/service/stores/memory.py", old="        if token not in self._keys:\n",
           new="        if token not in self._keys or isinstance(self._keys[token], Claim):\n", tests=SERVICE_UNIT),
    Mutant(rule="idempotency: an op applies only while its claim holds (a resolve in progress fences it)",
           file="harness/service/stores/memory.py",
           old="            if self._keys.get(claim.token) != claim:\n                raise Fenced",
           new="            if False:\n                raise Fenced", tests=SERVICE_UNIT),
    Mutant(rule="idempotency: a resolve of a key in progress fences it, not only answers 'not applied'",
           file="harness/service/stores/memory.py", old="        if isinstance(state, int):\n            return state",
           new="        if isinstance(state, Claim):\n            return None\n        if isinstance(state, int):\n"
               "            return state", tests=SERVICE_UNIT),
    Mutant(rule="idempotency: an op that failed without applying frees its key for a retry",
           file="harness/service/stores/__init__.py", old="        await _release(store, claim)\n        raise",
           new="        raise", tests=SERVICE_UNIT),
    Mutant(rule="idempotency: a failure releases only the request's own claim (an op that applied stays done)",
           file="harness/service/stores/memory.py", old="        if self._keys.get(claim.token) == claim:",
           new="        if claim.token in self._keys:", tests=SERVICE_UNIT),
    Mutant(rule="idempotency (redis): a repeat of a key in progress answers 409 in progress",
           file="harness/service/stores/redis.py",
           old="if string.sub(state, 1, 6) == 'claim:' then return redis.error_reply('INPROGRESS') end",
           new="if string.sub(state, 1, 6) == 'claim:' then return redis.error_reply('FENCED') end", tests=REPEAT),
    Mutant(rule="idempotency (redis): an op applies only while its claim holds", file="harness/service/stores/redis.py",
           old="if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('FENCED') end",
           new="if redis.call('GET', KEYS[2]) == 'never' then return redis.error_reply('FENCED') end", tests=FENCE),
    Mutant(rule="idempotency (redis): a failure releases only the request's own claim",
           file="harness/service/stores/redis.py",
           old="if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
           new="redis.call('DEL', KEYS[1])", tests=FAILURE),
    Mutant(rule="idempotency (redis): a fence never expires", file="harness/service/stores/redis.py",
           old="redis.call('SET', KEYS[1], 'fenced')", new="redis.call('SET', KEYS[1], 'fenced', 'EX', 86400)",
           tests=EXPIRY),
    Mutant(rule="idempotency (redis): the record of an applied key never expires",
           file="harness/service/stores/redis.py",
           old="redis.call('SET', KEYS[2], v)", new="redis.call('SET', KEYS[2], v, 'EX', 86400)", tests=EXPIRY),
    Mutant(rule="idempotency (postgres): a repeat of a key in progress answers 409 in progress",
           file="harness/service/stores/postgres.py",
           old='        if row["claim"] is not None:\n            raise InProgress',
           new="        if False:\n            raise InProgress", tests=REPEAT),
    Mutant(rule="idempotency (postgres): an op applies only while its claim holds",
           file="harness/service/stores/postgres.py", old="WHERE token = $1 AND claim = $2 RETURNING true",
           new="WHERE token = $1 AND $2::text IS NOT NULL RETURNING true", tests=FENCE),
    Mutant(rule="idempotency (postgres): a resolve of a key in progress fences it",
           file="harness/service/stores/postgres.py", old="DO UPDATE SET claim = NULL RETURNING i.value",
           new="DO UPDATE SET claim = i.claim RETURNING i.value", tests=FENCE),
    Mutant(rule="idempotency (postgres): a failure releases only the request's own claim",
           file="harness/service/stores/postgres.py", old="DELETE FROM idempotency WHERE token = $1 AND claim = $2",
           new="DELETE FROM idempotency WHERE token = $1 AND (claim = $2 OR true)", tests=FAILURE),
    Mutant(rule="idempotency: a repeat in progress says so, distinct from fenced and sold out",
           file="harness/service/app.py",
           old='await _reply(send, 409, {"error": "a request with this idempotency key is still in progress"})',
           new='await _reply(send, 409, {"error": "this idempotency key was resolved as not applied"})', tests=REPEAT),
    Mutant(rule="config: idempotency keys over the reference service's DynamoDB store are refused",
           file="harness/targets/http.py",
           old='self.contract.idempotency is not None and self.service.store == "dynamodb":', new="False:",
           tests=("tests/unit/test_config.py::test_idempotency_keys_over_the_reference_services_dynamodb_store_are_"
                  "refused",)),
    # no server outlives counterbench (the reaper)
    Mutant(rule="reaper: a group id that now leads another group (its leader started at another time) is never "
                "killed", file="harness/stack/reaper.py", old="if leader is not None and leader.start != start:",
           new="if False:", tests=REAPER),
    Mutant(rule="reaper: the token counts only as a whole environment entry", file="harness/stack/reaper.py",
           old='return f"{TOKEN_ENV}={token}".encode() in environ.split(b"\\0")',
           new='return f"{TOKEN_ENV}={token}".encode() in environ', tests=REAPER),
    Mutant(rule="reaper: everything below a victim is a victim (setsid'd backends)", file="harness/stack/reaper.py",
           old="pids, todo = set(roots), list(roots)", new="pids, todo = set(roots), []", tests=REAPER),
    Mutant(rule="reaper: a forgotten group is dropped", file="harness/stack/reaper.py",
           old="self.groups.pop(int(word[1:]), None)", new="pass", tests=REAPER),
    Mutant(rule="reaper: a group seen empty is dropped (before its id is reused)", file="harness/stack/reaper.py",
           old="[g for g in self.groups if not exists(g)]", new="[g for g in self.groups if exists(g)]", tests=REAPER),
    Mutant(rule="stopping: spawn tells the reaper of each child's process group", file="harness/core/stopping.py",
           old="    LIFELINE.watch(proc.pid)\n", new="", tests=REAPER),
    Mutant(rule="lifeline: every spawned child carries the token", file="harness/stack/lifeline.py",
           old="return {**(os.environ if env is None else env), reaper.TOKEN_ENV: self.token}",
           new="return dict(os.environ if env is None else env)", tests=REAPER),
    Mutant(rule="lifeline: the reaper is started before the first child", file="harness/stack/lifeline.py",
           old="if self._proc is None and not self._failed:", new="if False:", tests=REAPER),
    Mutant(rule="lifeline: a normal exit waits until the reaper is gone", file="harness/stack/lifeline.py",
           old="self._proc.wait(timeout=5)", new="pass", tests=REAPER),
    Mutant(rule="process: a server killed by a fault is forgotten", file="harness/stack/process.py",
           old="            forget(self._proc)  # before the wait: once waited for, its pid may be another's\n", new="",
           tests=REAPER),
    Mutant(rule="process: a stopped server is forgotten", file="harness/stack/process.py",
           old="            forget(self._proc)\n", new="", tests=REAPER),
    # partitions (Redis)
    Mutant(rule="partition: every server's link to the isolated node (its peer proxy) goes silent",
           file="harness/stack/redis_sentinel.py", old="        return [node.peer, *leading, *sides]",
           new="        return [*leading, *sides]", tests=PARTITION_STALLS),
    Mutant(rule="partition: a replica's first link to the isolated primary (its replication proxy) goes silent",
           file="harness/stack/redis_sentinel.py",
           old='        leading = [p for p in self.replication_proxies if p.upstream == ("127.0.0.1", isolated.port)]',
           new="        leading = []", tests=PARTITION_STALLS),
    Mutant(rule="partition: clients split cuts one side of the load's paths, not both",
           file="harness/stack/redis_sentinel.py", old='"split": node.clients[1:]', new='"split": node.clients',
           tests=PARTITION_STALLS),
    Mutant(rule="partition: clients keep cuts none of the load's paths", file="harness/stack/redis_sentinel.py",
           old='{"keep": (),', new='{"keep": node.clients,', tests=PARTITION_STALLS),
    Mutant(rule="partition: the heal un-stalls what the window stalled", file="harness/stack/redis_sentinel.py",
           old="        self._partitioned, self._isolated = cut, isolated\n",
           new="        self._partitioned, self._isolated = [], isolated\n",
           tests=(f"{ROUTES}::test_the_heal_unstalls_exactly_what_the_partition_stalled",)),
    Mutant(rule="partition: one at a time", file="harness/stack/redis_sentinel.py",
           old="        if self._partitioned:  #", new="        if False:  #",
           tests=(f"{ROUTES}::test_one_partition_at_a_time",)),
    Mutant(rule="partition: each node is known to the others by its peer proxy",
           file="harness/stack/redis_sentinel.py",
           old='"replica-announce-port": str(peer_port),', new='"replica-announce-port": "0",',
           tests=(f"{ROUTES}::test_every_node_is_known_to_the_others_by_its_peer_proxy",)),
    Mutant(rule="min-replicas: set on every node, so a promoted replica keeps it",
           file="harness/stack/redis_sentinel.py",
           old='        settings["min-replicas-to-write"], settings["min-replicas-max-lag"] = map(str, min_replicas)',
           new="        pass",
           tests=(f"{ROUTES}::test_min_replicas_is_set_on_every_node_so_a_promoted_replica_keeps_it",)),
    Mutant(rule="routes: each side takes its own path", file="harness/targets/resp.py",
           old="                path = r.paths[self.side % len(r.paths)]", new="                path = r.paths[0]",
           tests=(f"{ROUTES}::test_each_side_takes_its_own_path_to_the_server_the_sentinel_names",)),
    Mutant(rule="routes: a server with no route is refused, not reached by the servers' own link",
           file="harness/targets/resp.py",
           old='        raise ConnectionError(f"no route to {host}:{port}, which the Sentinel named (routes to "',
           new='        return host, port\n        raise ConnectionError(f"no route to {host}:{port}, which the '
               'Sentinel named (routes to "',
           tests=(f"{ROUTES}::test_a_server_without_a_route_is_refused_not_reached_by_the_servers_own_link",)),
    Mutant(rule="routes: a route leads to a loopback address unless remote targets are allowed",
           file="harness/targets/resp.py", old="                return self._safe(*path)",
           new="                return path", tests=(f"{ROUTES}::test_a_route_must_lead_to_a_loopback_address_too",)),
    Mutant(rule="routes: the users of a load process alternate between the sides", file="harness/targets/redis.py",
           old='address = address.on_side(next(ctx.shared("redis-sides", itertools.count)))',
           new="address = address.on_side(0)",
           tests=(f"{ROUTES}::test_users_of_a_load_process_alternate_between_the_sides",)),
    Mutant(rule="config: a partition needs the local replicated Redis (not target.url)",
           file="harness/targets/redis.py",
           old='if any(f.action == "partition" for f in scenario.faults) and (self.url or not self.replicas):',
           new="if False:", tests=(f"{ROUTES}::test_a_partition_needs_the_local_replicas_and_sentinels",)),
    Mutant(rule="proxy: a stalled path delivers nothing, on open and new connections", file="harness/stack/proxy.py",
           old="        self._stalled = on  #", new="        self._stalled = False  #",
           tests=(f"{PROXY_STALL}::test_a_stalled_path_holds_the_bytes_of_open_and_new_connections_until_it_flows",)),
    Mutant(rule="proxy: held connections wait on an event, not by polling", file="harness/stack/proxy.py",
           old="                if self._flowing.is_set():", new="                if True:",
           tests=(f"{PROXY_STALL}::test_held_connections_wait_without_spinning",)),
    # partitions (PostgreSQL under Patroni)
    Mutant(rule="patroni: the old leader rejoins by pg_rewind", file="harness/stack/patroni_node.py",
           old='"use_pg_rewind": True,', new='"use_pg_rewind": False,', tests=PATRONI),
    Mutant(rule="patroni: a node reaches etcd only through its link, never etcd's own address",
           file="harness/stack/patroni_node.py", old='"protocol": "http", "use_proxies": True}',
           new='"protocol": "http", "use_proxies": False}', tests=PATRONI),
    Mutant(rule="patroni: the other nodes reach a node's PostgreSQL only through its link",
           file="harness/stack/patroni_node.py", old='"connect_address": f"127.0.0.1:{pg_link}"',
           new='"connect_address": f"127.0.0.1:{pg_port}"', tests=PATRONI),
    Mutant(rule="patroni: synchronous_mode reaches Patroni", file="harness/stack/patroni_node.py",
           old='"synchronous_mode": self.synchronous_mode,', new='"synchronous_mode": False,', tests=PATRONI),
    Mutant(rule="partition: the isolated leader loses etcd", file="harness/stack/patroni.py",
           old="self._silenced = [links.etcd, links.postgres,", new="self._silenced = [links.postgres,",
           tests=PATRONI),
    Mutant(rule="partition: clients cut silences the service's link to the leader too", file="harness/stack/patroni.py",
           old='*([links.client] if clients == "cut" else [])', new="*([])", tests=PATRONI),
    Mutant(rule="config: clients split is refused for the reference service (one pool)", file="harness/targets/http.py",
           old='if f.clients == "split":', new="if False:", tests=PATRONI),
    Mutant(rule="config: a Patroni cluster is a replicated store", file="harness/targets/http.py",
           old="return bool(self.replicas) or self.patroni is not None", new="return bool(self.replicas)",
           tests=PATRONI),
    # the online checks: a prefix's findings are the whole history's
    Mutant(rule="online: a read is judged only once the watermark has passed its answer",
           file="harness/checks/stream.py", old="                folds.order.judge_before(watermark)",
           new="                folds.order._judge_reads(None)", tests=ONLINE),
    Mutant(rule="online: an op is taken only once every process has written ops answered after it",
           file="harness/checks/stream.py",
           old="        ready = _END if final or not active else min(s.last for s in active)",
           new="        ready = _END if final or not active or eager else min(s.last for s in active)", tests=ONLINE),
    Mutant(rule="online: the stream starts only once every load process's header is in",
           file="harness/checks/online.py",
           old="        if len(readers) < self.expected or any(r is None for r in readers):",
           new="        if not readers or any(r is None for r in readers):", tests=ONLINE),
    Mutant(rule="online: a block not yet whole is read at the next poll, not taken as damage",
           file="harness/history/follow.py",
           old="                if got is None or got == TORN:",
           new="                if got is None:", tests=ONLINE),
    Mutant(rule="metrics: ops are service-time tags only (an open-model tag is the same op again)",
           file="harness/metrics/exporter.py",
           old="                if t.measure == SERVICE:\n                    counts",
           new="                if True:\n                    counts", tests=EXPORTER),
    Mutant(rule="metrics: over several load processes, a percentile is the worst process's",
           file="harness/metrics/exporter.py",
           old="worst[k] = max(worst.get(k, 0.0), float(figures[name]))", new="worst[k] = float(figures[name])",
           tests=EXPORTER),
    # comparisons across repeated runs
    Mutant(rule="compare: a difference's interval has the exact Mann-Whitney coverage",
           file="harness/report/stats.py", old="k, cov = u + 1, c", new="k, cov = u + 2, c", tests=STATS),
    Mutant(rule="compare: a difference within the noise band is not called", file="harness/report/stats.py",
           old="    if llo > upper or lhi < lower:", new="    if llo > 0 or lhi < 0:", tests=STATS),
    Mutant(rule="compare: a median's interval covers at least 95%", file="harness/report/stats.py",
           old="best_j, best_cov = j, cov", new="best_j, best_cov = j + 1, cov", tests=STATS),
)


# One per worker: a Python that has paid for the heavy imports (numpy, pydantic, pytest) once and forks a
# child per mutant, which imports the mutated copy's own harness (it never imported harness itself).
_FORKER = r"""
import os, signal, sys
import numpy, pydantic, pytest, yaml  # noqa: F401
for line in sys.stdin:
    root, out, timeout, *tests = line.rstrip("\n").split("\t")
    pid = os.fork()
    if pid == 0:
        signal.alarm(int(float(timeout)))  # a hung copy dies uncaught, as a timed-out subprocess would
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(root)
        sys.path.insert(0, root)
        import harness
        print("HARNESS", harness.__file__, flush=True)
        code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
        sys.stdout.flush()
        os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class _Forker:
    """A forking runner of mutants' tests (see ``_FORKER``); one mutant at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _FORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=tempfile.gettempdir())

    def run(self, root: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        out = root / "pytest.out"
        self.proc.stdin.write("\t".join([str(root), str(out), str(timeout), *tests]) + "\n")
        self.proc.stdin.flush()
        code = int(self.proc.stdout.readline() or 2)
        return code, out.read_text() if out.exists() else ""

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run(mutant: Mutant, *, timeout: float = 120, forker: _Forker | None = None) -> tuple[bool, str]:
    """Apply the mutant to a copy of the code and run its tests; (caught, output)."""
    with tempfile.TemporaryDirectory(prefix="counterbench-mutant-") as tmp:
        root = Path(tmp)
        for part in ("harness", "tests"):
            shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
        target = root / mutant.file
        text = target.read_text()
        if text.count(mutant.old) != 1:
            return False, f"the mutant's text is found {text.count(mutant.old)} times in {mutant.file}: update it"
        target.write_text(text.replace(mutant.old, mutant.new))
        if forker is not None:
            code, out = forker.run(root, mutant.tests, timeout)
        else:
            proc = subprocess.run(
                [sys.executable, "-c", "import sys, harness, pytest; print('HARNESS', harness.__file__, flush=True); "
                 "sys.exit(pytest.main(['-x', '-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))", *mutant.tests],
                cwd=root, capture_output=True, text=True, timeout=timeout, check=False)
            code, out = proc.returncode, proc.stdout + proc.stderr
        if f"HARNESS {root}" not in out:
            return False, f"the copy did not import its own harness: {out[:500]}"
        return code == 1, out  # 1: a test failed (2 and up: the copy did not even run)


def run_all(mutants: tuple[Mutant, ...] = MUTANTS, *, workers: int = 2) -> list[tuple[Mutant, bool, str]]:
    """Every mutant, ``workers`` at a time, each worker with its own forking runner."""
    import queue

    forkers: queue.Queue[_Forker] = queue.Queue()
    made = [_Forker() for _ in range(workers)]
    for f in made:
        forkers.put(f)

    def one(m: Mutant) -> tuple[bool, str]:
        f = forkers.get()
        try:
            return run(m, forker=f)
        finally:
            forkers.put(f)

    try:
        with ThreadPoolExecutor(workers) as pool:
            return [(m, *r) for m, r in zip(mutants, pool.map(one, mutants), strict=True)]
    finally:
        for f in made:
            f.close()


if __name__ == "__main__":
    results = run_all()
    for m, caught, _ in results:
        print(f"{'caught  ' if caught else 'SURVIVED'}  {m.rule}")
    sys.exit(0 if all(c for _, c, _ in results) else 1)
