"""A batch of one worker's ops as numpy columns: what the reader hands over, and the checks tally."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.core.ops import Op
from harness.history.format import _KIND_CODE, _OUTCOME_CODE, KINDS, OUTCOMES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, eq=False)
class OpColumns:
    """A batch of one worker's ops, invoke and completion joined: one array per field, row per op.

    Keys and errors are ids into ``strings`` (id ``i`` is ``strings[i - 1]``; error 0: none).
    """

    worker: str
    strings: Sequence[str]
    id: npt.NDArray[np.int64]
    key: npt.NDArray[np.uint32]
    kind: npt.NDArray[np.uint8]  # index into KINDS
    amount: npt.NDArray[np.int64]
    outcome: npt.NDArray[np.uint8]  # index into OUTCOMES
    has_value: npt.NDArray[np.bool_]
    value: npt.NDArray[np.int64]  # meaningless where has_value is False (0 as written)
    error: npt.NDArray[np.uint32]
    attempts: npt.NDArray[np.uint16]
    invoked_us: npt.NDArray[np.int64]
    completed_us: npt.NDArray[np.int64]  # -1: never completed
    # no op of this worker after this batch was invoked before this (µs like the times; None: unknown)
    open_from_us: int | None = None

    def __len__(self) -> int:
        return len(self.id)

    def ops(self) -> Iterator[Op]:
        """The rows as Op objects (slow: for tests and small histories)."""
        s = self.strings
        for i, k, kind, a, o, hv, v, e, n, t0, t1 in zip(
                self.id.tolist(), self.key.tolist(), self.kind.tolist(), self.amount.tolist(),
                self.outcome.tolist(), self.has_value.tolist(), self.value.tolist(), self.error.tolist(),
                self.attempts.tolist(), self.invoked_us.tolist(), self.completed_us.tolist(), strict=True):
            yield Op(self.worker, i, s[k - 1], KINDS[kind], a, OUTCOMES[o], v if hv else None,
                     s[e - 1] if e else None, t0, None if t1 < 0 else t1, n)

    @staticmethod
    def from_ops(worker: str, ops: Sequence[Op]) -> OpColumns:
        """Columns of hand-built or version-1 ops (ints beyond 64 bits kept exact, as objects)."""
        import numpy as np

        strings: list[str] = []
        ids: dict[str, int] = {}

        def sid(s: str | None) -> int:
            if s is None:
                return 0
            i = ids.get(s)
            if i is None:
                strings.append(s)
                i = ids[s] = len(strings)
            return i

        def ints(values: list[int]) -> Any:
            try:
                return np.array(values, dtype=np.int64)
            except OverflowError:
                return np.array(values, dtype=object)

        return OpColumns(
            worker=worker, strings=strings,
            id=np.array([o.id for o in ops], dtype=np.int64),
            key=np.array([sid(o.key) for o in ops], dtype=np.uint32),
            kind=np.array([_KIND_CODE[o.kind] for o in ops], dtype=np.uint8),
            amount=ints([o.amount for o in ops]),
            outcome=np.array([_OUTCOME_CODE[o.outcome] for o in ops], dtype=np.uint8),
            has_value=np.array([o.value is not None for o in ops], dtype=bool),
            value=ints([0 if o.value is None else o.value for o in ops]),
            error=np.array([sid(o.error) for o in ops], dtype=np.uint32),
            attempts=np.array([min(o.attempts, 0xFFFF) for o in ops], dtype=np.uint16),
            invoked_us=np.array([o.invoked_us for o in ops], dtype=np.int64),
            completed_us=np.array([-1 if o.completed_us is None else o.completed_us for o in ops], dtype=np.int64),
        )


OnColumns = Callable[[OpColumns], None]
