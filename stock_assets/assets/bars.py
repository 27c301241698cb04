"""Lake assets for bars: bars_1m (fetched) and derived_bars (5m .. 1d, computed from 1m)."""

from collections import Counter

import dagster as dg
import duckdb
import pandas as pd
from pydantic import Field

from stock_assets.assets.partitions import bars_partitions, days_by_symbol
from stock_assets.ingest import ingest_symbol
from stock_assets.logs import log_context
from stock_assets.storage.catalog import lake_select
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.resources.warehouse import DERIVED_INTERVALS, WarehouseResource

PREVIEW_ROWS = 30


class IngestConfig(dg.Config):
    providers: str | None = Field(
        default=None,
        description="Provider order for this run, e.g. 'alpaca,yahoo' (default: the resource's).",
    )
    refetch: bool = Field(
        default=False, description="Ask providers again even for days that are already complete."
    )


@dg.asset(
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="bars",
    kinds={"parquet", "duckdb"},
)
def bars_1m(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    market_data: MarketDataResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """1-minute OHLCV bars (bar-open UTC), validated, merged idempotently, one Parquet file
    per symbol and XNYS trading day.

    Partitioned by symbol x trading day; a range of days runs as one run per symbol, and
    re-running adds only missing bars (status per day in the `ingest_status` table).
    """
    results = []
    for symbol, days in days_by_symbol(context.partition_keys).items():
        context.log.info(f"{symbol}: ingesting {len(days)} day(s) {days[0]} .. {days[-1]}")
        with log_context(run_id=context.run_id, asset="bars_1m"):
            outcomes = ingest_symbol(
                symbol, days, market_data, warehouse,
                providers=config.providers, refetch=config.refetch,
            )  # fmt: skip
        results += [(symbol, outcome, stored) for outcome, stored in outcomes]
    warehouse.catalog.refresh_views()
    table = pd.DataFrame(
        {
            "symbol": [s for s, _, _ in results],
            "date": [o.day.isoformat() for _, o, _ in results],
            "status": [o.status for _, o, _ in results],
            "provider": [o.provider or "" for _, o, _ in results],
            "rows": [st.rows if st else float("nan") for _, _, st in results],
            "missing_minutes": [st.missing_minutes if st else 0 for _, _, st in results],
            "written": [bool(st and st.written) for _, _, st in results],
        }
    )
    statuses = Counter(table["status"])
    if statuses["failed"] == len(table):
        messages = sorted({o.message for _, o, _ in results})
        raise dg.Failure(description="; ".join(messages), metadata={"partitions": len(table)})
    metadata = {
        "rows": dg.MetadataValue.int(int(table["rows"].fillna(0).sum())),
        "partitions": dg.MetadataValue.int(len(table)),
        "partitions_written": dg.MetadataValue.int(int(table["written"].sum())),
        "missing_minutes": dg.MetadataValue.int(int(table["missing_minutes"].sum())),
        "status": dg.MetadataValue.json(dict(statuses)),
        "providers": dg.MetadataValue.text(", ".join(sorted(set(table["provider"]) - {""}))),
        "per_partition": dg.MetadataValue.md(table.head(PREVIEW_ROWS).to_markdown(index=False)),
    }
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[bars_1m],
    group_name="bars",
    kinds={"parquet"},
)
def derived_bars(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """5m, 15m, 30m, 1h and 1d bars aggregated locally from bars_1m (never fetched),
    session-aligned from 09:30 ET, one Parquet file per interval, symbol and day.

    Partitioned like bars_1m and recomputed whenever its 1-minute partition changes.
    """
    rows: Counter[str] = Counter()
    with log_context(run_id=context.run_id, asset="derived_bars"):
        for symbol, days in days_by_symbol(context.partition_keys).items():
            rows.update(warehouse.store_derived(symbol, days))
    warehouse.catalog.refresh_views()
    return dg.MaterializeResult(
        metadata={
            f"rows_{interval}": dg.MetadataValue.int(rows[interval])
            for interval in DERIVED_INTERVALS
        }
    )


def _lake_violations(warehouse: WarehouseResource, sql: str) -> pd.DataFrame:
    lake = warehouse.lake
    if not lake.has_files("bars_1m"):
        return pd.DataFrame()
    columns = {"symbol": "VARCHAR", "ts": "TIMESTAMPTZ", "open": "DOUBLE", "high": "DOUBLE",
               "low": "DOUBLE", "close": "DOUBLE"}  # fmt: skip
    relation = lake_select(lake, "bars_1m", columns)
    with duckdb.connect(":memory:") as connection:
        return connection.execute(sql.format(bars=f"({relation})")).df()


@dg.asset_check(asset=bars_1m, description="No (symbol, ts) appears twice in the lake.")
def bars_1m_unique_ts(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    duplicates = _lake_violations(
        warehouse,
        "SELECT symbol, ts, count(*) AS copies FROM {bars} GROUP BY ALL HAVING count(*) > 1",
    )
    return dg.AssetCheckResult(
        passed=duplicates.empty,
        metadata={"duplicates": len(duplicates), "sample": duplicates.head(5).to_markdown()},
    )


@dg.asset_check(asset=bars_1m, description="low <= open, close <= high and prices > 0.")
def bars_1m_ohlc_consistent(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    bad = _lake_violations(
        warehouse,
        "SELECT * FROM {bars} WHERE NOT (low <= least(open, close)"
        " AND high >= greatest(open, close) AND low > 0)",
    )
    return dg.AssetCheckResult(
        passed=bad.empty, metadata={"violations": len(bad), "sample": bad.head(5).to_markdown()}
    )
