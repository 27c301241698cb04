"""`stock-assets api`: refuses a non-loopback address without a token; serves with uvicorn."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from stock_assets.cli import main
from stock_assets.cli.api import cmd_api, is_loopback
from stock_assets.core.errors import UsageError


def test_a_public_address_without_a_token_is_refused(home, monkeypatch, capsys):
    monkeypatch.delenv("STOCK_ASSETS_API_TOKEN", raising=False)
    with pytest.raises(UsageError, match="refusing to serve the API on 0.0.0.0 without a token"):
        cmd_api(argparse.Namespace(host="0.0.0.0", port=8000))
    assert main(["api", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "set STOCK_ASSETS_API_TOKEN" in err[0]
    assert main(["api", "--port", "70000"]) == 2
    assert [
        is_loopback(h)
        for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "example.com", "10.0.0.1")
    ] == [True, True, True, False, False, False]


def test_the_server_answers_health_then_stops(home):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "api", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            try:
                url = f"http://127.0.0.1:{port}/health"
                answer = urllib.request.urlopen(url, timeout=2).read()
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                time.sleep(0.3)
        assert answer == b'{"status":"ok"}'
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert b"stock-assets API on http://127.0.0.1:" in server.stdout.read()
