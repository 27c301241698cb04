"""A request budget shared by every caller of one provider: at most `limit` requests in
any `window_s` seconds (a sliding window, so no burst at a window's edge can exceed it)."""

from __future__ import annotations

import threading
from collections import deque


class RateBudget:
    """Times of the last `limit` requests; `take(now)` says how long the next one waits.

    Callers pass their clock's `now`, so tests run a session on a fake clock. One budget
    serves every thread of a process (a lock guards it).
    """

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(
                f"a rate budget needs limit >= 1 and window_s > 0 ({limit}, {window_s})"
            )
        self.limit, self.window_s = int(limit), float(window_s)
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, now: float) -> float:
        """Reserve the next request slot: the seconds to wait from `now` before sending
        (0 when the budget has room). The slot is counted at once, so threads sharing the
        budget never pass it together."""
        with self._lock:
            wait = 0.0
            if len(self._sent) >= self.limit:
                wait = max(0.0, self._sent[-self.limit] + self.window_s - now)
            self._sent.append(now + wait)
            while len(self._sent) > self.limit:
                self._sent.popleft()
            return wait


_SHARED: dict[tuple[str, int], RateBudget] = {}
_SHARED_LOCK = threading.Lock()


def shared_budget(provider: str, per_minute: int) -> RateBudget:
    """The one budget of a provider in this process (per configured rate)."""
    with _SHARED_LOCK:
        return _SHARED.setdefault((provider, per_minute), RateBudget(per_minute, 60.0))
