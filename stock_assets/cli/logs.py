"""`stock-assets logs`: read the central log store (the `logs` table of every process's
JSON log lines under <home>/logs), filtered by symbol, stage, time, level and run, or
follow it as lines arrive."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

from stock_assets import settings
from stock_assets.cli.common import EXIT_OK, echo
from stock_assets.storage.logstore import LEVELS, LogLine, LogQuery, parse_since, read_logs

FOLLOW_OVERLAP = dt.timedelta(seconds=5)  # re-read this far back: lines of other processes
FOLLOW_BATCH = 100_000


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the newest --limit matching lines, oldest first; with --follow, then every new
    line each second until interrupted."""
    query = LogQuery(
        symbol=args.symbol, stage=args.stage, level=args.level, run_id=args.run,
        since=parse_since(args.since) if args.since else None, limit=args.limit,
    )  # fmt: skip
    show = _json_line if args.format == "json" else _table_line
    if args.follow:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a follow ends
            follow(settings.home(), query, lambda line: echo(show(line)))
        return EXIT_OK
    lines = read_logs(settings.home(), query)
    for line in reversed(lines):
        echo(show(line))
    if not lines and args.format == "table":
        echo("no log lines match")
    return EXIT_OK


def follow(
    home: Path,
    query: LogQuery,
    show: Callable[[LogLine], None],
    *,
    interval: float = 1.0,
    polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Show the newest query.limit lines oldest first, then, every `interval` seconds, the
    lines that arrived since (forever, or `polls` times). Each poll reads back
    FOLLOW_OVERLAP before the newest line shown, as another process may write a line
    stamped a moment earlier; lines already shown are skipped."""
    lines = read_logs(home, dataclasses.replace(query, order="desc"))[::-1]
    for line in lines:
        show(line)
    cursor = lines[-1].ts if lines else query.since
    shown: set[tuple] = set()  # lines up to the cursor count as shown, even beyond limit
    if cursor:
        window = dataclasses.replace(query, since=cursor - FOLLOW_OVERLAP, limit=FOLLOW_BATCH)
        shown = {_key(line) for line in read_logs(home, window) if line.ts <= cursor}
    done = 0
    while polls is None or done < polls:
        sleep(interval)
        done += 1
        since = cursor - FOLLOW_OVERLAP if cursor else None
        if since and query.since:
            since = max(since, query.since)
        batch = dataclasses.replace(query, since=since, order="asc", limit=FOLLOW_BATCH)
        for line in read_logs(home, batch):
            if _key(line) not in shown:
                show(line)
                shown.add(_key(line))
                cursor = max(cursor, line.ts) if cursor else line.ts
        if cursor:
            shown = {key for key in shown if key[0] >= cursor - FOLLOW_OVERLAP}


def _key(line: LogLine) -> tuple:
    return (line.ts, line.level, line.logger, line.message, line.run_id, line.symbol,
            line.stage)  # fmt: skip


def _json_line(line: LogLine) -> str:
    return json.dumps(line.to_json(), default=str)


def _table_line(line: LogLine) -> str:
    """`2024-02-20 14:30:00.123Z INFO     SPY    fetch      1a2b3c4d message  rows=390`."""
    stamp = line.ts.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    extra = "  ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in line.fields.items() if key != "error"
    )  # fmt: skip
    text = (f"{stamp} {line.level:<8} {line.symbol or '-':<6} {line.stage or '-':<10} "
            f"{(line.run_id or '-')[:8]:<8} {line.message}")  # fmt: skip
    if extra:
        text += f"  {extra}"
    if "error" in line.fields:
        text += "\n" + str(line.fields["error"])
    return text


def add_logs_parser(add) -> argparse.ArgumentParser:
    """The `logs` subcommand, for the CLI's `add(name, handler, text)`."""
    logs = add("logs", cmd_logs, "Show or follow the central log store (every process's logs).")
    logs.add_argument("--symbol", help="only lines about this symbol")
    logs.add_argument("--stage", help="only this stage: fetch, validate, persist, train...")
    logs.add_argument("--since", help="30m, 1h, 2d, 1w ago, or an ISO time (UTC if no zone)")
    logs.add_argument("--level", default="INFO", type=str.upper, choices=list(LEVELS),
                      help="this level and above (default INFO)")  # fmt: skip
    logs.add_argument("--run", help="only lines of this run id (Dagster or MLflow)")
    logs.add_argument("--limit", type=int, default=100, help="newest N lines (default 100)")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="then print new lines as they arrive, until Ctrl-C")  # fmt: skip
    logs.add_argument("--format", default="table", choices=["table", "json"])
    return logs
