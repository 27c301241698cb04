"""`stock-assets logs`: the store's lines of a run and symbol, as a table or JSON, the
filters' validation, and --follow."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stock_assets.cli.logs import add_logs_parser, follow
from stock_assets.core.errors import UsageError
from stock_assets.core.symbols import InvalidSymbol
from stock_assets.storage.logstore import LogQuery
from tests.conftest import write_log_line

T0 = dt.datetime(2024, 2, 20, 14, 30, tzinfo=dt.UTC)


def build_parser() -> argparse.ArgumentParser:
    """A parser with the `logs` command, registered as the CLI's `add` does."""
    parser = argparse.ArgumentParser(prog="stock-assets")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name, handler, text):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    add_logs_parser(add)
    return parser


def run(*argv: str) -> int:
    args = build_parser().parse_args(["logs", *argv])
    return args.handler(args)


def append(home: Path, seconds: float, message: str, level: str = "INFO", **fields) -> None:
    write_log_line(home, T0 + dt.timedelta(seconds=seconds), message, level, **fields)


@pytest.fixture
def logged(home: Path) -> Path:
    append(home, 0, "fetched", symbol="SPY", stage="fetch", run_id="run-1", rows=390)
    append(home, 1, "fetched", symbol="QQQ", stage="fetch", run_id="run-1", rows=389)
    append(home, 2, "dropped", "WARNING", symbol="SPY", stage="validate", run_id="run-1")
    append(home, 3, "fetched", symbol="SPY", stage="fetch", run_id="run-2", rows=390)
    return home


def test_lines_of_a_run_and_symbol_as_json(logged, capsys):
    assert run("--run", "run-1", "--symbol", "spy", "--format", "json") == 0
    lines = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"ts": "2024-02-20T14:30:00+00:00", "level": "INFO", "logger": "stock_assets.test",
         "message": "fetched", "run_id": "run-1", "asset": None, "symbol": "SPY",
         "stage": "fetch", "fields": {"rows": 390}},
        {"ts": "2024-02-20T14:30:02+00:00", "level": "WARNING", "logger": "stock_assets.test",
         "message": "dropped", "run_id": "run-1", "asset": None, "symbol": "SPY",
         "stage": "validate", "fields": {}},
    ]  # fmt: skip


def test_table_shows_the_newest_lines_oldest_first(logged, capsys):
    assert run("--stage", "fetch", "--limit", "2") == 0
    assert capsys.readouterr().out.splitlines() == [
        "2024-02-20 14:30:01.000Z INFO     QQQ    fetch      run-1    fetched  rows=389",
        "2024-02-20 14:30:03.000Z INFO     SPY    fetch      run-2    fetched  rows=390",
    ]


def test_level_and_since_filters(logged, capsys):
    assert run("--level", "warning", "--since", "2024-02-20T14:30:00Z", "--format", "json") == 0
    assert [json.loads(t)["message"] for t in capsys.readouterr().out.splitlines()] == ["dropped"]
    assert run("--since", "2024-02-20T09:30:02.5-05:00", "--format", "json") == 0
    assert [json.loads(t)["run_id"] for t in capsys.readouterr().out.splitlines()] == ["run-2"]
    assert run("--since", "1h") == 0  # the lines are from 2024
    assert capsys.readouterr().out == "no log lines match\n"


@pytest.mark.parametrize(
    ("argv", "error", "fragment"),
    [
        (["--symbol", "../x"], InvalidSymbol, "symbols are 1-10"),
        (["--symbol", "SPY;DROP"], InvalidSymbol, "symbols are 1-10"),
        (["--since", "yesterday"], UsageError, "since 'yesterday'"),
        (["--stage", "a b"], UsageError, "stage 'a b'"),
        (["--limit", "0"], UsageError, "limit 0"),
    ],
)
def test_bad_options_are_usage_errors(home, argv, error, fragment):
    with pytest.raises(error, match=fragment):
        run(*argv)


def test_unknown_level_is_refused_by_the_parser(home, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["logs", "--level", "LOUD"])
    assert exited.value.code == 2


def test_follow_prints_new_lines_once(logged):
    shown: list[str] = []
    arrivals = iter([
        lambda: append(logged, 4, "late", symbol="SPY", run_id="run-3"),
        lambda: append(logged, 3.5, "a moment earlier, from another process", symbol="SPY"),
        lambda: append(logged, 5, "other symbol", symbol="QQQ"),
    ])  # fmt: skip
    follow(logged, LogQuery(symbol="SPY", limit=2), lambda line: shown.append(line.message),
           interval=0, polls=3, sleep=lambda _: next(arrivals)())  # fmt: skip
    assert shown == ["dropped", "fetched", "late", "a moment earlier, from another process"]


def test_follow_keeps_to_since_before_any_line_matches(logged):
    shown: list[str] = []
    since = T0 + dt.timedelta(seconds=3.5)

    def arrive() -> None:
        append(logged, 3.2, "late, but before since")
        append(logged, 11, "new")

    follow(logged, LogQuery(since=since), lambda line: shown.append(line.message),
           interval=0, polls=1, sleep=lambda _: arrive())  # fmt: skip
    assert shown == ["new"]


FOLLOWER = """
import argparse, sys
from stock_assets.cli.logs import add_logs_parser
commands = argparse.ArgumentParser().add_subparsers()
def add(name, handler, text):
    sub = commands.add_parser(name)
    sub.set_defaults(handler=handler)
    return sub
parser = add_logs_parser(add)
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def test_follow_runs_until_interrupted(logged):
    """A real `logs --follow`: the newest line, then a line logged by another process
    after it started, then Ctrl-C ends it with exit code 0."""
    env = {**os.environ, "STOCK_ASSETS_HOME": str(logged)}
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, "--follow", "--limit", "1", "--format", "json"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip

    def next_message(timeout: float = 30) -> str:
        ready, _, _ = select.select([follower.stdout], [], [], timeout)
        assert ready, "no line from logs --follow"
        return json.loads(follower.stdout.readline())["message"]

    try:
        assert next_message() == "fetched"
        append(logged, 10, "arrived while following", symbol="SPY")
        assert next_message() == "arrived while following"
    finally:
        time.sleep(0.2)
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 0
