from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from stock_assets.resources.warehouse import WarehouseResource
from stock_assets.sensors.bars import gap_scanner_sensor, nightly_schedule


def evening(day: str) -> dt.datetime:
    return pd.Timestamp(f"{day} 16:30", tz="America/New_York").to_pydatetime()


def test_nightly_schedule_requests_every_symbol_on_sessions_only():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["SPY", "AAPL"])
        context = dg.build_schedule_context(
            instance, scheduled_execution_time=evening("2024-07-03")
        )
        requests = nightly_schedule(context)
        assert [r.partition_key for r in requests] == ["2024-07-03|AAPL", "2024-07-03|SPY"]
        assert [r.run_key for r in requests] == [
            "nightly-2024-07-03-AAPL",
            "nightly-2024-07-03-SPY",
        ]
        holiday = dg.build_schedule_context(
            instance, scheduled_execution_time=evening("2024-07-04")
        )
        assert isinstance(nightly_schedule(holiday), dg.SkipReason)


def status_row(symbol, day, status, missing):
    return {"symbol": symbol, "date": day, "status": status, "provider": "synthetic",
            "rows": 390 - missing, "missing_minutes": missing, "message": "",
            "updated_at": pd.Timestamp.now(tz="UTC")}  # fmt: skip


def test_gap_scanner_requests_recent_partial_days_once_per_gap_size(home, catalog_backend):
    warehouse = WarehouseResource()
    store = warehouse.open()
    from stock_assets.core import calendar

    last = calendar.last_closed_session(pd.Timestamp.now("UTC"))
    old = calendar.previous_sessions(last, 10)[0]
    store.catalog.upsert_ingest_status(pd.DataFrame([
        status_row("SPY", last, "partial", 3),
        status_row("QQQ", last, "ok", 0),
        status_row("AAPL", old, "partial", 2),  # too old to scan
    ]))  # fmt: skip
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
        requests = gap_scanner_sensor(context)
    assert [r.partition_key for r in requests] == [f"{last.isoformat()}|SPY"]
    assert requests[0].run_key == f"gaps-SPY-{last.isoformat()}-3"
    assert requests[0].run_config == {"ops": {"bars": {"config": {"refetch": True}}}}
