"""The gap backfill job: fill missing session minutes from neighbouring bars, flagged."""

import dagster as dg
from pydantic import Field

from stock_assets.assets.partitions import partition_key
from stock_assets.logs import log_context
from stock_assets.resources.warehouse import WarehouseResource


class GapFillConfig(dg.Config):
    symbols: list[str] = Field(description="Symbols whose stored days are filled.")
    start: str | None = Field(
        default=None, description="First day (YYYY-MM-DD); default: first stored."
    )
    end: str | None = Field(
        default=None, description="Last day (YYYY-MM-DD); default: last stored."
    )
    max_iterations: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Each iteration closes gaps by one minute from each side.",
    )


@dg.op(out={}, pool="duckdb_write")
def fill_gaps_op(
    context: dg.OpExecutionContext, config: GapFillConfig, warehouse: WarehouseResource
):
    """Fill the gaps of every stored day in range and report the partitions that changed."""
    from stock_assets.core import calendar
    from stock_assets.core.symbols import normalize_symbols
    from stock_assets.pipelines.gaps import fill_symbol_gaps

    store = warehouse.open()
    first, last = calendar.parse_range(
        config.start or calendar.FIRST_DAY, config.end or calendar.last_day()
    )
    for symbol in normalize_symbols(config.symbols):
        with log_context(run_id=context.run_id, job="gap_fill_job"):
            results, filled = fill_symbol_gaps(store, symbol, first, last, config.max_iterations)
        for result in (r for r in results if r.written):
            for asset in ("bars_1m", "derived_bars"):
                yield dg.AssetMaterialization(
                    asset_key=asset,
                    partition=partition_key(symbol, result.day),
                    metadata={"filled_minutes": result.filled_minutes,
                              "missing_minutes": result.missing_minutes},
                )  # fmt: skip
        context.log.info(
            f"{symbol}: {len(results)} stored day(s), {filled} minute(s) filled, "
            f"{sum(r.missing_minutes for r in results)} still missing"
        )
    store.catalog.refresh_views()


@dg.job(description="Fill missing 1-minute bars inside XNYS sessions (is_filled = true).")
def gap_fill_job():
    fill_gaps_op()
