"""A local fake of Alpaca's market data v2 bars API, for tests and benchmarks.

It speaks enough of `GET /v2/stocks/bars` (what alpaca-py 0.44 calls) and
`GET /v2/stocks/{symbol}/bars` for the real `StockHistoricalDataClient`: the same query
parameters, the same JSON (`{"bars": {"SPY": [{"t", "o", "h", "l", "c", "v", "n", "vw"}]},
"next_page_token": ...}`), key headers checked, `X-RateLimit-*` headers on every answer,
and faults (429 with Retry-After, 5xx, a body cut short, a malformed JSON page, a body
trickled out a byte at a time) injected at given request numbers. Bars are serialized
once per symbol-day and pages are slices of those records, so 10,000-bar pages cost
little to serve; `preload` does the serializing up front.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

from stock_assets.core import calendar
from stock_assets.providers.base import empty_raw

BarsSource = Callable[[str, pd.Timestamp, pd.Timestamp], pd.DataFrame]
"""`bars_for(symbol, start_utc, end_utc)`: RAW_COLUMNS bars with start <= ts <= end."""

FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})
_MINUTE_NS = 60_000_000_000
_WIRE_FLOATS = ("open", "high", "low", "close", "vwap")
_WIRE_COUNTS = ("volume", "trade_count")
_RECORD = '{"t":"%sZ","o":%r,"h":%r,"l":%r,"c":%r,"v":%d,"n":%d,"vw":%r}'
_UNAUTHORIZED = b'{"code":40110000,"message":"request is not authorized"}'
_FORBIDDEN = b'{"code":40310000,"message":"forbidden"}'


@dataclass(frozen=True)
class Fault:
    """An error answer injected in place of the real one (429 carries Retry-After).

    The other faults send the real answer, damaged, and ignore `status`: with `cut_body`
    the connection closes halfway through the body; with `malformed` the first half of
    the body is sent as the whole (a 200 whose JSON is cut, framed correctly); with
    `trickle_s` the body goes out one byte every `trickle_s` seconds of real time, as a
    stalled proxy does, until the client hangs up or the server stops.
    """

    status: int = 200
    retry_after: float | None = None
    cut_body: bool = False
    malformed: bool = False
    trickle_s: float | None = None

    @property
    def replaces_answer(self) -> bool:
        """Whether the fault answers with `status` instead of the real answer."""
        return not (self.cut_body or self.malformed or self.trickle_s is not None)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received: its 1-based number, path, query and answer."""

    number: int
    path: str
    params: dict[str, str]
    status: int


class FakeClock:
    """A clock and a sleep that advances it, shared by a server and a client under test."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def generated_bars(
    symbol: str, start_utc: pd.Timestamp, end_utc: pd.Timestamp, *, extended_hours: bool = False
) -> pd.DataFrame:
    """Deterministic random-walk minute bars for every XNYS session minute in the window.

    Each symbol-day is seeded by (symbol, day), so any window sees the same bars. Prices
    are in cents and vwap in 1/10,000, like Alpaca's. With
    `extended_hours`, every third pre-market (08:00-09:29 ET) and after-hours
    (16:00-17:59 ET) minute has a bar too, as Alpaca serves them.
    """
    first = start_utc.tz_convert(calendar.EXCHANGE_TZ).date()
    last = end_utc.tz_convert(calendar.EXCHANGE_TZ).date()
    base = 20.0 + zlib.crc32(symbol.encode()) % 480
    stamps, opens, closes, draws = [], [], [], []
    for day in calendar.sessions(first, last):
        open_, close = (stamp.value for stamp in calendar.session_bounds(day))
        minutes = np.arange(open_, close, _MINUTE_NS)
        if extended_hours:
            pre = np.arange(open_ - 90 * _MINUTE_NS, open_, 3 * _MINUTE_NS)
            post = np.arange(close, close + 120 * _MINUTE_NS, 3 * _MINUTE_NS)
            minutes = np.concatenate([pre, minutes, post])
        rng = np.random.default_rng(zlib.crc32(f"{symbol}|{day.isoformat()}".encode()))
        start_price = base * (1.0 + 0.2 * math.sin(day.toordinal() / 40.0))
        path = start_price * np.exp(np.cumsum(rng.normal(0.0, 0.0008, len(minutes) + 1)))
        stamps.append(minutes)
        opens.append(path[:-1])
        closes.append(path[1:])
        draws.append(rng.random((4, len(minutes))))
    if not stamps:
        return empty_raw()
    ts = np.concatenate(stamps)
    open_price, close_price = (
        np.round(np.concatenate(opens), 2),
        np.round(np.concatenate(closes), 2),
    )
    wick_up, wick_down, volume, trades = np.concatenate(draws, axis=1)
    high = np.round(np.maximum(open_price, close_price) + np.round(wick_up * 0.05, 2), 2)
    low = np.round(np.minimum(open_price, close_price) - np.round(wick_down * 0.05, 2), 2)
    frame = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC"),
            "open": open_price,
            "high": high,
            "low": low,
            "close": close_price,
            "volume": np.floor(100 + volume * 4_900),
            "vwap": np.round((high + low + close_price) / 3.0, 4),
            "trade_count": np.floor(1 + trades * 79),
        }
    )
    inside = (ts >= start_utc.value) & (ts <= end_utc.value)
    return frame.loc[inside].reset_index(drop=True)


def serialize_bars(frame: pd.DataFrame) -> tuple[np.ndarray, list[bytes]]:
    """Bar-open times (int64 ns UTC, sorted) and each bar as Alpaca's JSON object (bytes).

    `%r` writes the shortest text that reads back as the same float, so values are exact.
    """
    frame = frame.sort_values("ts", kind="stable")
    ts = pd.DatetimeIndex(frame["ts"]).tz_convert("UTC").as_unit("ns").asi8
    times = np.datetime_as_string(ts.view("datetime64[ns]").astype("datetime64[s]"), unit="s")
    floats = [frame[name].to_numpy(dtype="float64").tolist() for name in _WIRE_FLOATS]
    counts = [frame[name].to_numpy(dtype="int64").tolist() for name in _WIRE_COUNTS]
    rows = zip(times.tolist(), *floats[:4], *counts, floats[4], strict=True)
    return ts, [(_RECORD % row).encode() for row in rows]


class _DayStore:
    """Serialized bars per (symbol, exchange-local calendar day), filled on demand.

    A window's missing days are read from `bars_for` in one call and serialized once, so
    pages and later windows over the same days cost only list slicing.
    """

    def __init__(self, source: BarsSource) -> None:
        self._source = source
        self._days: dict[tuple[str, dt.date], tuple[np.ndarray, list[bytes]]] = {}
        self._windows: dict[tuple[str, int, int], tuple[np.ndarray, list[bytes]]] = {}
        self._lock = threading.Lock()

    def window(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> list[bytes]:
        """The serialized bars with start <= t <= end, oldest first."""
        key = (symbol, start.value, end.value)
        with self._lock:
            cached = self._windows.get(key)
        if cached is not None:
            return cached[1]
        days = pd.date_range(
            start.tz_convert(calendar.EXCHANGE_TZ).normalize(),
            end.tz_convert(calendar.EXCHANGE_TZ).normalize(),
            freq="D",
        )
        self.load(symbol, [day.date() for day in days])
        with self._lock:
            parts = [self._days[(symbol, day.date())] for day in days]
        ts = np.concatenate([part[0] for part in parts]) if parts else np.empty(0, "int64")
        records = [record for part in parts for record in part[1]]
        lo, hi = np.searchsorted(ts, start.value, "left"), np.searchsorted(ts, end.value, "right")
        assembled = (ts[lo:hi], records[lo:hi])
        with self._lock:
            if len(self._windows) >= 64:
                self._windows.clear()
            self._windows[key] = assembled
        return assembled[1]

    def load(self, symbol: str, days: list[dt.date]) -> None:
        """Serialize the days not yet held, with one `bars_for` call spanning them."""
        with self._lock:
            missing = [day for day in days if (symbol, day) not in self._days]
        if not missing:
            return
        tz = calendar.EXCHANGE_TZ
        bounds = pd.date_range(missing[0], missing[-1] + dt.timedelta(days=1), freq="D", tz=tz)
        frame = self._source(symbol, bounds[0].tz_convert("UTC"), bounds[-1].tz_convert("UTC"))
        ts, records = serialize_bars(frame)
        edges = np.searchsorted(ts, bounds.asi8, "left")
        with self._lock:
            for index, day in enumerate(bounds[:-1]):
                lo, hi = edges[index], edges[index + 1]
                self._days.setdefault((symbol, day.date()), (ts[lo:hi], records[lo:hi]))


class FakeAlpacaServer:
    """Alpaca's bars API on 127.0.0.1 (ephemeral port), as a context manager.

    `with FakeAlpacaServer(bars_for=...) as server:` then point the client at
    `server.url`; `server.requests` lists what arrived. `faults` maps a request number
    (1-based, counting every request) to a Fault or a bare status code. The rate limit
    is a fixed window of `rate_window_s` on `clock`; past `rate_limit` requests the
    server answers 429 until the window resets. `max_page_size` caps `limit`, to make
    pagination happen on small data.

    With `live`, the server holds only the bars that have closed by `clock()` (a bar
    opening at 10:19 is served from 10:20), so a test runs a session on a fake clock;
    `halt()` stops the data advancing (the clock goes on) and `resume()` lets it catch up.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key-id",
        secret_key: str = "test-secret-key",
        bars_for: BarsSource | None = None,
        empty_symbols: Iterable[str] = ("VIX",),
        faults: Mapping[int, Fault | int] | None = None,
        rate_limit: int = 10_000,
        rate_window_s: float = 60.0,
        max_page_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        live: bool = False,
    ) -> None:
        self.api_key, self.secret_key = api_key, secret_key
        self.bars_for: BarsSource = bars_for or generated_bars
        self.empty_symbols = frozenset(empty_symbols)
        faults = faults or {}
        self.faults = {n: f if isinstance(f, Fault) else Fault(f) for n, f in faults.items()}
        self.rate_limit, self.rate_window_s = rate_limit, rate_window_s
        self.max_page_size = max_page_size
        self.clock = clock
        self.live = live
        self.halted_at: float | None = None
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._store = _DayStore(self.source)
        self._window_start: float | None = None
        self._window_used = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fake Alpaca server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def source(self, symbol: str, start_utc: pd.Timestamp, end_utc: pd.Timestamp) -> pd.DataFrame:
        """The bars this server holds for a symbol and window (what a client should get)."""
        if symbol in self.empty_symbols:
            return empty_raw()
        return self.bars_for(symbol, start_utc, end_utc)

    def halt(self) -> None:
        """Serve no bar that closes after now (a feed that stopped), until `resume`."""
        self.halted_at = self.clock()

    def resume(self) -> None:
        self.halted_at = None

    def served_until(self) -> pd.Timestamp | None:
        """With `live`, the open of the newest bar served (None: no cap)."""
        if not self.live:
            return None
        now = self.clock() if self.halted_at is None else min(self.clock(), self.halted_at)
        return pd.Timestamp(now, unit="s", tz="UTC").floor("min") - pd.Timedelta(minutes=1)

    def preload(self, symbols: Iterable[str], first: dt.date, last: dt.date) -> None:
        """Serialize these symbol-days now, so a timed run measures the client, not the fake."""
        days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        for symbol in symbols:
            self._store.load(symbol, days)

    def start(self) -> FakeAlpacaServer:
        self.stopping.clear()
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # ends any trickling answer
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeAlpacaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _admit(self) -> tuple[int, dict[str, str], float | None]:
        """Number the request and charge it to the rate window: (number, headers, 429 wait)."""
        with self._lock:
            number = len(self._log) + 1
            now = self.clock()
            if self._window_start is None or now >= self._window_start + self.rate_window_s:
                self._window_start, self._window_used = now, 0
            reset = self._window_start + self.rate_window_s
            limited = self._window_used >= self.rate_limit
            self._window_used += 0 if limited else 1
            headers = {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - self._window_used)),
                "X-RateLimit-Reset": str(math.ceil(reset)),
            }
            self._log.append(RecordedRequest(number, "", {}, 0))
        return number, headers, (max(1.0, math.ceil(reset - now)) if limited else None)

    def _record(self, number: int, path: str, params: dict[str, str], status: int) -> None:
        with self._lock:
            self._log[number - 1] = RecordedRequest(number, path, params, status)

    def page(self, params: dict[str, str], single: str | None) -> tuple[int, bytes]:
        """The status and body for one bars query (after auth, limits and faults)."""
        symbols = [single] if single else [s for s in params.get("symbols", "").split(",") if s]
        if not symbols:
            return 400, b'{"message":"missing symbols"}'
        if params.get("timeframe", "1Min") not in {"1Min", "1T"}:
            return 400, b'{"message":"this fake serves 1Min bars only"}'
        if params.get("feed", "iex") not in FEEDS:
            return 400, b'{"message":"invalid feed"}'
        try:
            start = _parse_time(params["start"])
            end = _parse_time(params["end"]) if "end" in params else pd.Timestamp.now("UTC")
            limit = min(int(params.get("limit", 1000)), self.max_page_size)
            symbol_index, offset = _decode_token(params.get("page_token"))
        except (KeyError, ValueError):
            return 400, b'{"message":"invalid start, end, limit or page_token"}'
        cap = self.served_until()
        end = end if cap is None else min(end, cap)
        if limit < 1 or symbol_index >= len(symbols):
            return 400, b'{"message":"invalid limit or page_token"}'
        ordered = sorted(symbols)
        descending = params.get("sort", "asc") == "desc"
        chunks: list[tuple[str, list[bytes]]] = []
        token: str | None = None
        budget = limit
        for index in range(symbol_index, len(ordered)):
            records = self._store.window(ordered[index], start, end)
            records = records[::-1] if descending else records
            first = offset if index == symbol_index else 0
            taken = records[first : first + budget]
            if taken:
                chunks.append((ordered[index], taken))
            budget -= len(taken)
            if budget == 0:
                if first + len(taken) < len(records):
                    token = _encode_token(index, first + len(taken))
                elif index + 1 < len(ordered):
                    token = _encode_token(index + 1, 0)
                break
        next_token = b"null" if token is None else json.dumps(token).encode()
        if single:
            rows = chunks[0][1] if chunks else []
            body = b'{"bars":[' + b",".join(rows) + b'],"symbol":' + json.dumps(single).encode()
            return 200, body + b',"next_page_token":' + next_token + b"}"
        bars = b",".join(
            json.dumps(symbol).encode() + b":[" + b",".join(rows) + b"]" for symbol, rows in chunks
        )
        return 200, b'{"bars":{' + bars + b'},"next_page_token":' + next_token + b"}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeAlpacaServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: requests are recorded on the server, not printed."""

    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        number, headers, limited_wait = fake._admit()
        status, body = self._answer(fake, parts.path, params, number, headers, limited_wait)
        fake._record(number, parts.path, params, status)
        fault = fake.faults.get(number) if status == 200 else None
        if fault is not None and fault.malformed:
            body = body[: len(body) // 2]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault is not None and fault.cut_body:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif fault is not None and fault.trickle_s is not None:
            self._trickle(body, fault.trickle_s)
        else:
            self.wfile.write(body)

    def _trickle(self, body: bytes, every_s: float) -> None:
        """Send `body` one byte per `every_s` seconds; stop when the client hangs up."""
        self.close_connection = True
        try:
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                if self.fake.stopping.wait(every_s):
                    return
        except OSError:  # the client gave up on us: what the fault is there to provoke
            return

    def _answer(
        self,
        fake: FakeAlpacaServer,
        path: str,
        params: dict[str, str],
        number: int,
        headers: dict[str, str],
        limited_wait: float | None,
    ) -> tuple[int, bytes]:
        if self.headers.get("APCA-API-KEY-ID") != fake.api_key:
            return 401, _UNAUTHORIZED
        if self.headers.get("APCA-API-SECRET-KEY") != fake.secret_key:
            return 403, _FORBIDDEN
        if limited_wait is not None:
            headers["Retry-After"] = str(int(limited_wait))
            return 429, b'{"code":42910000,"message":"too many requests."}'
        fault = fake.faults.get(number)
        if fault is not None and fault.replaces_answer:
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return fault.status, json.dumps({"message": f"injected fault {fault.status}"}).encode()
        segments = path.strip("/").split("/")
        if segments == ["v2", "stocks", "bars"]:
            return fake.page(params, None)
        if len(segments) == 4 and segments[:2] == ["v2", "stocks"] and segments[3] == "bars":
            return fake.page(params, unquote(segments[2]))
        return 404, b'{"message":"not found"}'


def _parse_time(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _encode_token(symbol_index: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{symbol_index}|{offset}".encode()).decode()


def _decode_token(token: str | None) -> tuple[int, int]:
    if not token:
        return 0, 0
    symbol_index, offset = base64.urlsafe_b64decode(token.encode()).decode().split("|")
    return int(symbol_index), int(offset)
