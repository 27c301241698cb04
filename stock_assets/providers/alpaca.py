"""Alpaca 1-minute bars through alpaca-py, made robust against rate limits and 5xx.

alpaca-py alone retries only 429/504, with a fixed 3 s sleep, and ignores the rate-limit
headers. Here a `requests` transport adapter mounted on the client's session retries each
HTTP request on its own: a retry resends exactly the failed page request (same
`page_token`), while alpaca-py keeps the pages it already received, so no page is lost or
counted twice. The adapter pauses before a request when the last answer said
`X-RateLimit-Remaining` is spent until `X-RateLimit-Reset`, honours `Retry-After`, backs
off exponentially with jitter, and gives up after bounded retries and total wait.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import operator
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError

from stock_assets.core import calendar
from stock_assets.logs import get_logger, log_event, redact
from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw

KEY_ENV = ("ALPACA_API_KEY_ID", "ALPACA_KEY_ID", "APCA_API_KEY_ID")
SECRET_ENV = ("ALPACA_API_SECRET_KEY", "ALPACA_SECRET_KEY", "APCA_API_SECRET_KEY")
FEEDS = (DataFeed.IEX, DataFeed.SIP, DataFeed.DELAYED_SIP)
_AUTH_HINT = "check ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY"
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, ChunkedEncodingError)
_FIELDS = dict(open="o", high="h", low="l", close="c", volume="v", vwap="vw", trade_count="n")
_BAR_VALUES = operator.itemgetter(*_FIELDS.values())

logger = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: retries per request, backoff, and the wait allowed per fetch.

    Backoff before retry k (1-based) is `min(backoff_max_s, backoff_base_s * 2**(k-1))`
    times a jitter factor in [0.5, 1); a `Retry-After` or a future rate-limit reset
    replaces it. Rate-limit pauses and retry waits share `max_total_wait_s`; a wait that
    would exceed it fails the fetch at once instead of sleeping. The client pauses when
    `X-RateLimit-Remaining` falls to `rate_limit_reserve` or below. Each request times
    out after `request_timeout_s` (alpaca-py sets no timeout).
    """

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_total_wait_s: float = 300.0
    rate_limit_reserve: int = 0
    request_timeout_s: float = 30.0


class RequestFailed(Exception):
    """The transport gave up on one request: final status (None: no answer) and attempts."""

    def __init__(self, status: int | None, attempts: int, detail: str) -> None:
        super().__init__(f"status {status} after {attempts} attempts: {detail}")
        self.status, self.attempts, self.detail = status, attempts, detail


@dataclass
class FetchStats:
    """What one fetch cost: answered requests, retries and seconds waited."""

    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0


class RobustAdapter(HTTPAdapter):
    """A transport that retries one request at a time and paces by rate-limit headers."""

    def __init__(
        self,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=8)
        self.policy, self._sleep, self._clock, self._rng = policy, sleep, clock, rng
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
        self._local.stats = FetchStats()
        return self._local.stats

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.policy.request_timeout_s
        attempt = 0
        while True:
            pause = self._pause_needed()
            self._wait(pause, "the pause until the rate limit resets", None, attempt)
            attempt += 1
            try:
                response = super().send(request, **kwargs)  # type: ignore[arg-type]
                if not kwargs.get("stream"):
                    response.content  # noqa: B018 - a body cut short is retried here too
            except _NETWORK_ERRORS as err:
                status, detail, hinted = None, type(err).__name__, None
            else:
                self._observe(response.headers)
                status = response.status_code
                if status < 300:
                    self.stats.requests += 1
                    return response
                if status < 400:
                    where = response.headers.get("Location", "?")
                    raise RequestFailed(status, attempt, f"redirected to {where}; check the URL")
                detail = _server_message(response)
                if status in (401, 403):
                    raise RequestFailed(status, attempt, f"{detail}; {_AUTH_HINT}")
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
                    "attempt": attempt,
                    "wait_s": round(delay, 3),
                },
            )
            self._wait(delay, "the wait before retrying", status, attempt)

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


class AlpacaProvider:
    """1-minute bars from Alpaca's market data API (alpaca-py `StockHistoricalDataClient`).

    Keys, feed and base URL are explicit here; `from_env` reads them from the
    environment. `sleep`, `clock` and `rng` are injectable so tests never really wait.
    """

    name = "alpaca"

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        feed: str | DataFeed = DataFeed.IEX,
        data_url: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key or not secret_key:
            raise ValueError(f"Alpaca needs both a key id and a secret key ({_AUTH_HINT})")
        self.feed = parse_feed(feed)
        self.data_url = normalize_data_url(data_url)
        self.policy = policy or RetryPolicy()
        self._secrets = tuple(s for s in (api_key, secret_key) if len(s) >= 4)
        self._client = StockHistoricalDataClient(
            api_key, secret_key, raw_data=True, url_override=self.data_url
        )
        # The raw dicts skip one pydantic model per bar; the adapter does all retrying.
        self._adapter = RobustAdapter(self.policy, sleep, clock, rng or random.Random())
        self._client._session.mount("https://", self._adapter)
        self._client._session.mount("http://", self._adapter)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: object) -> AlpacaProvider:
        """A provider configured from ALPACA_* variables (see `alpaca_keys_from_env`)."""
        env = os.environ if env is None else env
        keys = alpaca_keys_from_env(env)
        if keys is None:
            raise ValueError(
                f"no Alpaca keys in the environment: set {KEY_ENV[0]} and {SECRET_ENV[0]}"
            )
        return cls(
            *keys,
            feed=env.get("ALPACA_FEED") or DataFeed.IEX,
            data_url=env.get("ALPACA_DATA_URL") or None,
            **options,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self._client._session.close()

    def __repr__(self) -> str:
        return f"AlpacaProvider(feed={self.feed.value!r}, data_url={self.data_url!r})"

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Regular-session 1-minute bars of `symbol` for the sessions start..end."""
        days = calendar.sessions(start, end)
        if not days:
            log_event(logger, "fetch", "alpaca: no sessions in range", symbol=symbol, rows=0)
            return empty_raw()
        window_open = calendar.session_bounds(days[0])[0]
        window_close = calendar.session_bounds(days[-1])[1]
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame.Minute,
            start=window_open.to_pydatetime(),
            end=(window_close - pd.Timedelta(minutes=1)).to_pydatetime(),
            adjustment=Adjustment.RAW,
            feed=self.feed,
        )
        stats = self._adapter.begin_fetch()
        # Errors are rebuilt `from None`: the originals hold the request and its key headers.
        try:
            raw = self._client.get_stock_bars(request)
        except RequestFailed as failure:
            failed = (failure.status, failure.attempts, failure.detail)
            raise self._error(symbol, start, end, *failed) from None
        except APIError as err:
            raise self._error(symbol, start, end, err.status_code, 1, str(err)) from None
        except (requests.RequestException, ValueError, TypeError, KeyError) as err:
            detail = f"unexpected answer: {type(err).__name__}: {err}"
            raise self._error(symbol, start, end, None, 1, detail) from None
        bars = (raw.get(symbol) or []) if isinstance(raw, dict) else []
        try:
            frame = bars_frame(bars)
        except (ValueError, TypeError, KeyError) as err:
            detail = f"unexpected bar format: {type(err).__name__}: {err}"
            raise self._error(symbol, start, end, 200, 1, detail) from None
        frame = frame.loc[regular_session_mask(frame["ts"], days)].reset_index(drop=True)
        log_event(
            logger,
            "fetch",
            "alpaca bars fetched" if len(frame) else "alpaca: no bars (empty)",
            provider=self.name,
            symbol=symbol,
            start=start.isoformat(),
            end=end.isoformat(),
            feed=self.feed.value,
            rows=len(frame),
            received=len(bars),
            outside_session=len(bars) - len(frame),
            requests=stats.requests,
            retries=stats.retries,
            waited_s=round(stats.waited_s, 3),
        )
        return frame

    def _error(self, symbol: str, start: dt.date, end: dt.date, *failure: object) -> ProviderError:
        """A ProviderError from (status, attempts, detail), logged, with secrets masked."""
        status, attempts, detail = failure
        answer = f"HTTP {status}" if status is not None else "no answer"
        text = self._scrub(
            f"alpaca: {symbol} {start}..{end}: {answer} after {attempts} attempt(s): {detail}"
        )
        logger.error(text, extra={"stage": "fetch", "symbol": symbol, "status": status})
        return ProviderError(text)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text)


def bars_frame(bars: list[dict]) -> pd.DataFrame:
    """RAW_COLUMNS from Alpaca bar dicts (`t` RFC 3339 bar open, o/h/l/c/v/n/vw), sorted, unique."""
    if not bars:
        return empty_raw()
    stamps = _utc_stamps([bar["t"] for bar in bars])
    try:
        values = np.array(list(map(_BAR_VALUES, bars)), dtype="float64")
    except KeyError:  # a bar without vw or n: fill NaN column by column
        values = np.array([[bar.get(key, np.nan) for key in _FIELDS.values()] for bar in bars])
    frame = pd.DataFrame(values, columns=list(_FIELDS))
    frame.insert(0, "ts", stamps)
    ns = stamps.asi8
    if len(ns) > 1 and not (ns[1:] > ns[:-1]).all():
        frame = frame.sort_values("ts", kind="stable").drop_duplicates("ts", keep="first")
    return frame[RAW_COLUMNS].reset_index(drop=True)


def regular_session_mask(ts: pd.Series, days: list[dt.date]) -> np.ndarray:
    """Whether each UTC bar-open time lies inside one of `days`' sessions (open <= ts < close)."""
    bounds = np.array([_session_ns(day) for day in days], dtype="int64").reshape(-1, 2)
    values = pd.DatetimeIndex(ts).as_unit("ns").asi8
    index = np.searchsorted(bounds[:, 0], values, "right") - 1
    safe = np.clip(index, 0, len(bounds) - 1)
    return (index >= 0) & (values < bounds[safe, 1])


@functools.cache
def _session_ns(day: dt.date) -> tuple[int, int]:
    open_, close = calendar.session_bounds(day)
    return open_.value, close.value


def _utc_stamps(texts: list[str]) -> pd.DatetimeIndex:
    """Parse RFC 3339 times; Alpaca's canonical `YYYY-MM-DDTHH:MM:SSZ` takes a fast path."""
    array = np.asarray(texts)
    canonical = array.dtype == np.dtype("<U20") and (np.char.str_len(array) == 20).all()
    if canonical and (np.char.rfind(array, "Z") == 19).all():
        seconds = array.astype("<U19").astype("datetime64[s]")
        return pd.DatetimeIndex(seconds.astype("datetime64[ns]")).tz_localize("UTC")
    return pd.DatetimeIndex(pd.to_datetime(texts, utc=True, format="ISO8601")).as_unit("ns")


def alpaca_keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(key id, secret) from the first set alias of each, or None when neither is set.

    Raises ValueError (naming variables, never values) when only one half is set.
    """
    env = os.environ if env is None else env
    key = next((env[name] for name in KEY_ENV if env.get(name)), None)
    secret = next((env[name] for name in SECRET_ENV if env.get(name)), None)
    if key is None and secret is None:
        return None
    if key is None or secret is None:
        have, missing = (KEY_ENV, SECRET_ENV) if secret is None else (SECRET_ENV, KEY_ENV)
        raise ValueError(
            f"an Alpaca {'key id' if secret is None else 'secret'} is set ({' / '.join(have)}) "
            f"but none of {' / '.join(missing)} is"
        )
    return key, secret


def parse_feed(value: str | DataFeed) -> DataFeed:
    """The DataFeed named by `value` (case-insensitive), one of iex, sip, delayed_sip."""
    text = value.value if isinstance(value, DataFeed) else str(value).strip().lower()
    for feed in FEEDS:
        if feed.value == text:
            return feed
    valid = ", ".join(feed.value for feed in FEEDS)
    raise ValueError(f"ALPACA_FEED={text!r} is not a stock bars feed; valid feeds: {valid}")


def normalize_data_url(url: str | None) -> str | None:
    """The base URL alpaca-py appends `/v2/...` to (a trailing `/` or `/v2` dropped)."""
    if not url:
        return None
    url = url.strip().rstrip("/")
    return url[: -len("/v2")] if url.endswith("/v2") else url


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
