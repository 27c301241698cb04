"""The feature warehouse: market_regimes (per trading day) and features (per symbol-day)."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from stock_assets.assets.bars import bars_1m
from stock_assets.assets.partitions import bars_partitions, days_by_symbol, trading_days_partitions
from stock_assets.core import calendar
from stock_assets.core import features as core_features
from stock_assets.core import regimes as core_regimes
from stock_assets.core.folds import FoldConfig, label_folds
from stock_assets.logs import log_context
from stock_assets.resources.warehouse import WarehouseResource

QQQ, VIXY = "QQQ", "VIXY"
DEFAULT_FOLDS = ['{"train_days": 30, "test_days": 5}']
PREVIEW_COLUMNS = ["ts", "close", "rsi_14", "macd_hist", "dist_vwap", "vix_z_score",
                   "regime_vix", "regime_gmm", "regime_sma"]  # fmt: skip


def fold_column(config: FoldConfig) -> str:
    return f"fold_{config.train_days}_{config.test_days}"


def fold_labels(ts: pd.Series, config: FoldConfig) -> np.ndarray:
    """'train'/'test' per row, episodes counted along every XNYS session since 2000, so all
    symbols share them and later data never relabels earlier days."""
    sessions = calendar.sessions(calendar.FIRST_DAY, calendar.last_day())
    return label_folds(ts, config.train_days, config.test_days, sessions=sessions).to_numpy()


class FeaturesConfig(dg.Config):
    folds: list[str] = Field(
        default=DEFAULT_FOLDS,
        description="Fold configurations labelled on every row as column fold_<train>_<test> "
        '("train"/"test"), e.g. {"train_days": 30, "test_days": 5}.',
    )


@dg.asset(
    partitions_def=trading_days_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[bars_1m],
    check_specs=[dg.AssetCheckSpec("regime_codes_in_range", asset="market_regimes")],
    group_name="features",
    kinds={"parquet", "sklearn"},
)
def market_regimes(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Market regimes of every minute from QQQ and VIXY: VIX quadrant, GMM calm/volatile
    (fitted only on the 20 sessions before each day), QQQ versus its SMA 200.

    Partitioned by trading day; computed before any symbol's features, which merge it in.
    """
    days = sorted(dt.date.fromisoformat(key) for key in context.partition_keys)
    history = calendar.previous_sessions(days[0], core_regimes.REGIME_LOOKBACK_SESSIONS) + days
    qqq, vixy = warehouse.read_bars(QQQ, history), warehouse.read_bars(VIXY, history)
    regimes = core_regimes.compute_regimes(qqq, vixy, start=days[0])
    with log_context(run_id=context.run_id, asset="market_regimes"):
        written = warehouse.store_by_day("market_regimes", None, regimes, days)
    passed, details = core_regimes.check_regime_codes(regimes)
    context.log.info(f"regimes for {len(days)} day(s): {len(regimes)} rows, {written} written")
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(len(regimes)),
            "days_written": dg.MetadataValue.int(written),
            "has_qqq": dg.MetadataValue.bool(not qqq.empty),
            "has_vixy": dg.MetadataValue.bool(not vixy.empty),
            "codes": dg.MetadataValue.md(_code_table()),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="regime_codes_in_range",
                passed=passed,
                metadata={"violations": dg.MetadataValue.json(details)},
            )
        ],  # fmt: skip
    )


def _code_table() -> str:
    rows = [
        {"column": column, "code": code, "meaning": meaning}
        for column, codes in core_regimes.REGIME_CODES.items()
        for code, meaning in codes.items()
    ]
    return pd.DataFrame(rows).to_markdown(index=False)


@dg.asset(
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        dg.AssetDep(
            bars_1m,
            partition_mapping=dg.MultiPartitionMapping(
                {
                    "date": dg.DimensionPartitionMapping(
                        "date",
                        dg.TimeWindowPartitionMapping(
                            start_offset=-core_features.LOOKBACK_SESSIONS
                        ),
                    ),
                    "symbol": dg.DimensionPartitionMapping("symbol", dg.IdentityPartitionMapping()),
                }
            ),
        ),
        market_regimes,
    ],
    check_specs=[
        dg.AssetCheckSpec("no_inf", asset="features"),
        dg.AssetCheckSpec("nan_only_in_warmup", asset="features"),
        dg.AssetCheckSpec("regime_codes_in_range", asset="features"),
    ],
    group_name="features",
    kinds={"parquet", "duckdb"},
)
def features(
    context: dg.AssetExecutionContext, config: FeaturesConfig, warehouse: WarehouseResource
):
    """The wide point-in-time feature table (~60 indicator, context and regime columns
    plus fold labels), one Parquet file per symbol and trading day.

    Partitioned like bars_1m; a day is built from the previous day's carry and a few
    sessions of lookback, so it equals a build over the whole history.
    """
    folds = [FoldConfig.parse(text) for text in config.folds]
    frames, rows, written = [], 0, 0
    for symbol, days in days_by_symbol(context.partition_keys).items():
        table, note = build_symbol_features(warehouse, symbol, days, folds)
        if note:
            context.log.warning(f"{symbol}: {note}")
        with log_context(run_id=context.run_id, asset="features"):
            written += warehouse.store_by_day("features", symbol, table, days)
        warehouse.catalog.record_folds(symbol, [f.key for f in folds], days)
        rows += len(table)
        frames.append(table)
    warehouse.catalog.record_feature_metadata(core_features.feature_metadata_rows())
    warehouse.catalog.refresh_views()
    built = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    checks = [
        ("no_inf", core_features.check_no_inf),
        ("nan_only_in_warmup", core_features.check_nan_only_warmup),
        ("regime_codes_in_range", core_regimes.check_regime_codes),
    ]
    results = []
    for name, check in checks:
        passed, details = check(built) if len(built) else (True, {"rows": 0})
        metadata = {"details": dg.MetadataValue.json(details)}
        results.append(dg.AssetCheckResult(check_name=name, passed=bool(passed), metadata=metadata))
    preview = built[[c for c in PREVIEW_COLUMNS if c in built]].tail(10) if len(built) else built
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "partitions_written": dg.MetadataValue.int(written),
            "columns": dg.MetadataValue.json(list(built.columns)),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
        },
        check_results=results,
    )


def build_symbol_features(
    warehouse: WarehouseResource, symbol: str, days: list[dt.date], folds: list[FoldConfig]
) -> tuple[pd.DataFrame, str]:
    """Features of one symbol's days: from the previous day's carry and LOOKBACK_SESSIONS of
    bars when that day was built, else from the start of the stored history."""
    stored = [d for d in warehouse.lake.days("bars_1m", symbol) if d < days[0]]
    previous = stored[-1:] or []
    carry, note = None, ""
    tail = warehouse.lake.read("features", symbol, previous[0]) if previous else None
    if tail is not None and len(tail):
        carry = core_features.carry_from(tail)
        history = stored[-core_features.LOOKBACK_SESSIONS :]
        if len(warehouse.read_bars(symbol, history)) < core_features.LOOKBACK_BARS:
            history = stored  # short sessions: take everything before
    else:
        history = stored
        if stored:
            note = f"no features stored for {previous[0]}: built from {stored[0]} on"
    window = history + days
    bars = warehouse.read_bars(symbol, window)
    if bars.empty:
        return pd.DataFrame(), f"no bars stored for {days[0]} .. {days[-1]}"
    context_days = calendar.previous_sessions(days[0], core_features.LOOKBACK_SESSIONS) + days
    qqq = warehouse.read_bars(QQQ, sorted(set(context_days) | set(window)))
    vixy = warehouse.read_bars(VIXY, sorted(set(context_days) | set(window)))
    regimes = warehouse.lake.read_days("market_regimes", None, days)
    try:
        table = core_features.compute_features(
            bars, start=days[0], qqq=qqq, vixy=vixy, regimes=regimes, carry=carry
        )
    except (core_features.CarryMismatch, core_features.InsufficientLookback) as error:
        note = f"{error}: rebuilt from {stored[0]} ({len(stored)} sessions)"
        bars = warehouse.read_bars(symbol, stored + days)
        table = core_features.compute_features(
            bars, start=days[0], qqq=qqq, vixy=vixy, regimes=regimes, carry=None
        )
    for config in folds:
        table[fold_column(config)] = fold_labels(table["ts"], config)
    return table, note
