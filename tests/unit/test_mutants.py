"""Each rule of the checker has a test that goes red when that rule alone is removed (tests/mutants.py)."""

from __future__ import annotations

import pytest

from tests.mutants import run_all


@pytest.mark.timeout(900)  # ~180 mutants, each a copy of the code and a few test files: ~3.5 min on 2 cores
def test_every_rule_is_held_by_a_test():
    survivors = [f"{m.rule} ({m.file}): {out.strip().splitlines()[-1] if out.strip() else 'no output'}"
                 for m, caught, out in run_all() if not caught]
    assert not survivors, "rules no test holds:\n" + "\n".join(survivors)
