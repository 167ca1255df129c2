"""A value for each string the ops of a history refer to, computed once per string, applied to columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

_UNSET = np.iinfo(np.int64).min


class StringLookup:
    """Maps the string ids of ``OpColumns`` (keys, errors) to values, calling ``of`` once per string used.

    The reader hands every batch of one load process the same, growing list of strings, and ops refer to
    it by 1-based id (0: none, mapped to ``none``). A lookup table is kept per list, told apart by identity
    (the list is kept here too, so its id is never reused) and extended as the list grows; ``of`` runs only
    for strings some op uses (a key's text never becomes an error's category).
    """

    def __init__(self, of: Callable[[str], int], *, none: int = 0, dtype: Any = np.int64) -> None:
        self._of = of
        self._none = none
        self._dtype = dtype
        self._tables: dict[int, tuple[Sequence[str], npt.NDArray[np.int64]]] = {}

    def __call__(self, strings: Sequence[str], ids: npt.NDArray[Any]) -> npt.NDArray[Any]:
        entry = self._tables.get(id(strings))
        lut = entry[1] if entry is not None and entry[0] is strings else np.full(1, self._none, dtype=np.int64)
        if len(lut) < len(strings) + 1:  # strings defined since this list's last batch
            lut = np.concatenate([lut, np.full(len(strings) + 1 - len(lut), _UNSET, dtype=np.int64)])
        unset = lut == _UNSET
        if unset.any() and unset[ids].any():  # strings not looked up yet that the batch uses
            used = np.bincount(ids, minlength=len(lut)) if len(ids) else np.zeros(len(lut), dtype=np.int64)
            for sid in np.flatnonzero((used > 0) & unset).tolist():
                lut[sid] = self._of(strings[sid - 1])
        self._tables[id(strings)] = (strings, lut)
        return lut[ids].astype(self._dtype, copy=False)
