"""The HTTP transport under the Alpaca provider: bounded retries, rate-limit pacing and
wall-clock deadlines, as a `requests` adapter mounted on alpaca-py's session.

Each HTTP request is retried on its own: a retry resends exactly the failed page request
(same `page_token`), while alpaca-py keeps the pages it already received, so no page is
lost or counted twice. A 5xx, a dropped connection, a body cut short, a page that is not
JSON and a request over its deadline are all retried; a fetch over its deadline stops.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError
from urllib3.exceptions import HTTPError as Urllib3Error

from stock_assets.core.ratelimit import RateBudget
from stock_assets.logs import get_logger

AUTH_HINT = "check ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY"
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Failures of the connection or of reading the body (urllib3's, raised by `read1`).
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    ChunkedEncodingError,
    Urllib3Error,
    ConnectionError,
    TimeoutError,
)
_CHUNK_BYTES = 256 * 1024

logger = get_logger("stock_assets.providers.alpaca")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: retries per request, backoff, the wait and the time allowed per fetch.

    Backoff before retry k (1-based) is `min(backoff_max_s, backoff_base_s * 2**(k-1))`
    times a jitter factor in [0.5, 1); a `Retry-After` or a future rate-limit reset
    replaces it. Rate-limit pauses and retry waits share `max_total_wait_s`; a wait that
    would exceed it fails the fetch at once instead of sleeping. The client pauses when
    `X-RateLimit-Remaining` falls to `rate_limit_reserve` or below.

    Time is bounded three ways, because a server that trickles bytes never trips a
    per-read timeout: each socket read waits at most `request_timeout_s`; one request
    (connect, headers and the whole body) may take `request_deadline_s` of wall-clock time
    before it is abandoned and retried like a dropped connection; and a whole fetch (all
    pages, retries and waits) stops with an error after `fetch_deadline_s`. The body is
    where a stalled server spends the time, and it is checked between reads; headers sent
    a byte at a time are bounded per read only, and caught when the body starts.
    """

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_total_wait_s: float = 300.0
    rate_limit_reserve: int = 0
    request_timeout_s: float = 30.0
    request_deadline_s: float = 120.0
    fetch_deadline_s: float = 1800.0


class RequestFailed(Exception):
    """The transport gave up on one request: final status (None: no answer) and attempts."""

    def __init__(self, status: int | None, attempts: int, detail: str) -> None:
        super().__init__(f"status {status} after {attempts} attempts: {detail}")
        self.status, self.attempts, self.detail = status, attempts, detail


class _DeadlinePassed(Exception):
    """A request ran past its deadline (raised between reads of a slow body)."""


@dataclass
class FetchStats:
    """What one fetch cost: answered requests, retries and seconds waited."""

    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0


class RobustAdapter(HTTPAdapter):
    """A transport that retries one request at a time, paces by rate-limit headers and
    bounds each request and each fetch in wall-clock time.

    A 2xx body is read here, chunk by chunk against the request deadline, and parsed as
    JSON: a malformed page is retried like a 5xx, and the parsed page is handed to
    alpaca-py's `response.json()` so a 10,000-bar page is parsed once. `monotonic` (the
    deadlines' clock) stays real in tests: trickling bytes take real time.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
        monotonic: Callable[[], float] = time.monotonic,
        budget: RateBudget | None = None,
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=8)
        self.policy, self._sleep, self._clock, self._rng = policy, sleep, clock, rng
        self._monotonic = monotonic
        self._budget = budget
        self._gate_lock = threading.Lock()
        self._resume_at = 0.0
        self._local = threading.local()

    @property
    def stats(self) -> FetchStats:
        """The running fetch's counters (per thread)."""
        if not hasattr(self._local, "stats"):
            self._local.stats = FetchStats()
        return self._local.stats

    def begin_fetch(self) -> FetchStats:
        """Reset this thread's counters and start its fetch deadline."""
        self._local.stats = FetchStats()
        self._local.fetch_deadline = self._monotonic() + self.policy.fetch_deadline_s
        return self._local.stats

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        fetch_deadline = getattr(self._local, "fetch_deadline", math.inf)
        attempt = 0
        while True:
            pause = self._pause_needed()
            self._wait(pause, "the pause until the rate limit resets", None, attempt)
            if self._budget is not None:
                wait = self._budget.take(self._clock())
                self._wait(wait, "the wait for the shared request budget", None, attempt)
            attempt += 1
            deadline = min(self._monotonic() + self.policy.request_deadline_s, fetch_deadline)
            try:
                response = self._attempt(request, kwargs, deadline)
            except (_DeadlinePassed, *_NETWORK_ERRORS) as err:
                if self._monotonic() >= fetch_deadline:
                    raise RequestFailed(None, attempt, self._fetch_deadline_text()) from None
                status, hinted = None, None
                detail = type(err).__name__
                if isinstance(err, _DeadlinePassed) or self._monotonic() >= deadline:
                    detail = (
                        f"no complete answer within the request deadline of "
                        f"{self.policy.request_deadline_s:g} s"
                    )
            else:
                self._observe(response.headers)
                status, hinted = response.status_code, None
                if status < 300:
                    detail = None if kwargs.get("stream") else _json_problem(response)
                    if detail is None:
                        self.stats.requests += 1
                        return response
                elif status < 400:
                    where = response.headers.get("Location", "?")
                    raise RequestFailed(status, attempt, f"redirected to {where}; check the URL")
                else:
                    detail = _server_message(response)
                    if status in (401, 403):
                        raise RequestFailed(status, attempt, f"{detail}; {AUTH_HINT}")
                    if status not in _RETRY_STATUSES:
                        raise RequestFailed(status, attempt, detail)
                    hinted = _retry_after(response.headers, self._clock())
            if attempt > self.policy.max_retries:
                raise RequestFailed(status, attempt, f"{detail}; retries exhausted")
            delay = hinted if hinted is not None else self._backoff(attempt)
            self.stats.retries += 1
            logger.warning(
                "alpaca request failed; retrying",
                extra={
                    "stage": "fetch",
                    "symbol": _query_value(request.url, "symbols"),
                    "status": status,
                    "reason": detail,
                    "attempt": attempt,
                    "wait_s": round(delay, 3),
                },
            )
            self._wait(delay, "the wait before retrying", status, attempt)

    def _attempt(
        self, request: requests.PreparedRequest, kwargs: dict[str, object], deadline: float
    ) -> requests.Response:
        """One request, its body read in full before `deadline` unless the caller streams."""
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        read_timeout = _read_timeout(kwargs.get("timeout"), self.policy.request_timeout_s)
        capped = min(read_timeout, remaining)
        options = {**kwargs, "stream": True, "timeout": (capped, capped)}
        response = super().send(request, **options)  # type: ignore[arg-type]
        if kwargs.get("stream"):
            return response
        try:
            response._content = self._read_body(response.raw, deadline, read_timeout)
            response._content_consumed = True  # requests' own flag: the body is in _content
        except BaseException:
            response.close()
            raise
        return response

    def _read_body(self, raw: object, deadline: float, read_timeout: float) -> bytes:
        """The decoded body, read in chunks with the clock checked between them.

        Each read returns what has arrived (`read1`) and may block at most until the
        deadline, so a body sent one byte every few seconds cannot outlast it.
        """
        connection = getattr(raw, "connection", None)
        sock = getattr(connection, "sock", None)
        chunks = []
        while True:
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise _DeadlinePassed
            if sock is not None:
                sock.settimeout(min(read_timeout, remaining))
            chunk = raw.read1(_CHUNK_BYTES, decode_content=True)  # type: ignore[attr-defined]
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _fetch_deadline_text(self) -> str:
        return (
            f"the fetch deadline of {self.policy.fetch_deadline_s:g} s passed "
            f"({self.stats.requests} page(s) received); raise RetryPolicy.fetch_deadline_s "
            "or fetch fewer days at a time"
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def _wait(self, seconds: float, why: str, status: int | None, attempts: int = 0) -> None:
        if seconds <= 0:
            return
        stats = self.stats
        if stats.waited_s + seconds > self.policy.max_total_wait_s:
            raise RequestFailed(
                status,
                attempts,
                f"{why} ({seconds:.1f} s) would exceed the wait budget of "
                f"{self.policy.max_total_wait_s:g} s ({stats.waited_s:.1f} s spent)",
            )
        left = getattr(self._local, "fetch_deadline", math.inf) - self._monotonic()
        if seconds > left:
            raise RequestFailed(
                status,
                attempts,
                f"{why} ({seconds:.1f} s) would pass the fetch deadline of "
                f"{self.policy.fetch_deadline_s:g} s ({max(left, 0.0):.1f} s left)",
            )
        stats.waited_s += seconds
        self._sleep(seconds)

    def _observe(self, headers: Mapping[str, str]) -> None:
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        reset = _number(headers.get("X-RateLimit-Reset"))
        if remaining is None or reset is None or remaining > self.policy.rate_limit_reserve:
            return
        resume_at = _absolute_reset(reset, self._clock())
        with self._gate_lock:
            self._resume_at = max(self._resume_at, resume_at)

    def _pause_needed(self) -> float:
        with self._gate_lock:
            return max(0.0, self._resume_at - self._clock())


def _query_value(url: str | None, name: str) -> str | None:
    values = parse_qs(urlsplit(url or "").query).get(name)
    return values[0] if values else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _absolute_reset(reset: float, now: float) -> float:
    # Alpaca sends a Unix time; a small number can only be seconds from now.
    return reset if reset > 1e9 else now + reset


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait: Retry-After (seconds or HTTP date), else the reset."""
    value = headers.get("Retry-After")
    if value:
        seconds = _number(value)
        if seconds is None:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return max(0.0, seconds)
    reset = _number(headers.get("X-RateLimit-Reset"))
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    if reset is not None and remaining == 0:
        wait = _absolute_reset(reset, now) - now
        return wait if wait > 0 else None
    return None


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    text = str(message) if message else response.text.strip()[:200]
    return text or (response.reason or "no message")


def _read_timeout(timeout: object, default: float) -> float:
    """The per-read timeout of a requests `timeout` argument (a number or (connect, read))."""
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    return float(timeout) if isinstance(timeout, int | float) else default


def _json_problem(response: requests.Response) -> str | None:
    """Why a 2xx body is not a JSON page, or None; a good page is parsed here, once.

    alpaca-py reads `response.json()` after checking the text is not empty, so the
    parsed value replaces that method on this response instead of being parsed again.
    """
    body = response.content
    if not body:
        return None
    try:
        page = json.loads(body)
    except ValueError as err:
        return f"malformed JSON page ({str(err)[:120]})"
    response.json = lambda **_: page  # type: ignore[method-assign]
    return None
