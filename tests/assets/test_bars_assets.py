from __future__ import annotations

import datetime as dt
import hashlib

import dagster as dg
import duckdb
import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.core.errors import UsageError
from stock_assets.jobs.launcher import symbol_days_tags as range_tags
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.storage.warehouse import BARS_SCHEMA, Warehouse, to_table

DAYS = [dt.date(2024, 3, 7), dt.date(2024, 3, 8), dt.date(2024, 3, 11)]


@pytest.fixture
def defs_and_instance(home):
    from stock_assets.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["QQQ", "SPY"])
        yield defs, instance


def run_ingest(defs, instance, symbol, days=DAYS, providers=None, **options):
    job = defs.resolve_job_def("ingest_job")
    config = {"ops": {"bars": {"config": {"providers": providers, **options}}}}
    return job.execute_in_process(
        run_config=config, instance=instance, tags=range_tags(symbol, days[0], days[-1]),
        raise_on_error=False,
    )  # fmt: skip


def lake_digest(home):
    files = sorted((home / "lake").rglob("*.parquet"))
    return {str(f.relative_to(home)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_definitions_load():
    from stock_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)


def test_ingest_range_materializes_every_partition_in_one_run(home, defs_and_instance):
    defs, instance = defs_and_instance
    result = run_ingest(defs, instance, "SPY")
    assert result.success
    materialized = instance.get_materialized_partitions(dg.AssetKey("bars_1m"))
    assert sorted(materialized) == [f"{d.isoformat()}|SPY" for d in DAYS]
    assert len(instance.get_runs()) == 1
    status = Warehouse(home).catalog.ingest_status("SPY")
    assert status["date"].dt.date.tolist() == DAYS
    assert set(status["status"]) <= {"ok", "partial"}
    assert (status["rows"] + status["missing_minutes"]).tolist() == [390, 390, 390]
    assert set(status["provider"]) == {"synthetic"}
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT ts) FROM bars WHERE symbol='SPY'"
        ).fetchone()
        assert rows[0] == rows[1] == status["rows"].sum()
        assert con.execute("SELECT count(*) FROM bars_1d").fetchone() == (3,)


def test_rerunning_ingest_and_backfill_leaves_partitions_byte_identical(home, defs_and_instance):
    defs, instance = defs_and_instance
    assert run_ingest(defs, instance, "SPY").success
    first = lake_digest(home)
    status_before = Warehouse(home).catalog.ingest_status("SPY")
    assert run_ingest(defs, instance, "SPY").success
    assert lake_digest(home) == first
    status_after = Warehouse(home).catalog.ingest_status("SPY")
    pd.testing.assert_frame_equal(status_before, status_after)

    backfill = defs.resolve_job_def("gap_fill_job")
    config = {"ops": {"fill_gaps_op": {"config": {"symbols": ["SPY"]}}}}
    assert backfill.execute_in_process(run_config=config, instance=instance).success
    filled = lake_digest(home)
    assert backfill.execute_in_process(run_config=config, instance=instance).success
    assert lake_digest(home) == filled
    assert run_ingest(defs, instance, "SPY").success  # re-ingest keeps the fills
    assert lake_digest(home) == filled
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        total, distinct, fills = con.execute(
            "SELECT count(*), count(DISTINCT ts), sum(is_filled::INT) FROM bars"
        ).fetchone()
    assert total == distinct == 3 * 390
    assert fills == status_before["missing_minutes"].sum()


def test_backfill_reports_materializations_of_changed_partitions(home, defs_and_instance):
    defs, instance = defs_and_instance
    run_ingest(defs, instance, "SPY")
    partial = Warehouse(home).catalog.ingest_status("SPY")
    gappy = partial.loc[partial["missing_minutes"] > 0, "date"].dt.date.tolist()
    backfill = defs.resolve_job_def("gap_fill_job")
    result = backfill.execute_in_process(
        run_config={"ops": {"fill_gaps_op": {"config": {"symbols": ["spy"]}}}}, instance=instance
    )
    events = result.asset_materializations_for_node("fill_gaps_op")
    keys = sorted({str(e.partition) for e in events if e.asset_key == dg.AssetKey("bars_1m")})
    assert keys == [f"{d.isoformat()}|SPY" for d in gappy]


def test_asset_checks_pass_on_clean_data_and_catch_a_stored_bad_bar(home, defs_and_instance):
    defs, instance = defs_and_instance
    result = run_ingest(defs, instance, "QQQ")
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"unique_ts": True, "ohlc_consistent": True}
    warehouse = Warehouse(home)
    stored = warehouse.read_bars("QQQ", DAYS[:1])
    stored.loc[7, "high"] = stored.loc[7, "low"] - 1.0  # high below low: breaks the rule
    warehouse.lake.write("bars_1m", "QQQ", DAYS[0], to_table(stored, BARS_SCHEMA))
    result = run_ingest(defs, instance, "QQQ", refetch=True)  # stored real bars are kept
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["ohlc_consistent"].passed
    assert evaluations["ohlc_consistent"].metadata["violations"].value == 1
    assert evaluations["unique_ts"].passed


def test_failed_symbol_fails_the_run_and_records_why(home, defs_and_instance, tmp_path):
    defs, instance = defs_and_instance
    instance.add_dynamic_partitions("symbols", ["ZZZZ"])
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "SPY.csv").write_text("datetime,open,high,low,close,volume\n")
    result = run_ingest(defs, instance, "ZZZZ", providers="csv", csv_path=str(tmp_path / "csvs"))
    assert not result.success
    status = Warehouse(home).catalog.ingest_status("ZZZZ")
    assert set(status["status"]) == {"failed"}
    assert "no provider has data for ZZZZ" in status["message"].iloc[0]
    assert not (home / "lake" / "bars_1m" / "symbol=ZZZZ").exists()


def test_holidays_are_not_partitions():
    from stock_assets.assets.partitions import trading_days_partitions

    keys = trading_days_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange("2024-03-27", "2024-04-02")
    )
    assert keys == ["2024-03-27", "2024-03-28", "2024-04-01", "2024-04-02"]
    assert all(calendar.is_session(dt.date.fromisoformat(k)) for k in keys)


def test_market_data_auto_order_depends_on_keys(monkeypatch):
    monkeypatch.delenv("ALPACA_API_KEY_ID", raising=False)
    for name in ("ALPACA_API_SECRET_KEY", "ALPACA_KEY_ID", "ALPACA_SECRET_KEY",
                 "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert [p.name for p in MarketDataResource().chain()] == ["synthetic"]
    monkeypatch.setenv("APCA_API_KEY_ID", "kid")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "sec")
    assert [p.name for p in MarketDataResource().chain()] == ["alpaca", "yahoo"]
    with pytest.raises(UsageError, match="provider order"):
        MarketDataResource(providers="iexcloud").chain()


def test_reingest_replaces_an_unreadable_partition(home, defs_and_instance):
    defs, instance = defs_and_instance
    assert run_ingest(defs, instance, "SPY").success
    corrupt = (
        home / "lake" / "bars_1m" / "symbol=SPY" / f"date={DAYS[1].isoformat()}" / "part.parquet"
    )
    good = lake_digest(home)
    corrupt.write_bytes(b"PAR1 this is not parquet any more")
    assert run_ingest(defs, instance, "SPY").success
    assert lake_digest(home) == good  # repaired from the provider, the others untouched


def test_metadata_of_one_partition_is_its_own_and_of_a_range_is_named_as_the_runs(
    home, defs_and_instance
):
    defs, instance = defs_and_instance
    ranged = run_ingest(defs, instance, "SPY")
    status = Warehouse(home).catalog.ingest_status("SPY")
    metadata = ranged.asset_materializations_for_node("bars")[0].metadata
    assert metadata["run_partitions"].value == 3
    assert metadata["run_rows"].value == status["rows"].sum()
    assert "rows" not in metadata
    single = run_ingest(defs, instance, "QQQ", days=DAYS[:1])
    metadata = single.asset_materializations_for_node("bars")[0].metadata
    qqq = Warehouse(home).catalog.ingest_status("QQQ")
    assert metadata["rows"].value == qqq["rows"].iloc[0]
    assert metadata["missing_minutes"].value == qqq["missing_minutes"].iloc[0]
    assert "run_rows" not in metadata


def test_bars_1m_cannot_be_materialized_without_derived_bars():
    """A UI backfill of bars_1m alone takes derived_bars along (one step makes both)."""
    from stock_assets.definitions import defs

    graph = defs.get_repository_def().asset_graph
    chosen = dg.AssetSelection.assets("bars_1m").required_multi_asset_neighbors().resolve(graph)
    assert chosen == {dg.AssetKey("bars_1m"), dg.AssetKey("derived_bars")}
