"""JSON logs: one object per line with timestamp, level, logger, message and any context
fields (run_id, asset, symbol, stage, counts). Secrets are masked before a line is written.

Each line goes to stderr (at STOCK_ASSETS_LOG_LEVEL) and, INFO and up whatever that level,
to the central log store: this process's own segment file,
`<home>/logs/date=YYYY-MM-DD/<pid>-<random>.jsonl`, one unbuffered write per line, so
processes never wait on each other and a crash loses at most the line being written
(`storage/logstore.py` reads the segments as the `logs` table; STOCK_ASSETS_LOG_STORE=0
turns the store off). With OTEL_EXPORTER_OTLP_ENDPOINT set the same records also go to
OpenTelemetry, as OTLP log records over HTTP.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stock_assets import settings

_SECRET_ENV = (
    "ALPACA_API_SECRET_KEY",
    "ALPACA_SECRET_KEY",
    "APCA_API_SECRET_KEY",
    "ALPACA_API_KEY_ID",
    "ALPACA_KEY_ID",
    "APCA_API_KEY_ID",
    "STOCK_ASSETS_API_TOKEN",
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)\S*@", re.I)
_SECRET_HEADER = re.compile(
    r"(APCA-API-(?:KEY-ID|SECRET-KEY)['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+", re.I
)
_STANDARD = set(vars(logging.makeLogRecord({})))
_CONTEXT: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("log_context")

STORE_ENV = "STOCK_ASSETS_LOG_STORE"
RETENTION_ENV = "STOCK_ASSETS_LOG_RETENTION_DAYS"
MAX_MB_ENV = "STOCK_ASSETS_LOG_MAX_MB"
OTLP_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
LOG_DIR = "logs"
DAY_PREFIX = "date="
SEGMENT_SUFFIX = ".jsonl"
DEFAULT_RETENTION_DAYS, DEFAULT_MAX_MB = 14, 1024


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add fields (run_id, asset, ...) to every log line written inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get({}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def redact(text: str) -> str:
    """The text with every configured Alpaca key, key header value, the API token and
    the password of any URL (a catalog, broker or MLflow URL) masked."""
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _SECRET_HEADER.sub(r"\1***", text)


class JsonFormatter(logging.Formatter):
    def payload(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record's fields, not yet redacted: every sink redacts what it sends."""
        payload = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_CONTEXT.get({}),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return payload

    def format(self, record: logging.LogRecord) -> str:
        return redact(json.dumps(self.payload(record), default=str))


# --- the central log store: one segment file per process ------------------------------


def logs_dir(home: Path) -> Path:
    """Where the segments of a home live, one folder per UTC day."""
    return home / LOG_DIR


def segment_day(path: Path) -> dt.date | None:
    """The day of a `date=YYYY-MM-DD` folder (None for anything else)."""
    try:
        return dt.date.fromisoformat(path.name.removeprefix(DAY_PREFIX))
    except ValueError:
        return None


def _positive_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r}: a whole number >= 1 (default {default})")
    return int(raw)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for segment in folder.glob(f"*{SEGMENT_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):  # pruned by another process meanwhile
            total += segment.stat().st_size
    return total


def prune_segments(directory: Path, today: dt.date) -> list[Path]:
    """Delete the day folders more than STOCK_ASSETS_LOG_RETENTION_DAYS (default 14) before
    today, then the oldest ones while all segments exceed STOCK_ASSETS_LOG_MAX_MB (default
    1024); today's folder is never deleted. Returns the folders deleted."""
    keep_days = _positive_env(RETENTION_ENV, DEFAULT_RETENTION_DAYS)
    max_bytes = _positive_env(MAX_MB_ENV, DEFAULT_MAX_MB) * 1024 * 1024
    days = sorted((day, path) for path in directory.glob(f"{DAY_PREFIX}*")
                  if (day := segment_day(path)) is not None)  # fmt: skip
    cutoff = today - dt.timedelta(days=keep_days)
    old = [path for day, path in days if day < cutoff]
    kept = [(path, _folder_bytes(path)) for day, path in days if cutoff <= day < today]
    total = sum(size for _, size in kept) + _folder_bytes(directory / f"{DAY_PREFIX}{today}")
    for path, size in kept:
        if total <= max_bytes:
            break
        old.append(path)
        total -= size
    for path in old:
        shutil.rmtree(path, ignore_errors=True)  # another process may be deleting it too
    return old


class SegmentHandler(logging.Handler):
    """Appends each record's JSON line (the redacted line stderr gets) to this process's
    segment of the current STOCK_ASSETS_HOME, read per record so that a process (or a
    test) that changes its home logs there. One O_APPEND write per line, no buffer: a
    line is on disk when the call returns; a crash can leave only the last line half
    written, which readers skip."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self._pid = os.getpid()
        self._segments: dict[tuple[str, str], Path] = {}  # (home as set, day) -> segment
        self._open: tuple[Path, int] | None = None  # one descriptor, of the last segment

    def emit(self, record: logging.LogRecord) -> None:
        if os.environ.get(STORE_ENV, "1").strip() == "0":
            return
        try:
            line = (self.format(record) + "\n").encode()
            day = dt.datetime.fromtimestamp(record.created, dt.UTC).date()
            path, new = self._segment(day)
            os.write(self._descriptor(path), line)
            if new:
                prune_segments(path.parent.parent, day)
        except Exception:
            self.handleError(record)

    def _segment(self, day: dt.date) -> tuple[Path, bool]:
        if os.getpid() != self._pid:  # a forked child writes its own segment
            self._pid, self._segments, self._open = os.getpid(), {}, None
        key = (os.environ.get("STOCK_ASSETS_HOME", ""), day.isoformat())
        if key in self._segments:
            return self._segments[key], False
        folder = logs_dir(settings.home()) / f"{DAY_PREFIX}{day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}-{secrets.token_hex(4)}{SEGMENT_SUFFIX}"
        self._segments[key] = path
        return path, True

    def _descriptor(self, path: Path) -> int:
        if self._open and self._open[0] == path:
            return self._open[1]
        self.close_segment()
        self._open = (path, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        return self._open[1]

    def close_segment(self) -> None:
        if self._open:
            os.close(self._open[1])
            self._open = None

    def close(self) -> None:
        self.close_segment()
        super().close()


# --- OpenTelemetry --------------------------------------------------------------------


def _attribute(value: object) -> str | bool | int | float:
    """An OTLP attribute value: scalars as they are, anything else as redacted JSON."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float):
        return value
    return redact(json.dumps(value, default=str))


class OtelHandler(logging.Handler):
    """Sends each record to an OpenTelemetry LoggerProvider: the redacted message as the
    body, every other field of the JSON line, redacted, as an attribute."""

    def __init__(self, provider) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.provider = provider
        self._logger = provider.get_logger("stock_assets")

    def emit(self, record: logging.LogRecord) -> None:
        from opentelemetry._logs import SeverityNumber

        try:
            payload = self.formatter.payload(record)
            message = redact(str(payload.pop("message")))
            attributes = {k: _attribute(v) for k, v in payload.items() if v is not None}
            number = {logging.DEBUG: SeverityNumber.DEBUG, logging.INFO: SeverityNumber.INFO,
                      logging.WARNING: SeverityNumber.WARN, logging.ERROR: SeverityNumber.ERROR,
                      logging.CRITICAL: SeverityNumber.FATAL}.get(record.levelno)  # fmt: skip
            self._logger.emit(timestamp=int(record.created * 1e9), severity_number=number,
                              severity_text=record.levelname, body=message,
                              attributes=attributes)  # fmt: skip
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.provider.shutdown()
        super().close()


def add_otel_sink(exporter=None, *, batch: bool = True) -> OtelHandler:
    """Send the `stock_assets` records (INFO and up) to OpenTelemetry through `exporter`
    (default: OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT), batched in the background
    or, with batch=False, exported as each record is logged. Remove it with
    `logging.getLogger("stock_assets").removeHandler(handler)` and `handler.close()`."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter()
    service = os.environ.get("OTEL_SERVICE_NAME", "stock-assets")
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    processor = BatchLogRecordProcessor if batch else SimpleLogRecordProcessor
    provider.add_log_record_processor(processor(exporter))
    handler = OtelHandler(provider)
    root = get_logger("stock_assets")
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO))
    return handler


_configured = False


def get_logger(name: str) -> logging.Logger:
    """A logger under `stock_assets` writing JSON lines to stderr at STOCK_ASSETS_LOG_LEVEL
    and to the log store (and OpenTelemetry) at INFO (configured once per process)."""
    global _configured
    root = logging.getLogger("stock_assets")
    if not _configured:
        _configured = True
        stderr = logging.StreamHandler()
        stderr.setFormatter(JsonFormatter())
        stderr.setLevel(os.environ.get("STOCK_ASSETS_LOG_LEVEL", "INFO").upper())
        level = stderr.level
        root.addHandler(stderr)
        root.setLevel(level)
        root.propagate = False
        if os.environ.get(STORE_ENV, "1").strip() != "0":
            root.addHandler(SegmentHandler())
            root.setLevel(min(level, logging.INFO))
        if os.environ.get(OTLP_ENV):
            add_otel_sink()
    return logging.getLogger(name if name.startswith("stock_assets") else f"stock_assets.{name}")


def log_event(logger: logging.Logger, stage: str, message: str, **fields: object) -> None:
    """Log one stage of the pipeline (fetch, validate, persist, ...) with its context."""
    logger.info(message, extra={"stage": stage, **fields})
