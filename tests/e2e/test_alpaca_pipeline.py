"""The whole ingest through the real alpaca-py client against the local fake Alpaca server:
pagination, rate-limit headers, a 429 and a 500 midway, and a symbol with no bars."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from stock_assets.cli import main
from stock_assets.core import calendar
from stock_assets.storage.warehouse import Warehouse
from stock_assets.testing.fake_alpaca import FakeAlpacaServer, Fault

KEY, SECRET = "PKTESTKEYID0000", "test-secret-value-123"
DAYS = calendar.sessions(dt.date(2024, 3, 6), dt.date(2024, 3, 12))  # spans the DST change


@pytest.fixture
def alpaca(home, monkeypatch):
    faults = {2: Fault(429, retry_after=0.1), 4: Fault(500)}
    with FakeAlpacaServer(
        api_key=KEY, secret_key=SECRET, faults=faults, max_page_size=300
    ) as server:
        monkeypatch.setenv("ALPACA_API_KEY_ID", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("ALPACA_DATA_URL", server.url)
        yield server


def test_every_bar_arrives_exactly_once_and_vix_fails(home, alpaca, capsys, caplog):
    caplog.set_level("INFO", logger="stock_assets")
    code = main(["ingest", "SPY", "VIX", "--start", DAYS[0].isoformat(),
                 "--end", DAYS[-1].isoformat(), "--provider", "alpaca"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "VIX failed: no provider has data for VIX: alpaca: no bars" in out

    statuses = [r.status for r in alpaca.requests]
    assert 429 in statuses and 500 in statuses
    assert sum(s == 200 for s in statuses) > len(DAYS)  # many pages

    open_, _ = calendar.session_bounds(DAYS[0])
    _, close = calendar.session_bounds(DAYS[-1])
    source = alpaca.source("SPY", open_, close)
    warehouse = Warehouse(home)
    stored = warehouse.read_bars("SPY", DAYS)
    assert stored["ts"].is_unique
    expected = source[["ts", "open", "high", "low", "close", "volume", "vwap"]].reset_index(
        drop=True
    )
    pd.testing.assert_frame_equal(
        stored[expected.columns].reset_index(drop=True), expected, check_dtype=False
    )
    assert stored["trade_count"].tolist() == source["trade_count"].astype(int).tolist()
    assert set(stored["source"]) == {"alpaca"}

    status = warehouse.catalog.ingest_status()
    vix = status[status["symbol"] == "VIX"]
    assert len(vix) == len(DAYS) and set(vix["status"]) == {"failed"}
    spy = status[status["symbol"] == "SPY"]
    assert set(spy["status"]) == {"ok"} and set(spy["provider"]) == {"alpaca"}

    logged = "\n".join(caplog.messages) + "\n".join(str(r.__dict__) for r in caplog.records)
    assert KEY not in logged and SECRET not in logged
    assert KEY not in out and SECRET not in out


def test_rerun_against_alpaca_asks_nothing_for_complete_days(home, alpaca, capsys):
    args = ["ingest", "SPY", "--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]
    assert main([*args, "--provider", "alpaca"]) == 0
    asked = len(alpaca.requests)
    files = sorted((home / "lake" / "bars_1m").rglob("*.parquet"))
    before = [f.read_bytes() for f in files]
    assert main([*args, "--provider", "alpaca"]) == 0
    assert len(alpaca.requests) == asked
    assert [f.read_bytes() for f in files] == before


def test_a_trickling_server_fails_the_ingest_within_its_deadline(home, monkeypatch, capsys):
    """A server that sends a byte every second never trips a per-read timeout; the fetch
    deadline (ALPACA_FETCH_DEADLINE_S) ends it, as a `failed` day with the reason."""
    import time

    from stock_assets.testing.fake_alpaca import Fault

    deadline = 4
    faults = {n: Fault(trickle_s=1.0) for n in range(1, 50)}
    with FakeAlpacaServer(api_key=KEY, secret_key=SECRET, faults=faults) as server:
        monkeypatch.setenv("ALPACA_API_KEY_ID", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("ALPACA_DATA_URL", server.url)
        monkeypatch.setenv("ALPACA_REQUEST_DEADLINE_S", "2")
        monkeypatch.setenv("ALPACA_FETCH_DEADLINE_S", str(deadline))
        from stock_assets.pipelines.ingest import fetch_chain
        from stock_assets.resources.market_data import MarketDataResource

        providers = MarketDataResource(
            providers="alpaca", alpaca_data_url=server.url, alpaca_request_deadline_s=2,
            alpaca_fetch_deadline_s=deadline,
        ).chain()  # fmt: skip
        start = time.monotonic()
        fetched = fetch_chain(providers, "SPY", DAYS[:1])
        assert time.monotonic() - start <= deadline * 1.1
        assert fetched.bars.empty
        assert "the fetch deadline of 4 s passed" in fetched.notes[0]

        code = main(["ingest", "SPY", "--start", DAYS[0].isoformat(), "--end",
                     DAYS[0].isoformat(), "--provider", "alpaca"])  # fmt: skip
    assert code == 1
    assert "SPY failed: no provider has data for SPY: alpaca:" in capsys.readouterr().out
    status = Warehouse(home).catalog.ingest_status("SPY")
    assert status["status"].tolist() == ["failed"]
    assert "fetch deadline of 4 s passed" in status["message"].iloc[0]
