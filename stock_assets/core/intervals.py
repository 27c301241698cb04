"""The bar intervals, defined once: 1-minute bars are fetched, the others derived from
them locally (minutes per bucket; 1d is one whole session)."""

INTERVALS: dict[str, int | None] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "1d": None}
DERIVED_INTERVALS = tuple(interval for interval in INTERVALS if interval != "1m")
