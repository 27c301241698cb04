"""Lake assets for bars: bars_1m (fetched) and derived_bars (5m .. 1d, computed from 1m),
materialized together in one step so the derived bars always follow the 1-minute ones."""

import datetime as dt
from collections import Counter

import dagster as dg
from pydantic import Field

from stock_assets.assets.partitions import bars_partitions, days_by_symbol
from stock_assets.assets.reporting import partition_metadata
from stock_assets.logs import log_context
from stock_assets.resources.market_data import MarketDataResource
from stock_assets.resources.warehouse import WarehouseResource

PREVIEW_ROWS = 30
CHECKS = {
    "unique_ts": "No (symbol, ts) appears twice in the partitions written.",
    "ohlc_consistent": "low <= open, close <= high and prices > 0 in the partitions written.",
}


class IngestConfig(dg.Config):
    providers: str | None = Field(
        default=None,
        description="Provider order for this run, e.g. 'alpaca,yahoo' (default: the resource's).",
    )
    refetch: bool = Field(
        default=False, description="Ask providers again even for days that are already complete."
    )
    csv_path: str | None = Field(
        default=None, description="File or folder for the csv provider (default: the resource's)."
    )
    csv_label: str | None = Field(
        default=None, description="csv rows labelled by the bar's 'start' or 'end' minute."
    )
    csv_timezone: str | None = Field(
        default=None, description="Time zone of naive csv timestamps, e.g. UTC."
    )


@dg.multi_asset(
    name="bars",
    specs=[
        dg.AssetSpec(
            "bars_1m",
            description="1-minute OHLCV bars (bar-open UTC), validated and merged "
            "idempotently, one Parquet file per symbol and XNYS trading day. Partitioned by "
            "symbol x trading day; re-running adds only missing bars (status per day in the "
            "`ingest_status` table).",
            group_name="bars",
            kinds={"parquet", "duckdb"},
            # Each weekday's session should be stored by 16:45 ET by a materialization
            # after the 16:00 close (the nightly close-out runs at 16:30). Dagster evaluates
            # the policy per asset, not per partition, and its cron knows no XNYS holidays:
            # a backfill after 16:00 also passes it, and a holiday evening shows it failing.
            freshness_policy=dg.FreshnessPolicy.cron(
                deadline_cron="45 16 * * 1-5",
                lower_bound_delta=dt.timedelta(minutes=45),
                timezone="America/New_York",
            ),
        ),
        dg.AssetSpec(
            "derived_bars",
            deps=["bars_1m"],
            description="5m, 15m, 30m, 1h and 1d bars aggregated locally from bars_1m (never "
            "fetched), session-aligned from 09:30 ET, all five intervals in one Parquet file "
            "per symbol and day (column `interval`). Materialized in the same step as "
            "bars_1m, so it follows every ingest and backfill.",
            group_name="bars",
            kinds={"parquet"},
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset="bars_1m", description=text) for name, text in CHECKS.items()
    ],
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def bars(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    market_data: MarketDataResource,
    warehouse: WarehouseResource,
):
    """Fetch, store and derive the bars of the run's symbol x day partitions."""
    from stock_assets.pipelines.ingest import ingest_and_derive

    store = warehouse.open()
    providers = market_data.chain(
        config.providers, csv_path=config.csv_path, csv_label=config.csv_label,
        csv_timezone=config.csv_timezone,
    )  # fmt: skip
    with log_context(run_id=context.run_id, asset="bars_1m"):
        report = ingest_and_derive(store, providers, days_by_symbol(context.partition_keys),
                                   refetch=config.refetch)  # fmt: skip
    table = report.table
    if (table["status"] == "failed").all():
        raise dg.Failure(
            description="; ".join(report.failure_messages()), metadata={"partitions": len(table)}
        )
    statuses = Counter(table["status"])
    minutes = {
        "rows": int(table["rows"].fillna(0).sum()),
        "missing_minutes": int(table["missing_minutes"].sum()),
    }
    yield dg.MaterializeResult(
        asset_key="bars_1m",
        metadata=partition_metadata(
            len(table),
            {
                **minutes,
                "partitions_written": int(table["written"].sum()),
                "status": dg.MetadataValue.json(dict(statuses)),
                "dropped": dg.MetadataValue.json(report.dropped),
                "providers": ", ".join(sorted(set(table["provider"]) - {""})),
            },
            per_partition=dg.MetadataValue.md(table.head(PREVIEW_ROWS).to_markdown(index=False)),
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name=name,
                asset_key="bars_1m",
                passed=not violations,
                metadata={"violations": violations, "sample": report.samples[name]},
            )  # fmt: skip
            for name, violations in report.violations.items()
        ],
    )
    yield dg.MaterializeResult(
        asset_key="derived_bars",
        metadata=partition_metadata(
            len(table), {f"rows_{k}": v for k, v in report.derived_rows.items()}
        ),
    )


@dg.asset_check(
    asset="bars_1m",
    description="Every partition file of the lake (bars, derived bars, features, regimes) "
    "can be read; an unreadable one is named with the command that rebuilds it.",
)
def lake_readable(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Scans the footers of every partition: on demand (the UI, `lake_check_job`), not
    after every ingest."""
    bad = warehouse.open().unreadable()
    rows = [{"file": str(e.path), "dataset": e.dataset, "symbol": e.symbol or "",
             "date": e.day.isoformat()} for e in bad]  # fmt: skip
    table = "\n".join(
        f"| {r['file']} | {r['dataset']} | {r['symbol']} | {r['date']} |" for r in rows
    )
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "unreadable": dg.MetadataValue.int(len(bad)),
            "files": dg.MetadataValue.md(
                "| file | dataset | symbol | date |\n|---|---|---|---|\n" + table
                if rows
                else "none"
            ),
        },  # fmt: skip
    )
