"""The shared request budget: no window of `window_s` ever holds more than `limit` sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stock_assets.core.ratelimit import RateBudget, shared_budget


@given(
    st.integers(1, 5),
    st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=40),
)
def test_no_window_holds_more_than_the_limit(limit, gaps):
    budget = RateBudget(limit, 10.0)
    now, sent = 0.0, []
    for gap in gaps:
        now += gap
        now += budget.take(now)  # the caller sleeps the wait, then sends
        sent.append(now)
    for first in sent:
        assert sum(first <= t < first + 10.0 for t in sent) <= limit
    assert sent == sorted(sent)


def test_waits_are_exact_and_only_as_long_as_needed():
    budget = RateBudget(2, 60.0)
    assert [budget.take(t) for t in (0.0, 1.0)] == [0.0, 0.0]
    assert budget.take(5.0) == 55.0  # the first of the two leaves the window at 60
    assert budget.take(61.0) == 0.0  # the send at 1.0 left the window at 61
    assert budget.take(62.0) == 58.0  # the slot at 60 leaves at 120


def test_one_budget_per_provider_and_rate_in_a_process():
    assert shared_budget("alpaca", 200) is shared_budget("alpaca", 200)
    assert shared_budget("alpaca", 100) is not shared_budget("alpaca", 200)
