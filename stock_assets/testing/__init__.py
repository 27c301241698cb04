"""Test doubles for the outside world (a fake Alpaca server), usable by tests and benchmarks."""

from __future__ import annotations

from stock_assets.testing.fake_alpaca import (
    FakeAlpacaServer,
    FakeClock,
    Fault,
    RecordedRequest,
    generated_bars,
)

__all__ = ["FakeAlpacaServer", "FakeClock", "Fault", "RecordedRequest", "generated_bars"]
