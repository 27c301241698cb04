"""JSON logs: one object per line with timestamp, level, logger, message and any context
fields (run_id, asset, symbol, stage, counts). Secrets are masked before a line is written."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

_SECRET_ENV = (
    "ALPACA_API_SECRET_KEY",
    "ALPACA_SECRET_KEY",
    "APCA_API_SECRET_KEY",
    "ALPACA_API_KEY_ID",
    "ALPACA_KEY_ID",
    "APCA_API_KEY_ID",
)
_SECRET_HEADER = re.compile(
    r"(APCA-API-(?:KEY-ID|SECRET-KEY)['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+", re.I
)
_STANDARD = set(vars(logging.makeLogRecord({})))
_CONTEXT: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("log_context")


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add fields (run_id, asset, ...) to every log line written inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get({}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def redact(text: str) -> str:
    """The text with every configured Alpaca key and key header value masked."""
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return _SECRET_HEADER.sub(r"\1***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
        return redact(json.dumps(payload, default=str))


def get_logger(name: str) -> logging.Logger:
    """A logger under `stock_assets` writing JSON lines to stderr (configured once)."""
    root = logging.getLogger("stock_assets")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(os.environ.get("STOCK_ASSETS_LOG_LEVEL", "INFO").upper())
        root.propagate = False
    return logging.getLogger(name if name.startswith("stock_assets") else f"stock_assets.{name}")


def log_event(logger: logging.Logger, stage: str, message: str, **fields: object) -> None:
    """Log one stage of the pipeline (fetch, validate, persist, ...) with its context."""
    logger.info(message, extra={"stage": stage, **fields})
