"""Alpaca 1-minute bars through alpaca-py, made robust against rate limits, 5xx and
servers that stall.

alpaca-py alone retries only 429/504, with a fixed 3 s sleep, ignores the rate-limit
headers and sets no timeout. Here a `requests` transport adapter (`alpaca_http`) mounted
on the client's session retries each HTTP request on its own: a retry resends exactly the
failed page request (same `page_token`), while alpaca-py keeps the pages it already
received, so no page is lost or counted twice. The adapter pauses before a request when
the last answer said `X-RateLimit-Remaining` is spent until `X-RateLimit-Reset`, honours
`Retry-After`, backs off exponentially with jitter, retries malformed JSON pages, and
gives up after bounded retries, total wait, and wall-clock deadlines per request and
per fetch (`RetryPolicy`).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import os
import random
import time
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from stock_assets.core import calendar
from stock_assets.core.ratelimit import RateBudget
from stock_assets.logs import get_logger, log_event, redact
from stock_assets.providers.alpaca_http import (
    AUTH_HINT,
    FetchStats,
    RequestFailed,
    RetryPolicy,
    RobustAdapter,
)
from stock_assets.providers.base import RAW_COLUMNS, ProviderError, empty_raw

__all__ = [
    "AlpacaProvider",
    "FetchStats",
    "RequestFailed",
    "RetryPolicy",
    "RobustAdapter",
    "alpaca_keys_from_env",
    "bars_frame",
    "normalize_data_url",
    "parse_feed",
    "regular_session_mask",
]

KEY_ENV = ("ALPACA_API_KEY_ID", "ALPACA_KEY_ID", "APCA_API_KEY_ID")
SECRET_ENV = ("ALPACA_API_SECRET_KEY", "ALPACA_SECRET_KEY", "APCA_API_SECRET_KEY")
FEEDS = (DataFeed.IEX, DataFeed.SIP, DataFeed.DELAYED_SIP)
_FIELDS = dict(open="o", high="h", low="l", close="c", volume="v", vwap="vw", trade_count="n")
_BAR_VALUES = operator.itemgetter(*_FIELDS.values())

logger = get_logger(__name__)


class AlpacaProvider:
    """1-minute bars from Alpaca's market data API (alpaca-py `StockHistoricalDataClient`).

    Keys, feed and base URL are explicit here; `from_env` reads them from the
    environment. `sleep`, `clock` and `rng` are injectable so tests never really wait.
    `budget` caps the requests of every provider sharing it (retries and pages count).
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
        budget: RateBudget | None = None,
    ) -> None:
        if not api_key or not secret_key:
            raise ValueError(f"Alpaca needs both a key id and a secret key ({AUTH_HINT})")
        self.feed = parse_feed(feed)
        self.data_url = normalize_data_url(data_url)
        self.policy = policy or RetryPolicy()
        self._secrets = tuple(s for s in (api_key, secret_key) if len(s) >= 4)
        self._client = StockHistoricalDataClient(
            api_key, secret_key, raw_data=True, url_override=self.data_url
        )
        # The raw dicts skip one pydantic model per bar; the adapter does all retrying.
        self._adapter = RobustAdapter(
            self.policy, sleep, clock, rng or random.Random(), budget=budget
        )
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
        """Regular-session 1-minute bars of `symbol` for the sessions start..end, within
        the policy's fetch deadline (counted from here)."""
        stats = self._adapter.begin_fetch()
        days = calendar.sessions(start, end)
        if not days:
            log_event(logger, "fetch", "alpaca: no sessions in range", symbol=symbol, rows=0)
            return empty_raw()
        window_open = calendar.session_bounds(days[0])[0]
        window_close = calendar.session_bounds(days[-1])[1]
        what = f"{symbol} {start}..{end}"
        raw = self._bars([symbol], window_open, window_close - pd.Timedelta(minutes=1), what)
        frame = self._frame(raw, symbol, days, what)
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
            received=len(raw.get(symbol) or []),
            outside_session=len(raw.get(symbol) or []) - len(frame),
            requests=stats.requests,
            retries=stats.retries,
            waited_s=round(stats.waited_s, 3),
        )
        return frame

    def fetch_window(
        self, symbols: list[str], start: pd.Timestamp, end: pd.Timestamp
    ) -> dict[str, pd.DataFrame]:
        """Regular-session bars opening from `start` to `end` (UTC, both included) of
        several symbols, asked in one multi-symbol request (and its pages)."""
        stats = self._adapter.begin_fetch()
        days = calendar.sessions(
            start.tz_convert(calendar.EXCHANGE_TZ).date(),
            end.tz_convert(calendar.EXCHANGE_TZ).date(),
        )
        what = f"{','.join(symbols)} {start.isoformat()}..{end.isoformat()}"
        raw = self._bars(symbols, start, end, what)
        frames = {symbol: self._frame(raw, symbol, days, what) for symbol in symbols}
        log_event(
            logger, "fetch", "alpaca window fetched", provider=self.name, symbols=len(symbols),
            start=start.isoformat(), end=end.isoformat(),
            rows=sum(len(frame) for frame in frames.values()), requests=stats.requests,
            retries=stats.retries, waited_s=round(stats.waited_s, 3),
        )  # fmt: skip
        return frames

    def _bars(
        self, symbols: list[str], start: pd.Timestamp, end: pd.Timestamp, what: str
    ) -> dict[str, list[dict]]:
        """The raw bar dicts per symbol of one (paged) request; errors as ProviderError."""
        request = StockBarsRequest(
            symbol_or_symbols=symbols if len(symbols) > 1 else symbols[0],
            timeframe=TimeFrame.Minute,
            start=start.to_pydatetime(),
            end=end.to_pydatetime(),
            adjustment=Adjustment.RAW,
            feed=self.feed,
        )
        # Errors are rebuilt `from None`: the originals hold the request and its key headers.
        try:
            raw = self._client.get_stock_bars(request)
        except RequestFailed as failure:
            raise self._error(what, failure.status, failure.attempts, failure.detail) from None
        except APIError as err:
            raise self._error(what, err.status_code, 1, str(err)) from None
        except (requests.RequestException, ValueError, TypeError, KeyError) as err:
            detail = f"unexpected answer: {type(err).__name__}: {err}"
            raise self._error(what, None, 1, detail) from None
        return raw if isinstance(raw, dict) else {}

    def _frame(
        self, raw: dict[str, list[dict]], symbol: str, days: list[dt.date], what: str
    ) -> pd.DataFrame:
        if not days:
            return empty_raw()
        try:
            frame = bars_frame(raw.get(symbol) or [])
        except (ValueError, TypeError, KeyError) as err:
            detail = f"unexpected bar format: {type(err).__name__}: {err}"
            raise self._error(what, 200, 1, detail) from None
        return frame.loc[regular_session_mask(frame["ts"], days)].reset_index(drop=True)

    def _error(self, what: str, status: int | None, attempts: int, detail: str) -> ProviderError:
        """A ProviderError from (status, attempts, detail), logged, with secrets masked."""
        answer = f"HTTP {status}" if status is not None else "no answer"
        text = self._scrub(f"alpaca: {what}: {answer} after {attempts} attempt(s): {detail}")
        symbol = what.split(" ")[0]
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
