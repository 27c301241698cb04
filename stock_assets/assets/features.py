"""The feature warehouse: market_regimes (per trading day) and features (per symbol-day)."""

import datetime as dt

import dagster as dg
from pydantic import Field

from stock_assets.assets.partitions import bars_partitions, days_by_symbol, trading_days_partitions
from stock_assets.assets.reporting import column_schema, partition_metadata
from stock_assets.logs import log_context
from stock_assets.resources.warehouse import WarehouseResource

DEFAULT_FOLDS = ['{"train_days": 30, "test_days": 5}']
PREVIEW_COLUMNS = ["ts", "close", "rsi_14", "macd_hist", "dist_vwap", "vix_z_score",
                   "regime_vix", "regime_gmm", "regime_sma"]  # fmt: skip
LOOKBACK_SESSIONS = 5  # core.features.LOOKBACK_SESSIONS (a test holds them equal)
REGIME_CHECK = "Every regime column holds only its documented codes."
FEATURE_CHECKS = {
    "no_inf": "No feature column holds +-inf.",
    "nan_only_in_warmup": "A column is NaN only in its warm-up bars (bar_index < warmup).",
    "regime_codes_in_range": REGIME_CHECK,
}


class FeaturesConfig(dg.Config):
    folds: list[str] = Field(
        default=DEFAULT_FOLDS,
        description="Fold configurations labelled on every row as column fold_<train>_<test> "
        '("train"/"test"), e.g. {"train_days": 30, "test_days": 5}.',
    )


@dg.asset(
    partitions_def=trading_days_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["bars_1m"],
    check_specs=[
        dg.AssetCheckSpec("regime_codes_in_range", asset="market_regimes", description=REGIME_CHECK)
    ],
    group_name="features",
    kinds={"parquet", "sklearn"},
    # Each weekday's session built by 17:30 ET, after the 16:00 close: per asset, not per
    # partition, and blind to XNYS holidays (see bars_1m).
    freshness_policy=dg.FreshnessPolicy.cron(
        deadline_cron="30 17 * * 1-5",
        lower_bound_delta=dt.timedelta(minutes=90),
        timezone="America/New_York",
    ),
)
def market_regimes(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Market regimes of every minute from QQQ and VIXY: VIX quadrant, GMM calm/volatile
    (fitted only on the 20 sessions before each day), QQQ versus its SMA 200.

    Partitioned by trading day; computed before any symbol's features, which merge it in.
    """
    import pandas as pd

    from stock_assets.core import regimes as core_regimes
    from stock_assets.pipelines.features import build_regimes

    days = sorted(dt.date.fromisoformat(key) for key in context.partition_keys)
    with log_context(run_id=context.run_id, asset="market_regimes"):
        built = build_regimes(warehouse.open(), days)
    passed, details = core_regimes.check_regime_codes(built.regimes)
    context.log.info(f"regimes for {len(days)} day(s): {len(built.regimes)} rows")
    codes = pd.DataFrame(
        [{"column": column, "code": code, "meaning": meaning}
         for column, codes in core_regimes.REGIME_CODES.items()
         for code, meaning in codes.items()]
    )  # fmt: skip
    return dg.MaterializeResult(
        metadata=partition_metadata(
            len(days),
            {"rows": len(built.regimes), "days_written": built.written},
            has_qqq=dg.MetadataValue.bool(built.has_qqq),
            has_vixy=dg.MetadataValue.bool(built.has_vixy),
            codes=dg.MetadataValue.md(codes.to_markdown(index=False)),
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name="regime_codes_in_range",
                passed=passed,
                metadata={"violations": dg.MetadataValue.json(details)},
            )
        ],
    )


@dg.asset(
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        dg.AssetDep(
            "bars_1m",
            partition_mapping=dg.MultiPartitionMapping(
                {
                    "date": dg.DimensionPartitionMapping(
                        "date", dg.TimeWindowPartitionMapping(start_offset=-LOOKBACK_SESSIONS)
                    ),
                    "symbol": dg.DimensionPartitionMapping("symbol", dg.IdentityPartitionMapping()),
                }
            ),
        ),
        market_regimes,
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset="features", description=text)
        for name, text in FEATURE_CHECKS.items()
    ],
    group_name="features",
    kinds={"parquet", "duckdb"},
    # As market_regimes: each weekday's session built by 17:30 ET, after the 16:00 close.
    freshness_policy=dg.FreshnessPolicy.cron(
        deadline_cron="30 17 * * 1-5",
        lower_bound_delta=dt.timedelta(minutes=90),
        timezone="America/New_York",
    ),
)
def features(
    context: dg.AssetExecutionContext, config: FeaturesConfig, warehouse: WarehouseResource
):
    """The wide point-in-time feature table (~60 indicator, context and regime columns
    plus fold labels), one Parquet file per symbol and trading day.

    Partitioned like bars_1m; a day is built from the previous day's carry and a few
    sessions of lookback, so it equals a build over the whole history.
    """
    import pandas as pd

    from stock_assets.core import features as core_features
    from stock_assets.core import regimes as core_regimes
    from stock_assets.core.folds import FoldConfig
    from stock_assets.pipelines.features import build_features

    store = warehouse.open()
    folds = [FoldConfig.parse(text) for text in config.folds]
    frames, written = [], 0
    for symbol, days in days_by_symbol(context.partition_keys).items():
        with log_context(run_id=context.run_id, asset="features"):
            built = build_features(store, symbol, days, folds)
        if built.note:
            context.log.warning(f"{symbol}: {built.note}")
        written += built.written
        frames.append(built.table)
    store.catalog.refresh_views()
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    checks = {
        "no_inf": core_features.check_no_inf,
        "nan_only_in_warmup": core_features.check_nan_only_warmup,
        "regime_codes_in_range": core_regimes.check_regime_codes,
    }
    results = []
    for name, check in checks.items():
        passed, details = check(table) if len(table) else (True, {"rows": 0})
        metadata = {"details": dg.MetadataValue.json(details)}
        results.append(dg.AssetCheckResult(check_name=name, passed=bool(passed), metadata=metadata))
    preview = table[[c for c in PREVIEW_COLUMNS if c in table]].tail(10) if len(table) else table
    return dg.MaterializeResult(
        metadata=partition_metadata(
            len(context.partition_keys),
            {"rows": len(table), "partitions_written": written},
            preview=dg.MetadataValue.md(preview.to_markdown(index=False)),
            **{"dagster/column_schema": column_schema(table)},
        ),
        check_results=results,
    )
