"""`stock-assets status`: per symbol the newest stored bar, its lag behind the session
clock, today's missing minutes and staleness; the live sensor, the daemons, the firing
alerts. Exit 1 when a symbol is stale during an open session (see sensors.health)."""

from __future__ import annotations

import argparse
import json

from stock_assets.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    dagster_instance,
    echo,
    emit,
    open_warehouse,
)


def cmd_status(args: argparse.Namespace) -> int:
    import pandas as pd

    from stock_assets.sensors import health

    now = None
    if args.now:
        try:
            now = pd.Timestamp(args.now)
        except ValueError:
            raise UsageError(f"--now {args.now!r}: an ISO time with offset") from None
        if now.tzinfo is None:
            raise UsageError(f"--now {args.now!r}: give an offset, e.g. 2024-03-08T15:00Z")
    found = health.report(dagster_instance(), open_warehouse(), now)
    if args.format == "json":
        echo(json.dumps(found.to_dict()))
        return EXIT_FAILED if found.stale else EXIT_OK
    session = "open" if found.session_open else "closed"
    echo(f"now {found.now}  session {session}  clock {found.session_clock or '-'}  "
         f"stall threshold {found.stall_minutes} min")  # fmt: skip
    rows = pd.DataFrame([vars(s) for s in found.symbols], columns=[
        "symbol", "last_bar", "lag_minutes", "sessions_behind", "missing_minutes_today",
        "stale"])  # fmt: skip
    emit(rows.astype(object).where(rows.notna(), None), "table")
    live = found.live_sensor
    echo(f"live sensor {health.LIVE_SENSOR}: " + (
        f"{live.status}, last tick {live.last_tick or 'never'} ({live.last_tick_status or '-'})"
        if live else "never started"))  # fmt: skip
    unhealthy = [d.daemon for d in found.daemons if d.required and not d.healthy]
    echo("daemons: healthy" if found.daemons_healthy
         else f"daemons: not running or unhealthy ({', '.join(unhealthy)})")  # fmt: skip
    echo(f"alerts firing: {len(found.alerts)}")
    for alert in found.alerts:
        echo(f"  {alert['kind']} {alert['subject']} since {alert['fired_at']}: {alert['message']}")
    if found.stale:
        echo("STALE: " + ", ".join(s.symbol for s in found.symbols if s.stale))
    return EXIT_FAILED if found.stale else EXIT_OK


def add_status_parser(add) -> argparse.ArgumentParser:
    """The `status` subcommand, for the CLI's `add(name, handler, text)`."""
    status = add("status", cmd_status,
                 "Per symbol: last bar, lag, today's missing minutes; live sensor, daemons, "
                 "alerts. Exit 1 when something is stale during a session.")  # fmt: skip
    status.add_argument("--format", default="table", choices=["table", "json"])
    status.add_argument("--now", help=argparse.SUPPRESS)  # a fixed clock, for tests
    return status
