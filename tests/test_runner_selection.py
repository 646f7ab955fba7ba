"""How the run engine decides that a candidate has earned the starting prompt's place."""

from __future__ import annotations

from promptstudio.optimize.runner import sign_test


def test_the_start_is_replaced_only_on_evidence():
    start = dict.fromkeys(range(30), 0.0)
    assert sign_test({0: 1.0, **{i: 0.0 for i in range(1, 30)}}, start) == 0.5
    assert sign_test({i: float(i < 3) for i in range(30)}, start) == 0.125
    assert sign_test(start, start) == 1.0
    mixed = {i: float(i < 4) for i in range(30)}
    assert sign_test(mixed, {i: float(4 <= i < 6) for i in range(30)}) == 22 / 64
