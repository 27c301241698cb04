"""Alerts: one catalog row per (kind, subject) in `alerts`, a WARNING log line with stage
"alert", and optionally a JSON POST to the webhook in STOCK_ASSETS_ALERT_WEBHOOK.

An alert notifies once when it starts firing and once when it clears: a condition seen
again on every sensor tick updates its row (only when the message or details change) and
sends nothing. A webhook that fails is logged and never raises; the URL, which may carry
a token, is logged as scheme and host only, and every payload is redacted first.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from stock_assets.logs import get_logger, redact

if TYPE_CHECKING:
    import pandas as pd

    from stock_assets.storage.warehouse import Warehouse

WEBHOOK_ENV = "STOCK_ASSETS_ALERT_WEBHOOK"
STALL_MINUTES_ENV = "STOCK_ASSETS_STALL_MINUTES"
DEFAULT_STALL_MINUTES = 5
WEBHOOK_TIMEOUT_SECONDS = 5.0
log = get_logger(__name__)


def stall_minutes() -> int:
    """Minutes without progress after which a live updater is stalled during a session
    (STOCK_ASSETS_STALL_MINUTES, default 5)."""
    raw = os.environ.get(STALL_MINUTES_ENV, "").strip()
    if not raw:
        return DEFAULT_STALL_MINUTES
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if minutes < 1:
        raise ValueError(f"{STALL_MINUTES_ENV}={raw!r}: a whole number of minutes, 1 or more")
    return minutes


def stalled(last_advance: dt.datetime, now: dt.datetime, threshold_minutes: int) -> bool:
    """Whether more than `threshold_minutes` have passed since the last advance (both
    times timezone-aware)."""
    return (now - last_advance).total_seconds() > threshold_minutes * 60


def fire(warehouse: Warehouse, kind: str, subject: str, message: str,
         *, now: dt.datetime | None = None, **details: object) -> bool:  # fmt: skip
    """Record the alert (kind, subject) as firing; True when it newly fires (no row, or
    the row was cleared), which alone logs a WARNING and posts to the webhook. A repeat
    rewrites the row only when its message or details changed (logged at INFO)."""
    now = _now(now)
    message = redact(message)
    detail_text = redact(json.dumps(details, sort_keys=True, default=str)) if details else None
    known = _row(warehouse, kind, subject)
    newly = known is None or known["status"] != "firing"
    if not newly and known["message"] == message and known["details"] == detail_text:
        return False
    row = {
        "kind": kind, "subject": subject, "status": "firing", "message": message,
        "details": detail_text, "fired_at": now if newly else known["fired_at"],
        "cleared_at": None, "updated_at": now, "sent": None if newly else known["sent"],
    }  # fmt: skip
    if newly:
        log.warning(message, extra={"stage": "alert", "alert": kind, "subject": subject,
                                    "status": "firing", "details": details})  # fmt: skip
        row["sent"] = post(_payload(row, details))
    else:
        log.info(message, extra={"stage": "alert", "alert": kind, "subject": subject,
                                 "status": "firing"})  # fmt: skip
    _write(warehouse, row)
    return newly


def clear(warehouse: Warehouse, kind: str, subject: str, message: str = "",
          *, now: dt.datetime | None = None) -> bool:  # fmt: skip
    """Mark a firing alert cleared; True when it was firing (then logged and posted as
    `resolved`), False when there was nothing to clear (nothing written)."""
    known = _row(warehouse, kind, subject)
    if known is None or known["status"] != "firing":
        return False
    now = _now(now)
    row = {**known, "status": "cleared", "cleared_at": now, "updated_at": now,
           "message": redact(message) if message else known["message"]}  # fmt: skip
    log.warning(row["message"], extra={"stage": "alert", "alert": kind, "subject": subject,
                                       "status": "resolved"})  # fmt: skip
    details = json.loads(known["details"]) if known["details"] else {}
    row["sent"] = post(_payload(row, details, status="resolved"))
    _write(warehouse, row)
    return True


def active(warehouse: Warehouse) -> pd.DataFrame:
    """The firing alerts, oldest first."""
    return warehouse.catalog.read(
        "SELECT * FROM alerts WHERE status = 'firing' ORDER BY fired_at, kind, subject"
    )


def check_stall(warehouse: Warehouse, subject: str, last_advance: dt.datetime,
                now: dt.datetime, *, session_open: bool = True,
                threshold_minutes: int | None = None) -> bool:  # fmt: skip
    """Fire the `stall` alert of `subject` (e.g. live_bars_sensor) when it has not
    advanced for more than the threshold during an open session, clear it otherwise
    (outside a session nothing is expected to advance). Returns whether it is stalled."""
    threshold = stall_minutes() if threshold_minutes is None else threshold_minutes
    if session_open and stalled(last_advance, now, threshold):
        minutes = int((now - last_advance).total_seconds() // 60)
        fire(warehouse, "stall", subject,
             f"{subject} has not advanced for {minutes} minutes (threshold {threshold})",
             now=now, last_advance=_iso(last_advance), threshold_minutes=threshold)  # fmt: skip
        return True
    clear(warehouse, "stall", subject, f"{subject} advancing again (last {_iso(last_advance)})",
          now=now)  # fmt: skip
    return False


# --- the webhook ----------------------------------------------------------------------


def webhook_url() -> str | None:
    return os.environ.get(WEBHOOK_ENV, "").strip() or None


def webhook_host(url: str) -> str:
    """What may be logged of a webhook URL: scheme and host (its path may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


def post(payload: dict) -> bool | None:
    """POST the payload as JSON to the webhook: True delivered (2xx), False failed
    (logged), None when no webhook is configured."""
    url = webhook_url()
    if url is None:
        return None
    where = webhook_host(url)
    if urlsplit(url).scheme not in ("http", "https"):
        log.warning("alert webhook not sent: an http(s) URL is required",
                    extra={"stage": "alert", "webhook": where})  # fmt: skip
        return False
    body = redact(json.dumps(payload, default=str)).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "stock-assets-alerts"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as answer:
            status = answer.status
    except (OSError, ValueError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        log.warning("alert webhook failed", extra={"stage": "alert", "webhook": where,
                                                    "error": redact(str(reason))})  # fmt: skip
        return False
    return 200 <= status < 300


def _payload(row: dict, details: dict, status: str | None = None) -> dict:
    return {
        "kind": row["kind"], "subject": row["subject"], "status": status or row["status"],
        "message": row["message"], "fired_at": _iso(row["fired_at"]),
        "cleared_at": _iso(row["cleared_at"]), "details": details,
    }  # fmt: skip


# --- the catalog row ------------------------------------------------------------------


def _row(warehouse: Warehouse, kind: str, subject: str) -> dict | None:
    found = warehouse.catalog.read(
        "SELECT * FROM alerts WHERE kind = ? AND subject = ?", [kind, subject]
    )
    if found.empty:
        return None
    row = found.iloc[0].to_dict()
    return {k: (None if _missing(v) else v) for k, v in row.items()}


def _write(warehouse: Warehouse, row: dict) -> None:
    import pandas as pd

    frame = pd.DataFrame([row])
    for column in ("fired_at", "cleared_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["sent"] = frame["sent"].astype("boolean")
    warehouse.catalog.upsert("alerts", frame)


def _missing(value: object) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _now(now: dt.datetime | None) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if now is None else now


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.astimezone(dt.UTC).isoformat()
