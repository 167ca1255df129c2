"""realtime-order and reads as a fold: a key's ops taken in chunks in the order they were answered, with
only a window of the recent ones kept.

Chunks come in order of arrival (an op's answer, on one timeline; ``harness.checks.stream``), so when an op
is taken every op answered before it was sent has been taken already: "the highest value answered before
t" is a running maximum over the window, and what left the window is summed up in a few numbers (its
highest value, how many acknowledged writes, how many writes were sent). A read is judged once nothing
still out can have been sent before its answer (the *watermark*, the earliest invoke of any op not yet
taken, has passed it); writes sent after its answer keep narrowing it until then.

The window is kept whole while it is small (``WINDOW``): a history of fewer ops is judged as the
in-memory checks judge it, witness for witness. Past that, ops the watermark has passed leave it, and a
witness is one the window still holds -- a valid witness, though perhaps not the one the in-memory checks
name; and a read already judged that a later write shows ahead is counted once, as at least one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checks.model import EVIDENCE_CAP
from harness.checks.timed import NEVER

LOW = -(1 << 62)  # no value: below every value
HIGH = 1 << 62  # no bound: above every value
WINDOW = 1 << 16  # ops kept before any leaves the window

Cols = dict[str, Any]  # columns of ops: u (value turned to go up), inv, cmp, seq, worker, op, ...


def _cat(a: Cols | None, b: Cols) -> Cols:
    return b if a is None or not len(a["seq"]) else {k: np.concatenate([a[k], b[k]]) for k in b}


def _take(c: Cols, which: Any) -> Cols:
    return {k: v[which] for k, v in c.items()}


def _one(c: Cols, i: int) -> dict[str, int]:
    """One op's fields (its process is in its seq's high bits)."""
    out = {k: int(v[i]) for k, v in c.items()}
    out["worker"] = out["seq"] >> 40
    return out


def _first(c: Cols, rows: Any, *, by: str, lowest: bool = True) -> int:
    """The row of ``rows`` with the lowest (highest) ``by``, ties to the lowest seq (first in index order)."""
    vals = c[by][rows] if lowest else -c[by][rows]
    return int(rows[np.lexsort((c["seq"][rows], vals))[0]])


class OrderFold:
    """One key's ops in time, turned to go up (``initial``, ``final``: turned too; ``after``: values are
    the counter after the op)."""

    def __init__(self, *, initial: int, final: int | None, after: bool) -> None:
        self.initial, self.final, self.after = initial, final, after
        self.w: Cols | None = None  # acknowledged writes, by completion: u (LOW: no value), pm (running max)
        self.base_max, self.base_op = LOW, None  # the highest value of writes that left, and its op
        self.base_acked = 0
        self.placed: list[Any] = []  # invokes of writes not known to have failed
        self.base_placed = 0
        self.late: Cols | None = None  # writes with a value but no acknowledgement (a lookup found them)
        self.r: Cols | None = None  # reads not yet judged, by completion: rpm, lower, upper_v
        self.base_rmax, self.base_rop = LOW, None
        # realtime-order among writes, and reads going back: count, and the witness (b, a) with the lowest b
        self.order = [0, None, None]
        self.back = [0, None, None]
        # reads: counts, the first bad read by each pair of (stale counts, ahead counts), stale values by seq
        self.counts = {"stale": 0, "ahead": 0, "lost": 0}
        # by which findings count (stale, ahead, lost): they are known only at the end
        self.bad = {(s, a, lo): 0 for s in (True, False) for a in (True, False) for lo in (True, False)}
        self.first_bad: dict[tuple[bool, bool, bool], dict[str, Any]] = {}
        self.stale_values: list[tuple[int, int]] = []  # (seq, value) of the first few, by seq
        self.ahead_values: list[tuple[int, int]] = []
        self.late_ahead: dict[str, int] | None = None  # a write showing a read already judged ahead

    # --- taking a chunk -----------------------------------------------------------------------------

    def add(self, writes: Cols, reads: Cols, watermark: int | None) -> None:
        """A chunk of this key's writes (u, hv, acked, inv, cmp, seq, op) and acknowledged reads (u, inv,
        cmp, seq, op), each in order of arrival (an op's process is in its seq); ``watermark``: no op still
        to come was sent before it (None: unknown)."""
        acked = writes["acked"]
        shown = [k for k in ("inv0", "cmp0") if k in writes]  # the times a witness shows, when they differ
        start = self.w["pm"][-1] if self.w is not None and len(self.w["pm"]) else self.base_max
        # the highest value answered before each write's own answer (writes come in order of answers)
        answered = np.where(acked & writes["hv"], writes["u"], LOW)
        upto = np.maximum.accumulate(np.r_[start, answered])
        if acked.any():
            new = _take({k: writes[k] for k in ("cmp", "inv", "seq", "op", *shown)}, acked)
            new["u"] = answered[acked]
            new["pm"] = upto[1:][acked]
            self.w = _cat(self.w, new)
        hv = writes["hv"]
        valued = _take({k: writes[k] for k in ("u", "inv", "cmp", "seq", "op", *shown)}, hv) if hv.any() else None
        if valued is not None:
            self._order(valued, upto[:-1][hv])
            late = valued["cmp"] >= NEVER
            if late.any():
                self.late = _cat(self.late, _take(valued, late))
        if len(reads["seq"]):
            self._reads(reads)
        if valued is not None:
            self._narrow(valued)
        self.placed.append(writes["inv"])
        if watermark is not None and self._size() > WINDOW:
            self._judge_reads(watermark)
            self._leave(watermark)

    def _size(self) -> int:
        return sum(len(c["seq"]) for c in (self.w, self.r) if c is not None) + sum(len(p) for p in self.placed)

    def _before(self, t: Any) -> Any:
        """The highest value acknowledged writes answered before each of ``t`` (LOW: none)."""
        if self.w is None or not len(self.w["cmp"]):
            return np.full(len(t), self.base_max)
        k = np.searchsorted(self.w["cmp"], t, side="left")
        return np.where(k > 0, self.w["pm"][np.maximum(k - 1, 0)], self.base_max)

    def _acked_before(self, t: Any) -> Any:
        n = 0 if self.w is None else np.searchsorted(self.w["cmp"], t, side="left")
        return self.base_acked + n

    def _order(self, q: Cols, bound: Any) -> None:
        """realtime-order: a write sent after a higher value was answered. ``bound``: for each write, the
        highest value answered before it was (it was sent before its own answer): only a write below
        that can have been sent after a higher one was answered, so only those are looked up."""
        maybe = np.flatnonzero(bound > q["u"])
        if not len(maybe):
            return
        bad = np.zeros(len(q["u"]), dtype=bool)
        bad[maybe] = self._before(q["inv"][maybe]) > q["u"][maybe]
        n = int(bad.sum())
        if not n:
            return
        self.order[0] += n
        b = _first(q, np.flatnonzero(bad), by="u")
        if self.order[1] is None or (int(q["u"][b]), int(q["seq"][b])) < (self.order[1]["u"], self.order[1]["seq"]):
            self.order[1:] = [_one(q, b), self._answered_above(self.w, int(q["u"][b]), self.base_op)]

    @staticmethod
    def _answered_above(c: Cols | None, u: int, base: dict[str, int] | None, pm: str = "pm") -> dict[str, int] | None:
        """The op first answered with a value above ``u`` (equal answers: the lowest value, then index);
        ``pm``: the column of running maxima."""
        if c is None or not len(c[pm]) or c[pm][-1] <= u or (base is not None and base["u"] > u):
            return base
        i = int(np.searchsorted(c[pm], u, side="right"))
        ties = np.flatnonzero((c["cmp"] == c["cmp"][i]) & (c["u"] > u))
        return _one(c, _first(c, ties, by="u"))

    def _reads(self, r: Cols) -> None:
        lower_c = self.initial + self._acked_before(r["inv"])
        top = self._before(r["inv"])
        lower = np.maximum(lower_c, np.where(top > LOW, top + (0 if self.after else 1), LOW))
        new = {k: r[k] for k in ("u", "inv", "cmp", "seq", "op", "inv0", "cmp0") if k in r}
        start = self.r["rpm"][-1] if self.r is not None and len(self.r["rpm"]) else self.base_rmax
        new["rpm"] = np.maximum.accumulate(np.r_[start, r["u"]])[1:]
        new["lower"] = lower
        new["upper_v"] = np.full(len(lower), HIGH, dtype=np.int64)
        self.r = _cat(self.r, new)
        # reads going back: a read sent after a higher one was answered
        k = np.searchsorted(self.r["cmp"], r["inv"], side="left")
        seen = np.where(k > 0, self.r["rpm"][np.maximum(k - 1, 0)], self.base_rmax)
        bad = seen > r["u"]
        n = int(bad.sum())
        if n:
            self.back[0] += n
            b = _first(new, np.flatnonzero(bad), by="u")
            if self.back[1] is None or (int(r["u"][b]), int(r["seq"][b])) < (self.back[1]["u"], self.back[1]["seq"]):
                self.back[1:] = [_one(new, b), self._answered_above(self.r, int(r["u"][b]), self.base_rop, "rpm")]

    def _narrow(self, q: Cols) -> None:
        """Writes sent after a read's answer came bound it from above: where they found the counter."""
        s = q["u"] - (1 if self.after else 0)
        if self.r is not None and len(self.r["cmp"]):
            order = np.argsort(q["inv"], kind="stable")
            inv, least = q["inv"][order], np.minimum.accumulate(s[order][::-1])[::-1]
            i = np.searchsorted(inv, self.r["cmp"], side="right")
            np.minimum(self.r["upper_v"], np.where(i < len(inv), least[np.minimum(i, len(inv) - 1)], HIGH),
                       out=self.r["upper_v"])
        if self.base_rmax > LOW and int(s.min()) < self.base_rmax and self.late_ahead is None:
            self.late_ahead = _one(q, int(np.argmin(s)))  # a read already judged was ahead of this write

    # --- judging reads, and letting ops leave ---------------------------------------------------------

    def _judge_reads(self, watermark: int | None) -> None:
        """Judge the reads answered before the watermark (every read, at the end: None)."""
        if self.r is None or not len(self.r["cmp"]):
            return
        n = len(self.r["cmp"]) if watermark is None else int(np.searchsorted(self.r["cmp"], watermark, "left"))
        if not n:
            return
        r = _take(self.r, slice(0, n))
        # the first part is sorted already, each new one nearly: a stable sort (runs) merges them cheaply
        placed = np.sort(np.concatenate(self.placed), kind="stable") if self.placed else np.zeros(0, dtype=np.int64)
        self.placed = [placed]
        upper = np.minimum(self.initial + self.base_placed + np.searchsorted(placed, r["cmp"], side="right"),
                           r["upper_v"])
        stale, ahead = r["u"] < r["lower"], r["u"] > upper
        lost = r["u"] > self.final if self.final is not None else np.zeros(n, dtype=bool)
        for name, m in (("stale", stale), ("ahead", ahead), ("lost", lost)):
            self.counts[name] += int(m.sum())
        none = np.zeros(n, dtype=bool)
        for which in self.bad:
            bad = (stale if which[0] else none) | (ahead if which[1] else none) | (lost if which[2] else none)
            self.bad[which] += int(bad.sum())
            if bad.any():
                i = int(np.flatnonzero(bad)[np.argmin(r["seq"][bad])])
                known = self.first_bad.get(which)
                if known is None or int(r["seq"][i]) < known["read"]["seq"]:
                    self.first_bad[which] = self._bad_read(r, i, int(upper[i]), bool(stale[i]), bool(ahead[i]))
        self.stale_values = _earliest(self.stale_values, r, stale)
        self.ahead_values = _earliest(self.ahead_values, r, ahead)
        top = int(np.argmax(r["u"]))
        if int(r["u"][top]) > self.base_rmax:
            self.base_rmax, self.base_rop = int(r["u"][top]), _one(r, top)
        self.r = _take(self.r, slice(n, None))

    def _bad_read(self, r: Cols, i: int, upper: int, stale: bool, ahead: bool) -> dict[str, Any]:
        """A bad read, with the writes that show it: the furthest answered before it was sent, and the
        nearest sent after its answer came."""
        read = _one(r, i)
        out: dict[str, Any] = {"read": read, "lower": int(r["lower"][i]), "upper": upper,
                               "upper_v": int(r["upper_v"][i]), "stale": stale, "ahead": ahead,
                               "furthest": None, "nearest": None}
        if stale and self.w is not None:
            rows = np.flatnonzero((self.w["cmp"] < read["inv"]) & (self.w["u"] > LOW))
            if len(rows) and int(self.w["u"][rows].max()) >= self.base_max:
                out["furthest"] = _one(self.w, _first(self.w, rows, by="u", lowest=False))
            else:
                out["furthest"] = self.base_op
        elif stale:
            out["furthest"] = self.base_op
        if ahead:
            found = []
            for c in (self.w, self.late):
                if c is not None:
                    rows = np.flatnonzero((c["inv"] > read["cmp"]) & (c["u"] > LOW))
                    if len(rows):
                        found.append(_one(c, _first(c, rows, by="u")))
            if found:
                out["nearest"] = min(found, key=lambda w: (w["u"], w["seq"]))
        return out

    def _leave(self, watermark: int) -> None:
        """Writes answered before the watermark leave the window: every op still to come was sent after
        them, so they count for it as a number. Sent before it, they count for every read still to judge."""
        if self.w is not None and len(self.w["cmp"]):
            n = int(np.searchsorted(self.w["cmp"], watermark, side="left"))
            if n:
                gone = _take(self.w, slice(0, n))
                top = int(np.argmax(gone["u"]))
                if int(gone["u"][top]) > self.base_max:
                    self.base_max, self.base_op = int(gone["u"][top]), _one(gone, top)
                self.base_acked += n
                self.w = _take(self.w, slice(n, None))
        placed = np.concatenate(self.placed) if self.placed else np.zeros(0, dtype=np.int64)
        early = placed < watermark
        self.base_placed += int(early.sum())
        self.placed = [placed[~early]]

    def judge_before(self, watermark: int) -> None:
        """Judge the reads answered before the watermark now, not when the window fills (online): every write
        sent before their answer has been taken; writes still to come can only narrow them further, which
        the whole history's check then sees (so an online finding is always one offline, never the reverse)."""
        self._judge_reads(watermark)

    def finish(self) -> None:
        self._judge_reads(None)

    def listed(self, *, stale: bool = True) -> list[int]:
        """The values of the first stale (ahead) reads, by index."""
        return [u for _, u in (self.stale_values if stale else self.ahead_values)]


def _earliest(kept: list[tuple[int, int]], r: Cols, which: Any) -> list[tuple[int, int]]:
    """``kept`` and the reads ``which`` picks, as (seq, value): the first few by seq."""
    if not which.any():
        return kept
    new = zip(r["seq"][which][:EVIDENCE_CAP].tolist(), r["u"][which][:EVIDENCE_CAP].tolist(), strict=True)
    return sorted([*kept, *new])[:EVIDENCE_CAP]
