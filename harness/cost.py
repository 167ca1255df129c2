"""Cost per million acknowledged increments: a run's op mix priced from a table shipped as data.

``prices.yaml`` (next to this module, or a file of your own) has one row per price -- unit, USD, region,
source page, the date the figure is from -- and ``defaults``: the rows each target kind is costed with.
A row's unit decides how it applies:

- per million requests / WRU / RRU (API Gateway, DynamoDB on demand): every request that left the
  client is charged -- retries, reads, failed conditional writes (a ``decr_if_positive`` refused for
  want of a seat still consumes its WRU), indeterminate ops (they may have been served) -- over the
  acknowledged increments. Refusals that never reached the table (throttled, not sent) use no unit.
- WCU-hour / RCU-hour (provisioned): the same units, as if the capacity were fully used: a lower bound.
- node-hour / instance-hour (Redis, an HTTP service): each node's hourly price over the increments
  acknowledged in an hour at the SLO knee's throughput, or else the measured one (what the run drew,
  not capacity). Throughputs are ok ops/s, reads included: only the increments' share counts.

Acknowledged increments are the writes the history records ``ok`` (as the client saw them: an op a
lookup resolved after the run stays uncertain here). ``check`` counts them as it reads the history
(``MixTally``, kept in verdict.json), so a report of a billion ops does not read it again.

It is long because the op mix and its price are one model: what each unit is charged for is decided
by what the mix counts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib.resources import as_file, files
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import numpy as np
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass as checked_dataclass

from harness.config.files import _format_errors  # the project's one way of naming file:line: key
from harness.config.scenario import TARGET_KINDS
from harness.core.errors import ConfigError, HistoryError, RunFolderError
from harness.core.ops import UNSENT_REASONS, Outcome
from harness.core.runfolder import RunFolder
from harness.core.yamlsrc import load_yaml
from harness.history import KINDS, OUTCOMES, OpColumns, StringLookup, read_history

SHIPPED = "prices.yaml"
Unit = Literal["million requests", "million WRU", "million RRU", "WCU-hour", "RCU-hour", "node-hour", "instance-hour"]
_PER_MILLION: frozenset[str] = frozenset({"million requests", "million WRU", "million RRU"})
_WRITE_UNITS, _READ_UNITS = frozenset({"million WRU", "WCU-hour"}), frozenset({"million RRU", "RCU-hour"})
_NODE_UNITS = frozenset({"node-hour", "instance-hour"})
_SHORT = {u: "h" if u in _NODE_UNITS else u.replace("million ", "M ") for u in get_args(Unit)}


def _date_text(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v  # an unquoted 2025-01-31 is a YAML date


@checked_dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Price:
    """One row of the price table."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")]
    what: str
    unit: Unit
    usd: Annotated[float, Field(gt=0, strict=True)]  # per unit; a quoted "3.50" is refused, not read
    region: str
    source: Annotated[str, Field(pattern=r"^https?://\S+$")]
    checked: Annotated[str, BeforeValidator(_date_text), Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$")]
    label: str | None = None  # a short name for the cost basis (default: the id)
    tier: str | None = None
    request_units: dict[str, Annotated[float, Field(ge=0, strict=True)]] | None = None
    item_kb: float | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _units(self) -> Price:
        need = ("write",) if self.unit in _WRITE_UNITS else \
            ("strongly_consistent_read", "eventually_consistent_read") if self.unit in _READ_UNITS else ()
        missing = [k for k in need if k not in (self.request_units or {})]
        if missing:
            raise ValueError(f"a {self.unit!r} row needs request_units: {', '.join(missing)}")
        return self

    @property
    def name(self) -> str:
        return self.label or self.id


@checked_dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class _PriceFile:
    schema_version: Literal[1]
    prices: tuple[Price, ...]  # none at all is refused after validation (min_length would repeat a row's error)
    defaults: dict[str, Annotated[tuple[str, ...], Field(min_length=1)]]
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Prices:
    """A validated price table: rows by id, and the rows each target kind is costed with by default."""

    path: Path
    rows: Mapping[str, Price]
    defaults: Mapping[str, tuple[str, ...]]
    shipped: bool = False  # counterbench's own table (not a file of the user's)

    def __getitem__(self, price_id: str) -> Price:
        try:
            return self.rows[price_id]
        except KeyError:
            raise ConfigError(f"{self.path}: no price row with id {price_id!r}; known: "
                              f"{', '.join(sorted(self.rows))}") from None


def load_prices(path: Path | None = None) -> Prices:
    """The shipped price table, or ``path``'s; every problem is a ConfigError naming file, line and key."""
    if path is None:
        with as_file(files("harness").joinpath(SHIPPED)) as shipped:
            return dataclasses.replace(_load(Path(shipped)), shipped=True)
    return _load(Path(path))


def _load(path: Path) -> Prices:
    data, smap = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping with schema_version, prices and defaults")
    try:
        parsed = TypeAdapter(_PriceFile).validate_python(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, data, smap)) from None
    rows: dict[str, Price] = {}
    problems = [] if parsed.prices else [f"{path}:{smap.line_of(('prices',))}: prices: no price rows"]
    for i, row in enumerate(parsed.prices):
        if row.id in rows:
            problems.append(f"{path}:{smap.line_of(('prices', i, 'id'))}: prices.{i}.id: {row.id!r} is a second row "
                            "with that id")
        rows.setdefault(row.id, row)
    for kind, ids in parsed.defaults.items():
        if kind not in TARGET_KINDS:
            problems.append(f"{path}:{smap.line_of(('defaults', kind))}: defaults.{kind}: not a target kind "
                            f"(known: {', '.join(sorted(TARGET_KINDS))})")
        problems += [f"{path}:{smap.line_of(('defaults', kind, j))}: defaults.{kind}.{j}: no price row with id {p!r}"
                     for j, p in enumerate(ids) if p not in rows]
    if problems:
        raise ConfigError("\n".join(problems))
    return Prices(path=path, rows=rows, defaults=dict(parsed.defaults))


# --- what a run sent ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class OpMix:
    """What a run sent, by what it costs. Writes are ``incr`` and ``decr_if_positive`` ops."""

    acked: int  # acknowledged writes (ok): the increments the cost is per
    failed: int = 0  # failed writes, every reason
    failed_conditional: int = 0  # of them: refused by the store's condition (no seat left), a write served
    unsent: int = 0  # of them: refused before they left the client (connection refused, read before write failed)
    indeterminate: int = 0  # writes that may or may not have been applied (served, as far as billing goes)
    write_retries: int = 0  # attempts beyond the first, of every write
    reads: int = 0  # read ops, every outcome
    reads_ok: int = 0
    reads_failed: int = 0  # refused or never sent: no read unit consumed
    read_retries: int = 0
    consistent_reads: bool = True  # DynamoDB GetItem ConsistentRead
    reads_before_writes: int = 0  # DynamoDB's unsafe variants read the item (strongly consistent) before each write
    duration_s: float = 0.0  # the load's span, first invoke to last completion
    ok_per_s: float | None = None  # acknowledged ops per second, reads included
    nodes: int = 1  # servers a node price is paid for: a Redis primary and its replicas
    local: bool = False  # the target ran on the run's own machine: its throughput is not the priced node's
    complete: bool = True  # every load process's history was read whole

    def __post_init__(self) -> None:
        if min(getattr(self, f) for f in (*_COUNTS, "reads_before_writes", "duration_s")) < 0 or self.nodes < 1:
            raise ValueError(f"an op mix counts nothing below zero and at least one node: {self}")
        if self.failed_conditional + self.unsent > self.failed or self.reads_ok + self.reads_failed > self.reads:
            raise ValueError("failed_conditional and unsent are failed writes; reads_ok and reads_failed are reads")

    @property
    def write_requests(self) -> int:
        """Write requests that left the client, retries included."""
        return self.acked + self.failed - self.unsent + self.indeterminate + self.write_retries

    @property
    def writes_served(self) -> int:
        """Write requests the store served or may have (a capacity unit each): acknowledged, indeterminate,
        refused by their condition, and every retry (an upper bound: a throttled attempt consumes none)."""
        return self.acked + self.indeterminate + self.failed_conditional + self.write_retries

    @property
    def reads_served(self) -> int:
        return self.reads - self.reads_failed + self.read_retries

    @property
    def requests(self) -> int:
        """Every request that left the client, reads and retries included."""
        return self.write_requests + self.reads_served


_READ, _DECR = KINDS.index("read"), KINDS.index("decr_if_positive")
_OK, _FAIL, _IND = (OUTCOMES.index(o) for o in (Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE))
# errors proving an op never left the client: the reasons of the exception rules that make an op fail
_UNSENT = tuple(f"{reason}:" for reason in UNSENT_REASONS)
# a decr_if_positive the store refused on its condition: DynamoDB, Redis's Lua script, an HTTP 409 (sold out)
_CONDITIONAL = ("ConditionalCheckFailedException", "redis: SOLDOUT", "HTTP 409")
_CONDITIONAL_BIT, _UNSENT_BIT = 1, 2


def _error_flags(error: str) -> int:
    """What an error text says of its op's cost: refused on the store's condition, or never sent."""
    return ((_CONDITIONAL_BIT if error.startswith(_CONDITIONAL) else 0)
            | (_UNSENT_BIT if error.startswith(_UNSENT) else 0))


_COUNTS = ("acked", "failed", "failed_conditional", "unsent", "indeterminate", "write_retries", "reads", "reads_ok",
           "reads_failed", "read_retries")


MIX_VERSION = 1  # of verdict.json's "op_mix": what check counted of the history, so report need not read it


REASONS_SHOWN = 5  # reasons kept per outcome (the most frequent)


def reason_of(error: str) -> str:
    """An error's reason without the answer it quotes (``...: b'{"data": ...}'``), so that answers differing
    only in their numbers count as one reason."""
    for quote in (": b'", ': b"'):
        error = error.split(quote, 1)[0]
    return error[:160]


class _Reasons:
    """Reasons by id, each with the first error text that gave it (its sample answer). Thread-safe: ids are
    handed out under a lock (two reading threads may meet a reason at once)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {"": 0}
        self.samples: list[str] = [""]
        self._lock = threading.Lock()

    def __call__(self, error: str) -> int:
        reason = reason_of(error)
        with self._lock:
            got = self.ids.get(reason)
            if got is None:
                got = self.ids[reason] = len(self.samples)
                self.samples.append(error[:300])
            return got


@dataclass(frozen=True, kw_only=True)
class _Counted:
    """One batch's part of a MixTally (``MixTally.count``)."""

    counts: dict[str, int]
    span: tuple[int, int]  # first invoke, last stamp (us, its process's clock)
    why: dict[tuple[str, int], int]  # (outcome, reason id): ops


class MixTally:
    """Counts of a history read in columns (numpy), by what they cost (``check`` keeps them in
    verdict.json: a billion ops' history is not read twice); and why ops failed or stayed indeterminate,
    by reason, most frequent first (``reasons``)."""

    def __init__(self) -> None:
        self.n: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self.spans: dict[str, tuple[int, int]] = {}  # per worker: first invoke, last stamp (us, its own clock)
        self._flags = StringLookup(_error_flags, dtype=np.uint8)  # by error string: _CONDITIONAL_BIT | _UNSENT_BIT
        self._reasons = _Reasons()
        self._reason = StringLookup(self._reasons)  # by error string: its reason's id
        self.why: dict[tuple[str, int], int] = {}  # (outcome, reason id): ops
        self.complete: bool | None = None  # as check found the history (None: not known here)

    def count(self, c: OpColumns) -> _Counted | None:
        """A batch's counts, span and reasons, from the batch alone (safe in any thread: the lookups of error
        strings keep a table per process's strings, and reasons get their ids under a lock). None: an empty
        batch."""
        if not len(c):
            return None
        flags = self._flags(c.strings, c.error)
        cond, unsent = (flags & _CONDITIONAL_BIT) > 0, (flags & _UNSENT_BIT) > 0
        read, ok, fail = c.kind == _READ, c.outcome == _OK, c.outcome == _FAIL
        write, wfail = ~read, ~read & fail
        masks = {"acked": write & ok, "failed": wfail, "failed_conditional": wfail & (c.kind == _DECR) & cond,
                 "unsent": wfail & unsent, "indeterminate": write & (c.outcome == _IND), "reads": read,
                 "reads_ok": read & ok, "reads_failed": read & fail}
        counts = {name: int(np.count_nonzero(mask)) for name, mask in masks.items()}
        retried = c.attempts > 1
        extra = c.attempts.astype(np.int64) - 1 if retried.any() else None  # most batches: no op retried
        counts["write_retries"] = 0 if extra is None else int(extra[write].sum())
        counts["read_retries"] = 0 if extra is None else int(extra[read].sum())
        why: dict[tuple[str, int], int] = {}
        for outcome, code in (("fail", _FAIL), ("indeterminate", _IND)):
            rows = c.outcome == code
            if rows.any():
                found = np.bincount(self._reason(c.strings, c.error[rows]))
                why.update({(outcome, rid): int(found[rid]) for rid in np.flatnonzero(found).tolist()})
        span = (int(c.invoked_us.min()), int(max(c.invoked_us.max(), c.completed_us.max())))
        return _Counted(counts=counts, span=span, why=why)

    def add(self, c: OpColumns, counted: _Counted | None = None) -> None:
        """One batch (``counted``: ``count``'s work on it, when already done)."""
        got = counted if counted is not None else self.count(c)
        if got is None:
            return
        for name, n in got.counts.items():
            self.n[name] += n
        for which, n in got.why.items():
            self.why[which] = self.why.get(which, 0) + n
        lo, hi = got.span
        was = self.spans.get(c.worker)
        self.spans[c.worker] = (lo, hi) if was is None else (min(was[0], lo), max(was[1], hi))

    def reasons(self) -> dict[str, list[dict[str, Any]]]:
        """Why ops failed or stayed indeterminate: per outcome, the most frequent reasons with their count and
        a sample error (with the answer it quoted), as verdict.json's ``reasons``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for outcome in ("indeterminate", "fail"):
            mine = sorted(((n, rid) for (o, rid), n in self.why.items() if o == outcome), key=lambda x: (-x[0], x[1]))
            out[outcome] = [{"reason": reason_of(self._reasons.samples[rid]) or "(no reason recorded)", "ops": n,
                             "sample": self._reasons.samples[rid] or None} for n, rid in mine[:REASONS_SHOWN]]
        return out

    def to_json(self, *, complete: bool) -> dict[str, Any]:
        """``complete``: every load process's history was read whole."""
        return {"version": MIX_VERSION, "counts": dict(self.n), "spans": {w: list(s) for w, s in self.spans.items()},
                "complete": complete}

    @staticmethod
    def of(doc: Any) -> MixTally | None:
        """From verdict.json's "op_mix" (None: absent, or of another version)."""
        if not isinstance(doc, dict) or doc.get("version") != MIX_VERSION:
            return None
        t = MixTally()
        t.n.update({k: int(doc["counts"][k]) for k in _COUNTS})
        t.spans = {w: (int(lo), int(hi)) for w, (lo, hi) in doc["spans"].items()}
        t.complete = bool(doc["complete"])
        return t


def _loopback(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def op_mix(folder: RunFolder) -> OpMix:
    """What the run in ``folder`` sent, from its history (raw outcomes), run.json and its scenario."""
    run = folder.read(folder.run_json)
    target = folder.scenario().target
    verdict = folder.read(folder.verdict_json) if folder.verdict_json.exists() else {}
    counted = MixTally.of(verdict.get("op_mix"))
    if counted is not None:  # as check counted it
        tally, complete = counted, bool(counted.complete)
    else:
        tally = MixTally()
        history = read_history(folder.history_dir, tally.add)
        complete = history.complete and len(history.workers) >= int(run.get("processes") or 1)
    n = tally.n
    duration = max(((hi - lo) / 1e6 for lo, hi in tally.spans.values()), default=0.0)  # processes ran side by side
    unsafe_dynamodb = target.kind == "dynamodb" and target.variant != "atomic"
    writes = n["acked"] + n["failed"] + n["indeterminate"]
    return OpMix(
        **n, duration_s=duration, ok_per_s=(n["acked"] + n["reads_ok"]) / duration if duration > 0 else None,
        consistent_reads=bool(getattr(target, "consistent_reads", True)),
        reads_before_writes=writes - n["unsent"] if unsafe_dynamodb else 0,
        nodes=1 + int(getattr(target, "replicas", 0)) if target.kind == "redis" else 1,
        local=_loopback((run.get("target") or {}).get("url")),
        complete=complete)


# --- the price of it ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CostLine:
    """One price applied: how many of its units one acknowledged increment took, and what a million cost."""

    price_id: str
    unit: str
    units_per_increment: float
    usd_per_million: float


@dataclass(frozen=True, kw_only=True)
class Cost:
    usd_per_million: float | None  # per million acknowledged increments; None: it cannot be said (basis: why)
    basis: str
    lines: tuple[CostLine, ...] = ()

    def row(self) -> dict[str, Any]:
        """The columns of a comparison or capacity row."""
        u = self.usd_per_million
        return {"usd_per_M": float(f"{u:.4g}") if u is not None else None, "cost_basis": self.basis}


def _usd(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.4g}"


def _shares(parts: Sequence[tuple[str, int]], acked: int) -> str:
    shown = [f"{name} +{p:.1f}%" if (p := 100 * k / acked) >= 0.05 else f"{name} +<0.1%" for name, k in parts if k]
    return f" ({', '.join(shown)})" if shown else ""


def _request_line(p: Price, mix: OpMix) -> tuple[float, str]:
    """Units per acknowledged increment, and the phrase saying how they were counted."""
    a = mix.acked
    if p.unit == "million requests":
        parts = [("retries", mix.write_retries + mix.read_retries), ("failed conditional writes",
                 mix.failed_conditional), ("other failed requests", mix.failed - mix.failed_conditional - mix.unsent),
                 ("indeterminate", mix.indeterminate), ("reads", mix.reads - mix.reads_failed)]
        return mix.requests / a, f"{mix.requests / a:.3g} {p.name} per acknowledged increment{_shares(parts, a)}"
    u = p.request_units or {}
    if p.unit in _WRITE_UNITS:
        parts = [("retries", mix.write_retries), ("failed conditional writes", mix.failed_conditional),
                 ("indeterminate", mix.indeterminate)]
        units = mix.writes_served * u["write"] / a
        what = "WRU" if p.unit == "million WRU" else "WCU-seconds"
        return units, f"{units:.3g} {what} per acknowledged increment{_shares(parts, a)}"
    per_read = u["strongly_consistent_read" if mix.consistent_reads else "eventually_consistent_read"]
    units = (mix.reads_served * per_read + mix.reads_before_writes * u["strongly_consistent_read"]) / a
    how = [f"{mix.reads_served:,} {'strongly' if mix.consistent_reads else 'eventually'} consistent reads "
           f"({per_read:g} each)"] if mix.reads_served else []
    how += [f"{mix.reads_before_writes:,} reads before writes (unsafe variant)"] if mix.reads_before_writes else []
    what = "RRU" if p.unit == "million RRU" else "RCU-seconds"
    return units, f"{units:.3g} {what} per acknowledged increment ({', '.join(how) or 'no reads'})"


def cost(mix: OpMix, *, target_kind: str, prices: Prices, knee_ok_per_s: float | None = None,
         price_ids: Sequence[str] | None = None) -> Cost:
    """USD per million acknowledged increments of ``mix``, priced with ``price_ids`` (default: the table's
    defaults for ``target_kind``). ``knee_ok_per_s``: acknowledged ops per second (reads included) at the
    SLO knee; node prices use it instead of the measured throughput (request prices do not depend on it)."""
    ids = tuple(price_ids) if price_ids is not None else prices.defaults.get(target_kind)
    if not ids:
        return Cost(usd_per_million=None, basis=f"no price for target kind {target_kind!r}: {prices.path} has no "
                    f"defaults.{target_kind}; name the price rows to use")
    rows = [prices[i] for i in ids]
    if mix.acked == 0:
        return Cost(usd_per_million=None, basis=f"no acknowledged increments, so no cost per increment "
                    f"({mix.requests:,} requests sent)")
    lines: list[CostLine] = []
    phrases: list[str] = []
    for p in rows:
        if p.unit in _NODE_UNITS:
            line, phrase = _node_line(p, mix, knee_ok_per_s)
            if line is None:
                return Cost(usd_per_million=None, basis=f"node-priced ({p.name}): {phrase}")
        else:
            units, phrase = _request_line(p, mix)
            per_unit = p.usd / 1e6 if p.unit in _PER_MILLION else p.usd / 3600  # a WCU/RCU-hour: 3,600 unit-seconds
            line = CostLine(price_id=p.id, unit=p.unit, units_per_increment=units,
                            usd_per_million=units * per_unit * 1e6)
            tier = f" ({p.tier})" if p.tier else ""
            full = ", fully used (a lower bound: tables keep headroom)" if p.unit not in _PER_MILLION else ""
            phrase = f"{phrase} at {_usd(p.usd)}/{_SHORT[p.unit]}{tier}{full}, {p.region}, checked {p.checked}"
        lines.append(line)
        if line.units_per_increment:
            phrases.append(phrase)
    node = {p.unit in _NODE_UNITS for p in rows}
    how = "node-priced" if node == {True} else "request-priced" if node == {False} else "request- and node-priced"
    caveat = "" if mix.complete else "; the history is incomplete: priced on the ops it recorded"
    return Cost(usd_per_million=sum(x.usd_per_million for x in lines),
                basis=f"{how}: {'; '.join(phrases) or 'nothing charged'}{caveat}", lines=tuple(lines))


def _node_line(p: Price, mix: OpMix, knee_ok_per_s: float | None) -> tuple[CostLine | None, str]:
    if knee_ok_per_s is not None:
        rate, at = knee_ok_per_s, f"{knee_ok_per_s:,.0f} ok ops/s (the SLO knee)"
    elif mix.ok_per_s is not None:
        rate = mix.ok_per_s
        at = f"the measured {rate:,.0f} ok ops/s (no SLO knee: what the run drew, not capacity: an upper bound)"
    else:
        return None, "no throughput was measured (the history spans no time)"
    if rate <= 0:
        return None, f"a throughput of {rate:g} ok ops/s prices nothing"
    share = mix.acked / (mix.acked + mix.reads_ok)
    per_hour = rate * share * 3600  # acknowledged increments in an hour
    units = mix.nodes / per_hour
    reads = f", {100 * share:.1f}% of them increments (the rest reads)" if mix.reads_ok else ""
    nodes = f" x {mix.nodes} nodes (a primary, {mix.nodes - 1} replica(s))" if mix.nodes > 1 else ""
    waste = mix.requests - mix.acked - mix.reads_ok  # requests served that acknowledged nothing
    inside = f"; the {100 * waste / mix.requests:.1f}% of requests not acknowledged (fails, retries) took node " \
        "time within that figure" if waste > 0 else ""
    local = f"; measured on this machine's own server, not on the priced {p.name}" if mix.local else ""
    phrase = f"{p.name} {_usd(p.usd)}/h{nodes} at {at}{reads}, {p.region}, checked {p.checked}{inside}{local}"
    return CostLine(price_id=p.id, unit=p.unit, units_per_increment=units, usd_per_million=units * p.usd * 1e6), phrase


def run_cost(folder: RunFolder | Path, *, prices: Prices, knee_ok_per_s: float | None = None,
             price_ids: Sequence[str] | None = None) -> Cost:
    """The cost of the run in ``folder`` (one comparison row); a folder without history says why, not raises."""
    folder = folder if isinstance(folder, RunFolder) else RunFolder(Path(folder))
    try:
        mix = op_mix(folder)
        kind = folder.scenario().target.kind
        target = folder.read(folder.run_json).get("target") or {}
    except (HistoryError, RunFolderError) as e:
        return Cost(usd_per_million=None, basis=f"no cost: {e}")
    if kind == "http" and "variant" in target and target["variant"] is None and price_ids is None and \
            prices.shipped:
        # the shipped table prices the reference service on a cloud instance; a service of your own (a toy on
        # this laptop, or a fleet) is priced only as your own table says
        return Cost(usd_per_million=None, basis="no cost: a service counterbench did not start is priced only by a "
                                                "price table of your own (--prices, with defaults.http)")
    return cost(mix, target_kind=kind, prices=prices, knee_ok_per_s=knee_ok_per_s, price_ids=price_ids)
